/**
 * The lab's Docker: make sure a daemon answers, that the `cwbusybox:lab` image exists, and run and
 * remove containers. Shared by the detection live tests and the e2e suite.
 *
 * If `docker info` fails, a private dockerd is started (no iptables, no bridge; data under /tmp) on
 * /var/run/docker.sock and tcp://127.0.0.1:2375, and stopped by its pid on teardown. A dockerd that
 * was already running is never touched.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const LAB_IMAGE = 'cwbusybox:lab';
const BUSYBOX_APPLETS = ['sh', 'cat', 'ls', 'sleep', 'head', 'base64', 'tar', 'env', 'echo', 'true'];

export class DockerError extends Error {}

/** Runs the docker CLI; returns trimmed stdout, throws DockerError with stderr on failure. */
export function docker(args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync('docker', args, { encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 60_000 });
  if (r.error) throw new DockerError(`docker ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new DockerError(`docker ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/**
 * The docker CLI without blocking the event loop: tests that read the audit stream in the same
 * process must keep it free, or the reader's queue to JavaScript fills while spawnSync waits.
 */
export function dockerAsync(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('docker', args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new DockerError(`docker ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

export function dockerUsable(): boolean {
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0;
}

export function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

export interface DockerLab {
  /** pid of the dockerd we started, null when one was already running. */
  startedPid: number | null;
  stop(): Promise<void>;
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return cond();
}

/** Mount points at or below `dir` (from /proc/self/mountinfo; octal escapes decoded), deepest first. */
function mountsUnder(dir: string): string[] {
  const points = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  return points.filter((p) => p === dir || p.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}

/** Makes sure a Docker daemon answers; starts a private one when none does. */
export async function ensureDocker(): Promise<DockerLab> {
  if (dockerUsable()) return { startedPid: null, stop: async () => {} };
  if (!which('dockerd')) throw new DockerError('no docker daemon answers and dockerd is not installed');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-dockerd-'));
  const child: ChildProcess = spawn(
    'dockerd',
    [
      '--iptables=false',
      '--bridge=none',
      '-H', 'unix:///var/run/docker.sock',
      '-H', 'tcp://127.0.0.1:2375',
      '--data-root', path.join(root, 'data'),
      '--exec-root', path.join(root, 'exec'),
      '--pidfile', path.join(root, 'dockerd.pid'),
    ],
    { stdio: ['ignore', fs.openSync(path.join(root, 'dockerd.log'), 'a'), fs.openSync(path.join(root, 'dockerd.log'), 'a')] },
  );
  const pid = child.pid ?? null;
  if (!(await waitFor(dockerUsable, 30_000))) {
    if (pid) process.kill(pid, 'SIGTERM');
    throw new DockerError(`dockerd did not come up; see ${path.join(root, 'dockerd.log')}`);
  }
  return {
    startedPid: pid,
    stop: async () => {
      if (pid === null) return;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        return;
      }
      await waitFor(() => child.exitCode !== null || child.signalCode !== null, 20_000);
      // After a container with --network=host, dockerd leaves its handle on the host network
      // namespace (exec/netns/default, an nsfs bind mount) behind; unmount leftovers before removing.
      for (const m of mountsUnder(root)) spawnSync('umount', ['-l', m], { encoding: 'utf8' });
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Makes sure `cwbusybox:lab` exists: a rootfs holding /bin/busybox (static) and applet links. */
export function ensureLabImage(image = LAB_IMAGE): void {
  if (spawnSync('docker', ['image', 'inspect', image], { encoding: 'utf8' }).status === 0) return;
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
  if (!busybox) throw new DockerError('busybox is not installed (apt-get install busybox-static)');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-rootfs-'));
  try {
    fs.mkdirSync(path.join(root, 'bin'));
    fs.copyFileSync(busybox, path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    for (const a of BUSYBOX_APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    const tar = spawnSync('sh', ['-c', `tar -C '${root}' -c . | docker import - '${image}'`], { encoding: 'utf8' });
    if (tar.status !== 0) throw new DockerError(`docker import: ${tar.stderr.trim()}`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** `docker run -d ARGS...`; returns the full container id. */
export function runContainer(args: string[]): string {
  return docker(['run', '-d', ...args]);
}

export function containerPid(id: string): number {
  return Number(docker(['inspect', '-f', '{{.State.Pid}}', id]));
}

/** Removes a container; never throws (teardown). */
export function removeContainer(id: string): void {
  spawnSync('docker', ['rm', '-f', id], { encoding: 'utf8', timeout: 30_000 });
}
