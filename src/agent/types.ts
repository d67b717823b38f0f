import type { JobContext } from '../lib/jobs/context.ts';
import type { Result } from '../lib/protocol/results.ts';
import type { DataSource } from '../lib/source/data-source.ts';
import type { TapeDrive } from '../lib/tape/drive.ts';
import type { Logger } from './log.ts';
import type { Reporter } from './reporter.ts';

type Body<T> = T extends unknown ? Omit<T, 'v' | 'reportedAt'> : never;

/** What a task runner decided: report a result, or drop a task the catalog no longer wants. */
/** A report as a task runner produces it (the envelope is added when it is sent). */
export type TaskReport = Body<Result>;

export type TaskOutcome = { kind: 'report'; result: TaskReport } | { kind: 'dropped'; reason: string };

export interface DataSources {
  for(host: string): DataSource;
  closeAll(): Promise<void>;
}

export interface AgentDeps {
  ctx: JobContext;
  sources: DataSources;
  reporter: Reporter;
  log: Logger;
  blockSize: number;
  /** A repair from another copy restores it here first (agent config `staging`). */
  staging: { dir: string; maxBytes: number };
}

export interface DriveDeps extends AgentDeps {
  drive: TapeDrive;
}
