import type { ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { localSource, scanLocalDirectory, writeTargetFile } from '../../src/lib/tape-format/index.ts';
import { readFileSync } from 'node:fs';
const data = process.argv[2]!;
const manifest: ManifestEntry[] = JSON.parse(readFileSync('/tmp/tfbench-manifest.json', 'utf8'));
const hdr = { tapeName: 'B', fileNumber: 1, taskId: 't', target: { id: 'b', host: 'h', path: data }, scanId: 's', writtenAt: new Date().toISOString(), manifest };
const mode = process.argv[3];
const c0 = process.cpuUsage(); const t = performance.now();
if (mode === 'src') { for await (const se of localSource(data, manifest)) { if (se.content) for await (const c of se.content as AsyncIterable<Buffer>) void c; } }
else await writeTargetFile({ writer: { write: async () => {} }, header: hdr, source: localSource(data, manifest) });
const c = process.cpuUsage(c0);
console.log(mode, 'wall', ((performance.now() - t) / 1000).toFixed(2), 'user', (c.user / 1e6).toFixed(2), 'sys', (c.system / 1e6).toFixed(2));
