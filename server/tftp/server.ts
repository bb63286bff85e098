import { createSocket as createUdpSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { once } from 'node:events';
import { closeSync } from 'node:fs';
import { nativeBinding } from '../net/native.js';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { heldBy } from '../net/port-holder.js';
import type { Logger } from '../log.js';
import { ErrorCode } from './wire/codes.js';
import { NotRegularFileError, type TftpFile } from './io/file.js';
import { defaultLimits, negotiateOptions } from './wire/options.js';
import { describePacket, encodePacket, tryDecodePacket, type TransferRequest } from './wire/packet.js';
import { normaliseRequestPath } from './wire/path.js';
import { OutsideRootError } from './io/root.js';
import { clientLabel, ReadTransfer, type TftpClient, type TransferSummary } from './io/transfer.js';
import { dgramTransferSocket, NativeTransferSocket, type TransferSocket } from './io/transfer-socket.js';

/** What the server reports to `onEvent`, besides its log lines. */
export type TftpEvent =
  /** The first DATA packet of a transfer is about to go out. */
  | {
      kind: 'transferStarted';
      client: TftpClient;
      file: string;
      size: number;
      mode: 'octet' | 'netascii';
      blockSize: number;
      windowSize: number;
    }
  /** A transfer ended, for whatever reason (see TransferSummary.outcome). */
  | ({ kind: 'transferEnded' } & TransferSummary)
  /** A request answered with an ERROR packet and no transfer. */
  | { kind: 'requestRefused'; client: TftpClient; file: string; code: number; message: string }
  /** A datagram on the request port that was not acted on. */
  | { kind: 'packetDropped'; client: TftpClient; reason: string };

export interface TftpServerOptions {
  /**
   * Address to bind; default 0.0.0.0. An IPv6 address binds an IPv6 socket.
   * Transfer sockets bind the same address. Node cannot tell which local
   * address a request arrived on, so with 0.0.0.0 on a host with several
   * addresses a reply may leave from another one than the client asked, and
   * strict clients drop it: bind the boot network's address there.
   */
  address?: string;
  /** UDP port; default 69. 0 picks a free port, read it from `server.port`. */
  port?: number;
  /**
   * Map a normalised request path (relative, `/` separated, no `..`) to a
   * file. Undefined, or a rejection with code ENOENT/ENOTDIR, is answered
   * with error 1 "file not found"; EACCES/EPERM and non-regular files with
   * error 2; anything else with error 0.
   */
  resolve: (path: string, client: TftpClient) => Promise<TftpFile | undefined>;
  log: Logger;
  /**
   * Transfers in progress at once (size probes and resolving included);
   * requests beyond are left unanswered (the client repeats its request,
   * and is served once a transfer ends). Default 64.
   */
  maxTransfers?: number;
  /**
   * Transfers in progress at once from one client address; requests beyond
   * are refused with error 0 naming the address. Default 8: a PXE ROM runs
   * one transfer at a time (its tsize probe ends before the real read
   * starts), so more from one address is a script or a loop.
   */
  maxTransfersPerClient?: number;
  /**
   * The MAC behind a client address (the kernel's neighbour table), so that
   * maxTransfersPerClient also counts per MAC: one machine with many
   * addresses on its interface cannot take every slot. Undefined for an
   * address not to be counted by MAC (one behind a router). Without this
   * option transfers are counted per address only.
   */
  macOf?: (address: string) => Promise<string | undefined>;
  /**
   * A transfer whose client has acknowledged nothing (neither the OACK nor
   * the first window) is given up this long after it started, with the
   * retransmissions the timeout schedule fits in. Default 4000 ms: a silent
   * request otherwise holds its slot through every retry (about 30 s).
   */
  silentTransferTimeoutMs?: number;
  /**
   * Retransmission timeout unless the client asks for another (RFC 2349).
   * Default 1000 ms. Once a transfer has measured round trips its timeout
   * adapts to them (RFC 6298's estimator, 200 ms at least, this at most);
   * it doubles with each retransmission of the same window, up to 8 s (see
   * retransmissionDelay). A transfer gives up after `retries`
   * retransmissions and no sooner than this timeout's schedule would.
   */
  timeoutMs?: number;
  /**
   * Shortest adaptive retransmission timeout. Default 200 ms (as Linux's
   * TCP): a round trip on a LAN is well under a millisecond, and a client
   * that now and then takes longer to answer (firmware writing to memory)
   * should not get every window twice. At timeoutMs or more, the timeout is
   * fixed.
   */
  minTimeoutMs?: number;
  /** Retransmissions of one window (or OACK) before giving up. Default 5. */
  retries?: number;
  onEvent?: (event: TftpEvent) => void;
  /**
   * Socket factory, for tests that need to lose packets on purpose. Called
   * once for the request socket and once per transfer, unbound.
   */
  createSocket?: (type: 'udp4' | 'udp6') => Socket;
}

/**
 * Read-only TFTP server: RFC 1350 with options (RFC 2347, 2348, 2349) and
 * windows (RFC 7440). Each transfer gets its own ephemeral socket, whose port
 * is the transfer ID. This class is the I/O shell; decoding, negotiation and
 * path rules live in pure modules beside it.
 */
export class TftpServer {
  private readonly options: Required<Omit<TftpServerOptions, 'onEvent' | 'createSocket' | 'log' | 'resolve' | 'macOf'>>;
  private readonly log: Logger;
  private readonly socketType: 'udp4' | 'udp6';
  private socket: Socket | undefined;
  private boundPort: number | undefined;
  /** Requests being resolved or transferred, by client address and port. */
  private readonly active = new Map<string, ReadTransfer | 'resolving'>();
  /**
   * How many entries of `active` each client holds: by MAC where macOf
   * knows it (one machine with many addresses is one client), else by
   * address; and what each entry counts against.
   */
  private readonly activeByClient = new Map<string, number>();
  private readonly countedAs = new Map<string, string>();
  private closing = false;
  /** drain(): no new requests, transfers in flight go on. */
  private draining = false;
  /** When each kind of busy refusal was last logged at warn level. */
  private readonly lastBusyWarning = { server: -Infinity, client: -Infinity };

  constructor(private readonly config: TftpServerOptions) {
    this.options = {
      address: config.address ?? '0.0.0.0',
      port: config.port ?? 69,
      maxTransfers: config.maxTransfers ?? 64,
      maxTransfersPerClient: config.maxTransfersPerClient ?? 8,
      silentTransferTimeoutMs: config.silentTransferTimeoutMs ?? 4000,
      timeoutMs: config.timeoutMs ?? 1000,
      minTimeoutMs: config.minTimeoutMs ?? 200,
      retries: config.retries ?? 5,
    };
    for (const [name, value, min] of [
      ['maxTransfers', this.options.maxTransfers, 1],
      ['maxTransfersPerClient', this.options.maxTransfersPerClient, 1],
      ['silentTransferTimeoutMs', this.options.silentTransferTimeoutMs, 1],
      ['timeoutMs', this.options.timeoutMs, 1],
      ['minTimeoutMs', this.options.minTimeoutMs, 1],
      ['retries', this.options.retries, 0],
    ] as const) {
      if (!Number.isInteger(value) || value < min) throw new RangeError(`TftpServer ${name} is ${value}, want an integer of at least ${min}`);
    }
    this.log = config.log.child({ component: 'tftp' });
    this.socketType = isIPv6(this.options.address) ? 'udp6' : 'udp4';
  }

  /** The bound UDP port; throws before start(). */
  get port(): number {
    if (this.boundPort === undefined) throw new Error('TftpServer is not started');
    return this.boundPort;
  }

  get address(): string {
    return this.options.address;
  }

  /** Transfers being resolved or running. */
  get activeTransfers(): number {
    return this.active.size;
  }

  async start(): Promise<void> {
    if (this.socket !== undefined) throw new Error('TftpServer already started');
    const socket = this.newSocket();
    socket.on('message', (message, remote) => this.receiveRequest(message, remote));
    socket.on('error', (err) => this.log.error({ err }, 'tftp request socket error'));
    try {
      await bind(socket, this.options.address, this.options.port);
    } catch (error) {
      socket.close();
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw Object.assign(new Error(`tftp: cannot bind ${this.options.address}:${this.options.port}: ${code}${heldBy(error, 'udp', this.options.port)}`), {
        code,
        cause: error,
      });
    }
    this.socket = socket;
    this.boundPort = socket.address().port;
    this.log.info({ address: this.options.address, port: this.boundPort }, 'tftp server listening');
  }

  /**
   * Stop taking requests (the request socket closes) and wait up to
   * `deadlineMs` for the transfers in flight to end by themselves; returns
   * how many are still running. close() then ends those.
   */
  async drain(deadlineMs: number): Promise<number> {
    this.draining = true;
    await this.closeRequestSocket();
    const until = Date.now() + deadlineMs;
    while (this.active.size > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    return this.active.size;
  }

  /** Stop listening and end every transfer with an ERROR to its client. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const transfer of this.active.values()) {
      if (transfer !== 'resolving') transfer.abort('serverClosed', 'server shutting down');
    }
    await this.closeRequestSocket();
    // Aborted transfers close their sockets on the next turn of the loop.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  private async closeRequestSocket(): Promise<void> {
    const socket = this.socket;
    if (socket === undefined) return;
    this.socket = undefined;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private newSocket(): Socket {
    return this.config.createSocket?.(this.socketType) ?? createUdpSocket({ type: this.socketType, lookup: literalLookup });
  }

  private receiveRequest(message: Buffer, remote: RemoteInfo): void {
    const client: TftpClient = { address: remote.address, port: remote.port };
    if (this.closing || this.draining || remote.port === 0) return;
    const decoded = tryDecodePacket(message);
    if (decoded.kind === 'malformed') {
      // A broken RRQ or WRQ still gets an answer, so a person at the console
      // sees why; other garbage gets none (no reflection). One debug line
      // either way: a flood of junk must not flood the log.
      const opcode = message.length >= 2 ? message.readUInt16BE(0) : 0;
      if (opcode === 1 || opcode === 2) this.refuse(client, '', ErrorCode.illegalOperation, decoded.reason, 'debug');
      else this.drop(client, decoded.reason, message.length);
      return;
    }
    const packet = decoded.packet;
    switch (packet.kind) {
      case 'readRequest':
        void this.handleReadRequest(packet, client, Date.now()).catch((err: unknown) => {
          this.log.error({ err, client: clientLabel(client) }, 'tftp request failed unexpectedly');
        });
        return;
      case 'writeRequest':
        this.refuse(client, packet.fileName, ErrorCode.accessViolation, 'rackboot serves files read-only');
        return;
      default:
        this.drop(client, `${describePacket(packet)} is not a request`, message.length);
    }
  }

  private async handleReadRequest(request: TransferRequest, client: TftpClient, startedAt: number): Promise<void> {
    const key = clientLabel(client);
    if (this.active.has(key)) {
      // The client sent its RRQ again because our first answer was slow or
      // lost; the running transfer retransmits on its own.
      this.drop(client, 'repeated request for a transfer in progress', 0);
      return;
    }
    if (request.mode !== 'octet' && request.mode !== 'netascii') {
      const message = request.mode === 'mail' ? 'mail mode is not supported' : `unknown transfer mode "${request.mode}"`;
      this.refuse(client, request.fileName, ErrorCode.illegalOperation, message);
      return;
    }
    const requestPath = normaliseRequestPath(request.fileName);
    if (requestPath.kind === 'rejected') {
      this.refuse(client, request.fileName, ErrorCode.accessViolation, requestPath.reason);
      return;
    }
    const path = requestPath.path;
    // Past the server's cap a request is left unanswered, as dnsmasq leaves
    // it: PXE firmware gives up the boot on a TFTP error (the machine falls
    // through to its next boot device and stays there), but sends its
    // request again on silence, and by then a slot is free. That is what a
    // rack coming back from a power cut needs. Past one client's cap (more
    // than a PXE ROM ever asks for) the client gets an ERROR that says why.
    // The server's cap is checked before the MAC lookup (which may wait on
    // ARP) and again after it, when others may have taken the last slots.
    if (this.unansweredAsBusy(client, request.fileName, startedAt)) return;
    const mac = await this.macOf(client.address);
    if (this.closing) return;
    if (this.active.has(key)) {
      this.drop(client, 'repeated request for a transfer in progress', 0);
      return;
    }
    if (this.unansweredAsBusy(client, request.fileName, startedAt)) return;
    const counted = mac ?? client.address;
    const fromClient = this.activeByClient.get(counted) ?? 0;
    if (fromClient >= this.options.maxTransfersPerClient) {
      const message = `too many transfers from ${counted}: ${fromClient} in progress, try again`;
      const limit = { maxTransfersPerClient: this.options.maxTransfersPerClient, address: client.address, ...(mac === undefined ? {} : { mac }) };
      this.refuseBusy(client, request.fileName, message, startedAt, limit);
      return;
    }
    this.claim(client, 'resolving', counted);
    let content: TftpFile | undefined;
    try {
      content = await this.config.resolve(path, client);
    } catch (err) {
      this.release(client);
      const [code, message] = resolveFailure(err);
      if (code === ErrorCode.notDefined) this.log.warn({ err, client: key, file: path }, 'tftp could not resolve file');
      this.refuse(client, path, code, message);
      return;
    }
    if (this.closing) {
      this.release(client);
      return;
    }
    if (content === undefined) {
      this.release(client);
      this.refuse(client, path, ErrorCode.fileNotFound, 'file not found');
      return;
    }

    const netascii = request.mode === 'netascii';
    const negotiated = negotiateOptions(request.options, netascii ? undefined : content.size, defaultLimits);
    if (negotiated.ignored.length > 0) {
      this.log.debug({ client: key, file: path, ignored: negotiated.ignored }, 'tftp ignored options');
    }
    let socket: TransferSocket;
    try {
      socket = await this.transferSocket(netascii || content.openRandomAccess === undefined ? 0 : negotiated.windowSize, client, key);
    } catch (err) {
      this.release(client);
      this.log.error({ err, client: key }, 'tftp could not open a transfer socket');
      return;
    }
    if (this.closing) {
      this.release(client);
      socket.close();
      return;
    }
    const size = content.size;
    const transfer = new ReadTransfer({
      socket,
      client,
      file: path,
      content,
      netascii,
      negotiated,
      timeoutMs: negotiated.timeoutMs ?? this.options.timeoutMs,
      minTimeoutMs: this.options.minTimeoutMs,
      retries: this.options.retries,
      silentTimeoutMs: this.options.silentTransferTimeoutMs,
      log: this.log,
      startedAt,
      onStarted: () => {
        const mode = netascii ? 'netascii' : 'octet';
        const { blockSize, windowSize } = negotiated;
        this.log.info({ client: key, file: path, size, mode, blockSize, windowSize }, 'tftp transfer started');
        this.emit({ kind: 'transferStarted', client, file: path, size, mode, blockSize, windowSize });
      },
      onFinished: (summary) => {
        this.release(client);
        this.logEnd(summary);
        this.emit({ kind: 'transferEnded', ...summary });
      },
    });
    this.claim(client, transfer);
    transfer.start();
  }

  /**
   * A transfer's socket, on an ephemeral port. Octet transfers of files at
   * windowsize 1 (`pumpWindow` 1; 0 for others) get the native one, whose
   * pump answers ACKs without a trip through JavaScript; the rest get
   * dgram, on a descriptor the addon opened so that windows can go out in
   * segmented sends. Servers given a socket factory, and udp6, get plain
   * dgram.
   */
  private async transferSocket(pumpWindow: number, client: TftpClient, key: string): Promise<TransferSocket> {
    const native = this.config.createSocket === undefined && this.socketType === 'udp4';
    if (native && pumpWindow === 1) return new NativeTransferSocket(this.options.address, client);
    const onError = (err: Error): void => this.log.debug({ client: key, err }, 'tftp transfer socket error');
    if (native) {
      // Opened by the addon, so that its descriptor is known for sendMany's segmented sends.
      const fd = nativeBinding().openUdp4(this.options.address);
      const socket = createUdpSocket({ type: 'udp4', lookup: literalLookup });
      try {
        await bindFd(socket, fd);
      } catch (err) {
        socket.close();
        closeSync(fd);
        throw err;
      }
      return dgramTransferSocket(socket, onError, fd);
    }
    const socket = this.newSocket();
    try {
      await bind(socket, this.options.address, 0);
    } catch (err) {
      socket.close();
      throw err;
    }
    return dgramTransferSocket(socket, onError);
  }

  /** The MAC to count a client address's transfers against, if any; never fails. */
  private async macOf(address: string): Promise<string | undefined> {
    if (this.config.macOf === undefined) return undefined;
    try {
      return await this.config.macOf(address);
    } catch (err) {
      this.log.warn({ err, address }, 'tftp could not look up the MAC of a client');
      return undefined;
    }
  }

  /** `counted`: the MAC or address the entry counts against (activeByClient); given on the first claim. */
  private claim(client: TftpClient, entry: ReadTransfer | 'resolving', counted?: string): void {
    const key = clientLabel(client);
    if (!this.active.has(key) && counted !== undefined) {
      this.activeByClient.set(counted, (this.activeByClient.get(counted) ?? 0) + 1);
      this.countedAs.set(key, counted);
    }
    this.active.set(key, entry);
  }

  private release(client: TftpClient): void {
    const key = clientLabel(client);
    if (!this.active.delete(key)) return;
    const counted = this.countedAs.get(key);
    if (counted === undefined) return;
    this.countedAs.delete(key);
    const left = (this.activeByClient.get(counted) ?? 1) - 1;
    if (left > 0) this.activeByClient.set(counted, left);
    else this.activeByClient.delete(counted);
  }

  /** Leaves the request unanswered when the server runs its most transfers already (the client asks again). */
  private unansweredAsBusy(client: TftpClient, file: string, now: number): boolean {
    if (this.active.size < this.options.maxTransfers) return false;
    this.drop(client, `server busy: ${this.active.size} transfers in progress (request for "${file}" left for the client to repeat)`, 0);
    this.warnBusy('server', client, now, { maxTransfers: this.options.maxTransfers });
    return true;
  }

  /** Refuse a request past one client's cap, with an ERROR that says why. */
  private refuseBusy(client: TftpClient, file: string, message: string, now: number, fields: Record<string, unknown>): void {
    this.refuse(client, file, ErrorCode.notDefined, message, 'debug');
    this.warnBusy('client', client, now, fields);
  }

  /**
   * Each request past a cap is a debug line; a warning goes out at most
   * every 10 s per kind of cap, so a crowd of retrying clients cannot
   * flood the log.
   */
  private warnBusy(cap: 'server' | 'client', client: TftpClient, now: number, fields: Record<string, unknown>): void {
    if (now - this.lastBusyWarning[cap] < 10_000) return;
    this.lastBusyWarning[cap] = now;
    const what =
      cap === 'server'
        ? 'tftp at its transfer limit: new requests are left unanswered until a transfer ends (clients ask again)'
        : 'tftp client at its transfer limit, refusing its requests';
    this.log.warn({ ...fields, client: clientLabel(client) }, what);
  }

  private logEnd(summary: TransferSummary): void {
    const { client, outcome, ...rest } = summary;
    const fields = { client: clientLabel(client), outcome, ...rest };
    switch (outcome) {
      case 'complete':
        this.log.info(fields, 'tftp transfer finished');
        return;
      case 'probe':
        this.log.debug(fields, 'tftp size probe ended by the client');
        return;
      case 'clientError':
      case 'serverClosed':
        this.log.info(fields, 'tftp transfer aborted');
        return;
      case 'timeout':
      case 'readError':
        this.log.warn(fields, 'tftp transfer failed');
        return;
    }
  }

  private refuse(client: TftpClient, file: string, code: number, message: string, level: 'info' | 'debug' = 'info'): void {
    this.log[level]({ client: clientLabel(client), file, code, message }, 'tftp request refused');
    this.emit({ kind: 'requestRefused', client, file, code, message });
    this.socket?.send(encodePacket({ kind: 'error', code, message }), client.port, client.address, () => undefined);
  }

  private drop(client: TftpClient, reason: string, length: number): void {
    this.log.debug({ client: clientLabel(client), reason, length }, 'tftp dropped packet');
    this.emit({ kind: 'packetDropped', client, reason });
  }

  private emit(event: TftpEvent): void {
    if (this.config.onEvent === undefined) return;
    try {
      this.config.onEvent(event);
    } catch (err) {
      this.log.error({ err }, 'tftp onEvent listener threw');
    }
  }
}

/** Error code and message for a resolve() that rejected. */
function resolveFailure(err: unknown): [number, string] {
  if (err instanceof NotRegularFileError) return [ErrorCode.accessViolation, 'not a regular file'];
  if (err instanceof OutsideRootError) return [ErrorCode.accessViolation, 'access violation'];
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return [ErrorCode.fileNotFound, 'file not found'];
  if (code === 'EACCES' || code === 'EPERM') return [ErrorCode.accessViolation, 'access violation'];
  return [ErrorCode.notDefined, 'internal error'];
}

async function bindFd(socket: Socket, fd: number): Promise<void> {
  const listening = once(socket, 'listening');
  socket.bind({ fd });
  await listening;
}

async function bind(socket: Socket, address: string, port: number): Promise<void> {
  // once() rejects if the socket emits 'error' first (EADDRINUSE, EACCES).
  const listening = once(socket, 'listening');
  socket.bind({ address, port, exclusive: true });
  await listening;
}

/**
 * The sockets' address lookup. Replies always go to the address a packet
 * came from, an IP literal, yet dgram passes every send's address through
 * dns.lookup, which answers a literal on the next tick: one deferral and
 * closure per DATA packet. Literals are answered at once here.
 */
function literalLookup(
  hostname: string,
  options: LookupOneOptions | number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(hostname);
  if (family !== 0) {
    callback(null, hostname, family);
    return;
  }
  dnsLookup(hostname, typeof options === 'number' ? { family: options } : options, callback);
}
