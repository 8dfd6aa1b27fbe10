/**
 * Kubernetes API-server audit events (audit.k8s.io/v1, the older v1beta1 shape, and events written
 * without apiVersion), normalised into one shape the K rules read.
 *
 * responseObject is dropped here, at the first moment we hold the event: it can carry Secret data and
 * TokenRequest tokens, and nothing downstream needs it. requestObject is kept (exec commands, pod
 * volumes) and is redacted before it reaches evidence (see ./redact.ts).
 */

export interface KubeObjectRef {
  resource: string | null;
  subresource: string | null;
  namespace: string | null;
  name: string | null;
  /** "" for the core group; derived from v1beta1's "group/version" apiVersion when apiGroup is absent. */
  apiGroup: string | null;
  apiVersion: string | null;
}

export interface KubeUserInfo {
  username: string | null;
  uid: string | null;
  groups: string[];
  extra: Record<string, string[]>;
}

export interface KubeAuditEvent {
  apiVersion: string | null;
  level: string | null;
  auditID: string;
  /** RequestReceived | ResponseStarted | ResponseComplete | Panic */
  stage: string;
  verb: string;
  requestURI: string;
  objectRef: KubeObjectRef | null;
  user: KubeUserInfo;
  impersonatedUser: KubeUserInfo | null;
  sourceIPs: string[];
  userAgent: string | null;
  responseCode: number | null;
  annotations: Record<string, string>;
  /** As logged (level Request/RequestResponse only); may hold secrets, never put in evidence unredacted. */
  requestObject: unknown;
  requestReceivedTimestamp: string | null;
  stageTimestamp: string | null;
  /** Best known request time, epoch ms (requestReceivedTimestamp, v1beta1 timestamp, stageTimestamp, creationTimestamp). */
  timeMs: number;
  /** The authenticated user's credential (jti, pod, node) from user.extra; see ./credential.ts. */
  credential: RequestCredential;
}

export type KubeParseResult =
  | {
      ok: true;
      /** The first (usually only) event of the line. */
      event: KubeAuditEvent;
      /** Every valid event of the line: one for an Event, all valid items for an EventList. */
      events: KubeAuditEvent[];
      /** Items of an EventList that were rejected (the valid ones are still in `events`). */
      itemErrors: string[];
    }
  | { ok: false; error: string };

import { requestCredential, type RequestCredential } from './credential';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class FieldError extends Error {}

function optString(o: Obj, key: string, where: string): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new FieldError(`${where}${key}: expected string, got ${typeName(v)}`);
  return v;
}

function reqString(o: Obj, key: string, where: string): string {
  const v = optString(o, key, where);
  if (v === null) throw new FieldError(`${where}${key}: missing`);
  return v;
}

function stringArray(o: Obj, key: string, where: string): string[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new FieldError(`${where}${key}: expected array of strings`);
  }
  return v as string[];
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function parseUser(v: unknown, where: string): KubeUserInfo {
  if (!isObj(v)) throw new FieldError(`${where}: expected object, got ${typeName(v)}`);
  const extra: Record<string, string[]> = {};
  if (isObj(v.extra)) {
    for (const [k, val] of Object.entries(v.extra)) {
      if (Array.isArray(val)) extra[k] = val.filter((x): x is string => typeof x === 'string');
    }
  }
  return {
    username: optString(v, 'username', `${where}.`),
    uid: optString(v, 'uid', `${where}.`),
    groups: stringArray(v, 'groups', `${where}.`),
    extra,
  };
}

function parseObjectRef(v: unknown): KubeObjectRef | null {
  if (v === undefined || v === null) return null;
  if (!isObj(v)) throw new FieldError(`objectRef: expected object, got ${typeName(v)}`);
  const w = 'objectRef.';
  const apiVersion = optString(v, 'apiVersion', w);
  let apiGroup = optString(v, 'apiGroup', w);
  if (apiGroup === null && apiVersion !== null) {
    // v1beta1 events put "group/version" in apiVersion; a bare "v1" is the core group.
    const slash = apiVersion.indexOf('/');
    apiGroup = slash >= 0 ? apiVersion.slice(0, slash) : '';
  }
  return {
    resource: optString(v, 'resource', w),
    subresource: optString(v, 'subresource', w),
    namespace: optString(v, 'namespace', w),
    name: optString(v, 'name', w),
    apiGroup,
    apiVersion,
  };
}

function parseTime(...candidates: (string | null)[]): number {
  for (const c of candidates) {
    if (c === null) continue;
    const t = Date.parse(c);
    if (!Number.isNaN(t)) return t;
  }
  return NaN;
}

/** Normalise one decoded Event object; throws FieldError naming the offending field. */
export function normaliseKubeAuditEvent(o: unknown): KubeAuditEvent {
  if (!isObj(o)) throw new FieldError(`event: expected object, got ${typeName(o)}`);
  const kind = o.kind;
  if (kind !== undefined && kind !== 'Event') {
    throw new FieldError(`kind: expected "Event", got ${JSON.stringify(kind)}`);
  }
  const apiVersion = optString(o, 'apiVersion', '');
  if (apiVersion !== null && !apiVersion.startsWith('audit.k8s.io/')) {
    throw new FieldError(`apiVersion: not an audit.k8s.io event: ${JSON.stringify(apiVersion)}`);
  }
  const auditID = reqString(o, 'auditID', '');
  const stage = reqString(o, 'stage', '');
  const verb = reqString(o, 'verb', '');
  const requestURI = reqString(o, 'requestURI', '');
  const user = parseUser(o.user, 'user');
  const impersonatedUser =
    o.impersonatedUser === undefined || o.impersonatedUser === null
      ? null
      : parseUser(o.impersonatedUser, 'impersonatedUser');

  let responseCode: number | null = null;
  if (o.responseStatus !== undefined && o.responseStatus !== null) {
    if (!isObj(o.responseStatus)) throw new FieldError('responseStatus: expected object');
    const code = o.responseStatus.code;
    if (code !== undefined && code !== null) {
      if (typeof code !== 'number' || !Number.isInteger(code)) {
        throw new FieldError(`responseStatus.code: expected integer, got ${typeName(code)}`);
      }
      responseCode = code;
    }
  }

  const annotations: Record<string, string> = {};
  if (isObj(o.annotations)) {
    for (const [k, v] of Object.entries(o.annotations)) if (typeof v === 'string') annotations[k] = v;
  }

  const requestReceivedTimestamp = optString(o, 'requestReceivedTimestamp', '');
  const stageTimestamp = optString(o, 'stageTimestamp', '');
  const legacyTimestamp = optString(o, 'timestamp', '');
  const creation = isObj(o.metadata) && typeof o.metadata.creationTimestamp === 'string' ? o.metadata.creationTimestamp : null;

  // The credential is part of the literal: a spread adding it afterwards (`{ ...ev, credential }`) takes
  // V8's slow clone path on Node 20, ~1 us per event.
  return {
    apiVersion,
    level: optString(o, 'level', ''),
    auditID,
    stage,
    verb,
    requestURI,
    objectRef: parseObjectRef(o.objectRef),
    user,
    impersonatedUser,
    sourceIPs: stringArray(o, 'sourceIPs', ''),
    userAgent: optString(o, 'userAgent', ''),
    responseCode,
    annotations,
    requestObject: o.requestObject ?? null,
    requestReceivedTimestamp: requestReceivedTimestamp ?? legacyTimestamp,
    stageTimestamp,
    timeMs: parseTime(requestReceivedTimestamp, legacyTimestamp, stageTimestamp, creation),
    credential: requestCredential({ user }),
  };
}

/**
 * Parse one line of an audit log (or one webhook body): an Event, or an EventList whose items become
 * several events. Never throws.
 */
export function parseKubeAuditLine(line: string): KubeParseResult {
  const text = line.trim();
  if (text === '') return { ok: false, error: 'empty line' };
  let decoded: unknown;
  try {
    decoded = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `invalid JSON: ${(e as Error).message}` };
  }
  if (!isObj(decoded)) return { ok: false, error: `expected a JSON object, got ${typeName(decoded)}` };
  try {
    if (decoded.kind === 'EventList') {
      if (!Array.isArray(decoded.items)) return { ok: false, error: 'EventList.items: expected array' };
      const events: KubeAuditEvent[] = [];
      const itemErrors: string[] = [];
      decoded.items.forEach((item, i) => {
        try {
          events.push(normaliseKubeAuditEvent(item));
        } catch (e) {
          if (!(e instanceof FieldError)) throw e;
          itemErrors.push(`items[${i}].${e.message}`);
        }
      });
      const first = events[0];
      if (first === undefined) {
        return { ok: false, error: itemErrors.length ? itemErrors.join('; ') : 'EventList has no items' };
      }
      return { ok: true, event: first, events, itemErrors };
    }
    const event = normaliseKubeAuditEvent(decoded);
    return { ok: true, event, events: [event], itemErrors: [] };
  } catch (e) {
    if (e instanceof FieldError) return { ok: false, error: e.message };
    throw e;
  }
}

/**
 * Format sniffing for replay: true when the first non-blank line of a chunk looks like a Kubernetes
 * audit JSON line rather than auditd text (`type=... msg=audit(...)`).
 */
export function looksLikeKubeAudit(head: string): boolean {
  const first = head.split('\n').find((l) => l.trim() !== '');
  if (first === undefined) return false;
  const t = first.trimStart();
  return t.startsWith('{') && /"(auditID|kind)"\s*:/.test(t);
}

/** The principal the API server authorised: the impersonated user when impersonation was used. */
export function effectiveUser(ev: KubeAuditEvent): KubeUserInfo {
  return ev.impersonatedUser ?? ev.user;
}

export interface KubeRequestPod {
  podName: string;
  podUid: string | null;
  nodeName: string | null;
}

/**
 * The pod a request's credentials are bound to. Bound service-account tokens (Kubernetes >= 1.22,
 * extra fields since 1.29/1.30) carry the pod name and UID in user.extra: the join key between an
 * API request and the host's view of that pod (pod UID from /proc/<pid>/cgroup), for correlating a
 * token read on the node with the API requests that token then made.
 */
export function kubeRequestPod(ev: KubeAuditEvent): KubeRequestPod | null {
  const extra = effectiveUser(ev).extra;
  const podName = extra['authentication.kubernetes.io/pod-name']?.[0];
  if (podName === undefined) return null;
  return {
    podName,
    podUid: extra['authentication.kubernetes.io/pod-uid']?.[0] ?? null,
    nodeName: extra['authentication.kubernetes.io/node-name']?.[0] ?? null,
  };
}

const BULKY_FIELDS = [',"requestObject":', ',"responseObject":'];
const TAIL_STRING_FIELDS = ['requestReceivedTimestamp', 'stageTimestamp', 'timestamp'];

/**
 * Recover an event from the two ends of a line too long to hold (see ../kube/lines.ts): the head up to
 * the first bulky object (requestObject/responseObject, which the apiserver writes after every field a
 * rule reads) is closed into a JSON object, and the timestamps and annotations are taken from the tail.
 * The bulky objects themselves are gone, which for evidence is what we want anyway.
 */
export function salvageKubeAuditLine(head: string, tail: string): KubeParseResult {
  const cuts = BULKY_FIELDS.map((f) => head.indexOf(f)).filter((i) => i > 0);
  if (cuts.length === 0) return { ok: false, error: 'oversize line without a requestObject/responseObject to cut' };
  const r = parseKubeAuditLine(`${head.slice(0, Math.min(...cuts))}}`);
  if (!r.ok) return { ok: false, error: `oversize line could not be salvaged: ${r.error}` };
  const ev = r.event;
  const found: Record<string, string> = {};
  for (const key of TAIL_STRING_FIELDS) {
    const m = new RegExp(`"${key}":"([^"\\\\]{1,64})"`).exec(tail);
    if (m) found[key] = m[1]!;
  }
  ev.requestReceivedTimestamp = found.requestReceivedTimestamp ?? found.timestamp ?? ev.requestReceivedTimestamp;
  ev.stageTimestamp = found.stageTimestamp ?? ev.stageTimestamp;
  ev.timeMs = parseTime(ev.requestReceivedTimestamp, ev.stageTimestamp);
  const ann = /"annotations":(\{[^{}]*\})/.exec(tail);
  if (ann) {
    try {
      const o = JSON.parse(ann[1]!) as unknown;
      if (isObj(o)) for (const [k, v] of Object.entries(o)) if (typeof v === 'string') ev.annotations[k] = v;
    } catch {
      /* a cut-off annotations object is simply not used */
    }
  }
  return { ok: true, event: ev, events: [ev], itemErrors: [] };
}
