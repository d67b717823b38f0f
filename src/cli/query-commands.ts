/**
 * run-job's `where_is`: which targets and copies hold files of a base name, a relative path or
 * a glob. One block per match: where it is on the data host, its size and checksum, then each
 * copy (pool, tape, file number, state). Nothing found ends with exit 40 (EXIT.nothingToDo).
 */
import type { Command } from 'commander';
import { formatBytes } from '../lib/domain/units.ts';
import { UsageError } from '../lib/errors.ts';
import type { CommandTools } from './restore-commands.ts';

export function addQueryCommands(program: Command, t: CommandTools & { nothingFound: () => void }): void {
  program
    .command('where_is')
    .argument('<pattern>', 'a base name (fits.dat), a path relative to its target (raw/fits.dat), or a glob (*.fits, raw/*.dat)')
    .description('which targets, tapes and file numbers hold a file, with its size and SHA-256, from the catalog (exit 40 if nothing matches)')
    .option('--target <id>', 'only in this target')
    .option('--limit <n>', 'at most this many matches (default 1000)')
    .action(async (pattern: string, o: { target?: string; limit?: string }) => {
      if (o.limit !== undefined && !/^\d+$/.test(o.limit)) throw new UsageError(`--limit "${o.limit}" is not a number; give how many matches to show.`);
      const r = await t.job('where_is', { pattern, ...(o.target ? { target: o.target } : {}), ...(o.limit ? { limit: Number(o.limit) } : {}) });
      if (!r.matches.length) t.nothingFound();
      t.print(r, () => {
        const lines: string[] = [];
        for (const m of r.matches) {
          const what = m.type === 'file' ? `${formatBytes(m.size)}  sha256 ${m.sha256 ?? '-'}` : `(${m.type})`;
          lines.push(`${m.host}:${m.dir.replace(/\/$/, '')}/${m.path}  ${what}${m.current ? '' : '  (from an earlier scan, still on tape)'}`);
          const copies = m.copies.map((c) => (c.tape ? `${c.pool}: ${c.tape} file ${c.fileNumber} ${c.state}` : `${c.pool}: not on tape (${c.state})`));
          lines.push(`    ${m.targetId}  ${copies.join('; ') || 'no copy'}`);
        }
        lines.push(r.message);
        return lines.join('\n');
      });
    });
}
