/**
 * The agent's own configuration: drives, scan concurrency, queue timings. Read from a JSON file
 * (TAPE_AGENT_CONFIG or --config) with environment overrides, validated at start with
 * messages that say what to fix. Where the catalog and queues are comes from the shared
 * config (src/lib/config.ts).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, errorMessage } from '../lib/errors.ts';
import { formatIssues } from '../lib/validation.ts';
import { STALE_AFTER_SECONDS } from '../lib/catalog/task-status.ts';

const driveSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('virtual'), id: z.string().min(1), library: z.string().min(1) }).strict(),
  z.object({ kind: z.literal('st'), id: z.string().min(1).optional(), device: z.string().startsWith('/dev/') }).strict(),
]);

/** A data host reached over SSH (key authentication, host key pinned in known_hosts). */
const sshHostSchema = z
  .object({
    address: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).default(22),
    username: z.string().min(1),
    privateKey: z.string().min(1),
    knownHosts: z.string().min(1),
    /** For an encrypted key (an unattended agent normally has none). */
    passphrase: z.string().min(1).optional(),
    maxConcurrentChannels: z.number().int().min(1).max(10).default(4),
    keepaliveInterval: z.number().int().min(0).default(15_000),
    keepaliveCountMax: z.number().int().min(1).optional(),
    readyTimeout: z.number().int().min(1000).optional(),
    reconnect: z
      .object({
        attempts: z.number().int().min(1).max(100),
        initialDelayMs: z.number().int().min(0),
        maxDelayMs: z.number().int().min(0),
        factor: z.number().min(1),
      })
      .strict()
      .optional(),
    readAheadBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .optional(),
  })
  .strict();

export const agentConfigSchema = z
  .object({
    drives: z.array(driveSchema).min(1, 'configure at least one drive'),
    blockSize: z
      .number()
      .int()
      .min(512)
      .max(16 * 1024 * 1024)
      .refine((n) => n % 512 === 0, 'blockSize must be a multiple of 512')
      .default(256 * 1024),
    scanConcurrency: z.number().int().min(0).max(32).default(2),
    /** Host names whose paths the agent reads directly (it runs on the data host or reads a mount). */
    localHosts: z.array(z.string().min(1)).default(['localhost']),
    /** Data hosts read over SSH, by the host name used in import lists (`host:/path`). */
    sshHosts: z.record(z.string().min(1), sshHostSchema).default({}),
    visibilityTimeout: z.number().int().min(2).max(43_200).default(120),
    heartbeatInterval: z.number().int().min(1).default(30),
    waitTimeSeconds: z.number().int().min(0).max(20).default(20),
    drainTimeoutSeconds: z
      .number()
      .int()
      .min(1)
      .default(6 * 3600),
    progressIntervalMs: z.number().int().min(50).default(1000),
    logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    /**
     * Where a repair from another copy restores that copy before writing it (one directory per
     * write task, removed after), and the most it may hold: a larger target is refused, as is
     * one the file system has no room for.
     */
    staging: z
      .object({
        dir: z.string().startsWith('/'),
        maxBytes: z.number().int().min(0),
      })
      .strict()
      .default({ dir: '/var/lib/tape-archive/staging', maxBytes: 2 * 1024 ** 4 }),
  })
  .strict()
  .refine((c) => c.heartbeatInterval < c.visibilityTimeout, {
    message: 'heartbeatInterval must be shorter than visibilityTimeout',
    path: ['heartbeatInterval'],
  })
  .refine((c) => c.heartbeatInterval * 3 <= STALE_AFTER_SECONDS, {
    message: `heartbeatInterval must be at most ${STALE_AFTER_SECONDS / 3} s: a task without a heartbeat for ${STALE_AFTER_SECONDS} s counts as dead and is sent again`,
    path: ['heartbeatInterval'],
  });

export type AgentConfig = z.infer<typeof agentConfigSchema>;
export type DriveConfig = AgentConfig['drives'][number];

export function loadAgentConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const file = path ?? env.TAPE_AGENT_CONFIG;
  if (!file) throw new ConfigError('no agent configuration: pass --config FILE or set TAPE_AGENT_CONFIG (see docs/operations.md for an example).');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`cannot read agent config ${file}: ${errorMessage(e)}`);
  }
  if (env.TAPE_AGENT_LOG_LEVEL && typeof raw === 'object' && raw) (raw as Record<string, unknown>).logLevel = env.TAPE_AGENT_LOG_LEVEL;
  const parsed = agentConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error);
    throw new ConfigError(`agent config ${file} is invalid: ${issues}`);
  }
  return parsed.data;
}
