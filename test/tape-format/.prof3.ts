import type { ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { localSource, writeTargetFile } from '../../src/lib/tape-format/index.ts';
import { readFileSync } from 'node:fs';
import { rm, open } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
const data = process.argv[2]!;
const manifest: ManifestEntry[] = JSON.parse(readFileSync('/tmp/tfbench-manifest.json', 'utf8'));
const hdr = { tapeName: 'B', fileNumber: 1, taskId: 't', target: { id: 'b', host: 'h', path: data }, scanId: 's', writtenAt: new Date().toISOString(), manifest };
for (let run = 0; run < 3; run++) {
  await rm('/tmp/prof.out', { force: true });
  const fh = await open('/tmp/prof.out', 'w');
  let inWrite = 0, pos = 0, n = 0, idle = 0, lastEnd = performance.now();
  const c0 = process.cpuUsage(); const t = performance.now(); const e0 = performance.eventLoopUtilization();
  await writeTargetFile({ writer: { write: async (b) => { const s = performance.now(); idle += s - lastEnd; await fh.write(b, 0, b.length, pos); pos += b.length; n++; lastEnd = performance.now(); inWrite += lastEnd - s; } }, header: hdr, source: localSource(data, manifest) });
  await fh.close();
  const c = process.cpuUsage(c0);
  const elu = performance.eventLoopUtilization(e0); console.log('main busy', (elu.active/1000).toFixed(2), 'ELU', elu.utilization.toFixed(2)); console.log('ours wall', ((performance.now() - t) / 1000).toFixed(2), 'in write', (inWrite / 1000).toFixed(2), 'writer idle', (idle/1000).toFixed(2), 'writes', n, 'user', (c.user / 1e6).toFixed(2), 'sys', (c.system / 1e6).toFixed(2));
  const t2 = performance.now();
  spawnSync('bash', ['-c', `rm -f /tmp/prof.out; time tar cf - -C "${data}" . | tee /tmp/prof.out | openssl sha256 >/dev/null`], {stdio: 'inherit'});
  console.log('base wall', ((performance.now() - t2) / 1000).toFixed(2));
}
