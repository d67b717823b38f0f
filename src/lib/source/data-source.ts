/**
 * Where target data comes from. The agent scans and streams targets through this interface;
 * the local implementation reads a path on this machine (the agent runs on the data host or
 * reads a mount), the SSH implementation reads the data host remotely.
 */
import type { ManifestEntry } from '../domain/manifest.ts';
import type { SourceEntry } from '../tape-format/index.ts';

export interface DataSource {
  readonly host: string;
  /** Lists every entry under `path` with sizes, modes, mtimes and file checksums. */
  scan(path: string, opts?: { signal?: AbortSignal }): AsyncIterable<ManifestEntry>;
  /** Streams the target's entries with their content, for writing to tape. */
  stream(path: string, manifest: readonly ManifestEntry[], opts?: { signal?: AbortSignal }): AsyncIterable<SourceEntry>;
  /** Directories exactly `depth` levels below `root`, as paths relative to it (scheduled import). */
  listDirectories(root: string, depth: number, opts?: { signal?: AbortSignal }): AsyncIterable<string>;
  close(): Promise<void>;
}

/** The data source could not be read (host down, permission denied, path gone). Retryable. */
export class SourceUnavailableError extends Error {
  override readonly name = 'SourceUnavailableError';
  readonly code = 'SOURCE_UNAVAILABLE';
}
