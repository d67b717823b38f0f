/**
 * Host key pinning and key authentication against a real sshd serving ed25519, ecdsa and rsa
 * host keys: unknown and changed keys are refused with a HostKeyError that says how to trust
 * the host; plain, hashed and wildcard known_hosts entries of each key type are accepted; a
 * wrong user key is a clear SshAuthError.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/lib/errors.ts';
import { SourceUnavailableError } from '../../src/lib/source/data-source.ts';
import { HostKeyError, SshAuthError } from '../../src/lib/source/ssh-source.ts';
import { keygen, startSshd, type SshdFixture } from '../support/sshd.ts';
import { collect, sourceFor } from './helpers.ts';

let sshd: SshdFixture;
let work: string;
let target: string;
let n = 0;

beforeAll(async () => {
  sshd = await startSshd({ hostKeyTypes: ['ed25519', 'ecdsa', 'rsa'] });
  work = await mkdtemp(join(tmpdir(), 'ssh-hostkeys-test-'));
  target = join(work, 'target');
  await mkdir(target);
  await writeFile(join(target, 'file'), 'hello\n');
});

afterAll(async () => {
  await sshd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Writes a known_hosts file with these lines and returns its path. */
async function knownHosts(...lines: string[]): Promise<string> {
  const p = join(work, `known_hosts.${++n}`);
  await writeFile(p, lines.map((l) => l + '\n').join(''), { mode: 0o600 });
  return p;
}

const keyOf = (line: string) => line.split(/\s+/).slice(0, 2).join(' ');
const hostPort = () => `[127.0.0.1]:${sshd.port}`;

/** The fingerprint OpenSSH prints for a public key line. */
function sshFingerprint(pubLine: string): string {
  const out = execFileSync('ssh-keygen', ['-lf', '-'], { input: pubLine + '\n' }).toString();
  return out.split(/\s+/)[1]!;
}

async function scanWith(knownHostsPath: string, extra = {}) {
  const src = sourceFor(sshd, { knownHosts: knownHostsPath, reconnect: { attempts: 1 }, ...extra });
  try {
    return await collect(src.scan(target));
  } finally {
    await src.close();
  }
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (!(e instanceof Error)) throw new Error('expected a failure');
  return e;
}

describe('host key pinning', () => {
  it('accepts the host when known_hosts pins its key ([host]:port, plain entry)', async () => {
    const m = await scanWith(sshd.knownHostsPath);
    expect(m.map((e) => e.path)).toEqual(['file']);
  });

  it('refuses an unknown host (empty known_hosts) with HOST_KEY_UNKNOWN, the fingerprint and how to trust it', async () => {
    const e = await failure(scanWith(await knownHosts()));
    expect(e).toBeInstanceOf(HostKeyError);
    expect(e).not.toBeInstanceOf(SourceUnavailableError); // not retryable
    const h = e as HostKeyError;
    expect(h.code).toBe('HOST_KEY_UNKNOWN');
    expect(h.details.fingerprint).toBe(sshFingerprint(sshd.hostPublicKeys.ed25519!));
    expect(h.message).toContain(h.details.fingerprint);
    expect(h.message).toContain(`ssh-keyscan -p ${sshd.port} -t ed25519 127.0.0.1 >> `);
    expect(h.message).toMatch(/out of band/);
    expect(h.message).toMatch(/never accepted automatically/);
  });

  it('a missing known_hosts file means unknown, not trusted', async () => {
    const e = await failure(scanWith(join(work, 'does-not-exist')));
    expect((e as HostKeyError).code).toBe('HOST_KEY_UNKNOWN');
  });

  it('pins the port: the right key for another port or for port 22 does not count', async () => {
    const kh = await knownHosts(`[127.0.0.1]:1 ${keyOf(sshd.hostPublicKey)}`, `127.0.0.1 ${keyOf(sshd.hostPublicKey)}`);
    const e = await failure(scanWith(kh));
    expect((e as HostKeyError).code).toBe('HOST_KEY_UNKNOWN');
  });

  it('refuses a changed key with HOST_KEY_CHANGED, naming both fingerprints and how to replace the entry', async () => {
    const other = join(work, 'other_host_key');
    keygen(other, 'impostor');
    const otherLine = (await readFile(`${other}.pub`, 'utf8')).trim();
    const kh = await knownHosts(`${hostPort()} ${keyOf(otherLine)}`);
    const e = await failure(scanWith(kh));
    expect(e).toBeInstanceOf(HostKeyError);
    const h = e as HostKeyError;
    expect(h.code).toBe('HOST_KEY_CHANGED');
    expect(h.message).toContain('CHANGED');
    expect(h.message).toContain(sshFingerprint(sshd.hostPublicKeys.ed25519!)); // offered
    expect(h.message).toContain(sshFingerprint(otherLine)); // pinned
    expect(h.message).toContain(`ssh-keygen -R '${hostPort()}'`);
    expect(h.message).toContain(`ssh-keyscan -p ${sshd.port}`);
  });

  it('a changed rsa key is refused too (the server is asked for the pinned type)', async () => {
    const other = join(work, 'other_rsa');
    keygen(other, 'impostor', 'rsa');
    const kh = await knownHosts(`${hostPort()} ${keyOf((await readFile(`${other}.pub`, 'utf8')).trim())}`);
    const e = await failure(scanWith(kh));
    expect((e as HostKeyError).code).toBe('HOST_KEY_CHANGED');
    expect((e as HostKeyError).details.keyType).toBe('ssh-rsa');
  });

  it('accepts hashed known_hosts entries (ssh-keygen -H)', async () => {
    const kh = await knownHosts(`${hostPort()} ${keyOf(sshd.hostPublicKey)}`);
    execFileSync('ssh-keygen', ['-H', '-f', kh], { stdio: 'ignore' });
    const text = await readFile(kh, 'utf8');
    expect(text).toMatch(/^\|1\|[^|]+\|[^ ]+ ssh-ed25519 /m);
    expect(text).not.toContain('127.0.0.1');
    expect((await scanWith(kh)).length).toBe(1);
    // and a hashed entry with another key is a change, not unknown
    const other = join(work, 'other_hashed');
    keygen(other, 'impostor');
    const kh2 = await knownHosts(`${hostPort()} ${keyOf((await readFile(`${other}.pub`, 'utf8')).trim())}`);
    execFileSync('ssh-keygen', ['-H', '-f', kh2], { stdio: 'ignore' });
    expect(((await failure(scanWith(kh2))) as HostKeyError).code).toBe('HOST_KEY_CHANGED');
  });

  it.each(['ecdsa', 'rsa', 'ed25519'] as const)('accepts a host pinned only by its %s key', async (t) => {
    const kh = await knownHosts(`${hostPort()} ${keyOf(sshd.hostPublicKeys[t]!)}`);
    expect((await scanWith(kh)).length).toBe(1);
  });

  it('matches wildcard patterns and honours negation', async () => {
    const ok = await knownHosts(`[127.0.0.?]:${sshd.port},other.example ${keyOf(sshd.hostPublicKey)}`);
    expect((await scanWith(ok)).length).toBe(1);
    const negated = await knownHosts(`[127.0.0.*]:${sshd.port},!${hostPort()} ${keyOf(sshd.hostPublicKey)}`);
    expect(((await failure(scanWith(negated))) as HostKeyError).code).toBe('HOST_KEY_UNKNOWN');
  });

  it('refuses a key marked @revoked', async () => {
    const kh = await knownHosts(`@revoked ${hostPort()} ${keyOf(sshd.hostPublicKey)}`);
    const e = await failure(scanWith(kh));
    expect((e as HostKeyError).code).toBe('HOST_KEY_REVOKED');
  });
});

describe('user key authentication', () => {
  it('a key the server does not know is a clear SshAuthError (not retried)', async () => {
    const wrong = join(work, 'wrong_user_key');
    keygen(wrong, 'not-authorized');
    const t0 = Date.now();
    const e = await failure(scanWith(sshd.knownHostsPath, { privateKey: wrong, reconnect: { attempts: 5, initialDelayMs: 2000 } }));
    expect(Date.now() - t0).toBeLessThan(1500); // no backoff: retrying cannot help
    expect(e).toBeInstanceOf(SshAuthError);
    expect(e).not.toBeInstanceOf(SourceUnavailableError);
    expect((e as SshAuthError).code).toBe('SSH_AUTH_FAILED');
    expect(e.message).toContain(`${sshd.username}@127.0.0.1:${sshd.port}`);
    expect(e.message).toContain(wrong);
    expect(e.message).toMatch(/authorized_keys/);
  });

  it('the key may be given as a Buffer', async () => {
    const m = await scanWith(sshd.knownHostsPath, { privateKey: await readFile(sshd.privateKeyPath) });
    expect(m.length).toBe(1);
  });

  it('an unreadable or invalid key file is a ConfigError', async () => {
    expect(await failure(scanWith(sshd.knownHostsPath, { privateKey: join(work, 'no-key') }))).toBeInstanceOf(ConfigError);
    const junk = join(work, 'junk-key');
    await writeFile(junk, 'not a key');
    expect(await failure(scanWith(sshd.knownHostsPath, { privateKey: junk }))).toBeInstanceOf(ConfigError);
  });
});
