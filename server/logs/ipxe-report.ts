/**
 * iPXE's failure reports. A host's boot script names the step it is at
 * (`set rbstep FILE`) before each fetch, and its `:failed` label fetches
 * /hosts/<mac>/ipxe-failed/<step>/<errno> from the server: what failed and
 * iPXE's own error number (`${errno}`), which ipxe.org/err/ explains. iPXE
 * sends no header of rackboot's, so such a report carries no token; the
 * server takes it as the host's only as it takes a syslog line
 * (attribution.ts). Pure.
 */

/** A step is a boot file's name, or one of the script's own steps (boot, boot-script). */
const stepPattern = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

export interface IpxeFailure {
  step: string;
  /** iPXE's error number, 32 bits. */
  errno: number;
}

export type IpxeReport = { ok: true; failure: IpxeFailure } | { ok: false; field: 'step' | 'errno'; message: string };

/**
 * The report's two path segments. iPXE writes `${errno}` as 0x and eight hex
 * digits; plain decimal is taken too.
 */
export function parseIpxeFailure(step: string, errno: string): IpxeReport {
  if (!stepPattern.test(step))
    return {
      ok: false,
      field: 'step',
      message: `want a boot file's name or a step (letters, digits, . _ + -, up to 64), got ${JSON.stringify(step.slice(0, 80))}`,
    };
  const value = /^0x[0-9a-f]{1,8}$/i.test(errno) ? Number.parseInt(errno.slice(2), 16) : /^\d{1,10}$/.test(errno) ? Number(errno) : Number.NaN;
  if (!Number.isInteger(value) || value > 0xffffffff)
    return { ok: false, field: 'errno', message: `want iPXE's \${errno} (0x and up to eight hex digits), got ${JSON.stringify(errno.slice(0, 80))}` };
  return { ok: true, failure: { step, errno: value } };
}

/** The error number as iPXE prints it, and the page that explains it. */
export function ipxeErrorText(errno: number): string {
  const hex = errno.toString(16).padStart(8, '0');
  return `iPXE error 0x${hex} (https://ipxe.org/err/${hex})`;
}

/** The line kept in the host's log, and the detail of its failed event. */
export function describeIpxeFailure(failure: IpxeFailure): string {
  const what = failure.step === 'boot-script' ? 'its boot script' : failure.step === 'boot' ? 'booting what it fetched' : failure.step;
  return `iPXE failed at ${what}: ${ipxeErrorText(failure.errno)}`;
}
