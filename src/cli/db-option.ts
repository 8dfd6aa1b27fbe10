/**
 * Which findings database the reading commands (findings, show, status) open: `--db`, else
 * $CREDWATCH_DB, else `storage.path` of the agent's configuration (`--config`, or
 * /etc/credwatch/config.yaml when it exists), else the built-in default. Reading the configuration
 * means `credwatch findings` on a node finds the database wherever the agent was told to keep it.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../daemon/config';
import { DEFAULT_DB_PATH } from '../store';

export interface DbOptions {
  db?: string;
  config?: string;
}

export function addDbOptions(cmd: Command): Command {
  return cmd
    .option('--db <file>', `findings database (default: $CREDWATCH_DB, else storage.path of the configuration, else ${DEFAULT_DB_PATH})`)
    .option('-c, --config <file>', `agent configuration whose storage.path to read (default ${DEFAULT_CONFIG_PATH} when it exists)`);
}

/** A broken configuration file is a ConfigError (exit 2) naming the file, line and key. */
export function resolveDbPath(opts: DbOptions, env: NodeJS.ProcessEnv = process.env, defaultConfig: string = DEFAULT_CONFIG_PATH): string {
  if (opts.db !== undefined) return opts.db;
  if (env.CREDWATCH_DB) return env.CREDWATCH_DB;
  const file = opts.config ?? (fs.existsSync(defaultConfig) ? defaultConfig : undefined);
  if (file === undefined) return DEFAULT_DB_PATH;
  return loadConfig(file, env, defaultConfig).config.storage.path;
}
