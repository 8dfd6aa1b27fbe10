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

type RecordFields = Map<string, string[]>;

function push(m: RecordFields, k: string, vals: readonly string[]): void {
  const prev = m.get(k);
  if (prev) prev.push(...vals);
  else m.set(k, [...vals]);
}

/** Each record of the event as Sigma auditd fields (parsed only when an auditd Sigma rule is loaded). */
export function auditdRecords(ev: AuditEvent): RecordFields[] {
  const out: RecordFields[] = [];
  const cur = new FieldCursor();
  for (const r of ev.records) {
    const m: RecordFields = new Map([['type', [r.type]]]);
    const parsed = parseRecord({ type: recordTypeNumber(r.type) ?? 0, text: r.text });
    const isExecve = r.type === 'EXECVE' && ev.process?.argv;
    if (!parsed.failed) {
      cur.resetRecord(parsed);
      while (cur.next()) {
        const k = cur.key();
        if (isExecve && (ARG.test(k) || k.includes('['))) continue;
        const val = UNTRUSTED.has(k) || ARG.test(k) ? cur.untrusted() : cur.isAbsent() ? null : cur.raw();
        if (val === null) continue;
        push(m, k, k === 'name' ? (withStripped(val, stripProcRoot) ?? []) : [val]);
      }
    }
    if (isExecve) ev.process!.argv!.forEach((a, i) => m.set(`a${i}`, [a]));
    if (r.type === 'SYSCALL' && ev.syscall?.name) m.set('SYSCALL', [ev.syscall.name]);
    out.push(m);
  }
  return out;
}

/** Getters for auditd rules: one per record, with the record's type. */
export function auditdFields(ev: AuditEvent): { type: string; get: FieldGetter }[] {
  return auditdRecords(ev).map((m) => ({ type: (m.get('type')?.[0] ?? '').toUpperCase(), get: (field: string) => m.get(field) ?? null }));
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
