// Minimal watch: newline-delimited JSON events (ADDED/MODIFIED/DELETED) for a list path with
// ?watch=1, honouring resourceVersion, namespace, label/field selectors and timeoutSeconds.

import type { ServerResponse } from 'node:http';
import { gone } from './errors.ts';
import { present, type Ctx } from './handlers.ts';
import { selectorPredicate } from './selectors.ts';
import type { StoreEvent } from './store.ts';
import type { KubeObject, ResourceType } from './types.ts';

export function serveWatch(ctx: Ctx, type: ResourceType, res: ServerResponse, onClose: (cb: () => void) => void): void {
  const { pred: selected } = selectorPredicate(type, ctx.query);
  const ns = type.namespaced ? ctx.info.namespace : undefined;
  const name = ctx.info.name;
  const inScope = (o: KubeObject) => (ns === undefined || o.metadata.namespace === ns) && (name === undefined || o.metadata.name === name);
  const pred = (o: KubeObject | undefined) => o !== undefined && inScope(o) && selected(o);

  const rvParam = ctx.query.get('resourceVersion') ?? '';
  const from = rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private' });
  res.flushHeaders();
  const send = (type_: string, object: unknown) => res.write(`${JSON.stringify({ type: type_, object })}\n`);

  if (from !== undefined && (!Number.isFinite(from) || from < ctx.store.oldestWatchable)) {
    const err = gone('Expired', `too old resource version: ${rvParam} (${ctx.store.oldestWatchable})`);
    send('ERROR', err.toStatus());
    res.end();
    return;
  }

  const deliver = (e: StoreEvent) => {
    const now = pred(e.object);
    const before = e.type === 'MODIFIED' ? pred(e.prev) : e.type === 'DELETED';
    if (e.type === 'ADDED' && now) send('ADDED', present(type, e.object));
    else if (e.type === 'DELETED' && pred(e.object)) send('DELETED', present(type, e.object));
    else if (e.type === 'MODIFIED') {
      if (now && before) send('MODIFIED', present(type, e.object));
      else if (now) send('ADDED', present(type, e.object));
      else if (before) send('DELETED', present(type, e.object));
    }
  };

  if (from === undefined) {
    for (const o of ctx.store.list(type, ns)) if (pred(o)) send('ADDED', present(type, o));
  } else {
    for (const e of ctx.store.eventsSince(from)) if (e.storageKey === type.storageKey) deliver(e);
  }
  const unsubscribe = ctx.store.subscribe(type.storageKey, deliver);
  const timeout = Number(ctx.query.get('timeoutSeconds') ?? '0');
  const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
  const stop = () => {
    unsubscribe();
    if (timer) clearTimeout(timer);
  };
  res.on('close', stop);
  onClose(() => {
    stop();
    res.end();
  });
}
