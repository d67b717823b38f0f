import { main, terminalAsk } from './run-job.ts';

const code = await main(process.argv.slice(2), {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
  ask: terminalAsk(),
  ...(process.stderr.isTTY ? { progressStream: process.stderr } : {}),
});
process.exitCode = code;
