/**
 * Error classes shared by handlers, CLI and agent. Every error carries a stable `code`
 * (for scripts and HTTP mapping), a message that says what is wrong and what to do, whether
 * trying again later can help (`retryable`), and the error it wraps (`cause`).
 */
export abstract class ArchiveError extends Error {
  abstract readonly code: string;
  /** HTTP status a gateway answers with; the CLI maps < 500 user errors to exit 1. */
  abstract readonly status: number;
  /** Whether the same request may succeed later without an operator (default: no). */
  readonly retryable: boolean = false;
  constructor(
    message: string,
    readonly context: Record<string, unknown> = {},
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** The caller's input is malformed (CLI exit 2, HTTP 400). */
export class UsageError extends ArchiveError {
  override readonly name = 'UsageError';
  readonly code = 'BAD_USAGE';
  readonly status = 400;
}

/** The input is well formed but its content is invalid (e.g. bad lines in an import list). */
export class ValidationError extends ArchiveError {
  override readonly name = 'ValidationError';
  readonly code = 'INVALID_INPUT';
  readonly status = 400;
}

export class NotFoundError extends ArchiveError {
  override readonly name = 'NotFoundError';
  readonly code = 'NOT_FOUND';
  readonly status = 404;
}

/** A state machine refused a transition; nothing was changed. */
export class IllegalTransitionError extends ArchiveError {
  override readonly name = 'IllegalTransitionError';
  readonly code = 'ILLEGAL_TRANSITION';
  readonly status = 409;
}

/** The request lost a race or conflicts with work in flight; nothing was changed. */
export class ConflictError extends ArchiveError {
  override readonly name = 'ConflictError';
  readonly code = 'CONFLICT';
  readonly status = 409;
}

/** `archive` was asked to write to a tape that is no longer the online tape; nothing was started. */
export class OnlineTapeChangedError extends ArchiveError {
  override readonly name = 'OnlineTapeChangedError';
  readonly code = 'ONLINE_TAPE_CHANGED';
  readonly status = 409;
}

/** The catalog still holds items of release 0.3 (one copy on the target): `migrate` must run first; nothing was changed. */
export class CatalogUpgradeError extends ArchiveError {
  override readonly name = 'CatalogUpgradeError';
  readonly code = 'CATALOG_UPGRADE_NEEDED';
  readonly status = 409;
  /** `what`: the release-0.3 item met, e.g. "target t-1 still holds its placement". */
  constructor(what: string) {
    super(`the catalog was written by release 0.3 and is not upgraded yet (${what}); run "run-job migrate" once, then repeat this. Nothing was changed.`, {
      what,
    });
  }
}

/**
 * A report arrived before one it depends on (SQS standard queues keep no order): thrown while
 * applying it, so the message is retried after its visibility timeout; nothing was changed.
 */
export class ReportTooEarlyError extends ArchiveError {
  override readonly name = 'ReportTooEarlyError';
  readonly code = 'REPORT_TOO_EARLY';
  readonly status = 409;
}

/** Required configuration is missing or malformed. */
export class ConfigError extends ArchiveError {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG';
  readonly status = 500;
}

export function isArchiveError(e: unknown): e is ArchiveError {
  return e instanceof ArchiveError;
}

/** The message of anything thrown (an Error's message, or the value as a string). */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The errno code (`ENOENT`, `EIO`, ...) of a system error, if it has one. */
export function errnoCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}
