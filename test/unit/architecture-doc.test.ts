/**
 * docs/architecture.md cannot go stale silently: every source directory, every job of the
 * registry and every item kind of the catalog table is named in it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JOB_ACCESS } from '../../src/lib/resources/access.ts';

/** Every job of the registry (access.ts declares each one: its type is keyed by the registry's job names). */
const JOB_NAMES = Object.keys(JOB_ACCESS);

const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'architecture.md'), 'utf8');
const dirs = (p: string) =>
  readdirSync(join(import.meta.dirname, '..', '..', p), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => `${p}/${d.name}/`);

describe('docs/architecture.md', () => {
  it('names every source directory', () => {
    for (const d of [...dirs('src').filter((d) => d !== 'src/lib/'), ...dirs('src/lib')]) expect(doc, d).toContain(`\`${d}\``);
  });

  it('names every job', () => {
    for (const job of JOB_NAMES) expect(doc, job).toContain(`\`${job}\``);
  });

  it('names every item kind of the catalog table by its key', () => {
    const prefixes = new Set<string>();
    for (const f of ['items.ts', 'task-status.ts', 'idempotency.ts']) {
      const src = readFileSync(join(import.meta.dirname, '..', '..', 'src', 'lib', 'catalog', f), 'utf8');
      for (const m of src.matchAll(/(?<![\w])pk: `([A-Z]+)#/g)) prefixes.add(m[1]!);
      for (const m of src.matchAll(/(?<![\w])pk: '([A-Z]+)'/g)) prefixes.add(m[1]!);
    }
    expect([...prefixes].sort()).toEqual(['IDEMP', 'ONLINE', 'TAPE', 'TARGET', 'TASK']);
    for (const p of prefixes) expect(doc, p).toMatch(new RegExp('`' + p + '(#|`)'));
  });
});
