import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Config } from '../config.ts';

/** Emulators accept any key; real AWS uses the default provider chain (env, profile, role). */
const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface AwsClients {
  dynamodb: DynamoDBClient;
  sqs: SQSClient;
}

export function createClients(config: Config): AwsClients {
  const common = {
    region: config.region,
    ...(config.localCredentials ? { credentials: LOCAL_CREDENTIALS } : {}),
  };
  return {
    dynamodb: new DynamoDBClient({ ...common, ...(config.endpoints.dynamodb ? { endpoint: config.endpoints.dynamodb } : {}) }),
    sqs: new SQSClient({ ...common, ...(config.endpoints.sqs ? { endpoint: config.endpoints.sqs } : {}) }),
  };
}

export function destroyClients(c: AwsClients): void {
  c.dynamodb.destroy();
  c.sqs.destroy();
}
