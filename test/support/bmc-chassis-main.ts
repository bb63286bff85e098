/**
 * The chassis-control program of the simulated BMC (test/support/ipmi-sim.ts).
 * OpenIPMI's ipmi_sim runs its `chassis_control` program through `sh -c` for
 * every chassis command it serves:
 *
 *   PROGRAM get PARM...        print one `PARM:VALUE` line per parm
 *   PROGRAM set PARM VALUE     do it; exit 0 on success
 *
 * (ipmi_sim 2.0.33 passes no MC address; a leading `0x20` is skipped in case
 * another version does.) The environment says where to log each call
 * (BMC_CHASSIS_LOG), where the chassis state lives between calls
 * (BMC_CHASSIS_STATE) and, optionally, the QMP socket of the QEMU machine
 * the chassis stands for (BMC_CHASSIS_QMP).
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';

/** What ipmi_sim asked, decided from the arguments alone. */
type ChassisCall = { kind: 'get'; parms: string[] } | { kind: 'set'; parm: string; value: string } | { kind: 'invalid'; reason: string };

interface ChassisState {
  /** 1 on, 0 off. */
  power: number;
  /** The boot device as ipmi_sim names it: none, pxe, default (disk), cdrom or bios. */
  boot: string;
}

/** A machine starts powered on, booting from its default device. */
const initialState: ChassisState = { power: 1, boot: 'default' };

/**
 * The boot devices ipmi_sim knows: ipmitool's `disk` arrives as `default`, and
 * `safe`, `diag` and `floppy` ipmi_sim refuses itself. It reads `get boot`
 * before every boot-device change, and an answer outside this list makes it
 * fail a step of the change (ipmitool warns "Set Chassis Boot Parameter 4 failed").
 */
const bootDevices = new Set(['none', 'pxe', 'default', 'cdrom', 'bios']);

const qmpTimeoutMs = 10_000;

/** The call without the MC address some ipmi_sim versions may put first. */
function withoutAddress(args: string[]): string[] {
  return /^0x[0-9a-f]+$/i.test(args[0] ?? '') ? args.slice(1) : args;
}

function parseCall(args: string[]): ChassisCall {
  const [verb, ...rest] = args;
  if (verb === 'get' && rest.length > 0) return { kind: 'get', parms: rest };
  if (verb === 'set' && rest.length >= 2) return { kind: 'set', parm: rest[0]!, value: rest.slice(1).join(' ') };
  return { kind: 'invalid', reason: `want "get PARM..." or "set PARM VALUE", got ${JSON.stringify(args)}` };
}

/** The answer to one `get` parm, or undefined for a parm this chassis does not know. */
function readParm(state: ChassisState, parm: string): string | undefined {
  if (parm === 'power') return String(state.power);
  if (parm === 'boot') return state.boot;
  return undefined;
}

type SetOutcome = { kind: 'done'; state: ChassisState; qmp: string[] } | { kind: 'refused'; reason: string };

/**
 * What a `set` does to the chassis and to its QEMU machine. Off is a paused
 * machine (`stop`); on again resets it first, so it boots from scratch as a
 * powered-up machine would.
 */
function applySet(state: ChassisState, parm: string, value: string): SetOutcome {
  if (parm === 'power' && value === '0') return { kind: 'done', state: { ...state, power: 0 }, qmp: ['stop'] };
  // Powering on a machine that is on changes nothing, as on a real BMC; from off, it starts from its firmware.
  if (parm === 'power' && value === '1') return { kind: 'done', state: { ...state, power: 1 }, qmp: state.power === 1 ? [] : ['system_reset', 'cont'] };
  if (parm === 'reset' && value === '1') return { kind: 'done', state, qmp: ['system_reset'] };
  // `chassis power soft`: a real BMC asks the OS to shut down and the machine ends off; the test machine is switched off at once.
  if (parm === 'shutdown' && value === '1') return { kind: 'done', state: { ...state, power: 0 }, qmp: ['stop'] };
  if (parm === 'boot' && bootDevices.has(value)) return { kind: 'done', state: { ...state, boot: value }, qmp: [] };
  // `chassis identify` blinks a light: nothing to do, but it is logged like every call.
  if (parm === 'identify') return { kind: 'done', state, qmp: [] };
  return { kind: 'refused', reason: `cannot set ${parm} to ${JSON.stringify(value)}` };
}

function loadState(file: string): ChassisState {
  try {
    return { ...initialState, ...(JSON.parse(readFileSync(file, 'utf8')) as Partial<ChassisState>) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return initialState;
    throw error;
  }
}

/** Runs `commands` in order on the QMP socket, each waiting for its `return`; an `error` reply or silence fails. */
async function runQmp(socketPath: string, commands: string[]): Promise<void> {
  const socket = net.createConnection(socketPath);
  const replies: unknown[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) if (line.trim() !== '') replies.push(JSON.parse(line));
    wake?.();
  });
  socket.on('error', (error) => {
    failure = error;
    wake?.();
  });
  socket.on('close', () => {
    failure ??= new Error('QMP socket closed');
    wake?.();
  });

  const deadline = Date.now() + qmpTimeoutMs;
  // The next message that is not an asynchronous event (QEMU sends STOP, RESET, RESUME... as they happen).
  async function next(what: string): Promise<Record<string, unknown>> {
    for (;;) {
      const reply = replies.shift() as Record<string, unknown> | undefined;
      if (reply !== undefined && !('event' in reply)) return reply;
      if (reply !== undefined) continue;
      if (failure !== undefined) throw new Error(`QMP ${socketPath}: ${failure.message} while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`QMP ${socketPath}: no answer to ${what} within ${qmpTimeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  }

  try {
    const greeting = await next('the greeting');
    if (!('QMP' in greeting)) throw new Error(`QMP ${socketPath}: greeting ${JSON.stringify(greeting)}`);
    for (const command of ['qmp_capabilities', ...commands]) {
      socket.write(`${JSON.stringify({ execute: command })}\n`);
      const reply = await next(command);
      if (!('return' in reply)) throw new Error(`QMP ${socketPath}: ${command} answered ${JSON.stringify(reply)}`);
    }
  } finally {
    socket.destroy();
  }
}

function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const logFile = requireEnv('BMC_CHASSIS_LOG');
  const stateFile = requireEnv('BMC_CHASSIS_STATE');
  const qmpSocket = process.env.BMC_CHASSIS_QMP || undefined;
  const args = withoutAddress(process.argv.slice(2));
  // Logged before acting, so a call that fails still shows in the log.
  appendFileSync(logFile, `${args.join(' ')}\n`);
  const call = parseCall(args);

  if (call.kind === 'invalid') throw new Error(call.reason);
  const state = loadState(stateFile);
  if (call.kind === 'get') {
    const lines = call.parms.map((parm) => {
      const value = readParm(state, parm);
      if (value === undefined) throw new Error(`cannot get ${parm}`);
      return `${parm}:${value}\n`;
    });
    process.stdout.write(lines.join(''));
    return;
  }
  const outcome = applySet(state, call.parm, call.value);
  if (outcome.kind === 'refused') throw new Error(outcome.reason);
  if (qmpSocket !== undefined && outcome.qmp.length > 0) await runQmp(qmpSocket, outcome.qmp);
  writeFileSync(stateFile, `${JSON.stringify(outcome.state)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bmc-chassis ${process.argv.slice(2).join(' ')}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
