import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FLAGS, envName } from '../../src/cli/options.ts';

// README.md is the front door: its flags table must name every flag the CLI accepts, with
// the same default, and no flag the CLI does not have.
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const rows = readme.split('\n').filter((line) => line.startsWith('| `--'));

describe('README flags table', () => {
  it.each(FLAGS.map((f) => [f.flag, f] as const))('documents --%s with its variable and default', (_name, f) => {
    const row = rows.find((r) => r.startsWith(`| \`--${f.flag}\``) || r.startsWith(`| \`--${f.flag} `));
    expect(row, `README.md has no row for --${f.flag}`).toBeDefined();
    expect(row).toContain(`\`${envName(f.flag)}\``);
    if (f.default !== undefined) expect(row).toContain(`\`${f.default}\``);
  });

  it('documents no flag the CLI does not accept', () => {
    const documented = rows.map((r) => /^\| `--([a-z-]+)/.exec(r)?.[1]);
    expect(documented.filter((flag) => !FLAGS.some((f) => f.flag === flag))).toEqual([]);
  });
});
