/**
 * Sequence joins: a credential read (a finding of one of a sequence rule's `after` rules) followed
 * within a window by a use of it (the rule's `then` event: a connect to the API server, kubelet,
 * etcd or a runtime socket, or a client exec aimed at them) from the same process tree or the same
 * container. Kept small: marks are bounded in number and age; each mark joins at most once per
 * sequence rule, so one theft followed by a burst of API calls gives one sequence finding.
 */
import type { Finding } from './finding';
import type { CompiledRule } from './score';
import type { EventView } from './event-view';

export interface SequenceMark {
  rule: string;
  finding: Finding;
  timeMs: number;
  pid: number | null;
  /** pid and its parent: a follow-up whose pid, parent or grandparent is here is the same tree. */
  tree: Set<number>;
  containerId: string | null;
  joined: Set<string>;
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

export class SequenceTracker {
  private marks: SequenceMark[] = [];

  constructor(
    private readonly maxMarks = 4096,
    private readonly maxWindowMs = 3_600_000,
  ) {}

  get size(): number {
    return this.marks.length;
  }

  /** Remembers a finding that may start a sequence. */
  note(finding: Finding, v: EventView): void {
    this.marks.push({
      rule: finding.rule,
      finding,
      timeMs: v.ev.timeMs,
      pid: v.pid,
      tree: new Set(treeOf(v, 1)),
      containerId: v.container?.containerId ?? null,
      joined: new Set(),
    });
    if (this.marks.length > this.maxMarks) this.marks.splice(0, this.marks.length - this.maxMarks);
  }

  /** Marks that this event completes for the given sequence rule (each returned mark is consumed). */
  match(rule: CompiledRule, v: EventView): SequenceMark[] {
    const seq = rule.spec.sequence;
    if (!seq || !rule.thenPred || this.marks.length === 0) return [];
    // The `then` predicate first: it is false for nearly every event, and the marks can number
    // thousands (every credential read notes one, repeats included), so scanning them per event
    // was the agent's biggest CPU cost under load.
    if (!rule.thenPred(v)) return [];
    const after = seq.after;
    const windowMs = seq.window_s * 1000;
    let candidates: SequenceMark[] | null = null;
    for (const m of this.marks) {
      if (!after.includes(m.rule) || m.joined.has(rule.spec.id)) continue;
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
      if (!sameTree && !sameContainer) continue;
      m.joined.add(rule.spec.id);
      out.push(m);
    }
    return out;
  }

  /** Drops marks older than the longest window. */
  expire(nowMs: number): void {
    const cutoff = nowMs - this.maxWindowMs;
    if (this.marks.length > 0 && (this.marks[0] as SequenceMark).timeMs < cutoff) {
      this.marks = this.marks.filter((m) => m.timeMs >= cutoff);
    }
  }
}
