// Strict RFC 3339 date-times: the age of an artifact decides whether it is deleted, so a value
// that is not exactly a date-time with its timezone reads as unknown (and keeps the artifact).

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Epoch ms of an RFC 3339 date-time with its timezone (`Z` or `±hh:mm`), fractional seconds
 * allowed; undefined for anything else. Not Date.parse: it reads a value without a zone as
 * local time and takes "1" or "12" for a year, and an age read wrong deletes too early.
 */
export function parseRfc3339(value: string): number | undefined {
  const m = RFC3339.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  const offsetH = m[10] ? Number(m[10]) : 0;
  const offsetM = m[11] ? Number(m[11]) : 0;
  // Leap second 60 is RFC 3339's; it counts as the next second.
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 60 || offsetH > 23 || offsetM > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (day < 1 || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
  date.setUTCHours(hour, minute, second, ms);
  const sign = m[9] === '-' ? -1 : 1;
  return date.getTime() - sign * (offsetH * 60 + offsetM) * 60_000;
}
