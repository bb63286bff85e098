import { sameSlot, slotKey, type RelaySlot } from './slot.js';

/**
 * Which MAC was last seen in which slot. Only DHCP requests carry the slot
 * (option 82, added by the relay); HTTP and TFTP requests name the MAC
 * alone. The DHCP server records what it sees here, and every later lookup
 * for that MAC (boot script, xen.cfg, runtime.env) reads the slot back, so
 * the machine boots as the slot's profile.
 *
 * One MAC per slot: when another machine is seen in a slot (a machine was
 * swapped), the slot forgets the old MAC, which from then on resolves to its
 * own profile or the default one again.
 */
export interface SlotSightings {
  /** The slot the MAC was last seen in, if it still holds it. */
  slotOf(mac: string): RelaySlot | undefined;
  /** The MAC last seen in a slot (same circuit-id and remote-id), if any. */
  macAt(slot: RelaySlot): string | undefined;
  /** Record that `mac` sent a request from `slot`; returns the MAC it replaced there, if another. */
  record(mac: string, slot: RelaySlot): string | undefined;
  /** Every MAC and its slot, for a store that keeps them elsewhere to load. */
  entries(): Array<{ mac: string; slot: RelaySlot }>;
  close(): void;
}

/**
 * Sightings kept in memory only: after a restart, machines are placed again
 * by their next DHCP request, and until then they resolve by MAC alone.
 * `rackboot serve` keeps them in its state folder (SqliteSlotSightings),
 * which holds this in memory for lookups.
 */
export class MemorySlotSightings implements SlotSightings {
  private readonly slotByMac = new Map<string, RelaySlot>();
  private readonly macBySlot = new Map<string, string>();

  slotOf(mac: string): RelaySlot | undefined {
    const slot = this.slotByMac.get(mac);
    return slot && { ...slot };
  }

  macAt(slot: RelaySlot): string | undefined {
    return this.macBySlot.get(slotKey(slot));
  }

  record(mac: string, slot: RelaySlot): string | undefined {
    const key = slotKey(slot);
    const previousMac = this.macBySlot.get(key);
    const previousSlot = this.slotByMac.get(mac);
    if (previousMac === mac && previousSlot !== undefined && sameSlot(previousSlot, slot)) return undefined;
    // The machine moved: its old slot no longer holds it.
    if (previousSlot !== undefined && this.macBySlot.get(slotKey(previousSlot)) === mac) this.macBySlot.delete(slotKey(previousSlot));
    // Another machine was here: it has left the slot.
    if (previousMac !== undefined && previousMac !== mac) this.slotByMac.delete(previousMac);
    this.macBySlot.set(key, mac);
    this.slotByMac.set(mac, { ...slot });
    return previousMac !== mac ? previousMac : undefined;
  }

  entries(): Array<{ mac: string; slot: RelaySlot }> {
    return [...this.slotByMac].map(([mac, slot]) => ({ mac, slot: { ...slot } }));
  }

  close(): void {}
}
