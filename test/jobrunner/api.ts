// The runner's view of the API: plain HTTP to the test server with the admin token, as the
// Job controller and the kubelet talk to kube-apiserver (JSON, no client library state).

export interface Reply {
  status: number;
  body: any;
}

export class Api {
  private readonly base: string;
  private readonly token: string;
  constructor(base: string, token: string) {
    this.base = base;
    this.token = token;
  }

  async request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<Reply> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, 'content-type': contentType, accept: 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed };
  }

  /** The request's answer; throws on anything but 2xx and the statuses listed as expected. */
  async must(method: string, path: string, body?: unknown, contentType?: string, expected: number[] = []): Promise<Reply> {
    const r = await this.request(method, path, body, contentType);
    if (r.status >= 300 && !expected.includes(r.status)) {
      throw new Error(`${method} ${path}: ${r.status} ${typeof r.body === 'object' ? String(r.body?.message) : String(r.body)}`);
    }
    return r;
  }

  async items(path: string): Promise<any[]> {
    return ((await this.must('GET', path)).body?.items ?? []) as any[];
  }
}

export const jobPath = (ns: string, name: string) => `/apis/batch/v1/namespaces/${ns}/jobs/${name}`;
export const podPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/pods/${name}`;
export const nowTime = (ms = Date.now()) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
