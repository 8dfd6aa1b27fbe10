import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { firstNode, groupStreams, rotationName } from '../../../src/cli/commands/replay-streams';

const files = (names: string[], nodes: (string | null)[] = []) => names.map((file, i) => ({ file, node: nodes[i] ?? null }));
const grouped = (names: string[], nodes?: (string | null)[]) => groupStreams(files(names, nodes)).map((s) => s.map((i) => names[i]));

describe('replay --jobs: which inputs are one stream', () => {
  it('a log and its rotations (numbered, dated, gzipped) share a rotation name; other names and directories do not', () => {
    const base = rotationName('/var/log/audit/audit.log');
    for (const r of ['audit.log.1', 'audit.log.2.gz', 'audit.log-20261201', 'audit.log-2026120113.gz', 'audit.log.GZ']) expect(rotationName(`/var/log/audit/${r}`)).toBe(base);
    expect(rotationName('/var/log/audit/other.log')).not.toBe(base);
    expect(rotationName('/srv/node-b/audit.log')).not.toBe(base);
    // Relative names are compared by their directory on disk.
    expect(rotationName('a/audit.log.1')).toBe(rotationName(path.resolve('a') + '/audit.log'));
  });

  it('groups rotations into one stream, oldest-first order as given, streams in order of their first file', () => {
    expect(grouped(['/b/audit.log', '/a/audit.log.1', '/b/audit.log.1', '/a/audit.log'])).toEqual([
      ['/b/audit.log', '/b/audit.log.1'],
      ['/a/audit.log.1', '/a/audit.log'],
    ]);
  });

  it('files whose first record names the same node are one stream whatever their names, and joining is transitive', () => {
    expect(grouped(['/x/day1.log', '/y/day2.log', '/z/other.log'], ['n1', 'n1', 'n2'])).toEqual([['/x/day1.log', '/y/day2.log'], ['/z/other.log']]);
    // day1 and b/audit.log by node, b/audit.log and b/audit.log.1 by name: all one stream.
    expect(grouped(['/x/day1.log', '/c/c.log', '/b/audit.log.1', '/b/audit.log'], ['n1', null, null, 'n1'])).toEqual([['/x/day1.log', '/b/audit.log.1', '/b/audit.log'], ['/c/c.log']]);
  });

  it('files without node= are grouped by name only, and stdin is a stream of its own', () => {
    expect(grouped(['/a/one.log', '-', '/a/two.log'])).toEqual([['/a/one.log'], ['-'], ['/a/two.log']]);
  });

  it('reads node= from the first line of the head only', () => {
    expect(firstNode('node=web-1 type=SYSCALL msg=audit(1.0:1): x\nnode=other type=PATH msg=audit(1.0:1):')).toBe('web-1');
    expect(firstNode('type=SYSCALL msg=audit(1.0:1): x\nnode=other type=PATH msg=audit(1.0:1):')).toBeNull();
    expect(firstNode('{"kind":"Event"}')).toBeNull();
  });
});
