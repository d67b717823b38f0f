/**
 * The pure parts of the SSH source (no server needed): quoting, known_hosts matching, the
 * scan output parser (records split at any byte, truncation, vanished files).
 */
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fingerprint, hostFieldMatches, knownHostsName, parseKnownHosts } from '../../src/lib/source/ssh/known-hosts.ts';
import { ScanOutputParser } from '../../src/lib/source/ssh/scan-output.ts';
import { remoteCommand, shellQuote } from '../../src/lib/source/ssh/remote-scripts.ts';

describe('shellQuote / remoteCommand', () => {
  const nasty = ['plain', "it's", '$(touch X)', '`x`', '"; rm -rf / #', 'a\nb', '-rf', "'", "''", "\\'", '', ' ', '*', '!x', '~root', '%s\\n'];
  it.each(nasty)('the shell gets back exactly %j', (s) => {
    const out = execFileSync('/bin/sh', ['-c', `printf '%s' ${shellQuote(s)}`]);
    expect(out.toString()).toBe(s);
  });

  it('passes the path as one argument to a constant script', () => {
    const path = "/tmp/x/$(touch CANARY);'; touch CANARY2 #";
    const out = execFileSync('/bin/sh', ['-c', remoteCommand('printf "%s|%s" "$#" "$1"', path)]);
    expect(out.toString()).toBe(`1|${path}`);
  });
});

describe('known_hosts', () => {
  const key = Buffer.from('\0\0\0\x0bssh-ed25519\0\0\0\x20' + 'k'.repeat(32), 'latin1');
  const b64 = key.toString('base64');

  it('parses entries, markers and comments', () => {
    const e = parseKnownHosts(
      `# comment\n\nhost1,host2 ssh-ed25519 ${b64} c\n@revoked h ssh-ed25519 ${b64}\n@cert-authority *.x ssh-ed25519 ${b64}\nbroken line\n`,
    );
    expect(e.map((x) => [x.line, x.marker ?? '', x.hosts])).toEqual([
      [3, '', 'host1,host2'],
      [4, '@revoked', 'h'],
      [5, '@cert-authority', '*.x'],
    ]);
  });

  it('names hosts like OpenSSH: bare for port 22, [host]:port otherwise, lower case', () => {
    expect(knownHostsName('Data.Example', 22)).toBe('data.example');
    expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });

  it('matches plain, wildcard, negated and hashed patterns', () => {
    expect(hostFieldMatches('a,[10.0.0.1]:2222', '[10.0.0.1]:2222')).toBe(true);
    expect(hostFieldMatches('[10.0.0.1]:2222', '10.0.0.1')).toBe(false);
    expect(hostFieldMatches('*.example', 'data.example')).toBe(true);
    expect(hostFieldMatches('*.example,!bad.example', 'bad.example')).toBe(false);
    expect(hostFieldMatches('DATA.example', 'data.example')).toBe(true);
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[h]:2').digest();
    const hashed = `|1|${salt.toString('base64')}|${hash.toString('base64')}`;
    expect(hostFieldMatches(hashed, '[h]:2')).toBe(true);
    expect(hostFieldMatches(hashed, '[h]:3')).toBe(false);
  });

  it('fingerprints like ssh-keygen -l', () => {
    const line = `ssh-ed25519 ${b64}`;
    const out = execFileSync('ssh-keygen', ['-lf', '-'], { input: line + '\n' }).toString();
    expect(fingerprint(key)).toBe(out.split(/\s+/)[1]);
  });
});

describe('scan output parser', () => {
  const Z = '\0';
  const h = (c: string) => c.repeat(64);
  const meta = (y: string, size: number, t: string, mode: string, name: string, link = '', ids = '1:2049:7') => [y, size, t, mode, name, link, ids].join(Z) + Z;
  const ok = { listStatus: 0, listStderr: '', hashStatus: 0, hashStderr: '' };
  const listing = Buffer.from(
    meta('d', 4096, '1700000000.5000000000', '755', 'd') +
      meta('f', 3, '1700000001.0000000010', '644', 'd/a\nb') +
      meta('f', 0, '1700000002.1234567890', '600', '-rf') +
      meta('l', 7, '1700000003.0000000000', '777', 'link', 'd/a\nb') +
      meta('p', 0, '1700000004.0000000000', '644', 'fifo') +
      meta('f', 1, '1700000005.0000000000', '644', 'd-x') +
      meta('f', 1, '1700000005.0000000000', '644', 'd/hard', '', '2:2049:99') +
      meta('f', 1, '1700000005.0000000000', '644', 'a-hard', '', '2:2049:99') +
      '=' +
      Z,
    'latin1',
  );
  const hashes = Buffer.from(`${h('a')}  ./d/a\nb${Z}${h('b')}  ./-rf${Z}${h('c')}  ./d-x${Z}${h('c')}  ./d/hard${Z}${h('c')}  ./a-hard${Z}=${Z}`, 'latin1');

  it('parses records split at every possible byte and sorts like the local scan', () => {
    let first: unknown;
    for (let cut = 0; cut <= Math.max(listing.length, hashes.length); cut++) {
      const p = new ScanOutputParser();
      const lc = Math.min(cut, listing.length);
      const hc = Math.min(cut, hashes.length);
      p.pushHashes(hashes.subarray(0, hc));
      p.pushListing(listing.subarray(0, lc));
      p.pushListing(listing.subarray(lc));
      p.pushHashes(hashes.subarray(hc));
      const warnings: string[] = [];
      const out = p.finish(ok, (w) => warnings.push(`${w.path}: ${w.reason}`));
      if (cut === 0) first = out;
      else expect(out).toEqual(first);
      expect(warnings).toEqual([expect.stringMatching(/^fifo: skipped: a fifo \(special files are not archived/)]);
    }
    expect((first as { path: string }[]).map((e) => e.path)).toEqual(['-rf', 'a-hard', 'd', 'd/a\nb', 'd/hard', 'd-x', 'link']);
    // two names of one inode: one link group, both with the checksum
    expect(first).toContainEqual({ path: 'a-hard', type: 'file', size: 1, mtimeMs: 1700000005000, mode: 0o644, sha256: h('c'), linkGroup: 1 });
    expect(first).toContainEqual({ path: 'd/hard', type: 'file', size: 1, mtimeMs: 1700000005000, mode: 0o644, sha256: h('c'), linkGroup: 1 });
    expect(first).toContainEqual({ path: 'd-x', type: 'file', size: 1, mtimeMs: 1700000005000, mode: 0o644, sha256: h('c') });
    expect(first).toContainEqual({ path: 'd/a\nb', type: 'file', size: 3, mtimeMs: 1700000001000 + 0.000001, mode: 0o644, sha256: h('a') });
    expect(first).toContainEqual({ path: 'd', type: 'dir', size: 0, mtimeMs: 1700000000500, mode: 0o755 });
    expect(first).toContainEqual({ path: 'link', type: 'symlink', size: 0, mtimeMs: 1700000003000, mode: 0o777, linkTarget: 'd/a\nb' });
  });

  it('refuses a listing or checksum list cut at any point (even with exit status 0)', () => {
    for (let cut = 0; cut < listing.length; cut++) {
      const p = new ScanOutputParser();
      p.pushListing(listing.subarray(0, cut));
      p.pushHashes(hashes);
      expect(() => p.finish(ok), `listing cut at ${cut}`).toThrow();
    }
    for (let cut = 0; cut < hashes.length; cut++) {
      const p = new ScanOutputParser();
      p.pushListing(listing);
      p.pushHashes(hashes.subarray(0, cut));
      expect(() => p.finish(ok), `hashes cut at ${cut}`).toThrow();
    }
  });

  it('reports find and sha256sum failures, and leaves out files that vanished before hashing', () => {
    const run = (hashText: string, st: Partial<typeof ok>) => {
      const p = new ScanOutputParser();
      p.pushListing(Buffer.from(meta('f', 1, '1.0', '644', 'x') + meta('f', 1, '1.0', '644', 'y') + '=' + Z, 'latin1'));
      p.pushHashes(Buffer.from(hashText + '=' + Z, 'latin1'));
      return () => p.finish({ ...ok, ...st });
    };
    const both = `${h('a')}  ./x${Z}${h('b')}  ./y${Z}`;
    const onlyX = `${h('a')}  ./x${Z}`;
    expect(run(both, { listStatus: 1, listStderr: "find: './z': Permission denied" })).toThrow(/find exited with status 1.*Permission denied/);
    expect(run(onlyX, { hashStatus: 123, hashStderr: 'sha256sum: ./y: Permission denied' })).toThrow(/sha256sum failed.*Permission denied/);
    expect(run(onlyX, {})).toThrow(/listed but not hashed/);
    expect(run(`${h('a')}  x${Z}`, {})).toThrow(/malformed sha256sum line/);
    expect(run(onlyX, { hashStatus: 123, hashStderr: 'sha256sum: ./y: No such file or directory\n' })().map((e) => e.path)).toEqual(['x']);
  });

  it('parses find times like Node stat mtimeMs (sec * 1e3 + nsec / 1e6), and refuses a malformed one', () => {
    const mtimeOf = (t: string) => {
      const p = new ScanOutputParser();
      p.pushListing(Buffer.from(meta('d', 0, t, '755', 'x') + '=' + Z, 'latin1'));
      p.pushHashes(Buffer.from('=' + Z, 'latin1'));
      return p.finish(ok)[0]!.mtimeMs;
    };
    expect(mtimeOf('1700000000.1234567890')).toBe(1700000000 * 1e3 + 123456789 / 1e6);
    expect(mtimeOf('0.0000000000')).toBe(0);
    expect(mtimeOf('-1.5000000000')).toBe(-1500);
    expect(() => mtimeOf('x')).toThrow(/malformed listing record/);
  });
});
