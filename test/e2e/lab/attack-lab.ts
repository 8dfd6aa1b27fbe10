/**
 * The attack lab: everything the e2e scenarios need around the real agent, set up by the test
 * itself and torn down whatever happens.
 *
 *  - dockerd (the one already serving /var/run/docker.sock, or a private one started here with
 *    --iptables=false --bridge=none on the unix socket and tcp://127.0.0.1:2375, stopped by pid);
 *  - the `cwbusybox:lab` image imported from a busybox-static rootfs;
 *  - a pod: kubelet-style tmpfs token volume bind-mounted at /run/secrets/kubernetes.io/serviceaccount
 *    into a container in cgroup parent /kubepods/besteffort/pod<uid> (test/helpers/pod-layout.ts),
 *    the tmpfs mounted by a shell named kubelet (mount's parent on a node is the kubelet);
 *  - HTTPS stubs of an API server (127.0.0.1:6443) and a kubelet (127.0.0.1:10250) with a throwaway
 *    PKI, and a kubeconfig (token user) pointing kubectl at the API-server stub;
 *  - a kubelet-like token reader: /bin/cat copied to /usr/local/bin/kubelet (only if absent).
 *
 * Every resource registers its own undo on creation; cleanup() runs them all, newest first, even
 * when an earlier one throws, and also removes any audit rule keyed `credwatch*` left behind.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ruleKey } from '../../../src/audit/rules';
import { deleteRule, getStatus, listRules, loadNative, setStatus, type AuditStatus } from '../../../src/native/binding';
import { dockerUsable, ensureDocker, ensureLabImage, which } from '../../helpers/docker-lab';
import { startPod, type Pod } from '../../helpers/pod-layout';
import { makeTestPki, type TestPki } from '../../helpers/tls';
import { startDockerTcpProxy } from './docker-tcp-proxy';
import { startApiServerStub, startKubeletStub, type StubServer } from './api-stubs';
import { REPO_ROOT } from './daemon';

export const KUBELET_COPY = '/usr/local/bin/kubelet';
const TOOLS = ['docker', 'kubectl', 'curl', 'etcdctl', 'bash', 'xargs', 'gcc', 'dpkg', 'openssl', 'mount', 'umount'];

/** Why the lab cannot run here, or null when it can. Cheap and synchronous (used at collection). */
export function labSkipReason(): string | null {
  if (process.platform !== 'linux') return 'Linux only';
  if (process.getuid?.() !== 0) return 'needs root (kernel audit, mounts, dockerd)';
  // attack-lab-in-container.test.ts could not build the agent image (set by lab/container-agent-setup.ts).
  if (process.env.CREDWATCH_E2E_CONTAINER_SKIP) return `agent image: ${process.env.CREDWATCH_E2E_CONTAINER_SKIP}`;
  const missing = TOOLS.filter((t) => !which(t));
  if (missing.length > 0) return `missing tools: ${missing.join(', ')} (apt-get install docker.io kubernetes-client curl etcd-client gcc)`;
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist/src/cli/main.js'))) return 'dist/ is not built (npm run build:ts)';
  let status: AuditStatus;
  try {
    loadNative();
    status = getStatus();
  } catch (err) {
    return `kernel audit netlink unusable: ${(err as Error).message}`;
  }
  if (status.enabled === 2) return 'kernel audit is immutable (enabled=2)';
  if (!dockerUsable() && !which('dockerd')) return 'no docker daemon answers and dockerd is not installed';
  if (!['/bin/busybox', '/usr/bin/busybox'].some((p) => fs.existsSync(p)) && spawnSync('docker', ['image', 'inspect', 'cwbusybox:lab']).status !== 0) {
    return 'busybox-static is not installed (needed for the lab image)';
  }
  return null;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function tcpAnswers(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export interface KernelSnapshot {
  status: Pick<AuditStatus, 'enabled' | 'failure' | 'pid' | 'rateLimit' | 'backlogLimit' | 'backlogWaitTime'>;
  rules: string[];
}

export function kernelSnapshot(): KernelSnapshot {
  const s = getStatus();
  return {
    status: { enabled: s.enabled, failure: s.failure, pid: s.pid, rateLimit: s.rateLimit, backlogLimit: s.backlogLimit, backlogWaitTime: s.backlogWaitTime },
    rules: listRules().map((b) => b.toString('hex')),
  };
}

/**
 * Last resort after a crashed or killed agent: delete audit rules keyed `credwatch*` and put back
 * the status fields the agent changes. Returns what it had to do (empty when the agent cleaned up).
 */
export function forceKernelBack(before: KernelSnapshot): string[] {
  const done: string[] = [];
  for (const p of listRules()) {
    const keys = ruleKey(p);
    if (keys.some((k) => k.startsWith('credwatch'))) {
      try {
        deleteRule(p);
        done.push(`deleted rule ${keys.join(',')}`);
      } catch (err) {
        done.push(`could not delete rule ${keys.join(',')}: ${(err as Error).message}`);
      }
    }
  }
  const now = getStatus();
  if (now.pid !== before.status.pid && before.status.pid === 0) {
    setStatus({ pid: 0 });
    done.push('released audit pid');
  }
  if (now.backlogLimit !== before.status.backlogLimit) {
    setStatus({ backlogLimit: before.status.backlogLimit });
    done.push('restored backlog_limit');
  }
  if (now.enabled !== before.status.enabled && before.status.enabled < 2 && now.enabled < 2) {
    setStatus({ enabled: before.status.enabled as 0 | 1 });
    done.push('restored enabled');
  }
  return done;
}

export interface Lab {
  dir: string;
  pki: TestPki;
  apiServer: StubServer;
  kubelet: StubServer;
  kubeconfig: string;
  /** Environment for kubectl: the lab kubeconfig, and a HOME whose .kube/cache is ours. */
  kubectlEnv: NodeJS.ProcessEnv;
  /** Whether the Docker API answers on tcp://127.0.0.1:2375 (null: yes; else why not). */
  dockerTcpProblem: string | null;
  /** Who serves 127.0.0.1:2375: "dockerd" or the lab's proxy. */
  dockerTcp: string;
  /** Whether /usr/local/bin/kubelet is our cat copy (null: yes; else why not). */
  kubeletCopyProblem: string | null;
  startedDockerd: number | null;
  /** The first pod started by startLabPod() (the scenarios' pod). */
  pod: Pod | null;
  /** Every pod started, in order. */
  pods: Pod[];
  /** Starts a pod (token volume, bind mount, kubepods cgroup); torn down by cleanup(). */
  startLabPod(): Pod;
  /** Registers an undo step (run by cleanup, newest first). */
  defer(what: string, fn: () => unknown): void;
  cleanup(): Promise<string[]>;
}

export async function setUpLab(): Promise<Lab> {
  const undo: { what: string; fn: () => unknown }[] = [];
  const defer = (what: string, fn: () => unknown): void => {
    undo.push({ what, fn });
  };
  const cleanup = async (): Promise<string[]> => {
    const problems: string[] = [];
    for (const { what, fn } of undo.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        problems.push(`${what}: ${(err as Error).message}`);
      }
    }
    return problems;
  };
  try {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-e2e-'));
    defer('lab dir', () => fs.rmSync(dir, { recursive: true, force: true }));

    const docker = await ensureDocker();
    defer('dockerd', () => docker.stop());
    ensureLabImage();
    let dockerTcpProblem: string | null = null;
    let dockerTcp = 'dockerd';
    if (!(await tcpAnswers(2375))) {
      try {
        const proxy = await startDockerTcpProxy();
        defer('docker tcp proxy', () => proxy.close());
        dockerTcp = 'lab proxy to /var/run/docker.sock';
      } catch (err) {
        dockerTcpProblem = `nothing answers on 127.0.0.1:2375 and the lab could not listen there: ${(err as Error).message}`;
      }
    }

    const pki = makeTestPki();
    defer('pki', () => pki.cleanup());
    const apiServer = await startApiServerStub(pki.server);
    defer('api-server stub', () => apiServer.close());
    const kubelet = await startKubeletStub(pki.server);
    defer('kubelet stub', () => kubelet.close());

    const home = path.join(dir, 'home');
    fs.mkdirSync(home);
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: lab',
        '  cluster:',
        `    server: https://127.0.0.1:${apiServer.port}`,
        `    certificate-authority: ${pki.caFile}`,
        'users:',
        '- name: lab-admin',
        '  user:',
        '    token: lab-admin-static-token',
        'contexts:',
        '- name: lab',
        '  context: {cluster: lab, user: lab-admin, namespace: default}',
        'current-context: lab',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const kubectlEnv = { ...process.env, KUBECONFIG: kubeconfig, HOME: home };

    // The kubelet mounts each pod's token volume by exec'ing mount: a shell named kubelet does it here.
    const kubeletStandIn = path.join(dir, 'kubelet');
    fs.copyFileSync('/bin/sh', kubeletStandIn);
    fs.chmodSync(kubeletStandIn, 0o755);

    let kubeletCopyProblem: string | null = null;
    if (fs.existsSync(KUBELET_COPY)) {
      kubeletCopyProblem = `${KUBELET_COPY} already exists; not replacing it`;
    } else {
      fs.copyFileSync('/bin/cat', KUBELET_COPY);
      fs.chmodSync(KUBELET_COPY, 0o755);
      defer('kubelet copy', () => fs.rmSync(KUBELET_COPY, { force: true }));
    }

    const lab: Lab = {
      dir,
      pki,
      apiServer,
      kubelet,
      kubeconfig,
      kubectlEnv,
      dockerTcpProblem,
      dockerTcp,
      kubeletCopyProblem,
      startedDockerd: docker.startedPid,
      pod: null,
      pods: [],
      startLabPod() {
        const pod = startPod({ mountParent: kubeletStandIn });
        defer('pod', () => pod.cleanup());
        lab.pods.push(pod);
        lab.pod ??= pod;
        return pod;
      },
      defer,
      cleanup,
    };
    return lab;
  } catch (err) {
    await cleanup();
    throw err;
  }
}
