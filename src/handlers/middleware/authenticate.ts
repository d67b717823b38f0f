/**
 * Every route needs credentials. On AWS the HTTP API's IAM (SigV4) authorizer has checked
 * the caller before the function runs and says so in the request context (trusted only on
 * real Lambda: serverless-offline fills it in without checking). Elsewhere
 * (serverless-offline, a plain HTTP server) the caller sends `Authorization: Bearer <token>`
 * with the token from configuration. No credentials configured means every call is refused.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-access-control-iam.html
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { MiddlewareObj } from '@middy/core';
import { ArchiveError } from '../../lib/errors.ts';

export class UnauthenticatedError extends ArchiveError {
  override readonly name = 'UnauthenticatedError';
  readonly code = 'UNAUTHENTICATED';
  readonly status = 401;
}

export class ForbiddenError extends ArchiveError {
  override readonly name = 'ForbiddenError';
  readonly code = 'FORBIDDEN';
  readonly status = 403;
}

export interface AuthEvent {
  headers?: Record<string, string | undefined> | null;
  requestContext?: { authorizer?: { iam?: unknown; jwt?: unknown } | null } | null;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function checkCredentials(event: AuthEvent, opts: { token: string | undefined; trustGatewayAuth: boolean }): void {
  const authorizer = event.requestContext?.authorizer;
  if (opts.trustGatewayAuth && authorizer && (authorizer.iam || authorizer.jwt)) return;
  const token = opts.token;
  const header = Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  if (!header)
    throw new UnauthenticatedError(
      'missing credentials: send "Authorization: Bearer <token>" (the API token from configuration) or sign the request with AWS SigV4.',
    );
  const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!m) throw new UnauthenticatedError('malformed Authorization header: use "Authorization: Bearer <token>".');
  // Compare digests so the comparison takes the same time whatever the token's length.
  if (!token || !timingSafeEqual(digest(m[1]!), digest(token))) throw new ForbiddenError('the API token is not valid for this service.');
}

export const authenticate = (settings: () => { token: string | undefined; trustGatewayAuth: boolean }): MiddlewareObj<AuthEvent> => ({
  before: async (request) => {
    checkCredentials(request.event, settings());
  },
});
