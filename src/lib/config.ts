/**
 * The one place that reads the environment and the config file. Everything else takes a
 * `Config` value, so handlers, CLI, agent and tests are configured the same way.
 *
 * Precedence: explicit overrides > environment > config file > defaults.
 * The config file is TAPE_ARCHIVE_CONFIG, or .tape-archive/config.json in the working
 * directory (the embedded stack writes it when it starts).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, errorMessage } from './errors.ts';
import { resourceNames, type ResourceNames } from './resources/definitions.ts';
import { formatIssues } from './validation.ts';
import { DEFAULT_POLICY, parseCopyPolicy } from './domain/copies.ts';

const fileSchema = z
  .object({
    region: z.string().min(1).optional(),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,40}$/)
      .optional(),
    endpoints: z.object({ dynamodb: z.string().url().optional(), sqs: z.string().url().optional() }).strict().optional(),
    defaultHost: z.string().min(1).optional(),
    apiToken: z.string().min(16).optional(),
    importRoots: z.array(z.string().min(2)).optional(),
    importPattern: z.string().min(1).optional(),
    copies: z.array(z.string()).min(1).optional(),
    scrub: z
      .object({
        budgetHours: z.number().positive().max(24).optional(),
        readMBps: z.number().positive().max(10_000).optional(),
        intervalDays: z.number().positive().max(3650).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** Scrub (jobs/scrub.ts): how much a run may read, and how old a verification may grow. */
export interface ScrubConfig {
  /** Drive-hours one scrub run may spend (the schedule runs it daily). */
  budgetHours: number;
  /** The read rate the budget is counted at (MB/s, 10^6 bytes: LTO-8 native is 360). */
  readMBps: number;
  /** A confirmed copy not verified for this long is overdue (at_risk lists it). */
  intervalDays: number;
}

export const DEFAULT_SCRUB: ScrubConfig = { budgetHours: 4, readMBps: 300, intervalDays: 365 };

export type ConfigFile = z.infer<typeof fileSchema>;

export interface Config {
  region: string;
  prefix: string;
  /** Unset means the AWS default endpoint (real AWS). */
  endpoints: { dynamodb?: string; sqs?: string };
  names: ResourceNames;
  /** Queue URLs when known up front (Lambda env); otherwise resolved by name. */
  queueUrls: Partial<Record<'tasks' | 'scans' | 'results', string>>;
  /** Scheduled import: roots (`host:/path`) and the glob of target directories below them. */
  importRoots: string[];
  importPattern?: string;
  /** Host used for import lines that do not name one. */
  defaultHost: string;
  /** The copy policy of an import that names none: the pools each target needs a confirmed copy in. */
  copies: string[];
  /** Bearer token the HTTP API accepts where no AWS authorizer runs (serverless-offline). */
  apiToken?: string;
  /**
   * Trust API Gateway's authorizer context: only on real Lambda. serverless-offline (which
   * sets IS_OFFLINE) fills that context without checking anything.
   */
  trustGatewayAuth: boolean;
  /** Whether credentials must be faked (local emulators accept any). */
  localCredentials: boolean;
  configFile?: string;
  scrub: ScrubConfig;
}

export const DEFAULT_PREFIX = 'tape-archive-dev';
export const DEFAULT_CONFIG_PATH = '.tape-archive/config.json';

export function readConfigFile(path: string): ConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${errorMessage(e)}. Fix the file or point TAPE_ARCHIVE_CONFIG elsewhere.`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error);
    throw new ConfigError(`config file ${path} is invalid: ${issues}`);
  }
  // A token anyone on the machine can read is not a secret.
  const mode = statSync(path).mode & 0o777;
  if (parsed.data.apiToken && mode & 0o077) {
    throw new ConfigError(
      `config file ${path} holds the API token but is readable by others (mode ${mode.toString(8).padStart(3, '0')}); make it private with "chmod 600 ${path}".`,
    );
  }
  return parsed.data;
}

/** Writes a file only its owner can read or write (0600), also when it already exists. */
export async function writePrivateFile(path: string, text: string): Promise<void> {
  await writeFile(path, text, { mode: 0o600 });
  await chmod(path, 0o600); // `mode` applies only when the file is created
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<ConfigFile> & { configFile?: string } = {}): Config {
  const explicitPath = overrides.configFile ?? env.TAPE_ARCHIVE_CONFIG;
  let file: ConfigFile = {};
  let configFile: string | undefined;
  if (explicitPath) {
    configFile = resolve(explicitPath);
    if (!existsSync(configFile)) {
      throw new ConfigError(`config file ${configFile} (TAPE_ARCHIVE_CONFIG) does not exist. Start the embedded stack (npm run stack) or fix the path.`);
    }
    file = readConfigFile(configFile);
  } else if (existsSync(DEFAULT_CONFIG_PATH)) {
    configFile = resolve(DEFAULT_CONFIG_PATH);
    file = readConfigFile(configFile);
  }

  // An empty variable counts as unset (serverless.yml passes '' when deploying to AWS).
  const get = (name: string) => env[name] || undefined;
  const endpointAll = get('AWS_ENDPOINT_URL');
  const endpoints = {
    dynamodb: overrides.endpoints?.dynamodb ?? get('AWS_ENDPOINT_URL_DYNAMODB') ?? endpointAll ?? file.endpoints?.dynamodb,
    sqs: overrides.endpoints?.sqs ?? get('AWS_ENDPOINT_URL_SQS') ?? endpointAll ?? file.endpoints?.sqs,
  };
  const prefix = overrides.prefix ?? env.TAPE_ARCHIVE_PREFIX ?? file.prefix ?? DEFAULT_PREFIX;
  if (!/^[A-Za-z0-9-]{1,40}$/.test(prefix)) {
    throw new ConfigError(`TAPE_ARCHIVE_PREFIX "${prefix}" is invalid: use 1-40 letters, digits or dashes.`);
  }
  const region = overrides.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? file.region ?? 'us-east-1';
  const names = resourceNames(prefix);
  const copiesText = get('TAPE_ARCHIVE_COPIES');
  const policy = parseCopyPolicy(overrides.copies ?? copiesText ?? file.copies ?? DEFAULT_POLICY);
  if ('error' in policy) {
    throw new ConfigError(`the copy policy (${copiesText !== undefined ? 'TAPE_ARCHIVE_COPIES' : 'copies in the config file'}) is invalid: ${policy.error}`);
  }
  const isLocal = (u?: string) => !!u && /^https?:\/\/(localhost|127\.|\[::1\])/.test(u);
  return {
    region,
    prefix,
    endpoints,
    names: {
      catalogTable: env.CATALOG_TABLE ?? names.catalogTable,
      manifestTable: env.MANIFEST_TABLE ?? names.manifestTable,
      queues: names.queues,
    },
    queueUrls: {
      tasks: env.TASK_QUEUE_URL,
      scans: env.SCAN_QUEUE_URL,
      results: env.RESULT_QUEUE_URL,
    },
    defaultHost: overrides.defaultHost ?? env.TAPE_ARCHIVE_DEFAULT_HOST ?? file.defaultHost ?? 'localhost',
    copies: [...policy.policy],
    ...((get('TAPE_ARCHIVE_API_TOKEN') ?? file.apiToken) ? { apiToken: get('TAPE_ARCHIVE_API_TOKEN') ?? file.apiToken } : {}),
    trustGatewayAuth: !!env.AWS_LAMBDA_FUNCTION_NAME && !env.IS_OFFLINE,
    importRoots:
      get('TAPE_ARCHIVE_IMPORT_ROOTS')
        ?.split(',')
        .map((r) => r.trim())
        .filter(Boolean) ??
      file.importRoots ??
      [],
    ...((get('TAPE_ARCHIVE_IMPORT_PATTERN') ?? file.importPattern) ? { importPattern: get('TAPE_ARCHIVE_IMPORT_PATTERN') ?? file.importPattern } : {}),
    scrub: scrubConfig(env, file.scrub),
    localCredentials: (isLocal(endpoints.dynamodb) || isLocal(endpoints.sqs)) && !env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE,
    ...(configFile ? { configFile } : {}),
  };
}

/** TAPE_ARCHIVE_SCRUB_BUDGET_HOURS / _READ_MBPS / _INTERVAL_DAYS over the file's `scrub` over the defaults. */
function scrubConfig(env: NodeJS.ProcessEnv, file: ConfigFile['scrub'] = {}): ScrubConfig {
  const num = (name: string, key: keyof ScrubConfig): number => {
    const text = env[name];
    if (text === undefined || text === '') return file[key] ?? DEFAULT_SCRUB[key];
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`${name} "${text}" is invalid: give a positive number (default ${DEFAULT_SCRUB[key]}).`);
    return n;
  };
  return {
    budgetHours: num('TAPE_ARCHIVE_SCRUB_BUDGET_HOURS', 'budgetHours'),
    readMBps: num('TAPE_ARCHIVE_SCRUB_READ_MBPS', 'readMBps'),
    intervalDays: num('TAPE_ARCHIVE_SCRUB_INTERVAL_DAYS', 'intervalDays'),
  };
}
