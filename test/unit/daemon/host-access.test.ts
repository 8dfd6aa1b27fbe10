import { describe, expect, it } from 'vitest';
import { capabilityMask, DAEMON_CAPABILITIES } from '../../../src/daemon/capabilities';
import { judgeHostAccess, probeHostAccess, type HostAccessFacts } from '../../../src/daemon/host-access';

const onNode: HostAccessFacts = {
  uid: 0,
  effective: capabilityMask(DAEMON_CAPABILITIES),
  pid2Comm: 'kthreadd',
  inContainer: true,
  podsDir: '/var/lib/kubelet/pods',
  podsDirExists: true,
};

describe('judgeHostAccess: what a container or unit is missing, by name', () => {
  it("the DaemonSet's settings: nothing missing", () => {
    expect(judgeHostAccess(onNode)).toEqual({ blocking: [], degraded: [] });
  });

  it('no AUDIT_CONTROL blocks, naming the capability and how to add it', () => {
    const r = judgeHostAccess({ ...onNode, effective: capabilityMask(['CAP_AUDIT_READ', 'CAP_SYS_PTRACE']) });
    expect(r.blocking).toHaveLength(1);
    expect(r.blocking[0]).toMatch(/CAP_AUDIT_CONTROL.*--cap-add=AUDIT_CONTROL/);
  });

  it('a non-root uid without the capability is told to run as root', () => {
    expect(judgeHostAccess({ ...onNode, uid: 1000, effective: 0n }).blocking[0]).toMatch(/uid 1000.*run as root/);
  });

  it('a private PID namespace (no kthreadd as pid 2) blocks, naming hostPID and --pid=host', () => {
    for (const pid2Comm of [null, 'sh']) {
      const r = judgeHostAccess({ ...onNode, pid2Comm });
      expect(r.blocking).toHaveLength(1);
      expect(r.blocking[0]).toMatch(/hostPID: true.*--pid=host/);
    }
  });

  it('missing SYS_PTRACE or AUDIT_READ degrades, does not block', () => {
    const r = judgeHostAccess({ ...onNode, effective: capabilityMask(['CAP_AUDIT_CONTROL']) });
    expect(r.blocking).toEqual([]);
    expect(r.degraded.join('\n')).toMatch(/SYS_PTRACE/);
    expect(r.degraded.join('\n')).toMatch(/AUDIT_READ/);
  });

  it('a container without the kubelet pods mount is told to mount it; a plain host without kubelet is not', () => {
    expect(judgeHostAccess({ ...onNode, podsDirExists: false }).degraded).toEqual([expect.stringMatching(/\/var\/lib\/kubelet\/pods .*HostToContainer/)]);
    expect(judgeHostAccess({ ...onNode, podsDirExists: false, inContainer: false }).degraded).toEqual([]);
  });

  it('probeHostAccess reads this process: its own capability set and pid 2', () => {
    const f = probeHostAccess('/nonexistent/pods');
    expect(f.podsDirExists).toBe(false);
    expect(f.uid).toBe(process.getuid?.());
    // Not asserted: whether this test runs in the initial PID namespace or with capabilities.
    expect(typeof f.effective).toBe('bigint');
  });
});
