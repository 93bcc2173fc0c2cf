import { createRequire } from 'node:module';

/**
 * The package version, read at run time. This module sits at `src/cli/` and, built, in the
 * bundle's chunk `dist/lib/start.js` (rolldown.config.ts): package.json is two levels up from both.
 */
export function packageVersion(): string {
  const require = createRequire(import.meta.url);
  const pkg = require('../../package.json') as { version?: string };
  return pkg.version ?? 'unknown';
}
