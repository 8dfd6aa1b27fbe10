/**
 * The agent's V8 heap flags take effect only at process start, so every way of starting it sets them
 * itself: the bin/credwatch shebang, the Debian wrapper, the systemd unit, the image (Dockerfile and
 * the offline build) and the DaemonSet. They are measured together (bench/live-load.js reads the
 * shebang and the unit), and one launch path left on an older value would run a differently sized agent
 * than the one benchmarked.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '..', '..', '..');
const read = (f: string): string => fs.readFileSync(path.join(ROOT, f), 'utf8');

/** Every `--max-semi-space-size=N` a file sets (its comments are not flags: only `--...=N` forms count). */
function semiSpaceSizes(text: string): string[] {
  return [...text.matchAll(/--max-semi-space-size=(\d+)/g)].map((m) => m[1]!);
}

const LAUNCHERS = ['bin/credwatch', 'packaging/debian/credwatch.sh', 'systemd/credwatch.service', 'Dockerfile', 'scripts/build-image-offline.sh', 'deploy/kubernetes/credwatch.yaml'];

describe('V8 heap flags on every launch path', () => {
  it('each launcher sets the same young-generation size as bin/credwatch', () => {
    const want = semiSpaceSizes(read('bin/credwatch').split('\n', 1)[0]!);
    expect(want).toHaveLength(1);
    for (const f of LAUNCHERS) expect(new Set(semiSpaceSizes(read(f))), f).toEqual(new Set(want));
  });

  it('the Debian wrapper starts node with exactly the shebang\'s flags', () => {
    const shebang = /^#!\/usr\/bin\/env -S node (.*)$/.exec(read('bin/credwatch').split('\n', 1)[0]!)?.[1];
    const wrapper = /exec \S+\/node (.*?) \S+\/bin\/credwatch "\$@"/.exec(read('packaging/debian/credwatch.sh'))?.[1];
    expect(shebang).toBeDefined();
    expect(wrapper).toBe(shebang);
  });
});
