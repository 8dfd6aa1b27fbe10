/**
 * What the agent can reach of the host, judged before it starts, so that a missing capability,
 * namespace or mount is reported by name instead of as a bare EPERM or a silently empty enrichment.
 * Mostly for the container image (deploy/kubernetes/credwatch.yaml), where each of these is one line
 * of the pod spec; the same checks hold under systemd.
 *
 * Blocking (the agent cannot read kernel audit at all):
 *  - CAP_AUDIT_CONTROL not effective: every AUDIT_GET/AUDIT_SET and rule change is refused;
 *  - not in the initial PID namespace: the kernel refuses audit control to other PID namespaces
 *    (hostPID: true, docker --pid=host). Seen from inside: no kernel thread is visible (pid 2 is
 *    kthreadd only in the initial namespace).
 * Degrading (the agent runs, some attribution is lost):
 *  - CAP_SYS_PTRACE missing: /proc/<pid>/exe and cwd of other users' processes are unreadable;
 *  - CAP_AUDIT_READ missing: no reading beside auditd (multicast);
 *  - in a container, the kubelet pods dir absent: no pod token watches (mount it at its host path).
 */
import * as fs from 'node:fs';
import { capabilityMask, parseProcStatusCapabilities } from './capabilities';

export interface HostAccessFacts {
  uid: number;
  /** Effective capability set of this process. */
  effective: bigint;
  /** The comm of pid 2 as this process sees /proc (null: no such process). */
  pid2Comm: string | null;
  inContainer: boolean;
  podsDir: string;
  podsDirExists: boolean;
}

export interface HostAccessReport {
  /** Why kernel audit cannot work here; empty when it can. */
  blocking: string[];
  /** What works only partly here. */
  degraded: string[];
}

const has = (effective: bigint, cap: string): boolean => (effective & capabilityMask([cap])) !== 0n;

export function judgeHostAccess(f: HostAccessFacts): HostAccessReport {
  const blocking: string[] = [];
  const degraded: string[] = [];
  if (!has(f.effective, 'CAP_AUDIT_CONTROL')) {
    blocking.push(
      f.uid === 0
        ? 'CAP_AUDIT_CONTROL is not in the effective set: kernel audit refuses status and rule changes (Kubernetes: securityContext.capabilities.add AUDIT_CONTROL; docker: --cap-add=AUDIT_CONTROL)'
        : `running as uid ${f.uid} without CAP_AUDIT_CONTROL: run as root (the systemd unit does) or grant AUDIT_CONTROL`,
    );
  }
  if (f.pid2Comm !== 'kthreadd') {
    blocking.push(
      'not in the host PID namespace (no kernel threads visible in /proc): kernel audit only answers the initial PID namespace, and processes of other pods would be invisible (Kubernetes: hostPID: true; docker: --pid=host)',
    );
  }
  if (!has(f.effective, 'CAP_SYS_PTRACE')) {
    degraded.push("CAP_SYS_PTRACE is missing: executable and cwd of other users' processes will be unknown (add SYS_PTRACE)");
  }
  if (!has(f.effective, 'CAP_AUDIT_READ')) {
    degraded.push('CAP_AUDIT_READ is missing: the agent cannot read beside auditd (multicast) and needs the audit pid for itself (add AUDIT_READ)');
  }
  if (f.inContainer && !f.podsDirExists) {
    degraded.push(
      `${f.podsDir} does not exist in this container: no pod service-account token watches (mount the host's ${f.podsDir} read-only at the same path, mountPropagation: HostToContainer)`,
    );
  }
  return { blocking, degraded };
}

function readOr(file: string, fallback: string | null): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** Whether this process runs in a container (the markers docker, podman and Kubernetes leave). */
export function runningInContainer(env: NodeJS.ProcessEnv = process.env): boolean {
  return fs.existsSync('/.dockerenv') || fs.existsSync('/run/.containerenv') || env.KUBERNETES_SERVICE_HOST !== undefined || env.container !== undefined;
}

export function probeHostAccess(podsDir = '/var/lib/kubelet/pods', procRoot = '/proc'): HostAccessFacts {
  const status = readOr(`${procRoot}/self/status`, '') ?? '';
  const stat2 = readOr(`${procRoot}/2/stat`, null);
  // "2 (kthreadd) S 0 ..." -> kthreadd
  const comm = stat2 === null ? null : (/^\d+ \((.*)\) /.exec(stat2)?.[1] ?? null);
  return {
    uid: process.getuid?.() ?? -1,
    effective: parseProcStatusCapabilities(status).effective,
    pid2Comm: comm,
    inContainer: runningInContainer(),
    podsDir,
    podsDirExists: fs.existsSync(podsDir),
  };
}
