/**
 * deploy/kubernetes/credwatch.yaml against the Kubernetes API schemas (kubernetes-models; no cluster
 * runs here) and against what the agent needs: host PID namespace, exactly three capabilities,
 * read-only host views, a hostPath state dir, every node tolerated, resources and a liveness probe
 * on the port the ConfigMap's configuration really listens on.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/daemon/config';
import { DAEMON_CAPABILITIES } from '../../../src/daemon/capabilities';
import { dockerRunArgs, loadManifest } from '../../helpers/daemonset';
import { PACKAGE_VERSION } from '../../helpers/package-build';

const m = loadManifest();

function mount(name: string): { mountPath: string; readOnly?: boolean; mountPropagation?: string } {
  const vm = m.agent.volumeMounts?.find((v) => v.name === name);
  if (!vm) throw new Error(`no volumeMount ${name}`);
  return vm;
}
const volume = (name: string) => m.pod.volumes?.find((v) => v.name === name);

describe('deploy/kubernetes/credwatch.yaml', () => {
  it('every object validates against the Kubernetes schemas', () => {
    const kinds = m.docs.map((d) => d.kind);
    expect(kinds).toEqual(['Namespace', 'ConfigMap', 'DaemonSet']);
    expect(() => new Namespace(m.docs[0] as never).validate()).not.toThrow();
    expect(() => new ConfigMap(m.configMap as never).validate()).not.toThrow();
    expect(() => new DaemonSet(m.daemonSet as never).validate()).not.toThrow();
  });

  it('the schema check is real: a wrongly typed field is refused', () => {
    const broken = structuredClone(m.daemonSet) as unknown as { spec: { template: { spec: Record<string, unknown> } } };
    broken.spec.template.spec.hostPID = 'yes';
    expect(() => new DaemonSet(broken as never).validate()).toThrow(/hostPID must be boolean/);
  });

  it('runs in the host PID and network namespaces with only AUDIT_CONTROL, AUDIT_READ and SYS_PTRACE', () => {
    expect(m.pod.hostPID).toBe(true);
    expect(m.pod.hostNetwork).toBe(true);
    const sc = m.agent.securityContext!;
    expect(sc.privileged).toBe(false);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.capabilities?.drop).toEqual(['ALL']);
    // The same set the agent keeps itself (src/daemon/capabilities.ts) and the systemd unit bounds.
    expect([...(sc.capabilities?.add ?? [])].sort()).toEqual(DAEMON_CAPABILITIES.map((c) => c.replace(/^CAP_/, '')).sort());
    expect(sc.runAsUser).toBe(0);
    expect(sc.readOnlyRootFilesystem).toBe(true);
  });

  it('mounts the kubelet pods dir and the cgroup tree read-only at their host paths, the state dir from the host', () => {
    expect(mount('kubelet-pods')).toEqual({ name: 'kubelet-pods', mountPath: '/var/lib/kubelet/pods', readOnly: true, mountPropagation: 'HostToContainer' });
    expect(volume('kubelet-pods')?.hostPath?.path).toBe('/var/lib/kubelet/pods');
    expect(mount('cgroup')).toMatchObject({ mountPath: '/sys/fs/cgroup', readOnly: true });
    expect(volume('cgroup')?.hostPath?.path).toBe('/sys/fs/cgroup');
    expect(mount('state').readOnly).toBeUndefined();
    expect(volume('state')?.hostPath).toEqual({ path: '/var/lib/credwatch', type: 'DirectoryOrCreate' });
    // Nothing else from the host is writable.
    const writable = (m.agent.volumeMounts ?? []).filter((v) => !v.readOnly).map((v) => v.name);
    expect(writable).toEqual(['state']);
  });

  it('tolerates every taint, so every node runs it', () => {
    expect(m.pod.tolerations).toEqual([{ operator: 'Exists' }]);
  });

  it('has requests and a memory limit, and the image tag is the package version', () => {
    expect(m.agent.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(m.agent.resources?.limits?.memory).toMatch(/^\d+Mi$/);
    expect(m.agent.image).toBe(`credwatch:${PACKAGE_VERSION}`);
  });

  it("the ConfigMap's configuration loads, keeps findings in the state mount and listens where the liveness probe asks", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-ds-'));
    try {
      const file = path.join(dir, 'config.yaml');
      fs.writeFileSync(file, m.configMap.data['config.yaml']!, { mode: 0o600 });
      const { config } = loadConfig(file, {});
      expect(path.dirname(config.storage.path)).toBe(mount('state').mountPath);
      const probe = m.agent.livenessProbe?.httpGet;
      expect(probe?.path).toBe('/metrics');
      expect(`${probe?.host}:${probe?.port}`).toBe(config.metrics.listen);
      expect(m.agent.args).toEqual(['run', '--config', `${mount('config').mountPath}/config.yaml`]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('maps to docker run flags with the same namespaces, capabilities and mounts', () => {
    const args = dockerRunArgs(m, { configDir: '/tmp/cfg', stateDir: '/tmp/state' });
    expect(args).toEqual(expect.arrayContaining(['--pid=host', '--network=host', '--cap-drop=ALL', '--cap-add=AUDIT_CONTROL', '--cap-add=AUDIT_READ', '--cap-add=SYS_PTRACE', '--read-only']));
    expect(args).toContain('type=bind,src=/var/lib/kubelet/pods,dst=/var/lib/kubelet/pods,readonly,bind-propagation=rslave');
    expect(args).toContain('type=bind,src=/tmp/state,dst=/var/lib/credwatch');
    expect(args).toContain('type=bind,src=/tmp/cfg,dst=/etc/credwatch,readonly');
  });
});
