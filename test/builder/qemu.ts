import type { ChildProcess } from 'node:child_process';
import { ConsoleWatcher, cpuArgs, emulatedCpu } from '../../server/demo/qemu.js';
import { watchOutput } from '../support/failure-report.js';
import type { Netns } from '../support/netns.js';

/**
 * A QEMU machine on a serial console, started inside a namespace: its output
 * kept as text to wait on (a ConsoleWatcher), its input writable (Xen hands
 * serial input to dom0 once dom0 runs), and a hard deadline after which it
 * is killed.
 */
export class ConsoleMachine {
  readonly started = Date.now();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly console: ConsoleWatcher;
  private readonly deadline: NodeJS.Timeout;
  private done = false;

  constructor(ns: Netns, args: string[], hardTimeoutMs: number) {
    this.child = ns.spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.console = new ConsoleWatcher(this.child, () => this.answerCursorQueries());
    watchOutput('QEMU console', () => this.output);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.done = true;
        clearTimeout(this.deadline);
        resolve({ code, signal });
      });
    });
    this.deadline = setTimeout(() => this.kill(), hardTimeoutMs);
  }

  /** Everything the console printed so far. */
  get output(): string {
    return this.console.transcript;
  }

  /** Seconds since QEMU was started. */
  elapsed(): number {
    return (Date.now() - this.started) / 1000;
  }

  /** Resolves with the first match of `pattern` in the output after `from`; rejects on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray & { end: number }> {
    return this.console.waitFor(pattern, timeoutMs, `${pattern} on the console`, from);
  }

  write(text: string): void {
    this.child.stdin!.write(text);
  }

  private cursorQueriesAnswered = 0;

  /**
   * busybox ash asks the terminal where the cursor is (ESC [ 6 n) at each
   * prompt and reads the answer from its input; a command typed before an
   * answer arrives loses characters to that read. Answer like a terminal.
   */
  private answerCursorQueries(): void {
    const asked = this.output.split('\x1b[6n').length - 1;
    for (; this.cursorQueriesAnswered < asked; this.cursorQueriesAnswered++) this.child.stdin!.write('\x1b[24;1R');
  }

  tail(lines = 60): string {
    return this.output.split('\n').slice(-lines).join('\n');
  }

  kill(): void {
    if (!this.done) this.child.kill('SIGKILL');
  }
}

/**
 * QEMU arguments for a direct Xen multiboot boot with one e1000 NIC on tap0;
 * by default 1024 MiB of which dom0 gets 512.
 */
export function xenBootArgs(buildDir: string, dom0Args: string, mac: string, machine: { memoryMiB?: number; xenArgs?: string; cpus?: number } = {}): string[] {
  if (buildDir.includes(',')) throw new Error(`build folder ${buildDir} has a comma, which QEMU's -initrd would split on`);
  return [
    '-accel',
    'tcg',
    '-cpu',
    emulatedCpu,
    '-m',
    String(machine.memoryMiB ?? 1024),
    ...cpuArgs(machine.cpus),
    '-nographic',
    '-no-reboot',
    '-kernel',
    `${buildDir}/xen`,
    '-append',
    `console=com1 com1=115200 ${machine.xenArgs ?? 'dom0_mem=512M'}`,
    // QEMU splits -initrd on commas into multiboot modules; ",," is a literal comma.
    '-initrd',
    `${buildDir}/vmlinuz console=hvc0 quiet ${dom0Args.replaceAll(',', ',,')},${buildDir}/initrd.gz`,
    '-netdev',
    'tap,id=n0,ifname=tap0,script=no,downscript=no',
    '-device',
    `e1000,netdev=n0,mac=${mac}`,
  ];
}

/**
 * A tiny HTTP server for inside a namespace (node, so the test needs nothing
 * else): serves text or file routes, takes event reports (POST
 * /hosts/<mac>/events: 204, or 400 without a stage) as rackboot does,
 * answers 404 otherwise, and prints one JSON line per request on stdout.
 */
const HTTP_SERVER_SCRIPT = `
const http = require('node:http');
const fs = require('node:fs');
const [address, port, routesJson] = process.argv.slice(1);
const routes = JSON.parse(routesJson);
http.createServer((req, res) => {
  let posted = '';
  req.on('data', (chunk) => { posted += chunk; });
  req.on('end', () => {
    console.log(JSON.stringify({ method: req.method, url: req.url, userAgent: req.headers['user-agent'] || '', token: req.headers['x-rackboot-token'] || '', ...(req.method === 'POST' ? { body: posted } : {}) }));
    if (req.method === 'POST' && /^\\/hosts\\/[0-9a-f:]+\\/events$/.test(req.url)) {
      const stage = new URLSearchParams(posted).get('stage');
      res.writeHead(stage ? 204 : 400); res.end(stage ? undefined : 'stage: missing\\n'); return;
    }
    if (req.method === 'POST' && /^\\/hosts\\/[0-9a-f:]+\\/storage$/.test(req.url)) { res.writeHead(204); res.end(); return; }
    const route = routes[req.url];
    if (route === undefined) { res.writeHead(404); res.end('not found\\n'); return; }
    if (typeof route === 'object' && route.file) { res.writeHead(200, { 'content-length': fs.statSync(route.file).size }); fs.createReadStream(route.file).pipe(res); return; }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(typeof route === 'string' ? route : route.text);
  });
}).listen(Number(port), address, () => console.log(JSON.stringify({ listening: port })));
`;

/** One request the namespace's HTTP server saw. */
export interface SeenRequest {
  method: string;
  url: string;
  userAgent: string;
  /** The X-Rackboot-Token header ('' when none). */
  token: string;
  /** A POST's body. */
  body?: string;
}

/** A route: the text to answer, or a file to stream. */
export type HttpRoute = string | { text: string } | { file: string };

/**
 * A boot token as the runtime finds it on its command line; the servers
 * these tests start check nothing but that the runtime shows it in its
 * header (the real server's checks: test/boot, test/http/host-secrets).
 */
export const testBootToken = 'b.TESTtokenAAA.0.c6120032.TESTsignatureAAAAAAAAA';

/** Start the HTTP server at 198.18.0.1:`port` in the namespace; returns the requests it has seen so far (a live list). */
export async function serveInNamespace(ns: Netns, port: number, routes: Record<string, HttpRoute>): Promise<SeenRequest[]> {
  const requests: SeenRequest[] = [];
  const child = ns.spawn(process.execPath, ['-e', HTTP_SERVER_SCRIPT, '198.18.0.1', String(port), JSON.stringify(routes)]);
  watchOutput(`HTTP server in ${ns.name}: requests`, () => requests.map((r) => JSON.stringify(r)).join('\n'), { lines: 40 });
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffered.slice(0, nl)) as SeenRequest & { listening?: string };
        buffered = buffered.slice(nl + 1);
        if (line.listening) resolve();
        else requests.push(line);
      }
    });
    child.on('exit', (code) => reject(new Error(`HTTP server exited with ${code}`)));
  });
  return requests;
}
