// Go-style durations (`90s`, `10m`, `1h30m`, `1.5h`, `0`): the Helm chart and operators used to
// Fleet's Go flags write them this way.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5 micro sign
  'μs': 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** The longest delay Node's timers hold (2^31-1 ms, about 24.8 days); a longer one fires after ~1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const COMPONENT = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;

/** Milliseconds, or a one-line reason why `text` is not a duration (negative ones are refused). */
export function parseDuration(text: string): number | { error: string } {
  let rest = text.trim();
  if (rest.startsWith('-') && rest !== '-0') return { error: 'must not be negative' };
  if (rest.startsWith('+') || rest.startsWith('-')) rest = rest.slice(1);
  if (rest === '0') return 0;
  if (rest === '') return { error: 'is not a duration (examples: 90s, 10m, 1h30m, 0)' };
  let total = 0;
  while (rest !== '') {
    const match = COMPONENT.exec(rest);
    if (!match) {
      const missingUnit = /^\d+(?:\.\d*)?$/.test(rest);
      return { error: missingUnit ? 'has no unit (examples: 90s, 10m, 1h30m, 0)' : 'is not a duration (examples: 90s, 10m, 1h30m, 0)' };
    }
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    rest = rest.slice(match[0].length);
  }
  return total;
}

/** The reverse, Go's way for whole units: 90000 → `1m30s`, 0 → `0s`; sub-second rests as `1.5s`. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1000;
  const secText = Number.isInteger(seconds) ? `${seconds}s` : `${seconds.toFixed(1).replace(/\.0$/, '')}s`;
  if (hours > 0) return `${hours}h${minutes}m${secText}`;
  if (minutes > 0) return `${minutes}m${secText}`;
  return secText;
}
