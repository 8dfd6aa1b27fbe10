/**
 * Sequence joins: a credential read (a finding of one of a sequence rule's `after` rules) followed
 * within a window by a use of it (the rule's `then` event: a connect to the API server, kubelet,
 * etcd or a runtime socket, or a client exec aimed at them) from the same process tree or the same
 * container. Kept small: marks are bounded in number and age; each mark joins at most once per
 * sequence rule, so one theft followed by a burst of API calls gives one sequence finding.
 */
import type { Finding } from '../model/finding';
import type { CompiledRule } from './score';
import type { EventView } from '../enrich/event-view';

export interface SequenceMark {
  rule: string;
  finding: Finding;
  timeMs: number;
  pid: number | null;
  /** pid and its parent: a follow-up whose pid, parent or grandparent is here is the same tree. */
  tree: Set<number>;
  containerId: string | null;
  /**
   * The node the read was on (`node=` of a log of several; null live): pids and trees repeat from node
   * to node, so a mark joins only events of its own node.
   */
  node: string | null;
  joined: Set<string>;
  /** rule, node, pid and container: repeated reads by one process refresh one mark (see note()). */
  key: string;
}

// Ancestors that everything descends from; sharing one of them says nothing.
const ROOT_PROGRAMS = new Set(['systemd', 'init', 'containerd-shim', 'containerd-shim-runc-v2', 'containerd', 'dockerd', 'sshd', 'runc', 'conmon', 'crio', 'kubelet']);

function treeOf(v: EventView, depth: number): number[] {
  const out: number[] = [];
  if (v.pid !== null) out.push(v.pid);
  for (const p of v.parents.slice(0, depth)) {
    const prog = p.exe ? p.exe.slice(p.exe.lastIndexOf('/') + 1) : null;
    if (p.pid <= 1 || (prog !== null && ROOT_PROGRAMS.has(prog))) break;
    out.push(p.pid);
  }
  return out;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class SequenceTracker {
  private marks: SequenceMark[] = [];
  /** The newest mark per key, while it has joined nothing yet. */
  private readonly open = new Map<string, SequenceMark>();

  constructor(
    private readonly maxMarks = 4096,
    private readonly maxWindowMs = 3_600_000,
  ) {}

  get size(): number {
    return this.marks.length;
  }

  /**
   * Remembers a finding that may start a sequence. A process that reads the same credential again
   * and again (a client re-reading its token, or a flood meant to push real marks out) refreshes its
   * one open mark instead of adding one per read: the window then runs from the latest read, the
   * evidence is the strongest read's (the latest on a tie, unless it matched the very same indicators:
   * then it says nothing new), and memory and per-join work stay bounded by processes, not reads.
   * `build` makes the finding only when it is kept: building and redacting one per repeated read was
   * most of the cost of a read flood.
   */
  note(rule: string, score: number, indicators: readonly string[], v: EventView, build: () => Finding): void {
    const containerId = v.container?.containerId ?? null;
    const node = v.ev.node ?? null;
    const key = `${rule}\0${node ?? ''}\0${v.pid ?? ''}\0${containerId ?? ''}`;
    const prev = this.open.get(key);
    if (prev !== undefined && prev.joined.size === 0 && v.ev.timeMs >= prev.timeMs) {
      prev.timeMs = v.ev.timeMs;
      // Keep the strongest read as the evidence (a later read may carry more indicators).
      const old = prev.finding;
      if (score > old.score || (score === old.score && !sameList(indicators, old.indicators))) prev.finding = build();
      return;
    }
    const finding = build();
    const mark: SequenceMark = {
      rule: finding.rule,
      finding,
      timeMs: v.ev.timeMs,
      pid: v.pid,
      tree: new Set(treeOf(v, 1)),
      containerId,
      node,
      joined: new Set(),
      key,
    };
    this.marks.push(mark);
    this.open.set(key, mark);
    if (this.marks.length > this.maxMarks) {
      for (const gone of this.marks.splice(0, this.marks.length - this.maxMarks)) this.forget(gone);
    }
  }

  private forget(m: SequenceMark): void {
    if (this.open.get(m.key) === m) this.open.delete(m.key);
  }

  /** Marks that this event completes for the given sequence rule (each returned mark is consumed). */
  match(rule: CompiledRule, v: EventView): SequenceMark[] {
    if (!rule.spec.sequence || !rule.thenPred || this.marks.length === 0) return [];
    // The `then` predicate first: it is false for nearly every event, and the marks can number
    // thousands (every credential read notes one, repeats included), so scanning them per event
    // was the agent's biggest CPU cost under load.
    if (!rule.thenPred(v)) return [];
    const out = this.joinable(rule, v);
    for (const m of out) m.joined.add(rule.spec.id);
    return out;
  }

  /**
   * Whether match() would consume a mark for this event, given that the rule's `then` predicate holds
   * for it; changes nothing. A repeat whose template passed `then` asks this (detect/repeat-outcomes.ts).
   */
  couldJoin(rule: CompiledRule, v: EventView): boolean {
    return rule.spec.sequence !== undefined && this.marks.length > 0 && this.joinable(rule, v).length > 0;
  }

  private joinable(rule: CompiledRule, v: EventView): SequenceMark[] {
    const seq = rule.spec.sequence!;
    const after = seq.after;
    const windowMs = seq.window_s * 1000;
    const node = v.ev.node ?? null;
    let candidates: SequenceMark[] | null = null;
    for (const m of this.marks) {
      if (m.node !== node || !after.includes(m.rule) || m.joined.has(rule.spec.id)) continue;
      const dt = v.ev.timeMs - m.timeMs;
      if (dt < 0 || dt > windowMs) continue;
      (candidates ??= []).push(m);
    }
    if (!candidates) return [];
    const tree = seq.join.includes('process_tree') ? treeOf(v, 2) : [];
    const cid = seq.join.includes('container') ? (v.container?.containerId ?? null) : null;
    const out: SequenceMark[] = [];
    for (const m of candidates) {
      const sameTree = tree.some((p) => m.tree.has(p));
      const sameContainer = cid !== null && m.containerId === cid;
      if (sameTree || sameContainer) out.push(m);
    }
    return out;
  }

  /** Drops marks older than the longest window (a full pass: refreshed marks are not in time order). */
  expire(nowMs: number): void {
    const cutoff = nowMs - this.maxWindowMs;
    if (!this.marks.some((m) => m.timeMs < cutoff)) return;
    const kept: SequenceMark[] = [];
    for (const m of this.marks) {
      if (m.timeMs >= cutoff) kept.push(m);
      else this.forget(m);
    }
    this.marks = kept;
  }
}
