/**
 * Properties of the SSH source's parsers: the known_hosts host matcher (plain, hashed,
 * negated entries, any host and port) and the scan-output parser (any names as bytes, any
 * split of the two outputs: the manifest is the same and sorted like the local scan).
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pathBytes } from '../../src/lib/domain/manifest.ts';
import { hostFieldMatches, knownHostsName } from '../../src/lib/source/ssh/known-hosts.ts';
import { ScanOutputParser } from '../../src/lib/source/ssh/scan-output.ts';

const hostArb = fc.oneof(
  fc.domain(),
  fc.ipV4(),
  fc.ipV6().map((h) => h.toLowerCase()),
);
const portArb = fc.oneof(fc.constant(22), fc.integer({ min: 1, max: 65535 }));
const hashed = (name: string, salt: Buffer) => `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;

describe('known_hosts matcher (property)', () => {
  it('a host matches its own plain and hashed entries, and no other host does', () => {
    fc.assert(
      fc.property(hostArb, portArb, hostArb, portArb, fc.uint8Array({ minLength: 20, maxLength: 20 }), (h, p, h2, p2, salt) => {
        const name = knownHostsName(h, p);
        const other = knownHostsName(h2, p2);
        expect(hostFieldMatches(name, name)).toBe(true);
        expect(hostFieldMatches(hashed(name, Buffer.from(salt)), name)).toBe(true);
        expect(hostFieldMatches(`other.invalid,${name}`, name)).toBe(true);
        expect(hostFieldMatches(`*,!${name}`, name)).toBe(false); // a negated entry always wins
        if (other !== name) {
          expect(hostFieldMatches(name, other)).toBe(false);
          expect(hostFieldMatches(hashed(name, Buffer.from(salt)), other)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });
});

// One entry of a generated tree: a relative name of 1-3 components of any bytes but NUL and '/'.
const componentArb = fc.uint8Array({ minLength: 1, maxLength: 12 }).map((b) => Buffer.from(b.map((x) => (x === 0 || x === 0x2f ? 0x61 : x))));
const entryArb = fc.record({
  parts: fc.array(componentArb, { minLength: 1, maxLength: 3 }),
  kind: fc.constantFrom('f', 'd', 'l', 'p'),
  size: fc.integer({ min: 0, max: 1e9 }),
  link: componentArb,
  hash: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
});

describe('scan output parser (property)', () => {
  it('any names, any split of the two outputs: the same manifest, sorted like the local scan', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 20 }), fc.nat(), fc.nat(), (raw, cutA, cutB) => {
        // unique names (a directory listed once)
        const seen = new Set<string>();
        const entries = raw
          .map((e) => ({ ...e, name: Buffer.concat(e.parts.flatMap((p, i) => (i ? [Buffer.from('/'), p] : [p]))) }))
          .filter(
            (e) => !(e.name.length <= 2 && e.name.every((x) => x === 0x2e)) && !seen.has(e.name.toString('latin1')) && seen.add(e.name.toString('latin1')),
          );
        const Z = Buffer.alloc(1);
        const listing = Buffer.concat([
          ...entries.flatMap((e) => [
            Buffer.from(`${e.kind}\0${e.kind === 'f' ? e.size : 4096}\x001700000000.0000000000\x00644\0`, 'latin1'),
            e.name,
            Z,
            e.kind === 'l' ? e.link : Buffer.alloc(0),
            Z,
            Buffer.from('1:2049:7\0', 'latin1'),
          ]),
          Buffer.from('=\0'),
        ]);
        const hashes = Buffer.concat([...entries.filter((e) => e.kind === 'f').flatMap((e) => [Buffer.from(`${e.hash}  ./`), e.name, Z]), Buffer.from('=\0')]);
        const p = new ScanOutputParser();
        const a = cutA % (listing.length + 1);
        const b = cutB % (hashes.length + 1);
        p.pushHashes(hashes.subarray(0, b));
        p.pushListing(listing.subarray(0, a));
        p.pushListing(listing.subarray(a));
        p.pushHashes(hashes.subarray(b));
        const skipped: string[] = [];
        const out = p.finish({ listStatus: 0, listStderr: '', hashStatus: 0, hashStderr: '' }, (s) => skipped.push(s.path));
        const kept = entries.filter((e) => e.kind !== 'p');
        expect(out).toHaveLength(kept.length);
        expect(skipped).toHaveLength(entries.length - kept.length);
        // sorted depth first, each directory by name bytes ('/' sorts before every other byte)
        const key = (n: Buffer) => n.toString('latin1').replaceAll('/', '\0');
        const names = out.map((e) => key(pathBytes(e)));
        expect(names).toEqual([...names].sort());
        for (const e of kept) {
          const got = out.find((o) => pathBytes(o).equals(e.name))!;
          expect(got, e.name.toString('latin1')).toBeDefined();
          expect(got.type).toBe(e.kind === 'f' ? 'file' : e.kind === 'd' ? 'dir' : 'symlink');
          if (e.kind === 'f') expect(got).toMatchObject({ size: e.size, sha256: e.hash });
          if (e.kind === 'l')
            expect(Buffer.from(got.rawLinkTarget ?? Buffer.from(got.linkTarget!, 'utf8').toString('base64'), 'base64').equals(e.link)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
