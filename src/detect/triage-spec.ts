/**
 * The triage spec: what the native reader thread may test, per exec or connect event, to decide
 * whether ANY host rule could fire on it. Boring events (the vast majority at high exec rates) then
 * never become full AuditEvents in JavaScript.
 *
 * The spec is compiled from the loaded rule pack and is CONSERVATIVE: it may call a boring event
 * interesting (costs CPU) but must never call boring an event on which a rule could fire (a missed
 * detection). Every predicate that can make something happen on an event of a kind - each anchor
 * indicator, each novel_reader indicator (it learns even when it does not fire), each sequence
 * `then` spec, of every enabled rule - contributes one condition that is necessary for it: a match
 * spec is a conjunction, so any single conjunct is necessary. Exclusions and the allowlist only
 * suppress, so they are ignored.
 *
 * triageInteresting() is the reference verdict: the C++ side must agree with it.
 */
import type { AuditEvent } from '../audit/event';
import { baseName, commandLine, eventKind } from '../enrich/event-view';
import { asciiLower, requiredLiterals } from './regex-literals';
import type { LoadedRule } from './rule-loader';
import type { MatchSpec } from './rule-schema';
import type { NativeTriageSpec } from '../native/types';
import type { SigmaRule } from './sigma/compile';
import { WATCH_KEY_CLASS } from '../enrich/watched-objects';

/**
 * The contract with the native side (field meanings: NativeTriageSpec in src/native/types.ts), minus
 * the syscall numbers the daemon adds, plus why any *All flag was set.
 */
export interface TriageSpec extends Omit<NativeTriageSpec, 'syscalls'> {
  /** Why execAll / connectAll / the *All flags were set (for one log line at start). */
  reasons: string[];
}

/** What the native side knows about one complete exec or connect event. */
export interface TriageSummary {
  kind: 'exec' | 'connect';
  exe: string | null;
  /** exec only: decoded argv (null when unknown). */
  argv: string[] | null;
  /** connect only, as src/audit/sockaddr.ts formats it. */
  sockaddr: { family: string; port: number | null; addr: string | null; path: string | null } | null;
}

/** One predicate the triage must respect, named for log lines and test messages. */
export interface TriagePredicate {
  /** `rule-id/indicator-id` or `rule-id/sequence.then[i]`. */
  label: string;
  match: MatchSpec;
}

/** The predicates of enabled rules that can make something happen on a single event. */
export function triagePredicates(rules: readonly LoadedRule[]): TriagePredicate[] {
  const out: TriagePredicate[] = [];
  for (const r of rules) {
    if (!r.enabled) continue;
    for (const ind of r.indicators) {
      if (ind.anchor || ind.match.novel_reader) out.push({ label: `${r.id}/${ind.id}`, match: ind.match });
    }
    r.sequence?.then.forEach((m, i) => out.push({ label: `${r.id}/sequence.then[${i}]`, match: m }));
  }
  return out;
}

class SpecBuilder {
  readonly execPrograms = new Set<string>();
  readonly execExes = new Set<string>();
  readonly execArgvLiterals = new Set<string>();
  execAll = false;
  readonly connectExes = new Set<string>();
  readonly connectPorts = new Set<number>();
  readonly connectUnixLiterals = new Set<string>();
  connectUnixAll = false;
  readonly connectInet4Literals = new Set<string>();
  connectInet4All = false;
  connectInet6All = false;
  connectAll = false;
  readonly openPathLiterals = new Set<string>();
  readonly openObjectKeys = new Set<string>();
  openAll = false;
  readonly reasons: string[] = [];

  /**
   * open (replay): path literals, or the watch keys of the object classes asked for. A spec is a
   * conjunction, so one of the two suffices; any_of needs every branch covered.
   */
  addOpen(label: string, m: Omit<MatchSpec, 'event'>): void {
    if (m.path !== undefined) {
      const lits = requiredLiterals(m.path);
      if (lits) {
        for (const l of lits) this.openPathLiterals.add(l);
        return;
      }
    }
    if (m.object) {
      for (const [key, cls] of WATCH_KEY_CLASS) if (m.object.includes(cls)) this.openObjectKeys.add(key);
      return;
    }
    if (m.any_of) {
      for (const branch of m.any_of) this.addOpen(label, branch);
      return;
    }
    this.allOpen(`${label} has no path literal or object class the native triage can test`);
  }

  allOpen(why: string): void {
    this.openAll = true;
    this.reasons.push(`openAll: ${why}`);
  }

  /** exec: program > exe > argv literals > argv_all literals > everything. */
  addExec(label: string, m: MatchSpec): void {
    if (m.program && selective(m.program)) {
      // A program glob with '/' only ever matches the full exe path (argv0 is reduced to a basename).
      for (const g of m.program) (g.includes('/') ? this.execExes : this.execPrograms).add(g);
      return;
    }
    if (m.exe && selective(m.exe)) {
      for (const g of m.exe) this.execExes.add(g);
      return;
    }
    const fromArgv = m.argv !== undefined ? requiredLiterals(m.argv) : null;
    const lits = fromArgv ?? bestLiterals(m.argv_all ?? []);
    if (lits) {
      for (const l of lits) this.execArgvLiterals.add(l);
      return;
    }
    this.execAll = true;
    this.reasons.push(`execAll: ${label} has no program, exe or argv literal the native triage can test`);
  }

  /** connect: exe > sockaddr > everything. `program` and argv come from the process table there. */
  addConnect(label: string, m: MatchSpec): void {
    if (m.exe && selective(m.exe)) {
      for (const g of m.exe) this.connectExes.add(g);
      return;
    }
    if (!m.sockaddr) {
      this.connectAll = true;
      this.reasons.push(`connectAll: ${label} has no exe or sockaddr condition the native triage can test`);
      return;
    }
    const s = m.sockaddr;
    const fam = s.family;
    if (s.port) {
      // An exact IPv4 address is far more selective than a port such as 80 (family inet: no inet6).
      const lits = fam === 'inet' && s.addr !== undefined ? requiredLiterals(s.addr) : null;
      if (lits) for (const l of lits) this.connectInet4Literals.add(l);
      else for (const p of s.port) this.connectPorts.add(p);
      return;
    }
    if ((fam === 'unix' || fam === undefined) && s.path !== undefined) {
      // A path is null on every other family, so this predicate can only match unix sockets.
      const lits = requiredLiterals(s.path);
      if (lits) for (const l of lits) this.connectUnixLiterals.add(l);
      else this.unixAll(`${label}: no literal in sockaddr.path ${JSON.stringify(s.path)}`);
      return;
    }
    if (fam === 'unix') {
      this.unixAll(`${label}: family unix without a path`);
      return;
    }
    if (s.addr !== undefined) {
      if (fam !== 'inet6') {
        const lits = requiredLiterals(s.addr);
        if (lits) for (const l of lits) this.connectInet4Literals.add(l);
        else this.inet4All(`${label}: no literal in sockaddr.addr ${JSON.stringify(s.addr)}`);
      }
      // IPv6 text formatting is not reproduced natively.
      if (fam !== 'inet') this.inet6All(`${label}: sockaddr.addr on IPv6 (not formatted natively)`);
      return;
    }
    const why = `${label}: sockaddr has only family ${fam ?? '(any)'}`;
    if (fam === undefined) this.unixAll(why);
    if (fam === 'inet' || fam === 'ip' || fam === undefined) this.inet4All(why);
    if (fam === 'inet6' || fam === 'ip' || fam === undefined) this.inet6All(why);
  }

  allExec(label: string): void {
    this.execAll = true;
    this.reasons.push(`execAll: ${label}`);
  }

  allConnect(label: string): void {
    this.connectAll = true;
    this.reasons.push(`connectAll: ${label}`);
  }

  private unixAll(why: string): void {
    this.connectUnixAll = true;
    this.reasons.push(`connectUnixAll: ${why}`);
  }

  private inet4All(why: string): void {
    this.connectInet4All = true;
    this.reasons.push(`connectInet4All: ${why}`);
  }

  private inet6All(why: string): void {
    this.connectInet6All = true;
    this.reasons.push(`connectInet6All: ${why}`);
  }

  build(): TriageSpec {
    return {
      execPrograms: sorted(this.execPrograms),
      execExes: sorted(this.execExes),
      execArgvLiterals: minimalLiterals(this.execArgvLiterals),
      execAll: this.execAll,
      connectExes: sorted(this.connectExes),
      connectPorts: [...this.connectPorts].sort((a, b) => a - b),
      connectUnixLiterals: minimalLiterals(this.connectUnixLiterals),
      connectUnixAll: this.connectUnixAll,
      connectInet4Literals: minimalLiterals(this.connectInet4Literals),
      connectInet4All: this.connectInet4All,
      connectInet6All: this.connectInet6All,
      connectAll: this.connectAll,
      reasons: [...new Set(this.reasons)],
    };
  }

  buildOpen(): Required<Pick<TriageSpec, 'openPathLiterals' | 'openObjectKeys' | 'openAll'>> {
    return { openPathLiterals: minimalLiterals(this.openPathLiterals), openObjectKeys: sorted(this.openObjectKeys), openAll: this.openAll };
  }
}

/**
 * Compiles the rule pack into the native triage spec. `extraPrograms` are programs whose every exec
 * the caller needs in full regardless of rules (the engine watches runc/crun execs to map
 * containers: pass ['runc', 'crun']).
 */
export function compileTriageSpec(
  rules: readonly LoadedRule[],
  extraPrograms: readonly string[] = [],
  sigma: readonly Pick<SigmaRule, 'id' | 'target'>[] = [],
  opts: { open?: boolean } = {},
): TriageSpec {
  const b = new SpecBuilder();
  for (const p of extraPrograms) b.addExec('extraPrograms', { event: 'exec', program: [p] });
  for (const { label, match } of triagePredicates(rules)) {
    if (match.event === 'exec' || match.event === 'any') b.addExec(label, match);
    if (match.event === 'connect' || match.event === 'any') b.addConnect(label, match);
    if (opts.open && (match.event === 'open' || match.event === 'any')) b.addOpen(label, match);
  }
  // A Sigma condition (any field, `not`, `1 of`) has no literal the native side could test: every
  // event of the kinds it reads takes the full path. Conservative, as the spec must be.
  for (const r of sigma) {
    if (r.target === 'process_creation' || r.target === 'auditd') b.allExec(`sigma ${r.id} (${r.target})`);
    if (r.target === 'auditd') b.allConnect(`sigma ${r.id} (auditd reads every record)`);
    if (r.target === 'auditd' && opts.open) b.allOpen(`sigma ${r.id} (auditd reads every record)`);
  }
  return opts.open ? { ...b.build(), ...b.buildOpen() } : b.build();
}

/** A glob list that is just `*` matches everything: as a filter it is worth nothing. */
function selective(globs: readonly string[]): boolean {
  return globs.length > 0 && !globs.some((g) => /^\*+$/.test(g));
}

/** Among several regexes that must ALL match, the literal set of the most selective one. */
function bestLiterals(sources: readonly string[]): string[] | null {
  let best: string[] | null = null;
  for (const src of sources) {
    const lits = requiredLiterals(src);
    if (lits && (best === null || shortest(lits) > shortest(best) || (shortest(lits) === shortest(best) && lits.length < best.length))) best = lits;
  }
  return best;
}

function shortest(xs: readonly string[]): number {
  return Math.min(...xs.map((x) => x.length));
}

function sorted(s: Set<string>): string[] {
  return [...s].sort();
}

/** Sorted, without members that contain another member (text holding the longer holds the shorter). */
function minimalLiterals(s: Set<string>): string[] {
  const all = sorted(s);
  return all.filter((x) => !all.some((y) => y !== x && x.includes(y)));
}

// ---- reference verdict -------------------------------------------------------------------------

/** fnmatch-like, '*' and '?' only; '*' crosses '/' (a superset of the rules' own glob matching). */
function globRegex(glob: string): RegExp {
  let src = '';
  for (const ch of glob) {
    if (ch === '*') src += '[\\s\\S]*';
    else if (ch === '?') src += '[\\s\\S]';
    else src += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${src}$`);
}

const globCache = new Map<string, RegExp>();

function globMatches(glob: string, s: string): boolean {
  let re = globCache.get(glob);
  if (!re) {
    re = globRegex(glob);
    globCache.set(glob, re);
  }
  return re.test(s);
}

/** execExes / connectExes semantics: a glob with '/' against the full path, else the basename. */
function exeMatches(globs: readonly string[], exe: string): boolean {
  const base = baseName(exe) ?? exe;
  return globs.some((g) => globMatches(g, g.includes('/') ? exe : base));
}

function containsAny(text: string, literals: readonly string[]): boolean {
  const t = asciiLower(text);
  return literals.some((l) => t.includes(l));
}

/** True when an event with this summary might make a rule fire (so it must take the full path). */
export function triageInteresting(spec: TriageSpec, s: TriageSummary): boolean {
  if (s.kind === 'exec') {
    if (spec.execAll) return true;
    const argv = s.argv;
    if (s.exe === null || argv === null || argv.length === 0) return true;
    const exeBase = baseName(s.exe) ?? s.exe;
    const argv0Base = baseName(argv[0] ?? '') ?? '';
    if (spec.execPrograms.some((g) => globMatches(g, exeBase) || globMatches(g, argv0Base))) return true;
    if (exeMatches(spec.execExes, s.exe)) return true;
    return containsAny(commandLine(argv) ?? '', spec.execArgvLiterals);
  }
  if (spec.connectAll) return true;
  const sa = s.sockaddr;
  if (sa === null) return true;
  // The engine falls back to the process table's exe when the record has none: we cannot.
  if (s.exe === null ? spec.connectExes.length > 0 : exeMatches(spec.connectExes, s.exe)) return true;
  switch (sa.family) {
    case 'unix':
      return spec.connectUnixAll || sa.path === null || containsAny(sa.path, spec.connectUnixLiterals);
    case 'inet':
      return (
        spec.connectInet4All ||
        (sa.port !== null && spec.connectPorts.includes(sa.port)) ||
        sa.addr === null ||
        containsAny(sa.addr, spec.connectInet4Literals)
      );
    case 'inet6':
      return spec.connectInet6All || (sa.port !== null && spec.connectPorts.includes(sa.port));
    default:
      return true;
  }
}

/** The summary of a full event, as the native triage sees it (null for kinds it never triages). */
export function triageSummaryOf(ev: AuditEvent): TriageSummary | null {
  const kind = eventKind(ev);
  if (kind !== 'exec' && kind !== 'connect') return null;
  const sa = ev.sockaddr;
  return {
    kind,
    exe: ev.process?.exe ?? null,
    argv: kind === 'exec' ? (ev.process?.argv ?? null) : null,
    sockaddr: kind === 'connect' && sa ? { family: String(sa.family), port: sa.port, addr: sa.addr, path: sa.path } : null,
  };
}
