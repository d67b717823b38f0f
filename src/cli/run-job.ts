/**
 * run-job: the operators' runner. Sub-commands are named as in the seed (tapes, import,
 * assign, archive, confirm, close_tape) plus open_tape, targets and bootstrap; each runs the
 * same job code as the Lambda handlers, in-process.
 * Exit codes: 0 success, 1 failure, 2 bad usage; 40, 41 and 42 as the predecessor's (EXIT below).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Command, CommanderError, Option } from 'commander';
import { createClients, destroyClients, type AwsClients } from '../lib/aws/clients.ts';
import { loadConfig, type Config } from '../lib/config.ts';
import { ArchiveError, isArchiveError, NotFoundError, OnlineTapeChangedError, UsageError, ValidationError, errorMessage } from '../lib/errors.ts';
import { createJobContext, type JobContext } from '../lib/jobs/context.ts';
import { runJob, type JobName, type JobOutput } from '../lib/jobs/registry.ts';
import { createApiClient } from './api-client.ts';
import { addRestoreCommands, restoreReport } from './restore-commands.ts';
import { addQueryCommands } from './query-commands.ts';
import { addCatalogCommands } from './catalog-commands.ts';
import { addAdoptCommands } from './adopt-commands.ts';
import { addRecoveryCommands } from './recovery-commands.ts';
import { addScrubCommands } from './scrub-commands.ts';
import { explainAwsError } from '../lib/aws/explain.ts';
import { bootstrap } from '../lib/resources/bootstrap.ts';
import { OUTPUT_FORMATS, paginate, tapesTable, targetsTable, type OutputFormat } from './output.ts';
import { InterruptedError, summarize, waitForTask } from './progress.ts';
import { formatBytes } from '../lib/domain/units.ts';
import { STALE_AFTER_SECONDS, type TaskStatus } from '../lib/catalog/task-status.ts';

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Answers a yes/no question; undefined when no terminal is attached. */
  ask?: (question: string) => Promise<boolean>;
  env?: NodeJS.ProcessEnv;
  /** Terminal stream for progress bars (stderr when it is a TTY). */
  progressStream?: NodeJS.WriteStream;
  pollIntervalMs?: number;
  /** Aborted on Ctrl-C: a wait for a task ends (the task goes on), with exit 130. */
  interrupt?: AbortSignal;
  /** Width of the terminal stdout goes to; undefined when it is not a terminal (nothing is shortened). */
  columns?: number;
  /**
   * Ctrl-C while archive or confirm works on an item: set by the process (run-job-main.ts)
   * when `graceful` is on, so that the job stops after the current item (exit 41).
   */
  stop?: StopRequest;
  /** Where `exit_file` is looked for (default: the working directory). */
  cwd?: string;
}

/** A stop asked for with Ctrl-C, honoured between items by archive and confirm. */
export interface StopRequest {
  /** A job that can stop between items is running: the first Ctrl-C sets `requested`. */
  graceful: boolean;
  requested: boolean;
}

/** The predecessor's stop file: while it exists, archive and confirm start no new item (exit 41). */
export const STOP_FILE = 'exit_file';

interface Session {
  config: Config;
  clients: AwsClients;
  ctx: JobContext;
}

function connectionHint(e: unknown, config?: Config): string | undefined {
  if (/cannot reach the API/.test(errorMessage(e))) return errorMessage(e);
  return explainAwsError(e, { endpoint: config?.endpoints.dynamodb ?? config?.endpoints.sqs, prefix: config?.prefix });
}

/**
 * How a failure ends, the same for every job: exit 2 when the command could not be understood
 * (unknown command or option, a missing argument, a value that does not parse: UsageError);
 * exit 1 when it was understood and refused or failed (not found, wrong state, conflict,
 * invalid content, a task that failed, the catalog unreachable). With --json the error is one
 * JSON object on stderr, `{"error":{"code":"...","message":"..."}}`, and stdout stays empty.
 * The predecessor's batch loops (`while run-job archive; do :; done`) also get its codes:
 * 40 nothing to do (archive, confirm) or nothing found (where_is); 41 a stop was requested
 * (`exit_file` in the working directory, or Ctrl-C: after the current item); 42 an archive
 * failed (a write failed, a target was released, or the tape is full). docs/operations.md
 * lists them.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, nothingToDo: 40, stopRequested: 41, archiveFailed: 42, interrupted: 130 } as const;

/** Ends a job with exit 41 before it starts another item. */
export class StopRequestedError extends ArchiveError {
  override readonly name = 'StopRequestedError';
  readonly code = 'STOP_REQUESTED';
  readonly status = 409;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  let session: Session | undefined;
  // Known before parsing, so even a usage error is reported as JSON.
  const wantsJson = argv.includes('--json');
  let json = false;
  /** A job that ran but whose task failed (a write or verify) ends with 1. */
  let exitCode = 0;
  const env = io.env; // undefined: this process's environment (read in config.ts)
  const stopFile = join(io.cwd ?? process.cwd(), STOP_FILE);
  /** Why no new item may start: the stop file, or Ctrl-C; undefined to go on. */
  const stopAsked = (): string | undefined =>
    existsSync(stopFile) ? `${stopFile} exists (remove it to go on)` : io.stop?.requested ? 'Ctrl-C was pressed' : undefined;
  /** Runs an item loop that a first Ctrl-C stops between items. */
  const gracefully = async <T>(f: () => Promise<T>): Promise<T> => {
    if (io.stop) io.stop.graceful = true;
    try {
      return await f();
    } finally {
      if (io.stop) io.stop.graceful = false;
    }
  };
  const refuseIfStopAsked = (what: string) => {
    const why = stopAsked();
    if (why) throw new StopRequestedError(`stop requested: ${why}; no ${what} was started.`);
  };

  const open = (opts: { config?: string }): Session => {
    if (!session) {
      const config = loadConfig(env, opts.config ? { configFile: opts.config } : {});
      const clients = createClients(config);
      session = { config, clients, ctx: createJobContext(config, clients) };
    }
    return session;
  };
  const print = (value: unknown, human: () => string) => io.out(json ? JSON.stringify(value, null, 2) : human());
  const render = () => ({ format: program.opts<{ output: OutputFormat }>().output, ...(io.columns ? { width: io.columns } : {}) });

  const program = new Command('run-job')
    .description('Tape archive jobs: import, assign, archive, confirm, close_tape and friends.')
    .option('--json', 'print results as JSON for scripts')
    .option('--config <file>', 'config file (default: TAPE_ARCHIVE_CONFIG or .tape-archive/config.json)')
    .option('--api <url>', 'run the job over the HTTP gateway at this URL instead of in-process (token: TAPE_ARCHIVE_API_TOKEN)')
    .addOption(
      new Option('--output <format>', 'tables: "table" fits the terminal, "wide" shortens nothing, "tsv" for scripts').choices(OUTPUT_FORMATS).default('table'),
    )
    .exitOverride()
    // With --json a usage error is reported once, as JSON, from the catch below.
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => (wantsJson ? undefined : io.err(s.trimEnd())) })
    .showHelpAfterError('(run "run-job --help" for usage)');
  program.hook('preAction', (cmd) => {
    json = !!cmd.opts().json;
  });

  let api: ReturnType<typeof createApiClient> | undefined;
  /** Runs a job in-process, or over the gateway with --api; same input, same output. */
  const job = async <N extends JobName>(name: N, input: unknown): Promise<JobOutput<N>> => {
    const opts = program.opts<{ api?: string; config?: string }>();
    if (opts.api) {
      api ??= createApiClient(opts.api, loadConfig(env, opts.config ? { configFile: opts.config } : {}).apiToken);
      return api(name, input);
    }
    return runJob(open(opts).ctx, name, input);
  };

  program
    .command('tapes')
    .argument('[name]', 'only this tape')
    .description('list tapes: state, online flag, used/capacity, files written and confirmed, targets assigned')
    .option('-v, --verbose', 'shorten nothing (as --output wide)')
    .action(async (name: string | undefined, o: { verbose?: boolean }) => {
      const r = await job('tapes', name ? { name } : {});
      const options = render();
      print(r, () => tapesTable(r.tapes, o.verbose && options.format === 'table' ? { ...options, format: 'wide' } : options));
    });

  program
    .command('status')
    .argument('[tape]', 'also this tape: its files per state and size, its layout as runs of file numbers, what waits for it')
    .description('the archive at a glance: online tape, tapes set aside and why, targets per state, tasks under way and stale')
    .action(async (tape: string | undefined) => {
      const r = await job('status', tape ? { tape } : {});
      print(r, () => {
        const t = r.tape;
        const head = t
          ? [
              `tape ${t.name} (pool ${t.pool}, ${t.state}): ${
                Object.entries(t.files)
                  .filter(([, v]) => v.count)
                  .map(([k, v]) => `${k} ${v.count} (${formatBytes(v.bytes)})`)
                  .join(', ') || 'no files'
              }`,
              ...t.layout.map((l) => `  ${l.from} - ${l.to} : ${l.state}`),
              `  ${t.assigned} assigned, not yet written; ${t.unassignedInPool} unassigned in pool ${t.pool}`,
            ]
          : [];
        const nonZero = (o: Record<string, number>) =>
          Object.entries(o)
            .filter(([, n]) => n > 0)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ') || 'none';
        const lines = [
          r.online.length > 1 || r.online.some((o) => o.pool !== 'default')
            ? `online tapes: ${r.online.map((o) => `${o.tape} (pool ${o.pool})`).join(', ')}`
            : `online tape: ${r.onlineTape ?? 'none (open one with "open_tape NAME")'}`,
          `tapes: ${nonZero(r.tapes)}`,
          ...r.setAside.map(
            (t) =>
              `  ${t.name} is ${t.state}: ${t.reason ?? 'no reason recorded'} (way forward: ${t.state === 'disabled' ? `"enable_tape ${t.name}" once fixed, or ` : ''}"close_tape ${t.name}")`,
          ),
          `targets: ${nonZero(r.targets)}`,
          `copies: ${r.copies.safe} target(s) safe (every required copy confirmed), ${r.copies.atRisk} at risk` +
            (r.copies.bad ? `; ${r.copies.bad} BAD copy(ies) ("at_risk", then "repair")` : '') +
            (r.copies.overdueScrub ? `; ${r.copies.overdueScrub} overdue for scrub ("scrub")` : ''),
          `tape tasks: ${r.tasks.running} running, ${r.tasks.queued} queued${r.tasks.stale.length ? `, ${r.tasks.stale.length} STALE` : ''}`,
          ...r.tasks.stale.map(
            (t) =>
              `  ${t.kind} ${t.taskId}${t.tapeName ? ` on ${t.tapeName}${t.fileNumber !== undefined ? ` file ${t.fileNumber}` : ''}` : ''}: no heartbeat since ${t.heartbeatAt ?? 'it started'}; "reconcile" drives it again`,
          ),
        ];
        return [...head, ...lines].join('\n');
      });
    });

  program
    .command('open_tape')
    .argument('<name>', 'tape name, e.g. tape1')
    .description('register a tape if new and make it the online tape')
    .option('--capacity <size>', 'native capacity, e.g. 18T (default: LTO-9, 18 TB)')
    .option('--barcode <code>', 'cartridge barcode, e.g. ABC123L9')
    .option('--pool <pool>', 'tape pool (default: default)')
    .option('--new', 'register NAME as a new tape (an unknown name is refused without it, or asked about on a terminal)')
    .action(async (name: string, o: { capacity?: string; barcode?: string; pool?: string; new?: boolean }) => {
      const input = { name, ...o, new: !!o.new };
      let r: JobOutput<'open_tape'>;
      try {
        r = await job('open_tape', input);
      } catch (e) {
        // An unknown name on a terminal: ask, so a typo never registers a tape silently.
        if (!(e instanceof NotFoundError) || o.new || !io.ask || json) throw e;
        io.err(e.message.replace(/; to register it.*$/, '.'));
        if (!(await io.ask(`Register ${name} as a new tape and bring it online? [y/N] `))) {
          io.out('nothing was changed.');
          return;
        }
        r = await job('open_tape', { ...input, new: true });
      }
      print(r, () => r.message);
    });

  program
    .command('activate_tape')
    .argument('<name>', 'a registered tape')
    .description("make a registered tape the online tape of its pool (the predecessor's name; unknown, closed and broken tapes are refused)")
    .action(async (name: string) => {
      const r = await job('activate_tape', { name });
      print(r, () => r.message);
    });

  program
    .command('unassigned')
    .description('how many scanned targets, and how many bytes, wait in each pool for a tape')
    .option('--pool <pool>', 'only this pool')
    .action(async (o: { pool?: string }) => {
      const r = await job('unassigned', o.pool ? { pool: o.pool } : {});
      print(r, () =>
        [
          `${r.count} scanned target(s) unassigned, ${formatBytes(r.bytes)}${r.awaitingScan ? `; ${r.awaitingScan} more awaiting their scan` : ''}`,
          ...(r.pools.length > 1 || r.pools.some((p) => p.pool !== 'default')
            ? r.pools.map((p) => `  pool ${p.pool}: ${p.count} target(s), ${formatBytes(p.bytes)}`)
            : []),
        ].join('\n'),
      );
    });

  program
    .command('tape_detail')
    .argument('[tape]', 'tape name (default: the online tape)')
    .argument('[fnum]', 'only this file number')
    .description('one row per tape file: number, state, size, target; -v with a file number prints only its "sha256sum -c" lines')
    .option('--pool <pool>', 'the online tape of this pool (when several pools have one)')
    .option('-v, --verbose', 'a line per regular file, "SHA-256  name", that sha256sum -c checks in the target directory')
    .action(async (tape: string | undefined, fnum: string | undefined, o: { pool?: string; verbose?: boolean }) => {
      if (fnum !== undefined && !/^\d+$/.test(fnum)) throw new UsageError(`"${fnum}" is not a file number; give the file number on the tape (1, 2, ...).`);
      const r = await job('tape_detail', {
        ...(tape ? { tape } : {}),
        ...(o.pool ? { pool: o.pool } : {}),
        ...(fnum ? { fileNumber: Number(fnum) } : {}),
        verbose: !!o.verbose,
      });
      print(r, () => {
        const sums = (r.checksums ?? []).flatMap((c) => [
          ...c.lines,
          ...(c.notListed ? [`# file ${c.fileNumber}: ${c.notListed} file(s) with names that are not UTF-8 are not listed`] : []),
          ...(c.error ? [`# file ${c.fileNumber}: no checksums: ${c.error}`] : []),
        ]);
        // One file with -v: only its lines, so that the output is a list for sha256sum -c.
        if (o.verbose && fnum !== undefined) return sums.join('\n');
        const rows = r.files.map(
          (f) =>
            `${String(f.fileNumber).padStart(5)}  ${f.state.padEnd(14)} ${(f.bytes !== undefined ? formatBytes(f.bytes) : '-').padStart(10)}  ${f.host ? `${f.host}:${f.path}` : f.targetId}`,
        );
        return [`tape ${r.tape} (pool ${r.pool}): ${r.files.length} file(s)`, ...rows, ...sums].join('\n');
      });
      if ((r.checksums ?? []).some((c) => c.error)) exitCode = 1;
    });

  program
    .command('enable_tape')
    .argument('<name>', 'a disabled tape')
    .description('put a disabled tape back in service once the agent has checked its label and end of data against the catalog')
    .option('--no-wait', 'only request the check; do not wait for the agent')
    .action(async (name: string, o: { wait: boolean }) => {
      const r = await job('enable_tape', { name });
      if (!o.wait) return print(r, () => r.message);
      if (!json) io.out(`checking tape ${r.tape}${r.reason ? ` (disabled because: ${r.reason})` : ''}; task ${r.taskId}`);
      const done = await awaitTask(r.taskId, `check of tape ${r.tape}`);
      print({ ...r, status: done.state, outcome: done.outcome, message: done.message }, () => done.message ?? String(done.outcome));
      if (done.state === 'failed') exitCode = 1;
    });

  program
    .command('remove_tape')
    .argument('<name>', 'a tape with nothing written (a mistyped open_tape, an unused cartridge)')
    .description('remove the record of a tape that holds nothing; targets assigned to it are released')
    .action(async (name: string) => {
      const r = await job('remove_tape', { name });
      print(r, () => r.message);
    });

  program
    .command('import')
    .argument('<file>', 'file listing full paths of target directories, one a line (host:/path or /path)')
    .description('add targets to the catalog and request a scan of each')
    .option('--skip-invalid', 'import the valid lines even if some are invalid')
    .option('--copies <pools>', 'the pools each new target needs a confirmed copy in, e.g. primary,offsite (default: the configured copies)')
    .action(async (file: string, o: { skipInvalid?: boolean; copies?: string }) => {
      let content: Buffer;
      try {
        content = await readFile(file);
      } catch (e) {
        throw new UsageError(
          `cannot read import list ${file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}. Give the path of a file listing one directory per line.`,
        );
      }
      // Decode strictly here so invalid UTF-8 is reported by line, not replaced silently.
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(content);
      } catch {
        const { parseImportList } = await import('../lib/domain/import-list.ts');
        const { describeProblems } = await import('../lib/jobs/targets.ts');
        throw new ValidationError(describeProblems(`${file} is not valid UTF-8 text and`, parseImportList(content, 'x').errors));
      }
      const copies = o.copies === undefined ? {} : { copies: o.copies.split(',').map((p) => p.trim()) };
      const r = await job('import', { content: text, source: file, skipInvalid: !!o.skipInvalid, ...copies });
      print(r, () => {
        const lines = [
          `imported ${r.imported.length} target(s), scans requested: ${r.scansRequested}${r.copies.join(',') === 'default' ? '' : `; copies in: ${r.copies.join(', ')}`}`,
        ];
        for (const k of r.alreadyKnown) lines.push(`  line ${k.line}: ${k.host}:${k.path} is already known (${k.id}, ${k.status}); unchanged`);
        for (const n of r.nested ?? []) {
          const more = n.excludes.length > 5 ? ` and ${n.excludes.length - 5} more` : '';
          lines.push(`  ${n.host}:${n.path} leaves out the target(s) inside it: ${n.excludes.slice(0, 5).join(', ')}${more}`);
        }
        for (const p of r.parents ?? []) lines.push(`  nested: ${p.message}`);
        for (const d of r.duplicates) lines.push(`  line ${d.line}: duplicate of line ${d.firstLine}; ignored`);
        for (const s of r.skipped.slice(0, 20)) lines.push(`  line ${s.line}: skipped: ${s.message}`);
        if (r.skipped.length > 20) lines.push(`  ... and ${r.skipped.length - 20} more invalid line(s) skipped`);
        if (r.imported.length === 0 && r.alreadyKnown.length) lines[0] = `nothing new: all ${r.alreadyKnown.length} target(s) were already imported`;
        return lines.join('\n');
      });
    });

  program
    .command('assign')
    .argument('[tape]', 'tape name (default: the online tape of each pool)')
    .description('assign every unassigned copy of a pool to a tape of that pool')
    .option('--target <id...>', 'move only these targets (allowed while never written to their tape)')
    .action(async (tape: string | undefined, o: { target?: string[] }) => {
      const r = await job('assign', { ...(tape ? { tape } : {}), ...(o.target ? { targetIds: o.target } : {}) });
      print(r, () => {
        const lines: string[] = [];
        for (const a of [r, ...(r.otherPools ?? [])]) {
          const waiting = a.assigned.filter((x) => x.awaitingScan).length;
          const pool = r.otherPools || a.pool !== 'default' ? ` (pool ${a.pool})` : '';
          lines.push(`assigned ${a.assigned.length} target(s) to ${a.tape}${pool}${waiting ? ` (${waiting} awaiting scan)` : ''}`);
          for (const x of a.assigned.filter((y) => y.from)) lines.push(`  ${x.id} moved from ${x.from}`);
          for (const x of a.refused) lines.push(`  ${x.id}: not assigned: ${x.reason}`);
        }
        return lines.join('\n');
      });
    });

  /**
   * Waits for a task with the progress bar. Ctrl-C ends the wait, not the task: it says what
   * goes on and how to follow it (InterruptedError, exit 130).
   */
  const awaitTask = async (taskId: string, what: string): Promise<TaskStatus> => {
    try {
      return await waitForTask({
        poll: async () => job('task', { taskId }),
        ...(!json && io.progressStream ? { stream: io.progressStream } : {}),
        ...(io.pollIntervalMs ? { intervalMs: io.pollIntervalMs } : {}),
        ...(io.interrupt ? { signal: io.interrupt } : {}),
        hint: (m) => io.err(`note: ${m}`),
      });
    } catch (e) {
      if (!(e instanceof InterruptedError)) throw e;
      throw new InterruptedError(`interrupted: the ${what} continues on the agent (task ${taskId}); follow it with "run-job task ${taskId} --wait".`);
    }
  };
  /** One line per event with --json --all (a stream for scripts), else a human line. */
  const event = (value: Record<string, unknown>, human: string) => io.out(json ? JSON.stringify(value) : human);
  const finished = (done: TaskStatus) => {
    const figures = summarize(done);
    return `${done.message ?? done.outcome}${figures && done.state === 'succeeded' ? ` (${figures})` : ''}`;
  };

  /** One pool's archive: one write, or with --all one after the other until its tape is full or nothing is left. */
  /** `results` collects this pool's writes as they go, so that they are kept if a later step throws. */
  const archivePool = async (
    pool: string | undefined,
    o: { all?: boolean; wait: boolean },
    say: (v: Record<string, unknown>, human: string) => void,
    results: Record<string, unknown>[] = [],
  ) => {
    let failed = false;
    let full = false;
    let stopRequested = false;
    let firstTape: string | undefined;
    let total = 0;
    let bytes = 0;
    let stopped = '';
    for (;;) {
      const why = results.length ? stopAsked() : undefined;
      if (why) {
        stopRequested = true;
        stopped = `stop requested: ${why}`;
        break;
      }
      let r: JobOutput<'archive'>;
      try {
        r = await job('archive', firstTape ? { tape: firstTape } : pool ? { pool } : {});
      } catch (e) {
        // open_tape ran elsewhere: stop and say so, rather than end "idle" on a tape nobody meant.
        if (!(e instanceof OnlineTapeChangedError)) throw e;
        throw new OnlineTapeChangedError(`archive --all stopped after ${results.length} write(s): ${e.message}`);
      }
      if (r.status === 'refused') throw new UsageError(`archive on pool ${r.pool}: ${r.message}`); // only beside other pools; not asked for here
      if (firstTape === undefined && o.all && r.status === 'started') {
        // n of N: what is assigned and scanned now, this one included.
        const ready = (await job('targets', { tape: r.tape, state: 'assigned' })).targets.length;
        total = ready + 1;
      }
      firstTape ??= r.tape;
      for (const x of r.released ?? []) {
        failed = true; // a target was left behind: say so, and do not end with success
        say({ event: 'released', tape: r.tape, targetId: x.id, reason: x.reason }, `NOT ARCHIVED: ${x.id} released from ${r.tape}: ${x.reason}`);
      }
      if (r.status === 'idle') {
        say({ event: 'idle', tape: r.tape, pool: r.pool, message: r.message }, r.message);
        results.push(r);
        stopped = 'nothing more to archive';
        break;
      }
      const n = results.filter((x) => x.status !== 'idle').length + 1;
      const of = total ? ` (${n} of ${Math.max(total, n)})` : '';
      say(
        {
          event: 'started',
          tape: r.tape,
          pool: r.pool,
          fileNumber: r.fileNumber,
          targetId: r.targetId,
          path: r.path,
          taskId: r.taskId,
          n,
          of: total || undefined,
        },
        `writing ${r.path} (${r.targetId}) to ${r.tape} file ${r.fileNumber}${of}; task ${r.taskId}`,
      );
      if (!o.wait) {
        results.push(r);
        break;
      }
      const done = await awaitTask(r.taskId, `write of ${r.path} to ${r.tape} file ${r.fileNumber}`);
      const out = { ...r, status: done.state, outcome: done.outcome, message: done.message };
      results.push(out);
      say(
        { event: 'done', ...out, bytes: done.bytesDone, startedAt: done.startedAt, finishedAt: done.updatedAt },
        `${done.state === 'succeeded' ? '' : 'FAILED: '}${r.tape} file ${r.fileNumber}: ${finished(done)}`,
      );
      if (done.state === 'succeeded' && done.outcome === 'archived') bytes += done.bytesDone;
      if (done.state === 'failed') failed = true;
      if (done.outcome === 'end-of-medium') full = true;
      if (!o.all || done.state === 'failed' || done.outcome === 'end-of-medium') {
        stopped = done.state === 'failed' ? 'a write failed' : done.outcome === 'end-of-medium' ? `${r.tape} is full` : '';
        break;
      }
    }
    if (o.all && o.wait) {
      const archived = results.filter((x) => x.outcome === 'archived').length;
      const bad = results.filter((x) => x.status === 'failed').length;
      const left = firstTape ? (await job('targets', { tape: firstTape, state: 'assigned' })).targets.length : 0;
      say(
        { event: 'summary', tape: firstTape, pool, archived, failed: bad, bytes, leftAssigned: left, stopped },
        `archive --all${firstTape ? ` on ${firstTape}` : ''}: ${archived} archived (${formatBytes(bytes)}), ${bad} failed, ${left} still assigned${stopped ? `; stopped: ${stopped}` : ''}`,
      );
    }
    return { results, failed, full, stopRequested };
  };

  program
    .command('archive')
    .description("one archiving action per pool: the next assigned copy goes to the next file number of its pool's online tape")
    .option('--pool <pool>', 'only this pool (default: every pool with an online tape, one after the other)')
    .option('--all', 'keep archiving until nothing is assigned or the tape is full (with --json: one JSON line per event)')
    .option('--repeat', "the same as --all (the predecessor's name)")
    .option('--no-wait', 'only enqueue the write; do not wait for the agent')
    .action(async (opts: { pool?: string; all?: boolean; repeat?: boolean; wait: boolean }) => {
      const o = { ...opts, all: !!(opts.all || opts.repeat) };
      refuseIfStopAsked('write');
      const stream = !!o.all && json;
      const say = (value: Record<string, unknown>, human: string) => (stream ? io.out(JSON.stringify(value)) : json ? undefined : io.out(human));
      // Every pool with an online tape, one after the other (a single drive writes one tape at a time).
      const online = o.pool ? [o.pool] : [...new Set((await job('tapes', {})).tapes.filter((t) => t.online).map((t) => t.pool))].sort();
      const pools: (string | undefined)[] = online.length ? online : [undefined];
      const results: Record<string, unknown>[] = [];
      let failed = false;
      let full = false;
      let stopRequested = false;
      await gracefully(async () => {
        for (const pool of pools) {
          if (pools.length > 1 && !json) io.out(`pool ${pool}:`);
          if (results.length && stopAsked()) {
            stopRequested = true;
            say({ event: 'stopped', pool, reason: `stop requested: ${stopAsked()}` }, `pool ${pool} not started: stop requested: ${stopAsked()}`);
            continue;
          }
          const mine: Record<string, unknown>[] = [];
          try {
            const p = await archivePool(pool, o, say, mine);
            failed = p.failed || failed;
            full = p.full || full;
            stopRequested = p.stopRequested || stopRequested;
            results.push(...mine);
          } catch (e) {
            // Beside other pools, a pool that cannot write is reported and the others go on; the
            // exit is 1. Ctrl-C stops them all.
            if (pools.length === 1 || !isArchiveError(e) || e instanceof InterruptedError) throw e;
            failed = true;
            results.push(...mine, { status: mine.length ? 'failed' : 'refused', pool, code: e.code, message: e.message });
            say({ event: mine.length ? 'failed' : 'refused', pool, code: e.code, message: e.message }, `FAILED: pool ${pool}: ${e.message}`);
          }
        }
      });
      if (json && !stream) io.out(JSON.stringify(o.all || results.length > 1 ? { results } : results[0], null, 2));
      // Batch loops stop on any of these; a failure or a full tape comes first.
      if (failed || full) exitCode = EXIT.archiveFailed;
      else if (stopRequested) exitCode = EXIT.stopRequested;
      else if (results.every((x) => x.status === 'idle')) exitCode = EXIT.nothingToDo;
    });

  program
    .command('confirm')
    .argument('[which]', 'file number on the tape, or "next"', 'next')
    .description('read a tape file back and verify every checksum')
    .option('--tape <name>', 'tape (default: the online tape)')
    .option('--pool <pool>', 'the online tape of this pool (when several pools have one)')
    .option('--retry', 're-run confirm on an already confirmed file')
    .option('--all', 'confirm every archived file of the tape, one after the other (with --json: one JSON line per event)')
    .option('--no-db-update', 'verify and report without changing the catalog')
    .option('--no-wait', 'only request the verify; do not wait for the agent')
    .action(async (which: string, o: { tape?: string; pool?: string; retry?: boolean; all?: boolean; dbUpdate: boolean; wait: boolean }) => {
      if (o.all && (which !== 'next' || o.retry || !o.wait || !o.dbUpdate)) {
        throw new UsageError('confirm --all confirms "next" until nothing is left; it takes no file number, --retry, --no-wait or --no-db-update.');
      }
      const input = { which, ...(o.tape ? { tape: o.tape } : {}), ...(o.pool ? { pool: o.pool } : {}), retry: !!o.retry, noDbUpdate: !o.dbUpdate };
      refuseIfStopAsked('verify');
      if (!o.all) {
        const r = await job('confirm', input);
        if (r.status === 'idle') exitCode = EXIT.nothingToDo;
        if (r.status !== 'requested' || !o.wait) {
          print(r, () =>
            r.status === 'requested'
              ? `verify of ${r.tape} file ${r.fileNumber} (${r.targetId}) requested; task ${r.taskId}${r.updateCatalog ? '' : ' (catalog will not be changed)'}`
              : r.message,
          );
          return;
        }
        if (!json)
          io.out(`verifying ${r.tape} file ${r.fileNumber} (${r.targetId}); task ${r.taskId}${r.updateCatalog ? '' : ' (catalog will not be changed)'}`);
        const done = await awaitTask(r.taskId, `verify of ${r.tape} file ${r.fileNumber}`);
        print({ ...r, status: done.state, outcome: done.outcome, message: done.message }, () => finished(done));
        if (done.state === 'failed') exitCode = 1;
        return;
      }
      let confirmed = 0;
      let bad = 0;
      let stopped = '';
      let stopRequested = false;
      let tape = o.tape;
      await gracefully(async () => {
        for (;;) {
          const why = confirmed + bad ? stopAsked() : undefined;
          if (why) {
            stopRequested = true;
            stopped = `stop requested: ${why}`;
            break;
          }
          const r = await job('confirm', { ...input, ...(tape ? { tape } : {}) });
          tape = r.tape; // the same tape to the end, even if another is opened meanwhile
          if (r.status === 'idle') {
            event({ event: 'idle', tape: r.tape, message: r.message }, r.message);
            break;
          }
          event({ event: 'started', ...r }, `verifying ${r.tape} file ${r.fileNumber} (${r.targetId}); task ${r.taskId}`);
          const done = await awaitTask(r.taskId, `verify of ${r.tape} file ${r.fileNumber}`);
          if (done.state === 'succeeded') confirmed++;
          else bad++;
          event(
            { event: 'done', ...r, status: done.state, outcome: done.outcome, message: done.message },
            `${done.state === 'succeeded' ? '' : 'FAILED: '}${finished(done)}`,
          );
          // A failure may be the drive or the cartridge, not the file: stop before it marks every file of the tape.
          if (done.state !== 'succeeded') {
            stopped = `file ${r.fileNumber} failed; look at it ("targets --tape ${r.tape}") before confirming the rest`;
            break;
          }
        }
      });
      event(
        { event: 'summary', tape, confirmed, failed: bad, ...(stopped ? { stopped } : {}) },
        `confirm --all on ${tape}: ${confirmed} confirmed, ${bad} failed${stopped ? `; stopped: ${stopped}` : ''}`,
      );
      if (bad) exitCode = EXIT.failed;
      else if (stopRequested) exitCode = EXIT.stopRequested;
      else if (!confirmed) exitCode = EXIT.nothingToDo;
    });

  program
    .command('close_tape')
    .argument('[tape]', 'tape name (default: the online tape)')
    .description('mark a tape closed and offline, releasing targets assigned but not archived')
    .option('--pool <pool>', 'the online tape of this pool (when several pools have one)')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--no-wait', 'do not wait for the catalog snapshot appended to the tape (follow it with "task ID --wait")')
    .action(async (tape: string | undefined, o: { yes?: boolean; pool?: string; wait: boolean }) => {
      const base = { ...(tape ? { tape } : {}), ...(o.pool ? { pool: o.pool } : {}) };
      let yes = !!o.yes;
      let preview: string | undefined;
      if (!yes) {
        const previewed = await job('close_tape', { ...base, yes: false });
        preview = previewed.tape;
        if (previewed.status === 'needs-confirmation') {
          for (const w of previewed.warnings) io.err(`warning: ${w}`);
          if (!io.ask) {
            throw new UsageError(`closing ${previewed.tape} needs confirmation and no terminal is attached; nothing was changed. Run again with --yes.`);
          }
          if (!(await io.ask(`Close tape ${previewed.tape}? [y/N] `))) {
            io.out(`tape ${previewed.tape} left as it was.`);
            return;
          }
        }
        yes = true;
      }
      // The tape previewed and confirmed, even if another was opened meanwhile.
      const r = await job('close_tape', { ...base, ...(preview ? { tape: preview } : {}), yes });
      print(r, () => (r.status === 'closed' ? [...(o.yes ? r.warnings.map((w) => `warning: ${w}`) : []), r.message].join('\n') : r.message));
      // The tape is closed either way; a snapshot that failed is a warning with its way forward.
      if (r.status === 'closed' && r.snapshot && o.wait) {
        const s = await awaitTask(r.snapshot.taskId, `catalog snapshot on ${r.tape}`);
        if (!json) io.out(s.state === 'succeeded' ? (s.message ?? '') : `warning: ${s.message ?? `the catalog snapshot on ${r.tape} ${s.state}`}`);
        else if (s.state !== 'succeeded') io.err(`warning: ${s.message ?? ''}`);
      }
    });

  program
    .command('targets')
    .description('list targets: what is where, copy by copy, and whether each is safe')
    .addOption(new Option('--state <state>', 'only targets in this state (a copy in it), or "safe" / "at-risk" (every required copy confirmed, or not)'))
    .option('--tape <name>', 'only targets on this tape (and those that left a bad file on it)')
    .option('--pool <pool>', 'only targets with a copy in this pool (shown by that copy)')
    .option('--limit <n>', 'at most this many rows (a page); 0 = all', '0')
    .option('--page <k>', 'which page of --limit rows', '1')
    .action(async (o: { state?: string; tape?: string; pool?: string; limit: string; page: string }) => {
      for (const [flag, v, min] of [
        ['--limit', o.limit, 0],
        ['--page', o.page, 1],
      ] as const) {
        if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`${flag} "${v}" is not a whole number${min ? ' of 1 or more' : ''}.`);
      }
      const r = await job('targets', { ...(o.state ? { state: o.state } : {}), ...(o.tape ? { tape: o.tape } : {}), ...(o.pool ? { pool: o.pool } : {}) });
      const page = paginate(r.targets, Number(o.limit), Number(o.page), 'targets');
      print({ ...r, targets: page.rows, ...(page.footer ? { page: page.footer } : {}) }, () =>
        [targetsTable(page.rows, render()), ...(page.footer ? [page.footer] : [])].join('\n'),
      );
    });

  program
    .command('set_copies')
    .argument('[ids...]', 'target ids (or --all-imported)')
    .description('set the pools each target needs a confirmed copy in: raising creates the missing copies, lowering keeps copies on tape as extra')
    .requiredOption('--pools <pools>', 'the new copy policy, e.g. primary,offsite')
    .option('--all-imported', 'every target in the catalog')
    .option('--force', 'allow dropping a pool whose copy holds data on tape (that copy is kept as an extra copy, never deleted)')
    .action(async (ids: string[], o: { pools: string; allImported?: boolean; force?: boolean }) => {
      const r = await job('set_copies', {
        pools: o.pools.split(',').map((p) => p.trim()),
        ...(ids.length ? { targetIds: ids } : {}),
        allImported: !!o.allImported,
        force: !!o.force,
      });
      print(r, () =>
        [
          r.message,
          ...r.changed.map(
            (c) =>
              `  ${c.id}: ${c.from.join(',')} -> ${r.policy.join(',')}${c.created.length ? `; new copies in ${c.created.join(', ')}` : ''}${c.released.length ? `; released in ${c.released.join(', ')}` : ''}${c.keptAsExtra.length ? `; kept as extra: ${c.keptAsExtra.join(', ')}` : ''}`,
          ),
        ].join('\n'),
      );
    });

  program
    .command('migrate')
    .description('upgrade a catalog written by release 0.3 to copies (run once after upgrading; safe to repeat)')
    .action(async () => {
      const r = await job('migrate', {});
      print(r, () => `${r.message}${r.onlineMoved ? `\nthe online tape ${r.onlineMoved.tape} is now the online tape of pool ${r.onlineMoved.pool}` : ''}`);
    });

  program
    .command('reconcile')
    .description('re-send scans, writes, verifies and tape checks whose tasks were lost or whose agent died')
    .option('--older-than <seconds>', 'queued or pending work untouched this long counts as lost', '900')
    .option('--stale-after <seconds>', 'a running task with no heartbeat this long counts as dead (0: every running task)', String(STALE_AFTER_SECONDS))
    .action(async (o: { olderThan: string; staleAfter: string }) => {
      for (const [flag, v] of [
        ['--older-than', o.olderThan],
        ['--stale-after', o.staleAfter],
      ] as const) {
        if (!/^\d+$/.test(v)) throw new UsageError(`${flag} "${v}" is not a number of seconds.`);
      }
      const r = await job('reconcile', { olderThanSeconds: Number(o.olderThan), staleAfterSeconds: Number(o.staleAfter) });
      print(
        r,
        () =>
          `re-sent ${r.scansResent.length} scan(s), ${r.writesResent.length} write(s), ${r.verifiesResent.length} verify(s), ${r.checksResent.length} tape check(s)`,
      );
    });

  program
    .command('rescan')
    .argument('[ids...]', 'target ids')
    .description('scan targets again (a failed scan, or a source that changed since its scan)')
    .option('--failed', 'every target whose scan failed or whose source changed')
    .action(async (ids: string[], o: { failed?: boolean }) => {
      const r = await job('rescan', { ...(ids.length ? { targetIds: ids } : {}), failed: !!o.failed });
      print(r, () => `rescan requested for ${r.rescanned.length} target(s)${r.rescanned.map((t) => `\n  ${t.id} ${t.path}`).join('')}`);
    });

  program
    .command('discover')
    .description('scheduled import on demand: find new target directories under the import roots and import them')
    .option('--root <host:/path...>', 'roots to look under (default: TAPE_ARCHIVE_IMPORT_ROOTS)')
    .option('--pattern <glob>', 'target directories below each root, e.g. "2026-*/obs-*" (default: TAPE_ARCHIVE_IMPORT_PATTERN)')
    .action(async (o: { root?: string[]; pattern?: string }) => {
      const r = await job('discover', { ...(o.root ? { roots: o.root } : {}), ...(o.pattern ? { pattern: o.pattern } : {}) });
      print(r, () =>
        r.requested
          .map((x) => `looking for ${x.pattern} under ${x.host}:${x.root} (task ${x.taskId}); new directories are imported as they are found`)
          .join('\n'),
      );
    });

  const tools = {
    job,
    print,
    out: io.out,
    json: () => json,
    awaitTask,
    failed: () => {
      exitCode = 1;
    },
  };
  addRestoreCommands(program, tools);
  addRecoveryCommands(program, tools);
  addScrubCommands(program, tools);
  addQueryCommands(program, {
    ...tools,
    nothingFound: () => {
      exitCode = EXIT.nothingToDo;
    },
  });

  program
    .command('task')
    .argument('<id>', 'task id printed by archive and confirm')
    .description('show where a tape task stands')
    .option('--wait', 'wait for it to finish, with the progress bar (exit 1 if it fails)')
    .action(async (id: string, o: { wait?: boolean }) => {
      const r = o.wait ? { ...(await awaitTask(id, 'task')), stale: false } : await job('task', { taskId: id });
      const stale = r.stale ? ` (STALE: no heartbeat from the agent since ${r.heartbeatAt ?? r.updatedAt}; "reconcile" drives it again)` : '';
      print(
        r,
        () =>
          `${r.kind} ${r.taskId}: ${r.state}${stale}${r.outcome ? ` (${r.outcome})` : ''} ${r.bytesDone}/${r.bytesTotal} bytes${r.message ? `\n${r.restore ? restoreReport(r) : finished(r)}` : ''}`,
      );
      if (o.wait && r.state === 'failed') exitCode = 1;
    });

  addCatalogCommands(program, { ...tools, session: () => open(program.opts()), overApi: () => !!program.opts().api });
  addAdoptCommands(program, { ...tools, context: () => open(program.opts()).ctx, overApi: () => !!program.opts().api });

  program
    .command('bootstrap')
    .description('create the tables and queues on the configured endpoint (idempotent)')
    .action(async () => {
      if (program.opts().api) throw new UsageError('bootstrap talks to DynamoDB and SQS directly; run it without --api.');
      const s = open(program.opts());
      const r = await bootstrap(s.config, s.clients);
      print(r, () => `tables: ${r.tables.join(', ')}\nqueues: ${Object.values(r.queueUrls).join(', ')}\ncreated: ${r.created.join(', ') || 'nothing new'}`);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (e) {
    const fail = (code: string, message: string, exit: number): number => {
      io.err(wantsJson ? JSON.stringify({ error: { code, message } }) : `error: ${message}`);
      return exit;
    };
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help' || e.code === 'commander.version') return EXIT.ok;
      // Commander has printed its message already unless --json.
      return wantsJson ? fail('BAD_USAGE', e.message.replace(/^error: /, ''), EXIT.usage) : EXIT.usage;
    }
    const hint = connectionHint(e, session?.config);
    if (hint) return fail('UNREACHABLE', hint, EXIT.failed);
    if (e instanceof InterruptedError) return fail(e.code, e.message, EXIT.interrupted);
    if (e instanceof StopRequestedError) return fail(e.code, e.message, EXIT.stopRequested);
    if (isArchiveError(e)) return fail(e.code, e.message, e instanceof UsageError ? EXIT.usage : EXIT.failed);
    // A bug, not an expected condition: the stack helps whoever fixes it.
    return fail('INTERNAL', wantsJson ? errorMessage(e) : ((e as Error).stack ?? String(e)), EXIT.failed);
  } finally {
    if (session) destroyClients(session.clients);
  }
}

export function terminalAsk(): CliIo['ask'] {
  if (!process.stdin.isTTY) return undefined;
  return async (q) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      return /^y(es)?$/i.test((await rl.question(q)).trim());
    } catch (e) {
      // Ctrl-C or Ctrl-D at the question: no answer, so nothing is done.
      if ((e as { code?: string }).code === 'ABORT_ERR' || (e as Error).name === 'AbortError')
        throw new InterruptedError('interrupted: no answer, nothing was changed.');
      throw e;
    } finally {
      rl.close();
    }
  };
}
