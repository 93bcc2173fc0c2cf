// Test hooks: the request log every request lands in, and fault rules that delay, fail,
// or drop matching requests (or run a callback first).

export interface RequestFilter {
  verb?: string;
  group?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export interface RequestRecord extends Required<Pick<RequestFilter, 'verb' | 'group' | 'resource'>> {
  method: string;
  path: string;
  query: URLSearchParams;
  namespace?: string;
  name?: string;
  subresource?: string;
  user: string;
  status?: number;
  /** From the request's arrival to its answer, as the server saw it. */
  servedMs?: number;
}

export interface FaultRule extends RequestFilter {
  /** answered as a Status with kube's reason for the code; 429 as API Priority and Fairness answers it (errors.ts apfTooManyRequests) */
  status?: number;
  reason?: string;
  message?: string;
  retryAfterSeconds?: number;
  latencyMs?: number;
  dropConnection?: boolean;
  times?: number;
  before?: (req: RequestRecord) => void | Promise<void>;
}

export interface FaultHandle {
  remove(): void;
  readonly hits: number;
}

export function matches(filter: RequestFilter, r: RequestRecord): boolean {
  return (
    (filter.verb === undefined || filter.verb === r.verb) &&
    (filter.group === undefined || filter.group === r.group) &&
    (filter.resource === undefined || filter.resource === r.resource) &&
    (filter.subresource === undefined || filter.subresource === (r.subresource ?? '')) &&
    (filter.namespace === undefined || filter.namespace === (r.namespace ?? '')) &&
    (filter.name === undefined || filter.name === (r.name ?? ''))
  );
}

interface ActiveRule {
  rule: FaultRule;
  hits: number;
}

export class Faults {
  private rules: ActiveRule[] = [];

  add(rule: FaultRule): FaultHandle {
    const active: ActiveRule = { rule, hits: 0 };
    this.rules.push(active);
    return {
      remove: () => {
        this.rules = this.rules.filter((r) => r !== active);
      },
      get hits() {
        return active.hits;
      },
    };
  }

  clear(): void {
    this.rules = [];
  }

  /** The rules that apply to this request, each counted as hit. */
  take(r: RequestRecord): FaultRule[] {
    const out: FaultRule[] = [];
    for (const a of this.rules) {
      if (!matches(a.rule, r)) continue;
      if (a.rule.times !== undefined && a.hits >= a.rule.times) continue;
      a.hits++;
      out.push(a.rule);
    }
    return out;
  }
}

export class RequestLog {
  private records: RequestRecord[] = [];

  add(r: RequestRecord): void {
    this.records.push(r);
  }

  list(filter: RequestFilter = {}): RequestRecord[] {
    return this.records.filter((r) => matches(filter, r));
  }

  count(filter: RequestFilter = {}): number {
    return this.list(filter).length;
  }

  reset(): void {
    this.records = [];
  }
}
