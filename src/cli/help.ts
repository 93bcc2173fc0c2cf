import { FLAGS, envName } from './options.ts';

/** The --help text: a flags table grouped by concern, rendered from the one table of flags. */
export function helpText(): string {
  const rows = FLAGS.map((spec) => ({
    group: spec.group,
    left: `--${spec.flag}${spec.value ? ` ${spec.value}` : ''}`,
    right: `${spec.help}${spec.default !== undefined ? ` (default ${spec.default})` : ''}`,
  }));
  const width = Math.max(...rows.map((r) => r.left.length)) + 2;
  const lines = [
    'Usage: fleet-cleanup [flags]',
    '',
    'Deletes finished Rancher Fleet GitRepo Jobs and stale OCI bundle storage, then writes a',
    'completion marker ConfigMap so that it runs once per run key.',
  ];
  let group = '';
  for (const row of rows) {
    if (row.group !== group) {
      group = row.group;
      lines.push('', `${group}:`);
    }
    lines.push(`  ${row.left.padEnd(width)}${row.right}`);
  }
  lines.push(
    '',
    `  ${'--help'.padEnd(width)}print this help`,
    `  ${'--version'.padEnd(width)}print the version`,
    '',
    `Every flag can also be set in the environment as ${envName('flag-name')} (e.g. ${envName('dry-run')}=true,`,
    `${envName('job-namespaces')}=fleet-local,fleet-default); a flag beats its variable. Booleans take`,
    'Go-style values (1, t, true, 0, f, false); --no-FLAG turns off one set in the environment.',
    'Durations are Go-style: 90s, 10m, 1h30m, 0.',
    '',
    'Exit codes: 0 done or skipped (already completed for this run key, or another live run holds',
    'the lock); 1 finished with errors, partial (unless --partial-ok) or aborted; 2 invalid usage or',
    'configuration, reported before any API call.',
  );
  return lines.join('\n') + '\n';
}
