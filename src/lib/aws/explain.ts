/**
 * Operator words for the AWS SDK's failures that are a matter of setup, not of the archive:
 * no credentials, nothing listening, tables or queues missing. Undefined for anything else.
 */
import { errorMessage } from '../errors.ts';

export function explainAwsError(e: unknown, where: { endpoint?: string; prefix?: string } = {}): string | undefined {
  const name = (e as Error)?.name ?? '';
  const text = `${name} ${errorMessage(e)} ${String((e as { code?: string })?.code ?? '')}`;
  if (name === 'CredentialsProviderError' || /Could not load credentials/.test(text)) {
    return (
      'no AWS credentials were found (environment, ~/.aws, instance role). On AWS set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ' +
      '(for the agent: /etc/tape-archive/agent.env, docs/operations.md); for the local stack start "npm run dev" or "npm run stack", which write .tape-archive/config.json.'
    );
  }
  if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|socket hang up|connect ETIMEDOUT/i.test(text)) {
    return `cannot reach the catalog or queues at ${where.endpoint ?? 'AWS'} (${errorMessage(e)}). Start the embedded stack with "npm run stack", or point AWS_ENDPOINT_URL / TAPE_ARCHIVE_CONFIG at a running one.`;
  }
  if (/ResourceNotFoundException|QueueDoesNotExist|NonExistentQueue/.test(text)) {
    return `the tables or queues for prefix "${where.prefix ?? '?'}" do not exist (${errorMessage(e)}). Create them with "run-job bootstrap" or start the embedded stack.`;
  }
  return undefined;
}
