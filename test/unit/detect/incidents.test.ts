/**
 * IncidentGrouper (src/detect/incidents.ts): one finding per behaviour key and window, updates carried
 * by revision, the storm path building nothing, and every cut counted.
 */
import { describe, expect, it } from 'vitest';
import type { Finding, Severity } from '../../../src/model/finding';
import { IncidentGrouper, latestRevisions, type RuleHit } from '../../../src/detect/incidents';

const T0 = 1_800_000_000_000;
const KEY = { actor: 'container:af54a767e601', object: 'file:/run/secrets/kubernetes.io/serviceaccount/token' };

function ruleFinding(rule: string, severity: Severity, eventId: string, pid = 10): Finding {
  return {
    id: `raw-${rule}-${eventId}`,
    rule,
    title: `title of ${rule}`,
    description: '',
    severity,
    score: 2,
    confidence: 'medium',
    covers: [rule.slice(0, 2).toUpperCase()],
    mitre: ['T1552.007'],
    time: new Date(T0).toISOString(),
    host: 'node-a',
    source: 'audit',
    indicators: [`${rule}-ind`],
    process: { pid, ppid: 1, exe: null, comm: null, argv: null, cwd: null, uid: 0, user: null, auid: null, tty: null, interactive: false, parents: [] },
    container: null,
    kube: null,
    evidence: [{ event_id: eventId, time: new Date(T0).toISOString(), role: `${rule}-ind`, records: [{ type: 'SYSCALL', text: 'x' }] }],
  };
}

function hit(rule: string, severity: Severity, n: number, dtMs = n, touches = false): RuleHit {
  return { rule, severity, eventId: `e${n}`, timeMs: T0 + dtMs, time: new Date(T0 + dtMs).toISOString(), touches };
}

describe('IncidentGrouper', () => {
  it('merges several rules on one behaviour into one finding: highest severity, all rules, all evidence', () => {
    const g = new IncidentGrouper('node-a');
    const a = g.hit(KEY, hit('h8', 'medium', 1), () => ruleFinding('h8', 'medium', 'e1'));
    const b = g.hit(KEY, hit('h2', 'high', 1), () => ruleFinding('h2', 'high', 'e1'));
    const c = g.hit(KEY, hit('h1', 'high', 2), () => ruleFinding('h1', 'high', 'e2'));
    expect(a?.revision).toBe(1);
    expect(b?.id).toBe(a?.id);
    expect(b?.revision).toBe(2);
    expect(b?.severity).toBe('high');
    expect(b?.rule).toBe('h2');
    expect(c?.id).toBe(a?.id);
    expect(c?.rules).toEqual(['h8', 'h2', 'h1']);
    expect(c?.count).toBe(2);
    expect(c?.evidence.map((e) => e.event_id)).toEqual(['e1', 'e2']);
    expect(c?.evidence[0]?.role).toBe('h8:h8-ind;h2:h2-ind');
    expect(c?.first_seen).toBe(new Date(T0 + 1).toISOString());
    expect(c?.last_seen).toBe(new Date(T0 + 2).toISOString());
    expect(c?.incident).toEqual(KEY);
  });

  it('repeats update the finding at the next tick instead of writing new ones; the id stays', () => {
    const g = new IncidentGrouper('node-a');
    const first = g.hit(KEY, hit('h7', 'high', 1), () => ruleFinding('h7', 'high', 'e1'));
    for (let i = 2; i <= 100; i++) expect(g.hit(KEY, hit('h7', 'high', i), () => ruleFinding('h7', 'high', `e${i}`))).toBeNull();
    const [update, ...rest] = g.tick(T0 + 1000);
    expect(rest).toEqual([]);
    expect(update?.id).toBe(first?.id);
    expect(update?.revision).toBe(2);
    expect(update?.count).toBe(100);
    // Nothing new: a quiet tick emits nothing.
    expect(g.tick(T0 + 2000)).toEqual([]);
  });

  it('a repeat after a quiet second goes out at once, not at the next tick', () => {
    const g = new IncidentGrouper('node-a');
    const first = g.hit(KEY, hit('h1', 'high', 1), () => ruleFinding('h1', 'high', 'e1'));
    const later = g.hit(KEY, hit('h1', 'high', 2, 5000), () => ruleFinding('h1', 'high', 'e2'));
    expect(later?.id).toBe(first?.id);
    expect(later?.revision).toBe(2);
    expect(later?.count).toBe(2);
    expect(g.tick(T0 + 6000)).toEqual([]);
  });

  it('the storm path builds nothing once the rule is known and the evidence is full, and counts the cut', () => {
    const g = new IncidentGrouper('node-a', { maxEvidence: 4 });
    let builds = 0;
    const build = (n: number) => (): Finding => {
      builds++;
      return ruleFinding('h7', 'high', `e${n}`);
    };
    for (let i = 1; i <= 1000; i++) g.hit(KEY, hit('h7', 'high', i), build(i));
    expect(builds).toBe(4);
    expect(g.stats.evidenceCut).toBe(996);
    const [f] = g.tick(T0 + 2000);
    expect(f?.evidence).toHaveLength(4);
    expect(f?.count).toBe(1000);
  });

  it('an emitted finding does not change when the incident grows later', () => {
    const g = new IncidentGrouper('node-a');
    const first = g.hit(KEY, hit('h7', 'high', 1), () => ruleFinding('h7', 'high', 'e1'))!;
    g.hit(KEY, hit('h1', 'critical', 2), () => ruleFinding('h1', 'critical', 'e2'));
    expect(first.rules).toEqual(['h7']);
    expect(first.evidence).toHaveLength(1);
    expect(first.severity).toBe('high');
  });

  it('another object, another actor or a gap longer than the window opens another incident', () => {
    const g = new IncidentGrouper('node-a', { windowMs: 60_000 });
    const a = g.hit(KEY, hit('h1', 'high', 1), () => ruleFinding('h1', 'high', 'e1'));
    const b = g.hit({ ...KEY, object: 'file:/etc/kubernetes/admin.conf' }, hit('h1', 'high', 2), () => ruleFinding('h1', 'high', 'e2'));
    const c = g.hit({ ...KEY, actor: 'container:0123456789ab' }, hit('h1', 'high', 3), () => ruleFinding('h1', 'high', 'e3'));
    const d = g.hit(KEY, hit('h1', 'high', 4, 200_000), () => ruleFinding('h1', 'high', 'e4'));
    const ids = [a, b, c, d].map((f) => f?.id);
    expect(new Set(ids).size).toBe(4);
    expect(g.stats.closed).toBe(1);
  });

  it('ids are stable: the same host, key and first event give the same id', () => {
    const one = new IncidentGrouper('node-a').hit(KEY, hit('h1', 'high', 1), () => ruleFinding('h1', 'high', 'e1'));
    const two = new IncidentGrouper('node-a').hit(KEY, hit('h1', 'high', 1), () => ruleFinding('h1', 'high', 'e1'));
    const other = new IncidentGrouper('node-b').hit(KEY, hit('h1', 'high', 1), () => ruleFinding('h1', 'high', 'e1'));
    expect(one?.id).toBe(two?.id);
    expect(one?.id).toMatch(/^[0-9a-f]{32}$/);
    expect(other?.id).not.toBe(one?.id);
  });

  it('bounds open incidents: the least recently hit is evicted (its pending update still emitted) and counted', () => {
    const g = new IncidentGrouper('node-a', { maxOpen: 10 });
    const first = g.hit({ actor: 'host:1:', object: 'o0' }, hit('h7', 'high', 0), () => ruleFinding('h7', 'high', 'e0'));
    g.hit({ actor: 'host:1:', object: 'o0' }, hit('h7', 'high', 1), () => ruleFinding('h7', 'high', 'e1')); // dirty
    for (let i = 1; i <= 20; i++) g.hit({ actor: 'host:1:', object: `o${i}` }, hit('h7', 'high', 100 + i), () => ruleFinding('h7', 'high', `x${i}`));
    expect(g.stats.evicted).toBe(11);
    const out = g.tick(T0 + 1000);
    expect(g.stats.open).toBe(10);
    const update = out.find((f) => f.id === first?.id);
    expect(update?.count).toBe(2);
  });

  it('the hit that touched the object speaks for the incident at equal severity', () => {
    const g = new IncidentGrouper('node-a');
    g.hit(KEY, hit('h2', 'high', 1), () => ruleFinding('h2', 'high', 'e1', 100)); // docker exec ... cat token (argv)
    const f = g.hit(KEY, hit('h1', 'high', 2, 2, true), () => ruleFinding('h1', 'high', 'e2', 200)); // the open in the pod
    expect(f?.process?.pid).toBe(200);
    expect(f?.rule).toBe('h1');
  });

  it('keeps the owner of the object touched whichever hit opened the incident (a command line has none)', () => {
    const g = new IncidentGrouper('node-a');
    const owner = { class: 'pod-token', pod_uid: 'daae2199-3b7a-4544-98aa-fceb6e070cd7', container_id: null, via: 'inode' as const, foreign: true };
    // H2 on the exec (argv names the token, no watch hit) opens; H3 on the open (the watch hit) joins at
    // the same severity, then a later H2 repeat (no object) must not take the owner away.
    g.hit(KEY, hit('h2', 'high', 1), () => ruleFinding('h2', 'high', 'e1'));
    const joined = g.hit(KEY, hit('h3', 'high', 2, 2, true), () => ({ ...ruleFinding('h3', 'high', 'e2'), object: owner }));
    expect(joined?.object).toEqual(owner);
    const later = g.hit(KEY, hit('h2', 'high', 3, 5000), () => ruleFinding('h2', 'high', 'e3', 11));
    expect(later?.revision).toBe(3);
    expect(later?.object).toEqual(owner);
  });

  it('links: a runtime CLI run by a wrapper joins the wrapper incident, and a named container joins within seconds', () => {
    const g = new IncidentGrouper('node-a');
    const object = 'file:/run/secrets/kubernetes.io/serviceaccount/token';
    const host = { actor: 'host:77:', object };
    const wrapper = g.hit(host, hit('h2', 'high', 1), () => ruleFinding('h2', 'high', 'e1'));
    const cli = g.hit(
      { actor: 'container-name:web', object, links: [host], publishes: [{ actor: 'runtime-exec', object }] },
      hit('h8', 'medium', 2),
      () => ruleFinding('h8', 'medium', 'e2'),
    );
    const inPod = g.hit(
      { actor: 'container:af54a767e601', object, links: [{ actor: 'runtime-exec', object, withinMs: 5000 }] },
      hit('h1', 'high', 3, 3, true),
      () => ruleFinding('h1', 'high', 'e3'),
    );
    expect(cli?.id).toBe(wrapper?.id);
    expect(inPod?.id).toBe(wrapper?.id);
    expect(inPod?.rules).toEqual(['h2', 'h8', 'h1']);
    // Past the link's few seconds a container read is its own incident.
    const later = g.hit(
      { actor: 'container:0123456789ab', object, links: [{ actor: 'runtime-exec', object, withinMs: 5000 }] },
      hit('h1', 'high', 4, 60_000, true),
      () => ruleFinding('h1', 'high', 'e4'),
    );
    expect(later?.id).not.toBe(wrapper?.id);
  });

  it('latestRevisions keeps the highest revision of each id in first-emission order', () => {
    const a1 = { ...ruleFinding('a', 'high', 'e1'), id: 'a', revision: 1 };
    const b1 = { ...ruleFinding('b', 'high', 'e2'), id: 'b', revision: 1 };
    const a3 = { ...a1, revision: 3 };
    const a2 = { ...a1, revision: 2 };
    expect(latestRevisions([a1, b1, a3, a2]).map((f) => `${f.id}${f.revision}`)).toEqual(['a3', 'b1']);
  });
});
