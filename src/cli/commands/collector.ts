/**
 * `credwatch collector [--config FILE]`: runs the fleet collector in the foreground (systemd unit
 * credwatch-collector.service). Exit 2 for configuration problems (including missing TLS material),
 * 1 for runtime failures; SIGTERM/SIGINT close the listener and the database and exit 0.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors';
import { DEFAULT_COLLECTOR_CONFIG_PATH, loadCollectorConfig } from '../../collector/config';
import { preflightCollector } from '../../collector/preflight';
import { startCollectorServer } from '../../collector/server';
import { openCollectorStoreFor } from '../../collector/open-store';
import { createLogger } from '../../daemon/logger';

const RETENTION_EVERY_MS = 60 * 60_000;

export async function runCollector(configPath: string): Promise<void> {
  const config = loadCollectorConfig(configPath);
  preflightCollector(config);
  const logger = createLogger(config.log.level === 'silent' ? 'fatal' : config.log.level);
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    logger.warn('collector is running as root; it needs no privileges (the systemd unit runs it as a dynamic user)');
  }
  let store;
  try {
    store = await openCollectorStoreFor(config, logger);
  } catch (err) {
    // Messages name the database by its URL without password (config.storage.url) and never a secret.
    throw new Error(`collector: cannot open storage ${config.pg ? config.storage.url : config.storage.path}: ${(err as Error).message}`);
  }
  if (config.pg) logger.info({ url: config.storage.url, sslmode: config.pg.sslmode, pool_max: config.pg.poolMax }, 'collector storage: PostgreSQL');
  let server;
  try {
    server = await startCollectorServer({ config, store, logger });
  } catch (err) {
    await store.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new UsageError(`collector: cannot listen on ${config.listen}: ${code}`);
    }
    throw err;
  }
  const retention = async (): Promise<void> => {
    try {
      const deleted = await store.retain(config.storage.retention_days, Date.now());
      server.countRetained(deleted);
      if (deleted > 0) logger.info({ deleted, days: config.storage.retention_days }, 'retention removed old findings');
    } catch (err) {
      logger.error({ err }, 'retention failed');
    }
  };
  void retention();
  const timer = setInterval(() => void retention(), RETENTION_EVERY_MS);
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'collector stopping');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  clearInterval(timer);
  await server.close();
  await store.close();
  logger.info({ counters: server.counters() }, 'collector stopped');
  logger.flush();
}

export function register(program: Command): void {
  program
    .command('collector')
    .description('Run the HTTPS collector that receives findings from agents and answers fleet queries')
    .option('-c, --config <file>', 'collector configuration file', DEFAULT_COLLECTOR_CONFIG_PATH)
    .action(async (opts: { config: string }) => {
      await runCollector(opts.config);
    });
}
