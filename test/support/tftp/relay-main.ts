/**
 * The lossy, slow relay (relay.ts) as a process of its own, so it can run
 * inside a network namespace:
 *
 *   node relay-main.js LISTEN_ADDRESS UPSTREAM_ADDRESS SERVER_ADDRESS SERVER_PORT LOSS_RATE DELAY_MS [LISTEN_PORT [SEED]]
 *
 * Prints one JSON line {"port": N} once listening; on SIGTERM prints its
 * counters as one JSON line {"forwarded": N, "dropped": N, ...} and stops.
 */
import { UdpRelay } from './relay.js';

const [listenAddress, upstreamAddress, serverAddress, serverPort, lossRate, delayMs, listenPort = '0', seed] = process.argv.slice(2);
if (delayMs === undefined)
  throw new Error('usage: relay-main LISTEN_ADDRESS UPSTREAM_ADDRESS SERVER_ADDRESS SERVER_PORT LOSS_RATE DELAY_MS [LISTEN_PORT [SEED]]');
const relay = await UdpRelay.start({
  listenAddress: listenAddress!,
  listenPort: Number(listenPort),
  upstreamAddress: upstreamAddress!,
  serverAddress: serverAddress!,
  serverPort: Number(serverPort),
  lossRate: Number(lossRate),
  delayMs: Number(delayMs),
  ...(seed !== undefined ? { seed: Number(seed) } : {}),
});
process.stdout.write(`${JSON.stringify({ port: relay.port })}\n`);
process.once('SIGTERM', () => {
  relay.close();
  process.stdout.write(`${JSON.stringify(relay.counters)}\n`, () => process.exit(0));
});
