/**
 * What the detector decided about a repeat template (src/native/repeat-note.ts), and the proof that a
 * repeat of it decides the same. The reader thread guarantees the repeat's records equal the template's
 * but for stamp and pid; everything else a rule, the behaviour key, the allowlist, container attribution
 * or a sequence reads comes from state held here, and is compared:
 *   - the process table's entry of the pid (after the event is folded in) and every parent in its chain:
 *     pid, ppid, start time, exe, comm, argv, cwd, ids, tty, container;
 *   - the event's container (pod uid included) and its metadata, the watched object it touched;
 *   - the rule set and allowlist (an epoch: any change forgets every outcome).
 * A template is not reusable at all when its evaluation read state that is not in that list: Sigma rules
 * (they walk the records), a reader baseline or another process's container (EventView.contextual), a
 * runtime exec (it feeds the shim index), a read that both starts a sequence and is a use of one, or an
 * event cut short or with decoding problems.
 *
 * Sequences are checked per repeat (SequenceTracker.couldJoin) and a repeat of a sequence start notes
 * its own mark (SequenceTracker.note, as the full path does); a token read's jti is read for the repeat
 * and must be the template's; the behaviour key and the repeat suppression key are computed for the
 * repeat itself; findings are built only when an incident or a new mark keeps something, from the
 * rebuilt full event.
 */
import type { AuditEvent } from '../audit/event';
import type { CgroupIdentity } from '../enrich/cgroup';
import { sameArgv, type ProcessEntry } from '../enrich/process-table';
import type { Severity } from '../model/finding';
import type { ContainerMeta, EventView } from '../enrich/event-view';
import type { CompiledRule } from './score';

/** A kept rule hit of the template (not excluded, not allowlisted), in rule order. */
export interface TemplateHit {
  rule: CompiledRule;
  score: number;
  indicators: string[];
  severity: Severity;
}

export interface RepeatOutcome {
  epoch: number;
  /** Null: the template cannot stand for its repeats (reason), every repeat takes the full path. */
  unusable: string | null;
  ev: AuditEvent;
  entry: EntryPrint | null;
  parents: EntryPrint[];
  container: CgroupIdentity | null;
  meta: ContainerMeta | null;
  object: object | null;
  hits: TemplateHit[];
  excluded: number;
  allowlisted: number;
  /** Sequence rules whose `then` predicate held for the template (a repeat may complete one of them). */
  thenRules: CompiledRule[];
  /** The jti of the pod token the template read (null: none, or not a token): a repeat must read the same. */
  jti: string | null;
  /** The template's event, rewritten with each repeat's stamp and pid (engine onRepeat). */
  scratch?: AuditEvent;
}

/** The fields of a process-table entry that any rule or key reads, copied (entries are mutable). */
export interface EntryPrint {
  pid: number;
  ppid: number | null;
  startTime: number | null;
  exe: string | null;
  comm: string | null;
  argv: readonly string[] | null;
  cwd: string | null;
  uid: number | null;
  auid: number | null;
  tty: string | null;
  container: CgroupIdentity | null | undefined;
}

export function entryPrint(e: ProcessEntry): EntryPrint {
  return { pid: e.pid, ppid: e.ppid, startTime: e.startTime, exe: e.exe, comm: e.comm, argv: e.argv, cwd: e.cwd, uid: e.uid, auid: e.auid, tty: e.tty, container: e.container };
}

/** Flat objects (container identity, metadata, watched object hit): every own field equal. */
export function sameFlat(a: object | null | undefined, b: object | null | undefined): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const k of ka) if (ra[k] !== rb[k]) return false;
  return true;
}

/** `withPid`: the repeat's own entry is compared without its pid (and start time: a new process). */
function sameEntry(p: EntryPrint, e: ProcessEntry, withPid: boolean): boolean {
  return (
    (!withPid || (p.pid === e.pid && p.startTime === e.startTime)) &&
    p.ppid === e.ppid &&
    p.exe === e.exe &&
    p.comm === e.comm &&
    sameArgv(p.argv, e.argv) &&
    p.cwd === e.cwd &&
    p.uid === e.uid &&
    p.auid === e.auid &&
    p.tty === e.tty &&
    sameFlat(p.container, e.container)
  );
}

/**
 * Why the repeat's view differs from its template's (a short reason for the counters), or null when
 * everything the rules and keys read is the same.
 */
export function differs(t: RepeatOutcome, v: EventView, own: ProcessEntry | undefined): string | null {
  if ((t.entry === null) !== (own === undefined) || (t.entry !== null && own !== undefined && !sameEntry(t.entry, own, false))) return 'process';
  const parents = v.parents;
  if (parents.length !== t.parents.length) return 'parents';
  for (let i = 0; i < parents.length; i++) if (!sameEntry(t.parents[i]!, parents[i]!, true)) return 'parents';
  if (!sameFlat(t.container, v.container)) return 'container';
  if (!sameFlat(t.meta, v.containerMeta)) return 'container';
  if (!sameFlat(t.object, v.object)) return 'object';
  return null;
}

/**
 * Outcomes by template id, least recently used dropped first (as the template records are kept). Each
 * template keeps its last few outcomes (`variants`): one template's repeats can see the process table in
 * a few ways (a child the reader found in /proc, and one already gone), and replacing the one outcome on
 * every change would send every other repeat the full path.
 */
export class RepeatOutcomes {
  private readonly byId = new Map<number, RepeatOutcome[]>();
  constructor(
    private readonly kept: number,
    private readonly variants = 4,
  ) {}

  get(template: number): RepeatOutcome[] | undefined {
    const o = this.byId.get(template);
    if (o !== undefined) {
      this.byId.delete(template);
      this.byId.set(template, o);
    }
    return o;
  }

  /** The template's newest outcome first; those of older rules, and beyond `variants`, are dropped. */
  set(template: number, o: RepeatOutcome): void {
    const had = this.byId.get(template) ?? [];
    this.byId.delete(template);
    this.byId.set(template, [o, ...had.filter((x) => x.epoch === o.epoch)].slice(0, this.variants));
    if (this.byId.size > this.kept) this.byId.delete(this.byId.keys().next().value as number);
  }

  clear(): void {
    this.byId.clear();
  }
}
