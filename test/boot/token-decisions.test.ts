import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { HostTokens } from '../../server/tokens/host-token.js';
import { decideTokenGrant, DhcpAnswers, dhcpProofMs, type GrantFacts } from '../../server/tokens/grant.js';
import {
  BootLedger,
  bootTokenLifetimeMs,
  decideTokenUse,
  runtimeEnvMaximumFetches,
  runtimeEnvRetryMs,
  runtimeEnvWindowMs,
  type TokenUse,
} from '../../server/tokens/use.js';

const mac = '52:54:00:12:34:56';
const stranger = '02:00:00:00:0b:ad';
const now = Date.parse('2026-12-04T16:00:00Z');

const facts = (overrides: Partial<GrantFacts>): GrantFacts => ({
  mode: 'full',
  mac,
  requester: '198.18.0.100',
  onSegment: true,
  neighborMac: mac,
  dhcp: { address: '198.18.0.100', at: now - 5_000 },
  now,
  ...overrides,
});

test('full DHCP: a token only for the address rackboot just gave the MAC, and on the segment only when the neighbour table agrees', () => {
  assert.deepEqual(decideTokenGrant(facts({})), { kind: 'grant' });
  const cases: Array<[Partial<GrantFacts>, RegExp]> = [
    [{ dhcp: undefined }, /has not offered or acknowledged an address to 52:54:00:12:34:56 in the last 10 minutes/],
    [{ dhcp: { address: '198.18.0.100', at: now - dhcpProofMs - 1 } }, /in the last 10 minutes/],
    // The victim's reserved address put on a stranger's own interface: rackboot gave it to nobody in this boot.
    [{ requester: '198.18.0.101' }, /198\.18\.0\.101 is not the address rackboot's DHCP gave 52:54:00:12:34:56 \(198\.18\.0\.100\)/],
    // A stranger that took the address by a DHCP exchange with the victim's MAC, then used it with its own.
    [{ neighborMac: stranger }, /neighbour table has 02:00:00:00:0b:ad for 198\.18\.0\.100, not 52:54:00:12:34:56/],
    [{ neighborMac: undefined }, /no MAC for 198\.18\.0\.100/],
    [{ requester: undefined }, /address is unknown/],
  ];
  for (const [change, reason] of cases) {
    const grant = decideTokenGrant(facts(change));
    assert.equal(grant.kind, 'withhold', JSON.stringify(change));
    assert.match((grant as { reason: string }).reason, reason);
  }
  // Behind a relay the neighbour entry is the router's: the DHCP exchange is the proof.
  assert.deepEqual(decideTokenGrant(facts({ onSegment: false, neighborMac: undefined })), { kind: 'grant' });
  assert.equal(decideTokenGrant(facts({ onSegment: false, requester: '198.19.5.9' })).kind, 'withhold');
});

test('proxy DHCP and no DHCP: the neighbour table on the segment, and never a token behind a router', () => {
  for (const mode of ['proxy', 'off'] as const) {
    assert.deepEqual(decideTokenGrant(facts({ mode, dhcp: undefined })), { kind: 'grant' });
    assert.equal(decideTokenGrant(facts({ mode, neighborMac: stranger })).kind, 'withhold');
    const routed = decideTokenGrant(facts({ mode, onSegment: false, neighborMac: undefined }));
    assert.equal(routed.kind, 'withhold');
    assert.match((routed as { reason: string }).reason, /behind a router/);
  }
});

test('DhcpAnswers keeps the newest answer per MAC, and at most its capacity of MACs', () => {
  const answers = new DhcpAnswers(2);
  answers.record('a', '198.18.0.1', 1);
  answers.record('a', '198.18.0.2', 2);
  answers.record('b', '198.18.0.3', 3);
  answers.record('c', '198.18.0.4', 4);
  assert.equal(answers.of('a'), undefined, 'the oldest MAC goes first');
  assert.deepEqual(answers.of('b'), { address: '198.18.0.3', at: 3 });
  assert.deepEqual(answers.of('c'), { address: '198.18.0.4', at: 4 });
});

const tokens = new HostTokens(randomBytes(32));
/** A report names a guest's own stage when it names a guest, else the host's. */
const use = (
  ledger: BootLedger,
  token: string | undefined,
  what: TokenUse,
  requester: string,
  at = now,
  domain?: string,
  stage = domain ? 'guest-ready' : 'booted',
) => {
  const claims = tokens.read(mac, token, domain);
  const decision = decideTokenUse({
    mac,
    use: what,
    ...(what === 'event' ? { stage } : {}),
    presented: token !== undefined,
    claims,
    requester,
    standing: claims ? ledger.standing(claims) : { kind: 'current' },
    now: at,
  });
  if (decision.kind === 'allow' && decision.spend) ledger.spend(decision.claims, at);
  return decision;
};
const mint = (ledger: BootLedger, address: string, at = now) => {
  const { token, claims } = tokens.mintBoot(mac, address, at);
  ledger.minted(claims);
  return token;
};

test('a boot token: runtime.env once, from the address it was handed to, within its window; domain configs and reports for the boot', () => {
  const ledger = new BootLedger();
  const token = mint(ledger, '198.18.0.100');
  assert.equal(use(ledger, undefined, 'runtime.env', '198.18.0.100').kind, 'refuse');
  assert.deepEqual(use(ledger, 'b.forged', 'runtime.env', '198.18.0.100'), { kind: 'refuse', reason: "a token that is not 52:54:00:12:34:56's" });

  const copied = use(ledger, token, 'runtime.env', '198.18.0.66');
  assert.equal(copied.kind, 'refuse');
  assert.match((copied as { alarm?: string }).alarm ?? '', /handed to 198\.18\.0\.100\) was shown from 198\.18\.0\.66/);

  assert.equal(use(ledger, token, 'runtime.env', '198.18.0.100', now + 60_000).kind, 'allow');
  // The runtime's own retry (its first answer lost or late) within two minutes, a few times at most.
  assert.equal(use(ledger, token, 'runtime.env', '198.18.0.100', now + 65_000).kind, 'allow');
  const again = use(ledger, token, 'runtime.env', '198.18.0.100', now + 60_000 + runtimeEnvRetryMs + 1);
  assert.equal(again.kind, 'refuse');
  assert.match((again as { alarm?: string }).alarm ?? '', /runtime\.env of 52:54:00:12:34:56 was asked for again with one boot's token/);
  const burst = new BootLedger();
  const retried = mint(burst, '198.18.0.100');
  for (let fetch = 0; fetch < runtimeEnvMaximumFetches; fetch++) assert.equal(use(burst, retried, 'runtime.env', '198.18.0.100', now + fetch).kind, 'allow');
  assert.equal(use(burst, retried, 'runtime.env', '198.18.0.100', now + 10).kind, 'refuse');

  assert.equal(use(ledger, token, 'domain.cfg', '198.18.0.100', now + 70_000).kind, 'allow');
  assert.equal(use(ledger, token, 'event', '198.18.0.100', now + 70_000).kind, 'allow');
  const old = use(ledger, token, 'event', '198.18.0.100', now + bootTokenLifetimeMs + 1000);
  assert.equal(old.kind, 'refuse');
  assert.equal((old as { alarm?: string }).alarm, undefined, 'an old token is no alarm');

  const late = mint(ledger, '198.18.0.100');
  const tooLate = use(ledger, late, 'runtime.env', '198.18.0.100', now + runtimeEnvWindowMs + 1000);
  assert.equal(tooLate.kind, 'refuse');
  assert.match((tooLate as { reason: string }).reason, /minutes old/);
});

test('two boots of one MAC at once: the token of an earlier boot shown after a newer boot script raises an alarm', () => {
  const ledger = new BootLedger();
  const first = mint(ledger, '198.18.0.100');
  const guest = tokens.mintGuest(mac, first.split('.')[1]!, 'web1');
  assert.equal(use(ledger, first, 'runtime.env', '198.18.0.100').kind, 'allow');
  assert.equal(use(ledger, guest, 'event', '198.18.0.150', now, 'web1').kind, 'allow');
  // Someone else boots as the MAC (say with its address too), and gets a boot script.
  mint(ledger, '198.18.0.100', now + 1000);
  for (const [token, domain] of [
    [first, undefined],
    [guest, 'web1'],
  ] as const) {
    const decision = use(ledger, token, 'event', domain ? '198.18.0.150' : '198.18.0.100', now + 2000, domain);
    assert.equal(decision.kind, 'refuse');
    assert.match((decision as { alarm?: string }).alarm ?? '', /two boots of 52:54:00:12:34:56 at once\?/);
  }
});

test('guest tokens report only; image tokens are not spent; after a restart a boot token still takes runtime.env once', () => {
  const ledger = new BootLedger(1);
  const boot = mint(ledger, '198.18.0.100');
  const guest = tokens.mintGuest(mac, boot.split('.')[1]!, 'web1');
  assert.equal(use(ledger, guest, 'runtime.env', '198.18.0.150', now, 'web1').kind, 'refuse');
  assert.equal(use(ledger, guest, 'event', '198.18.0.150', now, 'web2').kind, 'refuse', 'a guest token speaks for its own guest only');
  assert.equal(use(ledger, guest, 'event', '198.18.0.150', now, 'web1', 'ready').kind, 'refuse', 'a guest does not speak for its host');
  const image = tokens.mintImage(mac, 'CCCCCCCCCCCC');
  assert.equal(use(ledger, image, 'runtime.env', '198.18.0.77').kind, 'allow');
  assert.equal(use(ledger, image, 'runtime.env', '198.18.0.78').kind, 'allow', 'an image boots again, from any address');

  // After a restart (or past capacity) a token the ledger never saw counts as current, once.
  const fresh = new BootLedger(1);
  assert.equal(use(fresh, boot, 'runtime.env', '198.18.0.100').kind, 'allow');
  assert.equal(use(fresh, boot, 'runtime.env', '198.18.0.100', now + runtimeEnvRetryMs + 1).kind, 'refuse');
});
