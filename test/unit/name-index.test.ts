/** where_is patterns (domain/name-pattern.ts) and the name index items of a manifest page (catalog/name-index.ts). */
import { describe, expect, it } from 'vitest';
import { nameIndexItems, nameKeys } from '../../src/lib/catalog/name-index.ts';
import type { ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { parseNamePattern, type NamePattern } from '../../src/lib/domain/name-pattern.ts';

const pattern = (p: string): NamePattern => {
  const r = parseNamePattern(p);
  if ('error' in r) throw new Error(r.error);
  return r;
};
const file = (path: string, size = 1): ManifestEntry => ({ path, type: 'file', size, mtimeMs: 0, mode: 0o644, sha256: 'a'.repeat(64) });

describe('where_is patterns', () => {
  it('tells a base name, a relative path and a glob apart, with the literal base name to look up', () => {
    expect(pattern('f.fits')).toMatchObject({ kind: 'name', key: 'f.fits' });
    expect(pattern('raw/f.fits')).toMatchObject({ kind: 'path', key: 'f.fits' });
    expect(pattern('./raw/f.fits')).toMatchObject({ kind: 'path', key: 'f.fits' });
    expect(pattern('*/f.fits')).toMatchObject({ kind: 'glob', key: 'f.fits' });
    expect(pattern('raw/*.fits').key).toBeUndefined();
    expect(pattern('f[0-9].fits').key).toBeUndefined();
  });

  it('matches base names anywhere, paths exactly, globs by base name or by whole path', () => {
    const names = ['f.fits', 'raw/f.fits', 'raw/deep/f.fits', 'raw/g.fits', '.hidden/f.fits', 'raw/f.fits.bak'];
    const hits = (p: string) => names.filter((path) => pattern(p).matches({ path }));
    expect(hits('f.fits')).toEqual(['f.fits', 'raw/f.fits', 'raw/deep/f.fits', '.hidden/f.fits']);
    expect(hits('raw/f.fits')).toEqual(['raw/f.fits']);
    expect(hits('*.fits')).toEqual(['f.fits', 'raw/f.fits', 'raw/deep/f.fits', 'raw/g.fits', '.hidden/f.fits']);
    expect(hits('raw/*.fits')).toEqual(['raw/f.fits', 'raw/g.fits']);
    expect(hits('raw/**/f.fits')).toEqual(['raw/f.fits', 'raw/deep/f.fits']);
    expect(hits('F.FITS')).toEqual([]);
  });

  it('refuses patterns that can match nothing in a target, saying why', () => {
    for (const [p, why] of [
      ['', /it is empty/],
      ['/data/f.fits', /it is absolute/],
      ['raw/../f.fits', /has a "\.\." component/],
      ['raw/', /ends with "\/"/],
      ['a\0b', /NUL byte/],
    ] as const) {
      const r = parseNamePattern(p);
      expect('error' in r && r.error, JSON.stringify(p)).toMatch(why);
    }
  });
});

describe('name index items of a page', () => {
  it('one item per base name, keyed for a Query on the name and sorted by target, scan and page', () => {
    const items = nameIndexItems('t-1', 'scan-a', 7, [file('a/x.dat', 5), file('b/x.dat', 6), file('y.dat')]);
    expect(items.map((i) => [i.pk, i.sk])).toEqual([
      ['NAME#x.dat', 't-1#scan-a#000007#000'],
      ['NAME#y.dat', 't-1#scan-a#000007#000'],
    ]);
    expect(JSON.parse(items[0]!.data as string)).toEqual([
      { p: 'a/x.dat', t: 'file', s: 5, h: 'a'.repeat(64) },
      { p: 'b/x.dat', t: 'file', s: 6, h: 'a'.repeat(64) },
    ]);
    expect(nameKeys.marker('t-1', 'scan-a')).toEqual({ pk: 't-1', sk: 'scan-a~names' });
  });

  it('splits a name with many entries on one page into parts that fit an item', () => {
    const many = Array.from({ length: 5000 }, (_, i) => file(`${'d'.repeat(100)}/${i}/README`));
    const items = nameIndexItems('t-1', 's', 0, many);
    expect(items.length).toBeGreaterThan(1);
    expect(items.map((i) => i.sk)).toEqual(items.map((_, k) => `t-1#s#000000#${String(k).padStart(3, '0')}`));
    for (const i of items) expect(Buffer.byteLength(i.data as string)).toBeLessThan(300_000);
    expect(items.flatMap((i) => JSON.parse(i.data as string)).map((e: { p: string }) => e.p)).toEqual(many.map((e) => e.path));
  });
});
