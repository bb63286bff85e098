import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * A program from a Debian package, unpacked into rackboot's cache instead of
 * installed: some packages start a system service when installed (a DHCP
 * relay, a TFTP daemon), which a test machine must not run. The package comes
 * through the machine's own apt configuration, like `rackboot build`'s.
 */
export function unpackedProgram(packageName: string, pathInside: string): string {
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'rackboot', 'unpacked', packageName);
  const program = join(cache, 'root', pathInside);
  if (existsSync(program)) return program;
  mkdirSync(cache, { recursive: true });
  try {
    execFileSync('apt-get', ['download', packageName], { cwd: cache, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    throw new Error(`apt-get download ${packageName} failed (run apt-get update?): ${String((error as { stderr?: unknown }).stderr ?? error)}`);
  }
  const deb = readdirSync(cache).find((name) => name.startsWith(`${packageName}_`) && name.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${packageName} left no .deb in ${cache}`);
  execFileSync('dpkg-deb', ['-x', join(cache, deb), join(cache, 'root')]);
  if (!existsSync(program)) throw new Error(`${packageName} has no ${pathInside}`);
  return program;
}
