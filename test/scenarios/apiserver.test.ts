// The integration scenarios (scenarios.ts) against the Kubernetes API test server, with RBAC
// enforced for ServiceAccount tokens and a real docker-registry for the OCI ones. The same
// scenarios run against k3s in test/k3s/k3s.test.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startApiServer, type TestApiServer } from '../apiserver/index.ts';
import { installFleetCrds } from '../fixtures/fleet-objects.ts';
import { startRegistry, type TestRegistry } from '../registry/registry.ts';
import { describeWithTools } from '../registry/tools.ts';
import { apiServerCluster, type ClusterHandle } from './cluster.ts';
import { cleansFinishedGitRepoJobs, runsAsTheChartServiceAccount, runsOncePerRunKey, sweepsStaleOciStorage } from './scenarios.ts';

let server: TestApiServer;
let dir: string;
let cluster: ClusterHandle;

beforeAll(async () => {
  server = await startApiServer({ rbac: true });
  dir = await mkdtemp(join(tmpdir(), 'fleet-cleanup-scenarios-'));
  cluster = await apiServerCluster(server, dir);
  await installFleetCrds(cluster.kubeConfig);
});

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe(`scenarios against the API test server`, () => {
  it('deletes finished GitRepo Jobs and nothing else', () => cleansFinishedGitRepoJobs(cluster));
  it('runs once per run key; --force runs again', () => runsOncePerRunKey(cluster));
});

describeWithTools('scenarios against the API test server with a docker-registry', ['docker-registry', 'skopeo'], () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.dispose();
  });

  it('sweeps a stale OCI artifact and its secrets, keeps the one in use', () => sweepsStaleOciStorage(cluster, registry));
  it('runs as the chart’s ServiceAccount under exactly the chart’s rules', () => runsAsTheChartServiceAccount(cluster, registry));
});
