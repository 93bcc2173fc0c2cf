import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import type { PinoPretty as PinoPrettyModule } from 'pino-pretty';

export type { Logger };

// Every path where a credential could travel: OCI secret data, HTTP auth headers, tokens.
// Redaction is the net; the code also never passes a secret's data or a request's headers to
// a log call in the first place.
const REDACT_PATHS = [
  'password',
  'agentPassword',
  'username',
  'agentUsername',
  'token',
  'authorization',
  'Authorization',
  '*.password',
  '*.agentPassword',
  '*.username',
  '*.agentUsername',
  '*.token',
  '*.authorization',
  '*.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  'data',
  '*.data',
  'stringData',
  '*.stringData',
];

export type LogFormat = 'json' | 'text';

export interface LogOptions {
  level?: string;
  /** Where the lines go; defaults to stdout. Tests pass a stream to read them back. */
  destination?: NodeJS.WritableStream;
  /** `json` (default): one JSON object a line. `text`: pino-pretty's readable lines, for a terminal. */
  format?: LogFormat;
}

/** Text on a terminal, JSON for everything that reads logs (a Pod, a pipe, a file). */
export function defaultLogFormat(stdout: NodeJS.WritableStream): LogFormat {
  return (stdout as { isTTY?: boolean }).isTTY === true ? 'text' : 'json';
}

/** pino-pretty's readable lines into `destination` (stdout by default): JSON lines in, text out. */
export function textStream(destination?: NodeJS.WritableStream): NodeJS.WritableStream {
  // Loaded only when asked for: a Pod logs JSON and need not load the pretty-printer.
  const { PinoPretty } = createRequire(import.meta.url)('pino-pretty') as { PinoPretty: typeof PinoPrettyModule };
  const colorize = ((destination ?? process.stdout) as { isTTY?: boolean }).isTTY === true;
  return PinoPretty({ destination: destination ?? 1, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss', colorize });
}

export function createLogger(options: LogOptions = {}): Logger {
  const destination = options.format === 'text' ? textStream(options.destination) : jsonDestination(options.destination);
  return pino(
    {
      // No logger `name`: audit lines use `name` for the object's name, as kubectl does.
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/**
 * The process's stdout, written once per turn of the event loop. A write per audit line cost a
 * system call and a wake-up of the reader each (a twentieth of the job's CPU at a thousand
 * deletes a second); the lines of one turn (all the answers that came in together) now go out
 * in one synchronous write at the end of that turn. Nothing waits for more lines, and what a
 * turn left is written when the process exits.
 */
function jsonDestination(destination: NodeJS.WritableStream | undefined): NodeJS.WritableStream | { write(chunk: string): boolean } {
  if (destination !== undefined && destination !== process.stdout) return destination;
  const stdout = pino.destination({ dest: 1, sync: true });
  let batch = '';
  const flush = () => {
    if (batch === '') return;
    const lines = batch;
    batch = '';
    stdout.write(lines);
  };
  process.on('exit', flush);
  return {
    write(chunk: string): boolean {
      if (batch === '') setImmediate(flush);
      batch += chunk;
      return true;
    },
  };
}
