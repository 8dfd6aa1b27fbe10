import { describe, expect, it } from 'vitest';
import { parseCgroupPath, parseProcCgroup, podUidFromCgroup } from '../../../src/enrich/cgroup';

const ID = 'b77cf884c985acfdc4a742df4c3299307b74a687de98ab3182f19332ee49ab95';
const UID = '4407d6d9-5a5e-4394-8ac2-54145e3d7f7f';
const UID_ = UID.replace(/-/g, '_');

describe('parseCgroupPath', () => {
  it.each([
    ['/docker/' + ID, 'docker', null],
    ['/system.slice/docker-' + ID + '.scope', 'docker', null],
    ['/kubepods/burstable/pod' + UID + '/' + ID, 'unknown', UID],
    ['/kubepods/besteffort/pod' + UID + '/' + ID, 'unknown', UID],
    ['/kubepods/pod' + UID + '/' + ID, 'unknown', UID],
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`, 'containerd', UID],
    [`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/cri-containerd-${ID}.scope`, 'containerd', UID],
    [`/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${ID}.scope`, 'containerd', UID],
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-${ID}.scope`, 'cri-o', UID],
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-conmon-${ID}.scope`, 'cri-o', UID],
    ['/kubepods/burstable/pod' + UID + '/crio-' + ID, 'cri-o', UID],
    ['/machine.slice/libpod-' + ID + '.scope', 'podman', null],
    ['/machine.slice/libpod-' + ID + '.scope/container', 'podman', null],
    ['/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-' + ID + '.scope', 'podman', null],
    ['/system.slice/containerd.service/kubepods-burstable-pod' + UID_ + '.slice:cri-containerd:' + ID, 'containerd', UID],
  ])('%s -> %s', (path, runtime, podUid) => {
    const id = parseCgroupPath(path);
    expect(id).not.toBeNull();
    expect(id?.runtime).toBe(runtime);
    expect(id?.podUid).toBe(podUid);
    expect(id?.containerId).toBe(ID);
  });

  it.each(['/', '/user.slice/user-0.slice/session-3.scope', '/system.slice/docker.service', '/process_api/404bd75d8c9febd324a2ffaa610f881c', '/docker/' + ID.slice(0, 12)])(
    'host path %s -> null',
    (path) => expect(parseCgroupPath(path)).toBeNull(),
  );
});

describe('parseProcCgroup', () => {
  it('reads a cgroup v1 docker container with many hierarchies (this lab)', () => {
    const text = ['12:pids:/docker/' + ID, '4:memory:/docker/' + ID, '1:name=systemd:/docker/' + ID, '0::/docker/' + ID, ''].join('\n');
    expect(parseProcCgroup(text)).toEqual({ containerId: ID, runtime: 'docker', podUid: null });
  });

  it('reads docker --cgroup-parent /kubepods/besteffort/pod<uid> (as verified on this machine)', () => {
    const p = `/kubepods/besteffort/pod${UID}/${ID}`;
    const text = ['9:name=systemd:' + p, '8:pids:' + p, '4:memory:' + p, '0::' + p].join('\n');
    expect(parseProcCgroup(text)).toEqual({ containerId: ID, runtime: 'unknown', podUid: UID });
  });

  it('reads a cgroup v2 single line', () => {
    const text = `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope\n`;
    expect(parseProcCgroup(text)).toEqual({ containerId: ID, runtime: 'containerd', podUid: UID });
  });

  it('prefers a line with a pod uid when v1 hierarchies disagree', () => {
    const text = ['5:cpuset:/docker/' + ID, `4:memory:/kubepods/burstable/pod${UID}/${ID}`].join('\n');
    expect(parseProcCgroup(text)?.podUid).toBe(UID);
  });

  it('returns null for a host process and for garbage', () => {
    expect(parseProcCgroup('9:name=systemd:/\n4:memory:/process_api/404bd75d8c9febd324a2ffaa610f881c\n0::/\n')).toBeNull();
    expect(parseProcCgroup('')).toBeNull();
    expect(parseProcCgroup('no colons here\n')).toBeNull();
  });

  it('pod uid alone from a pod-level cgroup', () => {
    expect(podUidFromCgroup(`4:memory:/kubepods/burstable/pod${UID}\n`)).toBe(UID);
    expect(parseProcCgroup(`4:memory:/kubepods/burstable/pod${UID}\n`)).toBeNull();
  });
});
