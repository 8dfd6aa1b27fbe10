import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCgroupPodLookup } from '../../../src/enrich/container-pods';

const CID = 'af54a767e6019c818daec3e1a8ed2787511f6aaf3b24cadbf5397fc6f761edf3';
const UID = '7d3f4c2a-1b5e-4c8d-9f0a-2e6b8c4d1a35';

describe('createCgroupPodLookup', () => {
  it('finds the pod of a container in a v1 cgroupfs kubepods tree, and in a systemd v2 tree', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-cg-'));
    fs.mkdirSync(path.join(root, 'memory/kubepods/besteffort', `pod${UID}`, CID), { recursive: true });
    fs.mkdirSync(path.join(root, 'memory/kubepods/burstable'), { recursive: true });
    expect(createCgroupPodLookup({ root })(CID)).toBe(UID);
    expect(createCgroupPodLookup({ root })('f'.repeat(64))).toBeNull();

    const v2 = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-cg2-'));
    const u = UID.replace(/-/g, '_');
    fs.mkdirSync(path.join(v2, 'kubepods.slice/kubepods-burstable.slice', `kubepods-burstable-pod${u}.slice`, `cri-containerd-${CID}.scope`), { recursive: true });
    expect(createCgroupPodLookup({ root: v2, hierarchies: [''] })(CID)).toBe(UID);
    fs.rmSync(root, { recursive: true });
    fs.rmSync(v2, { recursive: true });
  });

  it('caches answers for cacheMs', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-cg-'));
    fs.mkdirSync(path.join(root, 'memory/kubepods'), { recursive: true });
    let now = 0;
    const lookup = createCgroupPodLookup({ root, cacheMs: 1000, now: () => now });
    expect(lookup(CID)).toBeNull();
    fs.mkdirSync(path.join(root, 'memory/kubepods', `pod${UID}`, CID), { recursive: true });
    expect(lookup(CID)).toBeNull();
    now = 5000;
    expect(lookup(CID)).toBe(UID);
    fs.rmSync(root, { recursive: true });
  });

  it('remembers a miss only for missCacheMs: the cgroup appears after the runtime\'s first events name the container', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-cg-'));
    fs.mkdirSync(path.join(root, 'memory/kubepods'), { recursive: true });
    let now = 0;
    const lookup = createCgroupPodLookup({ root, now: () => now });
    expect(lookup(CID)).toBeNull(); // runc create: no cgroup yet
    fs.mkdirSync(path.join(root, 'memory/kubepods', `pod${UID}`, CID), { recursive: true });
    now = 500;
    expect(lookup(CID)).toBeNull();
    now = 1500; // far below the 30 s a hit is kept
    expect(lookup(CID)).toBe(UID);
    fs.rmSync(root, { recursive: true });
  });
});
