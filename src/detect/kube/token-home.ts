/**
 * A pod's token used away from home: the API server says the token is bound to a pod on node N, but
 * the request came from an address that is neither N's nor a pod's on N. Raised with no read seen on
 * any node: the token may have left through a path we did not watch (a backup, a log, another agent).
 *
 * Home is learnt from the audit stream itself:
 *  - node addresses: the peer address of requests made by `system:node:N` (the kubelet's credential);
 *  - pod addresses on N: `status.podIP(s)` in the kubelet's pods/status updates, and `spec.podCIDR(s)`
 *    in nodes/N writes (both need audit level Request for those resources);
 * and from the reads of pod tokens the agent on a node saw (token.home, src/enrich/netns-addresses.ts):
 *  - node addresses: the interfaces of the node the read was on (the token's node claim);
 *  - the pod's own addresses: its network namespace, kept per pod uid, never for the node: a pod that
 *    adds addresses to its namespace (CAP_NET_ADMIN) widens its own home only, not its neighbours'.
 * So an agent with both a node's reads and the API server's audit stream (one node, or the
 * control-plane node) needs no kubelet request to say "away". Each list is bounded.
 * Only the connection's own address counts (the last of sourceIPs; the client writes the others).
 *
 * Without N's node addresses nothing is said (counted `homeUnknown`): a cluster whose kubelets we never
 * saw must not flag every pod. With node addresses but no pod network learnt for N, a pod-network
 * address looks foreign; the finding then says so and its confidence is medium, not high.
 */
import { BlockList } from 'node:net';
import { findingId } from '../engine';
import { isTokenRead } from '../token-trail';
import { AddressSet, addressFamily } from '../../kube/home-addresses';
import type { Finding } from '../../model/finding';
import type { KubeAuditEvent } from '../../kube/event';
import { requestPeer, requestToken } from '../../kube/credential';
import { kubeEvidenceText } from '../redact/kube-event';
import { kubeContext } from './detector';

export const TOKEN_AWAY_RULE = 'kube-token-used-away-from-node';

const NODE_USER = /^system:node:([a-z0-9.-]{1,253})$/;
const MAX_ADDRS_PER_NODE = 64;
/** A read's pod list is bounded already (token.home); this bounds it again against another agent's. */
const MAX_ADDRS_PER_POD = 64;

export interface TokenHomeOptions {
  host: string;
  /** Nodes remembered at most. Default 20 000. */
  maxNodes?: number;
  /** Findings remembered for de-duplication (one per token and address). Default 50 000. */
  maxRemembered?: number;
  /** Pods whose home a token read told, remembered at most. Default 20 000. */
  maxPods?: number;
}

export interface TokenHomeStats {
  nodesLearnt: number;
  podAddressesLearnt: number;
  podCidrsLearnt: number;
  /** Requests with a node-bound token whose node we know no address of. */
  homeUnknown: number;
  awayFindings: number;
  /** Token reads whose home (node and pod addresses) was learnt. */
  learntFromReads: number;
}

interface Home {
  addrs: Set<string>;
  podAddrs: Set<string>;
  cidrs: BlockList;
  cidrCount: number;
}

const ipType = addressFamily;

/** An event time as ISO text; a log line without a usable time gets the time we saw it. */
function isoTime(ms: number): string {
  return new Date(Number.isFinite(ms) ? ms : Date.now()).toISOString();
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) return [];
  return v.flatMap((x) => (typeof x === 'string' ? [x] : isObj(x) && typeof x.ip === 'string' ? [x.ip] : []));
}

export class TokenHome {
  readonly stats: TokenHomeStats = { nodesLearnt: 0, podAddressesLearnt: 0, podCidrsLearnt: 0, homeUnknown: 0, awayFindings: 0, learntFromReads: 0 };
  private readonly homes = new Map<string, Home>();
  /** pod uid -> the pod's own namespace addresses, as a read of its token told. */
  private readonly podHomes = new Map<string, AddressSet>();
  private readonly maxPods: number;
  /** address -> node, for saying "from node M's address". */
  private readonly nodeOfAddr = new Map<string, string>();
  private readonly raised = new Set<string>();
  private readonly maxNodes: number;
  private readonly maxRemembered: number;

  constructor(private readonly opts: TokenHomeOptions) {
    this.maxNodes = opts.maxNodes ?? 20_000;
    this.maxRemembered = opts.maxRemembered ?? 50_000;
    this.maxPods = opts.maxPods ?? 20_000;
  }

  /** Learns the homes that token reads carry (call with every batch of host findings). */
  noteHostFindings(findings: readonly Finding[]): void {
    for (const f of findings) {
      const t = f.token;
      if (!t?.home || t.from !== 'file' || t.node === null || t.pod_uid === null || !isTokenRead(f)) continue;
      this.stats.learntFromReads++;
      const h = this.home(t.node);
      for (const ip of t.home.node) this.addNodeAddress(h, t.node, ip);
      if (t.home.pod === null) continue;
      this.podHomes.delete(t.pod_uid);
      this.podHomes.set(t.pod_uid, new AddressSet(t.home.pod.slice(0, MAX_ADDRS_PER_POD)));
      if (this.podHomes.size > this.maxPods) this.podHomes.delete(this.podHomes.keys().next().value as string);
    }
  }

  private addNodeAddress(h: Home, node: string, ip: string): void {
    if (ipType(ip) === null || h.addrs.has(ip) || h.addrs.size >= MAX_ADDRS_PER_NODE) return;
    if (h.addrs.size === 0) this.stats.nodesLearnt++;
    h.addrs.add(ip);
    this.nodeOfAddr.set(ip, node);
  }

  private home(node: string): Home {
    let h = this.homes.get(node);
    if (!h) {
      if (this.homes.size >= this.maxNodes) this.homes.delete(this.homes.keys().next().value as string);
      h = { addrs: new Set(), podAddrs: new Set(), cidrs: new BlockList(), cidrCount: 0 };
      this.homes.set(node, h);
    }
    return h;
  }

  /** Learns from a kubelet request; returns true when the event was the node's own. */
  private learn(ev: KubeAuditEvent): boolean {
    const m = ev.user.username === null ? null : NODE_USER.exec(ev.user.username);
    if (!m || ev.impersonatedUser !== null) return false;
    const node = m[1]!;
    const peer = requestPeer(ev);
    const h = this.home(node);
    if (peer !== null) this.addNodeAddress(h, node, peer);
    const o = ev.objectRef;
    const body = ev.requestObject;
    if (o && isObj(body) && (ev.verb === 'patch' || ev.verb === 'update' || ev.verb === 'create')) {
      if (o.resource === 'pods' && o.subresource === 'status' && isObj(body.status)) {
        for (const ip of [...strings(body.status.podIP), ...strings(body.status.podIPs)]) {
          if (ipType(ip) === null || h.podAddrs.has(ip) || h.podAddrs.size >= 4096) continue;
          h.podAddrs.add(ip);
          this.stats.podAddressesLearnt++;
        }
      }
      if (o.resource === 'nodes' && o.name === node && isObj(body.spec)) this.learnCidrs(h, [...strings(body.spec.podCIDR), ...strings(body.spec.podCIDRs)]);
    }
    return true;
  }

  private learnCidrs(h: Home, cidrs: string[]): void {
    for (const c of cidrs) {
      const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(c);
      const type = m ? ipType(m[1]!) : null;
      if (!m || !type || h.cidrCount >= 8) continue;
      const bits = Number(m[2]);
      if (bits > (type === 'ipv4' ? 32 : 128)) continue;
      h.cidrs.addSubnet(m[1]!, bits, type);
      h.cidrCount++;
      this.stats.podCidrsLearnt++;
    }
  }

  /** A finding when a node-bound token is used from an address that is not its node's. */
  onKubeEvent(ev: KubeAuditEvent): Finding[] {
    if (this.learn(ev)) return [];
    if (ev.stage !== 'ResponseComplete' && ev.stage !== 'Panic') return [];
    const c = ev.credential;
    if (c.nodeName === null || c.malformed || (c.jti === null && c.podUid === null)) return [];
    const peer = requestPeer(ev);
    if (peer === null) return [];
    const h = this.homes.get(c.nodeName);
    if (!h || h.addrs.size === 0) {
      this.stats.homeUnknown++;
      return [];
    }
    const type = ipType(peer);
    const podHome = c.podUid === null ? undefined : this.podHomes.get(c.podUid);
    if (h.addrs.has(peer) || h.podAddrs.has(peer) || podHome?.has(peer) || (type !== null && h.cidrCount > 0 && h.cidrs.check(peer, type))) return [];
    const key = `${c.jti ?? c.podUid}\0${peer}`;
    if (this.raised.has(key)) return [];
    this.raised.add(key);
    if (this.raised.size > this.maxRemembered) this.raised.delete(this.raised.values().next().value as string);
    this.stats.awayFindings++;
    const podNetKnown = h.podAddrs.size > 0 || h.cidrCount > 0 || podHome !== undefined;
    const otherNode = this.nodeOfAddr.get(peer);
    const token = requestToken(ev);
    const kube = kubeContext(ev);
    const where = otherNode !== undefined ? `the address of node ${otherNode}` : `${peer}, not an address of node ${c.nodeName}${podNetKnown ? ' or of its pods' : ' (no pod addresses of that node learnt yet)'}`;
    return [
      {
        id: findingId(TOKEN_AWAY_RULE, this.opts.host, [ev.auditID]),
        rule: TOKEN_AWAY_RULE,
        title: 'Service-account token used away from its node',
        description:
          `A token bound to pod ${c.podName ?? '?'} (${c.podUid ?? '?'}) on node ${c.nodeName}` +
          `${c.jti ? ` (jti ${c.jti})` : ''} was used for ${ev.verb} ${ev.objectRef?.resource ?? ev.requestURI} from ${where}.`,
        severity: 'high',
        score: 2,
        confidence: podNetKnown || otherNode !== undefined ? 'high' : 'medium',
        covers: ['K1'],
        mitre: ['T1552.007', 'T1550'],
        time: isoTime(ev.timeMs),
        host: this.opts.host,
        source: 'kube-audit',
        indicators: ['token-bound-to-node', otherNode !== undefined ? 'peer-is-another-node' : 'peer-not-home'],
        process: null,
        container: null,
        kube,
        ...(token ? { token } : {}),
        evidence: [{ event_id: ev.auditID, time: isoTime(ev.timeMs), role: 'token-away-from-node', records: [{ type: 'k8s', text: kubeEvidenceText(ev) }] }],
      },
    ];
  }
}
