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
import { TAPE_FILE_STATES, type TapeFileState } from '../domain/tape-file.ts';
import { TARGET_STATUSES } from '../domain/target.ts';
import type { JobName, JobOutput } from './registry.ts';
import { PARENT_ACTIONS } from '../domain/nesting.ts';

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
  format: tape.shape.format.describe('"tapetown": adopted from the predecessor, read only for ever; absent: this format'),
});
const copyRow = z.object({
  pool: z.string(),
  status: z.enum(TARGET_STATUSES),
  tape: z.string().optional(),
  fileNumber: z.number().int().optional(),
  bytes: z.number().optional(),
  archivedAt: z.string().optional(),
  verifiedAt: z.string().optional(),
  error: z.string().optional(),
  extra: z.boolean().optional().describe('a copy in a pool the policy no longer names: kept, not counted'),
});
const targetRow = z.object({
  id: z.string(),
  host: z.string(),
  path: z.string(),
  status: z.enum(TARGET_STATUSES).describe('of the copy shown: on the tape or in the pool asked for, else the first required copy not yet confirmed'),
  tape: z.string().optional(),
  fileNumber: z.number().int().optional(),
  policy: z.array(z.string()).describe('the pools each of which must hold a confirmed copy'),
  safe: z.boolean().describe('every copy the policy requires is confirmed: the source may be deleted'),
  copiesStatus: z.string().describe('"safe", or e.g. "1/2 confirmed (missing: offsite)"'),
  copies: z.array(copyRow),
  fileCount: z.number().int().optional(),
  totalBytes: z.number().optional(),
  skippedCount: z.number().int().optional(),
  skipped: z.array(skippedEntrySchema).optional(),
  error: z.string().optional(),
  previousFiles: z.array(previousFileSchema).optional().describe('tape files given up after a failed read-back'),
  excludes: z.array(z.string()).optional().describe('the nested targets its current scan leaves out (docs/operations.md, "Nested targets")'),
});
const released = z.array(z.object({ id: z.string(), reason: z.string() }));
const tapeAssignment = z.object({
  tape: z.string(),
  pool: z.string(),
  assigned: z.array(z.object({ id: z.string(), path: z.string(), from: z.string().optional(), awaitingScan: z.boolean() })),
  refused: z.array(z.object({ id: z.string(), reason: z.string() })),
});
const poolArchive = z.union([
  z.object({
    status: z.literal('started'),
    tape: z.string(),
    pool: z.string(),
    fileNumber: z.number().int(),
    targetId: z.string(),
    path: z.string(),
    taskId: z.string(),
    totalBytes: z.number(),
    released: released.optional(),
  }),
  z.object({ status: z.literal('idle'), tape: z.string(), pool: z.string(), message: z.string(), released: released.optional() }),
  z.object({
    status: z.literal('refused'),
    tape: z.string().optional(),
    pool: z.string(),
    code: z.string(),
    message: z.string(),
    released: released.optional(),
  }),
]);
const otherPools = <T extends z.ZodType>(s: T) => z.array(s).optional().describe('with no tape or pool named and several pools online: the other pools');
const taskRef = z.object({ tape: z.string(), fileNumber: z.number().int(), taskId: z.string() });

const counts = <K extends string>(keys: readonly [K, ...K[]]) => z.object(Object.fromEntries(keys.map((k) => [k, z.number().int()])) as Record<K, z.ZodNumber>);

export const jobOutputSchemas = {
  tapes: z.object({ tapes: z.array(tapeRow) }),
  status: z.object({
    tape: z
      .object({
        name: z.string(),
        pool: z.string(),
        state: z.enum(TAPE_STATES),
        files: z.object(
          Object.fromEntries(TAPE_FILE_STATES.map((s) => [s, z.object({ count: z.number().int(), bytes: z.number() })])) as Record<
            TapeFileState,
            z.ZodObject<{ count: z.ZodNumber; bytes: z.ZodNumber }>
          >,
        ),
        layout: z.array(z.object({ from: z.number().int(), to: z.number().int(), state: z.enum(TAPE_FILE_STATES) })),
        assigned: z.number().int(),
        unassignedInPool: z.number().int(),
      })
      .optional()
      .describe('with a tape named: its files per state, its layout as runs of file numbers, and what waits for it'),
    onlineTape: z.string().optional(),
    online: z.array(z.object({ pool: z.string(), tape: z.string() })),
    tapes: counts(TAPE_STATES),
    setAside: z.array(z.object({ name: z.string(), state: z.enum(TAPE_STATES), reason: z.string().optional() })),
    targets: counts(TARGET_STATUSES),
    copies: z.object({
      safe: z.number().int(),
      atRisk: z.number().int(),
      bad: z.number().int().describe('copies whose tape file read back bad (confirm or scrub): "repair" writes them again'),
      overdueScrub: z.number().int().describe('confirmed copies not verified within the scrub interval'),
    }),
    tasks: z.object({
      queued: z.number().int(),
      running: z.number().int(),
      stale: z.array(
        z.object({
          taskId: z.string(),
          kind: taskStatusSchema.shape.kind,
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
    copies: z.array(z.string()).describe('the copy policy the new targets got'),
    nested: z
      .array(z.object({ id: z.string(), host: z.string(), path: z.string(), excludes: z.array(z.string()) }))
      .optional()
      .describe('new targets that leave the targets directly inside them out of their scan and tape files'),
    parents: z
      .array(
        z.object({
          id: z.string(),
          host: z.string(),
          path: z.string(),
          children: z.array(z.string()),
          excludes: z.array(z.string()),
          action: z.enum(PARENT_ACTIONS),
          message: z.string(),
        }),
      )
      .optional()
      .describe('targets already in the catalog that new targets lie directly inside, and what became of each (docs/operations.md, "Nested targets")'),
  }),
  assign: tapeAssignment.extend({ otherPools: otherPools(tapeAssignment) }),
  archive: z.intersection(poolArchive, z.object({ otherPools: otherPools(poolArchive) })),
  confirm: z.union([
    z.object({
      status: z.literal('requested'),
      tape: z.string(),
      pool: z.string(),
      fileNumber: z.number().int(),
      targetId: z.string(),
      taskId: z.string(),
      updateCatalog: z.boolean(),
    }),
    z.object({ status: z.literal('idle'), tape: z.string(), pool: z.string(), message: z.string() }),
  ]),
  close_tape: z.union([
    z.object({ status: z.literal('needs-confirmation'), tape: z.string(), warnings: z.array(z.string()), toRelease: z.array(z.string()), message: z.string() }),
    z.object({
      status: z.literal('closed'),
      tape: z.string(),
      closed: z.boolean(),
      released: z.array(z.string()),
      warnings: z.array(z.string()),
      snapshot: z
        .object({ taskId: z.string(), fileNumber: z.number().int() })
        .optional()
        .describe('the catalog snapshot being appended to the closed tape (docs/tape-format.md)'),
      message: z.string(),
    }),
  ]),
  targets: z.object({ targets: z.array(targetRow) }),
  set_copies: z.object({
    policy: z.array(z.string()),
    changed: z.array(
      z.object({ id: z.string(), from: z.array(z.string()), created: z.array(z.string()), released: z.array(z.string()), keptAsExtra: z.array(z.string()) }),
    ),
    unchanged: z.number().int(),
    message: z.string(),
  }),
  unassigned: z.object({
    pools: z.array(z.object({ pool: z.string(), count: z.number().int(), bytes: z.number() })),
    count: z.number().int(),
    bytes: z.number(),
    awaitingScan: z.number().int(),
  }),
  tape_detail: z.object({
    tape: z.string(),
    pool: z.string(),
    files: z.array(
      z.object({
        fileNumber: z.number().int(),
        state: z.string(),
        bytes: z.number().optional(),
        fileCount: z.number().int().optional(),
        targetId: z.string(),
        host: z.string().optional(),
        path: z.string().optional(),
      }),
    ),
    checksums: z
      .array(z.object({ fileNumber: z.number().int(), lines: z.array(z.string()), notListed: z.number().int(), error: z.string().optional() }))
      .optional(),
  }),
  activate_tape: z.object({ tape, registered: z.boolean(), previousOnline: z.string().optional(), message: z.string() }),
  migrate: z.object({
    migrated: z.number().int(),
    alreadyUpgraded: z.number().int(),
    onlineMoved: z.object({ tape: z.string(), pool: z.string() }).optional(),
    namesIndexed: z.number().int().describe('manifests whose name index (where_is) was built now'),
    namesNotIndexed: z.array(z.object({ targetId: z.string(), scanId: z.string(), error: z.string() })).optional(),
    message: z.string(),
  }),
  reconcile: z.object({
    scansResent: z.array(z.string()),
    writesResent: z.array(taskRef),
    verifiesResent: z.array(taskRef),
    checksResent: z.array(z.object({ tape: z.string(), taskId: z.string() })),
  }),
  task: taskStatusSchema.extend({
    stale: z.boolean().describe('running, but no heartbeat from the agent for 120 s: reconcile drives it again'),
  }),
  restore: z.object({
    status: z.literal('requested'),
    destination: z.string(),
    tasks: z.array(
      z.object({
        taskId: z.string(),
        tape: z.string(),
        pool: z.string(),
        bytes: z.number(),
        targets: z.array(z.object({ id: z.string(), fileNumber: z.number().int(), dir: z.string() })),
      }),
    ),
    leftOut: z.array(z.object({ fileNumber: z.number().int(), targetId: z.string(), reason: z.string() })),
  }),
  cancel: z.object({ status: z.literal('cancel-requested'), taskId: z.string(), message: z.string() }),
  where_is: z.object({
    pattern: z.string(),
    kind: z.enum(['name', 'path', 'glob']),
    matches: z.array(
      z.object({
        targetId: z.string(),
        host: z.string(),
        dir: z.string(),
        path: z.string(),
        rawPath: z.string().optional().describe('base64 of the exact name bytes when they are not UTF-8 (path is then a Latin-1 stand-in)'),
        type: z.string(),
        size: z.number(),
        sha256: z.string().optional(),
        scanId: z.string(),
        current: z.boolean().describe("the target's current scan (false: an earlier scan still on tape)"),
        copies: z.array(z.object({ pool: z.string(), tape: z.string().optional(), fileNumber: z.number().int().optional(), state: z.string() })),
      }),
    ),
    truncated: z.boolean(),
    message: z.string(),
  }),
  rescan: z.object({ rescanned: z.array(z.object({ id: z.string(), path: z.string() })) }),
  discover: z.object({ requested: z.array(z.object({ host: z.string(), root: z.string(), pattern: z.string(), taskId: z.string() })) }),
  rebuild_catalog: z.object({
    status: z.literal('requested'),
    taskId: z.string(),
    tapes: z.union([z.array(z.string()), z.literal('all')]),
    verify: z.boolean(),
    merge: z.boolean(),
    message: z.string(),
  }),
  scrub: z.object({
    status: z.enum(['requested', 'idle']),
    requested: z.array(
      z.object({
        taskId: z.string(),
        tape: z.string(),
        fileNumber: z.number().int(),
        targetId: z.string(),
        bytes: z.number(),
        lastVerified: z.string().optional(),
      }),
    ),
    bytes: z.number(),
    budgetBytes: z.number(),
    left: z.number().int(),
    alreadyRunning: z.number().int(),
    message: z.string(),
  }),
  repair: z.object({
    assigned: z.array(
      z.object({
        id: z.string(),
        pool: z.string(),
        tape: z.string(),
        badFile: z.string().optional(),
        from: z.enum(['copy', 'source']),
        fromFile: z.string().optional(),
      }),
    ),
    refused: z.array(z.object({ id: z.string(), pool: z.string(), reason: z.string() })),
    message: z.string(),
  }),
  snapshot_tape: z.object({ tape: z.string(), taskId: z.string(), fileNumber: z.number().int(), message: z.string() }),
  fetch_snapshot: z.object({ tape: z.string(), taskId: z.string(), file: z.string(), message: z.string() }),
  at_risk: z.object({
    counts: z.object({
      targets: z.number().int(),
      badCopies: z.number().int(),
      overdueScrub: z.number().int(),
      tapesWithErrors: z.number().int(),
      unverified: z.number().int(),
    }),
    targets: z.array(
      z.object({
        id: z.string(),
        host: z.string(),
        path: z.string(),
        reason: z.enum(['bad-copy', 'unconfirmed', 'not-written']),
        confirmed: z.number().int(),
        required: z.number().int(),
        missing: z.array(z.string()),
        bad: z.array(
          z.object({
            pool: z.string(),
            tape: z.string().optional(),
            fileNumber: z.number().int().optional(),
            error: z.string().optional(),
            at: z.string().optional(),
          }),
        ),
      }),
    ),
    overdueScrub: z.array(z.object({ targetId: z.string(), pool: z.string(), tape: z.string(), fileNumber: z.number().int(), lastVerified: z.string() })),
    tapesWithErrors: z.array(z.object({ name: z.string(), state: z.string(), reason: z.string().optional(), badFiles: z.number().int() })),
    oldestUnverified: z.array(z.object({ targetId: z.string(), pool: z.string(), tape: z.string(), fileNumber: z.number().int(), archivedAt: z.string() })),
    scrubIntervalDays: z.number(),
    message: z.string(),
  }),
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
  set_copies: true,
  migrate: true,
  unassigned: true,
  tape_detail: true,
  activate_tape: true,
  reconcile: true,
  task: true,
  rescan: true,
  discover: true,
  restore: true,
  cancel: true,
  where_is: true,
  rebuild_catalog: true,
  scrub: true,
  repair: true,
  at_risk: true,
  snapshot_tape: true,
  fetch_snapshot: true,
};
void _fits;
