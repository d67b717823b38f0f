/**
 * What every job answers, as schemas: the `--json` and HTTP contract. docs/openapi.json is
 * generated from these and the input schemas (src/local/openapi.ts, pinned by a test); the
 * API client validates every answer with them; the type check at the end keeps them and the
 * jobs' own result types in step.
 */
import { z } from 'zod';
import { previousFileSchema, skippedEntrySchema, tapeItemSchema } from '../catalog/items.ts';
import { taskStatusSchema } from '../catalog/task-status.ts';
import { TAPE_STATES } from '../domain/tape.ts';
import { TARGET_STATUSES } from '../domain/target.ts';
import type { JobName, JobOutput } from './registry.ts';

const inFlight = tapeItemSchema.shape.writeInFlight;
const tape = tapeItemSchema;
const tapeRow = z.object({
  name: z.string(),
  barcode: z.string(),
  pool: z.string(),
  state: z.enum(TAPE_STATES),
  online: z.boolean(),
  bytesUsed: z.number(),
  capacityBytes: z.number(),
  nextFileNumber: z.number().int(),
  filesWritten: z.number().int(),
  filesConfirmed: z.number().int(),
  targetsAssigned: z.number().int(),
  writeInFlight: inFlight.optional(),
  reason: z.string().optional(),
});
const targetRow = z.object({
  id: z.string(),
  host: z.string(),
  path: z.string(),
  status: z.enum(TARGET_STATUSES),
  tape: z.string().optional(),
  fileNumber: z.number().int().optional(),
  fileCount: z.number().int().optional(),
  totalBytes: z.number().optional(),
  skippedCount: z.number().int().optional(),
  skipped: z.array(skippedEntrySchema).optional(),
  error: z.string().optional(),
  previousFiles: z.array(previousFileSchema).optional().describe('tape files given up after a failed read-back'),
});
const released = z.array(z.object({ id: z.string(), reason: z.string() }));
const taskRef = z.object({ tape: z.string(), fileNumber: z.number().int(), taskId: z.string() });

const counts = <K extends string>(keys: readonly [K, ...K[]]) => z.object(Object.fromEntries(keys.map((k) => [k, z.number().int()])) as Record<K, z.ZodNumber>);

export const jobOutputSchemas = {
  tapes: z.object({ tapes: z.array(tapeRow) }),
  status: z.object({
    onlineTape: z.string().optional(),
    tapes: counts(TAPE_STATES),
    setAside: z.array(z.object({ name: z.string(), state: z.enum(TAPE_STATES), reason: z.string().optional() })),
    targets: counts(TARGET_STATUSES),
    tasks: z.object({
      queued: z.number().int(),
      running: z.number().int(),
      stale: z.array(
        z.object({
          taskId: z.string(),
          kind: z.enum(['scan', 'write', 'verify', 'check-tape']),
          tapeName: z.string().optional(),
          fileNumber: z.number().int().optional(),
          heartbeatAt: z.string().optional(),
        }),
      ),
    }),
  }),
  open_tape: z.object({ tape, registered: z.boolean(), previousOnline: z.string().optional(), message: z.string() }),
  enable_tape: z.object({
    status: z.literal('requested'),
    tape: z.string(),
    taskId: z.string(),
    reason: z.string().optional(),
    expectedFiles: z.number().int(),
    message: z.string(),
  }),
  remove_tape: z.object({ tape: z.string(), wasOnline: z.boolean(), released: z.array(z.string()), message: z.string() }),
  import: z.object({
    imported: z.array(z.object({ id: z.string(), host: z.string(), path: z.string(), line: z.number().int() })),
    alreadyKnown: z.array(z.object({ id: z.string(), host: z.string(), path: z.string(), line: z.number().int(), status: z.enum(TARGET_STATUSES) })),
    duplicates: z.array(z.object({ line: z.number().int(), firstLine: z.number().int() })),
    skipped: z.array(z.object({ line: z.number().int(), text: z.string(), message: z.string() })),
    scansRequested: z.number().int(),
  }),
  assign: z.object({
    tape: z.string(),
    assigned: z.array(z.object({ id: z.string(), path: z.string(), from: z.string().optional(), awaitingScan: z.boolean() })),
    refused: z.array(z.object({ id: z.string(), reason: z.string() })),
  }),
  archive: z.union([
    z.object({
      status: z.literal('started'),
      tape: z.string(),
      fileNumber: z.number().int(),
      targetId: z.string(),
      path: z.string(),
      taskId: z.string(),
      totalBytes: z.number(),
      released: released.optional(),
    }),
    z.object({ status: z.literal('idle'), tape: z.string(), message: z.string(), released: released.optional() }),
  ]),
  confirm: z.union([
    z.object({
      status: z.literal('requested'),
      tape: z.string(),
      fileNumber: z.number().int(),
      targetId: z.string(),
      taskId: z.string(),
      updateCatalog: z.boolean(),
    }),
    z.object({ status: z.literal('idle'), tape: z.string(), message: z.string() }),
  ]),
  close_tape: z.union([
    z.object({ status: z.literal('needs-confirmation'), tape: z.string(), warnings: z.array(z.string()), toRelease: z.array(z.string()), message: z.string() }),
    z.object({
      status: z.literal('closed'),
      tape: z.string(),
      closed: z.boolean(),
      released: z.array(z.string()),
      warnings: z.array(z.string()),
      message: z.string(),
    }),
  ]),
  targets: z.object({ targets: z.array(targetRow) }),
  reconcile: z.object({
    scansResent: z.array(z.string()),
    writesResent: z.array(taskRef),
    verifiesResent: z.array(taskRef),
    checksResent: z.array(z.object({ tape: z.string(), taskId: z.string() })),
  }),
  task: taskStatusSchema.extend({
    stale: z.boolean().describe('running, but no heartbeat from the agent for 120 s: reconcile drives it again'),
  }),
  rescan: z.object({ rescanned: z.array(z.object({ id: z.string(), path: z.string() })) }),
  discover: z.object({ requested: z.array(z.object({ host: z.string(), root: z.string(), pattern: z.string(), taskId: z.string() })) }),
} as const satisfies Record<JobName, z.ZodType>;

// Compile-time: each job's result type is assignable to what its schema describes.
type Fits<N extends JobName> = JobOutput<N> extends z.input<(typeof jobOutputSchemas)[N]> ? true : false;
const _fits: { [N in JobName]: Fits<N> } = {
  tapes: true,
  status: true,
  open_tape: true,
  enable_tape: true,
  remove_tape: true,
  import: true,
  assign: true,
  archive: true,
  confirm: true,
  close_tape: true,
  targets: true,
  reconcile: true,
  task: true,
  rescan: true,
  discover: true,
};
void _fits;
