/**
 * The agent as users run it, for the attack lab: the default configuration except where its findings
 * go (a temp database) and where metrics listen (a free loopback port). Process handling is the
 * shared test/helpers/daemon.ts. With CREDWATCH_E2E_AGENT_IMAGE_TAR set the agent runs in the
 * credwatch image with the DaemonSet's settings instead (agent-container.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freeLoopbackPort, startDaemon as startConfigured, type LogLine } from '../../helpers/daemon';
import { AGENT_IMAGE_TAR_ENV, agentContainerMemory, containerAgent, describeAgentContainer, removeAgentContainer } from './agent-container';

export { CREDWATCH_BIN, REPO_ROOT, freeLoopbackPort, type LogLine } from '../../helpers/daemon';

export interface RunningDaemon {
  pid: number;
  dbPath: string;
  configPath: string;
  logs: LogLine[];
  /** Raw stderr (anything not JSON, e.g. a crash). */
  stderr(): string;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine>;
  /** SIGTERM and wait; resolves with the exit code (null if killed by a signal). */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited(): boolean;
}

/** `extraConfig`: YAML appended to the lab's config (e.g. a kube_audit: list); not for the agent image. */
export async function startDaemon(dir: string, extraConfig = ''): Promise<RunningDaemon> {
  const port = await freeLoopbackPort();
  const imageTar = process.env[AGENT_IMAGE_TAR_ENV];
  let dbPath = path.join(dir, 'findings.db');
  let configPath = path.join(dir, 'config.yaml');
  let command: string[] | undefined;
  let container: string | null = null;
  if (imageTar) {
    const c = containerAgent(dir, imageTar, port);
    ({ dbPath, configPath, command } = c);
    container = c.containerName;
  } else {
    fs.writeFileSync(configPath, `storage:\n  path: ${dbPath}\nmetrics:\n  listen: 127.0.0.1:${port}\n${extraConfig}`, { mode: 0o600 });
  }
  let d: Awaited<ReturnType<typeof startConfigured>>;
  try {
    d = await startConfigured(configPath, {}, 30_000, command);
  } catch (err) {
    // A container that never got ready must not outlive the lab.
    if (container) removeAgentContainer(container, null);
    throw err;
  }
  if (container) console.log(`agent in a container: ${describeAgentContainer(container)}`);
  return {
    pid: d.pid,
    dbPath,
    configPath,
    logs: d.logs,
    stderr: d.stderr,
    waitForLog: d.waitForLog,
    exited: d.hasExited,
    stop: async (timeoutMs) => {
      if (container && !d.hasExited()) console.log(`agent container memory before stop: ${agentContainerMemory(container)}`);
      const r = await d.stop('SIGTERM', timeoutMs);
      if (container) removeAgentContainer(container, d);
      return r;
    },
  };
}
