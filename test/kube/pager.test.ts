import { describe, expect, it } from 'vitest';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeAccess } from '../../src/kube/access.ts';
import { KubeApiError } from '../../src/kube/errors.ts';
import { listInPages, type ListPage, type PageRequest } from '../../src/kube/pager.ts';
import { createLogger } from '../../src/log.ts';
import { Writable } from 'node:stream';

type Item = { metadata: { namespace: string; name: string } };
const op = { verb: 'list', resource: 'jobs.batch' };
const silent = createLogger({ destination: new Writable({ write: (_c, _e, done) => done() }) });

function access(): KubeAccess {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'http://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return new KubeAccess(kc, { qps: 1000, burst: 1000, concurrency: 1, retries: 0, requestTimeoutMs: 1000, logger: silent });
}

const items = (...keys: string[]): Item[] =>
  keys.map((k) => {
    const [namespace, name] = k.split('/') as [string, string];
    return { metadata: { namespace, name } };
  });

/** A list of keys served in pages, whose continue tokens expire after `expireAfter` pages. */
function pagedList(all: Item[], opts: { expireAfter?: number; freshToken?: boolean } = {}) {
  let served = 0;
  return async (page: PageRequest): Promise<ListPage<Item>> => {
    const start = page._continue ? Number(page._continue.replace(/^(fresh-)?/, '')) : 0;
    if (page._continue && !page._continue.startsWith('fresh-') && opts.expireAfter !== undefined && served >= opts.expireAfter) {
      served = -Infinity; // expire once
      throw new KubeApiError(op, 410, 'Expired', 'too old', opts.freshToken ? { continueToken: `fresh-${start}` } : {});
    }
    served++;
    const slice = all.slice(start, start + page.limit);
    const next = start + page.limit < all.length ? String(start + page.limit) : undefined;
    return { items: slice, metadata: next ? { _continue: next } : {} };
  };
}

async function collect(gen: AsyncGenerator<Item[]>): Promise<string[][]> {
  const pages: string[][] = [];
  for await (const page of gen) pages.push(page.map((i) => `${i.metadata.namespace}/${i.metadata.name}`));
  return pages;
}

const all = items('a/1', 'a/2', 'b/1', 'b/2', 'c/1', 'c/2', 'c/3');

describe('listInPages', () => {
  it('yields every item once, a page at a time', async () => {
    const pages = await collect(listInPages(access(), op, pagedList(all), { pageSize: 3, logger: silent }));
    expect(pages).toEqual([['a/1', 'a/2', 'b/1'], ['b/2', 'c/1', 'c/2'], ['c/3']]);
  });

  it('resumes with the fresh token of a 410 Expired without losing or repeating an item', async () => {
    const pages = await collect(listInPages(access(), op, pagedList(all, { expireAfter: 1, freshToken: true }), { pageSize: 2, logger: silent }));
    expect(pages.flat()).toEqual(all.map((i) => `${i.metadata.namespace}/${i.metadata.name}`));
  });

  it('starts over after a 410 without a token and skips what it already yielded', async () => {
    const pages = await collect(listInPages(access(), op, pagedList(all, { expireAfter: 2 }), { pageSize: 2, logger: silent }));
    expect(pages.flat()).toEqual(all.map((i) => `${i.metadata.namespace}/${i.metadata.name}`));
  });

  it('passes other errors through', async () => {
    const failing = async (): Promise<ListPage<Item>> => {
      throw new KubeApiError(op, 403, 'Forbidden', 'jobs.batch is forbidden');
    };
    await expect(collect(listInPages(access(), op, failing, { pageSize: 2, logger: silent }))).rejects.toThrow('list jobs.batch in all namespaces: 403 Forbidden: jobs.batch is forbidden');
  });
});
