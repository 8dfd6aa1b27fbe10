/**
 * The e2e suites' afterAll: stop the agent if it still runs, undo the lab, put back any kernel audit
 * state the agent left behind. Every step runs even after a failure; what went wrong comes back as
 * problems (warned, not thrown, so one broken step does not hide the next).
 */
import { forceKernelBack, type KernelSnapshot, type Lab } from './attack-lab';
import type { RunningDaemon } from './daemon';

export interface LabParts {
  daemon: RunningDaemon | null;
  lab: Lab | null;
  kernelBefore: KernelSnapshot | null;
  /** Checks on the agent once it stopped by our SIGTERM (its log, say); each returns problems. */
  afterStop?: (daemon: RunningDaemon) => string[];
}

/** Tears the lab down and warns `title: problems` when anything was wrong; returns the problems. */
export async function tearDownLab(title: string, parts: LabParts): Promise<string[]> {
  const { daemon, lab, kernelBefore } = parts;
  const problems: string[] = [];
  try {
    if (daemon && !daemon.exited()) {
      const r = await daemon.stop();
      if (r.code !== 0) problems.push(`agent exit ${r.code ?? r.signal}`);
      if (parts.afterStop) problems.push(...parts.afterStop(daemon));
    }
  } catch (err) {
    problems.push(`stopping the agent: ${(err as Error).message}`);
  }
  if (lab) problems.push(...(await lab.cleanup()));
  if (kernelBefore) {
    try {
      const forced = forceKernelBack(kernelBefore);
      if (forced.length > 0) problems.push(`kernel state restored by the lab: ${forced.join('; ')}`);
    } catch (err) {
      problems.push(`restoring the kernel: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) console.warn(`${title} teardown:\n  ${problems.join('\n  ')}`);
  return problems;
}
