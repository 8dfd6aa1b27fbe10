/** The behaviour key's parts (src/detect/behaviour-key.ts): runtime exec targets and path normalisation. */
import { describe, expect, it } from 'vitest';
import { normalisePath, runtimeExecTarget } from '../../../src/detect/behaviour-key';

describe('runtimeExecTarget', () => {
  it.each([
    [['docker', 'exec', 'af54a767e601', 'cat', '/t'], 'af54a767e601'],
    [['/usr/bin/docker', 'exec', '-it', '-u', 'root', '-e', 'A=1', 'web', 'sh'], 'web'],
    [['nerdctl', 'container', 'exec', '--workdir', '/x', 'c1', 'env'], 'c1'],
    [['podman', 'exec', '--detach-keys', 'ctrl-x', 'p', 'ls'], 'p'],
  ])('%j acts on %s', (argv, target) => {
    expect(runtimeExecTarget(argv)).toBe(target);
  });

  it.each([[['docker', 'ps']], [['kubectl', 'exec', 'web-0', '--', 'env']], [['docker', 'exec']], [['sh', '-c', 'docker exec x env']]])('%j names no runtime exec target', (argv) => {
    expect(runtimeExecTarget(argv)).toBeNull();
  });
});

describe('normalisePath', () => {
  it('/var/run is /run, and the projected volume indirections name the same file', () => {
    expect(normalisePath('/var/run/secrets/kubernetes.io/serviceaccount/token')).toBe('/run/secrets/kubernetes.io/serviceaccount/token');
    expect(normalisePath('/run/secrets/kubernetes.io/serviceaccount/..data/token')).toBe('/run/secrets/kubernetes.io/serviceaccount/token');
    expect(normalisePath('/run/secrets/kubernetes.io/serviceaccount/..2026_12_02_07_00_00.123/token')).toBe('/run/secrets/kubernetes.io/serviceaccount/token');
    expect(normalisePath('/var/run/docker.sock')).toBe('/run/docker.sock');
    expect(normalisePath('/etc/kubernetes/admin.conf')).toBe('/etc/kubernetes/admin.conf');
  });
});
