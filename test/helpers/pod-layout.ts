/**
 * A Kubernetes pod's service-account volume, reproduced without Kubernetes:
 *
 *   /var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~projected/kube-api-access-<5>/   (a tmpfs)
 *     ..2026_11_22_13_40_12.<rand>/{token,ca.crt,namespace}
 *     ..data -> ..2026_11_22_13_40_12.<rand>
 *     token -> ..data/token, ca.crt -> ..data/ca.crt, namespace -> ..data/namespace
 *
 * (the kubelet's atomic-writer layout), holding a JWT-shaped fake token, bind-mounted read-only into
 * a container at /run/secrets/kubernetes.io/serviceaccount, the container in the pod's cgroup
 * (`--cgroup-parent /kubepods/besteffort/pod<uid>`, or the kubepods slice under the systemd driver). cleanup() removes the container, unmounts and
 * removes what was created, and is safe to call after a partial setup or twice.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LAB_IMAGE, containerPid, removeContainer, runContainer } from './docker-lab';

export const SA_DIR_IN_POD = '/run/secrets/kubernetes.io/serviceaccount';

export interface PodVolume {
  podUid: string;
  /** The kube-api-access-<5> directory (the tmpfs mount point). */
  volumeDir: string;
  token: string;
  cleanup(): void;
}

export interface Pod extends PodVolume {
  containerId: string;
  /** pid of the container's init (sleep) on the host. */
  containerPid: number;
}

function b64url(s: string | Buffer): string {
  return Buffer.from(s).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A JWT-shaped token (header and claims like a bound service-account token, random signature). */
export function fakeServiceAccountToken(podUid: string, namespace = 'default'): string {
  const header = b64url(JSON.stringify({ alg: 'RS256', kid: 'credwatch-lab-key' }));
  const claims = b64url(
    JSON.stringify({
      aud: ['https://kubernetes.default.svc'],
      exp: 1_795_000_000,
      iss: 'https://kubernetes.default.svc.cluster.local',
      'kubernetes.io': { namespace, pod: { name: 'lab-pod', uid: podUid }, serviceaccount: { name: 'default' } },
      sub: `system:serviceaccount:${namespace}:default`,
    }),
  );
  return `${header}.${claims}.${b64url(randomBytes(256))}`;
}

const LETTERS = 'bcdfghjklmnpqrstvwxz2456789';
function suffix(n: number): string {
  return [...randomBytes(n)].map((b) => LETTERS[b % LETTERS.length]).join('');
}

export interface PodVolumeOptions {
  podsDir?: string;
  podUid?: string;
  /**
   * A shell to run mount/umount under, standing in for the kubelet (which execs them for every pod
   * volume, so on a node their parent is the kubelet). Default: run them directly.
   */
  mountParent?: string;
  /** The token to write (a real signed JWT, say); default a JWT-shaped fake naming the pod. */
  token?: (podUid: string) => string;
  /** tmpfs size of the volume (default 1m; a hostile token of a megabyte or more needs more). */
  tmpfsSize?: string;
}

/** mount/umount ARGS, directly or as a child of `parent` (a shell); throws with stderr on failure. */
function runMountTool(tool: 'mount' | 'umount', args: string[], parent: string | undefined, check: boolean): void {
  // The arguments go through the environment so that, as with the real kubelet, the parent's own
  // command line holds no pod path (they have no spaces: word splitting rebuilds them). "; exit"
  // keeps the shell from exec'ing the tool in its own place: the tool must be its child.
  const r = parent
    ? spawnSync(parent, ['-c', `${tool} $CW_MOUNT_ARGS; exit $?`], { encoding: 'utf8', env: { ...process.env, CW_MOUNT_ARGS: args.join(' ') } })
    : spawnSync(tool, args, { encoding: 'utf8' });
  if (check && r.status !== 0) throw new Error(`${tool} ${args.join(' ')}: ${r.stderr?.trim() || r.error?.message}`);
}

/** Creates the tmpfs token volume with the atomic-writer layout. Needs root (mount). */
export function createPodVolume(opts: PodVolumeOptions = {}): PodVolume {
  const podsDir = opts.podsDir ?? '/var/lib/kubelet/pods';
  const podUid = opts.podUid ?? randomUUID();
  const createdRoots: string[] = [];
  for (let d = podsDir; !fs.existsSync(d); d = path.dirname(d)) createdRoots.unshift(d);
  const podDir = path.join(podsDir, podUid);
  const volumeDir = path.join(podDir, 'volumes', 'kubernetes.io~projected', `kube-api-access-${suffix(5)}`);
  const token = opts.token ? opts.token(podUid) : fakeServiceAccountToken(podUid);
  let mounted = false;
  const cleanup = (): void => {
    if (mounted) {
      runMountTool('umount', [volumeDir], opts.mountParent, false);
      mounted = false;
    }
    fs.rmSync(podDir, { recursive: true, force: true });
    // Remove only the parents we created, deepest first, and only when empty.
    for (const d of [...createdRoots].reverse()) {
      try {
        fs.rmdirSync(d);
      } catch {
        // not empty (another pod), or already gone
      }
    }
  };
  try {
    fs.mkdirSync(volumeDir, { recursive: true });
    runMountTool('mount', ['-t', 'tmpfs', '-o', `size=${opts.tmpfsSize ?? '1m'},mode=0755`, 'tmpfs', volumeDir], opts.mountParent, true);
    mounted = true;
    const stamp = `..2026_11_22_13_40_12.${Math.floor(Math.random() * 1e10)}`;
    fs.mkdirSync(path.join(volumeDir, stamp));
    fs.writeFileSync(path.join(volumeDir, stamp, 'token'), token, { mode: 0o644 });
    fs.writeFileSync(path.join(volumeDir, stamp, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIBlab\n-----END CERTIFICATE-----\n');
    fs.writeFileSync(path.join(volumeDir, stamp, 'namespace'), 'default');
    fs.symlinkSync(stamp, path.join(volumeDir, '..data'));
    for (const f of ['token', 'ca.crt', 'namespace']) fs.symlinkSync(`..data/${f}`, path.join(volumeDir, f));
  } catch (err) {
    cleanup();
    throw err;
  }
  return { podUid, volumeDir, token, cleanup };
}

/**
 * The pod's cgroup parent as the kubelet would name it for the daemon's cgroup driver: a path
 * (/kubepods/besteffort/pod<uid>) with cgroupfs, a slice (kubepods-besteffort-pod<uid_>.slice,
 * which systemd nests under kubepods.slice/kubepods-besteffort.slice) with systemd — dockerd
 * refuses a path parent under the systemd driver (the default on many cgroup v2 hosts).
 */
export function podCgroupParent(podUid: string): string {
  const r = spawnSync('docker', ['info', '--format', '{{.CgroupDriver}}'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status === 0 && r.stdout.trim() === 'systemd') return `kubepods-besteffort-pod${podUid.replace(/-/g, '_')}.slice`;
  return `/kubepods/besteffort/pod${podUid}`;
}

/**
 * Starts the "pod": a container with the token volume at /run/secrets/kubernetes.io/serviceaccount,
 * in the kubepods cgroup of the pod uid, no network. `extraArgs` go before the image (e.g. more -v).
 */
export function startPod(opts: { podsDir?: string; image?: string; extraArgs?: string[]; mountParent?: string; token?: PodVolumeOptions['token']; tmpfsSize?: string } = {}): Pod {
  const vol = createPodVolume({ podsDir: opts.podsDir, mountParent: opts.mountParent, token: opts.token, tmpfsSize: opts.tmpfsSize });
  let containerId = '';
  const cleanup = (): void => {
    if (containerId) removeContainer(containerId);
    containerId = '';
    vol.cleanup();
  };
  try {
    containerId = runContainer([
      '--network', 'none',
      '--cgroup-parent', podCgroupParent(vol.podUid),
      '-v', `${vol.volumeDir}:${SA_DIR_IN_POD}:ro`,
      ...(opts.extraArgs ?? []),
      opts.image ?? LAB_IMAGE,
      '/bin/sleep', '3600',
    ]);
    return { ...vol, containerId, containerPid: containerPid(containerId), cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}
