/**
 * One shared SSH connection to a data host (ssh2): key authentication only, pinned host keys
 * (known_hosts; refused with the fingerprint and the steps to trust it), keep-alive,
 * reconnection with backoff, and channels bounded by maxConcurrentChannels.
 */
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig, ParsedKey } from 'ssh2';
import { ConfigError, errorMessage } from '../../errors.ts';
import { SourceUnavailableError, type ScanOptions } from '../data-source.ts';
import { retry, Semaphore } from '../../concurrency.ts';
import { ChannelReader, STDERR_MAX, type ExitInfo, type RemoteProcess } from './channel.ts';
import { HostKeyError, SshAuthError, type HostKeyErrorCode } from './errors.ts';
import {
  algorithmsFor,
  DEFAULT_HOST_KEY_ALGORITHMS,
  fingerprint,
  keyTypeOf,
  knownHostsName,
  parseKnownHosts,
  hostFieldMatches,
  type KnownHostEntry,
} from './known-hosts.ts';
import { shellQuote } from './remote-scripts.ts';

const { Client, utils: sshUtils } = ssh2;
type SshClient = InstanceType<typeof Client>;

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
// The data source

export interface ChannelStats {
  open: number;
  peak: number;
  opened: number;
  connects: number;
}

/** Connections that have closed (a dead client is never handed out). */
const deadClients = new WeakSet<object>();

export class SshConnection {
  /** The name the source reports as its host. */
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
        throw new ConfigError(`cannot read the SSH private key ${pk}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
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
      else throw new ConfigError(`cannot read known_hosts ${this.opts.knownHosts}: ${code ?? errorMessage(e)}`);
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
    const closed = () => new SourceUnavailableError(`the SSH data source for ${this.where} is closed`);
    // Host keys, user keys and configuration need an operator, not another attempt.
    const operatorNeeded = (e: unknown) =>
      e instanceof HostKeyError || e instanceof SshAuthError || e instanceof ConfigError || e instanceof SourceUnavailableError;
    let last: unknown;
    try {
      return await retry(
        async () => {
          if (this.closed) throw closed();
          const c = await this.connectOnce();
          this.stats.connects++;
          return c;
        },
        { attempts, initialDelayMs: r.initialDelayMs ?? 500, maxDelayMs: r.maxDelayMs ?? 30_000, factor: r.factor ?? 2, retryable: (e) => !operatorNeeded(e) },
      );
    } catch (e) {
      if (operatorNeeded(e)) throw e;
      last = e;
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
  async start(command: string, signal?: AbortSignal): Promise<RemoteProcess> {
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
          throw new SourceUnavailableError(`cannot start a command on ${this.where}: ${errorMessage(e)}`);
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
