/** OpenSSH known_hosts: parsing, host matching (plain, hashed, wildcards, negation), key fingerprints. */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
// ---------------------------------------------------------------------------------------------
// known_hosts

export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number;
  marker?: '@revoked' | '@cert-authority';
  /** Comma-separated patterns, or a hashed `|1|salt|hash` entry. */
  hosts: string;
  keyType: string;
  key: Buffer;
}

/** Parses an OpenSSH known_hosts file (comments, blank and malformed lines are ignored). */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (!raw || raw.startsWith('#')) continue;
    const f = raw.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (f[0] === '@revoked' || f[0] === '@cert-authority') marker = f.shift() as KnownHostEntry['marker'];
    else if (f[0]!.startsWith('@')) continue; // unknown marker
    if (f.length < 3) continue;
    const key = Buffer.from(f[2]!, 'base64');
    if (!key.length) continue;
    out.push({ line: i + 1, ...(marker ? { marker } : {}), hosts: f[0]!, keyType: f[1]!, key });
  }
  return out;
}

/** The name OpenSSH looks up in known_hosts: "host" for port 22, "[host]:port" otherwise. */
export function knownHostsName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
    's',
  );
  return re.test(s);
}

/** Does a known_hosts host field match `name` (OpenSSH rules: hashed, wildcards, negation)? */
export function hostFieldMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|');
    if (!salt || !hash) return false;
    const want = Buffer.from(hash, 'base64');
    const got = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    return want.length === got.length && timingSafeEqual(want, got);
  }
  let matched = false;
  for (const p0 of hosts.split(',')) {
    const neg = p0.startsWith('!');
    const p = (neg ? p0.slice(1) : p0).toLowerCase();
    if (!p) continue;
    if (globMatch(p, name)) {
      if (neg) return false;
      matched = true;
    }
  }
  return matched;
}

/** OpenSSH-style fingerprint of a public key blob: "SHA256:<base64 without padding>". */
export function fingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** The key type named inside an SSH public key blob ("ssh-ed25519", ...). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const n = keyBlob.readUInt32BE(0);
  return n > 0 && 4 + n <= keyBlob.length ? keyBlob.toString('latin1', 4, 4 + n) : 'unknown';
}

/** Host key algorithms that can present a key of a known_hosts key type. */
export function algorithmsFor(keyType: string): string[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [keyType];
}

export const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];
