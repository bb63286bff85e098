/**
 * Slots: where a machine is plugged in, as a DHCP relay agent reports it in
 * option 82 (RFC 3046). A switch or router that relays DHCP puts the port
 * (circuit-id, sub-option 1) and often itself (remote-id, sub-option 2) into
 * every request it forwards, so a profile can name a rack position instead of
 * a MAC: whatever machine sits in that port boots as that host.
 *
 * Both identifiers are octet strings; here they are kept as lower-case hex
 * of their bytes, so a slot written as text ("r1") and one written in hex
 * ("0x7231") are the same slot, and comparing two slots is comparing strings.
 */

export interface RelaySlot {
  /** Circuit-id (RFC 3046 sub-option 1), lower-case hex of its bytes. */
  circuitId: string;
  /** Remote-id (RFC 3046 sub-option 2), lower-case hex of its bytes; undefined when absent. */
  remoteId?: string;
}

/** RFC 3046 section 2.0: each sub-option is at most 255 octets. */
export const maxSlotIdOctets = 255;

/**
 * The bytes a profile's circuitId or remoteId stands for: "0x..." is hex
 * (any case, an even number of digits), anything else is its UTF-8 text.
 * Returns the hex, or the problem as the message the user sees.
 */
export function slotIdFromText(text: string): { hex: string } | { problem: string } {
  const quoted = JSON.stringify(text);
  if (text === '') return { problem: 'is empty; want the text the relay sends (such as "r1") or its bytes in hex (such as 0x0004000a0001)' };
  let bytes: Buffer;
  if (/^0x/i.test(text)) {
    const digits = text.slice(2);
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(digits)) {
      return { problem: `${quoted} is not hex bytes; after 0x want an even number of hex digits, such as 0x0004000a0001` };
    }
    bytes = Buffer.from(digits, 'hex');
  } else {
    const control = /[\u0000-\u001f\u007f]/.exec(text);
    if (control) {
      const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
      return { problem: `contains a control character (U+${code}); write binary identifiers in hex (0x...)` };
    }
    bytes = Buffer.from(text, 'utf8');
  }
  if (bytes.length > maxSlotIdOctets) return { problem: `is ${bytes.length} bytes long; a relay agent sub-option holds at most ${maxSlotIdOctets}` };
  return { hex: bytes.toString('hex') };
}

/** One identifier for people: quoted text when it is printable ASCII, else 0x hex. */
export function formatSlotId(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  const printable = bytes.length > 0 && bytes.every((byte) => byte >= 0x20 && byte < 0x7f);
  return printable ? JSON.stringify(bytes.toString('latin1')) : `0x${hex}`;
}

/** A slot for logs and errors: circuit-id "r1" remote-id "sw-rack3". */
export function formatSlot(slot: RelaySlot): string {
  const circuit = `circuit-id ${formatSlotId(slot.circuitId)}`;
  return slot.remoteId === undefined ? circuit : `${circuit} remote-id ${formatSlotId(slot.remoteId)}`;
}

/** The key two profiles may not share: the same circuit-id with the same (or no) remote-id. */
export function slotKey(slot: RelaySlot): string {
  return `${slot.circuitId}/${slot.remoteId ?? '*'}`;
}

/**
 * Whether a profile's slot (`wanted`) names the place a request came from
 * (`seen`): the circuit-id must be equal, and the remote-id too when the
 * profile names one. A profile without a remote-id matches that port on any
 * relay; see selectSlotProfile for which of two matches wins.
 */
export function slotMatches(wanted: RelaySlot, seen: RelaySlot): boolean {
  if (wanted.circuitId !== seen.circuitId) return false;
  return wanted.remoteId === undefined || wanted.remoteId === seen.remoteId;
}

/**
 * The profile for a slot among those that name one. The most specific wins:
 * one naming circuit-id and remote-id beats one naming the circuit-id only.
 * Two profiles cannot name the same circuit-id and remote-id (the profile
 * directory refuses the second), so there is at most one of each kind.
 */
export function selectSlotProfile<T extends { relay?: RelaySlot }>(candidates: Iterable<T>, seen: RelaySlot): T | undefined {
  let best: T | undefined;
  for (const candidate of candidates) {
    if (candidate.relay === undefined || !slotMatches(candidate.relay, seen)) continue;
    if (candidate.relay.remoteId !== undefined) return candidate;
    best ??= candidate;
  }
  return best;
}

export function sameSlot(a: RelaySlot, b: RelaySlot): boolean {
  return a.circuitId === b.circuitId && a.remoteId === b.remoteId;
}
