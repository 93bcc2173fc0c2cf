// kubeconfig text for the test server: https (kubectl sends tokens only over TLS) with the
// server's own self-signed certificate as the CA, and a bearer token.

export function kubeconfigYaml(server: string, caPem: string, token: string, namespace?: string): string {
  const q = (s: string) => JSON.stringify(s);
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: test-apiserver',
    '  cluster:',
    `    server: ${q(server)}`,
    `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
    'contexts:',
    '- name: test-apiserver',
    '  context:',
    '    cluster: test-apiserver',
    '    user: test-user',
    ...(namespace ? [`    namespace: ${q(namespace)}`] : []),
    'current-context: test-apiserver',
    'preferences: {}',
    'users:',
    '- name: test-user',
    '  user:',
    `    token: ${q(token)}`,
    '',
  ].join('\n');
}
