/**
 * What an incident holds about one event. An incident is one finding per behaviour (src/detect/incidents.ts):
 * its `process` shows one process only, so a test that caused a second event of the same behaviour looks for
 * that event in the evidence, by the SYSCALL record of the process that made it (the raw, redacted audit
 * text the operator sees), and optionally by a PATH name or another record type of the same event.
 */
import type { Evidence, Finding } from '../../src/model/finding';

export interface EventOf {
  /** null (a pid not known) matches nothing. */
  pid?: number | null;
  comm?: string;
  exe?: string;
  /** A PATH record of the same event has exactly this name. */
  path?: string;
  /** The same event has a record of this type (e.g. URINGOP). */
  recordType?: string;
}

function syscallField(text: string, name: string): string | null {
  const m = new RegExp(`(?:^| )${name}=("[^"]*"|\\S+)`).exec(text);
  if (!m?.[1]) return null;
  return m[1].startsWith('"') ? m[1].slice(1, -1) : m[1];
}

function matches(e: Evidence, who: EventOf): boolean {
  const sys = e.records.find((r) => r.type === 'SYSCALL');
  if (!sys) return false;
  if (who.pid !== undefined && syscallField(sys.text, 'pid') !== String(who.pid)) return false;
  if (who.comm !== undefined && syscallField(sys.text, 'comm') !== who.comm) return false;
  if (who.exe !== undefined && syscallField(sys.text, 'exe') !== who.exe) return false;
  if (who.path !== undefined && !e.records.some((r) => r.type === 'PATH' && syscallField(r.text, 'name') === who.path)) return false;
  if (who.recordType !== undefined && !e.records.some((r) => r.type === who.recordType)) return false;
  return true;
}

/** The evidence events of `f` made by the process described (every given field must hold). */
export function evidenceOf(f: Finding, who: EventOf): Evidence[] {
  return f.evidence.filter((e) => matches(e, who));
}

export function hasEvidenceOf(f: Finding, who: EventOf): boolean {
  return f.evidence.some((e) => matches(e, who));
}

/** One line per evidence event (role, comm, pid, PATH names), for assertion messages. */
export function describeEvidence(f: Finding | undefined): string {
  if (!f) return '(no finding)';
  return f.evidence
    .map((e) => {
      const sys = e.records.find((r) => r.type === 'SYSCALL')?.text ?? '';
      const names = e.records.filter((r) => r.type === 'PATH').map((r) => syscallField(r.text, 'name'));
      return `${e.event_id} ${e.role} pid=${syscallField(sys, 'pid')} comm=${syscallField(sys, 'comm')} exe=${syscallField(sys, 'exe')} paths=${JSON.stringify(names)} types=${e.records.map((r) => r.type).join(',')}`;
    })
    .join('\n');
}
