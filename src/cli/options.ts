import { parseArgs } from 'node:util';
import { formatDuration, MAX_TIMER_MS, parseDuration } from './duration.ts';
import { MAX_RECORDED_LOCK_TIMEOUT_MS } from '../marker/record.ts';
import { parseGoBool } from '../go-compat.ts';

/** Everything the run needs from flags and environment, validated and typed. */
export interface Options {
  kubeconfig: string | undefined;
  /** The kubeconfig context to use; undefined: its current-context. */
  context: string | undefined;
  /** Marker namespace; undefined: the Pod's namespace, else `cattle-fleet-system` (resolved by the run). */
  namespace: string | undefined;
  markerName: string;
  /** undefined: no run key, so the marker guards the lock but never skips the run. */
  runKey: string | undefined;
  force: boolean;
  dryRun: boolean;
  /** undefined: env POD_NAME, else the hostname, plus the pid (resolved by the run). */
  holder: string | undefined;
  lockTimeoutMs: number;
  /** 0: no budget. */
  timeBudgetMs: number;
  partialOk: boolean;
  jobNamespaces: string[] | 'all';
  minAgeMs: number;
  keepLast: number;
  deleteFailed: boolean;
  skipGitjobs: boolean;
  skipOci: boolean;
  ociMinAgeMs: number;
  allowMassDelete: boolean;
  massDeleteRatio: number;
  massDeleteMin: number;
  pageSize: number;
  concurrency: number;
  /** Optional ceiling on the request rate; undefined: none (the adaptive limit governs). */
  qps: number | undefined;
  /** undefined: the same as qps. */
  burst: number | undefined;
  retries: number;
  requestTimeoutMs: number;
  registryTimeoutMs: number;
  registryConcurrency: number;
  logLevel: string;
  /** undefined: text when stdout is a terminal, else json (resolved by the run). */
  logFormat: 'text' | 'json' | undefined;
  /** Where the run's summary line goes as it exits (a Pod's terminationMessagePath). */
  terminationLog: string | undefined;
}

export type ParsedCommand = { command: 'run'; options: Options } | { command: 'help' } | { command: 'version' };

/** Invalid flags or environment: one line naming the flag (or variable), exit 2, before any API call. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Kind = 'string' | 'boolean' | 'duration' | 'count' | 'positive' | 'number' | 'ratio' | 'namespace' | 'namespaces' | 'name' | 'level' | 'format';

export interface FlagSpec {
  flag: string;
  kind: Kind;
  /** Placeholder in the help table. */
  value?: string;
  /** Default as the user would write it; undefined when the default is computed. */
  default?: string;
  help: string;
  group: string;
}

// The one table of flags: parsing, environment names and --help all come from it.
export const FLAGS: readonly FlagSpec[] = [
  { group: 'Connection', flag: 'kubeconfig', kind: 'string', value: 'PATH', help: 'kubeconfig file (default: KUBECONFIG, else in-cluster, else ~/.kube/config)' },
  { group: 'Connection', flag: 'context', kind: 'string', value: 'NAME', help: "kubeconfig context to use (default: the kubeconfig's current-context)" },
  { group: 'Run once', flag: 'namespace', kind: 'namespace', value: 'NS', help: "marker namespace (default: the Pod's namespace, outside a cluster cattle-fleet-system)" },
  { group: 'Run once', flag: 'marker-name', kind: 'name', value: 'NAME', default: 'fleet-cleanup', help: 'name of the marker ConfigMap' },
  { group: 'Run once', flag: 'run-key', kind: 'string', value: 'KEY', help: 'key of this run (the Helm hook passes the chart version); without one the run never skips' },
  { group: 'Run once', flag: 'force', kind: 'boolean', help: 'run even when the marker says completed for this run key' },
  { group: 'Run once', flag: 'dry-run', kind: 'boolean', help: 'read and judge, print the plan (audit lines "would delete"), change nothing, write no marker' },
  { group: 'Run once', flag: 'holder', kind: 'string', value: 'ID', help: 'lock holder identity (default: env POD_NAME, else the hostname, plus a run id and /pid)' },
  { group: 'Run once', flag: 'lock-timeout', kind: 'duration', value: 'DUR', default: '2m', help: 'a running marker not renewed for this long belongs to a dead run and is taken over' },
  { group: 'Run once', flag: 'time-budget', kind: 'duration', value: 'DUR', default: '0', help: 'when spent, stop between deletes and record partial; 0 means no budget' },
  { group: 'Run once', flag: 'partial-ok', kind: 'boolean', help: 'exit 0 when the run ends partial' },
  { group: 'GitRepo Jobs', flag: 'job-namespaces', kind: 'namespaces', value: 'LIST', help: 'comma-separated namespaces to clean GitRepo Jobs in (default: all)' },
  { group: 'GitRepo Jobs', flag: 'min-age', kind: 'duration', value: 'DUR', default: '1h', help: 'delete a finished Job only this long after it finished' },
  { group: 'GitRepo Jobs', flag: 'keep-last', kind: 'count', value: 'N', default: '0', help: 'succeeded Jobs kept per GitRepo, newest first' },
  { group: 'GitRepo Jobs', flag: 'delete-failed', kind: 'boolean', help: 'also delete failed Jobs, keeping the newest failed one per GitRepo' },
  { group: 'GitRepo Jobs', flag: 'skip-gitjobs', kind: 'boolean', help: 'skip the GitRepo Job phase' },
  { group: 'OCI storage', flag: 'skip-oci', kind: 'boolean', help: 'skip the OCI storage phase' },
  { group: 'OCI storage', flag: 'oci-min-age', kind: 'duration', value: 'DUR', default: '1h', help: 'keep artifacts younger than this' },
  { group: 'OCI storage', flag: 'allow-mass-delete', kind: 'boolean', help: 'let the mass-delete brake pass' },
  { group: 'OCI storage', flag: 'mass-delete-ratio', kind: 'ratio', value: 'F', default: '0.5', help: 'brake: refuse to delete more than this share of known Fleet artifacts ...' },
  { group: 'OCI storage', flag: 'mass-delete-min', kind: 'count', value: 'N', default: '5', help: '... when that is also more than this many' },
  { group: 'OCI storage', flag: 'registry-timeout', kind: 'duration', value: 'DUR', default: '30s', help: 'timeout of one registry request' },
  { group: 'OCI storage', flag: 'registry-concurrency', kind: 'positive', value: 'N', default: '16', help: 'artifacts read or deleted at once' },
  { group: 'API client', flag: 'page-size', kind: 'positive', value: 'N', default: '500', help: 'objects per list page' },
  { group: 'API client', flag: 'concurrency', kind: 'positive', value: 'N', default: '32', help: 'most API requests in flight; below it the limit adapts to what the server admits (429s, latency)' },
  { group: 'API client', flag: 'qps', kind: 'number', value: 'N', help: 'optional ceiling on API requests per second (default: none)' },
  { group: 'API client', flag: 'burst', kind: 'positive', value: 'N', help: 'requests that may go at once above --qps (default: the --qps value)' },
  { group: 'API client', flag: 'retries', kind: 'count', value: 'N', default: '5', help: 'retries of a request after 429, 5xx or a connection error' },
  { group: 'API client', flag: 'request-timeout', kind: 'duration', value: 'DUR', default: '30s', help: 'timeout of one API request' },
  { group: 'Output', flag: 'log-level', kind: 'level', value: 'LEVEL', default: 'info', help: 'trace, debug, info, warn, error, fatal or silent' },
  { group: 'Output', flag: 'log-format', kind: 'format', value: 'FORMAT', help: 'text or json (default: text when stdout is a terminal, else json)' },
  { group: 'Output', flag: 'termination-log', kind: 'string', value: 'PATH', help: "write the run's summary line to this file as it exits (the Helm hook: /dev/termination-log)" },
];

const COMMAND_FLAGS = ['help', 'version'];
const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// Durations that must be positive to make sense (a zero timeout is no timeout at all).
const POSITIVE_DURATIONS = new Set(['lock-timeout', 'request-timeout', 'registry-timeout']);
// Durations that arm a timer: past MAX_TIMER_MS Node fires them after ~1 ms (ages are only compared).
const TIMER_DURATIONS = new Set(['lock-timeout', 'time-budget', 'request-timeout', 'registry-timeout']);

export const ENV_PREFIX = 'FLEET_CLEANUP_';
export const envName = (flag: string): string => ENV_PREFIX + flag.toUpperCase().replaceAll('-', '_');

/**
 * Flags, then `FLEET_CLEANUP_*` variables, then defaults. Pure: reads only its arguments.
 * Throws UsageError with one line naming the offending flag or variable.
 */
export function parseOptions(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParsedCommand {
  const values = parseFlags(argv);
  if (values.help === true) return { command: 'help' };
  if (values.version === true) return { command: 'version' };
  rejectUnknownEnv(env);

  const raw = (spec: FlagSpec): { text: string | boolean; source: string } | undefined => {
    const fromFlag = values[spec.flag];
    if (fromFlag !== undefined) return { text: fromFlag, source: `--${spec.flag}` };
    const name = envName(spec.flag);
    const fromEnv = env[name];
    // An empty variable counts as unset: Helm templates render absent values that way.
    if (fromEnv !== undefined && fromEnv.trim() !== '') return { text: fromEnv.trim(), source: name };
    return undefined;
  };

  const parsed = new Map<string, unknown>();
  for (const spec of FLAGS) {
    const given = raw(spec) ?? (spec.default !== undefined ? { text: spec.default, source: `--${spec.flag} default` } : undefined);
    parsed.set(spec.flag, given === undefined ? undefined : convert(spec, given.text, given.source));
  }
  const get = <T>(flag: string): T => parsed.get(flag) as T;

  return {
    command: 'run',
    options: {
      kubeconfig: get('kubeconfig'),
      context: get('context'),
      namespace: get('namespace'),
      markerName: get('marker-name'),
      runKey: get('run-key'),
      force: get('force') ?? false,
      dryRun: get('dry-run') ?? false,
      holder: get('holder'),
      lockTimeoutMs: get('lock-timeout'),
      timeBudgetMs: get('time-budget'),
      partialOk: get('partial-ok') ?? false,
      jobNamespaces: get('job-namespaces') ?? 'all',
      minAgeMs: get('min-age'),
      keepLast: get('keep-last'),
      deleteFailed: get('delete-failed') ?? false,
      skipGitjobs: get('skip-gitjobs') ?? false,
      skipOci: get('skip-oci') ?? false,
      ociMinAgeMs: get('oci-min-age'),
      allowMassDelete: get('allow-mass-delete') ?? false,
      massDeleteRatio: get('mass-delete-ratio'),
      massDeleteMin: get('mass-delete-min'),
      pageSize: get('page-size'),
      concurrency: get('concurrency'),
      qps: get('qps'),
      burst: get('burst'),
      retries: get('retries'),
      requestTimeoutMs: get('request-timeout'),
      registryTimeoutMs: get('registry-timeout'),
      registryConcurrency: get('registry-concurrency'),
      logLevel: get('log-level'),
      logFormat: get('log-format'),
      terminationLog: get('termination-log'),
    },
  };
}

function parseFlags(argv: readonly string[]): Record<string, string | boolean | undefined> {
  const booleans = new Set([...FLAGS.filter((f) => f.kind === 'boolean').map((f) => f.flag), ...COMMAND_FLAGS]);
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const spec of FLAGS) options[spec.flag] = { type: spec.kind === 'boolean' ? 'boolean' : 'string' };
  for (const flag of COMMAND_FLAGS) options[flag] = { type: 'boolean' };
  try {
    const { values } = parseArgs({ args: argv.map((arg) => goStyleBoolean(arg, booleans)), options, strict: true, allowPositionals: false, allowNegative: true });
    return values;
  } catch (err) {
    throw new UsageError(describeParseError(err));
  }
}

/** Go's flag package accepts `--dry-run=false`; parseArgs does not, so rewrite it to `--no-dry-run`. */
function goStyleBoolean(arg: string, booleans: Set<string>): string {
  const match = /^--?([a-z-]+)=(.*)$/.exec(arg);
  if (!match || !booleans.has(match[1]!)) return arg;
  const value = parseGoBool(match[2]!);
  if (value === undefined) throw new UsageError(`--${match[1]} "${match[2]}": not a boolean (true or false)`);
  return value ? `--${match[1]}` : `--no-${match[1]}`;
}

function describeParseError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const first = (e.message ?? String(err)).split('\n')[0]!;
  const option = /'(-[^' ]+)/.exec(first)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag ${option ?? first} (see --help)`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${/'([^']*)'/.exec(first)?.[1] ?? first}: fleet-cleanup takes flags only (see --help)`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/ambiguous/.test(first)) return `${option}: missing value (to pass a value starting with "-", write ${option}=VALUE)`;
      if (/does not take an argument/.test(first)) return `${option}: takes no value`;
      return `${option}: missing value`;
    default:
      return first;
  }
}

function rejectUnknownEnv(env: Readonly<Record<string, string | undefined>>): void {
  // A misspelt variable (FLEET_CLEANUP_DRYRUN) silently ignored could turn a dry run into a real one.
  const known = new Set(FLAGS.map((f) => envName(f.flag)));
  for (const name of Object.keys(env).sort()) {
    if (name.startsWith(ENV_PREFIX) && !known.has(name)) throw new UsageError(`unknown environment variable ${name} (see --help for the flags it could mean)`);
  }
}

function convert(spec: FlagSpec, text: string | boolean, source: string): unknown {
  const fail = (why: string): never => {
    throw new UsageError(`${source} "${String(text)}": ${why}`);
  };
  if (typeof text === 'boolean') return text;
  switch (spec.kind) {
    case 'boolean': {
      const value = parseGoBool(text);
      return value ?? fail('not a boolean (1, t, true, TRUE, 0, f, false, FALSE)');
    }
    case 'string':
      return text.trim() === '' ? undefined : text;
    case 'duration': {
      const ms = parseDuration(text);
      if (typeof ms !== 'number') return fail(ms.error);
      if (ms === 0 && POSITIVE_DURATIONS.has(spec.flag)) return fail('must be greater than 0');
      // Other runs trust a recorded lock timeout up to a day: a longer one would outlive their patience.
      if (spec.flag === 'lock-timeout' && ms > MAX_RECORDED_LOCK_TIMEOUT_MS) return fail(`must be at most ${formatDuration(MAX_RECORDED_LOCK_TIMEOUT_MS)}`);
      if (ms > MAX_TIMER_MS && TIMER_DURATIONS.has(spec.flag)) return fail(`must be at most ${formatDuration(MAX_TIMER_MS)} (the longest timer Node holds)`);
      return ms;
    }
    case 'count':
    case 'positive': {
      if (/^-\d+$/.test(text)) return fail('must not be negative');
      if (!/^\+?\d+$/.test(text)) return fail('not an integer');
      const n = Number(text);
      if (!Number.isSafeInteger(n)) return fail('too large');
      if (spec.kind === 'positive' && n < 1) return fail('must be at least 1');
      return n;
    }
    case 'number':
    case 'ratio': {
      const n = /^[+-]?(\d+\.?\d*|\.\d+)$/.test(text) ? Number(text) : NaN;
      if (Number.isNaN(n)) return fail('not a number');
      if (spec.kind === 'ratio' && !(n > 0 && n <= 1)) return fail('must be a ratio greater than 0 and at most 1');
      if (spec.kind === 'number' && !(n > 0)) return fail('must be greater than 0');
      return n;
    }
    case 'namespace':
      return validLabel(text) ? text : fail('not a valid namespace name (lowercase letters, digits and "-", at most 63 characters)');
    case 'namespaces': {
      const names = [...new Set(text.split(',').map((s) => s.trim()).filter(Boolean))];
      const bad = names.find((n) => !validLabel(n));
      if (bad !== undefined) fail(`"${bad}" is not a valid namespace name (lowercase letters, digits and "-", at most 63 characters)`);
      return names.length === 0 ? 'all' : names;
    }
    case 'name':
      return text.length <= 253 && DNS1123_SUBDOMAIN.test(text) ? text : fail('not a valid ConfigMap name (lowercase letters, digits, "-" and ".")');
    case 'level':
      return LOG_LEVELS.has(text) ? text : fail('not a log level (trace, debug, info, warn, error, fatal, silent)');
    case 'format':
      return text === 'text' || text === 'json' ? text : fail('not a log format (text, json)');
  }
}

function validLabel(text: string): boolean {
  return text.length <= 63 && DNS1123_LABEL.test(text);
}
