import { Command, CommanderError } from 'commander';
import { exitCodeOf } from './errors';
import { register as registerRun } from './commands/run';
import { register as registerReplay } from './commands/replay';
import { register as registerFindings } from './commands/findings';
import { register as registerShow } from './commands/show';
import { register as registerStatus } from './commands/status';
import { register as registerRules } from './commands/rules';
import { register as registerCollector } from './commands/collector';
import { register as registerConfig } from './commands/config';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('credwatch')
    .description('Detects container-API credential theft (MITRE ATT&CK T1552.007) from kernel audit and Kubernetes audit logs')
    .version(version)
    .showHelpAfterError()
    .exitOverride();
  for (const register of [
    registerRun,
    registerReplay,
    registerFindings,
    registerShow,
    registerStatus,
    registerRules,
    registerCollector,
    registerConfig,
  ]) {
    register(program);
  }
  // Subcommands inherit exitOverride so that usage errors come back here and exit 2.
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are "errors" to commander; they are successes to a user.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`credwatch: ${message}\n`);
    return exitCodeOf(err);
  }
}

/** Entry point used by bin/credwatch. */
export function run(): void {
  // `credwatch findings | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`credwatch: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
