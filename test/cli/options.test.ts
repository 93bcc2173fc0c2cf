import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/cli/duration.ts';
import { helpText } from '../../src/cli/help.ts';
import { FLAGS, envName, parseOptions, UsageError, type Options } from '../../src/cli/options.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

function options(argv: string[], env: Record<string, string> = {}): Options {
  const parsed = parseOptions(argv, env);
  if (parsed.command !== 'run') throw new Error(`expected a run, got ${parsed.command}`);
  return parsed.options;
}

function usageError(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseOptions(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`no usage error for ${argv.join(' ')} ${JSON.stringify(env)}`);
}

describe('parseOptions defaults', () => {
  it('gives the documented defaults', () => {
    expect(options([])).toEqual({
      kubeconfig: undefined, context: undefined, namespace: undefined, markerName: 'fleet-cleanup', runKey: undefined,
      force: false, dryRun: false, holder: undefined, lockTimeoutMs: 120_000, timeBudgetMs: 0, partialOk: false,
      jobNamespaces: 'all', minAgeMs: 3_600_000, keepLast: 0, deleteFailed: false, skipGitjobs: false, skipOci: false,
      ociMinAgeMs: 3_600_000, allowMassDelete: false, massDeleteRatio: 0.5, massDeleteMin: 5, pageSize: 500,
      concurrency: 32, qps: undefined, burst: undefined, retries: 5, requestTimeoutMs: 30_000, registryTimeoutMs: 30_000, registryConcurrency: 16, logLevel: 'info',
      logFormat: undefined, terminationLog: undefined,
    } satisfies Options);
  });

  it('parses every kind of flag', () => {
    const o = options([
      '--kubeconfig', '/tmp/kc', '--namespace', 'ops', '--marker-name', 'cleanup.v2', '--run-key', '0.13.1', '--force',
      '--dry-run', '--holder', 'me', '--lock-timeout', '90s', '--time-budget', '1h30m', '--partial-ok',
      '--job-namespaces', 'fleet-local, fleet-default,fleet-local', '--min-age', '10m', '--keep-last', '3', '--delete-failed',
      '--skip-gitjobs', '--skip-oci', '--oci-min-age', '2h', '--allow-mass-delete', '--mass-delete-ratio', '1',
      '--mass-delete-min=0', '--page-size', '50', '--concurrency', '2', '--qps', '2.5', '--burst', '3', '--retries', '0',
      '--request-timeout', '1.5s', '--registry-timeout', '500ms', '--registry-concurrency', '3', '--log-level', 'debug',
      '--context', 'staging', '--log-format', 'text', '--termination-log', '/dev/termination-log',
    ]);
    expect(o).toEqual({
      kubeconfig: '/tmp/kc', context: 'staging', namespace: 'ops', markerName: 'cleanup.v2', runKey: '0.13.1', force: true, dryRun: true,
      holder: 'me', lockTimeoutMs: 90_000, timeBudgetMs: 5_400_000, partialOk: true, jobNamespaces: ['fleet-local', 'fleet-default'],
      minAgeMs: 600_000, keepLast: 3, deleteFailed: true, skipGitjobs: true, skipOci: true, ociMinAgeMs: 7_200_000,
      allowMassDelete: true, massDeleteRatio: 1, massDeleteMin: 0, pageSize: 50, concurrency: 2, qps: 2.5, burst: 3,
      retries: 0, requestTimeoutMs: 1500, registryTimeoutMs: 500, registryConcurrency: 3, logLevel: 'debug',
      logFormat: 'text', terminationLog: '/dev/termination-log',
    } satisfies Options);
  });

  it('recognises --help and --version before anything else', () => {
    expect(parseOptions(['--min-age', 'bogus', '--help'], {})).toEqual({ command: 'help' });
    expect(parseOptions(['--version'], {})).toEqual({ command: 'version' });
  });
});

describe('environment', () => {
  it('reads every flag from FLEET_CLEANUP_<FLAG>', () => {
    const o = options([], {
      FLEET_CLEANUP_RUN_KEY: '105.0.0', FLEET_CLEANUP_DRY_RUN: 'true', FLEET_CLEANUP_JOB_NAMESPACES: 'a,b',
      FLEET_CLEANUP_MIN_AGE: '30m', FLEET_CLEANUP_KEEP_LAST: '2', FLEET_CLEANUP_PARTIAL_OK: '1', FLEET_CLEANUP_QPS: '5',
    });
    expect(o).toMatchObject({ runKey: '105.0.0', dryRun: true, jobNamespaces: ['a', 'b'], minAgeMs: 1_800_000, keepLast: 2, partialOk: true, qps: 5 });
  });

  it('parses booleans like Go ParseBool', () => {
    for (const yes of ['1', 't', 'T', 'TRUE', 'true', 'True']) expect(options([], { FLEET_CLEANUP_FORCE: yes }).force).toBe(true);
    for (const no of ['0', 'f', 'F', 'FALSE', 'false', 'False']) expect(options([], { FLEET_CLEANUP_FORCE: no }).force).toBe(false);
    expect(usageError([], { FLEET_CLEANUP_FORCE: 'yes' })).toBe('FLEET_CLEANUP_FORCE "yes": not a boolean (1, t, true, TRUE, 0, f, false, FALSE)');
  });

  it('lets a flag beat its variable, both ways for booleans', () => {
    expect(options(['--run-key', 'flag'], { FLEET_CLEANUP_RUN_KEY: 'env' }).runKey).toBe('flag');
    expect(options(['--min-age', '5m'], { FLEET_CLEANUP_MIN_AGE: 'not-a-duration' }).minAgeMs).toBe(300_000);
    expect(options(['--no-dry-run'], { FLEET_CLEANUP_DRY_RUN: 'true' }).dryRun).toBe(false);
    expect(options(['--dry-run=false'], { FLEET_CLEANUP_DRY_RUN: 'true' }).dryRun).toBe(false);
    expect(options(['--dry-run=true'], { FLEET_CLEANUP_DRY_RUN: 'false' }).dryRun).toBe(true);
  });

  it('treats an empty variable as unset (Helm renders absent values that way)', () => {
    expect(options([], { FLEET_CLEANUP_JOB_NAMESPACES: '', FLEET_CLEANUP_RUN_KEY: ' ' })).toMatchObject({ jobNamespaces: 'all', runKey: undefined });
  });

  it('refuses an unknown FLEET_CLEANUP_ variable: a misspelt DRY_RUN must not turn into a real run', () => {
    expect(usageError([], { FLEET_CLEANUP_DRYRUN: 'true' })).toBe('unknown environment variable FLEET_CLEANUP_DRYRUN (see --help for the flags it could mean)');
  });

  it('names every flag variable as documented', () => {
    expect(FLAGS.map((f) => envName(f.flag))).toContain('FLEET_CLEANUP_JOB_NAMESPACES');
    expect(envName('run-key')).toBe('FLEET_CLEANUP_RUN_KEY');
  });
});

describe('validation errors name the flag and the cause', () => {
  const cases: Array<[string[], string]> = [
    [['--bogus'], 'unknown flag --bogus (see --help)'],
    [['stray'], 'unexpected argument stray: fleet-cleanup takes flags only (see --help)'],
    [['--min-age'], '--min-age: missing value'],
    [['--min-age', '-5m'], '--min-age: missing value (to pass a value starting with "-", write --min-age=VALUE)'],
    [['--min-age=-5m'], '--min-age "-5m": must not be negative'],
    [['--min-age', '5'], '--min-age "5": has no unit (examples: 90s, 10m, 1h30m, 0)'],
    [['--lock-timeout', '2 minutes'], '--lock-timeout "2 minutes": is not a duration (examples: 90s, 10m, 1h30m, 0)'],
    [['--lock-timeout', '0'], '--lock-timeout "0": must be greater than 0'],
    [['--request-timeout', '0s'], '--request-timeout "0s": must be greater than 0'],
    [['--namespace', 'Fleet_Local'], '--namespace "Fleet_Local": not a valid namespace name (lowercase letters, digits and "-", at most 63 characters)'],
    [['--namespace', 'a'.repeat(64)], `--namespace "${'a'.repeat(64)}": not a valid namespace name (lowercase letters, digits and "-", at most 63 characters)`],
    [['--job-namespaces', 'fleet-local,-bad'], '--job-namespaces "fleet-local,-bad": "-bad" is not a valid namespace name (lowercase letters, digits and "-", at most 63 characters)'],
    [['--marker-name', 'Not/A/Name'], '--marker-name "Not/A/Name": not a valid ConfigMap name (lowercase letters, digits, "-" and ".")'],
    [['--keep-last', '2.5'], '--keep-last "2.5": not an integer'],
    [['--keep-last=-1'], '--keep-last "-1": must not be negative'],
    [['--page-size', '0'], '--page-size "0": must be at least 1'],
    [['--concurrency', 'many'], '--concurrency "many": not an integer'],
    [['--qps', '0'], '--qps "0": must be greater than 0'],
    [['--qps', 'fast'], '--qps "fast": not a number'],
    [['--mass-delete-ratio', '0'], '--mass-delete-ratio "0": must be a ratio greater than 0 and at most 1'],
    [['--mass-delete-ratio', '1.5'], '--mass-delete-ratio "1.5": must be a ratio greater than 0 and at most 1'],
    [['--log-level', 'loud'], '--log-level "loud": not a log level (trace, debug, info, warn, error, fatal, silent)'],
    [['--log-format', 'pretty'], '--log-format "pretty": not a log format (text, json)'],
    [['--force=maybe'], '--force "maybe": not a boolean (true or false)'],
    [['--retries', '99999999999999999999'], '--retries "99999999999999999999": too large'],
  ];
  it.each(cases)('%j', (argv, message) => {
    expect(usageError(argv)).toBe(message);
  });

  it('names the variable when the bad value came from the environment', () => {
    expect(usageError([], { FLEET_CLEANUP_TIME_BUDGET: '-1h' })).toBe('FLEET_CLEANUP_TIME_BUDGET "-1h": must not be negative');
    expect(usageError([], { FLEET_CLEANUP_JOB_NAMESPACES: 'ok,NOT_OK' })).toMatch(/^FLEET_CLEANUP_JOB_NAMESPACES "ok,NOT_OK": "NOT_OK" is not a valid namespace name/);
  });
});

describe('durations', () => {
  it('parses Go durations', () => {
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('.5s')).toBe(500);
    expect(parseDuration('1m0.5s')).toBe(60_500);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('2000us')).toBe(2);
    expect(parseDuration('+3m')).toBe(180_000);
    expect(parseDuration('1d')).toEqual({ error: 'is not a duration (examples: 90s, 10m, 1h30m, 0)' });
    expect(parseDuration('')).toEqual({ error: 'is not a duration (examples: 90s, 10m, 1h30m, 0)' });
    expect(parseDuration('-1s')).toEqual({ error: 'must not be negative' });
  });

  it('formats them back the Go way', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(5_400_000)).toBe('1h30m0s');
    expect(formatDuration(1_500)).toBe('1.5s');
    expect(formatDuration(250)).toBe('250ms');
  });
});

describe('--help', () => {
  it('lists every flag with its value placeholder and default', () => {
    const help = helpText();
    for (const spec of FLAGS) expect(help).toContain(`--${spec.flag}`);
    expect(help).toMatch(/--lock-timeout DUR +a running marker .*\(default 2m\)/);
    expect(help).toMatch(/--mass-delete-ratio F +.*\(default 0\.5\)/);
    expect(help).toContain('FLEET_CLEANUP_DRY_RUN=true');
  });
});

describe('the real process exits 2 with one line on stderr, before any API call', () => {
  // The kubeconfig points nowhere reachable: were an API call made, the exit code would not be 2.
  const run = (args: string[]) =>
    spawnSync(process.execPath, [MAIN, '--kubeconfig', '/nonexistent/kubeconfig', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });

  it.each([
    [['--bogus'], 'fleet-cleanup: error: unknown flag --bogus (see --help)'],
    [['--min-age=-5m'], 'fleet-cleanup: error: --min-age "-5m": must not be negative'],
    [['--namespace', 'Fleet_Local'], 'fleet-cleanup: error: --namespace "Fleet_Local": not a valid namespace name (lowercase letters, digits and "-", at most 63 characters)'],
  ])('%j', (args, line) => {
    const result = run(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(`${line}\n`);
    const log = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(log).toEqual([expect.objectContaining({ level: 'error', msg: line.replace('fleet-cleanup: error: ', '') })]);
  });

  it('prints --version from package.json', () => {
    const result = spawnSync(process.execPath, [MAIN, '--version'], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^fleet-cleanup \d+\.\d+\.\d+/);
  });
});
