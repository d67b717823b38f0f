/**
 * The one structured logger (pino): JSON lines with the same shape in the tape agent, the
 * results pump and the Lambda handlers, for journald, CloudWatch and log shippers:
 *   {"level":"info","time":"2026-01-02T03:04:05.000Z","service":"tape-agent","msg":"...",...fields}
 * Code logs through the small `Logger` function type, so tests can inject their own.
 */
import { pino, stdTimeFunctions, type DestinationStream } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface LoggerOptions {
  /** Which part of the system writes the line ("tape-agent", "results", a function name). */
  service: string;
  level?: LogLevel;
  /** Where lines go (default: stdout, synchronously). */
  destination?: DestinationStream;
}

export function createLogger(o: LoggerOptions): Logger {
  const p = pino(
    {
      level: o.level ?? 'info',
      base: { service: o.service },
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    o.destination ?? pino.destination({ dest: 1, sync: true }),
  );
  return (level, msg, fields = {}) => p[level](fields, msg);
}
