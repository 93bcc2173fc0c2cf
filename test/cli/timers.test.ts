// Durations past what Node's timers hold (2^31-1 ms, about 24.8 days) overflow to ~1 ms: a
// heartbeat firing every millisecond, a budget spent at once, a request timeout that throws.
// Such values are refused at parse time with one line; a marker's recorded lock timeout is
// trusted only up to a day.
import { describe, expect, it } from 'vitest';
import { parseOptions, UsageError } from '../../src/cli/options.ts';
import { decide } from '../../src/marker/decide.ts';
import type { MarkerRecord } from '../../src/marker/record.ts';

function usageError(argv: string[]): string {
  try {
    parseOptions(argv, {});
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`no usage error for ${argv.join(' ')}`);
}

describe('durations that Node timers cannot hold', () => {
  it.each(['lock-timeout', 'time-budget', 'request-timeout', 'registry-timeout'])('--%s 2000h is refused with one line', (flag) => {
    const message = usageError([`--${flag}`, '2000h']);
    expect(message).toMatch(new RegExp(`--${flag}`));
    expect(message).toMatch(flag === 'lock-timeout' ? /must be at most 24h0m0s/ : /must be at most 596h31m23\.6s/);
    expect(message).not.toContain('\n');
  });

  it('the largest duration a timer holds is accepted, and one more millisecond is not', () => {
    const ok = parseOptions(['--time-budget', '2147483647ms'], {});
    expect(ok.command === 'run' && ok.options.timeBudgetMs).toBe(2 ** 31 - 1);
    usageError(['--time-budget', '2147483648ms']);
  });

  it('--lock-timeout is at most a day: what other runs trust a recorded one for', () => {
    usageError(['--lock-timeout', '25h']);
    const ok = parseOptions(['--lock-timeout', '24h'], {});
    expect(ok.command === 'run' && ok.options.lockTimeoutMs).toBe(86_400_000);
  });

  it('ages are not timers: --min-age and --oci-min-age take long durations', () => {
    const ok = parseOptions(['--min-age', '2000h', '--oci-min-age', '2000h'], {});
    expect(ok.command === 'run' && [ok.options.minAgeMs, ok.options.ociMinAgeMs]).toEqual([2000 * 3_600_000, 2000 * 3_600_000]);
  });
});

describe("a marker's recorded lock timeout", () => {
  const now = new Date('2026-03-01T12:00:00Z');
  const running = (lockTimeoutSeconds: string, renewedAt: string): MarkerRecord => ({ status: 'running', runKey: 'v1', startedAt: '2026-02-01T00:00:00Z', holder: 'pod-a/1', renewedAt, lockTimeoutSeconds });
  const input = { runKey: 'v1', force: false, lockTimeoutMs: 120_000, now };

  it('edited to 1e308 does not block every run for ever: a day without renewal ends it', () => {
    expect(decide(running('1e308', '2026-02-28T11:59:59Z'), input).action).toBe('take');
    expect(decide(running('1e308', '2026-02-28T12:00:01Z'), input).action).toBe('skip-locked');
  });
});
