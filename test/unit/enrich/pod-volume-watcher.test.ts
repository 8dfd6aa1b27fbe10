import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PodVolumeWatcher, listPodCredentialDirs, podTokenWatchRule } from '../../../src/enrich/pod-volume-watcher';

const UID1 = '7d3f4c2a-1b5e-4c8d-9f0a-2e6b8c4d1a35';
const UID2 = '11111111-2222-3333-4444-555555555555';
let dir = '';
afterEach(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

function mkvol(uid: string, plugin: string, name: string): string {
  const d = path.join(dir, uid, 'volumes', plugin, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

describe('PodVolumeWatcher', () => {
  it('lists projected and secret volumes of pods, ignoring other dirs', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-pods-'));
    const a = mkvol(UID1, 'kubernetes.io~projected', 'kube-api-access-q7x2m');
    const b = mkvol(UID1, 'kubernetes.io~secret', 'db-creds');
    mkvol(UID1, 'kubernetes.io~empty-dir', 'scratch');
    fs.mkdirSync(path.join(dir, 'not-a-pod', 'volumes', 'kubernetes.io~secret', 'x'), { recursive: true });
    expect(listPodCredentialDirs(dir)).toEqual([a, b].sort());
    expect(listPodCredentialDirs(path.join(dir, 'missing'))).toEqual([]);
  });

  it('yields rule text to add for new pods and to remove for pods that went away', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-pods-'));
    const changes: { add: string[]; remove: string[] }[] = [];
    const w = new PodVolumeWatcher({ podsDir: dir, onChange: (c) => changes.push(c) });
    const a = mkvol(UID1, 'kubernetes.io~projected', 'kube-api-access-q7x2m');
    expect(w.scan()).toEqual({ add: [`-w ${a} -p r -k credwatch:pod-token`], remove: [] });
    const b = mkvol(UID2, 'kubernetes.io~projected', 'kube-api-access-zzzzz');
    fs.rmSync(path.join(dir, UID1), { recursive: true });
    expect(w.scan()).toEqual({ add: [podTokenWatchRule(b)], remove: [podTokenWatchRule(a)] });
    expect(w.scan()).toEqual({ add: [], remove: [] });
    expect(changes).toHaveLength(2);
    expect(w.rules()).toEqual([podTokenWatchRule(b)]);
  });

  it('notices a pod created after start through fs.watch (settled rescan)', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-pods-'));
    const changes: { add: string[]; remove: string[] }[] = [];
    const w = new PodVolumeWatcher({ podsDir: dir, settleMs: 50, rescanMs: 60_000, onChange: (c) => changes.push(c) });
    w.start();
    const a = mkvol(UID1, 'kubernetes.io~projected', 'kube-api-access-abcde');
    await new Promise((r) => setTimeout(r, 400));
    w.stop();
    expect(changes.flatMap((c) => c.add)).toEqual([podTokenWatchRule(a)]);
  });
});
