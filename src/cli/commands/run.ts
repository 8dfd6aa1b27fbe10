import type { Command } from 'commander';
import { Agent } from '../../daemon/agent';
import { DAEMON_CAPABILITIES, dropCapabilities } from '../../daemon/capabilities';
import { judgeHostAccess, probeHostAccess, type HostAccessReport } from '../../daemon/host-access';
import { createLogger } from '../../daemon/logger';

const IGNORED_SIGNALS: readonly NodeJS.Signals[] = ['SIGUSR2', 'SIGALRM', 'SIGVTALRM'];

interface RunOptions {
  config?: string;
}

/**
 * `credwatch run [--config FILE]`: the daemon in the foreground (systemd Type=notify). SIGTERM and
 * SIGINT stop it cleanly (our audit rules removed, kernel status restored, findings flushed) and exit
 * 0; SIGHUP reloads the configuration and rule pack, keeping the old ones when the new are broken;
 * SIGUSR2, SIGALRM and SIGVTALRM are logged and ignored.
 */
export function register(program: Command): void {
  program
    .command('run')
    .description('Run the agent in the foreground (the systemd service runs this)')
    .option('-c, --config <file>', 'configuration file (default /etc/credwatch/config.yaml; built-in defaults when absent)')
    .action(async (opts: RunOptions) => {
      const access = judgeHostAccess(probeHostAccess());
      let agent: Agent;
      try {
        agent = await Agent.start({ configPath: opts.config });
      } catch (err) {
        explainBlocked(access);
        throw err;
      }
      reportDegraded(access);
      dropPrivileges();
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
        // Their default action ends the process at once: the kernel would keep our rules, audit enabled
        // and the raised backlog until the next start cleaned up. Nothing here uses them; a heap
        // snapshot asked for with node's --heapsnapshot-signal=SIGUSR2 is still taken (its own
        // listener). SIGPROF is left to node's CPU profiler; SIGQUIT keeps its core dump.
        for (const signal of IGNORED_SIGNALS) {
          process.on(signal, () => createLogger('info').warn({ signal }, 'signal ignored: SIGTERM stops the agent, SIGHUP reloads it'));
        }
      });
    });
}

/**
 * After start (audit sockets open, rules in, state dir and db open) only the audit and /proc
 * capabilities are still needed (src/daemon/capabilities.ts says why each). A failure is logged, not
 * fatal: the systemd unit's CapabilityBoundingSet already confines the service.
 */
function dropPrivileges(): void {
  if (process.getuid?.() !== 0) return;
  const log = createLogger('info');
  try {
    const r = dropCapabilities(DAEMON_CAPABILITIES);
    // threadsMissed is normally 1: Node's inspector signal thread blocks every signal; it runs no
    // JavaScript and exec()s nothing, and the systemd unit bounds it like the rest.
    log.info({ keep: DAEMON_CAPABILITIES, ...r }, 'capabilities dropped');
  } catch (err) {
    log.warn({ error: err instanceof Error ? err.message : String(err) }, 'could not drop capabilities; running with the ones the service was given');
  }
}

/**
 * A start that failed where kernel audit cannot work (a container without --pid=host or without
 * AUDIT_CONTROL) says which setting is missing, not only the kernel's EPERM. Judged only after a
 * failure: the probe never stops an agent that would have worked.
 */
function explainBlocked(access: HostAccessReport): void {
  if (access.blocking.length === 0) return;
  createLogger('info').error({ missing: access.blocking }, 'kernel audit cannot work here');
  process.stderr.write(`credwatch: kernel audit cannot work here:\n${access.blocking.map((b) => `  - ${b}\n`).join('')}`);
}

function reportDegraded(access: HostAccessReport): void {
  if (access.degraded.length === 0) return;
  const log = createLogger('info');
  for (const d of access.degraded) log.warn({ reason: d }, 'running with reduced visibility');
}
