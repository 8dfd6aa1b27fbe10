/**
 * Container id, runtime and Kubernetes pod uid from the text of /proc/<pid>/cgroup.
 *
 * Kernel audit carries no container id, so this is how a pid is tied to a container. Layouts seen in
 * the wild (v1 has one line per hierarchy, v2 a single `0::/path` line):
 *   docker (cgroupfs)        /docker/<64hex>
 *   docker (systemd)         /system.slice/docker-<64hex>.scope
 *   containerd (CRI)         /kubepods/burstable/pod<uid>/<64hex>
 *                            /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<64hex>.scope
 *   cri-o                    .../crio-<64hex>.scope, /kubepods/pod<uid>/crio-<64hex>
 *   podman                   /machine.slice/libpod-<64hex>.scope, /libpod_parent/libpod-<64hex>
 *   containerd systemd v1  /system.slice/containerd.service/kubepods-burstable-pod<uid_>.slice:cri-containerd:<64hex>
 *   docker --cgroup-parent   /kubepods/besteffort/pod<uid>/<64hex>  (what the lab uses)
 * A pod-level cgroup without a container id (the pause sandbox's parent) yields the pod uid alone.
 */

export interface CgroupIdentity {
  containerId: string;
  /** "docker" | "containerd" | "cri-o" | "podman" | "unknown" */
  runtime: string;
  podUid: string | null;
}

const POD_UID = /(?:^|\/)(?:kubepods[^/]*-)?pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?(?=\/|$|:)/;

interface ScopePattern {
  re: RegExp;
  runtime: string;
}

// Ordered: the most specific prefixes first. Each captures the 64-hex id.
const SCOPES: ScopePattern[] = [
  { re: /(?:^|\/)cri-containerd-([0-9a-f]{64})(?:\.scope)?(?=\/|$)/, runtime: 'containerd' },
  // containerd with systemd_cgroup on cgroup v1 leaves the raw cgroupsPath "slice:prefix:id" in the path.
  { re: /\.slice:cri-containerd:([0-9a-f]{64})$/, runtime: 'containerd' },
  { re: /\.slice:crio:([0-9a-f]{64})$/, runtime: 'cri-o' },
  { re: /(?:^|\/)crio-(?:conmon-)?([0-9a-f]{64})(?:\.scope)?(?=\/|$)/, runtime: 'cri-o' },
  { re: /(?:^|\/)libpod-(?:conmon-)?([0-9a-f]{64})(?:\.scope)?(?=\/|$)/, runtime: 'podman' },
  { re: /(?:^|\/)docker-([0-9a-f]{64})\.scope(?=\/|$)/, runtime: 'docker' },
  { re: /(?:^|\/)docker\/([0-9a-f]{64})(?=\/|$)/, runtime: 'docker' },
  { re: /(?:^|\/)containerd\/([0-9a-f]{64})(?=\/|$)/, runtime: 'containerd' },
];
// A bare 64-hex leaf under a pod cgroup: runtime not named by the path.
const BARE_ID = /\/([0-9a-f]{64})(?=\/|$)/;

/** Parses one cgroup path (the part after the second colon). */
export function parseCgroupPath(path: string): CgroupIdentity | null {
  const pod = POD_UID.exec(path);
  const podUid = pod?.[1] ? pod[1].replace(/_/g, '-') : null;
  for (const s of SCOPES) {
    const m = s.re.exec(path);
    if (m?.[1]) return { containerId: m[1], runtime: s.runtime, podUid };
  }
  if (podUid) {
    const bare = BARE_ID.exec(path);
    // Under kubepods the runtime is not in the path (cgroupfs driver); "unknown" is honest.
    if (bare?.[1]) return { containerId: bare[1], runtime: 'unknown', podUid };
  }
  return null;
}

/**
 * Parses the whole /proc/<pid>/cgroup text. v1 has many hierarchies that normally agree; prefer the
 * line that yields a container id and a pod uid, then any container id. Returns null for host processes.
 */
export function parseProcCgroup(text: string): CgroupIdentity | null {
  let best: CgroupIdentity | null = null;
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    // hierarchy-id:controllers:path — the path itself may contain ':' (rare), so split twice only.
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    if (second < 0) continue;
    const id = parseCgroupPath(line.slice(second + 1));
    if (!id) continue;
    if (id.podUid) return id;
    best ??= id;
  }
  return best;
}

/** Pod uid from a cgroup text even when no container id is present (pod-level cgroups). */
export function podUidFromCgroup(text: string): string | null {
  const m = POD_UID.exec(text.replace(/\n/g, '/'));
  return m?.[1] ? m[1].replace(/_/g, '-') : null;
}
