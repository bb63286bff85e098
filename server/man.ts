import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * rackboot(8), made from the command line's own help: every command and
 * subcommand with its description and options, as `rackboot CMD --help`
 * prints them (unwrapped: the help of a process without a terminal), then
 * the files, the environment and the signals. `rackboot manpage` prints it;
 * the package installs it.
 */

export interface HelpOption {
  flags: string;
  text: string;
}

export interface HelpPage {
  /** "serve", "profiles apply <file>" */
  command: string;
  description: string;
  options: HelpOption[];
  /** Subcommands listed on this page, as "profiles list". */
  subcommands: string[];
}

/** One `--help` text, split into its description, options and subcommands (pure). */
export function parseHelp(command: string, text: string): HelpPage {
  const lines = text.split('\n');
  let section = 'head';
  const head: string[] = [];
  const options: HelpOption[] = [];
  const subcommands: string[] = [];
  for (const line of lines) {
    if (/^Commands:$/.test(line)) section = 'commands';
    else if (/^(Options|Positionals):$/.test(line)) section = 'options';
    else if (section === 'head') head.push(line);
    else if (section === 'commands') {
      const match = /^ {2}rackboot (\S+(?: \S+)?(?: <[^>]+>| \[[^\]]+\])?)\s{2,}/.exec(line);
      if (match) subcommands.push(match[1]!.replace(/ (?:<[^>]+>|\[[^\]]+\])$/, ''));
    } else if (section === 'options') {
      const match = /^ {2}(\S.*?)\s{2,}(.*)$/.exec(line);
      if (match && !/^--(help|version)$/.test(match[1]!)) options.push({ flags: match[1]!, text: match[2]!.trim() });
    }
  }
  // The head is the usage line, a blank line and the description.
  const description = head.slice(1).join(' ').replace(/\s+/g, ' ').trim();
  return { command, description, options, subcommands };
}

/** Roff text safe in a man page line: backslashes, dashes, and a leading dot or quote. */
function roff(text: string): string {
  return text
    .replaceAll('\\', '\\e')
    .replaceAll('-', '\\-')
    .replace(/^([.'])/, '\\&$1');
}

export function renderManPage(pages: readonly HelpPage[], version: string): string {
  const out: string[] = [
    `.TH RACKBOOT 8 "" "rackboot ${roff(version)}" "System Administration"`,
    '.SH NAME',
    'rackboot \\- network\\-boot provisioning server: DHCP, TFTP and HTTP that boot each machine into Xen with its own profile',
    '.SH SYNOPSIS',
    '.B rackboot',
    '.I command',
    '.RI [ options ]',
    '.SH DESCRIPTION',
    "One rackboot process answers DHCP (as the network's DHCP server, or as proxyDHCP beside an existing one), TFTP and HTTP, and boots each machine into the Xen hypervisor with a Linux dom0 that runs from RAM, with the settings of its profile (a YAML file).",
    '.SH COMMANDS',
  ];
  for (const page of pages) {
    out.push(`.SS "rackboot ${roff(page.command)}"`, roff(page.description));
    for (const option of page.options) out.push('.TP', `.B ${roff(option.flags)}`, roff(option.text));
  }
  out.push(
    '.SH FILES',
    '.TP',
    '.B /etc/rackboot/rackboot.yaml',
    'settings of \\fBrackboot serve\\fR, each flag a key (\\fB\\-\\-config\\fR names another file)',
    '.TP',
    '.B /etc/rackboot/profiles/',
    'host profiles, one YAML file per machine, slot or default',
    '.TP',
    '.B /var/lib/rackboot/',
    'the state folder: leases, the boot timeline, the admin token and the host\\-token key',
    '.SH ENVIRONMENT',
    '.TP',
    '.B RACKBOOT_<FLAG>',
    'any \\fBserve\\fR setting (RACKBOOT_HTTP_PORT=8080); flags win over the environment, the environment over the file',
    '.TP',
    '.B RACKBOOT_SERVER, RACKBOOT_TOKEN',
    'the server and admin token the admin commands use',
    '.TP',
    '.B RACKBOOT_LOG_LEVEL',
    'pino log level (info by default)',
    '.SH SIGNALS',
    '.TP',
    '.B SIGHUP',
    'read the profiles, the current build and the settings file again',
    '.TP',
    '.B SIGTERM, SIGINT',
    'take no new work, let transfers in flight finish for up to \\fB\\-\\-drain\\-seconds\\fR, exit 0',
    '.SH SEE ALSO',
    'The README of rackboot: its security model, deployment and profile reference.',
  );
  return `${out.join('\n')}\n`;
}

/** Every command's help, read from the CLI itself, depth first. */
export function collectHelp(cliPath = fileURLToPath(new URL('./cli.js', import.meta.url))): HelpPage[] {
  const help = (command: string) =>
    execFileSync(process.execPath, [cliPath, ...(command === '' ? [] : command.split(' ')), '--help'], {
      encoding: 'utf8',
      env: { ...process.env, COLUMNS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const pages: HelpPage[] = [];
  const visit = (command: string) => {
    const page = parseHelp(command, help(command));
    if (command !== '') pages.push(page);
    for (const sub of page.subcommands) if (sub !== 'completion' && sub !== 'manpage') visit(sub);
  };
  visit('');
  return pages;
}
