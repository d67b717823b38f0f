/**
 * Test fixture: a private OpenSSH server (Debian's /usr/sbin/sshd) on a free loopback port,
 * with its own config, host key and authorized user key in a temp dir.
 *
 *   const sshd = await startSshd();
 *   ... new SshDataSource({ host: sshd.host, port: sshd.port, username: sshd.username,
 *                           privateKey: sshd.privateKeyPath, knownHosts: sshd.knownHostsPath })
 *   await sshd.stop();
 *
 * A missing sshd is an error (in CI too), never a skip: `apt-get install -y openssh-server`.
 *
 * The user is the current user (root in the tests and in CI, hence PermitRootLogin
 * prohibit-password). The key files are 0600 in a 0700 dir. StrictModes is off: it checks
 * every directory from authorized_keys up to "/" and refuses any group/world-writable one,
 * which /tmp always is; the fixture's own files are private, so it would add nothing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/local/free-port.ts';

export const SSHD_PATH = '/usr/sbin/sshd';

export type HostKeyType = 'ed25519' | 'ecdsa' | 'rsa';

export interface SshdOptions {
  /** The sshd binary (default /usr/sbin/sshd). */
  sshdPath?: string;
  /** Host keys to generate and serve, in this order (default ['ed25519']). */
  hostKeyTypes?: HostKeyType[];
  /** Extra sshd_config lines (appended). */
  extraConfig?: string[];
  /**
   * Run sshd (and so every session) without these capabilities in the bounding set, via
   * util-linux `setpriv`, e.g. ['dac_override', 'dac_read_search'] so root gets "Permission
   * denied" on a 000 directory like an ordinary user would.
   */
  dropCapabilities?: string[];
}

export interface SshdFixture {
  host: string;
  port: number;
  username: string;
  /** The authorized user key (ed25519, no passphrase). */
  privateKeyPath: string;
  /** A known_hosts file pinning the server's host keys for `[127.0.0.1]:port`. */
  knownHostsPath: string;
  /** The host's (first) public key line: "ssh-ed25519 AAAA... comment". */
  hostPublicKey: string;
  /** Every host public key line, by type. */
  hostPublicKeys: Partial<Record<HostKeyType, string>>;
  /** The temp dir holding config, keys, pid file (removed by stop()). */
  dir: string;
  /** PID of the listening sshd. */
  pid: number;
  /** Lines sshd wrote to stderr so far (LogLevel ERROR). */
  log(): string;
  /** PIDs of the session processes (sshd children and their descendants) alive now. */
  sessionPids(): number[];
  stop(): Promise<void>;
}

export function keygen(path: string, comment: string, type: HostKeyType = 'ed25519'): void {
  const bits = type === 'rsa' ? ['-b', '2048'] : [];
  const r = spawnSync('ssh-keygen', ['-q', '-t', type, ...bits, '-N', '', '-C', comment, '-f', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed (${r.status}): ${r.stderr || r.error?.message}`);
}

/** Descendants of `pid` (children first found by scanning /proc). */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
      // "pid (comm) state ppid ...": comm may contain spaces and parens; take the last ')'
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(rest[1]));
    } catch {
      // the process exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) {
      if (pp === p && !out.includes(c)) {
        out.push(c);
        walk(c);
      }
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForPort(port: number, child: ChildProcess, log: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`sshd exited (${child.exitCode ?? child.signalCode}) before listening: ${log().trim()}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on 127.0.0.1:${port} within ${timeoutMs} ms: ${log().trim()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startSshd(opts: SshdOptions = {}): Promise<SshdFixture> {
  const sshdPath = opts.sshdPath ?? SSHD_PATH;
  try {
    await access(sshdPath, constants.X_OK);
  } catch {
    throw new Error(
      `${sshdPath} not found: the SSH tests need Debian's OpenSSH server. Install it with ` +
        '`apt-get update && apt-get install -y openssh-server` (CI must install it too; these tests never skip).',
    );
  }
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation dir

  const parent = await mkdtemp(join(tmpdir(), 'sshd-fixture-'));
  await chmod(parent, 0o700);
  const dir = join(parent, 'sshd');
  await mkdir(dir, { mode: 0o700 });
  const username = userInfo().username;
  const types = opts.hostKeyTypes?.length ? opts.hostKeyTypes : (['ed25519'] as HostKeyType[]);
  const hostKeys: string[] = [];
  const hostPublicKeys: Partial<Record<HostKeyType, string>> = {};
  for (const t of types) {
    const k = join(dir, `host_${t}`);
    keygen(k, 'fixture-host', t);
    hostKeys.push(k);
    hostPublicKeys[t] = (await readFile(`${k}.pub`, 'utf8')).trim();
  }
  const hostPublicKey = hostPublicKeys[types[0]!]!;
  const userKey = join(dir, 'id_ed25519');
  keygen(userKey, 'fixture-user');
  const authorizedKeys = join(dir, 'authorized_keys');
  await writeFile(authorizedKeys, await readFile(`${userKey}.pub`), { mode: 0o600 });

  const port = await freePort();
  const knownHostsPath = join(dir, 'known_hosts');
  const known = Object.values(hostPublicKeys).map((line) => {
    const [ktype, kdata] = line.split(/\s+/);
    return `[127.0.0.1]:${port} ${ktype} ${kdata}\n`;
  });
  await writeFile(knownHostsPath, known.join(''), { mode: 0o600 });

  const pidFile = join(dir, 'sshd.pid');
  const config = join(dir, 'sshd_config');
  const lines = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    ...hostKeys.map((k) => `HostKey ${k}`),
    `PidFile ${pidFile}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'StrictModes no', // /tmp is world-writable; see the comment at the top
    'PrintMotd no',
    'PrintLastLog no',
    'X11Forwarding no',
    'AllowTcpForwarding no',
    'MaxSessions 32',
    'MaxStartups 64:30:128',
    'LogLevel ERROR',
    ...(opts.extraConfig ?? []),
  ];
  await writeFile(config, lines.join('\n') + '\n', { mode: 0o600 });

  const sshdArgs = ['-D', '-e', '-f', config];
  const [cmd, args] = opts.dropCapabilities?.length
    ? ['setpriv', ['--bounding-set', opts.dropCapabilities.map((c) => `-${c}`).join(','), '--', sshdPath, ...sshdArgs]]
    : [sshdPath, sshdArgs];
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    if (log.length < 1_000_000) log += s;
  });
  const getLog = () => log;
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  try {
    await spawned;
    await waitForPort(port, child, getLog);
  } catch (e) {
    if (child.pid !== undefined && alive(child.pid)) process.kill(child.pid, 'SIGKILL');
    await rm(parent, { recursive: true, force: true });
    throw e;
  }
  const pid = child.pid!;
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    username,
    privateKeyPath: userKey,
    knownHostsPath,
    hostPublicKey,
    hostPublicKeys,
    dir,
    pid,
    log: getLog,
    sessionPids: () => descendants(pid),
    async stop() {
      if (stopped) return;
      stopped = true;
      // Session processes first (sshd forks one per connection; they outlive the listener).
      const sessions = descendants(pid);
      for (const p of sessions) {
        try {
          process.kill(p, 'SIGTERM');
        } catch {
          // gone already
        }
      }
      if (alive(pid)) process.kill(pid, 'SIGTERM');
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000).unref());
      if ((await Promise.race([exited, timeout])) === 'timeout' && alive(pid)) {
        process.kill(pid, 'SIGKILL');
        await exited;
      }
      for (const p of sessions) {
        try {
          if (alive(p)) process.kill(p, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await rm(parent, { recursive: true, force: true });
    },
  };
}

/** True when sshd is installed (for messages; the tests call startSshd and let it throw). */
export function sshdInstalled(): boolean {
  return existsSync(SSHD_PATH);
}

/** The agent's `sshHosts` entry for this server (docs/ssh.md). */
export function sshHostConfig(sshd: SshdFixture): Record<string, unknown> {
  return { address: sshd.host, port: sshd.port, username: sshd.username, privateKey: sshd.privateKeyPath, knownHosts: sshd.knownHostsPath };
}

/** SshDataSource options for this server (tests and benchmarks), plus `extra`. */
export function sshSourceOptions(sshd: SshdFixture, extra: Record<string, unknown> = {}) {
  return { host: sshd.host, port: sshd.port, username: sshd.username, privateKey: sshd.privateKeyPath, knownHosts: sshd.knownHostsPath, ...extra };
}
