import { open, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
// isolated: write 1 GiB from memory in chunks of K, with and without concurrent hashing on main thread
const src = Buffer.allocUnsafe(64 * 1024 * 1024); src.fill(7);
for (const [K, hash] of [[1, false], [1, true], [4, true], [0.25, true], [1, false]] as const) {
  await rm('/tmp/p4.out', { force: true });
  const fh = await open('/tmp/p4.out', 'w');
  const n = Math.round(K * 1024 * 1024);
  const t = performance.now(); let pos = 0; let busy = 0;
  const hashing = (async () => { if (!hash) return; const h = createHash('sha256'); for (let i = 0; i < 16; i++) { h.update(src); await new Promise(r => setImmediate(r)); } })();
  const tw = performance.now();
  while (pos < 1024 * 1024 * 1024) { const off = pos % src.length; await fh.write(src, off, Math.min(n, src.length - off), pos); pos += Math.min(n, src.length - off); }
  const w = performance.now() - tw;
  await hashing; await fh.close();
  console.log(`chunk ${K} MiB hash ${hash}: write ${ (w / 1000).toFixed(2)} s total ${((performance.now() - t) / 1000).toFixed(2)}`);
}
await rm('/tmp/p4.out', { force: true });
