/**
 * The run-job process: stdout for results, stderr for messages and the progress bar. Ctrl-C
 * while archive or confirm works on an item stops them after that item (exit 41). Otherwise,
 * or pressed again, Ctrl-C during a wait ends the wait (the task goes on, exit 130); pressed
 * again, or outside a wait, it ends the process at once, restoring the terminal first.
 */
import { main, terminalAsk, type StopRequest } from './run-job.ts';

const interrupt = new AbortController();
const stop: StopRequest = { graceful: false, requested: false };
process.on('SIGINT', () => {
  if (stop.graceful && !stop.requested) {
    stop.requested = true;
    process.stderr.write('\nstop requested: stopping after the current item (Ctrl-C again to stop waiting now; the task goes on)\n');
    return;
  }
  if (interrupt.signal.aborted) {
    if (process.stderr.isTTY) process.stderr.write('\x1b[?25h\x1b[?7h\n'); // cursor on, line wrapping on
    process.exit(130);
  }
  interrupt.abort();
  // Not waiting for a task: nothing to hand over, so end now (a job's catalog change is one
  // conditional write or transaction: it is all done or not at all).
  setTimeout(() => process.exit(130), 1500).unref();
});
// `run-job targets | head`: a closed pipe ends the output quietly, not with an EPIPE trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

const code = await main(process.argv.slice(2), {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
  ask: terminalAsk(),
  ...(process.stderr.isTTY ? { progressStream: process.stderr } : {}),
  interrupt: interrupt.signal,
  stop,
  ...(process.stdout.isTTY ? { columns: process.stdout.columns } : {}),
});
process.exitCode = code;
