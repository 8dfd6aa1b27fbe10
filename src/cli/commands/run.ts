import type { Command } from 'commander';
import { Agent } from '../../daemon/agent';

interface RunOptions {
  config?: string;
}

/**
 * `credwatch run [--config FILE]`: the daemon in the foreground (systemd Type=notify). SIGTERM and
 * SIGINT stop it cleanly (our audit rules removed, kernel status restored, findings flushed) and exit
 * 0; SIGHUP reloads the configuration and rule pack, keeping the old ones when the new are broken.
 */
export function register(program: Command): void {
  program
    .command('run')
    .description('Run the agent in the foreground (the systemd service runs this)')
    .option('-c, --config <file>', 'configuration file (default /etc/credwatch/config.yaml; built-in defaults when absent)')
    .action(async (opts: RunOptions) => {
      const agent = new Agent({ configPath: opts.config });
      await agent.start();
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals): void => {
          process.removeListener('SIGTERM', stop);
          process.removeListener('SIGINT', stop);
          agent.stop(signal).then(resolve, (err: unknown) => {
            process.stderr.write(`credwatch: stop failed: ${String(err)}\n`);
            process.exitCode = 1;
            resolve();
          });
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
        process.on('SIGHUP', () => agent.reload());
      });
    });
}
