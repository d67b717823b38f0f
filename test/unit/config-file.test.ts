/** The config file: an API token in it must be private to its owner, and is written so. */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, writePrivateFile } from '../../src/lib/config.ts';
import { ConfigError } from '../../src/lib/errors.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'config-file-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const TOKEN = 'a-token-of-twenty-four-chars';

describe('config file with an API token', () => {
  it('is written 0600, also over an existing world-readable file, and read back', async () => {
    const path = join(dir, 'config.json');
    await writeFile(path, '{}\n', { mode: 0o644 });
    await writePrivateFile(path, JSON.stringify({ prefix: 'tape-archive-x', apiToken: TOKEN }));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(loadConfig({}, { configFile: path }).apiToken).toBe(TOKEN);
  });

  it('is refused when others can read it, saying how to fix it', async () => {
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify({ apiToken: TOKEN }), { mode: 0o644 });
    expect(() => loadConfig({}, { configFile: path })).toThrow(ConfigError);
    expect(() => loadConfig({}, { configFile: path })).toThrow(/readable by others \(mode 644\); make it private with "chmod 600/);
  });

  it('without a token may be world-readable', async () => {
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify({ prefix: 'tape-archive-y' }), { mode: 0o644 });
    expect(loadConfig({}, { configFile: path }).prefix).toBe('tape-archive-y');
  });
});
