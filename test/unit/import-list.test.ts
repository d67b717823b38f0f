import { describe, expect, it } from 'vitest';
import { parseImportList } from '../../src/lib/domain/import-list.ts';

describe('parseImportList', () => {
  it('handles blanks, comments, CRLF, BOM, trailing and doubled slashes, hosts and duplicates', () => {
    const r = parseImportList(
      '\ufeff# header\r\n\r\n/data/a/\r\n/data//b\nsrv-1.example:/data/c/\n/data/a\nsrv-1.example:/data/c\n  # indented comment\n \t \n',
      'dh',
    );
    expect(r.errors).toEqual([]);
    expect(r.entries).toEqual([
      { line: 3, host: 'dh', path: '/data/a' },
      { line: 4, host: 'dh', path: '/data/b' },
      { line: 5, host: 'srv-1.example', path: '/data/c' },
    ]);
    expect(r.duplicates).toEqual([
      { line: 6, firstLine: 3 },
      { line: 7, firstLine: 5 },
    ]);
  });

  it('reports each invalid line with its number', () => {
    const r = parseImportList('/ok\nrel/path\n/a/../b\n/x\u0001y\n/\nbad host!:/p\nh:rel\n', 'dh');
    expect(r.entries.map((e) => e.path)).toEqual(['/ok']);
    expect(r.errors.map((e) => [e.line, e.message])).toEqual([
      [2, expect.stringMatching(/not an absolute path/)],
      [3, expect.stringMatching(/"\.\." segments/)],
      [4, expect.stringMatching(/control character \(0x01 at column 3\)/)],
      [5, expect.stringMatching(/refusing to import \//)],
      [6, expect.stringMatching(/host "bad host!" is not a valid host name/)],
      [7, expect.stringMatching(/"rel" is not an absolute path/)],
    ]);
  });

  it('keeps shell metacharacters as literal path characters', () => {
    const r = parseImportList('/data/a;rm -rf x\n/data/$(touch y)\n/data/`id`\n/data/-dash\n', 'dh');
    expect(r.errors).toEqual([]);
    expect(r.entries.map((e) => e.path)).toEqual(['/data/a;rm -rf x', '/data/$(touch y)', '/data/`id`', '/data/-dash']);
  });

  it('points at lines that are not UTF-8', () => {
    const bytes = Buffer.concat([Buffer.from('/ok\n/bad'), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]);
    const r = parseImportList(bytes, 'dh');
    expect(r.entries).toEqual([]);
    expect(r.errors).toMatchObject([{ line: 2, message: expect.stringMatching(/UTF-8/) }]);
  });

  it('refuses a line with leading or trailing whitespace instead of archiving another directory', () => {
    const r = parseImportList('/data/ok\r\n/data/run \n /data/lead\n/data/tab\t\r\n/data/inner space\n', 'dh');
    expect(r.entries.map((e) => e.path)).toEqual(['/data/ok', '/data/inner space']);
    expect(r.errors.map((e) => [e.line, e.text, e.message])).toEqual([
      [2, '/data/run ', expect.stringMatching(/^ends with whitespace; .*another directory than "\/data\/run"/)],
      [3, ' /data/lead', expect.stringMatching(/^begins with whitespace/)],
      [4, '/data/tab\t', expect.stringMatching(/^ends with whitespace/)],
    ]);
  });

  it('a 5 MB binary file gives a bounded message: the first lines with numbers and a count of the rest', async () => {
    const { randomBytes } = await import('node:crypto');
    const { describeProblems } = await import('../../src/lib/jobs/targets.ts');
    const r = parseImportList(randomBytes(5 * 1024 * 1024), 'dh');
    expect(r.errors.length).toBeGreaterThan(1000);
    expect(r.errors[0]!.message).toMatch(/binary data/);
    expect(r.errors.every((e) => e.text.length <= 123)).toBe(true);
    const msg = describeProblems('data.bin', r.errors);
    expect(msg.split('\n').length).toBeLessThanOrEqual(13);
    expect(msg.length).toBeLessThan(4000);
    expect(msg).toMatch(new RegExp(`and ${r.errors.length - 10} more invalid line`));
  });
});
