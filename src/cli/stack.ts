/**
 * `npm run stack`: starts the embedded stack in the foreground (DynamoDB Local with its data
 * in .tape-archive/dynamodb, local SQS), writes .tape-archive/config.json for run-job and the
 * agent, prints the endpoints, and runs until Ctrl-C.
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../lib/config.ts';
import { startEmbeddedStack } from '../local/embedded-stack.ts';

const program = new Command('stack')
  .option('--data-dir <dir>', 'DynamoDB Local data directory', '.tape-archive/dynamodb')
  .option('--dynamodb-port <port>', 'DynamoDB Local port', '8000')
  .option('--sqs-port <port>', 'local SQS port', '9324')
  .option('--prefix <prefix>', 'resource name prefix')
  .parse();
const o = program.opts<{ dataDir: string; dynamodbPort: string; sqsPort: string; prefix?: string }>();

const stack = await startEmbeddedStack({
  dataDir: resolve(o.dataDir),
  dynamodbPort: Number(o.dynamodbPort),
  sqsPort: Number(o.sqsPort),
  configPath: resolve(DEFAULT_CONFIG_PATH),
  ...(o.prefix ? { prefix: o.prefix } : {}),
});
console.log(`DynamoDB Local  ${stack.endpoints.dynamodb}  (data: ${resolve(o.dataDir)})`);
console.log(`local SQS       ${stack.endpoints.sqs}  (in memory: tasks lost on restart are re-driven from the catalog)`);
console.log(`tables          ${stack.resources.tables.join(', ')}`);
console.log(`queues          ${Object.values(stack.resources.queueUrls).join('\n                ')}`);
console.log(`config          ${resolve(DEFAULT_CONFIG_PATH)} (run-job and tape-agent read it)`);
console.log('ready; Ctrl-C stops.');

let stopping = false;
const shutdown = async () => {
  if (stopping) process.exit(1);
  stopping = true;
  await stack.stop();
  process.exit(0);
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
