/** Remote processes on SSH channels: bounded channels, back-pressured reading, exit status, NUL fields. */
import type { ClientChannel } from 'ssh2';

// ---------------------------------------------------------------------------------------------
// Helpers

/** How a remote command ended. `lost`: the channel closed without an exit status. */
export interface ExitInfo {
  code: number | null;
  signal?: string;
  lost: boolean;
}

/**
 * Reads a channel's stdout chunk by chunk (no copies), pausing the channel when more than
 * `highWater` bytes wait: ssh2 then stops granting window and the remote command blocks.
 */
export class ChannelReader {
  private q: (Buffer | undefined)[] = [];
  private head = 0;
  private queued = 0;
  private ended = false;
  private paused = false;
  private wake: (() => void) | null = null;
  constructor(
    private readonly ch: ClientChannel,
    private readonly highWater: number,
  ) {
    ch.on('data', (b: Buffer) => {
      this.q.push(b);
      this.queued += b.length;
      if (this.queued >= this.highWater && !this.paused) {
        this.paused = true;
        ch.pause();
      }
      this.notify();
    });
    const end = () => {
      this.ended = true;
      this.notify();
    };
    ch.on('end', end);
    ch.on('close', end);
  }
  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
  async read(): Promise<Buffer | null> {
    for (;;) {
      if (this.head < this.q.length) {
        const b = this.q[this.head]!;
        this.q[this.head++] = undefined;
        if (this.head > 1024 && this.head * 2 > this.q.length) {
          this.q = this.q.slice(this.head);
          this.head = 0;
        }
        this.queued -= b.length;
        if (this.paused && this.queued <= this.highWater / 4) {
          this.paused = false;
          this.ch.resume();
        }
        return b;
      }
      if (this.ended) return null;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

/** A remote command on its own channel. */
export interface RemoteProcess {
  channel: ClientChannel;
  stdout: ChannelReader;
  /** stderr text (the first 64 KiB). */
  stderr(): string;
  /** Resolves when the channel has closed. */
  exit: Promise<ExitInfo>;
}

export const STDERR_MAX = 64 * 1024;

export function describeExit(x: ExitInfo): string {
  if (x.lost) return 'the connection was lost (no exit status)';
  if (x.code !== null) return `exit status ${x.code}`;
  return `killed by signal ${x.signal ?? '?'}`;
}

export function firstLines(s: string, n = 10): string {
  const lines = s.trim().split('\n').filter(Boolean);
  return lines.slice(0, n).join('; ') + (lines.length > n ? `; ... (${lines.length - n} more lines)` : '');
}

/** Splits a byte stream into NUL-terminated fields (latin1 strings, one char per byte). */
export class NulFields {
  private carry: Buffer | null = null;
  constructor(private readonly onField: (f: string) => void) {}
  push(chunk: Buffer): void {
    let start = 0;
    const data = chunk;
    if (this.carry) {
      const z = chunk.indexOf(0);
      if (z < 0) {
        this.carry = Buffer.concat([this.carry, chunk]);
        return;
      }
      this.onField(this.carry.toString('latin1') + chunk.toString('latin1', 0, z));
      this.carry = null;
      start = z + 1;
    }
    for (;;) {
      const z = data.indexOf(0, start);
      if (z < 0) break;
      this.onField(data.toString('latin1', start, z));
      start = z + 1;
    }
    if (start < data.length) this.carry = Buffer.from(data.subarray(start));
  }
  /** Bytes after the last NUL (a truncated field), if any. */
  get pending(): number {
    return this.carry?.length ?? 0;
  }
}
