/**
 * run-job's disaster-recovery commands: `rebuild_catalog` (the catalog from tapes alone) waits
 * for its task with the progress bar, then prints every tape's outcome and every note (a tape
 * file not catalogued, a disagreement with the catalog).
 */
import type { Command } from 'commander';
import type { TaskStatus } from '../lib/catalog/task-status.ts';
import type { CommandTools } from './restore-commands.ts';

export function addRecoveryCommands(program: Command, t: CommandTools): void {
  program
    .command('rebuild_catalog')
    .argument('[tapes...]', 'the tapes to read (their names, as on their labels)')
    .description('recreate the catalog from tapes alone: every label, header and trailer (with --verify, every byte)')
    .option('--all', 'every tape the library holds (a drive without a changer: the tape loaded)')
    .option('--verify', 'also read back every file and check every checksum: the copies come back confirmed')
    .option('--merge', 'into a catalog that is not empty: add what is missing and report every disagreement; nothing there is changed')
    .option('--no-wait', 'only request the rebuild; follow it with "task ID --wait"')
    .action(async (tapes: string[], o: { all?: boolean; verify?: boolean; merge?: boolean; wait: boolean }) => {
      const r = await t.job('rebuild_catalog', { tapes, all: !!o.all, verify: !!o.verify, merge: !!o.merge });
      if (!o.wait) return t.print(r, () => `${r.message}\nfollow it with "task ${r.taskId} --wait".`);
      if (!t.json()) t.out(r.message);
      const s = await t.awaitTask(r.taskId, 'rebuild of the catalog');
      if (s.state !== 'succeeded') t.failed();
      t.print({ ...r, result: s }, () => rebuildReport(s));
    });
}

/** The end of a rebuild for the operator: what each tape gave, then every note. */
export function rebuildReport(s: TaskStatus): string {
  const lines = [`rebuild ${s.state}: ${s.message ?? ''}`];
  const notes = s.notes ?? [];
  if (notes.length) lines.push(`${notes.length} note(s):`, ...notes.map((n) => `  ${n}`));
  else lines.push('no disagreements; every tape file read was catalogued.');
  lines.push('Next: "status" and "targets --state at-risk"; "enable_tape NAME" before writing to a rebuilt tape again.');
  return lines.join('\n');
}
