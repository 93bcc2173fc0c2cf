import { defineConfig } from 'vitest/config';

// `npm run mutation` (StrykerJS): only the fast, pure tests of the rule files and the delete
// path, run against every mutant. Not part of `npm test`.
export default defineConfig({
  test: {
    include: ['test/oci/rules.test.ts', 'test/kube/conditional-delete.test.ts', 'test/oci/in-use.test.ts', 'test/oci/fresh-read.test.ts'],
    testTimeout: 10_000,
  },
});
