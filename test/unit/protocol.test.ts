import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseMessage, taskSchema } from '../../src/lib/protocol/tasks.ts';

const write = {
  v: 1,
  kind: 'write',
  taskId: randomUUID(),
  issuedAt: new Date().toISOString(),
  tapeName: 'tape1',
  fileNumber: 3,
  target: { id: 't-1', host: 'h', path: '/d' },
  scanId: 's',
  manifestPages: 1,
  fileCount: 2,
  totalBytes: 10,
};

describe('task protocol', () => {
  it('accepts a valid envelope', () => {
    const r = parseMessage(taskSchema, JSON.stringify(write));
    expect(r).toEqual({ ok: true, value: write });
  });
  it.each([
    ['not JSON', '{nope', /not JSON/],
    ['unknown version', JSON.stringify({ ...write, v: 2 }), /unsupported protocol version 2/],
    ['unknown kind', JSON.stringify({ ...write, kind: 'erase' }), /kind/],
    ['unknown field', JSON.stringify({ ...write, extra: 1 }), /extra/],
    ['file 0 (the label)', JSON.stringify({ ...write, fileNumber: 0 }), /fileNumber/],
    ['oversized', JSON.stringify({ ...write, scanId: 'x'.repeat(300_000) }), /over the 256 KiB limit/],
  ])('rejects %s without throwing', (_name, body, message) => {
    const r = parseMessage(taskSchema, body);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(message);
  });
});
