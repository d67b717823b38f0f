/**
 * Writes localstack/resources.json: the tables and queues of definitions.ts as CreateTable and
 * CreateQueue inputs, for LocalStack's init hook (which has no Node). Run through
 * `npm run localstack:resources`; the file is generated, never edited by hand.
 */
import { writeFile } from 'node:fs/promises';
import { createQueueAttributes, createTableInput, QUEUES, resourceNames, TABLES } from '../lib/resources/definitions.ts';
import { loadConfig } from '../lib/config.ts';

export function localstackResources(prefix: string) {
  const names = resourceNames(prefix);
  return {
    prefix,
    tables: (Object.keys(TABLES) as (keyof typeof TABLES)[]).map((k) => createTableInput(TABLES[k], names[k])),
    queues: (Object.keys(QUEUES) as (keyof typeof QUEUES)[]).map((k) => ({
      name: names.queues[k].name,
      dlqName: names.queues[k].dlqName,
      attributes: createQueueAttributes(QUEUES[k]),
      maxReceiveCount: QUEUES[k].maxReceiveCount,
    })),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { prefix } = loadConfig();
  await writeFile('localstack/resources.json', JSON.stringify(localstackResources(prefix), null, 2) + '\n');
  console.log(`localstack/resources.json written for prefix ${prefix}`);
}
