/**
 * `npm run stack`: the embedded stack in the foreground for an agent started elsewhere:
 * DynamoDB Local (data in .tape-archive/dev/dynamodb, the same as `npm run dev`), local SQS,
 * the results pump (without it no report would reach the catalog) and the periodic
 * reconcile. Writes .tape-archive/config.json for run-job and the agent; runs until Ctrl-C.
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { createClients, destroyClients } from '../lib/aws/clients.ts';
import { DEFAULT_CONFIG_PATH } from '../lib/config.ts';
import { createJobContext } from '../lib/jobs/context.ts';
import { createLogger } from '../lib/log.ts';
import { startBackgroundWork } from '../local/background-work.ts';
import { startEmbeddedStack } from '../local/embedded-stack.ts';
import { exitIfPortsTaken } from '../local/free-port.ts';

const program = new Command('stack')
  .option('--work-dir <dir>', 'work dir: the DynamoDB Local data is in its dynamodb/ (the same as npm run dev)', '.tape-archive/dev')
  .option('--dynamodb-port <port>', 'DynamoDB Local port', '8000')
  .option('--sqs-port <port>', 'local SQS port', '9324')
  .option('--prefix <prefix>', 'resource name prefix')
  .parse();
const o = program.opts<{ workDir: string; dynamodbPort: string; sqsPort: string; prefix?: string }>();
const dataDir = resolve(o.workDir, 'dynamodb');

await exitIfPortsTaken(
  [
    { port: Number(o.dynamodbPort), what: 'DynamoDB Local', flag: '--dynamodb-port' },
    { port: Number(o.sqsPort), what: 'local SQS', flag: '--sqs-port' },
  ],
  resolve(DEFAULT_CONFIG_PATH),
);

const stack = await startEmbeddedStack({
  dataDir,
  dynamodbPort: Number(o.dynamodbPort),
  sqsPort: Number(o.sqsPort),
  configPath: resolve(DEFAULT_CONFIG_PATH),
  ...(o.prefix ? { prefix: o.prefix } : {}),
});
const clients = createClients(stack.config);
const ctx = createJobContext(stack.config, clients);
// What the SQS-triggered Lambda and the schedule do on AWS: reports applied, lost work re-driven.
const background = await startBackgroundWork(ctx, { log: createLogger({ service: 'stack' }) });
await background.catchUp();

console.log(`DynamoDB Local  ${stack.endpoints.dynamodb}  (data: ${dataDir})`);
console.log(`local SQS       ${stack.endpoints.sqs}  (in memory: tasks lost on restart are re-driven from the catalog)`);
console.log(`tables          ${stack.resources.tables.join(', ')}`);
console.log(`queues          ${Object.values(stack.resources.queueUrls).join('\n                ')}`);
console.log("results pump    applying the agent's reports to the catalog; reconcile every minute");
console.log(`config          ${resolve(DEFAULT_CONFIG_PATH)} (run-job and tape-agent read it)`);
console.log('ready: start an agent with "npx tape-agent run --config agent.json"; Ctrl-C stops.');

let stopping = false;
const shutdown = async () => {
  if (stopping) process.exit(1);
  stopping = true;
  await background.stop();
  destroyClients(clients);
  await stack.stop();
  process.exit(0);
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
