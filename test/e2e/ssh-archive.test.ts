/**
 * Issue 4 end to end: the data lives on an SSH host (a real OpenSSH server), the agent scans
 * it remotely and streams it to the virtual tape; GNU tar gets back every hostile name
 * byte-exact.
 */
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { extractWithGnuTar, makeTarget, treeDigest } from '../support/sample-data.ts';
import { sshHostConfig, startSshd, type SshdFixture } from '../support/sshd.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';
import { makeHostileTree } from '../ssh/helpers.ts';
import { CutProxy } from '../ssh/proxy.ts';
import { targetView } from '../support/catalog-helpers.ts';

let stack: TestStack;
let h: Harness;
let sshd: SshdFixture;

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  sshd = await startSshd();
  await h.startAgent({ sshHosts: { datahost: sshHostConfig(sshd) } });
});
afterAll(async () => {
  await h?.close();
  await sshd?.stop();
  await stack?.close();
});

describe('archiving from a data host over SSH', () => {
  it('imports host:/path, scans remotely, archives, confirms, and GNU tar restores hostile names byte-exact', async () => {
    const src = join(h.dir, 'remote', 'run 42 $(touch canary)');
    await makeHostileTree(src);
    await writeFile(join(h.dir, 'list.txt'), `datahost:${src}\n`);
    expect((await h.cli(['import', join(h.dir, 'list.txt')])).code).toBe(0);
    const [target] = await stack.ctx.catalog.listAllTargets();
    expect(target).toMatchObject({ host: 'datahost', path: src });
    await waitUntil(async () => (await stack.ctx.catalog.getTarget(target!.id))?.scan !== 'pending', 30_000, 'remote scan');
    const scanned = (await stack.ctx.catalog.getTarget(target!.id))!;
    expect(scanned.scanError).toBeUndefined();
    expect(scanned.scan).toBe('complete');

    await h.vtl.createTape('sshtape', { capacityBytes: 100_000_000 });
    await h.cli(['open_tape', '--new', 'sshtape']);
    await h.cli(['assign']);
    const archived = await h.cli(['archive']);
    expect({ code: archived.code, out: archived.out }).toMatchObject({ code: 0, out: expect.stringMatching(/archived/) });
    const confirmed = await h.cli(['confirm', 'next']);
    expect(confirmed.out).toMatch(/every checksum matches/);

    const { data } = await extractWithGnuTar(h.vtl.tapeFilePath('sshtape', 1));
    expect(data).toEqual(await treeDigest(src));
    const { existsSync } = await import('node:fs');
    expect(existsSync(join(h.dir, 'remote', 'canary'))).toBe(false);
    expect(existsSync('canary')).toBe(false);
  });

  it('a disconnect mid-stream discards the tape file and leaves the target assigned; the retry archives it', async () => {
    const proxy = await CutProxy.start(sshd.port);
    try {
      const known = join(h.dir, 'proxy_known_hosts');
      await writeFile(known, `[127.0.0.1]:${proxy.port} ${sshd.hostPublicKey}\n`);
      expect(await h.agents.at(-1)!.stop()).toBe(0);
      await h.startAgent({
        sshHosts: { flaky: { address: '127.0.0.1', port: proxy.port, username: sshd.username, privateKey: sshd.privateKeyPath, knownHosts: known } },
      });
      const src = await makeTarget(join(h.dir, 'remote', 'flaky-run'), [3_000_000, 2_000_000]);
      await writeFile(join(h.dir, 'flaky.txt'), `flaky:${src}\n`);
      await h.cli(['import', join(h.dir, 'flaky.txt')]);
      const id = (await stack.ctx.catalog.listAllTargets()).find((t) => t.host === 'flaky')!.id;
      await waitUntil(async () => (await stack.ctx.catalog.getTarget(id))?.scan === 'complete', 30_000, 'scan');
      await h.vtl.createTape('flakytape', { capacityBytes: 100_000_000 });
      await h.cli(['open_tape', '--new', 'flakytape']);
      await h.cli(['assign']);

      proxy.cutAfter(1_000_000); // the network drops a megabyte into the stream
      const failed = await h.cli(['archive']);
      expect(failed.code).toBe(42);
      expect(failed.out).toMatch(/could not read the source/);
      expect(await targetView(stack, id)).toMatchObject({ placement: 'assigned', tapeName: 'flakytape' });
      expect(await stack.ctx.catalog.getTape('flakytape')).toMatchObject({ nextFileNumber: 1, filesWritten: 0 });
      expect((await stack.ctx.catalog.getTape('flakytape'))?.state).not.toBe('disabled');
      expect(await h.vtl.countFiles('flakytape')).toBe(1); // the label only

      proxy.reset();
      expect((await h.cli(['archive'])).code).toBe(0);
      const { data } = await extractWithGnuTar(h.vtl.tapeFilePath('flakytape', 1));
      expect(data).toEqual(await treeDigest(src));
    } finally {
      await proxy.close();
    }
  });

  it('an unknown host key is refused: the scan fails, not retried, with how to trust the host', async () => {
    expect(await h.agents.at(-1)!.stop()).toBe(0);
    await h.startAgent({
      sshHosts: {
        otherhost: {
          address: sshd.host,
          port: sshd.port,
          username: sshd.username,
          privateKey: sshd.privateKeyPath,
          knownHosts: join(h.dir, 'empty_known_hosts'),
        },
      },
    });
    await writeFile(join(h.dir, 'empty_known_hosts'), '');
    await writeFile(join(h.dir, 'list2.txt'), `otherhost:/srv/data/x\n`);
    await h.cli(['import', join(h.dir, 'list2.txt')]);
    const id = (await stack.ctx.catalog.listAllTargets()).find((t) => t.host === 'otherhost')!.id;
    await waitUntil(async () => (await stack.ctx.catalog.getTarget(id))?.scan === 'failed', 30_000, 'scan refused');
    expect((await stack.ctx.catalog.getTarget(id))?.scanError).toMatch(/ssh-keyscan[\s\S]*fix the agent configuration, then "rescan --failed"/);
  });
});
