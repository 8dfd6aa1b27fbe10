import * as fs from 'node:fs';
import type { Command } from 'commander';
import { parseDocument } from 'yaml';
import { loadCollectorConfig } from '../../collector/config';
import { preflightCollector } from '../../collector/preflight';
import { DEFAULT_CONFIG_PATH, loadConfig, summarizeConfig } from '../../daemon/config';
import { loadRunnableRuleSet } from '../../detect/rule-set';
import { checkShipOutputs } from '../../ship/shipper';

/**
 * `credwatch config check FILE`: validates a configuration exactly as `credwatch run` (or, for a
 * collector configuration, `credwatch collector`) would load it, and runs every check those do before
 * they touch the kernel or the network, through the same functions so the messages are the same:
 *   agent      schema, file modes, token resolution (a token_env variable unset here is an error,
 *              as for run: check in the service's environment); detections.rules_dir (trusted, every rule file
 *              valid with the pack: src/detect/rule-set.ts); each ship output's TLS files (CA and
 *              certificate parse, the key is a private key) and insecure_skip_verify only with
 *              CREDWATCH_ALLOW_INSECURE_TLS=1 (src/ship/shipper.ts resolveOutputSecurity)
 *   collector  schema, token file modes; the TLS certificate, key (a private key, of that
 *              certificate) and client CA (src/collector/preflight.ts)
 * A collector configuration is told apart by its content (a top-level `agents:` list). Prints "ok"
 * and a summary, or the error; every refusal exits 2 through main.ts.
 */
export function register(program: Command): void {
  const config = program.command('config').description('Work with the agent configuration file');
  config
    .command('check')
    .description('Validate a configuration file as run (or collector) would (exit 0 when valid, 2 with key and line when not)')
    .argument('<file>', 'YAML configuration file, e.g. /etc/credwatch/config.yaml or /etc/credwatch/collector.yaml')
    .action((file: string) => {
      if (isCollectorConfig(file)) {
        const cfg = loadCollectorConfig(file);
        preflightCollector(cfg);
        process.stdout.write(`ok: ${file} (collector)\n  listen: ${cfg.listen}\n  agents: ${cfg.agents.map((a) => a.agent).join(', ')}\n  storage: ${cfg.pg ? cfg.storage.url : cfg.storage.path}\n`);
        return;
      }
      // As run: a token_env variable unset in this environment is an error (run would refuse to start).
      const { config: cfg, source } = loadConfig(file, process.env, DEFAULT_CONFIG_PATH);
      if (cfg.detections.rules_dir !== undefined) loadRunnableRuleSet([cfg.detections.rules_dir]);
      checkShipOutputs(cfg.ship, process.env);
      process.stdout.write(`ok: ${source}\n${summarizeConfig(cfg).map((l) => `  ${l}\n`).join('')}`);
    });
  config.exitOverride();
  for (const cmd of config.commands) cmd.exitOverride();
}

/** A collector configuration has a top-level `agents:` list; an agent configuration never does. */
function isCollectorConfig(file: string): boolean {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return false; // loadConfig says what is wrong with the file
  }
  const top = parseDocument(text).toJS({ maxAliasCount: 100 }) as unknown;
  return typeof top === 'object' && top !== null && !Array.isArray(top) && 'agents' in top;
}
