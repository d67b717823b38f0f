/**
 * `tape-agent inspect`: what is on a tape, read only: the label (file 0) and the header of
 * every tape file (target, files, bytes, when and by which task it was written), without
 * reading the data. For an operator checking a cartridge before enabling or closing it, or
 * when the catalog and the tape disagree about the number of files.
 */
import { readLabel, readTargetHeader, type TapeLabel } from '../lib/tape-format/index.ts';
import type { TapeDrive } from '../lib/tape/drive.ts';

export interface InspectedFile {
  fileNumber: number;
  /** Present when the file begins with a valid header.json. */
  target?: { id: string; host: string; path: string };
  fileCount?: number;
  totalBytes?: number;
  writtenAt?: string;
  taskId?: string;
  skippedCount?: number;
  /** Why the file could not be read as a target file. */
  error?: string;
}

export interface TapeInspection {
  label?: TapeLabel;
  labelError?: string;
  /** Complete files on tape, the label included (the next file number to write). */
  filesOnTape: number;
  files: InspectedFile[];
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function inspectTape(drive: TapeDrive): Promise<TapeInspection> {
  const filesOnTape = await drive.seekEndOfData();
  const out: TapeInspection = { filesOnTape, files: [] };
  if (filesOnTape === 0) return { ...out, labelError: 'the tape is blank (no file 0)' };
  await drive.seekFile(0);
  try {
    out.label = await readLabel(drive.readFile());
  } catch (e) {
    // A damaged label, or a tapetown tape (no label, variable blocks: its files are plain GNU tars).
    out.labelError = `${messageOf(e)}. A tape written by tapetown has no label: list its file N with "mt -f DEV setblk 0; mt -f DEV fsf N; dd if=DEV bs=1M | tar -tvf -" (docs/tape-format.md)`;
  }
  for (let n = 1; n < filesOnTape; n++) {
    await drive.seekFile(n);
    try {
      const h = await readTargetHeader(drive.readFile());
      out.files.push({
        fileNumber: n,
        target: h.target,
        fileCount: h.fileCount,
        totalBytes: h.totalBytes,
        writtenAt: h.writtenAt,
        taskId: h.taskId,
        ...(h.skippedCount ? { skippedCount: h.skippedCount } : {}),
      });
    } catch (e) {
      out.files.push({ fileNumber: n, error: messageOf(e) });
    }
  }
  return out;
}

/** The inspection as lines for a terminal. */
export function formatInspection(i: TapeInspection): string[] {
  const lines = [
    i.label
      ? `file 0: label ${i.label.tapeName} (barcode ${i.label.barcode || '-'}, ${i.label.format}, block size ${i.label.blockSize}, written ${i.label.createdAt})`
      : `file 0: NOT A LABEL: ${i.labelError}`,
  ];
  for (const f of i.files) {
    lines.push(
      f.error
        ? `file ${f.fileNumber}: NOT A TARGET FILE: ${f.error}`
        : `file ${f.fileNumber}: ${f.target!.id} ${f.target!.host}:${f.target!.path}, ${f.fileCount} file(s), ${f.totalBytes} bytes, written ${f.writtenAt} (task ${f.taskId})${f.skippedCount ? `, ${f.skippedCount} special file(s) not archived` : ''}`,
    );
  }
  lines.push(`${i.filesOnTape} complete file(s) on tape, the label included; the next file written would be file ${i.filesOnTape}.`);
  return lines;
}
