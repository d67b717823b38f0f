/**
 * Waiting for a tape task with a progress bar (rate and ETA) on a terminal. The status comes
 * from the task item the results handler keeps up to date.
 */
import cliProgress from 'cli-progress';
import type { TaskStatus } from '../lib/catalog/task-status.ts';
import { formatBytes } from '../lib/domain/units.ts';

export interface WaitOptions {
  poll: () => Promise<TaskStatus>;
  /** Where to draw the bar; undefined = no bar (not a terminal, or --json). */
  stream?: NodeJS.WriteStream;
  intervalMs?: number;
  /** Said once when the task has not started after this long. */
  idleHintMs?: number;
  hint?: (message: string) => void;
}

export async function waitForTask(o: WaitOptions): Promise<TaskStatus> {
  const interval = o.intervalMs ?? 500;
  const started = Date.now();
  let hinted = false;
  let bar: cliProgress.SingleBar | undefined;
  let lastBytes = 0;
  let lastTime = started;
  let rate = 0;
  try {
    for (;;) {
      const s = await o.poll();
      if (s.state === 'succeeded' || s.state === 'failed') {
        bar?.update(s.state === 'succeeded' ? Math.max(s.bytesTotal, s.bytesDone) : s.bytesDone, { rate: formatBytes(rate) + '/s' });
        return s;
      }
      if (s.state === 'running' && o.stream) {
        if (!bar) {
          bar = new cliProgress.SingleBar(
            { stream: o.stream, format: ' {phase} [{bar}] {percentage}% | {done} / {all} | {rate} | ETA {eta_formatted}', hideCursor: true, etaBuffer: 20 },
            cliProgress.Presets.shades_classic,
          );
          bar.start(Math.max(1, s.bytesTotal), 0, { phase: s.phase ?? '', done: '0 B', all: formatBytes(s.bytesTotal), rate: '-' });
        }
        const now = Date.now();
        // Reports arrive about once a second: measure between changes, not between polls.
        if (s.bytesDone !== lastBytes && now > lastTime) {
          rate = ((s.bytesDone - lastBytes) * 1000) / (now - lastTime);
          lastBytes = s.bytesDone;
          lastTime = now;
        }
        bar.setTotal(Math.max(1, s.bytesTotal));
        bar.update(s.bytesDone, {
          phase: s.phase ?? '',
          done: formatBytes(s.bytesDone),
          all: formatBytes(s.bytesTotal),
          rate: `${formatBytes(Math.max(0, rate))}/s`,
        });
      }
      if (!hinted && s.state === 'queued' && Date.now() - started > (o.idleHintMs ?? 30_000)) {
        hinted = true;
        o.hint?.(`task ${s.taskId} is still queued after ${Math.round((Date.now() - started) / 1000)} s: is a tape agent running ("tape-agent run")?`);
      }
      await new Promise((r) => setTimeout(r, interval));
    }
  } finally {
    bar?.stop();
  }
}
