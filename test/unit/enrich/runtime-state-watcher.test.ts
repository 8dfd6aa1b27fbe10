import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RuntimeStateWatcher, discoverRuntimeStateRoots, listRuntimeStateFiles, type RuntimeStateRoots } from '../../../src/enrich/runtime-state-watcher';
import { PodVolumeWatcher } from '../../../src/enrich/pod-volume-watcher';

const ID = 'a'.repeat(64);
const ID2 = 'b'.repeat(64);
let dir = '';
afterEach(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

function layout(): RuntimeStateRoots {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-rt-'));
  const roots = { docker: path.join(dir, 'docker/containers'), containerd: [path.join(dir, 'ctr/task')], crio: path.join(dir, 'crio/overlay-containers') };
  const put = (f: string): void => {
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, '{}');
  };
  put(path.join(roots.docker, ID, 'config.v2.json'));
  put(path.join(roots.docker, ID, 'hostconfig.json'));
  put(path.join(roots.docker, ID, `${ID}-json.log`)); // logs are not state: never watched
  put(path.join(roots.containerd[0]!, 'moby', ID, 'config.json'));
  put(path.join(roots.crio, ID2, 'userdata', 'config.json'));
  fs.mkdirSync(path.join(roots.docker, 'not-an-id'), { recursive: true });
  return roots;
}

describe('RuntimeStateWatcher', () => {
  it('lists the state files of docker, containerd and CRI-O containers, not their logs', () => {
    const roots = layout();
    expect(listRuntimeStateFiles(roots)).toEqual(
      [
        path.join(roots.docker, ID, 'config.v2.json'),
        path.join(roots.docker, ID, 'hostconfig.json'),
        path.join(roots.containerd[0]!, 'moby', ID, 'config.json'),
        path.join(roots.crio, ID2, 'userdata', 'config.json'),
      ].sort(),
    );
  });

  it('yields a read watch and an io_uring rule per file, and removes both when the container goes', () => {
    const roots = layout();
    const w = new RuntimeStateWatcher({ roots: [roots], uring: true, onChange: () => undefined });
    const first = w.scan();
    const cfg = path.join(roots.docker, ID, 'config.v2.json');
    expect(first.add).toContain(`-w ${cfg} -p r -k credwatch:runtime-state`);
    expect(first.add).toContain(`-a always,io_uring -S openat,openat2 -F path=${cfg} -F key=credwatch:runtime-state`);
    expect(first.add).toHaveLength(8);
    fs.rmSync(path.join(roots.docker, ID), { recursive: true });
    const second = w.scan();
    expect(second.remove).toEqual([
      `-w ${cfg} -p r -k credwatch:runtime-state`,
      `-a always,io_uring -S openat,openat2 -F path=${cfg} -F key=credwatch:runtime-state`,
      `-w ${path.join(roots.docker, ID, 'hostconfig.json')} -p r -k credwatch:runtime-state`,
      `-a always,io_uring -S openat,openat2 -F path=${path.join(roots.docker, ID, 'hostconfig.json')} -F key=credwatch:runtime-state`,
    ]);
  });

  it('a pod volume dir gets an io_uring dir= rule, also in the removal after the dir is gone', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-rt-'));
    const vol = path.join(dir, '7d3f4c2a-1b5e-4c8d-9f0a-2e6b8c4d1a35', 'volumes', 'kubernetes.io~projected', 'kube-api-access-x');
    fs.mkdirSync(vol, { recursive: true });
    const w = new PodVolumeWatcher({ podsDir: dir, uring: true, onChange: () => undefined });
    const uringLine = `-a always,io_uring -S openat,openat2 -F dir=${vol} -F key=credwatch:pod-token`;
    expect(w.scan().add).toEqual([`-w ${vol} -p r -k credwatch:pod-token`, uringLine]);
    fs.rmSync(path.join(dir, '7d3f4c2a-1b5e-4c8d-9f0a-2e6b8c4d1a35'), { recursive: true });
    expect(w.scan().remove).toEqual([`-w ${vol} -p r -k credwatch:pod-token`, uringLine]);
  });

  it('finds the roots of a dockerd started with --data-root/--exec-root, and daemon.json', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-rt-'));
    const proc = path.join(dir, 'proc');
    fs.mkdirSync(path.join(proc, '42'), { recursive: true });
    fs.writeFileSync(path.join(proc, '42', 'cmdline'), ['/usr/bin/dockerd', '--data-root', '/srv/docker', '--exec-root=/run/dx', ''].join('\0'));
    fs.mkdirSync(path.join(proc, '43'));
    fs.writeFileSync(path.join(proc, '43', 'cmdline'), ['/bin/sleep', '--data-root', '/nope', ''].join('\0'));
    const daemonJson = path.join(dir, 'daemon.json');
    fs.writeFileSync(daemonJson, JSON.stringify({ 'data-root': '/data/docker' }));
    const roots = discoverRuntimeStateRoots(proc, daemonJson);
    expect(roots.map((r) => r.docker)).toEqual(['/var/lib/docker/containers', '/data/docker/containers', '/srv/docker/containers']);
    expect(roots[2]?.containerd).toEqual(['/run/dx/containerd/daemon/io.containerd.runtime.v2.task']);
  });
});
