import { accessSync, constants, existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { hostImageFolder } from './iso/host-iso.js';
import type { Logger } from './log.js';
import { dropPrivileges, type DropReport, type TargetUser } from './privileges.js';
import { handOver, ownedFolder, ownFolderItself } from './state-folder.js';

export interface ServerUserPlan {
  /** `--user`: whom to become when started as root. */
  user: TargetUser | undefined;
  state: string;
  profiles: string;
  assets: string;
  /** rackboot's own folder: Node loads some modules only when first used, after the drop. */
  code: string;
  log: Logger;
}

/**
 * The last step of `serve`, once every socket is bound and the state is
 * open: hand what the server writes to its user, become that user with no
 * capabilities, and check that it can still reach what it reads and writes.
 * Started as root without --user, the server stays root and says so.
 */
export async function becomeServerUser(plan: ServerUserPlan): Promise<DropReport | undefined> {
  const { user, log } = plan;
  const asRoot = process.geteuid!() === 0;
  if (asRoot && user === undefined) {
    log.warn('running as root after start: name an unprivileged user with --user to drop root once the sockets are bound');
    return undefined;
  }
  const hostImages = hostImageFolder(plan.assets);
  if (asRoot && user !== undefined) {
    const owner = { uid: user.uid, gid: user.gid };
    await handOver(plan.state, owner); // its modes were set when serve opened it
    // With no build yet, the assets folder is made now, open to read (rackboot build fills it later, as root).
    if (!existsSync(plan.assets)) {
      await mkdir(plan.assets, { recursive: true });
      await chmod(plan.assets, 0o755);
    }
    await ownedFolder(hostImages, owner);
    await ownFolderItself(plan.profiles, owner);
  }
  const report = dropPrivileges(user);
  log.info(
    { user: report.user, uid: report.uid, gid: report.gid, keptCapabilities: report.kept, threads: report.threads },
    report.held ? 'privileges dropped' : 'running without privileges (none were held at start)',
  );
  if (report.stillPrivileged.length > 0) {
    log.warn(
      { threads: report.stillPrivileged },
      'threads that block every signal keep the capabilities they started with; start as root with --user to clear them too',
    );
  }
  checkReach(plan, hostImages, log);
  return report;
}

/** After the drop: what the server reads and writes must still be reachable, else stop with the path to fix. */
function checkReach(plan: ServerUserPlan, hostImages: string, log: Logger): void {
  const need = (path: string, mode: number, what: string) => {
    try {
      accessSync(path, mode);
    } catch (error) {
      throw new Error(
        `${path}: ${what} is not reachable by uid ${process.geteuid!()} after dropping root (${(error as NodeJS.ErrnoException).code}); check the folder and its parents`,
      );
    }
  };
  need(plan.code, constants.R_OK | constants.X_OK, "rackboot's own folder (some modules load on first use)");
  need(plan.state, constants.R_OK | constants.W_OK | constants.X_OK, 'the state folder');
  need(plan.profiles, constants.R_OK | constants.X_OK, 'the profile folder');
  if (existsSync(plan.assets)) need(plan.assets, constants.R_OK | constants.X_OK, 'the assets folder');
  const warnUnless = (path: string, mode: number, message: string) => {
    try {
      accessSync(path, mode);
    } catch {
      log.warn({ path, uid: process.geteuid!() }, message);
    }
  };
  warnUnless(plan.profiles, constants.W_OK, 'the profile folder is not writable by the server: admin API profile writes will fail');
  if (existsSync(hostImages))
    warnUnless(hostImages, constants.W_OK | constants.X_OK, 'the per-host image folder is not writable by the server: per-host images will fail');
}
