/**
 * Connection failures, through a TCP proxy that cuts the connection after N bytes: a scan or
 * stream that loses its connection throws SourceUnavailableError (never a partial manifest,
 * never a silent success), the next operation reconnects (with backoff while the host is
 * down), and the stream applies back-pressure instead of buffering the target.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { SourceUnavailableError } from '../../src/lib/source/data-source.ts';
import type { SshDataSource, SshDataSourceOptions } from '../../src/lib/source/ssh-source.ts';
import { SourceChangedError, type SourceEntry } from '../../src/lib/tape-format/index.ts';
import { scanLocalDirectory } from '../../src/lib/source/local-directory.ts';
import { startSshd, type SshdFixture } from '../support/sshd.ts';
import { archiveTo, collect, sourceFor } from './helpers.ts';
import { CutProxy } from './proxy.ts';

let sshd: SshdFixture;
let proxy: CutProxy;
let work: string;
let knownHostsPath: string;
let manyRoot: string;
let bigRoot: string;
const MiB = 1024 * 1024;

beforeAll(async () => {
  sshd = await startSshd();
  proxy = await CutProxy.start(sshd.port);
  work = await mkdtemp(join(tmpdir(), 'ssh-disconnect-test-'));
  // the source connects to the proxy's port, so pin the host key for that port
  knownHostsPath = join(work, 'known_hosts');
  const [t, k] = sshd.hostPublicKey.split(/\s+/);
  await writeFile(knownHostsPath, `[127.0.0.1]:${proxy.port} ${t} ${k}\n`, { mode: 0o600 });

  // many entries with long names: several MB of listing output
  manyRoot = join(work, 'many');
  for (let d = 0; d < 20; d++) {
    const dir = join(manyRoot, `directory-with-a-long-name-${d}`);
    await mkdir(dir, { recursive: true });
    for (let f = 0; f < 300; f++) await writeFile(join(dir, `file-${'x'.repeat(80)}-${f}`), `${d}-${f}`);
  }
  // a few small files and one 64 MiB file
  bigRoot = join(work, 'big');
  await mkdir(bigRoot);
  for (let i = 0; i < 5; i++) await writeFile(join(bigRoot, `a${i}`), `small ${i}\n`);
  const big = Buffer.alloc(64 * MiB);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  await writeFile(join(bigRoot, 'm-big.bin'), big);
});

afterAll(async () => {
  await proxy?.close();
  await sshd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

function viaProxy(extra: Partial<SshDataSourceOptions> = {}): SshDataSource {
  return sourceFor(sshd, { port: proxy.port, knownHosts: knownHostsPath, ...extra });
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (!(e instanceof Error)) throw new Error('expected a failure');
  return e;
}

/** Reads every entry and its content, like a writer that only counts. */
async function drain(it: AsyncIterable<SourceEntry>): Promise<number> {
  let bytes = 0;
  for await (const se of it) {
    if (se.content) for await (const c of se.content as AsyncIterable<Buffer>) bytes += c.length;
  }
  return bytes;
}

describe('disconnects', () => {
  it('a connection cut mid-scan is SourceUnavailableError (no partial manifest); the next scan reconnects', async () => {
    const src = viaProxy();
    try {
      proxy.cutAfter(400_000); // handshake + the first part of the listing
      const got: ManifestEntry[] = [];
      const e = await failure(
        (async () => {
          for await (const x of src.scan(manyRoot)) got.push(x);
        })(),
      );
      expect(proxy.cuts).toBeGreaterThan(0);
      expect(e).toBeInstanceOf(SourceUnavailableError);
      expect(e.message).toMatch(/scan of .* failed, retryable: the connection was lost/);
      expect(got).toEqual([]); // nothing yielded before the listing is complete

      proxy.reset();
      const full = await collect(src.scan(manyRoot));
      expect(full).toEqual(await collect(scanLocalDirectory(manyRoot)));
      expect(src.channelStats().connects).toBe(2);
    } finally {
      proxy.reset();
      await src.close();
    }
  });

  it('a connection cut mid-stream is SourceUnavailableError from the iterator, and through writeTargetFile', async () => {
    const src = viaProxy();
    try {
      const manifest = await collect(src.scan(bigRoot));
      proxy.cutAfter(8 * MiB); // inside the 64 MiB file
      const e1 = await failure(drain(src.stream(bigRoot, manifest)));
      expect(e1).toBeInstanceOf(SourceUnavailableError);
      expect(e1.message).toMatch(/streaming .* failed, retryable: the tar stream ended inside "m-big.bin"/);

      proxy.cutAfter(8 * MiB);
      const e2 = await failure(archiveTo(join(work, 'cut.tar'), bigRoot, manifest, src.stream(bigRoot, manifest)));
      expect(e2).toBeInstanceOf(SourceUnavailableError);
      expect(e2).not.toBeInstanceOf(SourceChangedError);

      proxy.reset();
      const { trailer } = await archiveTo(join(work, 'ok.tar'), bigRoot, manifest, src.stream(bigRoot, manifest));
      expect(trailer.dataBytes).toBe(64 * MiB + 5 * 'small 0\n'.length);
    } finally {
      proxy.reset();
      await src.close();
    }
  });

  it('a remote tar killed mid-stream is SourceUnavailableError', async () => {
    const src = viaProxy();
    try {
      const manifest = await collect(src.scan(bigRoot));
      let killed = false;
      const e = await failure(
        (async () => {
          for await (const se of src.stream(bigRoot, manifest)) {
            if (!se.content) continue;
            for await (const _c of se.content as AsyncIterable<Buffer>) {
              if (killed) continue;
              for (const pid of sshd.sessionPids()) {
                let comm = '';
                try {
                  comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
                } catch {
                  continue;
                }
                if (comm === 'tar') {
                  process.kill(pid, 'SIGKILL');
                  killed = true;
                }
              }
            }
          }
        })(),
      );
      expect(killed).toBe(true);
      expect(e).toBeInstanceOf(SourceUnavailableError);
    } finally {
      await src.close();
    }
  });

  it('applies back-pressure: a stalled consumer stops the transfer instead of buffering the target', async () => {
    const src = viaProxy();
    try {
      const manifest = await collect(src.scan(bigRoot));
      proxy.reset(); // zero the byte counter
      const it = src.stream(bigRoot, manifest)[Symbol.asyncIterator]();
      let big: SourceEntry | undefined;
      for (;;) {
        const r = await it.next();
        if (r.done) throw new Error('no big file');
        if (r.value.entry.path === 'm-big.bin') {
          big = r.value;
          break;
        }
        if (r.value.content) for await (const _c of r.value.content as AsyncIterable<Buffer>) void _c;
      }
      const content = (big.content as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      await content.next();
      await new Promise((r) => setTimeout(r, 1500)); // the consumer stalls
      const transferred = proxy.bytesDown;
      expect(transferred).toBeLessThan(24 * MiB); // read-ahead (8 MiB) + SSH window (2 MiB) + socket buffers
      let rest = 0;
      for (;;) {
        const r = await content.next();
        if (r.done) break;
        rest += r.value.length;
      }
      expect(rest).toBeGreaterThan(40 * MiB);
      expect((await it.next()).done).toBe(true);
    } finally {
      await src.close();
    }
  });

  it('reconnects with backoff while the host refuses connections, then gives up with SourceUnavailableError', async () => {
    proxy.refuse = true;
    const refusedBefore = proxy.refused;
    const patient = viaProxy({ reconnect: { attempts: 30, initialDelayMs: 50, maxDelayMs: 200 } });
    try {
      const p = collect(patient.scan(bigRoot));
      setTimeout(() => (proxy.refuse = false), 600);
      expect((await p).length).toBe(6);
      expect(proxy.refused - refusedBefore).toBeGreaterThanOrEqual(2);
    } finally {
      proxy.refuse = false;
      await patient.close();
    }

    proxy.refuse = true;
    const impatient = viaProxy({ reconnect: { attempts: 3, initialDelayMs: 20 } });
    try {
      const e = await failure(collect(impatient.scan(bigRoot)));
      expect(e).toBeInstanceOf(SourceUnavailableError);
      expect(e.message).toMatch(/cannot connect to .*127\.0\.0\.1:\d+ \(3 attempts\)/);
    } finally {
      proxy.refuse = false;
      await impatient.close();
    }
  });

  it('an operation after a dropped idle connection reconnects transparently', async () => {
    const src = viaProxy();
    try {
      expect((await collect(src.scan(bigRoot))).length).toBe(6);
      proxy.cutNow();
      await new Promise((r) => setTimeout(r, 100));
      expect((await collect(src.scan(bigRoot))).length).toBe(6);
      expect(src.channelStats().connects).toBe(2);
    } finally {
      await src.close();
    }
  });
});
