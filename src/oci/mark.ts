// Mark: which contents ids are in use right now (fleet-reference §2). A Bundle's
// `spec.contentsId`, and a BundleDeployment's `spec.deploymentID` / `spec.stagedDeploymentID` up
// to the ':'. Lists stream page by page; only the set of ids is kept.
import type { KubeAccess } from '../kube/access.ts';
import { isNotFound, RequestAbandoned, type KubeOp } from '../kube/errors.ts';
import { listInPages, type ListPage } from '../kube/pager.ts';
import type { Logger } from '../log.ts';
import { budgetStop } from '../phase.ts';
import { messageOf } from '../error-text.ts';

export const FLEET_GROUP = 'fleet.cattle.io';
export const FLEET_VERSION = 'v1alpha1';

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
  | { ok: true; inUse: InUseSet }
  | { ok: false; outcome: 'skipped' | 'failed' | 'partial'; cause: string };

export interface MarkOptions {
  pageSize: number;
  logger: Logger;
  budget: AbortSignal;
}

/** The prefix of a deployment id `<contentsId>:<options hash>`. */
export function contentsIdOfDeployment(deploymentId: unknown): string | undefined {
  if (typeof deploymentId !== 'string' || deploymentId === '') return undefined;
  const colon = deploymentId.indexOf(':');
  return colon < 0 ? deploymentId : deploymentId.slice(0, colon);
}

/**
 * Lists Bundles and BundleDeployments in all namespaces. Both CRDs absent: `skipped` (no Fleet
 * here). Any other failure, one CRD missing, or the budget spent: not ok, and nothing may be
 * swept on the strength of an incomplete set.
 */
export async function markInUse(access: KubeAccess, options: MarkOptions): Promise<MarkResult> {
  const inUse = new InUseSet();
  let bundlesServed = true;
  const spent = (): MarkResult => ({ ok: false, outcome: 'partial', cause: `${budgetStop(options.budget).cause} while listing what is in use` });
  try {
    await eachObject(access, 'bundles', options, (bundle) => {
      const id = bundle.spec?.contentsId;
      if (typeof id === 'string' && id !== '') inUse.add(id, true);
    });
  } catch (err) {
    if (err === BUDGET_SPENT || err instanceof RequestAbandoned) return spent();
    if (!isNotFound(err)) return failed(err);
    bundlesServed = false;
  }
  try {
    await eachObject(access, 'bundledeployments', options, (bd) => {
      const oci = bd.spec?.ociContents === true;
      for (const field of [bd.spec?.deploymentID, bd.spec?.stagedDeploymentID]) {
        const id = contentsIdOfDeployment(field);
        if (id) inUse.add(id, oci);
      }
    });
  } catch (err) {
    if (err === BUDGET_SPENT || err instanceof RequestAbandoned) return spent();
    if (isNotFound(err) && !bundlesServed) {
      return { ok: false, outcome: 'skipped', cause: 'Fleet CRDs not installed (bundles and bundledeployments.fleet.cattle.io are not served)' };
    }
    return failed(err);
  }
  if (!bundlesServed) return { ok: false, outcome: 'failed', cause: 'bundles.fleet.cattle.io is not served while bundledeployments is: cannot tell which artifacts are in use' };
  // An empty last list yields no page to check after: a budget spent meanwhile is caught here.
  if (options.budget.aborted) return spent();
  return { ok: true, inUse };
}

const BUDGET_SPENT = Symbol('budget spent');

async function eachObject(access: KubeAccess, plural: 'bundles' | 'bundledeployments', options: MarkOptions, visit: (o: FleetObject) => void): Promise<void> {
  const op: KubeOp = { verb: 'list', resource: `${plural}.${FLEET_GROUP}` };
  const pages = listInPages<FleetObject>(
    access,
    op,
    (page, o) => access.custom.listClusterCustomObject({ group: FLEET_GROUP, version: FLEET_VERSION, plural, limit: page.limit, _continue: page._continue }, o) as Promise<ListPage<FleetObject>>,
    { pageSize: options.pageSize, logger: options.logger, signal: options.budget },
  );
  for await (const page of pages) {
    for (const item of page) visit(item);
    if (options.budget.aborted) throw BUDGET_SPENT;
  }
}

function failed(err: unknown): MarkResult {
  const message = messageOf(err);
  return { ok: false, outcome: 'failed', cause: `cannot tell which artifacts are in use: ${message}` };
}
