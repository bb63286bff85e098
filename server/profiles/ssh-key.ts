/**
 * OpenSSH public keys as they appear in authorized_keys and *.pub files:
 * "TYPE BASE64-BLOB [COMMENT]". The blob is the key in the SSH wire format
 * (RFC 4253 section 6.6): a length-prefixed string naming the type again,
 * then the key's own fields. A key whose blob does not parse, or names
 * another type than the line, is one sshd would skip in silence, leaving the
 * host without the access its profile promised; so it is refused here.
 */

/** Key types OpenSSH 9 (Debian bookworm's dom0) accepts in authorized_keys. */
export const sshKeyTypes = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
] as const;

/** Curve name inside an ECDSA blob and the length of its uncompressed point (0x04 || X || Y), RFC 5656 section 3.1. */
const ecdsaCurves: Record<string, { curve: string; pointLength: number }> = {
  'ecdsa-sha2-nistp256': { curve: 'nistp256', pointLength: 65 },
  'ecdsa-sha2-nistp384': { curve: 'nistp384', pointLength: 97 },
  'ecdsa-sha2-nistp521': { curve: 'nistp521', pointLength: 133 },
  'sk-ecdsa-sha2-nistp256@openssh.com': { curve: 'nistp256', pointLength: 65 },
};

/** OpenSSH refuses RSA keys below this size (SSH_RSA_MINIMUM_MODULUS_SIZE). */
const rsaMinimumBits = 1024;

/** Reads the SSH wire format's length-prefixed strings (RFC 4251 section 5). */
class BlobReader {
  private offset = 0;
  constructor(private readonly blob: Buffer) {}

  /** The next string, or a message saying what is missing. */
  string(what: string): Buffer | string {
    if (this.offset + 4 > this.blob.length) return `the blob ends before the ${what}`;
    const length = this.blob.readUInt32BE(this.offset);
    if (this.offset + 4 + length > this.blob.length) return `the blob ends inside the ${what} (${length} bytes announced)`;
    const value = this.blob.subarray(this.offset + 4, this.offset + 4 + length);
    this.offset += 4 + length;
    return value;
  }

  rest(): number {
    return this.blob.length - this.offset;
  }
}

/** Bits of an mpint (RFC 4251 section 5): big-endian two's complement, with a leading zero byte when the top bit is set. */
function mpintBits(value: Buffer): number {
  let start = 0;
  while (start < value.length && value[start] === 0) start++;
  if (start === value.length) return 0;
  return (value.length - start - 1) * 8 + (32 - Math.clz32(value[start]!));
}

/** What is wrong with a key blob of the given type, or undefined. */
function blobProblem(type: string, blob: Buffer): string | undefined {
  const reader = new BlobReader(blob);
  const embedded = reader.string('key type');
  if (typeof embedded === 'string') return embedded;
  const embeddedType = embedded.toString('latin1');
  if (embeddedType !== type) return `the blob is a ${JSON.stringify(embeddedType)} key, but the line says ${type}`;

  if (type === 'ssh-ed25519' || type === 'sk-ssh-ed25519@openssh.com') {
    const key = reader.string('Ed25519 key');
    if (typeof key === 'string') return key;
    if (key.length !== 32) return `the Ed25519 key is ${key.length} bytes; want 32`;
  } else if (type === 'ssh-rsa') {
    const exponent = reader.string('RSA exponent');
    if (typeof exponent === 'string') return exponent;
    const modulus = reader.string('RSA modulus');
    if (typeof modulus === 'string') return modulus;
    const bits = mpintBits(modulus);
    if (bits < rsaMinimumBits) return `the RSA key has ${bits} bits; OpenSSH refuses keys below ${rsaMinimumBits}`;
  } else {
    const { curve, pointLength } = ecdsaCurves[type]!;
    const name = reader.string('curve name');
    if (typeof name === 'string') return name;
    if (name.toString('latin1') !== curve) return `the blob names curve ${JSON.stringify(name.toString('latin1'))}; ${type} uses ${curve}`;
    const point = reader.string('public point');
    if (typeof point === 'string') return point;
    if (point.length !== pointLength || point[0] !== 4) return `the public point is not an uncompressed ${curve} point (${point.length} bytes)`;
  }
  if (type.startsWith('sk-')) {
    // Security keys also carry the FIDO application (usually "ssh:").
    const application = reader.string('FIDO application');
    if (typeof application === 'string') return application;
  }
  if (reader.rest() !== 0) return `the blob has ${reader.rest()} bytes after the key`;
  return undefined;
}

const base64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * What is wrong with one authorized_keys line, or undefined. Messages quote
 * only the type and the start of the blob: a line that fails may well hold
 * something pasted by mistake (a private key), and errors end up in logs.
 */
export function sshPublicKeyProblem(line: string): string | undefined {
  if (/[\r\n]/.test(line)) return 'holds a line break; write one key per list item';
  const control = /[\u0000-\u0008\u000b-\u001f\u007f]/.exec(line);
  if (control) return `contains a control character (U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')})`;
  const trimmed = line.trim();
  if (trimmed === '') return 'is empty; want a public key such as "ssh-ed25519 AAAAC3Nza... user@host"';
  if (trimmed.startsWith('-----BEGIN')) return 'is a PEM block, perhaps a private key; want the public key line from the .pub file';
  const [type = '', blobText = ''] = trimmed.split(/[ \t]+/);
  if (type === 'ssh-dss') return 'is a DSA key (ssh-dss), which OpenSSH 9 no longer accepts; make an Ed25519 key with: ssh-keygen -t ed25519';
  if (type.includes('-cert-v01@openssh.com')) return `is a certificate (${type}); authorized_keys wants the plain public key`;
  if (!(sshKeyTypes as readonly string[]).includes(type)) {
    const shown = JSON.stringify(type.length > 40 ? `${type.slice(0, 40)}...` : type);
    return `starts with ${shown}, not a key type (want ${sshKeyTypes.join(', ')}); options before the type are not supported`;
  }
  if (blobText === '') return `has no key after ${type}`;
  const start = JSON.stringify(blobText.length > 12 ? `${blobText.slice(0, 12)}...` : blobText);
  if (!base64.test(blobText) || blobText.length % 4 !== 0) return `${type} key ${start} is not valid base64`;
  const blob = Buffer.from(blobText, 'base64');
  if (blob.toString('base64') !== blobText) return `${type} key ${start} is not valid base64`;
  const problem = blobProblem(type, blob);
  return problem === undefined ? undefined : `${type} key ${start}: ${problem}`;
}
