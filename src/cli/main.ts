import { Command, CommanderError } from 'commander';
import { exitCodeOf } from './errors';

type CommandModule = { register(program: Command): void };

/**
 * Each command's module, loaded on demand. A command loads only its own code: loading all of them cost
 * every invocation ~0.3 s and ~44 MiB (the agent, the collector, the stores, the shippers), which a
 * `replay` parent with its workers, or the agent itself, then carries for its whole run. Help, and a
 * name that is no command, load them all (the listing and the error need every command).
 */
const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  run: () => import('./commands/run.js'),
  replay: () => import('./commands/replay.js'),
  findings: () => import('./commands/findings.js'),
  show: () => import('./commands/show.js'),
  status: () => import('./commands/status.js'),
  rules: () => import('./commands/rules.js'),
  collector: () => import('./commands/collector.js'),
  config: () => import('./commands/config.js'),
};

/** The command an argv runs (`node credwatch <command> ...`), if it names one. */
export function commandOf(argv: readonly string[]): string | null {
  const name = argv[2];
  return name !== undefined && Object.hasOwn(COMMANDS, name) ? name : null;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../../package.json') as { version: string };

/** The program with every command, or with `only` that one (the others are not loaded). */
export async function buildProgram(only: string | null = null): Promise<Command> {
  const program = new Command();
  program
    .name('credwatch')
    .description('Detects container-API credential theft (MITRE ATT&CK T1552.007) from kernel audit and Kubernetes audit logs')
    .version(version)
    .showHelpAfterError()
    .exitOverride();
  const names = only !== null ? [only] : Object.keys(COMMANDS);
  for (const mod of await Promise.all(names.map((n) => COMMANDS[n]!()))) mod.register(program);
  // Subcommands inherit exitOverride so that usage errors come back here and exit 2.
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(commandOf(argv));
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
