/**
 * Where a pod's token is at home: the addresses its node and its pod call the API server from, as the
 * agent on that node sees them, attached to a read of the token (token.home). With them, the trail and
 * the collector's fleet join tell a request made away from home from the read alone, without the
 * kubelet's own requests in the audit stream (src/detect/kube/token-home.ts still learns from those).
 *
 * How: the local addresses of a network namespace are in /proc/<pid>/net/fib_trie (IPv4: the leaves
 * marked "/32 host LOCAL") and /proc/<pid>/net/if_inet6 (IPv6, global scope), for any pid in that
 * namespace. The node's: pid 1 (the agent runs with the host's pid namespace). A pod's: a process of
 * the pod, found in the pod's cgroup (kubepods.../pod<uid>/<container>/cgroup.procs), and checked to
 * still be in that pod (/proc/<pid>/cgroup) before its namespace is read, so a reused pid never lends
 * another namespace's addresses. The reader itself is tried first when it runs in the pod (it usually
 * exited by then: `cat token` is gone in a millisecond). Loopback and link-local are left out: no
 * request reaches the API server from them.
 *
 * Cost: two small /proc reads per namespace, cached per pod (and for the node) for `cacheMs`, bounded
 * in pods cached, bytes read per file and addresses kept per list (the rest counted in `cut`).
 *
 * An attacker in the pod: with CAP_NET_ADMIN (some pods have it) it can add any address to its own
 * namespace before it reads the token, e.g. the address it will use the token from. That widens only
 * its own pod's home: requests with that pod's token from those addresses are then not "away" (the
 * read, and the jti join of the trail, are still found). It cannot widen another pod's home or the
 * node's (that takes the host's namespace, i.e. the node), and it cannot grow the list past `maxAddrs`.
 * Removing its real address only makes its own legitimate requests look away (more findings, not fewer).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatIPv6 } from '../audit/sockaddr';
import type { Finding, FindingTokenHome } from '../model/finding';
import { podUidFromCgroup } from './cgroup';
import { findKubepodsEntry } from './container-pods';

const LOCAL_V4 = /^\s*\/32 host LOCAL\s*$/;
const LEAF = /^\s*\|-- (\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})\s*$/;
const INET6 = /^([0-9a-f]{32}) [0-9a-f]+ [0-9a-f]+ ([0-9a-f]{2}) [0-9a-f]+ +\S+$/;

/** The local IPv4 addresses in a fib_trie text, loopback left out, each once, in order. */
export function parseFibTrieLocal(text: string): string[] {
  const out = new Set<string>();
  let leaf: string | null = null;
  for (const line of text.split('\n')) {
    const m = LEAF.exec(line);
    if (m) leaf = m[1]!;
    else if (leaf !== null && LOCAL_V4.test(line) && !leaf.startsWith('127.')) out.add(leaf);
  }
  return [...out];
}

/** The global-scope IPv6 addresses in an if_inet6 text (loopback and link-local have another scope). */
export function parseIfInet6(text: string): string[] {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const m = INET6.exec(line.trim());
    if (!m || m[2] !== '00') continue;
    // RFC 5952 text, the API server's spelling (Go's net.IP.String()), as the audit decoder writes it.
    out.add(formatIPv6(Buffer.from(m[1]!, 'hex'), 0));
  }
  return [...out];
}

export interface NetnsHomesOptions {
  procRoot?: string;
  cgroupRoot?: string;
  /** Addresses kept per list (node, pod). Default 32. */
  maxAddrs?: number;
  /** Bytes read of one /proc net file at most. Default 1 MiB. */
  maxFileBytes?: number;
  /** How long a namespace's addresses are reused. Default 60 s; a pod not found: 5 s. */
  cacheMs?: number;
  missCacheMs?: number;
  /** Pods cached at most. Default 4096. */
  maxPods?: number;
  now?: () => number;
}

export interface NetnsHomesStats {
  /** Pod namespaces read. */
  podNetnsRead: number;
  /** Pods with no live process we could read (their home carries no pod list). */
  podNotFound: number;
  /** /proc net files larger than maxFileBytes (read up to it). */
  fileTruncated: number;
  /** Addresses not listed (over maxAddrs). */
  addressesCut: number;
}

interface Cached {
  addrs: string[] | null;
  cut: number;
  at: number;
}

export class NetnsHomes {
  readonly stats: NetnsHomesStats = { podNetnsRead: 0, podNotFound: 0, fileTruncated: 0, addressesCut: 0 };
  private readonly procRoot: string;
  private readonly cgroupRoot: string;
  private readonly maxAddrs: number;
  private readonly maxFileBytes: number;
  private readonly cacheMs: number;
  private readonly missCacheMs: number;
  private readonly maxPods: number;
  private readonly now: () => number;
  private node: Cached | null = null;
  private readonly pods = new Map<string, Cached>();

  constructor(opts: NetnsHomesOptions = {}) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.cgroupRoot = opts.cgroupRoot ?? '/sys/fs/cgroup';
    this.maxAddrs = opts.maxAddrs ?? 32;
    this.maxFileBytes = opts.maxFileBytes ?? 1024 * 1024;
    this.cacheMs = opts.cacheMs ?? 60_000;
    this.missCacheMs = opts.missCacheMs ?? 5_000;
    this.maxPods = opts.maxPods ?? 4096;
    this.now = opts.now ?? Date.now;
  }

  /** The home of pod `podUid` on this node; `readerPid`: the reading process, when it runs in that pod. */
  homeOf(podUid: string, readerPid: number | null): FindingTokenHome {
    const now = this.now();
    if (this.node === null || now - this.node.at >= this.cacheMs) this.node = { ...this.addressesOf(1), at: now };
    let pod = this.pods.get(podUid);
    if (!pod || now - pod.at >= (pod.addrs === null ? this.missCacheMs : this.cacheMs)) {
      const pid = this.podPid(podUid, readerPid);
      pod = pid === null ? { addrs: null, cut: 0, at: now } : { ...this.addressesOf(pid), at: now };
      if (pod.addrs === null) this.stats.podNotFound++;
      else this.stats.podNetnsRead++;
      this.pods.delete(podUid);
      this.pods.set(podUid, pod);
      if (this.pods.size > this.maxPods) this.pods.delete(this.pods.keys().next().value as string);
    }
    return { node: this.node.addrs ?? [], pod: pod.addrs, cut: this.node.cut + pod.cut };
  }

  /**
   * The findings, those about a read of a pod's token file given that pod's home. A new token object:
   * an incident's emitted revisions share the grouper's, which must not change under them.
   */
  attach(findings: Finding[]): Finding[] {
    return findings.map((f) => {
      const t = f.token;
      if (!t || t.from !== 'file' || t.pod_uid === null || t.home) return f;
      const readerPid = f.container?.pod_uid === t.pod_uid ? (f.process?.pid ?? null) : null;
      return { ...f, token: { ...t, home: this.homeOf(t.pod_uid, readerPid) } };
    });
  }

  /** A live process of the pod: the reader if it is still there, else one from the pod's cgroup. */
  private podPid(podUid: string, readerPid: number | null): number | null {
    if (readerPid !== null && this.inPod(readerPid, podUid)) return readerPid;
    const underscored = podUid.replace(/-/g, '_');
    const dir = findKubepodsEntry(this.cgroupRoot, (n) => n.includes(`pod${podUid}`) || n.includes(`pod${underscored}`))?.abs ?? null;
    if (dir === null) return null;
    // The pod's own cgroup holds no process (cgroup v2: only leaves do): its containers' do.
    const dirs = [dir];
    try {
      for (const e of fs.readdirSync(dir, { withFileTypes: true }).slice(0, 64)) if (e.isDirectory()) dirs.push(path.join(dir, e.name));
    } catch {
      return null;
    }
    for (const d of dirs) {
      for (const pid of this.firstPids(path.join(d, 'cgroup.procs'))) if (this.inPod(pid, podUid)) return pid;
    }
    return null;
  }

  private firstPids(file: string): number[] {
    const text = this.readBounded(file, 4096, false);
    if (text === null) return [];
    return text
      .split('\n')
      .slice(0, 8)
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 0);
  }

  private inPod(pid: number, podUid: string): boolean {
    const text = this.readBounded(path.join(this.procRoot, String(pid), 'cgroup'), 16 * 1024, false);
    return text !== null && podUidFromCgroup(text) === podUid;
  }

  private addressesOf(pid: number): { addrs: string[] | null; cut: number } {
    const net = path.join(this.procRoot, String(pid), 'net');
    const v4 = this.readBounded(path.join(net, 'fib_trie'), this.maxFileBytes, true);
    const v6 = this.readBounded(path.join(net, 'if_inet6'), this.maxFileBytes, true);
    if (v4 === null && v6 === null) return { addrs: null, cut: 0 };
    const all = [...(v4 === null ? [] : parseFibTrieLocal(v4)), ...(v6 === null ? [] : parseIfInet6(v6))];
    const cut = Math.max(0, all.length - this.maxAddrs);
    this.stats.addressesCut += cut;
    return { addrs: all.slice(0, this.maxAddrs), cut };
  }

  /** A /proc or cgroup file (their size is not known before reading), at most `max` bytes. */
  private readBounded(file: string, max: number, count: boolean): string | null {
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch {
      return null;
    }
    try {
      const buf = Buffer.allocUnsafe(Math.min(max, 64 * 1024));
      const parts: Buffer[] = [];
      let total = 0;
      for (;;) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, max - total), null);
        if (n <= 0) break;
        parts.push(Buffer.from(buf.subarray(0, n)));
        total += n;
        if (total >= max) {
          if (count) this.stats.fileTruncated++;
          break;
        }
      }
      return Buffer.concat(parts).toString('latin1');
    } catch {
      return null;
    } finally {
      fs.closeSync(fd);
    }
  }
}
