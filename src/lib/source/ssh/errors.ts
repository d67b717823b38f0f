/** Errors of the SSH data source, each with a code (host keys and user keys need an operator). */
import { ArchiveError } from '../../errors.ts';
import { SourceUnavailableError } from '../data-source.ts';

// Errors

export type HostKeyErrorCode = 'HOST_KEY_UNKNOWN' | 'HOST_KEY_CHANGED' | 'HOST_KEY_REVOKED';

/**
 * The server's host key is not pinned in known_hosts (unknown), differs from the pinned one
 * (changed: possible man-in-the-middle, or the host was reinstalled), or is revoked. Not
 * retryable: an operator must check the fingerprint and update known_hosts.
 */
export class HostKeyError extends ArchiveError {
  override readonly name = 'HostKeyError';
  readonly status = 502;
  constructor(
    readonly code: HostKeyErrorCode,
    message: string,
    readonly details: { host: string; port: number; keyType: string; fingerprint: string; knownHostsPath: string },
  ) {
    super(message, details);
  }
}

/** The server refused our key (wrong user key, or the key is not in authorized_keys). Not retryable. */
export class SshAuthError extends ArchiveError {
  override readonly name = 'SshAuthError';
  readonly code = 'SSH_AUTH_FAILED';
  readonly status = 502;
}

/** A remote command failed (non-zero exit, error output, truncated output). Retryable. */
export class RemoteCommandError extends SourceUnavailableError {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
  }
}
