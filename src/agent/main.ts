/**
 * tape-agent: the on-premise agent (run), a drive self-test for real drives (selftest), and
 * operator commands for the virtual tape library (vtl).
 */
import { Command, CommanderError } from 'commander';
import { createClients, destroyClients } from '../lib/aws/clients.ts';
import { loadConfig } from '../lib/config.ts';
import { errorMessage, isArchiveError } from '../lib/errors.ts';
import { explainAwsError } from '../lib/aws/explain.ts';
import { checkScratchTape, NotScratchError } from '../lib/tape/scratch-check.ts';
import { createJobContext, restrict } from '../lib/jobs/context.ts';
import { AGENT_ACCESS } from '../lib/resources/access.ts';
import { formatInspection, inspectTape } from './inspect.ts';
import { parseBytes } from '../lib/domain/units.ts';
import type { TapeDrive } from '../lib/tape/drive.ts';
import { runDriveSelfTest } from '../lib/tape/self-test.ts';
import { StTapeDrive } from '../lib/tape/st-drive.ts';
import { VirtualTapeLibrary } from '../lib/tape/virtual-library.ts';
import { TapeAgent } from './agent.ts';
import { loadAgentConfig, type AgentConfig, type DriveConfig } from './config.ts';
import { agentLogger } from './log.ts';
import { Reporter } from './reporter.ts';
import { createDataSources } from './sources.ts';

export function openDrive(d: DriveConfig, blockSize: number): TapeDrive {
  return d.kind === 'virtual' ? new VirtualTapeLibrary(d.library, { blockSize }).drive(d.id) : new StTapeDrive(d.device, { blockSize });
}

/** `env`: the environment to read the catalog settings from (default: this process's, in config.ts). */
export async function runAgent(agentConfig: AgentConfig, env?: NodeJS.ProcessEnv): Promise<void> {
  const log = agentLogger(agentConfig.logLevel);
  const config = loadConfig(env);
  const clients = createClients(config);
  // The agent touches only what AGENT_ACCESS declares (the IAM policy in docs/operations.md).
  const ctx = restrict(createJobContext(config, clients), AGENT_ACCESS, 'the tape agent');
  const sources = createDataSources(agentConfig);
  const agent = new TapeAgent(
    { ctx, sources, reporter: new Reporter(ctx.queues, agentConfig.progressIntervalMs), log, blockSize: agentConfig.blockSize, staging: agentConfig.staging },
    {
      drives: agentConfig.drives.map((d) => openDrive(d, agentConfig.blockSize)),
      scanConcurrency: agentConfig.scanConcurrency,
      visibilityTimeout: agentConfig.visibilityTimeout,
      heartbeatInterval: agentConfig.heartbeatInterval,
      waitTimeSeconds: agentConfig.waitTimeSeconds,
      drainTimeoutSeconds: agentConfig.drainTimeoutSeconds,
    },
  );
  let signals = 0;
  const done = new Promise<void>((resolve) => {
    const onSignal = (sig: string) => {
      signals++;
      if (signals === 1) {
        log('info', 'stopping: finishing the running tasks, taking no new ones (signal again to abort them)', { signal: sig, running: agent.runningTasks });
        void agent.stop().then(resolve);
      } else {
        log('warn', 'aborting running tasks now', { signal: sig, running: agent.runningTasks });
        void agent.stop({ force: true }).then(() => process.exit(1));
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await agent.start();
  await done;
  await sources.closeAll();
  destroyClients(clients);
}

/** The catalog's word on a tape name, for the self-test's scratch check; throws when the catalog cannot be asked. */
function catalogLookup(env?: NodeJS.ProcessEnv): (tapeName: string) => Promise<string | undefined> {
  return async (tapeName) => {
    let clients: ReturnType<typeof createClients> | undefined;
    try {
      const config = loadConfig(env);
      clients = createClients(config);
      const ctx = restrict(createJobContext(config, clients), AGENT_ACCESS, 'tape-agent selftest');
      const tape = await ctx.catalog.getTape(tapeName);
      return tape ? `${tape.state}, ${tape.filesWritten} file(s) recorded` : undefined;
    } catch (e) {
      throw new NotScratchError(
        `the tape is labelled ${tapeName} and the catalog cannot be asked whether it knows it (${errorMessage(e)}); nothing was erased. Make the catalog reachable (TAPE_ARCHIVE_CONFIG, AWS_ENDPOINT_URL) and try again.`,
      );
    } finally {
      if (clients) destroyClients(clients);
    }
  };
}

/** `env`: where the catalog settings are read from (default: this process's environment). */
export async function main(argv: string[], env?: NodeJS.ProcessEnv): Promise<number> {
  const program = new Command('tape-agent').description('On-premise tape agent: takes scan, write and verify tasks from the queues.').exitOverride();

  program
    .command('run')
    .description('run the agent until SIGTERM (first: drain, second: abort)')
    .option('--config <file>', 'agent config file (default: TAPE_AGENT_CONFIG)')
    .action(async (o: { config?: string }) => {
      await runAgent(loadAgentConfig(o.config));
    });

  program
    .command('selftest')
    .description('write, position and read back test files on a scratch tape (ERASES the tape), like btape test')
    .option('--device <dev>', 'st device, e.g. /dev/nst0')
    .option('--vtl <dir>', 'or a virtual tape library directory')
    .option('--tape <name>', 'tape to load (virtual library)', 'selftest')
    .option('--files <n>', 'files to write', '4')
    .option('--size <bytes>', 'bytes per file', '64MiB')
    .option('--block-size <bytes>', 'fixed block size', '256KiB')
    .option('--yes-erase', 'confirm that everything on the tape may be destroyed')
    .option(
      '--force',
      'erase a tape that holds data or a label the catalog does not know (a tape whose label names a catalogued tape is always refused; give the --block-size it was written with, or its label reads as no label)',
    )
    .action(async (o: { device?: string; vtl?: string; tape: string; files: string; size: string; blockSize: string; yesErase?: boolean; force?: boolean }) => {
      if (!o.device === !o.vtl) throw new CommanderError(2, 'usage', 'give exactly one of --device or --vtl');
      if (!o.yesErase) throw new CommanderError(2, 'usage', 'the self-test erases the tape: add --yes-erase to confirm');
      const blockSize = parseBytes(o.blockSize);
      const bytesPerFile = parseBytes(o.size);
      if (!blockSize || !bytesPerFile) throw new CommanderError(2, 'usage', 'sizes look like 64MiB or 262144');
      let drive: TapeDrive;
      if (o.vtl) {
        const lib = new VirtualTapeLibrary(o.vtl, { blockSize });
        if (!(await lib.listTapes()).some((t) => t.name === o.tape)) await lib.createTape(o.tape, { capacityBytes: 100 * bytesPerFile });
        const vd = lib.drive('selftest');
        await vd.load(o.tape);
        drive = vd;
      } else {
        drive = new StTapeDrive(o.device!, { blockSize });
      }
      if (!/^\d+$/.test(o.files) || Number(o.files) < 3) throw new CommanderError(2, 'usage', `--files "${o.files}": give a whole number of 3 or more`);
      // Read only: what is on the tape, and may it be erased?
      const scratch = await checkScratchTape(drive, { force: !!o.force, catalogState: catalogLookup(env) });
      if (scratch.files > 0) console.log(`erasing ${scratch.files} file(s)${scratch.label ? ` of tape ${scratch.label}` : ''} (--force)`);
      const report = await runDriveSelfTest(drive, { files: Number(o.files), bytesPerFile, log: (l) => console.log(l) });
      console.log(JSON.stringify(report, null, 2));
      if (!report.passed) process.exitCode = 1;
    });

  program
    .command('inspect')
    .description('show what is on a tape, read only: the label and the header of every tape file')
    .option('--device <dev>', 'st device with the tape loaded, e.g. /dev/nst0')
    .option('--vtl <dir>', 'or a virtual tape library directory')
    .option('--tape <name>', 'the tape to load (virtual library)')
    .option('--json', 'print JSON')
    .action(async (o: { device?: string; vtl?: string; tape?: string; json?: boolean }) => {
      if (!o.device === !o.vtl) throw new CommanderError(2, 'usage', 'give exactly one of --device or --vtl');
      let drive: TapeDrive;
      if (o.vtl) {
        if (!o.tape) throw new CommanderError(2, 'usage', 'with --vtl, name the tape to inspect with --tape');
        const vd = new VirtualTapeLibrary(o.vtl).drive('inspect');
        await vd.load(o.tape);
        drive = vd;
      } else {
        drive = new StTapeDrive(o.device!, {});
      }
      const report = await inspectTape(drive);
      console.log(o.json ? JSON.stringify(report, null, 2) : formatInspection(report).join('\n'));
      if (!report.label) process.exitCode = 1;
    });

  const vtl = program.command('vtl').description('manage a virtual tape library');
  vtl
    .command('create')
    .argument('<library>', 'library directory')
    .argument('<tape>', 'tape name')
    .option('--capacity <size>', 'capacity', '18T')
    .action(async (library: string, tape: string, o: { capacity: string }) => {
      const capacityBytes = parseBytes(o.capacity);
      if (!capacityBytes) throw new CommanderError(2, 'usage', `capacity "${o.capacity}" is not a size`);
      await new VirtualTapeLibrary(library).createTape(tape, { capacityBytes });
      console.log(`virtual tape ${tape} created in ${library} (${o.capacity})`);
    });
  vtl
    .command('import-tapetown')
    .description("adopt a tape of tapetown's emulator (emulator_dir/file00000.tar, ...) as a read-only, variable-block tape; the directory is only read")
    .argument('<library>', 'library directory')
    .argument('<tape>', 'name of the new tape (the tapetown tape name)')
    .argument('<emulator-dir>', "tapetown's emulator_dir (tape.conf)")
    .action(async (library: string, tape: string, emulatorDir: string) => {
      const { tape: info, ignored } = await new VirtualTapeLibrary(library).importTapetownTape(tape, emulatorDir);
      console.log(`virtual tape ${tape} imported from ${emulatorDir}: ${info.files} file(s), ${info.usedBytes} bytes, variable blocks, write protected`);
      if (ignored.length > 0) {
        console.error(`warning: not imported (after a gap in the numbering at file${String(info.files).padStart(5, '0')}.tar): ${ignored.join(', ')}`);
      }
    });
  vtl
    .command('list')
    .argument('<library>', 'library directory')
    .action(async (library: string) => {
      console.log(JSON.stringify(await new VirtualTapeLibrary(library).listTapes(), null, 2));
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return process.exitCode === 1 ? 1 : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help') return 0;
      if (e.code === 'usage') console.error(`error: ${e.message}`);
      return 2;
    }
    const setup = explainAwsError(e);
    console.error(`error: ${isArchiveError(e) ? e.message : (setup ?? (e as Error).stack ?? String(e))}`);
    return 1;
  }
}
