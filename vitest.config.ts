import { defineConfig } from 'vitest/config';

// Two projects: the default suite (unit, API test server, real registry) and the k3s suite,
// which needs a container runtime and skips itself, saying why, where there is none.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'default',
          include: ['test/**/*.test.ts'],
          exclude: ['test/k3s/**', 'node_modules/**'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // 2 cores: the integration suites start servers and child processes.
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'k3s',
          include: ['test/k3s/**/*.test.ts'],
          // After the default project, on its own: it may start a whole cluster.
          sequence: { groupOrder: 1 },
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
