// A logger whose JSON lines the test can read back: to count requests and to prove that no
// credential or token ever reaches a log line.
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.ts';

export interface CapturedLog {
  logger: Logger;
  lines: () => Array<Record<string, unknown>>;
  text: () => string;
}

export function captureLog(): CapturedLog {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const text = (): string => chunks.join('');
  return {
    logger,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
