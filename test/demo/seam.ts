// The seam for the OCI part of the demo. A module `test/demo/oci-demo.ts` that exports
// `seedOciDemo` is called after the GitRepo Jobs are seeded; without it the demo passes
// `--skip-oci`. Kept apart so the OCI work can add its demo without touching run-demo.ts.
import type { KubeConfig } from '@kubernetes/client-node';
import type { TestApiServer } from '../apiserver/index.ts';
import type { FleetSeeder } from '../fixtures/fleet-objects.ts';

export interface DemoContext {
  server: TestApiServer;
  kubeConfig: KubeConfig;
  kubeconfigPath: string;
  seeder: FleetSeeder;
  /** A scratch directory, removed when the demo ends. */
  dir: string;
  /** Prints one line of the demo's report. */
  print(line?: string): void;
}

export interface OciDemoStep {
  /** Flags for the job's runs, instead of `--skip-oci` (e.g. `[]`, or `['--oci-min-age', '0']`). */
  args: string[];
  /** Lines printed after the runs: what was deleted and kept in the registry. */
  report(): Promise<string[]>;
  /** Stops what the step started (a registry, ...). */
  stop(): Promise<void>;
}

/** What `test/demo/oci-demo.ts` exports; undefined means "nothing to show", and OCI is skipped. */
export type SeedOciDemo = (context: DemoContext) => Promise<OciDemoStep | undefined>;
