/**
 * `tape_detail [TAPE] [FNUM] [-v]` (the predecessor's command): one row per tape file (file
 * number, state, size, target), from the catalog. With `verbose`, one line per regular file of
 * the chosen files, "SHA-256, two spaces, name relative to the target", which `sha256sum -c`
 * checks in a restored (or the original) target directory. Names `sha256sum` cannot take
 * literally are written in its escaped form (a leading backslash; `\\`, `\n` and `\r` inside).
 */
import { errorMessage, NotFoundError, UsageError } from '../errors.ts';
import type { JobContext } from './context.ts';
import { resolveTape } from './tapes.ts';

export interface TapeDetailInput {
  tape?: string;
  pool?: string;
  fileNumber?: number;
  verbose?: boolean;
}

export interface TapeDetailResult {
  tape: string;
  pool: string;
  files: { fileNumber: number; state: string; bytes?: number; fileCount?: number; targetId: string; host?: string; path?: string }[];
  /** With verbose: per regular file of each listed tape file, a `sha256sum -c` line. */
  checksums?: { fileNumber: number; lines: string[]; notListed: number; error?: string }[];
}

/** "<sha256>  <name>", escaped as GNU sha256sum writes names holding a backslash or a newline. */
export function checksumLine(sha256: string, name: string): string {
  if (!/[\\\n\r]/.test(name)) return `${sha256}  ${name}`;
  return `\\${sha256}  ${name.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}`;
}

export async function tapeDetail(ctx: JobContext, input: TapeDetailInput): Promise<TapeDetailResult> {
  const tape = await resolveTape(ctx, input.tape, input.pool);
  let files = await ctx.catalog.listTapeFiles(tape.name);
  if (input.fileNumber !== undefined) {
    // A tapetown tape has no label: its first target is file 0.
    if (input.fileNumber < 1 && tape.format !== 'tapetown') throw new UsageError('file 0 is the tape label; targets start at file 1.');
    files = files.filter((f) => f.fileNumber === input.fileNumber);
    if (!files.length)
      throw new NotFoundError(
        `tape ${tape.name} has no file ${input.fileNumber} (next file number is ${tape.nextFileNumber}); list them with "tape_detail ${tape.name}".`,
      );
  }
  const result: TapeDetailResult = { tape: tape.name, pool: tape.pool, files: [] };
  for (const f of files) {
    const t = await ctx.catalog.getTarget(f.targetId);
    result.files.push({
      fileNumber: f.fileNumber,
      state: f.state,
      ...(f.bytes !== undefined ? { bytes: f.bytes } : {}),
      ...(f.fileCount !== undefined ? { fileCount: f.fileCount } : {}),
      targetId: f.targetId,
      ...(t ? { host: t.host, path: t.path } : {}),
    });
    if (!input.verbose) continue;
    // The scan written to this file; a file from before release 0.3 uses its target's while that is complete.
    const scanId = f.scanId ?? (t?.scan === 'complete' ? t.scanId : undefined);
    const pages = f.scanId ? (f.manifestPages ?? 0) : (t?.manifestPages ?? 0);
    let manifest: Awaited<ReturnType<typeof ctx.manifests.readAll>> = [];
    let error: string | undefined;
    try {
      if (!scanId || !pages) error = 'its manifest is not known (a file from before release 0.3 whose target is being scanned again)';
      else manifest = await ctx.manifests.readAll(f.targetId, scanId, pages);
    } catch (e) {
      error = `its manifest could not be read: ${errorMessage(e)}`;
    }
    const regular = manifest.filter((e) => e.type === 'file' && e.sha256);
    // A name that is not UTF-8 cannot be printed as text here: counted, not listed.
    const printable = regular.filter((e) => e.rawPath === undefined);
    (result.checksums ??= []).push({
      fileNumber: f.fileNumber,
      lines: printable.map((e) => checksumLine(e.sha256!, e.path)),
      notListed: regular.length - printable.length,
      ...(error ? { error } : {}),
    });
  }
  return result;
}
