/**
 * A finding: what the detection engine emits, the store keeps, the CLI shows and the shippers send.
 * Every string in a finding has been through redaction (src/detect/redact.ts) before it exists.
 * It lives in src/model, the lowest layer, because every stage from detect to the collector uses it.
 */

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

/** Whether a rule fired on this finding: its own rule, or any rule merged into the incident. */
export function hasRule(f: Pick<Finding, 'rule' | 'rules'>, rule: string): boolean {
  return f.rule === rule || (f.rules?.includes(rule) ?? false);
}

export type Confidence = 'low' | 'medium' | 'high';

export interface FindingProcess {
  pid: number | null;
  ppid: number | null;
  exe: string | null;
  comm: string | null;
  argv: string[] | null;
  cwd: string | null;
  uid: number | null;
  user: string | null;
  auid: number | null;
  tty: string | null;
  interactive: boolean;
  /** Ancestors, nearest first: pid, exe and argv of each known parent. */
  parents: { pid: number; exe: string | null; argv: string[] | null }[];
}

export interface FindingContainer {
  id: string;
  /** "docker" | "containerd" | "cri-o" | "podman" | "unknown" */
  runtime: string;
  pod_uid: string | null;
}

/**
 * The watched object an audit finding's event touched, identified by the watch key and the PATH
 * inode/device rather than by the name used (src/enrich/watched-objects.ts). `container` is the
 * reader's; this is the owner's.
 */
export interface FindingObject {
  /** pod-token, pod-secret, node-credential, runtime-state */
  class: string;
  /** The pod whose token or secret volume it is. */
  pod_uid: string | null;
  /** The container whose runtime state it is. */
  container_id: string | null;
  /** "inode": found by (dev, inode) among our watches; "key": only the watch key (owner from the path text). */
  via: 'inode' | 'key';
  /** The reader is outside the owner pod/container (null: owner unknown). */
  foreign: boolean | null;
}

export interface KubeContext {
  user: string | null;
  groups: string[];
  impersonated_user: string | null;
  verb: string | null;
  resource: string | null;
  subresource: string | null;
  namespace: string | null;
  name: string | null;
  source_ips: string[];
  user_agent: string | null;
  response_code: number | null;
  audit_id: string | null;
}

/**
 * The service-account token a finding is about, from its claims (read by the agent from the token file
 * a flagged process read: src/enrich/token-claims.ts) or from what the API server recorded of the
 * request's credential (src/kube/credential.ts). Never the token itself: claims only, unverified.
 */
export interface FindingToken {
  /** JWT ID: the exact join key between a read and API requests (null: legacy or pre-1.29 token). */
  jti: string | null;
  service_account: string | null;
  namespace: string | null;
  pod: string | null;
  pod_uid: string | null;
  node: string | null;
  /** iat and exp, ISO 8601 (null when absent: legacy secret-based tokens do not expire). */
  issued: string | null;
  expires: string | null;
  /** "bound" (projected, pod-bound), "legacy" (secret-based), "other" (a JWT without Kubernetes claims). */
  kind: 'bound' | 'legacy' | 'other';
  /** Legacy secret-based tokens: the Secret's name (their only identity besides the service account). */
  secret_name?: string | null;
  /** Where these claims come from: the token file the agent read, or the API server's record of a request. */
  from: 'file' | 'api-request';
  /** Reads of a pod's token (from "file"): where the pod lives, as the reading agent saw it. */
  home?: FindingTokenHome;
}

/**
 * The addresses a bound token's own pod legitimately calls the API server from, learnt by the agent on
 * the token's node at the read (src/enrich/netns-addresses.ts): a request from none of them was made
 * away from home. Addresses only, never secret. The pod's list is the pod's own network namespace, so a
 * pod allowed to add addresses to it (CAP_NET_ADMIN) can widen its own home, never another pod's.
 */
export interface FindingTokenHome {
  /** The node's interface addresses (the host network namespace), loopback left out. */
  node: string[];
  /** The pod's network namespace addresses; null when no process of the pod could be read. */
  pod: string[] | null;
  /** Addresses beyond the per-list bound, not listed (a namespace holding very many addresses). */
  cut: number;
}

export interface Evidence {
  /** Audit event id "SEC.MS:SERIAL" or Kubernetes auditID. */
  event_id: string;
  time: string;
  /** Why this event is evidence (indicator ids that matched, or "sequence:<rule>"). */
  role: string;
  /** Redacted raw records (audit) or the redacted JSON event (kube-audit, type "k8s"). */
  records: { type: string; text: string }[];
}

/** Set when the finding was cut to the size cap (src/detect/finding-cap.ts). */
export interface FindingCut {
  /** Dotted paths (no indices) of the fields that were cut: process.argv, evidence.records.text, ... */
  fields: string[];
  /** The finding's JSON size in bytes before the cut. */
  original_bytes: number;
}

export interface Finding {
  /** Stable id: the same detection of the same events always yields the same id (idempotent shipping). */
  id: string;
  rule: string;
  title: string;
  description: string;
  severity: Severity;
  score: number;
  confidence: Confidence;
  /** DETECTIONS.md rows, e.g. ["H1"]. */
  covers: string[];
  /** MITRE ATT&CK ids, e.g. ["T1552.007"]. */
  mitre: string[];
  /** Time of the triggering event, ISO 8601. */
  time: string;
  host: string;
  source: 'audit' | 'kube-audit';
  /** Indicator ids that matched. */
  indicators: string[];
  process: FindingProcess | null;
  container: FindingContainer | null;
  /** Present on audit findings whose event hit one of our object watches. */
  object?: FindingObject;
  kube: KubeContext | null;
  /** The service-account token involved, when known (see FindingToken). */
  token?: FindingToken;
  evidence: Evidence[];
  /** Present only on a finding cut to the size cap: what was cut, and how big it was. */
  truncated?: FindingCut;
  /**
   * Incident fields (src/detect/incidents.ts): a host finding is one behaviour, and every rule that fired
   * on it is merged in. Optional because API-server findings and older stored findings lack them.
   * `rule` above is the rule that set the severity; `rules` lists all of them.
   */
  rules?: string[];
  /** Events merged into this incident. */
  count?: number;
  first_seen?: string;
  last_seen?: string;
  /** 1 when first emitted; each later emission of the same id carries a higher number (receivers keep the highest). */
  revision?: number;
  /** The behaviour's key: who (container, or the host process-tree root) touched what. */
  incident?: { actor: string; object: string };
}
