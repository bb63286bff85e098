/**
 * Which build file a TFTP request names: "ipxe.efi" (current build) or
 * "builds/<id>/ipxe.efi" (a pinned build). The TFTP codec has already
 * normalised separators and firmware junk; anything else is not ours.
 */
export function resolveTftpPath(requested: string): { name: string; buildId?: string } | undefined {
  const parts = requested.split('/').filter((part) => part !== '');
  if (parts.some((part) => part === '..' || part === '.')) return undefined;
  if (parts.length === 1) return { name: parts[0]! };
  if (parts.length === 3 && parts[0] === 'builds') return { buildId: parts[1]!, name: parts[2]! };
  return undefined;
}
