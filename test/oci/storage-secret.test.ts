import { describe, expect, it } from 'vitest';
import type { V1Secret } from '@kubernetes/client-node';
import {
  isContentsId,
  OCI_STORAGE_SECRET_TYPE,
  parseStorageSecret,
  registryKey,
  StorageSecretError,
} from '../../src/oci/storage-secret.ts';
import { parseGoBool } from '../../src/go-compat.ts';

const PASSWORD = 'hunter2-very-secret';
const AGENT_PASSWORD = 'agent-only-secret';

function secret(data: Record<string, string>, name = 'ocistorage', namespace = 'fleet-default'): V1Secret {
  return {
    metadata: { name, namespace },
    type: OCI_STORAGE_SECRET_TYPE,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}

/** The error thrown by parseStorageSecret, for its message. */
function failure(s: V1Secret): StorageSecretError {
  try {
    parseStorageSecret(s);
  } catch (e) {
    if (e instanceof StorageSecretError) return e;
    throw e;
  }
  throw new Error('parseStorageSecret accepted the secret');
}

describe('parseGoBool (strconv.ParseBool)', () => {
  it.each([
    ['1', true], ['t', true], ['T', true], ['TRUE', true], ['true', true], ['True', true],
    ['0', false], ['f', false], ['F', false], ['FALSE', false], ['false', false], ['False', false],
    ['yes', undefined], ['tRUE', undefined], ['on', undefined], ['2', undefined], ['', undefined], [' true', undefined],
  ])('%j → %s', (input, expected) => {
    expect(parseGoBool(input)).toBe(expected);
  });
});

describe('parseStorageSecret', () => {
  it('splits the reference and keeps the write credentials, never the agent pair', () => {
    const conn = parseStorageSecret(secret({
      reference: 'registry.example.com:5000/fleet/bundles/',
      username: 'writer', password: PASSWORD, agentUsername: 'reader', agentPassword: AGENT_PASSWORD,
    }));
    expect(conn).toEqual({
      reference: 'registry.example.com:5000/fleet/bundles',
      host: 'registry.example.com:5000',
      pathPrefix: 'fleet/bundles',
      username: 'writer',
      password: PASSWORD,
      basicHTTP: false,
      insecureSkipTLS: false,
    });
  });

  it('accepts a reference without a path', () => {
    const conn = parseStorageSecret(secret({ reference: '127.0.0.1:5000' }));
    expect(conn).toMatchObject({ host: '127.0.0.1:5000', pathPrefix: '' });
    expect(conn.username).toBeUndefined();
  });

  it.each([
    [{ basicHTTP: 'T' }, { basicHTTP: true, insecureSkipTLS: false }],
    [{ basicHTTP: '0', insecureSkipTLS: 'True' }, { basicHTTP: false, insecureSkipTLS: true }],
    [{ insecure: '1' }, { insecureSkipTLS: true }],
    // The current key wins over the legacy alias.
    [{ insecure: 'true', insecureSkipTLS: 'false' }, { insecureSkipTLS: false }],
    [{ basicHTTP: '' }, { basicHTTP: false }],
  ])('booleans %j', (flags, expected) => {
    expect(parseStorageSecret(secret({ reference: 'r.example/p', ...flags }))).toMatchObject(expected);
  });

  it('keeps a PEM cacerts bundle', () => {
    const pem = SELF_SIGNED_PEM;
    expect(parseStorageSecret(secret({ reference: 'r.example', cacerts: pem })).cacerts).toBe(pem);
  });

  // Every case carries credentials, so the check that no message leaks them means something.
  const creds = { username: 'writer', password: PASSWORD, agentUsername: 'reader', agentPassword: AGENT_PASSWORD };
  it.each([
    [{}, 'reference', 'missing'],
    [{ reference: '   ' }, 'reference', 'missing'],
    [{ reference: 'https://r.example/fleet' }, 'reference', 'scheme'],
    [{ reference: 'oci://r.example/fleet' }, 'reference', 'scheme'],
    [{ reference: 'r.example/a b' }, 'reference', 'whitespace'],
    [{ reference: 'r.example', basicHTTP: 'yes' }, 'basicHTTP', 'not a boolean'],
    [{ reference: 'r.example', insecureSkipTLS: 'enabled' }, 'insecureSkipTLS', 'not a boolean'],
    [{ reference: 'r.example', insecure: 'on' }, 'insecure', 'not a boolean'],
    [{ reference: 'r.example', cacerts: 'not a certificate' }, 'cacerts', 'not a PEM'],
    [{ reference: 'r.example', cacerts: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' }, 'cacerts', 'does not parse'],
    [{ reference: 'r.example', password: undefined }, 'password', 'missing'],
  ])('rejects %j naming the secret and key %s', (data, key, problem) => {
    const all = Object.fromEntries(Object.entries({ ...creds, ...data }).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const err = failure(secret(all, 'my-oci', 'team-a'));
    expect(err.message).toContain('team-a/my-oci');
    expect(err.message).toContain(`"${key}"`);
    expect(err.message).toContain(problem);
    expect(err.key).toBe(key);
    expect(err.message).not.toContain(PASSWORD);
    expect(err.message).not.toContain(AGENT_PASSWORD);
    expect(err.message.split('\n')).toHaveLength(1);
  });

  it('never echoes a bad value back', () => {
    const err = failure(secret({ reference: 'r.example', basicHTTP: 'p4ssw0rd-by-mistake' }));
    expect(err.message).not.toContain('p4ssw0rd');
  });

  it('names a secret without data', () => {
    expect(failure({ metadata: { name: 'empty', namespace: 'ns' } }).message).toMatch(/ns\/empty: key "reference" is missing/);
  });
});

describe('isContentsId', () => {
  const id = `s-${'0123456789abcdef'.repeat(4).slice(0, 61)}`;
  it.each([
    [id, true],
    [id.slice(0, -1), false],
    [`${id}0`, false],
    [id.toUpperCase(), false],
    [`x-${id.slice(2)}`, false],
    [`s-${'g'.repeat(61)}`, false],
    ['ocistorage', false],
  ])('%s → %s', (name, expected) => {
    expect(isContentsId(name)).toBe(expected);
  });
});

describe('registryKey', () => {
  const base = parseStorageSecret(secret({ reference: 'r.example/fleet', username: 'u', password: PASSWORD }));
  it('is the same for the same registry, prefix and credentials, whatever the secret', () => {
    const other = parseStorageSecret(secret({ reference: 'r.example/fleet/', username: 'u', password: PASSWORD, agentUsername: 'x' }, 's-abc', 'other-ns'));
    expect(registryKey(other)).toBe(registryKey(base));
  });
  it('differs by prefix, credentials and transport', () => {
    const keys = new Set([
      registryKey(base),
      registryKey({ ...base, pathPrefix: 'other' }),
      registryKey({ ...base, password: 'different' }),
      registryKey({ ...base, basicHTTP: true }),
      registryKey({ ...base, host: 'r2.example' }),
    ]);
    expect(keys.size).toBe(5);
  });
  it('does not carry the credentials', () => {
    expect(registryKey(base)).not.toContain(PASSWORD);
    expect(registryKey(base)).not.toContain(Buffer.from(PASSWORD).toString('base64'));
  });
});

// A throwaway self-signed certificate (CN=test), only parsed here, never trusted.
const SELF_SIGNED_PEM = `-----BEGIN CERTIFICATE-----
MIIBdDCCARmgAwIBAgIUX5TE7Wq0BEXM0rwsvI6ReYrrstQwCgYIKoZIzj0EAwIw
DzENMAsGA1UEAwwEdGVzdDAeFw0yNjExMjEyMzU1MzFaFw0zNjExMTgyMzU1MzFa
MA8xDTALBgNVBAMMBHRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARGV+/n
nfawK2CxM7mGsNRfhF9G23INKvUVEPhbWxok8++roIHUO4emZZgFbr0wUqxxmoI3
II2KVGxKPPIDZtZfo1MwUTAdBgNVHQ4EFgQUxpNRkF0tL0L//tvU+gkruEyXw1gw
HwYDVR0jBBgwFoAUxpNRkF0tL0L//tvU+gkruEyXw1gwDwYDVR0TAQH/BAUwAwEB
/zAKBggqhkjOPQQDAgNJADBGAiEA8ONy8J1pbrQwX5Akfwt8CloVJ1ef3yRPT/5b
gmCcbOICIQDbpbaTg6aj+eybN+mNdUCgkmveOF+DwqspfNjkaVPJsA==
-----END CERTIFICATE-----`;
