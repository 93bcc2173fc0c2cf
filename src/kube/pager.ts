import type { Logger } from '../log.ts';
import type { KubeAccess } from './access.ts';
import { isGone, type KubeApiError, type KubeOp } from './errors.ts';
import type { ConfigurationOptions } from '@kubernetes/client-node';

interface Metadata {
  name?: string;
  namespace?: string;
}

/** One page as client-node returns it: typed lists say `_continue`, custom objects `continue`. */
export interface ListPage<T> {
  items: T[];
  metadata?: { _continue?: string; continue?: string; resourceVersion?: string };
}

export interface PageRequest {
  limit: number;
  _continue?: string;
}

/**
 * Lists in pages of `pageSize` and yields one page at a time, so memory stays bounded by the
 * page, not by the cluster. When a continue token expires (410 Expired, e.g. after etcd
 * compaction), the list resumes from the fresh token the server hands back; lacking one, it
 * starts over and skips every key up to the last one already yielded. Items come in key
 * order (namespace, name) from the API server, which is what makes both resumptions exact
 * for objects that existed when the list began.
 */
export async function* listInPages<T extends { metadata?: Metadata }>(
  access: KubeAccess,
  op: KubeOp,
  fetchPage: (page: PageRequest, options: ConfigurationOptions) => Promise<ListPage<T>>,
  options: { pageSize: number; logger: Logger; signal?: AbortSignal },
): AsyncGenerator<T[]> {
  let token: string | undefined;
  let lastKey: string | undefined;
  let skipThrough: string | undefined;
  let restarts = 0;
  for (;;) {
    let page: ListPage<T>;
    try {
      // The signal stops a list waiting for its turn or for a retry: a spent budget must not
      // sit out another round of backoff on a struggling server.
      page = await access.call(
        op,
        (requestOptions) => fetchPage({ limit: options.pageSize, ...(token ? { _continue: token } : {}) }, requestOptions),
        options.signal ? { signal: options.signal } : {},
      );
    } catch (err) {
      if (!isGone(err) || token === undefined || restarts >= 10) throw err;
      restarts++;
      const fresh = (err as KubeApiError).continueToken;
      options.logger.warn({ op: op.verb, resource: op.resource, lastKey, resumedWith: fresh ? 'fresh continue token' : 'a new list' }, 'list continue token expired; resuming after the last item seen');
      token = fresh;
      skipThrough = fresh ? undefined : lastKey;
      continue;
    }
    let items = page.items;
    if (skipThrough !== undefined) {
      const bound = skipThrough;
      items = items.filter((item) => keyOf(item) > bound);
    }
    if (items.length > 0) {
      lastKey = keyOf(items[items.length - 1]!);
      yield items;
    }
    token = page.metadata?._continue || page.metadata?.continue || undefined;
    if (!token) return;
  }
}

/** The storage key order of kube-apiserver lists: namespace, then name. */
function keyOf(item: { metadata?: Metadata }): string {
  return `${item.metadata?.namespace ?? ''}/${item.metadata?.name ?? ''}`;
}
