/** The one log line shape (src/lib/log.ts), shared by the agent, the results pump and the handlers. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/lib/log.ts';

describe('structured logger', () => {
  it('writes one JSON object per line: level name, ISO time, service, msg, fields; below the level nothing', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    const log = createLogger({ service: 'tape-agent', level: 'info', destination: destination as never });
    log('debug', 'not shown');
    log('warn', 'write failed', { taskId: 't-1', fileNumber: 3 });
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ level: 'warn', service: 'tape-agent', msg: 'write failed', taskId: 't-1', fileNumber: 3 });
    expect(new Date(line.time).toISOString()).toBe(line.time);
  });
});
