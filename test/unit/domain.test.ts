import { describe, expect, it } from 'vitest';
import { assertTapeTransition, canTransitionTape, TAPE_STATES, validateTapeName } from '../../src/lib/domain/tape.ts';
import {
  canTransitionPlacement,
  PLACEMENTS,
  REASSIGNABLE_PLACEMENTS,
  targetId,
  targetStatus,
  withFileInHistory,
  type Placed,
} from '../../src/lib/domain/target.ts';
import { formatBytes, parseBytes } from '../../src/lib/domain/units.ts';
import { IllegalTransitionError } from '../../src/lib/errors.ts';

describe('tape state machine', () => {
  it('closed is final and every state can be closed or is already', () => {
    for (const s of TAPE_STATES) expect(canTransitionTape('closed', s)).toBe(false);
    for (const s of TAPE_STATES.filter((x) => x !== 'closed')) expect(canTransitionTape(s, 'closed')).toBe(true);
  });
  it('refuses illegal transitions with a clear error', () => {
    expect(() => assertTapeTransition('tape1', 'full', 'labelled')).toThrow(IllegalTransitionError);
    expect(() => assertTapeTransition('tape1', 'full', 'labelled')).toThrow('tape tape1 is full and cannot become labelled.');
  });
  it('validates names', () => {
    expect(validateTapeName('tape1')).toBeUndefined();
    expect(validateTapeName('-x')).toMatch(/invalid/);
    expect(validateTapeName('a'.repeat(33))).toMatch(/invalid/);
  });
});

describe('target state machine', () => {
  it('a target whose tape file read back bad can be archived again; a good one cannot leave its file', () => {
    expect(canTransitionPlacement('confirm_failed', 'assigned')).toBe(true);
    expect(canTransitionPlacement('confirm_failed', 'unassigned')).toBe(true);
    expect(REASSIGNABLE_PLACEMENTS).toEqual(['unassigned', 'assigned', 'confirm_failed', 'write_failed']);
  });

  it('leaving a bad tape file puts it into the history, bounded to the last 20', () => {
    const t: Placed = { placement: 'confirm_failed', tapeName: 'T1', fileNumber: 3, lastError: 'bad crc' };
    expect(withFileInHistory(t, 'now').previousFiles).toEqual([{ tapeName: 'T1', fileNumber: 3, state: 'confirm_failed', error: 'bad crc', at: 'now' }]);
    expect(withFileInHistory({ ...t, placement: 'write_failed' }, 'now')).toEqual({});
    const long = {
      ...t,
      previousFiles: Array.from({ length: 20 }, (_, i) => ({ tapeName: 'T0', fileNumber: i + 1, state: 'confirm_failed' as const, at: 'x' })),
    };
    const h = withFileInHistory(long, 'now').previousFiles!;
    expect(h).toHaveLength(20);
    expect(h.at(-1)).toMatchObject({ tapeName: 'T1', fileNumber: 3 });
    expect(h[0]!.fileNumber).toBe(2);
  });

  it('nothing archived and not failed can go back to unassigned or assigned', () => {
    for (const from of ['archived', 'confirmed'] as const) {
      expect(canTransitionPlacement(from, 'assigned')).toBe(false);
      expect(canTransitionPlacement(from, 'unassigned')).toBe(false);
    }
  });
  it('a write can only start from assigned', () => {
    for (const from of PLACEMENTS) expect(canTransitionPlacement(from, 'writing')).toBe(from === 'assigned');
  });
  it('status combines scan and placement', () => {
    expect(targetStatus({ scan: 'pending', placement: 'unassigned' })).toBe('imported');
    expect(targetStatus({ scan: 'complete', placement: 'unassigned' })).toBe('scanned');
    expect(targetStatus({ scan: 'failed', placement: 'unassigned' })).toBe('scan_failed');
    expect(targetStatus({ scan: 'pending', placement: 'assigned' })).toBe('assigned');
    // a failed scan stays visible, assigned or not, until the target is scanned again
    expect(targetStatus({ scan: 'failed', placement: 'assigned' })).toBe('scan_failed');
    expect(targetStatus({ scan: 'failed', placement: 'write_failed' })).toBe('write_failed');
  });
  it('ids are deterministic per host and path', () => {
    expect(targetId('h', '/a')).toBe(targetId('h', '/a'));
    expect(targetId('h', '/a')).not.toBe(targetId('g', '/a'));
    expect(targetId('h', '/a')).toMatch(/^t-[0-9a-f]{16}$/);
  });
});

describe('byte sizes', () => {
  it('parses operator units', () => {
    expect(parseBytes('18T')).toBe(18e12);
    expect(parseBytes('12 TB')).toBe(12e12);
    expect(parseBytes('1GiB')).toBe(2 ** 30);
    expect(parseBytes('2.5t')).toBe(2.5e12);
    expect(parseBytes('100')).toBe(100);
    expect(parseBytes('0')).toBeUndefined();
    expect(parseBytes('lots')).toBeUndefined();
    expect(parseBytes('5 XB')).toBeUndefined();
  });
  it('formats', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(18e12)).toBe('18.0 TB');
    expect(formatBytes(2.5e12)).toBe('2.50 TB');
  });
});

describe('tape layout', () => {
  it('is runs of consecutive file numbers in one state, in order', async () => {
    const { layoutRuns } = await import('../../src/lib/domain/tape-file.ts');
    const f = (fileNumber: number, state: 'archived' | 'confirmed' | 'confirm_failed') => ({ fileNumber, state });
    expect(layoutRuns([f(3, 'confirmed'), f(1, 'confirmed'), f(2, 'confirmed'), f(4, 'archived'), f(5, 'confirm_failed'), f(6, 'archived')])).toEqual([
      { from: 1, to: 3, state: 'confirmed' },
      { from: 4, to: 4, state: 'archived' },
      { from: 5, to: 5, state: 'confirm_failed' },
      { from: 6, to: 6, state: 'archived' },
    ]);
    expect(layoutRuns([])).toEqual([]);
  });
});
