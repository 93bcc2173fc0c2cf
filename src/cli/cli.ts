import { createLogger } from '../log.ts';
import { helpText } from './help.ts';
import { parseOptions, UsageError, type ParsedCommand } from './options.ts';
import { EXIT_OK, EXIT_USAGE, runCleanup, type CliIo } from './run.ts';
import { packageVersion } from './version.ts';

/** The whole command: flags, --help, --version, the run. Returns the exit code. */
export async function cli(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: ParsedCommand;
  try {
    parsed = parseOptions(argv, io.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    createLogger({ destination: io.stdout }).error({ usage: true }, err.message);
    io.stderr.write(`fleet-cleanup: error: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (parsed.command === 'help') {
    io.stdout.write(helpText());
    return EXIT_OK;
  }
  if (parsed.command === 'version') {
    io.stdout.write(`fleet-cleanup ${packageVersion()}\n`);
    return EXIT_OK;
  }
  return runCleanup(parsed.options, io);
}
