/** The progress bar's figures: a steady stream shows a steady rate; times read like an operator writes them. */
import { describe, expect, it } from 'vitest';
import { formatSeconds, RateWindow, summarize } from '../../src/cli/progress.ts';

describe('RateWindow', () => {
  it('a steady 150 MB/s reported in uneven bursts reads as about 150 MB/s every time', () => {
    const w = new RateWindow(5000);
    let t = 0;
    let bytes = 0;
    const seen: number[] = [];
    // Reports every 0.3-1.7 s (as polls and throttled reports meet), the stream itself steady.
    for (let i = 0; i < 60; i++) {
      t += 300 + ((i * 7919) % 1400);
      bytes = 150e6 * (t / 1000);
      w.add(t, bytes);
      if (i > 5) seen.push(w.rate / 1e6);
    }
    expect(Math.min(...seen)).toBeGreaterThan(149);
    expect(Math.max(...seen)).toBeLessThan(151);
  });

  it('ignores polls that saw no new report, and says 0 until two reports are in', () => {
    const w = new RateWindow();
    w.add(1000, 10);
    expect(w.rate).toBe(0);
    w.add(1500, 10); // same bytes: the same report polled again
    w.add(2000, 1010);
    expect(w.rate).toBe(1000);
  });
});

describe('formatSeconds and summarize', () => {
  it('formats durations', () => {
    expect([5, 75, 3725].map(formatSeconds)).toEqual(['5s', '1m15s', '1h02m']);
  });
  it('summarizes bytes, elapsed time and mean rate from the task item', () => {
    const s = {
      taskId: 'x',
      kind: 'write' as const,
      state: 'succeeded' as const,
      bytesDone: 300e6,
      bytesTotal: 300e6,
      createdAt: '2026-12-02T10:00:00.000Z',
      startedAt: '2026-12-02T10:00:01.000Z',
      updatedAt: '2026-12-02T10:00:03.000Z',
    };
    expect(summarize(s)).toBe('300 MB in 2.0 s, mean 150 MB/s');
    expect(summarize({ ...s, startedAt: undefined })).toBeUndefined();
  });
});
