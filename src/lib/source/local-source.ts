import { readdir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { entriesOf, type ManifestEntry, type ManifestSource } from '../domain/manifest.ts';
import { listLocalDirectory, localSource, scanLocalDirectory } from './local-directory.ts';
import { SourceUnavailableError, type DataSource, type ListOptions, type ScanOptions } from './data-source.ts';
import { relativeExcludes } from '../domain/nesting.ts';
import { errorMessage } from '../errors.ts';
import { LocalDestination } from '../restore/local-destination.ts';

async function assertDirectory(path: string): Promise<void> {
  let s: Stats;
  try {
    s = await stat(path);
  } catch (e) {
    throw new SourceUnavailableError(`cannot read target ${path}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
  }
  if (!s.isDirectory()) throw new SourceUnavailableError(`target ${path} is not a directory`);
}

/** A target directory on this machine (or a mount of the data host). */
export class LocalDataSource implements DataSource {
  constructor(readonly host: string) {}

  async *scan(path: string, opts: ScanOptions = {}): AsyncIterable<ManifestEntry> {
    await assertDirectory(path);
    yield* scanLocalDirectory(path, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onSkipped ? { onWarning: opts.onSkipped } : {}),
      excludes: relativeExcludes(path, opts.excludes),
    });
  }

  async *stream(path: string, manifest: ManifestSource, opts: { signal?: AbortSignal } = {}) {
    await assertDirectory(path);
    yield* localSource(path, entriesOf(manifest), opts.signal ? { signal: opts.signal } : {});
  }

  async *list(path: string, opts: ListOptions = {}) {
    await assertDirectory(path);
    yield* listLocalDirectory(path, { ...(opts.signal ? { signal: opts.signal } : {}), excludes: relativeExcludes(path, opts.excludes) });
  }

  async *listDirectories(root: string, depth: number): AsyncIterable<string> {
    await assertDirectory(root);
    const walk = async function* (rel: string, level: number): AsyncGenerator<string> {
      const entries = await readdir(rel ? `${root}/${rel}` : root, { withFileTypes: true });
      for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        if (!e.isDirectory()) continue;
        const child = rel ? `${rel}/${e.name}` : e.name;
        if (level + 1 === depth) yield child;
        else yield* walk(child, level + 1);
      }
    };
    yield* walk('', 0);
  }

  restoreDestination(dir: string): LocalDestination {
    return new LocalDestination(dir);
  }

  async close(): Promise<void> {}
}
