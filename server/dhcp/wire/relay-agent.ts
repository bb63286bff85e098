/**
 * The slot a relayed request comes from: sub-options 1 (circuit-id) and 2
 * (remote-id) of the relay agent information option, RFC 3046 section 2.0.
 * The option itself stays raw in the packet (it is echoed unchanged, see
 * screen.ts); this only reads it.
 */
import type { RelaySlot } from '../../profiles/slot.js';
import type { DhcpPacket } from './packet.js';
import { relayAgentInformationCode } from '../decide/screen.js';

export const relayAgentSubOption = { circuitId: 1, remoteId: 2 } as const;

export type RelayAgentInformation = { kind: 'none' } | { kind: 'slot'; slot: RelaySlot } | { kind: 'malformed'; reason: string };

/**
 * Reads option 82 of a request. Without a circuit-id there is no slot (a
 * relay that sends only a remote-id names itself, not a port). A malformed
 * option is reported, not thrown: the request is still served, only not
 * matched to a slot.
 */
export function relayAgentInformation(packet: DhcpPacket): RelayAgentInformation {
  const data = packet.rawOptions?.get(relayAgentInformationCode);
  if (data === undefined) return { kind: 'none' };
  let circuitId: string | undefined;
  let remoteId: string | undefined;
  for (let offset = 0; offset < data.length;) {
    const code = data[offset]!;
    if (offset + 1 >= data.length) return { kind: 'malformed', reason: `option 82 sub-option ${code} at byte ${offset} has no length byte` };
    const length = data[offset + 1]!;
    const end = offset + 2 + length;
    if (end > data.length) {
      return {
        kind: 'malformed',
        reason: `option 82 sub-option ${code} at byte ${offset} has length ${length}, but only ${data.length - offset - 2} bytes follow`,
      };
    }
    const value = data.subarray(offset + 2, end).toString('hex');
    // RFC 3046 section 2.0: a sub-option of length 0 is not allowed; such an id names nothing.
    if (code === relayAgentSubOption.circuitId && length > 0) circuitId ??= value;
    if (code === relayAgentSubOption.remoteId && length > 0) remoteId ??= value;
    offset = end;
  }
  if (circuitId === undefined) return { kind: 'none' };
  return { kind: 'slot', slot: remoteId === undefined ? { circuitId } : { circuitId, remoteId } };
}
