import { chmod, mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from './build.js';

/**
 * Running the checkout's code as an unprivileged user. That user may not be
 * able to reach the checkout at all: a fresh clone in a 0700 temporary
 * folder, or under /root, has parents only root can enter, and Node then
 * cannot load a single file. So the child sees the checkout through a bind
 * mount on a 0755 folder under /tmp, made in a mount namespace of its own
 * (unshare --mount): nothing is mounted for anyone else, and nothing is left
 * behind when it ends. The checkout's own files need only be readable by
 * others, as git leaves them.
 */
export interface CheckoutView {
  /** Where the child sees the repository root. */
  root: string;
  /**
   * The command line that runs `command` (setpriv, with its own arguments
   * to become the user, or a server that drops root itself) with the view
   * mounted and its working directory at the view's root. Arguments naming
   * a path inside the checkout are rewritten to the view's.
   */
  command(command: string, args: string[]): { command: string; args: string[] };
  remove(): Promise<void>;
}

export async function openCheckoutView(): Promise<CheckoutView> {
  const root = await mkdtemp(path.join(tmpdir(), 'rackboot-checkout-'));
  await chmod(root, 0o755);
  const inView = (arg: string) => (arg === repoRoot || arg.startsWith(`${repoRoot}/`) ? path.join(root, path.relative(repoRoot, arg)) : arg);
  const mountThenRun = 'mount --bind "$1" "$2" && cd "$2" && shift 2 && exec "$@"';
  return {
    root,
    command: (command, args) => ({
      command: 'unshare',
      args: ['--mount', '--propagation', 'private', 'sh', '-c', mountThenRun, 'sh', repoRoot, root, command, ...args.map(inView)],
    }),
    remove: () => rmdir(root),
  };
}
