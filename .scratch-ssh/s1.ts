import { startSshd } from '../test/support/sshd.ts';
import { SshDataSource } from '../src/lib/source/ssh-source.ts';
import { scanLocalDirectory, writeTargetFile } from '../src/lib/tape-format/index.ts';
import { makeSampleTree, PlainFileWriter } from '../test/tape-format/helpers.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
const s = await startSshd();
const work = await mkdtemp(join(tmpdir(), 's1-'));
const root = join(work, 'tree');
await makeSampleTree(root);
const src = new SshDataSource({ host: s.host, port: s.port, username: s.username, privateKey: s.privateKeyPath, knownHosts: s.knownHostsPath });
try {
  const remote = []; for await (const e of src.scan(root)) remote.push(e);
  const local = []; for await (const e of scanLocalDirectory(root)) local.push(e);
  console.log(remote.length, local.length);
  for (let i = 0; i < local.length; i++) { const a = remote[i], b = local[i]; const same = JSON.stringify({...a, mtimeMs: 0}) === JSON.stringify({...b, mtimeMs: 0}); if (!same || a.mtimeMs !== b.mtimeMs) console.log('DIFF', a, b); }
  const out = join(work, 'out.tar');
  const w = await PlainFileWriter.create(out);
  const r = await writeTargetFile({ writer: w, header: { tapeName: 'T', fileNumber: 1, taskId: 't', target: { id: 'x', host: 'h', path: root }, scanId: 's', writtenAt: new Date().toISOString(), manifest: remote }, source: src.stream(root, remote) });
  await w.close();
  console.log('bytes', r.bytes, r.trailer.fileCount);
  console.log(execFileSync('tar', ['-tvf', out]).toString().split('\n').slice(0, 40).join('\n'));
  console.log(src.channelStats());
} finally { await src.close(); await s.stop(); await rm(work, { recursive: true, force: true }); }
