/**
 * Waiting for a tape task with a progress bar on a terminal: rate over a sliding window (a
 * steady stream shows a steady figure), ETA, and a last frame with the final figures. The
 * status comes from the task item the results consumer keeps up to date. Ctrl-C (`signal`)
 * stops waiting, not the task: the bar is removed, the cursor and line wrapping restored.
 */
import cliProgress from 'cli-progress';
import type { TaskStatus } from '../lib/catalog/task-status.ts';
import { formatBytes } from '../lib/domain/units.ts';
import { ArchiveError } from '../lib/errors.ts';

export interface WaitOptions {
  poll: () => Promise<TaskStatus>;
  /** Where to draw the bar; undefined = no bar (not a terminal, or --json). */
  stream?: NodeJS.WriteStream;
  intervalMs?: number;
  /** Said once when the task has not started after this long. */
  idleHintMs?: number;
  hint?: (message: string) => void;
  /** Aborted by Ctrl-C: waiting ends with InterruptedError; the task goes on. */
  signal?: AbortSignal;
}

/** The operator stopped waiting (Ctrl-C); the task itself goes on. Exit 130, like a shell. */
export class InterruptedError extends ArchiveError {
  override readonly name = 'InterruptedError';
  readonly code = 'INTERRUPTED';
  readonly status = 499;
}

/** Bytes per second over the last `windowMs` of samples. */
export class RateWindow {
  private samples: { t: number; bytes: number }[] = [];
  constructor(private readonly windowMs = 5000) {}
  add(t: number, bytes: number): void {
    if (this.samples.length && this.samples.at(-1)!.bytes === bytes) return; // no new report yet
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[0]!.t > this.windowMs) this.samples.shift();
  }
  get rate(): number {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.t <= first.t) return 0;
    return ((last.bytes - first.bytes) * 1000) / (last.t - first.t);
  }
}

/** "1.2 GB in 8.0 s, 150 MB/s": what the task moved, from its own start and end times. */
export function summarize(s: TaskStatus): string | undefined {
  if (!s.startedAt || s.bytesDone <= 0) return undefined;
  const seconds = Math.max(0.001, (Date.parse(s.updatedAt) - Date.parse(s.startedAt)) / 1000);
  return `${formatBytes(s.bytesDone)} in ${seconds.toFixed(1)} s, mean ${formatBytes(s.bytesDone / seconds)}/s`;
}

export async function waitForTask(o: WaitOptions): Promise<TaskStatus> {
  const interval = o.intervalMs ?? 500;
  const started = Date.now();
  let hinted = false;
  let bar: cliProgress.SingleBar | undefined;
  const window = new RateWindow();
  const figures = (s: TaskStatus, rate: number, final = false) => ({
    phase: s.phase ?? '',
    done: formatBytes(s.bytesDone),
    all: formatBytes(final ? s.bytesDone : s.bytesTotal),
    rate: rate > 0 ? `${formatBytes(rate)}/s` : '-',
    left: final ? '0s' : rate > 0 && s.bytesTotal > s.bytesDone ? formatSeconds((s.bytesTotal - s.bytesDone) / rate) : '-',
  });
  try {
    for (;;) {
      if (o.signal?.aborted) throw new InterruptedError('interrupted');
      const s = await o.poll();
      if (s.state === 'succeeded' || s.state === 'failed') {
        if (bar) {
          // The last frame shows the final figures: all bytes, and the mean rate of the task.
          const seconds = s.startedAt ? (Date.parse(s.updatedAt) - Date.parse(s.startedAt)) / 1000 : 0;
          const done = s.state === 'succeeded' ? Math.max(s.bytesTotal, s.bytesDone) : s.bytesDone;
          bar.setTotal(Math.max(1, s.bytesTotal, done));
          bar.update(done, figures({ ...s, bytesDone: done }, seconds > 0 ? done / seconds : window.rate, true));
        }
        return s;
      }
      if (s.state === 'running' && o.stream) {
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              stream: o.stream,
              format: ' {phase} [{bar}] {percentage}% | {done} / {all} | {rate} | ETA {left}',
              hideCursor: true,
              // Ctrl-C is ours to handle (the bar is stopped in finally), not cli-progress's.
              gracefulExit: false,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(Math.max(1, s.bytesTotal), 0, figures(s, 0));
        }
        window.add(Date.now(), s.bytesDone);
        bar.setTotal(Math.max(1, s.bytesTotal));
        bar.update(s.bytesDone, figures(s, window.rate));
      }
      if (!hinted && s.state === 'queued' && Date.now() - started > (o.idleHintMs ?? 30_000)) {
        hinted = true;
        o.hint?.(`task ${s.taskId} is still queued after ${Math.round((Date.now() - started) / 1000)} s: is a tape agent running ("tape-agent run")?`);
      }
      await sleepUnlessAborted(interval, o.signal);
    }
  } finally {
    bar?.stop(); // restores the cursor and line wrapping
  }
}

/** 75 -> "1m15s", 3725 -> "1h02m", 5 -> "5s". */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
