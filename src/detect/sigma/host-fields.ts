/**
 * The fields a Sigma rule sees in one host audit event.
 *
 * process_creation: one exec event as Sysmon-for-Linux names it. CommandLine is argv joined by
 * spaces as executed, plus (when it differs) the same text with `/proc/<pid>/root` prefixes removed,
 * so that `cat /proc/self/root/etc/shadow` reads as `/etc/shadow` does; ParentImage and
 * ParentCommandLine come from the process table (the nearest known ancestor).
 *
 * auditd: one raw record at a time, as SigmaHQ's auditd rules are written (`type: PATH` + `name:`,
 * `type: EXECVE` + `a0:`, `type: SYSCALL` + `SYSCALL:`); a rule fires when any record of the event
 * satisfies it. Kernel "untrusted strings" (hex or quoted) are decoded; EXECVE's a0..aN come from the
 * reassembled argv (long arguments split over a3[0], a3[1]... are whole again); SYSCALL is the
 * syscall's name.
 */
import type { AuditEvent } from '../../audit/event';
import { FieldCursor, parseRecord } from '../../audit/record';
import { recordTypeNumber } from '../../audit/record-types';
import { stripProcRoot, stripProcRootsInText } from '../../enrich/watched-objects';
import type { EventView } from '../../enrich/event-view';
import type { FieldGetter, SigmaRule } from './compile';
import type { Cond } from './condition';

const UNTRUSTED = new Set(['comm', 'exe', 'cwd', 'name', 'key', 'proctitle', 'data', 'cmd', 'path', 'ocomm', 'acct']);
const ARG = /^a\d+$/;

function withStripped(s: string | null, strip: (x: string) => string): string[] | null {
  if (s === null) return null;
  const t = strip(s);
  return t === s ? [s] : [s, t];
}

/** Getter for a process_creation rule, or null when the event is not an exec. */
export function processCreationFields(v: EventView, userName: (uid: number | null) => string | null): FieldGetter | null {
  if (v.kind !== 'exec') return null;
  const p = v.ev.process;
  const argv = p?.argv ?? null;
  const cache = new Map<string, readonly string[] | null>();
  const compute = (field: string): readonly string[] | null => {
    switch (field) {
      case 'Image':
        return v.exe === null ? null : [v.exe];
      case 'CommandLine':
        return argv === null ? null : withStripped(argv.join(' '), stripProcRootsInText);
      case 'ParentImage': {
        const e = v.parents[0]?.exe ?? null;
        return e === null ? null : [e];
      }
      case 'ParentCommandLine': {
        const a = v.parents[0]?.argv ?? null;
        return a === null ? null : withStripped(a.join(' '), stripProcRootsInText);
      }
      case 'User': {
        const uid = p?.uid ?? null;
        if (uid === null) return null;
        const name = userName(uid);
        return name === null ? [String(uid)] : [name, String(uid)];
      }
      case 'CurrentDirectory':
        return v.cwd === null ? null : [v.cwd];
      case 'ProcessId':
        return p?.pid == null ? null : [String(p.pid)];
      case 'ParentProcessId':
        return p?.ppid == null ? null : [String(p.ppid)];
      case 'LogonId':
        return v.auid === null ? null : [String(v.auid)];
      default:
        return null;
    }
  };
  return (field) => {
    if (!cache.has(field)) cache.set(field, compute(field));
    return cache.get(field) ?? null;
  };
}

/**
 * One record's auditd fields, parsed on first ask and only for the fields some rule reads (`fields`):
 * a record no rule's prefilter asks about is never parsed, and one scan fills every field wanted. A
 * field that occurs several times in the record (never in the kernel's own records; possible in a user
 * message) has every value.
 */
class RecordFieldGetter {
  private scanned: Map<string, string[]> | null = null;
  readonly get: FieldGetter = (field) => {
    const r = this.rec;
    if (field === 'type') return [r.type];
    if (this.argv && ARG.test(field)) {
      const a = this.argv[Number(field.slice(1))];
      return a === undefined ? null : [a];
    }
    if (field === 'SYSCALL' && r.type === 'SYSCALL' && this.ev.syscall?.name) return [this.ev.syscall.name];
    return (this.scanned ??= this.scan()).get(field) ?? null;
  };
  private readonly argv: readonly string[] | null;

  constructor(
    private readonly ev: AuditEvent,
    private readonly rec: AuditEvent['records'][number],
    private readonly fields: ReadonlySet<string>,
  ) {
    this.argv = rec.type === 'EXECVE' ? (ev.process?.argv ?? null) : null;
  }

  /**
   * Whether every field a rule can read here comes from the event's argv (and the type): true for the
   * EXECVE records of an exec whose argv is known when none holds another wanted field. All such
   * records of one event then answer alike, and one of them stands for the rest.
   */
  argvOnly(): boolean {
    return this.argv !== null && (this.scanned ??= this.scan()).size === 0;
  }

  private scan(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    const parsed = parseRecord({ type: recordTypeNumber(this.rec.type) ?? 0, text: this.rec.text });
    if (parsed.failed) return out;
    const cur = new FieldCursor().resetRecord(parsed);
    while (cur.next()) {
      const k = cur.key();
      if (!this.fields.has(k) || (this.argv && (ARG.test(k) || k.includes('[')))) continue;
      const val = UNTRUSTED.has(k) || ARG.test(k) ? cur.untrusted() : cur.isAbsent() ? null : cur.raw();
      if (val === null) continue;
      const vals = k === 'name' ? (withStripped(val, stripProcRoot) ?? []) : [val];
      const prev = out.get(k);
      if (prev) prev.push(...vals);
      else out.set(k, vals);
    }
    return out;
  }
}

/**
 * Getters for auditd rules: one per record, with the record's upper-cased type; only the records
 * whose type `wanted` accepts, each holding the fields its type's rules read.
 */
export function auditdFields(ev: AuditEvent, fieldsFor: (type: string) => ReadonlySet<string> | null): { type: string; get: FieldGetter }[] {
  const out: { type: string; get: FieldGetter }[] = [];
  // A 1.2 MB argv comes in ~160 EXECVE records, and each answered a0..aN from the same argv: every
  // rule's prefilter and match ran 160 times for one answer (each rule fires at most once an event).
  let argvRecordSeen = false;
  for (const r of ev.records) {
    const type = r.type.toUpperCase();
    const fields = fieldsFor(type);
    if (fields === null) continue;
    const getter = new RecordFieldGetter(ev, r, fields);
    if (type === 'EXECVE' && getter.argvOnly()) {
      if (argvRecordSeen) continue;
      argvRecordSeen = true;
    }
    out.push({ type, get: getter.get });
  }
  return out;
}

/**
 * The record types an auditd rule can match, or null when it could match any: every positive
 * selection that pins `type:` (no modifier, no wildcard) narrows it; `not` narrows nothing. Lets the
 * engine try a rule only on the records it can match (SigmaHQ's auditd rules all pin a type).
 */
export function requiredRecordTypes(r: Pick<SigmaRule, 'condition' | 'selections'>): Set<string> | null {
  const ofSelection = (name: string): Set<string> | null => {
    const groups = r.selections.get(name) ?? [];
    const out = new Set<string>();
    for (const g of groups) {
      const t = g.find((x) => x.field === 'type' && x.modifiers.length === 0 && x.values.every((v) => v !== null && !/[*?\\]/.test(v)));
      if (!t) return null;
      for (const v of t.values) out.add((v as string).toUpperCase());
    }
    return out;
  };
  const walk = (c: Cond): Set<string> | null => {
    if (c.op === 'sel') return ofSelection(c.name);
    if (c.op === 'not') return null;
    const a = walk(c.a);
    const b = walk(c.b);
    if (c.op === 'or') return a && b ? new Set([...a, ...b]) : null;
    if (a && b) return new Set([...a].filter((x) => b.has(x)));
    return a ?? b;
  };
  return walk(r.condition);
}
