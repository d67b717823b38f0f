/**
 * `npm run dev`: the local system stays up for interactive use: run-job in another terminal
 * finds it through .tape-archive/config.json. Virtual tapes: `npx tape-agent vtl create
 * .tape-archive/dev/vtl tape1 --capacity 18T`.
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../lib/config.ts';
import { startLocalSystem } from '../local/local-system.ts';
import { exitIfPortsTaken } from '../local/free-port.ts';

const o = new Command('dev')
  .option('--work-dir <dir>', 'catalog data, virtual tapes and agent config', '.tape-archive/dev')
  .option('--dynamodb-port <port>', 'DynamoDB Local port', '8000')
  .option('--sqs-port <port>', 'local SQS port', '9324')
  .option('--import-root <host:/path...>', 'scheduled import: roots to look under')
  .option('--import-pattern <glob>', 'scheduled import: target directories below each root, e.g. "2026-*/obs-*"')
  .option('--import-every <seconds>', 'scheduled import: how often', '3600')
  .parse()
  .opts<{ workDir: string; dynamodbPort: string; sqsPort: string; importRoot?: string[]; importPattern?: string; importEvery: string }>();

await exitIfPortsTaken(
  [
    { port: Number(o.dynamodbPort), what: 'DynamoDB Local', flag: '--dynamodb-port' },
    { port: Number(o.sqsPort), what: 'local SQS', flag: '--sqs-port' },
  ],
  resolve(DEFAULT_CONFIG_PATH),
);

const system = await startLocalSystem({
  workDir: o.workDir,
  notice: (m) => console.error(`dev: ${m}`),
  configPath: resolve(DEFAULT_CONFIG_PATH),
  dynamodbPort: Number(o.dynamodbPort),
  sqsPort: Number(o.sqsPort),
  agentLog: (l) => console.log(`agent: ${l}`),
  ...(o.importRoot && o.importPattern ? { importRoots: o.importRoot, importPattern: o.importPattern, importEverySeconds: Number(o.importEvery) } : {}),
});
console.log(`DynamoDB Local ${system.stack.endpoints.dynamodb}, local SQS ${system.stack.endpoints.sqs}`);
console.log(`virtual tape library: ${resolve(o.workDir, 'vtl')}  (create tapes: npx tape-agent vtl create ${resolve(o.workDir, 'vtl')} tape1 --capacity 18T)`);
console.log('ready: use "npx run-job ..." in another terminal; Ctrl-C stops.');
let stopping = false;
const shutdown = async () => {
  if (stopping) process.exit(1);
  stopping = true;
  await system.stop();
  process.exit(0);
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
