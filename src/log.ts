import { pino, type Logger } from 'pino';

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

export interface LogOptions {
  level?: string;
  /** Where the JSON lines go; defaults to stdout. Tests pass a stream to read them back. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LogOptions = {}): Logger {
  return pino(
    {
      // No logger `name`: audit lines use `name` for the object's name, as kubectl does.
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
