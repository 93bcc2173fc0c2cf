// The request contract: every resource request is validated as kube-apiserver validates it
// (options.ts and the body checks of the handlers), and each one kube would refuse for its shape
// is recorded with its request line. The fixtures that start the server fail a test file that
// leaves violations behind (index.ts `close()`), so a request the job sends that a real cluster
// would refuse cannot pass the suite unnoticed.

import { ApiError } from './errors.ts';
import type { RequestRecord } from './faults.ts';
import { checkCreateNamespace, checkRequestOptions, checkUpdateName, deleteOptions } from './options.ts';
import { objectBody, parseBody, resolveType, type Ctx } from './handlers.ts';
import type { Catalogue } from './resources.ts';

/** `PUT /api/v1/namespaces/x/configmaps/y?dryRun=false`: the request as a user would name it. */
export function requestLine(r: Pick<RequestRecord, 'method' | 'path' | 'query'>): string {
  const q = r.query.toString();
  return `${r.method} ${r.path}${q ? `?${q}` : ''}`;
}

export interface ContractViolation {
  request: string;
  code: number;
  message: string;
}

export class ContractLog {
  private violations: ContractViolation[] = [];

  add(record: RequestRecord, err: ApiError): void {
    this.violations.push({ request: requestLine(record), code: err.code, message: err.message });
  }

  list(): ContractViolation[] {
    return [...this.violations];
  }

  /** Returns and forgets the violations (tests that send refused requests on purpose). */
  take(): ContractViolation[] {
    const out = this.violations;
    this.violations = [];
    return out;
  }
}

export class ContractViolationError extends Error {
  override readonly name = 'ContractViolationError';
  constructor(violations: ContractViolation[]) {
    super(`kube-apiserver would refuse ${violations.length} request(s) sent to the API test server:\n${violations.map((v) => `  ${v.request} → ${v.code} ${v.message}`).join('\n')}`);
  }
}

/**
 * The shape checks of one resource request, without touching the store: the refusal kube would
 * answer for its options, its DeleteOptions or its body against the URL, or undefined.
 */
export function preflight(ctx: Ctx, catalogue: Catalogue): ApiError | undefined {
  try {
    const type = resolveType(catalogue, ctx.info);
    checkRequestOptions(type, ctx.info, ctx.query, ctx.contentType);
    switch (ctx.info.verb) {
      case 'delete':
      case 'deletecollection':
        deleteOptions(ctx.query, parseBody(ctx));
        break;
      case 'update':
        checkUpdateName(ctx.info, objectBody(ctx, type));
        break;
      case 'create':
        checkCreateNamespace(type, ctx.info, objectBody(ctx, type));
        break;
    }
    return undefined;
  } catch (e) {
    return e instanceof ApiError && e.contract ? e : undefined;
  }
}
