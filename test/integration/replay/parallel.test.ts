/**
 * `credwatch replay --jobs N` (issue 23) against `--jobs 1` on the same inputs, as a user runs it
 * (child processes; needs a build: npm run build:ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FIXTURE_DIR } from '../../unit/audit/fixtures';

const ROOT = path.join(__dirname, '../../..');
const built = existsSync(path.join(ROOT, 'dist/src/cli/commands/replay-worker.js'));
if (!built) console.warn('[skip] replay --jobs tests: no build (npm run build:ts)');

function credwatch(args: string[], input?: string | Buffer) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/credwatch'), ...args], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const BEHAVIOURS = path.join(ROOT, 'test/fixtures/behaviours');
const KUBE = path.join(ROOT, 'test/fixtures/kube/synthetic/t1552-007-scenarios.jsonl');
/**
 * Recordings of the lab whose behaviours do not overlap. The others (pod-*-token, api-bearer-curl, ...)
 * read the same token from the same container: as one sequential stream their hits merge into one
 * incident even under different node= names (the incident key has no host), so they are not
 * independent inputs and --jobs N rightly reports them apart.
 */
const INDEPENDENT = ['pod-cat-token', 'kubelet-curl', 'docker-sock-curl', 'kubectl-get-secrets', 'etcdctl-get-secrets', 'node-harvest-tokens', 'docker-tcp-curl', 'docker-ps-xargs-inspect'];

/**
 * Each recording as one node's log (its own node= name) rotated in its own directory: audit.log.2.gz,
 * audit.log.1 and audit.log, cut in the middle of an event so that its records span a rotation.
 * Returned newest first, as a shell glob of `audit.log*` lists them.
 */
function rotatedNodes(dir: string, names: string[]): string[][] {
  return names.map((name) => {
    const lines = readFileSync(path.join(BEHAVIOURS, `${name}.log`), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.replace(/^node=\S+ /, `node=${name} `));
    // Cuts just after an event's first record (a SYSCALL followed by a record of the same event).
    const cutAt = (from: number): number => {
      const i = lines.findIndex((l, k) => k >= from && /type=SYSCALL /.test(l) && k + 1 < lines.length && !/type=SYSCALL /.test(lines[k + 1]!));
      return i < 0 ? from : i + 1;
    };
    const a = cutAt(Math.floor(lines.length / 3));
    const b = Math.max(a, cutAt(Math.floor((2 * lines.length) / 3)));
    const d = path.join(dir, name);
    mkdirSync(d);
    const text = (from: number, to: number): string => lines.slice(from, to).join('\n') + '\n';
    writeFileSync(path.join(d, 'audit.log.2.gz'), gzipSync(text(0, a)));
    writeFileSync(path.join(d, 'audit.log.1'), text(a, b));
    writeFileSync(path.join(d, 'audit.log'), text(b, lines.length));
    return [path.join(d, 'audit.log'), path.join(d, 'audit.log.1'), path.join(d, 'audit.log.2.gz')];
  });
}

/** The counter lines of --stats that do not depend on timing (the budget line has the slowest event's ms). */
const countersOf = (stderr: string): string[] => stderr.split('\n').filter((l) => /^replay: (\d+ records|token trail)/.test(l));

describe.skipIf(!built)('credwatch replay --jobs N: findings', () => {
  it('gives the --jobs 1 findings and counters for rotated logs of several nodes plus a Kubernetes audit log', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-'));
    const args = ['replay', '--json', '--stats', KUBE, ...rotatedNodes(dir, INDEPENDENT).flat()];
    const one = credwatch([...args, '--jobs', '1']);
    expect(one.code, one.stderr).toBe(0);
    const lines = one.stdout.split('\n').filter(Boolean);
    // Host findings from every node, and Kubernetes ones.
    const hosts = new Set(lines.map((l) => (JSON.parse(l) as { host: string }).host));
    for (const n of INDEPENDENT) expect(hosts, n).toContain(n);
    expect(lines.length).toBeGreaterThan(INDEPENDENT.length);
    for (const jobs of ['2', '3']) {
      const many = credwatch([...args, '--jobs', jobs]);
      expect(many.code, many.stderr).toBe(0);
      expect(many.stdout).toBe(one.stdout);
      expect(countersOf(many.stderr)).toEqual(countersOf(one.stderr));
    }
    expect(countersOf(one.stderr)).toHaveLength(2);
  }, 180_000);

  it('reads stdin (-) as a stream of its own, in a worker: the same findings as --jobs 1', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-stdin-'));
    const [a, b] = rotatedNodes(dir, ['kubelet-curl', 'docker-sock-curl']);
    const stdin = readFileSync(path.join(BEHAVIOURS, 'etcdctl-get-secrets.log'));
    const args = ['replay', '--json', ...a!, '-', ...b!];
    const one = credwatch([...args, '--jobs', '1'], gzipSync(stdin));
    const two = credwatch([...args, '--jobs', '2'], gzipSync(stdin));
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    expect(two.stdout).toBe(one.stdout);
    expect(one.stdout).toContain('"host":"lab-node"'); // stdin's findings are there
  });
});

describe.skipIf(!built)('credwatch replay --jobs N: --events', () => {
  const streamAlone = (files: string[], input?: Buffer): string => {
    const r = credwatch(['replay', '--events', '--jobs', '1', ...files], input);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  it('prints each stream as --events of that stream alone prints it, streams in the order of their first file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-ev-'));
    const nodes = rotatedNodes(dir, ['pod-cat-token', 'kubelet-curl', 'docker-tcp-curl']);
    // Oldest first within a stream, as --events reads a stream in the order given; another log, with
    // parse errors and no node=, is a stream of its own.
    const rhel = path.join(FIXTURE_DIR, 'go-libaudit/auparse/testdata/audit-rhel7.log');
    const streams = [[...nodes[0]!].reverse(), [rhel], [...nodes[1]!].reverse(), [...nodes[2]!].reverse()];
    const args = [streams[0]![0]!, rhel, ...streams[2]!, streams[0]![1]!, streams[0]![2]!, ...streams[3]!];
    const two = credwatch(['replay', '--events', '--stats', '--jobs', '2', ...args]);
    expect(two.code, two.stderr).toBe(0);
    expect(two.stdout).toBe(streams.map((s) => streamAlone(s)).join(''));
    // The same events as one sequential run of everything, and the same counters summed.
    const one = credwatch(['replay', '--events', '--stats', '--jobs', '1', ...args]);
    expect(two.stdout.split('\n').sort()).toEqual(one.stdout.split('\n').sort());
    const counters = (s: string): string => /credwatch replay: (\d+ lines, .*)/.exec(s)![1]!;
    expect(counters(two.stderr)).toBe(counters(one.stderr));
    expect(two.stderr).toContain('parse error: '); // the parse failures of the rhel7 log, from its worker
  });

  it('takes stdin as its own stream, in its place among the others', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-ev-stdin-'));
    const [a] = rotatedNodes(dir, ['kubelet-curl']);
    const stdin = readFileSync(path.join(BEHAVIOURS, 'docker-sock-curl.log'));
    const oldestFirst = [...a!].reverse();
    const two = credwatch(['replay', '--events', '--jobs', '2', '-', ...oldestFirst], stdin);
    expect(two.code, two.stderr).toBe(0);
    expect(two.stdout).toBe(streamAlone(['-'], stdin) + streamAlone(oldestFirst));
  });
});

describe.skipIf(!built)('credwatch replay --jobs N: a worker that fails', () => {
  it('a truncated gzip in one stream is exit 1 with the file named, in both modes, as with --jobs 1', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-bad-'));
    const [a, b] = rotatedNodes(dir, ['kubelet-curl', 'docker-sock-curl']);
    const gz = gzipSync(readFileSync(path.join(BEHAVIOURS, 'etcdctl-get-secrets.log')));
    const bad = path.join(dir, 'broken.log.gz');
    writeFileSync(bad, gz.subarray(0, Math.floor(gz.length / 2)));
    for (const mode of [['--events'], ['--json']]) {
      const one = credwatch(['replay', ...mode, '--jobs', '1', ...a!, bad, ...b!]);
      const two = credwatch(['replay', ...mode, '--jobs', '2', ...a!, bad, ...b!]);
      // --jobs 1 too: every input is opened before the first is read, and the broken gzip used to fail
      // meanwhile with nobody listening (an uncaught exception, not this message).
      expect(one.code).toBe(1);
      expect(one.stderr).toContain(`reading ${bad}: unexpected end of file`);
      expect(two.code, two.stderr).toBe(1);
      expect(two.stderr).toContain(`reading ${bad}: unexpected end of file`);
      expect(two.stderr.split('\n').filter((l) => l.startsWith('credwatch:'))).toHaveLength(1);
    }
  }, 60_000);

  it('a missing file is exit 2 before any output, and --jobs takes 1 to 64 only', () => {
    const r = credwatch(['replay', '--events', '--jobs', '2', path.join(BEHAVIOURS, 'kubelet-curl.log'), '/nonexistent/audit.log']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('cannot read /nonexistent/audit.log: no such file');
    for (const bad of ['0', '65', '1.5', 'x']) expect(credwatch(['replay', '--jobs', bad, path.join(BEHAVIOURS, 'kubelet-curl.log')]).code).toBe(2);
  });
});

describe.skipIf(!built)('credwatch replay --jobs N: a worker that dies', () => {
  /** The pids whose parent is `pid` (from /proc). */
  const childrenOf = (pid: number): number[] =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const st = readFileSync(`/proc/${p}/stat`, 'utf8');
          return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === pid;
        } catch {
          return false;
        }
      })
      .map(Number);

  it('a worker killed mid-run is exit 1 with a message naming its files, and no other worker outlives the run', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-kill-'));
    // Two streams large enough to be still running when one worker is killed.
    const files = ['kubelet-curl', 'docker-sock-curl'].map((name) => {
      const one = readFileSync(path.join(BEHAVIOURS, `${name}.log`), 'utf8').replace(/^node=\S+ /gm, `node=${name} `);
      const file = path.join(dir, `${name}.log`);
      writeFileSync(file, one.repeat(400));
      return file;
    });
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/credwatch'), 'replay', '--json', '--jobs', '2', ...files], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let workers: number[] = [];
    for (let i = 0; i < 400 && workers.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 25));
      workers = childrenOf(child.pid!);
    }
    expect(workers).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 300)); // past their start-up, into the files
    process.kill(workers[0]!, 'SIGKILL');
    expect(await exited).toBe(1);
    expect(stderr).toMatch(/credwatch: replay worker for \S+\.log died \(SIGKILL\) before it finished/);
    for (const w of workers) expect(existsSync(`/proc/${w}`) && !readFileSync(`/proc/${w}/stat`, 'utf8').includes(') Z ')).toBe(false);
  }, 60_000);
});

describe.skipIf(!built)('credwatch replay --events --jobs N | head', () => {
  it('ends with 0 when the reader closes the pipe, as --jobs 1 does, with no message and no temporary file left', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-head-'));
    const files = ['kubelet-curl', 'docker-sock-curl'].map((name) => {
      const file = path.join(dir, `${name}.log`);
      writeFileSync(file, readFileSync(path.join(BEHAVIOURS, `${name}.log`), 'utf8').replace(/^node=\S+ /gm, `node=${name} `).repeat(300));
      return file;
    });
    const tmp = mkdtempSync(path.join(tmpdir(), 'cw-jobs-head-tmp-'));
    const cmd = `${process.execPath} ${path.join(ROOT, 'bin/credwatch')} replay --events --jobs 2 ${files.join(' ')} | head -1 >/dev/null; echo "\${PIPESTATUS[0]}"`;
    const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8', env: { ...process.env, TMPDIR: tmp } });
    expect(r.stdout.trim()).toBe('0');
    expect(r.stderr).toBe('');
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);
});

describe.skipIf(!built)('credwatch replay --events --jobs N: a file nothing could be read of', () => {
  it('lets every other stream finish, then fails as --jobs 1 does: exit 1, the files named in command-line order, the same events and counters', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-unreadable-'));
    const [a, b] = rotatedNodes(dir, ['kubelet-curl', 'docker-sock-curl']);
    // Two files of garbage, each a stream of its own; the first ends long before the stream after it.
    const bad1 = path.join(dir, 'garbage-1.log');
    const bad2 = path.join(dir, 'garbage-2.log');
    writeFileSync(bad1, 'not an audit record\n'.repeat(3));
    writeFileSync(bad2, 'nor this\n');
    const args = ['replay', '--events', '--stats', bad2, ...[...a!].reverse(), bad1, ...[...b!].reverse()];
    const one = credwatch([...args, '--jobs', '1']);
    expect(one.code).toBe(1);
    const message = (s: string): string[] => s.split('\n').filter((l) => l.startsWith('credwatch:'));
    expect(message(one.stderr)).toEqual([`credwatch: ${bad2}: nothing could be read (1 unparsable record, 0 parsed); ${bad1}: nothing could be read (3 unparsable records, 0 parsed)`]);
    for (const jobs of ['2', '4']) {
      const many = credwatch([...args, '--jobs', jobs]);
      expect(many.code, many.stderr).toBe(1);
      expect(message(many.stderr)).toEqual(message(one.stderr));
      // Every event of both nodes was printed, the stream after the first garbage file included.
      expect(many.stdout.split('\n').sort()).toEqual(one.stdout.split('\n').sort());
      expect(many.stdout).toContain('"node":"docker-sock-curl"');
      const counters = (s: string): string => /credwatch replay: (\d+ lines, .*)/.exec(s)![1]!;
      expect(counters(many.stderr)).toBe(counters(one.stderr));
    }
  }, 60_000);
});

describe.skipIf(!built)('credwatch replay --jobs N --stats: the native scanner line', () => {
  /** The native scanner's line, and in findings mode its repeat-collapse line; undefined when there is none. */
  const nativeLine = (s: string): string | undefined => {
    const lines = s.split('\n').filter((l) => / (native scanner|repeat collapse): /.test(l));
    return lines.length > 0 ? lines.join('\n') : undefined;
  };

  it('is the sum over the workers, in both modes: the line --jobs 1 prints for the same files', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-native-'));
    const files = rotatedNodes(dir, INDEPENDENT).flat();
    for (const mode of ['--events', '--json']) {
      const one = credwatch(['replay', mode, '--stats', '--jobs', '1', ...files]);
      expect(one.code, one.stderr).toBe(0);
      const line = nativeLine(one.stderr);
      if (line === undefined) {
        console.warn(`[skip] native scanner line (${mode}): the addon has no replay scanner here`);
        continue;
      }
      // Not a count that happens to be zero: the files give work to both sides of the scanner.
      expect(line).not.toMatch(/: 0 events/);
      const two = credwatch(['replay', mode, '--stats', '--jobs', '3', ...files]);
      expect(two.code, two.stderr).toBe(0);
      expect(nativeLine(two.stderr)).toBe(line);
      expect(two.stderr).toContain('--jobs: 8 streams on 3 worker processes'); // it was the workers' sum
    }
  }, 120_000);
});

describe.skipIf(!built || availableParallelism() < 2)('credwatch replay without --jobs: the size threshold', () => {
  it('replays a small input in this process, with the output and counters of --jobs 1 and of workers forced on it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-threshold-'));
    const files = [KUBE, ...rotatedNodes(dir, INDEPENDENT.slice(0, 4)).flat()];
    const run = (mode: string, extra: string[], env: NodeJS.ProcessEnv = {}) => {
      const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/credwatch'), 'replay', mode, '--stats', ...extra, ...(mode === '--events' ? files.slice(1) : files)], {
        encoding: 'utf8',
        env: { ...process.env, ...env },
        maxBuffer: 64 << 20,
      });
      expect(r.status, r.stderr).toBe(0);
      return r;
    };
    // The counter lines, without the one that says which way the run went and the timing line.
    const counters = (s: string): string[] => s.split('\n').filter((l) => l !== '' && !/--jobs: |over the \d+ ms budget/.test(l));
    for (const mode of ['--events', '--json']) {
      const dflt = run(mode, []);
      expect(dflt.stderr).toMatch(/--jobs: in this process: the input \(0\.\d MiB\) is under the 256\.0 MiB from which the default uses workers/);
      const one = run(mode, ['--jobs', '1']);
      const forced = run(mode, [], { CREDWATCH_REPLAY_JOBS_MIN_BYTES: '0' });
      expect(forced.stderr).toMatch(/--jobs: 4 streams on \d+ worker processes/);
      expect(dflt.stdout).toBe(one.stdout);
      expect(counters(dflt.stderr)).toEqual(counters(one.stderr));
      // Workers give the same findings; --events the same events, stream after stream.
      if (mode === '--json') expect(forced.stdout).toBe(one.stdout);
      else expect(forced.stdout.split('\n').sort()).toEqual(one.stdout.split('\n').sort());
      expect(counters(forced.stderr)).toEqual(counters(one.stderr));
    }
  }, 120_000);
});

describe.skipIf(!built)('credwatch replay of a pipe given by name (<(cat FILE))', () => {
  it('gives the findings and events of the file itself, with --jobs 1 and --jobs 2 (a pipe is read once: no head taken by a sniff)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-pipe-'));
    const [a, b] = rotatedNodes(dir, ['kubelet-curl', 'docker-sock-curl']).map((s) => s[1]!); // audit.log.1: plain text
    const viaBash = (args: string): string => {
      const r = spawnSync('bash', ['-c', `${process.execPath} ${path.join(ROOT, 'bin/credwatch')} ${args}`], { encoding: 'utf8', maxBuffer: 64 << 20 });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout;
    };
    for (const mode of ['--json', '--events']) {
      const files = viaBash(`replay ${mode} --jobs 1 ${a} ${b}`);
      expect(files).not.toBe('');
      for (const jobs of ['1', '2']) {
        const piped = viaBash(`replay ${mode} --jobs ${jobs} <(cat ${a}) ${b}`);
        if (mode === '--json') expect(piped, `${mode} --jobs ${jobs}`).toBe(files);
        else expect(piped.split('\n').sort(), `${mode} --jobs ${jobs}`).toEqual(files.split('\n').sort());
      }
    }
  }, 60_000);
});
