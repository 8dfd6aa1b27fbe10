/**
 * The token trail: the recorded in-pod token read (real kernel audit, fixtures/behaviours) carrying
 * the claims the agent decoded, then API-server audit events made with that token (its jti), with the
 * pod's own newer token (another jti), and with no credential-id (pod uid fallback).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TOKEN_TRAIL_RULE, TokenTrail } from '../../../src/detect/token-trail';
import type { Finding, FindingToken } from '../../../src/model/finding';
import { latestRevisions } from '../../../src/detect/incidents';
import type { KubeAuditEvent } from '../../../src/kube/event';
import { BEHAVIOURS, replay } from './replay';
import { request } from '../../helpers/kube-requests';

const pod = JSON.parse(fs.readFileSync(path.join(BEHAVIOURS, 'pod.json'), 'utf8')) as { containerId: string; podUid: string };
const STOLEN = '8d3f0a52-6c1b-4e7d-9a2f-0b1c2d3e4f50';
const NEWER = '1e2d3c4b-5a69-4788-9a0b-c1d2e3f4a5b6';

function claims(over: Partial<FindingToken> = {}): FindingToken {
  return { jti: STOLEN, service_account: 'app', namespace: 'default', pod: 'app-0', pod_uid: pod.podUid, node: 'lab-node', issued: '2026-11-22T13:00:00.000Z', expires: '2099-01-01T00:00:00.000Z', kind: 'bound', from: 'file', ...over };
}

/** The recorded read, with the claims the agent's own read of that token file would have given. */
async function tokenRead(token: FindingToken | null = claims()): Promise<{ findings: Finding[]; read: Finding }> {
  const { findings } = await replay('pod-cat-token.log', { podUidOf: (id) => (id === pod.containerId ? pod.podUid : null) });
  const reads = findings.filter((f) => f.container?.pod_uid === pod.podUid && f.covers.some((c) => c === 'H1' || c === 'H2'));
  if (reads.length === 0) throw new Error('the recorded pod token read produced no in-pod finding');
  const withClaims = findings.map((f) => (reads.includes(f) && token ? { ...f, token } : f));
  return { findings: withClaims, read: withClaims.find((f) => f.id === reads[reads.length - 1]!.id)! };
}

function trail(now = { ms: 0 }, opts: { windowMs?: number; maxOpen?: number; maxRequests?: number } = {}): TokenTrail {
  return new TokenTrail({ host: 'control-plane', windowMs: opts.windowMs ?? 600_000, updateEveryMs: 1000, maxOpen: opts.maxOpen, maxRequests: opts.maxRequests, now: () => now.ms });
}

/** What a receiver keeping the highest revision holds after these requests and a flush. */
function linked(t: TokenTrail, events: KubeAuditEvent[]): Finding[] {
  return latestRevisions([...events.flatMap((e) => t.onKubeEvent(e)), ...t.flush()]);
}

describe('stolen token used: exact join by jti', () => {
  it('one critical finding names the read and each request with that jti; a request with another jti is not tied', async () => {
    const { findings, read } = await tokenRead();
    const at = Date.parse(read.time);
    const now = { ms: 0 };
    const t = trail(now);
    t.noteHostFindings(findings);
    const first = t.onKubeEvent(request({ auditID: 'r-stolen-1', atMs: at + 5_000, jti: STOLEN, podUid: pod.podUid, node: 'lab-node', sourceIPs: ['203.0.113.9'], verb: 'list', resource: 'secrets', namespace: 'kube-system', userAgent: 'kubectl/v1.32.0' }));
    expect(first.map((f) => [f.rule, f.revision]), 'the first joined request is reported at once').toEqual([[TOKEN_TRAIL_RULE, 1]]);
    now.ms = 100;
    expect(t.onKubeEvent(request({ auditID: 'r-own-newer', atMs: at + 6_000, jti: NEWER, podUid: pod.podUid, node: 'lab-node' }))).toEqual([]);
    now.ms = 200;
    expect(t.onKubeEvent(request({ auditID: 'r-stolen-2', atMs: at + 7_000, jti: STOLEN, podUid: pod.podUid, node: 'lab-node', sourceIPs: ['203.0.113.9'], verb: 'get', resource: 'secrets', namespace: 'kube-system', name: 'admin-token' }))).toEqual([]); // throttled: sent by tick
    now.ms = 1_000;
    const out = t.tick();
    expect(out).toHaveLength(1);
    const f = out[0]!;
    expect(f).toMatchObject({ id: first[0]!.id, revision: 2, count: 2, rule: TOKEN_TRAIL_RULE, severity: 'critical', confidence: 'high', token: { jti: STOLEN }, process: read.process, container: read.container });
    const reqIds = f.evidence.filter((e) => e.role.startsWith('sequence:api-request')).map((e) => e.event_id);
    expect(reqIds).toEqual(['r-stolen-1', 'r-stolen-2']);
    expect(f.evidence.map((e) => e.event_id)).toEqual(expect.arrayContaining(read.evidence.map((e) => e.event_id)));
    const second = JSON.parse(f.evidence.find((e) => e.event_id === 'r-stolen-2')!.records[0]!.text) as Record<string, unknown>;
    expect(second).toMatchObject({ verb: 'get', sourceIPs: ['203.0.113.9'], objectRef: { resource: 'secrets', namespace: 'kube-system', name: 'admin-token' } });
    expect(f.kube).toMatchObject({ audit_id: 'r-stolen-1', verb: 'list', source_ips: ['203.0.113.9'], user_agent: 'kubectl/v1.32.0' });
    expect(f.description).toContain(read.process!.exe!);
    expect(t.stats).toMatchObject({ joined: { jti: 2, 'pod-uid': 0, legacy: 0 }, otherJti: 1, trails: 1, updates: 1 });
    expect(t.tick()).toEqual([]); // nothing new: no revision
  });

  it('revisions are throttled: a storm of requests is one update a second, its evidence capped and the rest counted', async () => {
    const { findings, read } = await tokenRead();
    const at = Date.parse(read.time);
    const now = { ms: 0 };
    const t = trail(now, { maxRequests: 5 });
    t.noteHostFindings(findings);
    const sent: Finding[] = [];
    for (let i = 0; i < 300; i++) {
      now.ms = i * 10; // 100 requests a second for 3 s
      sent.push(...t.onKubeEvent(request({ auditID: `storm-${i}`, atMs: at + 1000 + i, jti: STOLEN })));
      if (i % 100 === 99) sent.push(...t.tick());
    }
    sent.push(...t.flush());
    expect(new Set(sent.map((f) => f.id)).size).toBe(1);
    expect(sent.map((f) => f.revision)).toEqual(sent.map((_, i) => i + 1));
    expect(sent.length).toBeLessThanOrEqual(8); // about one a second (3 s), plus the first and the flush
    const last = sent[sent.length - 1]!;
    expect(last.count).toBe(300);
    expect(last.evidence.filter((e) => e.role.startsWith('sequence:api-request'))).toHaveLength(5);
    expect(last.description).toContain('295 not listed');
    expect(last.last_seen, 'last_seen is the last request, also when it is only counted').toBe(new Date(at + 1000 + 299).toISOString());
    expect(t.stats).toMatchObject({ requestsCut: 295, trails: 1 });
  });

  it('a request after the window opens a new finding; beyond maxOpen the oldest trail closes with its pending update sent', async () => {
    const { findings, read } = await tokenRead(claims({ jti: null, kind: 'bound' }));
    const at = Date.parse(read.time);
    const now = { ms: 0 };
    const t = trail(now, { windowMs: 60_000 });
    t.noteHostFindings(findings);
    const a = t.onKubeEvent(request({ auditID: 'burst-1', atMs: at + 1000, podUid: pod.podUid }));
    now.ms = 61_001;
    const b = t.onKubeEvent(request({ auditID: 'burst-2', atMs: at + 62_000, podUid: pod.podUid }));
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(1);
    expect(b[0]!.id).not.toBe(a[0]!.id);
    expect(b[0]!.revision).toBe(1);

    const small = trail(now, { maxOpen: 1 });
    const other = { ...read, id: 'another-read', token: claims({ jti: NEWER }) };
    small.noteHostFindings([{ ...read, token: claims() }, other]);
    expect(small.onKubeEvent(request({ auditID: 'x-1', atMs: at + 1000, jti: STOLEN }))).toHaveLength(1);
    now.ms += 10;
    expect(small.onKubeEvent(request({ auditID: 'x-2', atMs: at + 1001, jti: STOLEN }))).toEqual([]); // dirty
    expect(small.onKubeEvent(request({ auditID: 'y-1', atMs: at + 1002, jti: NEWER }))).toHaveLength(1); // evicts x
    const pending = small.tick();
    expect(pending.map((f) => [f.token?.jti, f.revision, f.count])).toEqual([[STOLEN, 2, 2]]);
    expect(small.stats.trailsEvicted).toBe(1);
  });

  it('is stable (same input, same id) and ties a request only once', async () => {
    const { findings, read } = await tokenRead();
    const run = () => {
      const t = trail();
      t.noteHostFindings(findings);
      const r = request({ auditID: 'r-1', atMs: Date.parse(read.time) + 1000, jti: STOLEN });
      return linked(t, [r, r]);
    };
    const a = run();
    expect(a).toHaveLength(1);
    expect(a[0]!.evidence.filter((e) => e.event_id === 'r-1')).toHaveLength(1);
    expect(run()[0]!.id).toBe(a[0]!.id);
  });

  it('does not tie a request before the read, after the token expired, or at an earlier stage', async () => {
    const { findings, read } = await tokenRead(claims({ expires: new Date(Date.parse((await tokenRead()).read.time) + 60_000).toISOString() }));
    const at = Date.parse(read.time);
    const t = trail();
    t.noteHostFindings(findings);
    const out = linked(t, [request({ auditID: 'before', atMs: at - 1000, jti: STOLEN }), request({ auditID: 'expired', atMs: at + 10 * 60_000, jti: STOLEN }), request({ auditID: 'started', atMs: at + 1000, jti: STOLEN, stage: 'ResponseStarted' })]);
    expect(out).toEqual([]);
  });

  it('a malformed credential-id is counted and never joined, not even by pod uid', async () => {
    const { findings, read } = await tokenRead();
    const t = trail();
    t.noteHostFindings(findings);
    expect(linked(t, [request({ auditID: 'bad', atMs: Date.parse(read.time) + 1000, credentialId: `JTI=${'%'.repeat(300)}`, podUid: pod.podUid })])).toEqual([]);
    expect(t.stats.malformedCredential).toBe(1);
  });

  it('names at most maxRequests requests and counts the rest in the finding', async () => {
    const { findings, read } = await tokenRead();
    const t = new TokenTrail({ host: 'cp', maxRequests: 3 });
    t.noteHostFindings(findings);
    const [f] = linked(t, Array.from({ length: 10 }, (_, i) => request({ auditID: `r-${i}`, atMs: Date.parse(read.time) + 1000 + i, jti: STOLEN })));
    expect(f!.evidence.filter((e) => e.role.startsWith('sequence:api-request'))).toHaveLength(3);
    expect(f!.description).toContain('10 API requests');
    expect(f!.description).toContain('7 not listed');
    expect(t.stats.requestsCut).toBe(7);
  });
});

describe('away from home', () => {
  it('marks the requests made from none of the read’s home addresses (node and pod, as the reading agent saw them)', async () => {
    const { findings, read } = await tokenRead(claims({ home: { node: ['192.0.2.11'], pod: ['10.244.1.7', 'fd00::7'], cut: 0 } }));
    const at = Date.parse(read.time);
    const t = trail();
    t.noteHostFindings(findings);
    const [f] = linked(t, [
      request({ auditID: 'from-pod', atMs: at + 1000, jti: STOLEN, sourceIPs: ['10.244.1.7'] }),
      request({ auditID: 'from-pod-v6', atMs: at + 1001, jti: STOLEN, sourceIPs: ['fd00:0::7'] }),
      // X-Forwarded-For is the client's: only the connection's own address (the last) counts.
      request({ auditID: 'from-thief', atMs: at + 1002, jti: STOLEN, sourceIPs: ['10.244.1.7', '203.0.113.50'] }),
    ]);
    const roles = Object.fromEntries(f!.evidence.filter((e) => e.role.startsWith('sequence:api-request')).map((e) => [e.event_id, e.role]));
    expect(roles).toEqual({ 'from-pod': 'sequence:api-request:jti', 'from-pod-v6': 'sequence:api-request:jti', 'from-thief': 'sequence:api-request:jti:away-from-home' });
    expect(f!.indicators).toContain('used-away-from-home');
    expect(f!.description).toContain('from 203.0.113.50 (away from the pod');
    expect(t.stats.away).toBe(1);
  });

  it('without a home on the read nothing is said about away', async () => {
    const { findings, read } = await tokenRead();
    const t = trail();
    t.noteHostFindings(findings);
    const [f] = linked(t, [request({ auditID: 'r', atMs: Date.parse(read.time) + 1000, jti: STOLEN, sourceIPs: ['203.0.113.50'] })]);
    expect(f!.indicators).not.toContain('used-away-from-home');
    expect(t.stats.away).toBe(0);
  });
});

describe('fallbacks', () => {
  it('a request without any credential-id joins by pod uid, with confidence medium', async () => {
    const { findings, read } = await tokenRead();
    const t = trail();
    t.noteHostFindings(findings);
    const out = linked(t, [request({ auditID: 'old-cluster', atMs: Date.parse(read.time) + 30_000, podUid: pod.podUid }), request({ auditID: 'other-pod', atMs: Date.parse(read.time) + 30_000, podUid: '00000000-0000-4000-8000-000000000000' })]);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ confidence: 'medium', indicators: ['token-read', 'api-request-same-pod-uid'] });
  });

  it('a read whose claims are unknown is not tied to requests that carry a jti (counted), only to ones without', async () => {
    const { findings, read } = await tokenRead(null);
    const t = trail();
    t.noteHostFindings(findings);
    expect(linked(t, [request({ auditID: 'with-jti', atMs: Date.parse(read.time) + 1000, jti: NEWER, podUid: pod.podUid })])).toEqual([]);
    expect(t.stats.readJtiUnknown).toBe(1);
  });

  it('a legacy secret-based token joins by service account and Secret name, confidence low', async () => {
    const legacy = claims({ jti: null, pod: null, pod_uid: null, node: null, kind: 'legacy', service_account: 'builder', namespace: 'ci', secret_name: 'builder-token-x7k2p', expires: null });
    const { findings, read } = await tokenRead(legacy);
    const t = trail();
    t.noteHostFindings(findings);
    const at = Date.parse(read.time) + 1000;
    const out = linked(t, [
      request({ auditID: 'other-secret', atMs: at, username: 'system:serviceaccount:ci:builder', namespace: 'ci', annotations: { 'authentication.k8s.io/legacy-token': 'builder-token-other' } }),
      request({ auditID: 'legacy-1', atMs: at, username: 'system:serviceaccount:ci:builder', namespace: 'ci', annotations: { 'authentication.k8s.io/legacy-token': 'builder-token-x7k2p' } }),
    ]);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ confidence: 'low', token: { kind: 'legacy', secret_name: 'builder-token-x7k2p' } });
    expect(out[0]!.evidence.map((e) => e.event_id)).toContain('legacy-1');
    expect(out[0]!.evidence.map((e) => e.event_id)).not.toContain('other-secret');
  });
});

describe('what counts as the read', () => {
  it('a sequence finding (read then connect) does not replace the read it repeats', async () => {
    const { findings, read } = await tokenRead();
    const seq: Finding = { ...read, id: 'seq-1', rule: 'seq-credential-read-then-use', process: { ...read.process!, exe: '/usr/bin/curl' } };
    const t = trail();
    t.noteHostFindings([...findings, seq]);
    const [f] = linked(t, [request({ auditID: 'r-1', atMs: Date.parse(read.time) + 1000, jti: STOLEN })]);
    expect(f!.process).toEqual(read.process);
    const reads = findings.filter((x) => x.source === 'audit' && !x.rule.startsWith('seq-') && x.covers.some((c) => ['H1', 'H2', 'H3'].includes(c)));
    expect(t.stats.tokenReads).toBe(reads.length);
  });
});
