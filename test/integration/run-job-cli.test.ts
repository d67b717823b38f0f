import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/run-job.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { snapshotCatalog } from '../support/catalog-helpers.ts';

const run = promisify(execFile);
let stack: TestStack;
let dir: string;
beforeAll(async () => {
  stack = await createTestStack();
  dir = await mkdtemp(join(tmpdir(), 'run-job-'));
});
afterAll(async () => {
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[], ask?: (q: string) => Promise<boolean>) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s), env: stack.env, ...(ask ? { ask } : {}) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function listFile(name: string, content: string | Buffer): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, content);
  return p;
}

describe('run-job', () => {
  it('runs as a real command: bin, exit codes, JSON output', async () => {
    const bin = join(process.cwd(), 'bin/run-job.js');
    const env = { ...process.env, ...stack.env };
    const ok = await run(process.execPath, [bin, '--json', 'tapes'], { env });
    expect(JSON.parse(ok.stdout)).toEqual({ tapes: [] });
    const usage = await run(process.execPath, [bin, 'no_such_job'], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/unknown command 'no_such_job'/);
  });

  it('imports a list with comments, CRLF, trailing slashes and duplicates', async () => {
    const f = await listFile('ok.txt', '# targets\r\n/data/x/\r\n\r\n/data/y\r\n/data/x\r\n');
    const r = await cli(['import', f]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/imported 2 target\(s\)/);
    expect(r.out).toMatch(/line 5: duplicate of line 2/);
    const again = await cli(['import', f]);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/nothing new: all 2 target\(s\) were already imported/);
  });

  it('refuses bad input with exit 1 or 2, a clear message, and no change', async () => {
    const before = await snapshotCatalog(stack);
    const bad = await listFile('bad.txt', '/data/ok\nrelative/dir\n/data/tab\there\n/data/../etc\n');
    const cases: [string[], number, RegExp][] = [
      [['import', bad], 1, /line 2: "relative\/dir" .*not an absolute path[\s\S]*line 3:.*control character[\s\S]*line 4:.*"\.\."[\s\S]*--skip-invalid/],
      [['import', join(dir, 'missing.txt')], 2, /cannot read import list .*missing\.txt: ENOENT/],
      [['import', await listFile('latin1.txt', Buffer.from([0x2f, 0x64, 0xe9, 0x0a]))], 1, /not valid UTF-8[\s\S]*line 1/],
      [['import', await listFile('empty.txt', '# nothing\n\n')], 1, /lists no target directories/],
      [['import'], 2, /missing required argument 'file'/],
      [['open_tape', '--new', 'bad name'], 2, /tape name "bad name" is invalid/],
      [['open_tape', '--new', 'tapeZ', '--capacity', 'huge'], 2, /capacity "huge" is not a size/],
      [['open_tape', '--new', 'tapeZ', '--barcode', 'x'], 2, /barcode "x" is invalid/],
      [['assign'], 1, /no tape is online/],
      [['assign', 'nosuch'], 1, /tape nosuch is not registered/],
      [['archive'], 1, /no tape is online/],
      [['confirm', 'abc'], 2, /"abc" is not a file number/],
      [['confirm', 'next'], 1, /no tape is online/],
      [['close_tape', 'nosuch', '--yes'], 1, /tape nosuch is not registered/],
      [['targets', '--state', 'bogus'], 2, /unknown state "bogus"/],
      [['archive', '--bogus'], 2, /unknown option '--bogus'/],
    ];
    for (const [args, code, message] of cases) {
      const r = await cli(args);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.err).toMatch(message);
      // --json: the same exit code, one JSON error object on stderr, nothing on stdout.
      const j = await cli(['--json', ...args]);
      expect({ args, code: j.code, out: j.out }).toEqual({ args, code, out: '' });
      const err = JSON.parse(j.err) as { error: { code: string; message: string } };
      if (code === 2) expect(err.error.code).toBe('BAD_USAGE');
      else expect(['NOT_FOUND', 'ILLEGAL_TRANSITION', 'CONFLICT', 'INVALID_INPUT', 'UNREACHABLE']).toContain(err.error.code);
      expect(err.error.message).toMatch(message);
    }
    expect(await snapshotCatalog(stack)).toEqual(before);
    expect(await stack.drain('scans')).toHaveLength(2); // only the two from the good import
  });

  it('--skip-invalid imports the valid lines and reports the rest', async () => {
    const f = await listFile('mixed.txt', '/data/z\nnot/absolute\n');
    const r = await cli(['import', '--skip-invalid', f]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/imported 1 target/);
    expect(r.out).toMatch(/line 2: skipped: .*not an absolute path/);
  });

  it('open_tape, assign, tapes table, targets table, close_tape with confirmation', async () => {
    expect((await cli(['open_tape', '--new', 'tape1', '--capacity', '2.5T', '--barcode', 'abc123l9'])).out).toMatch(/tape1 registered and online/);
    expect((await cli(['assign'])).out).toMatch(/assigned 3 target\(s\) to tape1 \(3 awaiting scan\)/);
    const tapes = await cli(['tapes']);
    expect(tapes.out).toMatch(/tape1\s*│\s*ABC123L9\s*│\s*default\s*│\s*registered\s*│\s*yes\s*│\s*0 B \/ 2.50 TB \(0\.0%\)/);
    const targets = await cli(['targets', '--tape', 'tape1']);
    expect(targets.out.match(/assigned/g)).toHaveLength(3);

    const declined = await cli(['close_tape'], async () => false);
    expect(declined.code).toBe(0);
    expect(declined.err).toMatch(/warning: tape tape1 is not full/);
    expect(declined.err).toMatch(/3 assigned target\(s\) not yet archived will be released/);
    expect(declined.out).toMatch(/left as it was/);
    expect((await stack.ctx.catalog.getTape('tape1'))?.state).toBe('registered');

    const noTty = await cli(['close_tape']);
    expect(noTty.code).toBe(2);
    expect(noTty.err).toMatch(/needs confirmation .* --yes/);

    const accepted = await cli(['close_tape'], async () => true);
    expect(accepted.code).toBe(0);
    expect(accepted.out).toMatch(/tape1 closed and offline; released 3 target/);
    const json = await cli(['--json', 'targets', '--state', 'imported']);
    expect(JSON.parse(json.out).targets).toHaveLength(3);
  });

  it('says how to start the stack when nothing listens', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['tapes'], {
      out: (s) => out.push(s),
      err: (s) => err.push(s),
      env: { ...stack.env, AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' },
    });
    expect(code).toBe(1);
    expect(err.join('\n')).toMatch(/cannot reach the catalog or queues at http:\/\/127\.0\.0\.1:9.*npm run stack/);
  });

  it('tables fit the terminal, --output wide and tsv show everything, --limit pages, and a closed pipe ends quietly', async () => {
    const long = `/data/${'very-long-directory-name/'.repeat(8)}run-42`;
    const lines = Array.from({ length: 1500 }, (_, i) => `/data/many/run-${String(i).padStart(4, '0')}`);
    expect((await cli(['import', await listFile('many.txt', [long, ...lines].join('\n'))])).code).toBe(0);
    const out: string[] = [];
    await main(['targets', '--state', 'imported'], { out: (x) => out.push(x), err: () => undefined, env: stack.env, columns: 100 });
    const rows = out.join('\n').split('\n');
    expect(Math.max(...rows.map((r) => r.length))).toBeLessThanOrEqual(100);
    expect(rows.filter((r) => /^├/.test(r))).toHaveLength(1); // one rule, under the header
    const cut = rows.find((r) => r.includes('run-42'))!;
    expect(cut).toMatch(/localhost:\/data\/very-.*….*name\/run-42/);

    const wide = await cli(['--output', 'wide', 'targets', '--state', 'imported']);
    expect(wide.out).toContain(long);
    const tsv = await cli(['--output', 'tsv', 'targets', '--state', 'imported']);
    const tsvRows = tsv.out.split('\n').map((r) => r.split('\t'));
    expect(tsvRows[0]!.slice(0, 3)).toEqual(['id', 'host:path', 'status']);
    expect(tsvRows.some((r) => r[1] === `localhost:${long}`)).toBe(true);
    expect((await cli(['--output', 'fancy', 'tapes'])).code).toBe(2);

    const page2 = await cli(['targets', '--state', 'imported', '--limit', '50', '--page', '2']);
    expect(page2.out).toMatch(/targets 51-100 of \d+ \(page 2 of \d+\); next: --page 3/);
    expect(page2.out.split('\n').filter((r) => r.includes('imported'))).toHaveLength(50);
    expect((await cli(['targets', '--limit', 'x'])).code).toBe(2);

    // `run-job targets | head -3`: the pipe closes early; no EPIPE trace, exit 0.
    const bin = join(process.cwd(), 'bin/run-job.js');
    const piped = await run('bash', ['-c', `set -o pipefail; node '${bin}' --output wide targets | head -3 >/dev/null`], {
      env: { ...process.env, ...stack.env },
    }).then(
      (r) => ({ code: 0, stderr: r.stderr }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(piped).toEqual({ code: 0, stderr: '' });
  });
});
