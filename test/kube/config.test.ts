import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KubeConfigError, loadKubeConfig } from '../../src/kube/config.ts';
import { withoutUserinfo } from '../../src/kube/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleet-cleanup-kubeconfig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function kubeconfig(server: string): string {
  const path = join(dir, `kc-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "${server}"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`);
  return path;
}

describe('loadKubeConfig', () => {
  it('loads a plain kubeconfig from --kubeconfig', () => {
    expect(loadKubeConfig(kubeconfig('https://127.0.0.1:6443'), {}).getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
  });

  it('refuses a server address that carries credentials, without repeating them', () => {
    const path = kubeconfig('https://admin:S3cretPassw0rd@127.0.0.1:6443');
    const err = (() => { try { loadKubeConfig(path, {}); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(KubeConfigError);
    expect((err as Error).message).toBe('kubeconfig: the server address of cluster "c" carries credentials; put them in the user entry instead');
    expect((err as Error).message).not.toContain('S3cret');
  });

  it('names the missing file and where its path came from', () => {
    expect(() => loadKubeConfig(undefined, { KUBECONFIG: '/nonexistent/a:/nonexistent/b' })).toThrow('kubeconfig /nonexistent/a:/nonexistent/b (from KUBECONFIG): no such file');
  });
});

describe('withoutUserinfo', () => {
  it('also drops a password that contains @', () => {
    expect(withoutUserinfo('GET https://admin:p@ss@10.0.0.1:6443/api failed')).toBe('GET https://10.0.0.1:6443/api failed');
  });

  it('leaves an @ in a path or query alone', () => {
    expect(withoutUserinfo('https://10.0.0.1/api?owner=a@b')).toBe('https://10.0.0.1/api?owner=a@b');
  });

  it('drops user:password@ from any URL in a message', () => {
    expect(withoutUserinfo('Request cannot be constructed from a URL that includes credentials: https://admin:pw@10.0.0.1/apis')).toBe(
      'Request cannot be constructed from a URL that includes credentials: https://10.0.0.1/apis',
    );
  });
});
