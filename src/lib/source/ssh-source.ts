/**
 * The data host over SSH (issue 4): the agent scans and streams a target directory on a
 * remote host through one shared SSH connection (ssh2), running only standard tools there:
 * GNU find, xargs, sha256sum (coreutils) and GNU tar, under /bin/sh.
 *
 * Security:
 * - Key authentication only (no password, no agent, no keyboard-interactive).
 * - Host keys are pinned: the server's key must be in the configured OpenSSH known_hosts file
 *   for `host` (port 22) or `[host]:port` (plain or hashed `|1|salt|hash` entries). An unknown
 *   or changed key is refused with HostKeyError, never accepted silently.
 * - No file name ever appears in a command line. The only variable part of a command is the
 *   target path, single-quoted for the remote shell and passed as "$1" to a fixed /bin/sh
 *   script; names flow as NUL-terminated bytes (find -printf ... \0, sha256sum --zero, tar
 *   --null --verbatim-files-from on stdin). See docs/ssh.md.
 *
 * Failures: a dropped connection, a remote command that dies, exits non-zero or produces
 * truncated output makes the operation throw SourceUnavailableError (retryable); a partial
 * listing is never returned as a complete manifest. New operations reconnect with backoff.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig, ParsedKey } from 'ssh2';
import { linkTargetFields, pathBytes, pathFields, pathKey, skipReason, type ManifestEntry } from '../domain/manifest.ts';
import { ArchiveError, ConfigError } from '../errors.ts';
import type { SourceEntry, SourceEntryFields } from '../tape-format/format.ts';
import { isUtf8, TarParser, type TarMember } from '../tape-format/tar.ts';
import { SourceUnavailableError, type DataSource, type ScanOptions } from './data-source.ts';

const { Client, utils: sshUtils } = ssh2;
type SshClient = InstanceType<typeof Client>;

// ---------------------------------------------------------------------------------------------
// Errors

export type HostKeyErrorCode = 'HOST_KEY_UNKNOWN' | 'HOST_KEY_CHANGED' | 'HOST_KEY_REVOKED';

/**
 * The server's host key is not pinned in known_hosts (unknown), differs from the pinned one
 * (changed: possible man-in-the-middle, or the host was reinstalled), or is revoked. Not
 * retryable: an operator must check the fingerprint and update known_hosts.
 */
export class HostKeyError extends ArchiveError {
  override readonly name = 'HostKeyError';
  readonly status = 502;
  constructor(
    readonly code: HostKeyErrorCode,
    message: string,
    readonly details: { host: string; port: number; keyType: string; fingerprint: string; knownHostsPath: string },
  ) {
    super(message, details);
  }
}

/** The server refused our key (wrong user key, or the key is not in authorized_keys). Not retryable. */
export class SshAuthError extends ArchiveError {
  override readonly name = 'SshAuthError';
  readonly code = 'SSH_AUTH_FAILED';
  readonly status = 502;
}

/** A remote command failed (non-zero exit, error output, truncated output). Retryable. */
export class RemoteCommandError extends SourceUnavailableError {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
  }
}

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
function algorithmsFor(keyType: string): string[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [keyType];
}

const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

// ---------------------------------------------------------------------------------------------
// Remote commands

/** Quotes one argument for a POSIX shell: '...' with every ' written as '\''. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A command for the remote login shell that runs a fixed /bin/sh script with the target path
 * as "$1". The script text is constant (no variable data); the path is one single-quoted word.
 */
export function remoteCommand(script: string, path: string, ...more: string[]): string {
  return `LC_ALL=C exec /bin/sh -c ${shellQuote(script)} sh ${[path, ...more].map(shellQuote).join(' ')}`;
}

/** Enters the target ("$1") or exits 90 with the reason on stderr. */
const CD_TARGET = [
  'if ! cd -- "$1" 2>/dev/null; then',
  '  if [ ! -e "$1" ]; then r=\'does not exist\'',
  '  elif [ ! -d "$1" ]; then r=\'is not a directory\'',
  "  else r='cannot be entered (permission denied)'; fi",
  '  printf \'the target %s\\n\' "$r" >&2',
  '  exit 90',
  'fi',
].join('\n');

/**
 * The scan runs two commands at once, on two channels (when maxConcurrentChannels allows):
 *
 * LIST_SCRIPT writes one record of 7 NUL-terminated fields per entry (find -printf):
 *   type (%y: f d l ...), size (%s), mtime (%T@: seconds.fraction), mode (%m: octal
 *   permission bits), name (%P: relative to the target, raw bytes), link target (%l, empty
 *   unless a symlink), links and identity (%n:%D:%i: link count, device, inode; files with
 *   several names form hard link groups). No field can contain a NUL, so any other byte in a
 *   name is safe.
 * HASH_SCRIPT writes one NUL-terminated line per regular file (sha256sum --zero: no escaping):
 *   "<64 hex><space><space|*>./<name>"
 * Both end with the field "=" (no record or line starts with it), so output cut at a record
 * boundary is still detected. Exit status 90: the target cannot be entered (reason on
 * stderr); otherwise find's (LIST) or xargs' (HASH: 123 when a sha256sum failed).
 */
export const LIST_SCRIPT = [
  CD_TARGET,
  "find . -ignore_readdir_race -mindepth 1 -printf '%y\\0%s\\0%T@\\0%m\\0%P\\0%l\\0%n:%D:%i\\0'",
  's=$?',
  "printf '=\\0'",
  'exit $s',
].join('\n');

/**
 * Every directory, file and symlink under the target now, one record of 2 NUL-terminated
 * fields (type %y, name %P), ending with "=": the writer's check that nothing was added since
 * the scan.
 */
export const NAMES_SCRIPT = [
  CD_TARGET,
  "find . -ignore_readdir_race -mindepth 1 \\( -type f -o -type d -o -type l \\) -printf '%y\\0%P\\0'",
  's=$?',
  "printf '=\\0'",
  'exit $s',
].join('\n');

/** Directories exactly "$2" levels below the target, NUL-terminated, relative (scheduled import). */
export const LIST_DIRS_SCRIPT = [
  CD_TARGET,
  'find . -ignore_readdir_race -mindepth "$2" -maxdepth "$2" -type d -printf \'%P\\0\'',
  's=$?',
  "printf '=\\0'",
  'exit $s',
].join('\n');

export const HASH_SCRIPT = [
  CD_TARGET,
  'find . -ignore_readdir_race -type f -print0 | xargs -0 -r sha256sum --zero --',
  's=$?',
  "printf '=\\0'",
  'exit $s',
].join('\n');

/**
 * The stream script: GNU tar of exactly the NUL-terminated names read on stdin, relative to
 * the target, each taken verbatim (no option parsing, no unquoting, no wildcards, no
 * recursion), GNU format (raw name bytes). The first name is "." (the root directory: its
 * mode and mtime); a second name of a file already streamed comes as a hard link (typeflag
 * 1) to the first. Exit 90: cannot cd.
 */
export const STREAM_SCRIPT = [
  CD_TARGET,
  'exec tar --create --file=- --format=gnu --blocking-factor=256 --no-recursion --no-unquote ' + '--null --verbatim-files-from --files-from=-',
].join('\n');

/** The same, every hard-linked name stored as a file with its content (manifests without link groups). */
export const STREAM_SCRIPT_DEREFERENCE = STREAM_SCRIPT.replace('--no-recursion', '--hard-dereference --no-recursion');

// ---------------------------------------------------------------------------------------------
// Options

export interface ReconnectOptions {
  /** Connection attempts per operation before giving up with SourceUnavailableError (default 5). */
  attempts?: number;
  /** Delay before the second attempt (default 500 ms); doubles each time. */
  initialDelayMs?: number;
  /** Upper bound of the delay (default 30 s). */
  maxDelayMs?: number;
  /** Growth factor of the delay (default 2). */
  factor?: number;
}

export interface SshDataSourceOptions {
  host: string;
  /** Default 22. */
  port?: number;
  username: string;
  /** The private key: a path to an OpenSSH/PEM key file, or the key itself (Buffer or PEM text). */
  privateKey: string | Buffer;
  /** For an encrypted private key. */
  passphrase?: string;
  /** Path of an OpenSSH known_hosts file that must pin the host's key. Read at each connect. */
  knownHosts: string;
  /** The name this source reports as `host` (default: `host`). */
  hostLabel?: string;
  /** Keepalive probe interval in ms (default 15000; 0 disables). */
  keepaliveInterval?: number;
  /** Unanswered keepalives before the connection is considered dead (default 4). */
  keepaliveCountMax?: number;
  /** Handshake timeout in ms (default 20000). */
  readyTimeout?: number;
  /**
   * Channels (remote commands) open at once on the shared connection (default 4). Keep it at
   * or below the server's MaxSessions (OpenSSH default 10).
   */
  maxConcurrentChannels?: number;
  reconnect?: ReconnectOptions;
  /** Cipher preference (default ssh2's: aes128-gcm@openssh.com first). */
  ciphers?: string[];
  /** Stream read-ahead: stdout bytes buffered before the channel is paused (default 8 MiB). */
  readAheadBytes?: number;
  /** Instrumentation: called when a channel opens or closes, with the number open now. */
  onChannel?: (event: 'open' | 'close', open: number) => void;
}

export type SshScanOptions = ScanOptions;

// ---------------------------------------------------------------------------------------------
// Helpers

class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.active < this.max) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        signal?.removeEventListener('abort', abort);
        resolve();
      };
      const abort = () => {
        const i = this.waiters.indexOf(go);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal!.reason);
      };
      this.waiters.push(go);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }
  release(): void {
    const next = this.waiters.shift();
    if (next)
      next(); // the slot passes to the waiter
    else this.active--;
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', abort, { once: true });
  });

/** How a remote command ended. `lost`: the channel closed without an exit status. */
interface ExitInfo {
  code: number | null;
  signal?: string;
  lost: boolean;
}

/**
 * Reads a channel's stdout chunk by chunk (no copies), pausing the channel when more than
 * `highWater` bytes wait: ssh2 then stops granting window and the remote command blocks.
 */
class ChannelReader {
  private q: (Buffer | undefined)[] = [];
  private head = 0;
  private queued = 0;
  private ended = false;
  private paused = false;
  private wake: (() => void) | null = null;
  constructor(
    private readonly ch: ClientChannel,
    private readonly highWater: number,
  ) {
    ch.on('data', (b: Buffer) => {
      this.q.push(b);
      this.queued += b.length;
      if (this.queued >= this.highWater && !this.paused) {
        this.paused = true;
        ch.pause();
      }
      this.notify();
    });
    const end = () => {
      this.ended = true;
      this.notify();
    };
    ch.on('end', end);
    ch.on('close', end);
  }
  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
  async read(): Promise<Buffer | null> {
    for (;;) {
      if (this.head < this.q.length) {
        const b = this.q[this.head]!;
        this.q[this.head++] = undefined;
        if (this.head > 1024 && this.head * 2 > this.q.length) {
          this.q = this.q.slice(this.head);
          this.head = 0;
        }
        this.queued -= b.length;
        if (this.paused && this.queued <= this.highWater / 4) {
          this.paused = false;
          this.ch.resume();
        }
        return b;
      }
      if (this.ended) return null;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

/** A remote command on its own channel. */
interface RemoteProcess {
  channel: ClientChannel;
  stdout: ChannelReader;
  /** stderr text (the first 64 KiB). */
  stderr(): string;
  /** Resolves when the channel has closed. */
  exit: Promise<ExitInfo>;
}

const STDERR_MAX = 64 * 1024;

function describeExit(x: ExitInfo): string {
  if (x.lost) return 'the connection was lost (no exit status)';
  if (x.code !== null) return `exit status ${x.code}`;
  return `killed by signal ${x.signal ?? '?'}`;
}

function firstLines(s: string, n = 10): string {
  const lines = s.trim().split('\n').filter(Boolean);
  return lines.slice(0, n).join('; ') + (lines.length > n ? `; ... (${lines.length - n} more lines)` : '');
}

/** Splits a byte stream into NUL-terminated fields (latin1 strings, one char per byte). */
class NulFields {
  private carry: Buffer | null = null;
  constructor(private readonly onField: (f: string) => void) {}
  push(chunk: Buffer): void {
    let start = 0;
    const data = chunk;
    if (this.carry) {
      const z = chunk.indexOf(0);
      if (z < 0) {
        this.carry = Buffer.concat([this.carry, chunk]);
        return;
      }
      this.onField(this.carry.toString('latin1') + chunk.toString('latin1', 0, z));
      this.carry = null;
      start = z + 1;
    }
    for (;;) {
      const z = data.indexOf(0, start);
      if (z < 0) break;
      this.onField(data.toString('latin1', start, z));
      start = z + 1;
    }
    if (start < data.length) this.carry = Buffer.from(data.subarray(start));
  }
  /** Bytes after the last NUL (a truncated field), if any. */
  get pending(): number {
    return this.carry?.length ?? 0;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

/** "1700000000.1234567890" -> milliseconds, like Node's stat mtimeMs (sec*1e3 + nsec/1e6). */
export function parseFindTime(s: string): number {
  const neg = s.startsWith('-');
  const [i, f = ''] = (neg ? s.slice(1) : s).split('.');
  const sec = Number(i);
  const nsec = Number((f + '000000000').slice(0, 9));
  if (!Number.isFinite(sec) || !Number.isFinite(nsec)) return NaN;
  return neg ? -(sec * 1e3 + nsec / 1e6) : sec * 1e3 + nsec / 1e6;
}

/** Sort key that orders paths like the local scan: depth first, each directory by name bytes. */
const sortKey = (latin1Name: string) => (latin1Name.includes('/') ? latin1Name.replaceAll('/', '\0') : latin1Name);

const ASCII = /^[\x01-\x7f]*$/;

/** Path fields from a latin1 string of the name bytes (the common all-ASCII case without copies). */
function pathFieldsLatin1(name: string): { path: string; rawPath?: string } {
  return ASCII.test(name) ? { path: name } : pathFields(Buffer.from(name, 'latin1'));
}

/** Unsigned decimal integer in buf[a, b), or -1. */
function decAt(buf: Buffer, a: number, b: number): number {
  if (a >= b) return -1;
  let v = 0;
  for (let i = a; i < b; i++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** Octal integer in buf[a, b), or -1. */
function octAt(buf: Buffer, a: number, b: number): number {
  if (a >= b) return -1;
  let v = 0;
  for (let i = a; i < b; i++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 7) return -1;
    v = v * 8 + c;
  }
  return v;
}

/** find's %T@ ("1700000000.1234567890", maybe negative) in buf[a, b) -> ms like stat's mtimeMs; NaN if malformed. */
function findTimeAt(buf: Buffer, a: number, b: number): number {
  let i = a;
  const neg = buf[i] === 0x2d;
  if (neg) i++;
  let sec = 0;
  let digits = 0;
  for (; i < b && buf[i] !== 0x2e; i++, digits++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 9) return NaN;
    sec = sec * 10 + c;
  }
  if (!digits) return NaN;
  let nsec = 0;
  let f = 0;
  if (i < b) i++; // the '.'
  for (; i < b; i++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 9) return NaN;
    if (f < 9) {
      nsec = nsec * 10 + c;
      f++;
    }
  }
  for (; f < 9; f++) nsec *= 10;
  const ms = sec * 1e3 + nsec / 1e6;
  return neg ? -ms : ms;
}

interface ScanRecord {
  key: string;
  name: string;
  /** find's %y character code. */
  y: number;
  size: number;
  mtimeMs: number;
  mode: number;
  link: string;
  /** "dev:ino" of a regular file with several names. */
  inode?: string;
}

/** Exit statuses and error output of the two scan commands. */
export interface ScanStatus {
  listStatus: number;
  listStderr: string;
  hashStatus: number;
  hashStderr: string;
}

const Y_FILE = 0x66; // f
const Y_DIR = 0x64; // d
const Y_LINK = 0x6c; // l
const SPECIAL_KINDS: Record<string, string> = { p: 'fifo', s: 'socket', b: 'block device', c: 'character device', D: 'door' };

/**
 * Incremental parser of the two scan outputs (LIST_SCRIPT and HASH_SCRIPT, fed in any
 * interleaving, split anywhere). Works on the bytes: only names (and link targets) become
 * strings (latin1, one char per byte). `finish()` returns the entries sorted like the local
 * scan, or throws an Error saying what is wrong.
 */
export class ScanOutputParser {
  private readonly records: ScanRecord[] = [];
  private readonly hashes = new Map<string, string>();
  private error: string | null = null;
  private listCarry: Buffer | null = null;
  private hashCarry: Buffer | null = null;
  private listEnded = false;
  private hashEnded = false;

  private fail(why: string): void {
    this.error ??= why;
  }

  pushListing(chunk: Buffer): void {
    if (this.error || !chunk.length) return;
    const buf = this.listCarry ? Buffer.concat([this.listCarry, chunk]) : chunk;
    let pos = 0;
    const n = buf.length;
    while (pos < n) {
      if (this.listEnded) {
        this.fail('output after the end of the listing');
        return;
      }
      if (buf[pos] === 0x3d && pos + 1 < n && buf[pos + 1] === 0) {
        this.listEnded = true;
        pos += 2;
        continue;
      }
      // one record: 6 NUL-terminated fields (a byte loop: most fields are a few bytes long,
      // shorter than the cost of a native indexOf call)
      let z1 = -1;
      let z2 = -1;
      let z3 = -1;
      let z4 = -1;
      let z5 = -1;
      let i = pos;
      while (i < n && buf[i] !== 0) i++;
      if (i < n) z1 = i++;
      while (i < n && buf[i] !== 0) i++;
      if (i < n && z1 >= 0) z2 = i++;
      while (i < n && buf[i] !== 0) i++;
      if (i < n && z2 >= 0) z3 = i++;
      while (i < n && buf[i] !== 0) i++;
      if (i < n && z3 >= 0) z4 = i++;
      if (z4 < 0) break;
      z5 = buf.indexOf(0, z4 + 1); // the name: may be long
      if (z5 < 0) break;
      i = z5 + 1;
      while (i < n && buf[i] !== 0) i++;
      if (i >= n) break;
      const z6 = i++;
      while (i < n && buf[i] !== 0) i++;
      if (i >= n) break;
      const z7 = i;
      const name = buf.toString('latin1', z4 + 1, z5);
      const size = decAt(buf, z1 + 1, z2);
      const mtimeMs = findTimeAt(buf, z2 + 1, z3);
      const mode = octAt(buf, z3 + 1, z4);
      if (z1 !== pos + 1 || size < 0 || !Number.isFinite(mtimeMs) || mode < 0 || !name) {
        this.fail(`malformed listing record for ${JSON.stringify(name)}`);
        return;
      }
      const link = z6 > z5 + 1 ? buf.toString('latin1', z5 + 1, z6) : '';
      const colon = buf.indexOf(0x3a, z6 + 1);
      const nlink = colon > z6 && colon < z7 ? decAt(buf, z6 + 1, colon) : -1;
      if (nlink < 0) {
        this.fail(`malformed listing record for ${JSON.stringify(name)} (link count)`);
        return;
      }
      const inode = nlink > 1 && buf[pos] === Y_FILE ? buf.toString('latin1', colon + 1, z7) : undefined;
      this.records.push({ key: sortKey(name), name, y: buf[pos]!, size, mtimeMs, mode, link, ...(inode ? { inode } : {}) });
      pos = z7 + 1;
    }
    this.listCarry = pos < n ? Buffer.from(buf.subarray(pos)) : null;
  }

  pushHashes(chunk: Buffer): void {
    if (this.error || !chunk.length) return;
    const buf = this.hashCarry ? Buffer.concat([this.hashCarry, chunk]) : chunk;
    let pos = 0;
    const n = buf.length;
    while (pos < n) {
      const z = buf.indexOf(0, pos);
      if (z < 0) break;
      if (this.hashEnded) {
        this.fail('output after the end of the checksum list');
        return;
      }
      if (z === pos + 1 && buf[pos] === 0x3d) {
        this.hashEnded = true;
        pos = z + 1;
        continue;
      }
      // "<64 hex><space><space|*>./<name>"
      const hex = z >= pos + 69 ? buf.toString('latin1', pos, pos + 64) : '';
      if (
        !HEX64.test(hex) ||
        buf[pos + 64] !== 0x20 ||
        (buf[pos + 65] !== 0x20 && buf[pos + 65] !== 0x2a) ||
        buf[pos + 66] !== 0x2e ||
        buf[pos + 67] !== 0x2f
      ) {
        this.fail(`malformed sha256sum line ${JSON.stringify(buf.toString('latin1', pos, Math.min(z, pos + 200)))}`);
        return;
      }
      this.hashes.set(buf.toString('latin1', pos + 68, z), hex);
      pos = z + 1;
    }
    this.hashCarry = pos < n ? Buffer.from(buf.subarray(pos)) : null;
  }

  /**
   * The manifest, sorted. Files that vanished between the listing and the hashing (one
   * "No such file or directory" line each from sha256sum) are left out, as the local scan
   * does; any other gap or error is an Error.
   */
  finish(st: ScanStatus, onSkipped?: SshScanOptions['onSkipped']): ManifestEntry[] {
    if (this.error) throw new Error(this.error);
    if (st.listStatus !== 0) {
      throw new Error(
        `find exited with status ${st.listStatus} while listing the target: ${firstLines(st.listStderr) || '(no message)'}. ` +
          'Entries it could not read would be missing, so the scan is refused; make them readable by the SSH user (or move them out of the target) and scan again.',
      );
    }
    if (!this.listEnded || this.listCarry) throw new Error('the listing is truncated (no end marker)');
    if (!this.hashEnded || this.hashCarry) throw new Error('the checksum list is truncated (no end marker)');
    const errLines = st.hashStderr.split('\n').filter(Boolean);
    const missing = this.records.filter((r) => r.y === Y_FILE && !this.hashes.has(r.name));
    const vanishedOnly = errLines.length === missing.length && errLines.every((l) => /: No such file or directory$/.test(l));
    if (st.hashStatus !== 0 && !(missing.length > 0 && vanishedOnly)) {
      throw new Error(
        `sha256sum failed (xargs exit status ${st.hashStatus}): ${firstLines(st.hashStderr) || '(no message)'}. ` +
          'Files that cannot be read would have no checksum, so the scan is refused; make them readable by the SSH user and scan again.',
      );
    }
    if (missing.length && !vanishedOnly) {
      throw new Error(
        `${missing.length} files were listed but not hashed (e.g. ${JSON.stringify(missing[0]!.name)}; created during the scan?): ` +
          `${firstLines(st.hashStderr) || 'no error reported'}. Scan again.`,
      );
    }
    const dropped = new Set(missing.map((r) => r.name));
    this.records.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const out: ManifestEntry[] = [];
    const groups = new Map<string, number>(); // "dev:ino" -> link group, numbered in manifest order
    for (const r of this.records) {
      const pf = pathFieldsLatin1(r.name);
      let e: ManifestEntry;
      if (r.y === Y_FILE) {
        if (dropped.has(r.name)) continue; // vanished during the scan
        e = { path: pf.path, mtimeMs: r.mtimeMs, mode: r.mode & 0o7777, type: 'file', size: r.size, sha256: this.hashes.get(r.name)! };
        if (r.inode !== undefined) {
          let g = groups.get(r.inode);
          if (g === undefined) groups.set(r.inode, (g = groups.size + 1));
          e.linkGroup = g;
        }
      } else if (r.y === Y_DIR) {
        e = { path: pf.path, mtimeMs: r.mtimeMs, mode: r.mode & 0o7777, type: 'dir', size: 0 };
      } else if (r.y === Y_LINK) {
        e = { path: pf.path, mtimeMs: r.mtimeMs, mode: r.mode & 0o7777, type: 'symlink', size: 0, ...linkTargetFields(Buffer.from(r.link, 'latin1')) };
      } else {
        const y = String.fromCharCode(r.y);
        onSkipped?.({ ...pf, reason: skipReason(SPECIAL_KINDS[y] ?? `special file (${y})`) });
        continue;
      }
      if (pf.rawPath !== undefined) {
        const { path, ...rest } = e;
        e = { path, rawPath: pf.rawPath, ...rest };
      }
      out.push(e);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Tar stream -> SourceEntry

type TarEvent = { k: 'member'; m: TarMember } | { k: 'data'; b: Buffer } | { k: 'end' } | { k: 'problem'; offset: number; reason: string } | { k: 'eoa' };

/** Pull interface over the push TarParser: parses one input chunk at a time, on demand. */
class TarEvents {
  private evs: TarEvent[] = [];
  private i = 0;
  private eof = false;
  private readonly parser: TarParser;
  constructor(private readonly read: () => Promise<Buffer | null>) {
    this.parser = new TarParser({
      member: (m) => this.evs.push({ k: 'member', m }),
      data: (b) => this.evs.push({ k: 'data', b }),
      memberEnd: () => this.evs.push({ k: 'end' }),
      problem: (offset, reason) => this.evs.push({ k: 'problem', offset, reason }),
      end: () => this.evs.push({ k: 'eoa' }),
    });
  }
  async next(): Promise<TarEvent | null> {
    while (this.i >= this.evs.length) {
      if (this.eof) return null;
      this.evs = [];
      this.i = 0;
      const chunk = await this.read();
      if (chunk === null) {
        this.eof = true;
        return null;
      }
      this.parser.push(chunk);
    }
    return this.evs[this.i++]!;
  }
}

/** tar messages that mean "an entry changed or vanished since the scan" (the writer reports those). */
const TAR_CHANGE_LINE =
  /(: Cannot (stat|open|readlink): (No such file or directory|Not a directory)|: [Ff]ile (changed as we read it|removed before we read it)|: File shrank by \d+ bytes; padding with zeros|Exiting with failure status due to previous errors)$/;

// ---------------------------------------------------------------------------------------------
// The data source

export interface ChannelStats {
  open: number;
  peak: number;
  opened: number;
  connects: number;
}

/** Connections that have closed (a dead client is never handed out). */
const deadClients = new WeakSet<object>();

export class SshDataSource implements DataSource {
  readonly host: string;
  private readonly port: number;
  private readonly maxChannels: number;
  private readonly sem: Semaphore;
  private readonly readAhead: number;
  private client: SshClient | null = null;
  private connecting: Promise<SshClient> | null = null;
  private closed = false;
  private key: { data: Buffer; parsed: ParsedKey; source: string } | null = null;
  private readonly stats: ChannelStats = { open: 0, peak: 0, opened: 0, connects: 0 };

  constructor(private readonly opts: SshDataSourceOptions) {
    if (!opts.host) throw new ConfigError('SshDataSource: host is required.');
    if (!opts.username) throw new ConfigError('SshDataSource: username is required.');
    if (!opts.knownHosts) throw new ConfigError('SshDataSource: knownHosts (path to an OpenSSH known_hosts file) is required; host keys are always pinned.');
    if (!opts.privateKey || (typeof opts.privateKey === 'string' && !opts.privateKey.length)) {
      throw new ConfigError('SshDataSource: privateKey (a key file path or the key) is required; only key authentication is supported.');
    }
    this.host = opts.hostLabel ?? opts.host;
    this.port = opts.port ?? 22;
    this.maxChannels = Math.max(1, Math.floor(opts.maxConcurrentChannels ?? 4));
    this.sem = new Semaphore(this.maxChannels);
    this.readAhead = opts.readAheadBytes ?? 8 * 1024 * 1024;
  }

  /** Channel counters (open now, most open at once, total opened, connections made). */
  channelStats(): ChannelStats {
    return { ...this.stats };
  }

  private get where(): string {
    return `${this.opts.username}@${this.opts.host}:${this.port}`;
  }

  // --- connection ---------------------------------------------------------------------------

  private async loadKey(): Promise<{ data: Buffer; parsed: ParsedKey; source: string }> {
    if (this.key) return this.key;
    const pk = this.opts.privateKey;
    let data: Buffer;
    let source: string;
    if (Buffer.isBuffer(pk)) {
      data = pk;
      source = 'the configured key';
    } else if (/^-----BEGIN /.test(pk.trimStart())) {
      data = Buffer.from(pk);
      source = 'the configured key';
    } else {
      try {
        data = await readFile(pk);
      } catch (e) {
        throw new ConfigError(`cannot read the SSH private key ${pk}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      source = pk;
    }
    const parsed = sshUtils.parseKey(data, this.opts.passphrase);
    if (parsed instanceof Error) throw new ConfigError(`the SSH private key ${source} cannot be used: ${parsed.message}`);
    const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
    if (!key.isPrivateKey()) throw new ConfigError(`${source} is a public key; configure the private key.`);
    this.key = { data, parsed: key, source };
    return this.key;
  }

  private async pinnedKeys(): Promise<KnownHostEntry[]> {
    let text: string;
    try {
      text = await readFile(this.opts.knownHosts, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') text = '';
      else throw new ConfigError(`cannot read known_hosts ${this.opts.knownHosts}: ${code ?? (e as Error).message}`);
    }
    const name = knownHostsName(this.opts.host, this.port);
    return parseKnownHosts(text).filter((e) => e.marker !== '@cert-authority' && hostFieldMatches(e.hosts, name));
  }

  private trustAdvice(keyType: string): string {
    const kh = shellQuote(this.opts.knownHosts);
    const t = keyType.replace(/^ssh-/, '').replace(/^ecdsa-sha2-nistp\d+$/, 'ecdsa');
    const port = this.port === 22 ? '' : `-p ${this.port} `;
    return `ssh-keyscan ${port}-t ${t} ${this.opts.host} >> ${kh}`;
  }

  private hostKeyError(code: HostKeyErrorCode, blob: Buffer, pinned: KnownHostEntry[]): HostKeyError {
    const name = knownHostsName(this.opts.host, this.port);
    const keyType = keyTypeOf(blob);
    const fp = fingerprint(blob);
    const kh = this.opts.knownHosts;
    const details = { host: this.opts.host, port: this.port, keyType, fingerprint: fp, knownHostsPath: kh };
    const hostKeyFile = `/etc/ssh/ssh_host_${keyType.replace(/^ssh-/, '').replace(/^ecdsa-sha2-nistp\d+$/, 'ecdsa')}_key.pub`;
    if (code === 'HOST_KEY_UNKNOWN') {
      return new HostKeyError(
        code,
        `The SSH host key of ${name} is not known: ${kh} has no entry for it. The server offered ${keyType} ${fp}. ` +
          'The connection was refused (host keys are never accepted automatically). To trust this host, check the fingerprint ' +
          `out of band (on the data host: \`ssh-keygen -lf ${hostKeyFile}\`), and if it matches run: ${this.trustAdvice(keyType)}`,
        details,
      );
    }
    if (code === 'HOST_KEY_REVOKED') {
      return new HostKeyError(code, `The SSH host key of ${name} (${keyType} ${fp}) is marked @revoked in ${kh}. The connection was refused.`, details);
    }
    const pins = pinned
      .filter((e) => e.marker !== '@revoked')
      .map((e) => `${keyTypeOf(e.key)} ${fingerprint(e.key)} (line ${e.line})`)
      .join(', ');
    return new HostKeyError(
      code,
      `WARNING: the SSH host key of ${name} has CHANGED. The server offered ${keyType} ${fp}, but ${kh} pins ${pins}. ` +
        'Someone could be intercepting the connection (man-in-the-middle), or the host was reinstalled or its keys rotated. ' +
        'The connection was refused. If the change is expected, check the new fingerprint out of band ' +
        `(on the data host: \`ssh-keygen -lf ${hostKeyFile}\`), remove the old entry with ` +
        `\`ssh-keygen -R ${shellQuote(name)} -f ${shellQuote(kh)}\`, then run: ${this.trustAdvice(keyType)}`,
      details,
    );
  }

  /** One connection attempt. Rejects with HostKeyError, SshAuthError, ConfigError or a network error. */
  private async connectOnce(): Promise<SshClient> {
    const key = await this.loadKey();
    const pinned = await this.pinnedKeys();
    const valid = pinned.filter((e) => e.marker !== '@revoked');
    // Ask first for the key types known_hosts has for this host (as OpenSSH does), so a host
    // with several keys presents the pinned one; any other key is refused below.
    const preferred = [...new Set(valid.flatMap((e) => algorithmsFor(e.keyType)))];
    const hostKeyAlgorithms = [...preferred, ...DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => !preferred.includes(a))];
    let verdict: HostKeyError | null = null;

    const client = new Client();
    const config: ConnectConfig = {
      host: this.opts.host,
      port: this.port,
      username: this.opts.username,
      privateKey: key.data,
      ...(this.opts.passphrase !== undefined ? { passphrase: this.opts.passphrase } : {}),
      tryKeyboard: false,
      agent: undefined,
      keepaliveInterval: this.opts.keepaliveInterval ?? 15_000,
      keepaliveCountMax: this.opts.keepaliveCountMax ?? 4,
      readyTimeout: this.opts.readyTimeout ?? 20_000,
      algorithms: {
        serverHostKey: hostKeyAlgorithms as NonNullable<ConnectConfig['algorithms']>['serverHostKey'],
        ...(this.opts.ciphers ? { cipher: this.opts.ciphers as NonNullable<ConnectConfig['algorithms']>['cipher'] } : {}),
      },
      hostVerifier: (blob: Buffer) => {
        if (pinned.some((e) => e.marker === '@revoked' && e.key.equals(blob))) verdict = this.hostKeyError('HOST_KEY_REVOKED', blob, pinned);
        else if (valid.some((e) => e.key.equals(blob))) return true;
        else verdict = this.hostKeyError(valid.length ? 'HOST_KEY_CHANGED' : 'HOST_KEY_UNKNOWN', blob, pinned);
        return false;
      },
    };
    return new Promise<SshClient>((resolve, reject) => {
      let settled = false;
      client.on('ready', () => {
        settled = true;
        resolve(client);
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (settled) return; // after ready: 'close' follows and marks the connection dead
        settled = true;
        client.end();
        if (verdict) reject(verdict);
        else if (err.level === 'client-authentication') {
          reject(
            new SshAuthError(
              `SSH authentication as ${this.where} failed: the server did not accept the key ${key.source} ` +
                `(${key.parsed.type} ${fingerprint(key.parsed.getPublicSSH())}). Add its public key ` +
                `(\`ssh-keygen -y -f ${key.source === 'the configured key' ? 'KEY' : shellQuote(key.source)}\`) to ` +
                `~${this.opts.username}/.ssh/authorized_keys on the data host, or fix username/privateKey in the configuration.`,
              { host: this.opts.host, port: this.port, username: this.opts.username },
            ),
          );
        } else if (err.level === 'handshake') {
          reject(new ConfigError(`SSH handshake with ${this.where} failed: ${err.message} (no common algorithm?)`));
        } else reject(err);
      });
      client.on('close', () => {
        deadClients.add(client);
        if (this.client === client) this.client = null;
        if (!settled) {
          settled = true;
          reject(verdict ?? new Error('connection closed during the handshake'));
        }
      });
      client.connect(config);
    });
  }

  private async connectWithRetry(): Promise<SshClient> {
    const r = this.opts.reconnect ?? {};
    const attempts = Math.max(1, r.attempts ?? 5);
    let delay = r.initialDelayMs ?? 500;
    const maxDelay = r.maxDelayMs ?? 30_000;
    const factor = r.factor ?? 2;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) {
        await sleep(delay * (0.8 + Math.random() * 0.4));
        delay = Math.min(maxDelay, delay * factor);
      }
      if (this.closed) throw new SourceUnavailableError(`the SSH data source for ${this.where} is closed`);
      try {
        const c = await this.connectOnce();
        this.stats.connects++;
        return c;
      } catch (e) {
        if (e instanceof HostKeyError || e instanceof SshAuthError || e instanceof ConfigError) throw e;
        last = e;
      }
    }
    const msg = last instanceof Error ? last.message : String(last);
    throw new SourceUnavailableError(`cannot connect to ${this.where} (${attempts} attempt${attempts === 1 ? '' : 's'}): ${msg}`);
  }

  /** The shared connection; (re)connects with backoff when there is none. */
  private async connection(): Promise<SshClient> {
    if (this.closed) throw new SourceUnavailableError(`the SSH data source for ${this.where} is closed`);
    if (this.client) return this.client;
    if (!this.connecting) {
      this.connecting = this.connectWithRetry()
        .then((c) => {
          if (this.closed) {
            c.end();
            throw new SourceUnavailableError(`the SSH data source for ${this.where} is closed`);
          }
          if (deadClients.has(c)) throw new SourceUnavailableError(`the connection to ${this.where} closed right after the handshake`);
          this.client = c;
          return c;
        })
        .finally(() => {
          this.connecting = null;
        });
    }
    return this.connecting;
  }

  /** Runs `command` on a new channel, within the channel limit. */
  private async start(command: string, signal?: AbortSignal): Promise<RemoteProcess> {
    await this.sem.acquire(signal);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.sem.release();
    };
    try {
      let channel: ClientChannel | undefined;
      for (let attempt = 0; !channel; attempt++) {
        signal?.throwIfAborted();
        const client = await this.connection();
        try {
          channel = await new Promise<ClientChannel>((resolve, reject) => {
            try {
              client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch)));
            } catch (e) {
              reject(e as Error);
            }
          });
        } catch (e) {
          // The connection died before the command started: a new operation, so reconnect once.
          if (this.client !== client && attempt === 0) continue;
          throw new SourceUnavailableError(`cannot start a command on ${this.where}: ${(e as Error).message}`);
        }
      }
      const ch = channel;
      this.stats.open++;
      this.stats.opened++;
      this.stats.peak = Math.max(this.stats.peak, this.stats.open);
      this.opts.onChannel?.('open', this.stats.open);
      let code: number | null = null;
      let sig: string | undefined;
      let gotExit = false;
      ch.on('exit', (c: number | null, s?: string) => {
        gotExit = true;
        code = c ?? null;
        if (s) sig = s;
      });
      ch.on('error', () => undefined); // surfaced through the exit info / truncated output
      let err = '';
      ch.stderr.on('data', (b: Buffer) => {
        if (err.length < STDERR_MAX) err += b.toString('utf8');
      });
      const exit = new Promise<ExitInfo>((resolve) => {
        ch.once('close', () => {
          this.stats.open--;
          this.opts.onChannel?.('close', this.stats.open);
          release();
          resolve({ code, ...(sig ? { signal: sig } : {}), lost: !gotExit });
        });
      });
      return { channel: ch, stdout: new ChannelReader(ch, this.readAhead), stderr: () => err, exit };
    } catch (e) {
      release();
      throw e;
    }
  }

  // --- scan ---------------------------------------------------------------------------------

  async *scan(path: string, opts: SshScanOptions = {}): AsyncIterable<ManifestEntry> {
    assertTargetPath(path);
    const { signal } = opts;
    const parser = new ScanOutputParser();
    const procs: RemoteProcess[] = [];
    const onAbort = () => {
      for (const p of procs) p.channel.close();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    type Ended = { x: ExitInfo; stderr: string };
    let cause: Ended | null = null; // the first command that failed for sure; the other is stopped
    /** Runs one of the two commands to the end; resolves with its exit status and stderr. */
    const run = async (script: string, push: (b: Buffer) => void, fatal: (x: ExitInfo) => boolean): Promise<Ended> => {
      const proc = await this.start(remoteCommand(script, path), signal);
      procs.push(proc);
      if (signal?.aborted || cause) proc.channel.close();
      for (;;) {
        const b = await proc.stdout.read();
        if (b === null) break;
        push(b);
      }
      const ended = { x: await proc.exit, stderr: proc.stderr() };
      if (!cause && (ended.x.lost || ended.x.signal !== undefined || fatal(ended.x))) {
        cause = ended;
        for (const p of procs) p.channel.close();
      }
      return ended;
    };
    let entries: ManifestEntry[];
    try {
      // Listing and hashing run at once on two channels (one after the other when the
      // channel limit is 1). If one fails the other is stopped.
      const list = run(
        LIST_SCRIPT,
        (b) => parser.pushListing(b),
        (x) => x.code !== 0,
      );
      const hash = run(
        HASH_SCRIPT,
        (b) => parser.pushHashes(b),
        (x) => x.code === 90 || x.code === 126 || x.code === 127,
      );
      const settled = await Promise.allSettled([list, hash]);
      signal?.throwIfAborted();
      for (const r of settled) if (r.status === 'rejected') throw r.reason;
      const [l, h] = settled.map((r) => (r as PromiseFulfilledResult<Ended>).value) as [Ended, Ended];
      const first = cause as Ended | null;
      // When one command failed for sure, the other was stopped by us: judge by the first only.
      for (const { x, stderr } of first ? [first] : [l, h]) {
        if (x.lost || x.signal) {
          throw new RemoteCommandError(
            `scan of ${this.host}:${path} failed, retryable: ${describeExit(x)} before the listing was complete` + (stderr ? ` (${firstLines(stderr)})` : ''),
            x.code,
            stderr,
          );
        }
        if (x.code === 90) {
          throw new RemoteCommandError(`cannot scan ${this.host}:${path}: ${firstLines(stderr) || 'the target cannot be entered'}`, x.code, stderr);
        }
        if (x.code === 126 || x.code === 127) {
          throw new RemoteCommandError(
            `scan of ${this.host}:${path} failed (${describeExit(x)}): ${firstLines(stderr) || '(no message)'}. ` +
              'The data host needs /bin/sh, GNU find, xargs and GNU coreutils (sha256sum --zero).',
            x.code,
            stderr,
          );
        }
      }
      try {
        entries = parser.finish({ listStatus: l.x.code ?? -1, listStderr: l.stderr, hashStatus: h.x.code ?? -1, hashStderr: h.stderr }, opts.onSkipped);
      } catch (e) {
        throw new RemoteCommandError(`scan of ${this.host}:${path} failed: ${(e as Error).message}`, l.x.code || h.x.code, l.stderr + h.stderr);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      for (const p of procs) p.channel.close();
    }
    yield* entries;
  }

  // --- directories (scheduled import) -------------------------------------------------------

  /**
   * Directories exactly `depth` levels below `root` (not following symlinks), as paths
   * relative to it, in the local source's order. Names that are not valid UTF-8 are left out:
   * a target path is a string and could not name them exactly.
   */
  async *listDirectories(root: string, depth: number, opts: { signal?: AbortSignal } = {}): AsyncIterable<string> {
    assertTargetPath(root);
    if (!Number.isInteger(depth) || depth < 1) return;
    const { signal } = opts;
    const proc = await this.start(remoteCommand(LIST_DIRS_SCRIPT, root, String(depth)), signal);
    const onAbort = () => proc.channel.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    const names: string[] = [];
    let ended = false;
    let junk = false;
    const fields = new NulFields((f) => {
      if (ended) junk = true;
      else if (f === '=') ended = true;
      else {
        const b = Buffer.from(f, 'latin1');
        if (isUtf8(b)) names.push(b.toString('utf8'));
      }
    });
    try {
      for (;;) {
        const b = await proc.stdout.read();
        if (b === null) break;
        fields.push(b);
      }
      const x = await proc.exit;
      signal?.throwIfAborted();
      const stderr = proc.stderr();
      if (x.lost || x.signal) {
        throw new RemoteCommandError(`listing directories of ${this.host}:${root} failed, retryable: ${describeExit(x)}`, x.code, stderr);
      }
      if (x.code === 90) throw new RemoteCommandError(`cannot list ${this.host}:${root}: ${firstLines(stderr)}`, x.code, stderr);
      if (x.code !== 0) {
        throw new RemoteCommandError(
          `listing directories of ${this.host}:${root} failed (find ${describeExit(x)}): ${firstLines(stderr) || '(no message)'}`,
          x.code,
          stderr,
        );
      }
      if (!ended || junk || fields.pending) throw new RemoteCommandError(`the directory listing of ${this.host}:${root} is truncated`, x.code, stderr);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      proc.channel.close();
    }
    const key = (n: string) => n.replaceAll('/', '\0');
    names.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    yield* names;
  }

  // --- listing (nothing added since the scan) -------------------------------------------------

  /** Every directory, file and symlink under `path` now (names and types; not special files). */
  async *list(path: string, opts: { signal?: AbortSignal } = {}): AsyncIterable<Pick<SourceEntryFields, 'path' | 'rawPath' | 'type'>> {
    assertTargetPath(path);
    const { signal } = opts;
    const proc = await this.start(remoteCommand(NAMES_SCRIPT, path), signal);
    const onAbort = () => proc.channel.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    const out: Pick<SourceEntryFields, 'path' | 'rawPath' | 'type'>[] = [];
    let type: string | null = null;
    let ended = false;
    let junk = false;
    const fields = new NulFields((f) => {
      if (ended) junk = true;
      else if (type === null && f === '=') ended = true;
      else if (type === null) type = f;
      else {
        if (type === 'f' || type === 'd' || type === 'l') {
          out.push({ ...pathFieldsLatin1(f), type: type === 'f' ? 'file' : type === 'd' ? 'dir' : 'symlink' });
        }
        type = null;
      }
    });
    try {
      for (;;) {
        const b = await proc.stdout.read();
        if (b === null) break;
        fields.push(b);
      }
      const x = await proc.exit;
      signal?.throwIfAborted();
      const stderr = proc.stderr();
      if (x.lost || x.signal) throw new RemoteCommandError(`listing ${this.host}:${path} failed, retryable: ${describeExit(x)}`, x.code, stderr);
      if (x.code === 90) throw new RemoteCommandError(`cannot list ${this.host}:${path}: ${firstLines(stderr)}`, x.code, stderr);
      if (x.code !== 0) {
        throw new RemoteCommandError(`listing ${this.host}:${path} failed (find ${describeExit(x)}): ${firstLines(stderr) || '(no message)'}`, x.code, stderr);
      }
      if (!ended || junk || fields.pending || type !== null) throw new RemoteCommandError(`the listing of ${this.host}:${path} is truncated`, x.code, stderr);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      proc.channel.close();
    }
    yield* out;
  }

  // --- stream -------------------------------------------------------------------------------

  async *stream(path: string, manifest: readonly ManifestEntry[], opts: { signal?: AbortSignal } = {}): AsyncIterable<SourceEntry> {
    assertTargetPath(path);
    const { signal } = opts;
    // A manifest without link groups (scanned by release 0.1, or with no hard links at scan
    // time) stores every name as a file with its content, as that manifest describes it.
    const dereference = !manifest.some((e) => e.linkGroup !== undefined);
    const proc = await this.start(remoteCommand(dereference ? STREAM_SCRIPT_DEREFERENCE : STREAM_SCRIPT, path), signal);
    const ch = proc.channel;
    const onAbort = () => ch.close();
    signal?.addEventListener('abort', onAbort, { once: true });

    // Feed the names (NUL-terminated bytes) to tar's stdin, with back-pressure.
    let feeding = true;
    const feeder = (async () => {
      let batch: Buffer[] = [];
      let bytes = 0;
      const flush = async () => {
        if (!batch.length) return;
        const ok = ch.write(Buffer.concat(batch));
        batch = [];
        bytes = 0;
        if (!ok) await new Promise<void>((r) => ch.once('drain', r).once('close', r));
      };
      const NUL = Buffer.alloc(1);
      batch.push(Buffer.from('.'), NUL); // the root directory first
      for (const e of manifest) {
        if (!feeding) return;
        batch.push(pathBytes(e), NUL);
        bytes += batch[batch.length - 2]!.length + 1;
        if (bytes >= 256 * 1024) await flush();
      }
      await flush();
      ch.end();
    })().catch(() => undefined); // a closed channel shows up on the reading side

    const events = new TarEvents(() => proc.stdout.read());
    const lost = async (what: string): Promise<never> => {
      const x = await proc.exit;
      signal?.throwIfAborted();
      const stderr = proc.stderr();
      throw new RemoteCommandError(
        `streaming ${this.host}:${path} failed, retryable: ${what}; ${describeExit(x)}` + (stderr ? ` (${firstLines(stderr)})` : ''),
        x.code,
        stderr,
      );
    };
    let current = 0; // generation of the member whose content is being read
    let yielded = 0;
    let sawEnd = false;
    let sawRoot = false;
    try {
      for (;;) {
        const ev = await events.next();
        if (ev === null) break;
        if (ev.k === 'problem') await lost(`damaged tar stream at offset ${ev.offset}: ${ev.reason}`);
        if (ev.k === 'eoa') {
          sawEnd = true;
          continue;
        }
        if (ev.k !== 'member') continue; // data of a member the consumer did not read
        const m = ev.m;
        let nameBytes = m.name;
        if (m.typeflag === '5' && nameBytes.length > 1 && nameBytes[nameBytes.length - 1] === 0x2f) nameBytes = nameBytes.subarray(0, -1);
        const isRoot: boolean = !sawRoot && nameBytes.length === 1 && nameBytes[0] === 0x2e; // "./", the first member
        sawRoot ||= isRoot;
        const who = isRoot ? { path: '' } : pathFields(Buffer.from(nameBytes));
        const base = { ...who, mode: m.mode & 0o7777, mtimeMs: m.mtime * 1000 };
        let entry: SourceEntryFields;
        if (isRoot) {
          yield { entry: { ...base, type: m.typeflag === '5' ? 'dir' : 'file', size: 0, root: true } };
          continue;
        }
        if (m.typeflag === '5') entry = { ...base, type: 'dir', size: 0 };
        else if (m.typeflag === '2') entry = { ...base, type: 'symlink', size: 0, ...linkTargetFields(m.linkname) };
        else if (m.typeflag === '0' || m.typeflag === '7') entry = { ...base, type: 'file', size: m.size };
        else if (m.typeflag === '1') entry = { ...base, type: 'file', size: 0, hardLinkOf: pathKey(pathFields(m.linkname)) };
        else continue; // fifo, device...: not yielded, the writer reports it missing
        yielded++;
        if (entry.type !== 'file' || m.size === 0) {
          yield { entry, content: [] };
          continue;
        }
        const gen = ++current;
        const label = JSON.stringify(who.path);
        const content = async function* (): AsyncGenerator<Buffer> {
          for (;;) {
            if (gen !== current) throw new Error(`content of ${label} read after the source moved on`);
            const e = await events.next();
            if (e === null) await lost(`the tar stream ended inside ${label}`);
            else if (e.k === 'data') yield e.b;
            else if (e.k === 'end') return;
            else if (e.k === 'problem') await lost(`damaged tar stream at offset ${e.offset}: ${e.reason}`);
          }
        };
        yield { entry, content: content() };
        current++; // the consumer moved on; unread data of this member is skipped above
      }
      if (!sawEnd) await lost('the tar stream ended before its end-of-archive marker');
      const x = await proc.exit;
      signal?.throwIfAborted();
      const stderr = proc.stderr();
      if (x.lost || x.signal) await lost('the connection closed after the archive');
      if (x.code === 90) {
        throw new RemoteCommandError(`cannot read ${this.host}:${path}: ${firstLines(stderr) || 'the target cannot be entered'}`, x.code, stderr);
      }
      if (x.code === 0 || x.code === 1) return; // 1: "some files differ": the writer's checksums decide
      // 2: tar could not archive some names. Vanished or replaced entries are not yielded and
      // the writer reports them missing (SourceChangedError); anything else is a failure.
      const lines = stderr.split('\n').filter(Boolean);
      const onlyChanges = lines.length > 0 && lines.every((l) => TAR_CHANGE_LINE.test(l));
      if (onlyChanges && yielded < manifest.length) return;
      throw new RemoteCommandError(`remote tar failed on ${this.host}:${path} (${describeExit(x)}): ${firstLines(stderr) || '(no message)'}`, x.code, stderr);
    } finally {
      feeding = false;
      signal?.removeEventListener('abort', onAbort);
      ch.close();
      await feeder;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = this.connecting;
    if (pending) await pending.catch(() => undefined);
    const c = this.client;
    this.client = null;
    if (c) {
      await new Promise<void>((resolve) => {
        c.once('close', () => resolve());
        c.end();
        setTimeout(resolve, 2000).unref();
      });
    }
  }
}

function assertTargetPath(path: string): void {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new ConfigError(`an SSH target path must be absolute on the data host, got ${JSON.stringify(path)}`);
  }
  if (path.includes('\0')) throw new ConfigError('an SSH target path cannot contain a NUL byte');
}
