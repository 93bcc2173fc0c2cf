import { RegistryError } from '../../src/oci/registry/index.ts';

/** The RegistryError `p` rejects with; fails the test when it resolves or throws anything else. */
export async function registryFailure(p: Promise<unknown>): Promise<RegistryError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RegistryError) return e;
    throw e;
  }
  throw new Error('expected a RegistryError');
}
