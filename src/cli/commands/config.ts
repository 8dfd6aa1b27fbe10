import type { Command } from 'commander';
import { DEFAULT_CONFIG_PATH, loadConfig, summarizeConfig } from '../../daemon/config';

/**
 * `credwatch config check FILE`: validates a configuration exactly as `credwatch run` would load it
 * (same schema, same permission checks, same environment token resolution). Prints "ok" and a summary,
 * or the errors with FILE:LINE:COLUMN; a ConfigError exits 2 through main.ts.
 */
export function register(program: Command): void {
  const config = program.command('config').description('Work with the agent configuration file');
  config
    .command('check')
    .description('Validate a configuration file (exit 0 when valid, 2 with key and line when not)')
    .argument('<file>', 'YAML configuration file, e.g. /etc/credwatch/config.yaml')
    .action((file: string) => {
      const { config: cfg, source, warnings } = loadConfig(file, process.env, DEFAULT_CONFIG_PATH, { missingTokenEnv: 'warn' });
      for (const w of warnings) {
        process.stderr.write(`warning: ${source}:${w.line ?? 1}:${w.column ?? 1}: ${w.path}: ${w.message}; \`credwatch run\` will need it\n`);
      }
      process.stdout.write(`ok: ${source}\n${summarizeConfig(cfg).map((l) => `  ${l}\n`).join('')}`);
    });
  config.exitOverride();
  for (const cmd of config.commands) cmd.exitOverride();
}
