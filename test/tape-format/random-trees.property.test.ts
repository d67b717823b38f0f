/**
 * Property: for any directory tree (random byte names, nested directories, symlinks with
 * random byte targets, hard links, empty files, odd modes and times), scanning it, writing it
 * to the virtual tape and reading it back verifies, and GNU tar extracts exactly the same tree
 * (names, content, mode, mtime, the root's too, link targets as bytes, hard links as links) in
 * LC_ALL=C and C.UTF-8. fast-check prints the seed and the shrunk tree of a failure.
 */
import { link, mkdir, mkdtemp, rm, symlink, utimes, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualTapeLibrary } from '../../src/lib/tape/virtual-library.ts';
import { FORMAT, readTargetFile, writeLabel, writeTargetFile } from '../../src/lib/tape-format/index.ts';
import { localSource, scanLocalDirectory } from '../../src/lib/source/local-directory.ts';
import { listLocalDirectory } from '../../src/lib/source/local-directory.ts';
import { pathBytes, type ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { expectFaithful, snapshotTree } from '../support/tree-snapshot.ts';

type Node =
  | { kind: 'file'; name: Buffer; content: Uint8Array; mode: number; mtime: number }
  | { kind: 'dir'; name: Buffer; children: Node[]; mode: number; mtime: number }
  | { kind: 'symlink'; name: Buffer; target: Buffer }
  | { kind: 'hardlink'; name: Buffer; of: number };

// A name: 1-120 bytes (often over 100: pax path headers), any byte but NUL and '/', never "." or "..".
const nameArb = fc
  .oneof(fc.uint8Array({ minLength: 1, maxLength: 12 }), fc.uint8Array({ minLength: 95, maxLength: 120 }))
  .map((b) => Buffer.from(b.map((x) => (x === 0 || x === 0x2f ? 0x5f : x))))
  .filter((b) => !(b.length <= 2 && b.every((x) => x === 0x2e)));
const modeArb = fc.constantFrom(0o755, 0o750, 0o700, 0o644, 0o640, 0o600, 0o444, 0o2755, 0o1777);
const fileModeArb = fc.constantFrom(0o644, 0o640, 0o600, 0o444, 0o755, 0o700, 0o4755);
// whole seconds from 1971 to 2100 (tar keeps whole seconds)
const mtimeArb = fc.integer({ min: 31_536_000, max: 4_102_444_800 });
const linkTargetArb = fc
  .oneof(fc.uint8Array({ minLength: 1, maxLength: 20 }), fc.uint8Array({ minLength: 95, maxLength: 150 }))
  .map((b) => Buffer.from(b.map((x) => (x === 0 ? 0x61 : x))));

const nodeArb = fc.letrec<{ node: Node; dir: Node }>((tie) => ({
  node: fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('file' as const),
        name: nameArb,
        content: fc.uint8Array({ maxLength: 3000 }),
        mode: fileModeArb,
        mtime: mtimeArb,
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('symlink' as const), name: nameArb, target: linkTargetArb }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('hardlink' as const), name: nameArb, of: fc.nat() }) },
    { weight: 2, arbitrary: tie('dir') },
  ),
  dir: fc.record({
    kind: fc.constant('dir' as const),
    name: nameArb,
    children: fc.uniqueArray(tie('node'), { maxLength: 6, selector: (n) => (n as Node).name.toString('latin1') }),
    mode: modeArb,
    mtime: mtimeArb,
  }),
})).node;

// The target root: a directory with several entries.
const treeArb = fc.record({
  kind: fc.constant('dir' as const),
  name: fc.constant(Buffer.from('root')),
  children: fc.uniqueArray(nodeArb, { minLength: 3, maxLength: 12, selector: (n) => n.name.toString('latin1') }),
  mode: modeArb,
  mtime: mtimeArb,
});

const SLASH = Buffer.from('/');

/** Creates the tree under `root` (the root's own name is ignored); returns it for the report. */
async function materialize(root: string, tree: Extract<Node, { kind: 'dir' }>): Promise<void> {
  const files: Buffer[] = [];
  const links: { at: Buffer; of: number }[] = [];
  const dirs: { at: Buffer; mode: number; mtime: number }[] = [];
  const make = async (at: Buffer, node: Node): Promise<void> => {
    if (node.kind === 'dir') {
      await mkdir(at);
      for (const c of node.children) await make(Buffer.concat([at, SLASH, c.name]), c);
      dirs.push({ at, mode: node.mode, mtime: node.mtime });
    } else if (node.kind === 'file') {
      await writeFile(at, node.content);
      await chmod(at, node.mode);
      await utimes(at, node.mtime, node.mtime);
      files.push(at);
    } else if (node.kind === 'symlink') {
      await symlink(node.target, at);
    } else {
      links.push({ at, of: node.of });
    }
  };
  const rootBytes = Buffer.from(root);
  await mkdir(rootBytes);
  for (const c of tree.children) await make(Buffer.concat([rootBytes, SLASH, c.name]), c);
  // hard links to some earlier file (a plain file when there is none)
  for (const l of links) {
    if (files.length) await link(files[l.of % files.length]!, l.at);
    else await writeFile(l.at, 'no file to link to');
  }
  // directory modes and times last, deepest first (creating entries changes a directory's mtime)
  for (const d of [...dirs, { at: rootBytes, mode: tree.mode, mtime: tree.mtime }]) {
    await chmod(d.at, d.mode);
    await utimes(d.at, d.mtime, d.mtime);
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'random-trees-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('random directory trees', () => {
  it('archive to the virtual tape, verify, and come back identical from GNU tar', async () => {
    let n = 0;
    // what the generated trees covered, so that a generator that went dull fails the test
    const seen = { entries: 0, hardLinks: 0, symlinks: 0, nonUtf8Names: 0, longNames: 0, dirs: 0 };
    await fc.assert(
      fc.asyncProperty(treeArb, async (tree) => {
        const dir = join(work, `case-${++n}`);
        const root = join(dir, 'src');
        await mkdir(dir);
        try {
          await materialize(root, tree as Extract<Node, { kind: 'dir' }>);
          const before = await snapshotTree(root);
          const manifest: ManifestEntry[] = await collect(scanLocalDirectory(root));
          seen.entries += manifest.length;
          seen.hardLinks += [...before.entries.values()].filter((e) => e.hardLinks).length;
          seen.symlinks += manifest.filter((e) => e.type === 'symlink').length;
          seen.dirs += manifest.filter((e) => e.type === 'dir').length;
          seen.nonUtf8Names += manifest.filter((e) => e.rawPath !== undefined).length;
          seen.longNames += manifest.filter((e) => pathBytes(e).length > 100).length;

          const lib = new VirtualTapeLibrary(join(dir, 'vtl'));
          await lib.createTape('P1', { capacityBytes: 1024 ** 3 });
          const drive = lib.drive('vtl0');
          await drive.load('P1');
          await drive.rewind();
          let w = await drive.openWriter();
          await writeLabel(w, { format: FORMAT, tapeName: 'P1', barcode: 'P00001L9', createdAt: new Date().toISOString(), blockSize: lib.blockSize });
          await w.close();
          w = await drive.openWriter();
          await writeTargetFile({
            writer: w,
            header: {
              tapeName: 'P1',
              fileNumber: 1,
              taskId: `t${n}`,
              target: { id: 'x', host: 'h', path: root },
              scanId: 's',
              writtenAt: new Date().toISOString(),
              manifest,
            },
            source: localSource(root, manifest),
            listing: () => listLocalDirectory(root),
          });
          await w.close();

          await drive.seekFile(1);
          const report = await readTargetFile(drive.readFile(), { targetId: 'x', manifest });
          expect(report.bad).toEqual([]);
          expect(report.ok).toBe(true);
          await expectFaithful(lib.tapeFilePath('P1', 1), before, (a, b, what) => expect(a, what).toEqual(b));
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 40 },
    );
    for (const [k, v] of Object.entries(seen)) expect(v, `generated ${k}`).toBeGreaterThan(k === 'entries' ? 300 : 10);
  }, 300_000);
});
