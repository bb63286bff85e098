/**
 * A packet as stable, readable text: for golden tests and for debugging.
 * One line per header field and per option, options in packet order.
 */
import { decodeSubOptions, messageTypeName, optionCodecs, optionNameOf, userClasses, type OptionName } from './options.js';
import type { DhcpPacket } from './packet.js';
import { formatMac } from '../decide/client-facts.js';

function hex(buf: Buffer): string {
  return buf.length === 0 ? '(empty)' : buf.toString('hex').replace(/(..)(?!$)/g, '$1 ');
}

/** Options whose text value is an address, shown bare like the header's. */
const addressOptions = new Set<OptionName>(['subnetMask', 'broadcastAddress', 'requestedAddress', 'serverIdentifier']);

function quote(text: string): string {
  return JSON.stringify(text);
}

function subOptions(data: Buffer, parentCode: number): string {
  try {
    return decodeSubOptions(data, parentCode)
      .map(({ code, data: value }) => `${code}=[${hex(value)}]`)
      .join(' ');
  } catch {
    return `unparsed ${hex(data)}`;
  }
}

function renderValue(name: OptionName, value: unknown): string {
  switch (name) {
    case 'messageType':
      return `${messageTypeName(value as number)} (${String(value)})`;
    case 'parameterRequestList':
      return (value as number[]).map((code) => `${code} ${optionNameOf(code)}`).join(', ');
    case 'userClass':
      return `${hex(value as Buffer)} classes ${userClasses(value as Buffer)
        .map(quote)
        .join(', ')}`;
    case 'vendorSpecific':
    case 'ipxeEncapsulated':
      return subOptions(value as Buffer, optionCodecs[name].code);
    case 'clientMachineId': {
      const { type, id } = value as { type: number; id: Buffer };
      return `type ${type} id ${id.toString('hex')}`;
    }
    case 'networkInterfaceId': {
      const { type, major, minor } = value as { type: number; major: number; minor: number };
      return `type ${type} version ${major}.${minor}`;
    }
    case 'clientIdentifier':
      return hex(value as Buffer);
    default:
      if (typeof value === 'string') return addressOptions.has(name) ? value : quote(value);
      if (Array.isArray(value)) return value.join(', ');
      return String(value);
  }
}

export function renderPacket(packet: DhcpPacket): string {
  const lines = [
    `op ${packet.op === 1 ? 'BOOTREQUEST' : 'BOOTREPLY'} htype ${packet.hardwareType} hlen ${packet.hardwareAddress.length} hops ${packet.hops}`,
    `xid 0x${packet.transactionId.toString(16).padStart(8, '0')} secs ${packet.secondsElapsed} broadcast ${packet.broadcast}`,
    `ciaddr ${packet.clientAddress} yiaddr ${packet.yourAddress} siaddr ${packet.serverAddress} giaddr ${packet.relayAddress}`,
    `chaddr ${formatMac(packet.hardwareAddress)}`,
    `sname ${quote(packet.serverName)} file ${quote(packet.bootFile)}`,
  ];
  for (const [name, value] of Object.entries(packet.options)) {
    if (value === undefined) continue;
    const optionName = name as OptionName;
    lines.push(`option ${optionCodecs[optionName].code} ${name}: ${renderValue(optionName, value)}`);
  }
  for (const [code, data] of packet.rawOptions ?? []) {
    lines.push(`option ${code} ${optionNameOf(code)} (raw): ${hex(data)}`);
  }
  return lines.join('\n') + '\n';
}
