import { startSshd } from '../test/support/sshd.ts';
import { SshDataSource } from '../src/lib/source/ssh-source.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawnSync } from 'node:child_process';
const data = '/tmp/scanprof-data';
if (!existsSync(data)) {
  const buf = Buffer.alloc(4096, 7);
  for (let d = 0; d < 100; d++) { const sub = join(data, `d${String(d).padStart(4, '0')}`); await mkdir(sub, { recursive: true }); await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(join(sub, `file-${i}.dat`), buf.subarray(0, 1024 + ((i * 7919) % 3072))))); }
}
const s = await startSshd();
try {
  for (let r = 0; r < 4; r++) {
    const t = performance.now();
    const src = new SshDataSource({ host: s.host, port: s.port, username: s.username, privateKey: s.privateKeyPath, knownHosts: s.knownHostsPath });
    let n = 0; for await (const e of src.scan(data)) n++;
    await src.close();
    const t2 = performance.now();
    const b = spawnSync('bash', ['-c', `time (ssh -p ${s.port} -i ${s.privateKeyPath} -o UserKnownHostsFile=${s.knownHostsPath} -o BatchMode=yes root@127.0.0.1 'find ${data} -type f -print0 | xargs -0 sha256sum' >/dev/null)`], { encoding: 'utf8' });
    const t3 = performance.now();
    console.log(`ours ${((t2 - t) / 1000).toFixed(2)} s (${n}), baseline ${((t3 - t2) / 1000).toFixed(2)} s`);
  }
} finally { await s.stop(); }
