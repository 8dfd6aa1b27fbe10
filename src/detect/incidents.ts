/**
 * One incident per behaviour. Rule hits whose behaviour key (behaviour-key.ts: actor + object) is the
 * same, and which come less than `windowMs` after the incident's last event, are merged into one
 * finding: highest severity (its rule becomes `rule`), every rule, indicator, ATT&CK id and covered
 * row, the evidence of each event (at most `maxEvidence`), `count`, `first_seen`, `last_seen`.
 *
 * The id is fixed when the incident opens (host, key, first event), so every later emission of it is an
 * update of the same finding, told apart by `revision` (store: upsert; shippers: receivers keep the
 * highest revision, docs/shipping.md). When an update is emitted:
 *   - a new rule joins or the severity rises: at once (an operator must see the escalation now);
 *   - anything else (more events, more evidence): at once if the incident was last emitted more than
 *     `updateEveryMs` (event time) before, else marked dirty and emitted by tick(); so a sporadic repeat
 *     is seen at once and a storm of repeats costs about two writes per incident a second at most.
 * The storm path is cheap: once an incident holds every rule that fires and its evidence is full, a hit
 * only counts (no finding is built, hashed or redacted). Open incidents are bounded (`maxOpen`, least
 * recently hit evicted first); every cut is counted in `stats` and never silent.
 *
 * A command line naming a file (H2: `cat /proc/4242/root/.../token`) is keyed by that name: which object
 * it is shows only with the open that follows. When its actor already has an incident about a watched
 * object, the name may be a new alias of it: such an incident is held, not emitted, for HOLD_MS of event
 * time (or until the next tick), and the open that shows it is the same object folds it into the
 * object's incident. Otherwise it goes out when the hold ends, revision 1 as any new incident. So a
 * second alias of one token is one incident whatever the order of exec and open, and the cost is a
 * hold of at most HOLD_MS (live: one tick) on that one case.
 */
import { createHash } from 'node:crypto';
import { severityRank, type Evidence, type Finding, type Severity } from '../model/finding';
import type { BehaviourKey } from './behaviour-key';

export interface IncidentOptions {
  /** An incident takes events until this long after its last one. Default 10 minutes. */
  windowMs?: number;
  /** Open incidents kept; beyond it the least recently hit is closed. Default 4096. */
  maxOpen?: number;
  /** Evidence events kept per incident; later events are counted, not kept. Default 16. */
  maxEvidence?: number;
  /** A plain update (no new rule, no higher severity) goes out at once only this long after the last. Default 1 s. */
  updateEveryMs?: number;
}

export interface IncidentStats {
  /** Incidents open now. */
  open: number;
  /** Incidents opened (first emission, revision 1). */
  opened: number;
  /** Rule hits merged into an already open incident. */
  merged: number;
  /** Later emissions of an incident (revision > 1). */
  updates: number;
  /** Incidents closed because their window passed. */
  closed: number;
  /** Incidents closed early because `maxOpen` was reached (a later repeat opens a new incident). */
  evicted: number;
  /** Events counted in an incident but whose evidence was not kept (`maxEvidence` reached). */
  evidenceCut: number;
  /** Held incidents (a name that may be an alias) folded into their object's incident, never emitted. */
  folded: number;
}

/** How long (event time) an incident keyed by a name that may be an alias is held for its open. */
export const HOLD_MS = 500;

/** What the engine knows about a rule hit before building anything. */
export interface RuleHit {
  rule: string;
  severity: Severity;
  eventId: string;
  timeMs: number;
  time: string;
  /** The event itself touched the object (an open or connect), not only named it on a command line. */
  touches: boolean;
  /**
   * The `jti` of the token file the event read (token claims), when known. A jti the incident has not
   * seen (the kubelet rotated the token between two reads) is news: the token trail must learn it from
   * an emitted revision, so the hit is built and emitted at once, never only counted.
   */
  jti?: string | null;
}

/** Distinct token ids remembered per incident (a rotation every hour for days stays small). */
const MAX_JTIS = 64;

interface Incident {
  finding: Finding;
  rules: Set<string>;
  eventIds: Set<string>;
  lastEventId: string;
  lastMs: number;
  dirty: boolean;
  /** Whether the process the incident shows touched the object (see speaksFor). */
  touches: boolean;
  /** Event time of the last emission. */
  emittedMs: number;
  /** Token ids read in this incident (see RuleHit.jti). */
  jtis: Set<string>;
  /** Not emitted yet: keyed by a name that may be an alias of an object (see the header). */
  held: boolean;
  /** Folded into this incident: hits reaching it under a stale key go there. */
  foldedInto: Incident | null;
}

/**
 * Emissions reduced to the latest revision of each finding, in the order they were first emitted: what a
 * receiver that keeps the highest revision ends up holding (replay prints this).
 */
export function latestRevisions(findings: Iterable<Finding>): Finding[] {
  const byId = new Map<string, Finding>();
  for (const f of findings) {
    const had = byId.get(f.id);
    if (!had || (f.revision ?? 0) > (had.revision ?? 0)) byId.set(f.id, f);
  }
  return [...byId.values()];
}

/** Key objects: a watched object's identity, and a file known only by its name (behaviour-key.ts). */
const OBJECT_ID = 'object:';
const FILE_NAME = 'file:';

function keyString(key: BehaviourKey): string {
  return `${key.actor}\0${key.object}`;
}

export function incidentId(host: string, key: BehaviourKey, firstEventId: string): string {
  return createHash('sha256').update(`incident\0${host}\0${key.actor}\0${key.object}\0${firstEventId}`).digest('hex').slice(0, 32);
}

function union(a: string[], b: readonly string[]): string[] {
  for (const x of b) if (!a.includes(x)) a.push(x);
  return a;
}

/** A copy that later merges cannot change (the batch writer and shippers hold emitted findings a while). */
function snapshot(f: Finding): Finding {
  return {
    ...f,
    rules: [...(f.rules ?? [])],
    indicators: [...f.indicators],
    covers: [...f.covers],
    mitre: [...f.mitre],
    evidence: f.evidence.map((e) => ({ ...e })),
  };
}

export class IncidentGrouper {
  readonly stats: IncidentStats = { open: 0, opened: 0, merged: 0, updates: 0, closed: 0, evicted: 0, evidenceCut: 0, folded: 0 };
  private readonly windowMs: number;
  private readonly maxOpen: number;
  private readonly maxEvidence: number;
  private readonly updateEveryMs: number;
  /** key -> incident; Map order is recency (a hit moves its incident to the end). */
  private readonly open = new Map<string, Incident>();
  /** Updates of incidents closed between ticks, emitted by the next tick. */
  private pending: Finding[] = [];
  /** Held incidents in the order they were opened (few: one per name that may be an alias). */
  private held: Incident[] = [];
  /** Actors with an incident about a watched object -> its last event time (bounded like `open`). */
  private readonly objectActors = new Map<string, number>();

  constructor(
    private readonly host: string,
    opts: IncidentOptions = {},
  ) {
    this.windowMs = opts.windowMs ?? 600_000;
    this.maxOpen = Math.max(1, opts.maxOpen ?? 4096);
    this.maxEvidence = Math.max(1, opts.maxEvidence ?? 16);
    this.updateEveryMs = opts.updateEveryMs ?? 1000;
  }

  /**
   * One rule hit with its behaviour key. `build` makes the rule's full finding and is called only when
   * something of it is kept. Returns the finding to emit now (new incident or escalation), else null.
   */
  hit(key: BehaviourKey, h: RuleHit, build: () => Finding): Finding | null {
    const k = keyString(key);
    let inc = this.open.get(k) ?? this.linked(key, h.timeMs);
    while (inc?.foldedInto) inc = inc.foldedInto;
    if (key.object.startsWith(OBJECT_ID)) this.noteObjectActor(key.actor, h.timeMs);
    // A held name folded in brings its rules: an escalation, emitted at once like a new rule.
    const folded = inc ? this.publish(key, inc) : false;
    if (inc && h.timeMs - inc.lastMs > this.windowMs) {
      this.close(k, inc);
      this.stats.closed++;
      inc = undefined;
    }
    if (!inc) {
      const f = this.start(k, key, h, build(), this.mayBeAlias(key, h));
      this.publish(key, this.open.get(k)!);
      return f;
    }
    this.open.delete(k);
    this.open.set(k, inc);
    this.stats.merged++;
    const f = inc.finding;
    if (h.eventId !== inc.lastEventId) {
      f.count = (f.count ?? 1) + 1;
      inc.lastEventId = h.eventId;
    }
    if (h.timeMs > inc.lastMs) {
      inc.lastMs = h.timeMs;
      f.last_seen = h.time;
    }
    const newRule = !inc.rules.has(h.rule);
    const raises = severityRank(h.severity) > severityRank(f.severity);
    const knownEvent = inc.eventIds.has(h.eventId);
    const newJti = h.jti !== undefined && h.jti !== null && !inc.jtis.has(h.jti);
    if (newJti) this.noteJti(inc, h.jti!);
    if (newRule || raises || newJti || (!knownEvent && f.evidence.length < this.maxEvidence)) {
      this.merge(inc, build(), h.touches, newJti);
    } else if (!knownEvent) {
      // Counted in `count`, evidence not kept: make the cut visible once per event.
      inc.eventIds.add(h.eventId);
      this.boundEventIds(inc);
      this.stats.evidenceCut++;
    }
    inc.dirty = true;
    // Held: only the open that shows the object ends the hold early (more names of it wait too). That
    // open shows the name is no alias of the actor's other object: the incident goes out now, its first
    // emission, known by the object it turned out to be (nobody saw the name's key).
    const unheld = inc.held;
    if (unheld && !h.touches) return null;
    if (unheld) this.rekey(inc, key);
    if (unheld || newRule || raises || newJti || folded || h.timeMs - inc.emittedMs >= this.updateEveryMs) {
      inc.emittedMs = Math.max(inc.emittedMs, h.timeMs);
      return this.emit(inc);
    }
    return null;
  }

  /** Emits dirty incidents (revision + 1) and closes those whose window passed. Call about once a second. */
  tick(nowMs: number): Finding[] {
    this.held = [];
    const out = this.pending;
    this.pending = [];
    for (const [k, inc] of this.open) {
      if (inc.dirty) out.push(this.emit(inc)); // an incident under several keys is emitted once: emit() clears dirty
      if (nowMs - inc.lastMs > this.windowMs) {
        this.open.delete(k);
        this.stats.closed++;
      }
    }
    this.stats.open = this.open.size;
    return out;
  }

  /** Whether an incident may be held now (see the header); tick() releases them all. */
  get holding(): boolean {
    return this.held.length > 0;
  }

  /**
   * Held incidents whose hold passed by `nowMs` (event time), emitted now (revision 1). Call for each
   * event while `holding`: replay ticks only at its end, and a hold must not last the whole log.
   */
  releaseHeld(nowMs: number): Finding[] {
    const out: Finding[] = [];
    while (this.held.length > 0 && nowMs - this.held[0]!.lastMs > HOLD_MS) {
      const inc = this.held.shift()!;
      if (inc.held && inc.foldedInto === null) out.push(this.emit(inc));
    }
    return out;
  }

  /**
   * A command line naming a file, by an actor with an open incident about a watched object: the name
   * may be another alias of that object, so its incident waits for the open (see the header).
   */
  private mayBeAlias(key: BehaviourKey, h: RuleHit): boolean {
    if (h.touches || !key.object.startsWith(FILE_NAME)) return false;
    const t = this.objectActors.get(key.actor);
    return t !== undefined && h.timeMs - t <= this.windowMs;
  }

  private noteObjectActor(actor: string, timeMs: number): void {
    this.objectActors.delete(actor);
    this.objectActors.set(actor, timeMs);
    if (this.objectActors.size > this.maxOpen) this.objectActors.delete(this.objectActors.keys().next().value as string);
  }

  /**
   * The key's other names now lead to this incident. An incident that held one of them (a command line
   * naming a second alias of an object, keyed by that name before the open showed which object it is)
   * is reached no more under it: held, it is folded into this one and never emitted; already emitted,
   * its pending update goes out with the next tick, not lost.
   */
  private publish(key: BehaviourKey, inc: Incident): boolean {
    let newRule = false;
    for (const p of key.publishes ?? []) {
      const pk = keyString(p);
      const had = this.open.get(pk);
      if (had && had !== inc && had.foldedInto === null) {
        if (had.held) newRule = this.fold(had, inc) || newRule;
        else if (had.dirty) this.pending.push(this.emit(had));
      }
      this.open.set(pk, inc);
    }
    return newRule;
  }

  /** `from` (held, never emitted) becomes part of `into`: its rules, evidence and events. True: a rule new to `into`. */
  private fold(from: Incident, into: Incident): boolean {
    const f = into.finding;
    const g = from.finding;
    const before = into.rules.size;
    let fresh = from.finding.count ?? 1;
    for (const id of from.eventIds) if (into.eventIds.has(id)) fresh--;
    this.merge(into, g, from.touches);
    f.count = (f.count ?? 1) + Math.max(0, fresh);
    if (g.first_seen !== undefined && (f.first_seen === undefined || g.first_seen < f.first_seen)) f.first_seen = g.first_seen;
    if (from.lastMs > into.lastMs) {
      into.lastMs = from.lastMs;
      f.last_seen = g.last_seen;
    }
    for (const r of from.rules) into.rules.add(r);
    union(f.rules!, [...from.rules]);
    into.dirty = true;
    from.held = false;
    from.dirty = false;
    from.foldedInto = into;
    this.stats.opened--;
    this.stats.folded++;
    return into.rules.size > before;
  }

  /** An open incident under one of the key's links: the key becomes another name of it. */
  private linked(key: BehaviourKey, timeMs: number): Incident | undefined {
    for (const l of key.links ?? []) {
      const inc = this.open.get(keyString(l));
      if (inc && timeMs - inc.lastMs <= (l.withinMs ?? this.windowMs)) {
        this.open.set(keyString(key), inc);
        return inc;
      }
    }
    return undefined;
  }

  private start(k: string, key: BehaviourKey, h: RuleHit, first: Finding, hold = false): Finding | null {
    const f: Finding = {
      ...first,
      id: incidentId(this.host, key, h.eventId),
      rules: [first.rule],
      indicators: [...first.indicators],
      covers: [...first.covers],
      mitre: [...first.mitre],
      count: 1,
      first_seen: h.time,
      last_seen: h.time,
      revision: 0,
      incident: { actor: key.actor, object: key.object },
      evidence: first.evidence.slice(0, this.maxEvidence).map((e) => this.tagged(first.rule, e)),
    };
    const inc: Incident = {
      finding: f,
      rules: new Set([first.rule]),
      eventIds: new Set(f.evidence.map((e) => e.event_id)),
      lastEventId: h.eventId,
      lastMs: h.timeMs,
      dirty: false,
      touches: h.touches,
      emittedMs: h.timeMs,
      jtis: new Set(),
      held: false,
      foldedInto: null,
    };
    if (h.jti) this.noteJti(inc, h.jti);
    inc.eventIds.add(h.eventId);
    this.open.set(k, inc);
    this.stats.opened++;
    if (this.open.size > this.maxOpen) {
      const [oldKey, oldest] = this.open.entries().next().value as [string, Incident];
      this.close(oldKey, oldest);
      this.stats.evicted++;
    }
    this.stats.open = this.open.size;
    if (hold) {
      inc.held = true;
      inc.dirty = true; // the next tick emits it if nothing folds it first
      this.held.push(inc);
      return null;
    }
    return this.emit(inc);
  }

  /**
   * Which process the incident shows: the most severe hit's; at equal severity the one that touched the
   * object (the `cat` in the pod rather than the `docker exec` that started it), else the program a
   * wrapper became (`bash -c curl ...` exec'd under the same pid) or started (a descendant).
   */
  private speaksFor(inc: Incident, g: Finding, touches: boolean): boolean {
    const f = inc.finding;
    const d = severityRank(g.severity) - severityRank(f.severity);
    if (d !== 0) return d > 0;
    if (touches !== inc.touches) return touches;
    const mine = f.process?.pid;
    if (mine === null || mine === undefined || !g.process) return false;
    return g.process.pid === mine || g.process.parents.some((p) => p.pid === mine);
  }

  private noteJti(inc: Incident, jti: string): void {
    if (inc.jtis.size >= MAX_JTIS) inc.jtis.delete(inc.jtis.values().next().value as string);
    inc.jtis.add(jti);
  }

  /** `newToken`: g read a token the incident had not seen; the incident shows the newest token read. */
  private merge(inc: Incident, g: Finding, touches: boolean, newToken = false): void {
    const f = inc.finding;
    inc.rules.add(g.rule);
    union(f.rules!, [g.rule]);
    union(f.indicators, g.indicators);
    union(f.covers, g.covers);
    union(f.mitre, g.mitre);
    if (this.speaksFor(inc, g, touches)) {
      // This hit speaks for the incident: its rule, title, process and container.
      inc.touches = touches;
      f.rule = g.rule;
      f.severity = g.severity;
      f.title = g.title;
      f.description = g.description;
      f.confidence = g.confidence;
      f.process = g.process;
      f.container = g.container ?? f.container;
      if (g.object) f.object = g.object;
      if (g.token) f.token = g.token;
    }
    // The owner of the object touched (the pod whose token it is) is kept whichever hit opened the
    // incident: a command line naming the token (H2) has no watch hit, the open that follows (H3) has.
    f.container ??= g.container;
    if (g.object && !f.object) f.object = g.object;
    // Likewise the claims of the token read (token trail): an H2 opening the incident has none.
    if (g.token && (!f.token || newToken)) f.token = g.token;
    // A read of the watched file that yielded no claims (the file is no longer a token: not a JWT, too
    // large) is the newest read: the incident no longer vouches for the old claims.
    if (g.object && !g.token && f.token) delete f.token;
    f.score = Math.max(f.score, g.score);
    for (const e of g.evidence) {
      const have = f.evidence.find((x) => x.event_id === e.event_id);
      if (have) {
        const role = `${g.rule}:${e.role}`;
        if (!have.role.split(';').includes(role)) have.role += `;${role}`;
      } else if (f.evidence.length < this.maxEvidence) {
        f.evidence.push(this.tagged(g.rule, e));
      } else if (!inc.eventIds.has(e.event_id)) {
        this.stats.evidenceCut++;
      }
      inc.eventIds.add(e.event_id);
    }
    this.boundEventIds(inc);
  }

  private tagged(rule: string, e: Evidence): Evidence {
    return { ...e, role: `${rule}:${e.role}` };
  }

  /** The ids are only there to count each event once; keep the set small in a storm. */
  private boundEventIds(inc: Incident): void {
    if (inc.eventIds.size <= 4 * this.maxEvidence) return;
    inc.eventIds = new Set(inc.finding.evidence.map((e) => e.event_id));
    inc.eventIds.add(inc.lastEventId);
  }

  /** A held incident's key and id become those of the object its open showed (before its first emission). */
  private rekey(inc: Incident, key: BehaviourKey): void {
    if (!key.object.startsWith(OBJECT_ID)) return;
    const f = inc.finding;
    f.incident = { actor: key.actor, object: key.object };
    // The id is made from the first event, as start() made it (evidence keeps the first events).
    f.id = incidentId(this.host, key, f.evidence[0]?.event_id ?? inc.lastEventId);
  }

  private emit(inc: Incident): Finding {
    inc.held = false;
    inc.finding.revision = (inc.finding.revision ?? 0) + 1;
    if (inc.finding.revision > 1) this.stats.updates++;
    inc.dirty = false;
    return snapshot(inc.finding);
  }

  private close(k: string, inc: Incident): void {
    this.open.delete(k);
    if (inc.dirty) this.pending.push(this.emit(inc));
  }
}
