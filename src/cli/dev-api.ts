/**
 * `npm run dev:api`: dev mode over the gateway. The embedded stack, serverless-offline
 * serving serverless.yml (HTTP routes, and the SQS-triggered results handler through
 * serverless-offline-sqs) and the tape agent with a virtual tape library. Drive it with
 * `npx run-job --api http://127.0.0.1:3000 ...` (the token is written to the config file).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../lib/config.ts';
import { startLocalSystem } from '../local/local-system.ts';
import { startOfflineGateway } from '../local/offline-gateway.ts';
import { exitIfPortsTaken } from '../local/free-port.ts';
import { loadConfig, writePrivateFile } from '../lib/config.ts';

const o = new Command('dev:api')
  .option('--work-dir <dir>', 'catalog data, virtual tapes and agent config', '.tape-archive/dev')
  .option('--http-port <port>', 'gateway port', '3000')
  .option('--dynamodb-port <port>', 'DynamoDB Local port', '8000')
  .option('--sqs-port <port>', 'local SQS port', '9324')
  .parse()
  .opts<{ workDir: string; httpPort: string; dynamodbPort: string; sqsPort: string }>();

const configPath = resolve(DEFAULT_CONFIG_PATH);
await exitIfPortsTaken(
  [
    { port: Number(o.httpPort), what: 'the HTTP gateway', flag: '--http-port' },
    { port: Number(o.dynamodbPort), what: 'DynamoDB Local', flag: '--dynamodb-port' },
    { port: Number(o.sqsPort), what: 'local SQS', flag: '--sqs-port' },
  ],
  configPath,
);
const system = await startLocalSystem({
  workDir: o.workDir,
  configPath,
  dynamodbPort: Number(o.dynamodbPort),
  sqsPort: Number(o.sqsPort),
  resultsPump: false,
  agentLog: (l) => console.log(`agent: ${l}`),
  notice: (m) => console.error(`dev:api: ${m}`),
});
const token = loadConfig().apiToken ?? randomBytes(24).toString('base64url');
const config = JSON.parse(await readFile(configPath, 'utf8'));
await writePrivateFile(configPath, JSON.stringify({ ...config, apiToken: token }, null, 2) + '\n');
const stage = system.stack.config.prefix.replace(/^tape-archive-/, '');
const gateway = await startOfflineGateway({
  stage,
  httpPort: Number(o.httpPort),
  env: { ...system.env, TAPE_ARCHIVE_API_TOKEN: token },
  log: (l) => console.log(`gateway: ${l}`),
});
console.log(`gateway ready: ${gateway.url} (bearer token in ${configPath})`);
console.log(`try: npx run-job --api ${gateway.url} tapes`);
let stopping = false;
const shutdown = async () => {
  if (stopping) process.exit(1);
  stopping = true;
  await gateway.stop();
  await system.stop();
  process.exit(0);
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
