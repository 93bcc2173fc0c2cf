// A floor under any OCI sweep that follows this project's rules, as a peer to compare against
// (not the job): of each stale artifact only its registry and Secret requests. A GET of its
// manifest (the digest the job verifies), a HEAD of `latest` (re-resolved before the delete),
// the DELETE of that digest, then each of its Secrets deleted on its uid and resourceVersion.
// Left out, though the rules need them too: the in-use view (lists, watch, a fresh read before
// each delete), audit lines, retries. So no rule-following sweep can be faster than this one at
// the job's defaults (16 artifacts at once, --concurrency 32, the same API client). One list of
// the storage Secrets gives their uids and versions, as the job's mark does.
// `node bench/peers/oci-floor.ts <kubeconfig> <registry origin> <artifacts.json>`
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { KubeConfig, type V1Secret } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { Pool } from 'undici';
import { KubeAccess } from '../../src/kube/access.ts';
import { createLogger } from '../../src/log.ts';
import { OCI_STORAGE_SECRET_TYPE } from '../../src/oci/storage-secret.ts';

interface FloorArtifact {
  repository: string;
  secrets: { namespace: string; name: string }[];
}

const [kubeconfigPath, origin, artifactsPath] = process.argv.slice(2) as [string, string, string];
const artifacts = JSON.parse(readFileSync(artifactsPath, 'utf8')) as FloorArtifact[];
const started = performance.now();
const kc = new KubeConfig();
kc.loadFromString(readFileSync(kubeconfigPath, 'utf8'));
const access = new KubeAccess(kc, {
  concurrency: 32, retries: 0, requestTimeoutMs: 30_000,
  logger: createLogger({ destination: new Writable({ write: (_c, _e, done) => done() }) }),
});
const registry = new Pool(origin, { connections: 16 });
const accept = 'application/vnd.oci.image.manifest.v1+json';

const versions = new Map<string, { uid: string; resourceVersion: string }>();
const list = await access.call({ verb: 'list', resource: 'secrets' }, (o) =>
  access.core.listSecretForAllNamespaces({ fieldSelector: `type=${OCI_STORAGE_SECRET_TYPE}` }, o));
for (const s of list.items as V1Secret[]) {
  const { namespace = '', name = '', uid = '', resourceVersion = '' } = s.metadata ?? {};
  versions.set(`${namespace}/${name}`, { uid, resourceVersion });
}

const limit = pLimit(16);
let deleted = 0;
await Promise.all(artifacts.map((a) => limit(async () => {
  const manifest = `/v2/${a.repository}/manifests/latest`;
  const got = await registry.request({ method: 'GET', path: manifest, headers: { accept } });
  if (got.statusCode !== 200) throw new Error(`${a.repository}: GET answered ${got.statusCode}`);
  const digest = `sha256:${createHash('sha256').update(Buffer.from(await got.body.arrayBuffer())).digest('hex')}`;
  const head = await registry.request({ method: 'HEAD', path: manifest, headers: { accept }, reset: false });
  await head.body.dump();
  if (head.headers['docker-content-digest'] !== digest) throw new Error(`${a.repository}: latest moved`);
  const del = await registry.request({ method: 'DELETE', path: `/v2/${a.repository}/manifests/${digest}` });
  await del.body.dump();
  if (del.statusCode !== 202) throw new Error(`${a.repository}: DELETE answered ${del.statusCode}`);
  for (const { namespace, name } of a.secrets) {
    const judged = versions.get(`${namespace}/${name}`);
    if (!judged) throw new Error(`secret ${namespace}/${name} not listed`);
    await access.call({ verb: 'delete', resource: 'secrets', namespace, name }, (o) =>
      access.core.deleteNamespacedSecret({ name, namespace, body: { preconditions: judged } }, o));
  }
  deleted++;
})));
console.log(JSON.stringify({ deleted, seconds: (performance.now() - started) / 1000, kubeRequests: access.requestCount }));
await registry.close();
process.exit(0);
