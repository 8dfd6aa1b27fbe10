/**
 * The agent's own read of a pod token, on a real directory in the kubelet's atomic-writer layout
 * (token -> ..data/token, ..data -> ..<timestamp>), indexed by the real WatchedObjects: claims by
 * inode, once per inode, through a rotation, and nothing but regular files of bounded size.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TokenClaimsReader } from '../../../src/enrich/token-claims';
import { WatchedObjects, kernelDevString, type ObjectHit } from '../../../src/enrich/watched-objects';
import { boundClaims, signJwt } from '../../helpers/jwt';

const POD_UID = '3c1d6a0e-7b2f-4c8d-9e1a-5f6b7c8d9e0a';
let root = '';
let vol = '';

function writeGeneration(stamp: string, files: Record<string, string>): void {
  const dir = path.join(vol, stamp);
  fs.mkdirSync(dir);
  for (const [n, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, n), text);
  // The kubelet's swap: a new ..data_tmp link renamed over ..data.
  fs.symlinkSync(stamp, path.join(vol, '..data_tmp'));
  fs.renameSync(path.join(vol, '..data_tmp'), path.join(vol, '..data'));
  for (const n of Object.keys(files)) if (!fs.existsSync(path.join(vol, n))) fs.symlinkSync(`..data/${n}`, path.join(vol, n));
}

function inodeOf(p: string): string {
  const st = fs.statSync(p, { bigint: true });
  return `${kernelDevString(st.dev)}/${st.ino}`;
}

function hitFor(inode: string, file: string | null): ObjectHit {
  return { class: 'pod-token', podUid: POD_UID, containerId: null, watch: vol, via: 'inode', inode, file };
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-claims-'));
  vol = path.join(root, 'pods', POD_UID, 'volumes', 'kubernetes.io~projected', 'kube-api-access-x2k9p');
  fs.mkdirSync(vol, { recursive: true });
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function setUp(): { reader: TokenClaimsReader; objects: WatchedObjects } {
  const reader = new TokenClaimsReader({ maxFileBytes: 8192 });
  const objects = new WatchedObjects({ onIndexFile: (i, f, o) => reader.noteFile(i, f, o) });
  objects.add(vol, 'pod-token');
  return { reader, objects };
}

describe('TokenClaimsReader', () => {
  it('serves every read of one file the same frozen claims, so no finding can change another\'s token', () => {
    writeGeneration('..2026_12_02_10_00_00.1', { token: signJwt(boundClaims({ jti: 'jti-shared', podUid: POD_UID, node: 'worker-1' })) });
    const { reader } = setUp();
    const real = path.join(vol, '..2026_12_02_10_00_00.1', 'token');
    const a = reader.claimsFor(hitFor(inodeOf(real), real));
    const b = reader.claimsFor(hitFor(inodeOf(real), real));
    expect(a).not.toBeNull();
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(() => {
      (a as { jti: string | null }).jti = 'changed';
    }).toThrow(TypeError);
    expect(reader.claimsFor(hitFor(inodeOf(real), real))?.jti).toBe('jti-shared');
  });

  it('decodes the token the watch indexed, once per inode, and never hands back the token', () => {
    const token = signJwt(boundClaims({ jti: 'jti-gen-1', podUid: POD_UID, node: 'worker-1' }));
    writeGeneration('..2026_12_02_10_00_00.1', { token, 'ca.crt': 'CERT', namespace: 'default' });
    const { reader } = setUp();
    expect(reader.stats.decoded).toBe(1); // ca.crt and namespace are not tokens
    const real = path.join(vol, '..2026_12_02_10_00_00.1', 'token');
    for (let i = 0; i < 5; i++) expect(reader.claimsFor(hitFor(inodeOf(real), real))).toMatchObject({ jti: 'jti-gen-1', pod_uid: POD_UID, node: 'worker-1', from: 'file' });
    expect(reader.stats.decoded).toBe(1);
    expect(reader.stats.served).toBe(5);
    expect(JSON.stringify(reader.claimsFor(hitFor(inodeOf(real), real)))).not.toContain(token.slice(0, 30));
    expect(reader.claimsFor(hitFor(inodeOf(path.join(vol, 'ca.crt')), path.join(vol, '..2026_12_02_10_00_00.1', 'ca.crt')))).toBeNull();
  });

  it('keeps the previous claims per inode across a kubelet rotation (the read was of the old token)', () => {
    writeGeneration('..2026_12_02_10_00_00.1', { token: signJwt(boundClaims({ jti: 'jti-old', podUid: POD_UID })) });
    const { reader } = setUp();
    const oldFile = path.join(vol, '..2026_12_02_10_00_00.1', 'token');
    const oldInode = inodeOf(oldFile);
    // rotate: a new generation, ..data swapped, the old dir deleted
    writeGeneration('..2026_12_02_10_48_00.2', { token: signJwt(boundClaims({ jti: 'jti-new', podUid: POD_UID })) });
    reader.refresh();
    fs.rmSync(path.join(vol, '..2026_12_02_10_00_00.1'), { recursive: true });
    expect(reader.claimsFor(hitFor(oldInode, oldFile))?.jti).toBe('jti-old');
    const newFile = path.join(vol, '..2026_12_02_10_48_00.2', 'token');
    expect(reader.claimsFor(hitFor(inodeOf(newFile), newFile))?.jti).toBe('jti-new');
    expect(reader.stats.decoded).toBe(2);
  });

  it('attributes nothing when the indexed name now holds another inode, and counts it', () => {
    writeGeneration('..2026_12_02_10_00_00.1', { token: 'placeholder' });
    const reader = new TokenClaimsReader();
    const file = path.join(vol, '..2026_12_02_10_00_00.1', 'token');
    fs.writeFileSync(file + '.new', signJwt(boundClaims({ jti: 'jti-swapped' })));
    fs.renameSync(file + '.new', file);
    expect(reader.claimsFor(hitFor('fd:00/1', file))).toBeNull();
    expect(reader.stats.inodeChanged).toBe(1);
  });

  it('refuses a symlink or a FIFO planted as the file, a file over the cap, and a token that is not a JWT: counted', () => {
    fs.writeFileSync(path.join(root, 'elsewhere-token'), signJwt(boundClaims()));
    const stamp = path.join(vol, '..2026_12_02_10_00_00.1');
    fs.mkdirSync(stamp);
    fs.symlinkSync(path.join(root, 'elsewhere-token'), path.join(stamp, 'link-token'));
    execFileSync('mkfifo', [path.join(stamp, 'fifo-token')]);
    fs.writeFileSync(path.join(stamp, 'big-token'), 'x'.repeat(10_000));
    fs.writeFileSync(path.join(stamp, 'token'), 'this is not a JWT');
    const reader = new TokenClaimsReader({ maxFileBytes: 8192 });
    expect(reader.claimsFor(hitFor('00:01/1', path.join(stamp, 'link-token')))).toBeNull();
    expect(reader.claimsFor(hitFor('00:01/2', path.join(stamp, 'fifo-token')))).toBeNull();
    expect(reader.claimsFor(hitFor(inodeOf(path.join(stamp, 'big-token')), path.join(stamp, 'big-token')))).toBeNull();
    expect(reader.claimsFor(hitFor(inodeOf(path.join(stamp, 'token')), path.join(stamp, 'token')))).toBeNull();
    expect(reader.stats).toMatchObject({ notRegular: 2, fileTooLarge: 1, decoded: 0 });
    expect(reader.stats.refused['not-jwt']).toBe(1);
  });

  it('a JWT file with a 1 MB payload is refused by size before it is read, and by the decoder when the file cap allows it', () => {
    const stamp = path.join(vol, '..2026_12_02_10_00_00.1');
    fs.mkdirSync(stamp);
    const file = path.join(stamp, 'token');
    fs.writeFileSync(file, signJwt({ ...boundClaims(), pad: 'x'.repeat(1024 * 1024) }));
    const small = new TokenClaimsReader();
    expect(small.claimsFor(hitFor(inodeOf(file), file))).toBeNull();
    expect(small.stats.fileTooLarge).toBe(1);
    const big = new TokenClaimsReader({ maxFileBytes: 4 * 1024 * 1024 });
    expect(big.claimsFor(hitFor(inodeOf(file), file))).toBeNull();
    expect(big.stats.refused['too-large']).toBe(1);
    // refused once per inode: a second read of the same file is not decoded again
    expect(big.claimsFor(hitFor(inodeOf(file), file))).toBeNull();
    expect(big.stats.refused['too-large']).toBe(1);
  });

  it('counts a read of a token it never saw (rotated away before any index)', () => {
    const reader = new TokenClaimsReader();
    expect(reader.claimsFor(hitFor('00:2a/99', null))).toBeNull();
    expect(reader.stats.unknownInode).toBe(1);
  });
});
