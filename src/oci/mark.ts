// Mark: which contents ids are in use right now (fleet-reference §2; the rule is idsNamedBy in
// rules.ts). Lists stream page by page; what each object names is kept (the sweep's view, which
// a watch from the lists' resourceVersions keeps current), and the set of ids with the OCI ones
// counted (the plan's brake).
import type { KubeAccess } from '../kube/access.ts';
import { isNotFound, RequestAbandoned, type KubeOp } from '../kube/errors.ts';
import { listInPages, type ListPage } from '../kube/pager.ts';
import type { Logger } from '../log.ts';
import { budgetStop, overloadStop } from '../phase.ts';
import { messageOf } from '../error-text.ts';
import { FLEET_VERSION, InUseView, PLURAL, type FleetKind } from './in-use.ts';
import { FLEET_GROUP, idsNamedBy } from './rules.ts';

interface FleetObject {
  metadata?: { name?: string; namespace?: string };
  spec?: { contentsId?: unknown; deploymentID?: unknown; stagedDeploymentID?: unknown; ociContents?: unknown };
}

/** The ids in use at one moment; `oci` marks those known to live in OCI storage. */
export class InUseSet {
  readonly #ids = new Map<string, boolean>();
  #ociCount = 0;

  add(id: string, oci: boolean): void {
    const before = this.#ids.get(id);
    if (before === undefined) this.#ids.set(id, oci);
    else if (oci && !before) this.#ids.set(id, true);
    if (oci && before !== true) this.#ociCount++;
  }

  has(id: string): boolean {
    return this.#ids.has(id);
  }

  /** Distinct ids known to be stored in OCI: the denominator of the mass-delete brake. */
  get ociCount(): number {
    return this.#ociCount;
  }

  get size(): number {
    return this.#ids.size;
  }
}

export type MarkResult =
  /** `view` and `resourceVersions`: what each object names, and where a watch picks up from. */
  | { ok: true; inUse: InUseSet; view: InUseView; resourceVersions: Record<FleetKind, string> }
  | { ok: false; outcome: 'skipped' | 'failed' | 'partial'; cause: string };

export interface MarkOptions {
  pageSize: number;
  logger: Logger;
  budget: AbortSignal;
}

/**
 * Lists Bundles and BundleDeployments in all namespaces. Both CRDs absent: `skipped` (no Fleet
 * here). Any other failure, one CRD missing, or the budget spent: not ok, and nothing may be
 * swept on the strength of an incomplete set. A list the server kept refusing (overload) is
 * `partial`, anything else `failed`.
 */
export async function markInUse(access: KubeAccess, options: MarkOptions): Promise<MarkResult> {
  const inUse = new InUseSet();
  const view = new InUseView();
  const resourceVersions: Record<FleetKind, string> = { Bundle: '', BundleDeployment: '' };
  let bundlesServed = true;
  const spent = (): MarkResult => ({ ok: false, outcome: 'partial', cause: `${budgetStop(options.budget).cause} while listing what is in use` });
  // One list after the other: when the Bundles cannot be read the BundleDeployments are not
  // asked for (a server refusing for overload gets no second list to retry).
  try {
    resourceVersions.Bundle = await eachObject(access, 'Bundle', options, (bundle) => {
      view.apply('Bundle', bundle);
      for (const id of idsNamedBy('Bundle', bundle.spec)) inUse.add(id, true);
    });
  } catch (err) {
    if (err === BUDGET_SPENT || err instanceof RequestAbandoned) return spent();
    if (!isNotFound(err)) return listFailed(err);
    bundlesServed = false;
  }
  try {
    resourceVersions.BundleDeployment = await eachObject(access, 'BundleDeployment', options, (bd) => {
      view.apply('BundleDeployment', bd);
      for (const id of idsNamedBy('BundleDeployment', bd.spec)) inUse.add(id, bd.spec?.ociContents === true);
    });
  } catch (err) {
    if (err === BUDGET_SPENT || err instanceof RequestAbandoned) return spent();
    if (isNotFound(err) && !bundlesServed) {
      return { ok: false, outcome: 'skipped', cause: 'Fleet CRDs not installed (bundles and bundledeployments.fleet.cattle.io are not served)' };
    }
    return listFailed(err);
  }
  if (!bundlesServed) return { ok: false, outcome: 'failed', cause: 'bundles.fleet.cattle.io is not served while bundledeployments is: cannot tell which artifacts are in use' };
  // An empty last list yields no page to check after: a budget spent meanwhile is caught here.
  if (options.budget.aborted) return spent();
  return { ok: true, inUse, view, resourceVersions };
}

const BUDGET_SPENT = Symbol('budget spent');

/** Visits every object of `kind`; returns the resourceVersion of its list's first page (the snapshot the pages share). */
async function eachObject(access: KubeAccess, kind: FleetKind, options: MarkOptions, visit: (o: FleetObject) => void): Promise<string> {
  const plural = PLURAL[kind];
  const op: KubeOp = { verb: 'list', resource: `${plural}.${FLEET_GROUP}` };
  let resourceVersion: string | undefined;
  const pages = listInPages<FleetObject>(
    access,
    op,
    async (page, o) => {
      const got = (await access.custom.listClusterCustomObject({ group: FLEET_GROUP, version: FLEET_VERSION, plural, limit: page.limit, _continue: page._continue }, o)) as ListPage<FleetObject>;
      // The oldest version seen: a watch from there misses nothing (replaying more is harmless).
      resourceVersion ??= got.metadata?.resourceVersion;
      return got;
    },
    { pageSize: options.pageSize, logger: options.logger, signal: options.budget },
  );
  for await (const page of pages) {
    for (const item of page) visit(item);
    if (options.budget.aborted) throw BUDGET_SPENT;
  }
  return resourceVersion ?? '';
}

/** A list that failed: `partial` when the server kept refusing for overload, else `failed`. */
function listFailed(err: unknown): MarkResult {
  const overloaded = overloadStop(err);
  if (overloaded) return { ok: false, ...overloaded };
  return { ok: false, outcome: 'failed', cause: `cannot tell which artifacts are in use: ${messageOf(err)}` };
}
