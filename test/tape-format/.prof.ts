import { mkdir, mkdtemp, rm, writeFile, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import type { ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { localSource, scanLocalDirectory, writeTargetFile } from '../../src/lib/tape-format/index.ts';
import { PlainFileWriter } from './helpers.ts';
const data = process.argv[2]!;
const manifest: ManifestEntry[] = [];
let t = performance.now();
for await (const e of scanLocalDirectory(data)) manifest.push(e);
console.log('scan', ((performance.now() - t) / 1000).toFixed(2));
const hdr = { tapeName: 'B', fileNumber: 1, taskId: 't', target: { id: 'b', host: 'h', path: data }, scanId: 's', writtenAt: new Date().toISOString(), manifest };
async function srcOnly() { for await (const se of localSource(data, manifest)) { if (se.content) for await (const c of se.content as AsyncIterable<Buffer>) void c; } }
async function srcHash() { for await (const se of localSource(data, manifest)) { const h = createHash('sha256'); if (se.content) for await (const c of se.content as AsyncIterable<Buffer>) h.update(c); h.digest(); } }
async function toNull() { await writeTargetFile({ writer: { write: async () => {} }, header: hdr, source: localSource(data, manifest) }); }
async function toDevNull() { const fh = await open('/dev/null', 'w'); await writeTargetFile({ writer: { write: async (b) => { await fh.write(b); } }, header: hdr, source: localSource(data, manifest) }); await fh.close(); }
async function toFile() { await rm('/tmp/prof.out', { force: true }); const w = await PlainFileWriter.create('/tmp/prof.out'); await writeTargetFile({ writer: w, header: hdr, source: localSource(data, manifest) }); await w.close(); }
function base() { spawnSync('bash', ['-c', `rm -f /tmp/prof.out; time tar cf - -C "${data}" . | tee /tmp/prof.out | openssl sha256 >/dev/null`], { stdio: 'inherit' }); }
function baseNull() { spawnSync('bash', ['-c', `tar cf - -C "${data}" . | tee /dev/null | openssl sha256 >/dev/null`]); }
for (const [n, f] of [['srcOnly', srcOnly], ['srcHash', srcHash], ['toNull', toNull], ['toDevNull', toDevNull], ['baseNull', baseNull], ['toFile', toFile], ['base', base], ['toFile', toFile], ['base', base]] as const) {
  const c0 = process.cpuUsage(); const r0 = (await import('node:process')).resourceUsage();
  t = performance.now(); await (f as any)(); const c = process.cpuUsage(c0);
  console.log(n, 'wall', ((performance.now() - t) / 1000).toFixed(2), 'cpu user', (c.user / 1e6).toFixed(2), 'sys', (c.system / 1e6).toFixed(2));
}
