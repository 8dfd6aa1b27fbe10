/** The behaviour key's parts (src/detect/behaviour-key.ts): runtime exec targets, path normalisation, host actors. */
import { describe, expect, it } from 'vitest';
import { behaviourKey, HostActors, MAX_OBJECT_CHARS, normalisePath, runtimeExecTarget } from '../../../src/detect/behaviour-key';
import { WINDOW_MARGIN } from '../../../src/detect/bound';
import { CMDLINE_END_CHARS, type EventView } from '../../../src/enrich/event-view';

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

describe('host actors: one tree stays one actor while the table knows more or less of it', () => {
  interface Proc {
    pid: number;
    startTime: number | null;
    exe: string;
  }
  const proc = (pid: number, startTime: number | null, exe = '/usr/bin/bash'): Proc => ({ pid, startTime, exe });
  /** What behaviourKey reads of an event: a connect to the docker socket by `pid` with these ancestors. */
  function connect(pid: number, parents: Proc[], startTime: number | null = null): EventView {
    return {
      ev: { process: { ses: null, ppid: parents[0]?.pid ?? null } },
      pid,
      startTime,
      parents,
      kind: 'connect',
      sockaddr: { family: 'unix', path: '/var/run/docker.sock', addr: null, port: null },
      paths: [],
      argv: null,
      container: null,
      cmdline: null,
      exeBase: 'loadgen',
    } as unknown as EventView;
  }
  const systemd = proc(1, 1, '/usr/lib/systemd/systemd');
  const shell = proc(300, 3);
  const bench = proc(400, 5, '/usr/bin/node');
  const loop = proc(500, 7, '/opt/loadgen');

  it('a child whose upper ancestors were evicted gets the actor its siblings got', () => {
    const actors = new HostActors();
    expect(behaviourKey(connect(1001, [loop, bench, shell, systemd]), actors).actor).toBe('host:300:3');
    // the storm pushed the shell out of the process table: the tree now ends at the bench
    expect(behaviourKey(connect(1002, [loop, bench]), actors).actor).toBe('host:300:3');
    expect(behaviourKey(connect(1002, [loop, bench])).actor).toBe('host:400:5'); // (what it was without)
    // a grandchild (the child forked again) inherits through the nearest ancestor known
    expect(behaviourKey(connect(2001, [proc(1002, 9, '/opt/loadgen'), loop]), actors).actor).toBe('host:300:3');
    expect(actors.size).toBe(2);
  });

  it('children of a service manager are each their own actor, and replay (no start times) keeps nothing', () => {
    const actors = new HostActors();
    expect(behaviourKey(connect(600, [systemd]), actors).actor).toBe('host:600:');
    expect(behaviourKey(connect(601, [systemd]), actors).actor).toBe('host:601:');
    const replayLoop = proc(500, null, '/opt/loadgen');
    expect(behaviourKey(connect(1001, [replayLoop, proc(400, null), proc(300, null)]), actors).actor).toBe('host:300:');
    expect(behaviourKey(connect(1002, [replayLoop, proc(400, null)]), actors).actor).toBe('host:400:');
    expect(actors.size).toBe(0);
  });

  it('a process reparented mid-run keeps the actor it was first seen with, and so do its children', () => {
    const actors = new HostActors();
    // child 1002 of the loop, seen while its tree was known
    expect(behaviourKey(connect(1002, [loop, bench, shell, systemd], 13), actors).actor).toBe('host:300:3');
    // the loop died: 1002 was reparented to systemd, its ancestry now ends at a service manager
    expect(behaviourKey(connect(1002, [systemd], 13)).actor).toBe('host:1002:'); // (what it was without)
    expect(behaviourKey(connect(1002, [systemd], 13), actors).actor).toBe('host:300:3');
    // a child it forks after the reparenting is in the same tree
    expect(behaviourKey(connect(3001, [proc(1002, 13, '/opt/loadgen'), systemd], 17), actors).actor).toBe('host:300:3');
    // a new process that reuses pid 1002 (another start time) is not that process
    expect(behaviourKey(connect(1002, [systemd], 99), actors).actor).toBe('host:1002:');
    expect(actors.processes).toBe(3);
  });

  it('is bounded', () => {
    const actors = new HostActors(3);
    for (let i = 0; i < 10; i++) behaviourKey(connect(5000 + i, [proc(700 + i, 11), shell], 20 + i), actors);
    expect(actors.size).toBe(3);
    expect(actors.processes).toBe(3);
  });
});

describe('the object of a hostile command line (bench: bin/credwatch replay of 1.2 MB argvs)', () => {
  /** An exec event: behaviourKey reads argv and the rule command line. */
  function exec(argv: string[]): EventView {
    return {
      ev: { process: { ses: null, ppid: 300 } },
      pid: 4242,
      parents: [],
      kind: 'exec',
      sockaddr: null,
      paths: [],
      argv,
      container: null,
      cmdline: argv.join(' '),
      exeBase: 'kubectl',
    } as unknown as EventView;
  }

  it('a megabyte command line gives a short key, and a secret cut by the key window is still redacted', () => {
    const secret = 'password=' + 'S'.repeat(400);
    const argv = ['kubectl', 'get', 'x'.repeat(225), secret, ...Array.from({ length: 9 }, () => 'A'.repeat(120_000))];
    const key = behaviourKey(exec(argv));
    expect(key.object.length).toBeLessThanOrEqual('cmd:'.length + 256);
    expect(key.object).not.toContain('SSSS');
  });

  it('the key window lies in the head the bounded command line keeps whole (so it is the whole line\'s window)', () => {
    expect(MAX_OBJECT_CHARS + WINDOW_MARGIN).toBeLessThanOrEqual(CMDLINE_END_CHARS);
    const head = ['kubectl', 'get', 'secrets', 'y'.repeat(300)];
    const a = behaviourKey(exec([...head, 'A'.repeat(200_000)]));
    expect(a.object.startsWith('cmd:kubectl get secrets yyy')).toBe(true);
    expect(a.object).toBe(behaviourKey(exec([...head, 'B'.repeat(300_000)])).object);
  });

  it('a socket named in the first kilobytes is the object even with megabytes after it', () => {
    const key = behaviourKey(exec(['curl', '--unix-socket', '/var/run/docker.sock', 'http://x/containers/json', 'B'.repeat(1_000_000)]));
    expect(key.object).toBe('unix:/run/docker.sock');
  });
});
