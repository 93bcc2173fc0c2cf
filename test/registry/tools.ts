// Prerequisite binaries for the real-registry suites. Outside CI a missing tool skips the suite
// with the reason printed; under CI=true it fails the run, so a broken CI image cannot pass green.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, it } from 'vitest';

export function findTool(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  const fixed = join('/usr/bin', name);
  try {
    accessSync(fixed, constants.X_OK);
    return fixed;
  } catch {
    return undefined;
  }
}

/**
 * Undefined when `name` is installed; otherwise the reason to skip. Throws under CI=true.
 */
export function requireTool(name: string): string | undefined {
  if (findTool(name)) return undefined;
  const reason = `${name} is not installed (${PACKAGE_OF[name] ?? `Debian: ${name}`}; .ci/run installs it)`;
  if (process.env.CI === 'true') throw new Error(`CI=true and a prerequisite is missing: ${reason}`);
  return reason;
}

const PACKAGE_OF: Record<string, string> = {
  'docker-registry': 'Debian: docker-registry',
  skopeo: 'Debian: skopeo',
  htpasswd: 'Debian: apache2-utils',
  openssl: 'Debian: openssl',
};

/** The first missing tool's reason, or undefined when all are there. */
export function requireTools(...names: string[]): string | undefined {
  for (const n of names) {
    const reason = requireTool(n);
    if (reason) return reason;
  }
  return undefined;
}

/**
 * `describe` that runs only when `tools` are installed; otherwise one skipped test carries the
 * reason, so the reporter prints why the suite did not run.
 */
export function describeWithTools(title: string, tools: string[], body: () => void): void {
  const missing = requireTools(...tools);
  describe.skipIf(missing)(title, body);
  if (missing) {
    describe(title, () => {
      it('prerequisites', (ctx) => {
        console.warn(`skipping "${title}": ${missing}`);
        ctx.skip(missing);
      });
    });
  }
}
