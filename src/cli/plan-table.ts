// A dry run on a terminal: the plan as one table instead of a screenful of "would delete" log
// lines. The rows come from the audit lines themselves, so the table and the JSON log agree.
import { Writable } from 'node:stream';

export interface PlanRow {
  kind: string;
  namespace: string;
  name: string;
  reason: string;
}

/**
 * A log destination that passes every JSON line on to `next` except planned deletions
 * (`audit: true, action: would-delete`), which it keeps as rows for `printPlan`.
 */
export class PlanTap extends Writable {
  readonly rows: PlanRow[] = [];
  readonly #next: NodeJS.WritableStream;

  constructor(next: NodeJS.WritableStream) {
    super({ decodeStrings: false });
    this.#next = next;
  }

  override _write(chunk: unknown, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    const text = String(chunk);
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const record = parse(line);
      if (record?.audit === true && record.action === 'would-delete') {
        this.rows.push({ kind: String(record.kind ?? ''), namespace: String(record.namespace ?? record.registry ?? ''), name: String(record.name ?? ''), reason: String(record.reason ?? '') });
      } else {
        this.#next.write(`${line}\n`);
      }
    }
    done();
  }
}

function parse(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The plan as a table in kubectl's style (upper-case headers, aligned columns), or one line when nothing would be deleted. */
export function printPlan(rows: readonly PlanRow[], out: NodeJS.WritableStream): void {
  if (rows.length === 0) {
    out.write('Plan: nothing would be deleted.\n');
    return;
  }
  out.write(`Plan: ${rows.length} deletion${rows.length === 1 ? '' : 's'}:\n`);
  const table = [['KIND', 'NAMESPACE/REGISTRY', 'NAME', 'REASON'], ...rows.map((r) => [r.kind, r.namespace, r.name, r.reason])];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table) out.write(`${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('')}\n`);
}
