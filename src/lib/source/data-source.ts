/**
 * Where target data comes from. The agent scans and streams targets through this interface;
 * the local implementation reads a path on this machine (the agent runs on the data host or
 * reads a mount), the SSH implementation reads the data host remotely.
 */
import type { ManifestEntry, ManifestSource } from '../domain/manifest.ts';
import type { SourceEntry, SourceEntryFields } from '../tape-format/index.ts';
import { ArchiveError } from '../errors.ts';
import type { RestoreDestination } from '../restore/destination.ts';

/** An entry the scan left out by policy (fifo, socket, device node), with the reason. */
export interface SkippedEntry {
  path: string;
  rawPath?: string;
  reason: string;
}

export interface ScanOptions {
  signal?: AbortSignal;
  /** Called for every entry left out of the manifest (special files): they must be reported. */
  onSkipped?: (s: SkippedEntry) => void;
  /** Absolute paths of nested targets: each is left out with its whole subtree (domain/nesting.ts). */
  excludes?: readonly string[];
}

export interface ListOptions {
  signal?: AbortSignal;
  /** As the scan's: names under these nested targets are not listed. */
  excludes?: readonly string[];
}

export interface DataSource {
  readonly host: string;
  /** Lists every entry under `path` with sizes, modes, mtimes and file checksums. */
  scan(path: string, opts?: ScanOptions): AsyncIterable<ManifestEntry>;
  /**
   * Streams the target's entries with their content, for writing to tape: first the root
   * directory itself (`root: true`, its mode and mtime), then the manifest's entries in order.
   */
  stream(path: string, manifest: ManifestSource, opts?: { signal?: AbortSignal }): AsyncIterable<SourceEntry>;
  /** Names and types of every directory, file and symlink under `path` now (not special files, nor under `excludes`). */
  list(path: string, opts?: ListOptions): AsyncIterable<Pick<SourceEntryFields, 'path' | 'rawPath' | 'type'>>;
  /** Directories exactly `depth` levels below `root`, as paths relative to it (scheduled import). */
  listDirectories(root: string, depth: number, opts?: { signal?: AbortSignal }): AsyncIterable<string>;
  /** Where a restore to `dir` on this host writes (lib/restore/). */
  restoreDestination(dir: string): RestoreDestination;
  close(): Promise<void>;
}

/** The data source could not be read (host down, permission denied, path gone). Retryable. */
export class SourceUnavailableError extends ArchiveError {
  override readonly name: string = 'SourceUnavailableError';
  readonly code = 'SOURCE_UNAVAILABLE';
  readonly status = 503;
  override readonly retryable = true;
}
