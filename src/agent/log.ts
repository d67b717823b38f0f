/** The agent's structured log lines (src/lib/log.ts), on stdout for journald. */
import { createLogger, type Logger, type LogLevel } from '../lib/log.ts';

export type { Logger, LogLevel };

export function agentLogger(level: LogLevel = 'info'): Logger {
  return createLogger({ service: 'tape-agent', level });
}
