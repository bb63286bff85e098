import { spawn as spawnChild, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { collect } from './run.js';
import { until } from './until.js';

/**
 * A LAN BMC for tests: OpenIPMI's `ipmi_sim` speaking IPMI 1.5 and 2.0
 * (RMCP+) on one UDP address, whose chassis commands (power, reset, boot
 * device) run test/support/bmc-chassis-main.ts. That program logs every call
 * and, given a QMP socket, switches a QEMU machine off (paused) and on.
 */
export interface IpmiSim {
  /** The chassis-control calls so far, in order: `get power`, `set power 0`, `set boot pxe`... */
  calls(): string[];
  /** Resolves once some call so far matches `pattern`; fails after `timeoutMs` with the calls and ipmi_sim's output. */
  waitForCall(pattern: RegExp, timeoutMs: number): Promise<void>;
  /** ipmi_sim's stdout and stderr so far, then the chassis program's stderr (which ipmi_sim drops). */
  readonly transcript: string;
  /** The password in a file, for `ipmitool -f`. */
  readonly passwordFile: string;
  /** Kills ipmi_sim and removes its directory. */
  close(): Promise<void>;
}

export interface IpmiSimOptions {
  address: string;
  port: number;
  user: string;
  password: string;
  /** The QMP socket of the QEMU machine the chassis commands drive; without it they are only logged. */
  qmpSocket?: string;
  /** Starts ipmi_sim and the readiness probe (ipmitool), e.g. inside a network namespace; child_process.spawn by default. */
  spawn?: (command: string, args: string[], options: SpawnOptions) => ChildProcess;
}

const chassisMain = fileURLToPath(new URL('./bmc-chassis-main.js', import.meta.url));
const startTimeoutMs = 10_000;

/** A word for sh, in single quotes. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A string for lan.conf, between double quotes; one holding a quote or a line break is refused rather than escaped. */
function confString(value: string, what: string): string {
  if (/["\n]/.test(value)) throw new Error(`${what} ${JSON.stringify(value)} cannot go into lan.conf`);
  return `"${value}"`;
}

/**
 * The BMC's configuration (ipmi_lan(5)). `chassis_control` is a top-level
 * command: inside startlan...endlan ipmi_sim 2.0.33 rejects it ("Invalid
 * configuration option"). Without a `guid`, RMCP+ sessions fail ("Unable to
 * establish IPMI v2 / RMCP+ session"; IPMI 1.5 still works).
 */
function renderLanConf(options: { address: string; port: number; user: string; password: string; chassisControl: string; guid: string }): string {
  const auths = 'none md2 md5 straight';
  return [
    'name "rackboot-test"',
    'set_working_mc 0x20',
    'startlan 1',
    `  addr ${options.address} ${options.port}`,
    '  priv_limit admin',
    `  allowed_auths_callback ${auths}`,
    `  allowed_auths_user ${auths}`,
    `  allowed_auths_operator ${auths}`,
    `  allowed_auths_admin ${auths}`,
    `  guid ${options.guid}`,
    'endlan',
    `chassis_control ${confString(options.chassisControl, 'the chassis program')}`,
    `user 2 true ${confString(options.user, 'the user')} ${confString(options.password, 'the password')} admin 10 ${auths}`,
    '',
  ].join('\n');
}

/** One BMC (MC 0x20) with a chassis and no sensors (ipmi_sim_cmd(5)). */
const simEmu = ['mc_setbmc 0x20', 'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr', 'mc_enable 0x20', ''].join('\n');

/**
 * Starts ipmi_sim on `address`:`port` with one admin user, and resolves once
 * it answers ipmitool over RMCP+ (cipher suite 3), within 10 s. ipmi_sim sets
 * SO_REUSEADDR, so a second one on the same port starts too and takes the
 * traffic: give each its own port or network namespace.
 */
export async function startIpmiSim(options: IpmiSimOptions): Promise<IpmiSim> {
  const spawn = options.spawn ?? spawnChild;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ipmi-sim-'));
  // ipmi_sim puts the program's path into `sh -c` unquoted.
  if (/[^\w./-]/.test(dir)) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`the temp dir ${dir} is not a plain path for sh -c; set TMPDIR to one`);
  }
  const logFile = path.join(dir, 'calls.log');
  const passwordFile = path.join(dir, 'password');
  const chassisControl = path.join(dir, 'chassis-control');
  const chassisErrors = path.join(dir, 'chassis-errors.log');
  await mkdir(path.join(dir, 'state'));
  await writeFile(logFile, '');
  await writeFile(chassisErrors, '');
  await writeFile(passwordFile, options.password, { mode: 0o600 });
  // ipmi_sim runs `sh -c "PROGRAM get power"` with arguments only: the script carries this BMC's files and QMP socket.
  const environment = { BMC_CHASSIS_LOG: logFile, BMC_CHASSIS_STATE: path.join(dir, 'chassis-state.json'), BMC_CHASSIS_QMP: options.qmpSocket ?? '' };
  await writeFile(
    chassisControl,
    [
      '#!/bin/sh',
      `export ${Object.entries(environment)
        .map(([name, value]) => `${name}=${shellQuote(value)}`)
        .join(' ')}`,
      // ipmi_sim drops the program's stderr: kept in a file for the transcript.
      `exec ${shellQuote(process.execPath)} ${shellQuote(chassisMain)} "$@" 2>>${shellQuote(chassisErrors)}`,
      '',
    ].join('\n'),
  );
  await chmod(chassisControl, 0o755);
  const guid = randomBytes(16).toString('hex');
  await writeFile(path.join(dir, 'lan.conf'), renderLanConf({ ...options, chassisControl, guid }));
  await writeFile(path.join(dir, 'sim.emu'), simEmu);

  // -n: no console on stdin/stdout; -p: no persistence (changed users, SDRs, SEL); -s: a state directory of its own all the same.
  const sim = spawn('ipmi_sim', ['-c', 'lan.conf', '-f', 'sim.emu', '-n', '-p', '-s', path.join(dir, 'state')], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let transcript = '';
  sim.stdout?.on('data', (chunk: Buffer) => (transcript += chunk.toString()));
  sim.stderr?.on('data', (chunk: Buffer) => (transcript += chunk.toString()));
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    // A command that cannot be started gives 'error' and no 'exit'.
    sim.on('error', (error) => {
      exit ??= `could not start: ${error.message}`;
      resolve();
    });
    // 'close', not 'exit': by then its last output has been read.
    sim.on('close', (code, signal) => {
      exit ??= `exited with ${signal ?? code}`;
      resolve();
    });
  });

  const calls = (): string[] => readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
  const fullTranscript = (): string => {
    const errors = readFileSync(chassisErrors, 'utf8');
    return errors === '' ? transcript : `${transcript}\n[chassis program stderr]\n${errors}`;
  };
  const close = async (): Promise<void> => {
    // SIGTERM ends ipmi_sim at once without a chassis call (no `set power 0` reaches the machine); SIGKILL in case it hangs.
    if (exit === undefined) sim.kill('SIGTERM');
    const hung = setTimeout(() => sim.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(hung);
    await rm(dir, { recursive: true, force: true });
  };

  // Get Device ID (`mc info`) answers once the LAN port is up; unlike `chassis power status` it does not run the chassis program.
  const probeArgs = ['-I', 'lanplus', '-C', '3', '-N', '1', '-R', '1', '-H', options.address, '-p', String(options.port)];
  let lastProbe = '';
  try {
    await until(
      `ipmi_sim answering on ${options.address}:${options.port}`,
      startTimeoutMs,
      async () => {
        if (exit !== undefined) throw new Error(`ipmi_sim ${exit}\n${transcript}`);
        const probe = spawn('ipmitool', [...probeArgs, '-U', options.user, '-f', passwordFile, 'mc', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
        const finished = collect(probe, { timeoutMs: 5000, what: 'ipmitool mc info' });
        // ipmi_sim that exits (a bad address, a bad line in lan.conf) fails the start at once, not after the probe's 2 s of retries.
        const result = await Promise.race([finished, exited.then(() => undefined)]);
        if (result === undefined) {
          probe.kill('SIGKILL');
          await finished.catch(() => undefined);
          throw new Error(`ipmi_sim ${exit}\n${transcript}`);
        }
        lastProbe = `ipmitool exited ${result.code}: ${result.stderr.trim()}`;
        return result.code === 0 ? true : undefined;
      },
      () => `last probe: ${lastProbe}\nipmi_sim output:\n${transcript}`,
    );
  } catch (error) {
    await close();
    throw error;
  }

  return {
    calls,
    async waitForCall(pattern, timeoutMs) {
      await until(
        `a chassis call matching ${pattern}`,
        timeoutMs,
        () => (calls().some((call) => pattern.test(call)) ? true : undefined),
        () => `calls: ${JSON.stringify(calls())}\nipmi_sim output:\n${fullTranscript()}`,
      );
    },
    get transcript() {
      return fullTranscript();
    },
    passwordFile,
    close,
  };
}
