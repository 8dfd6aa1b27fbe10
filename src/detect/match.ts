/**
 * Compiles a rule's match spec into a predicate over an EventView. Regexes and globs are compiled
 * once at load; evaluation cheapest-test-first so that most events are rejected by the kind check.
 */
import type { ExclusionSpec, MatchSpec } from './rule-schema';
import { MAX_MATCH_TEXT, compileGlobRegex, compileRegex, type TextRegex } from './linear-regex';
import { baseName, boundedRuleCommandLine, type EventView } from '../enrich/event-view';

export type Predicate = (v: EventView) => boolean;

/** A compiled glob: `*` and `?`; a glob with '/' matches a full path, otherwise a basename. */
export function compileGlob(glob: string): { re: TextRegex; full: boolean } {
  const full = glob.includes('/');
  return { re: compileGlobRegex(glob, { full }), full };
}

/**
 * `base`, when the caller has it at hand, must be baseName(path): the EventView computes the exe's
 * basename once, and every rule's matcher asked for it again (~2% of the agent's CPU under exec load).
 */
export function globMatcher(globs: readonly string[]): (path: string | null, base?: string | null) => boolean {
  // Most globs in the rule pack are plain names (curl, kubectl) or plain paths: a Set lookup each
  // instead of a regex test, since every rule runs these matchers on every event.
  const exactBase = new Set<string>();
  const exactFull = new Set<string>();
  const patterns: { re: TextRegex; full: boolean }[] = [];
  for (const g of globs) {
    if (g.includes('*') || g.includes('?')) patterns.push(compileGlob(g));
    else if (g.includes('/')) exactFull.add(g);
    else exactBase.add(g);
  }
  return (p, knownBase) => {
    if (p === null) return false;
    if (exactFull.has(p)) return true;
    const base = knownBase ?? baseName(p) ?? p;
    if (exactBase.has(base)) return true;
    for (let i = 0; i < patterns.length; i++) {
      const g = patterns[i] as { re: TextRegex; full: boolean };
      if (g.re.test(g.full ? p : base)) return true;
    }
    return false;
  };
}

/** argv0 is already a basename (no '/'), so it is its own base. */
function programMatches(m: (p: string | null, base?: string | null) => boolean, exe: string | null, exeBase: string | null | undefined, argv0: string | null): boolean {
  return m(exe, exeBase) || (argv0 !== null && m(argv0, argv0));
}

export function compileMatch(spec: MatchSpec | ExclusionSpec): Predicate {
  const tests: Predicate[] = [];
  if (spec.event !== 'any') {
    const kind = spec.event;
    tests.push((v) => v.kind === kind);
  }
  if (spec.syscall) {
    const names = new Set(spec.syscall);
    tests.push((v) => names.has(v.ev.syscall?.name ?? ''));
  }
  if (spec.success !== undefined) {
    const want = spec.success;
    // An io_uring op's own outcome, not that of the io_uring_enter that carried it.
    tests.push((v) => (v.ev.uring ? v.ev.uring.success : v.ev.syscall?.success) === want);
  }
  if (spec.exe) {
    const m = globMatcher(spec.exe);
    tests.push((v) => m(v.exe, v.exeBase));
  }
  if (spec.program) {
    const m = globMatcher(spec.program);
    tests.push((v) => programMatches(m, v.exe, v.exeBase, v.argv0Base));
  }
  if (spec.not_program) {
    const m = globMatcher(spec.not_program);
    tests.push((v) => !programMatches(m, v.exe, v.exeBase, v.argv0Base));
  }
  if (spec.exe_path) {
    const re = compileRegex(spec.exe_path);
    tests.push((v) => v.exe !== null && re.test(v.exe));
  }
  if (spec.uid) {
    const s = new Set(spec.uid);
    tests.push((v) => v.uid !== null && s.has(v.uid));
  }
  if (spec.auid) {
    const s = new Set(spec.auid);
    tests.push((v) => v.auid !== null && s.has(v.auid));
  }
  if (spec.auid_unset !== undefined) {
    const want = spec.auid_unset;
    tests.push((v) => (v.auid === null) === want);
  }
  if (spec.interactive !== undefined) {
    const want = spec.interactive;
    tests.push((v) => v.interactive === want);
  }
  if (spec.cwd) {
    const re = compileRegex(spec.cwd);
    tests.push((v) => v.cwd !== null && re.test(v.cwd));
  }
  if (spec.sockaddr) {
    const s = spec.sockaddr;
    const ports = s.port ? new Set(s.port) : null;
    const addr = s.addr ? compileRegex(s.addr) : null;
    const p = s.path ? compileRegex(s.path) : null;
    tests.push((v) => {
      const sa = v.sockaddr;
      if (!sa) return false;
      if (s.family === 'ip' ? sa.family !== 'inet' && sa.family !== 'inet6' : s.family !== undefined && sa.family !== s.family) return false;
      if (ports && (sa.port === null || !ports.has(sa.port))) return false;
      if (addr && (sa.addr === null || !addr.test(sa.addr))) return false;
      if (p && (sa.path === null || !p.test(sa.path))) return false;
      return true;
    });
  }
  if (spec.argv) {
    const re = compileRegex(spec.argv);
    tests.push((v) => v.cmdline !== null && re.test(v.cmdline));
  }
  if (spec.argv_all) {
    const res = spec.argv_all.map(compileRegex);
    tests.push((v) => v.cmdline !== null && res.every((re) => re.test(v.cmdline as string)));
  }
  if (spec.argv_cut) tests.push((v) => v.cmdline !== null && v.cmdline.length > MAX_MATCH_TEXT);
  if (spec.path) {
    const re = compileRegex(spec.path);
    tests.push((v) => v.paths.some((p) => re.test(p)));
  }
  if (spec.object) {
    const classes = new Set<string>(spec.object);
    tests.push((v) => {
      const o = v.object;
      return o !== null && classes.has(o.class);
    });
  }
  if (spec.environ_of_other_container) {
    tests.push((v) => v.environOfOtherContainer);
  }
  if (spec.object_foreign !== undefined) {
    const want = spec.object_foreign;
    tests.push((v) => v.objectForeign === want);
  }
  if (spec.parent_program) {
    const m = globMatcher(spec.parent_program);
    tests.push((v) => v.parents.some((p) => programMatches(m, p.exe, undefined, baseName(p.argv?.[0] ?? null))));
  }
  if (spec.parent_argv) {
    const re = compileRegex(spec.parent_argv);
    tests.push((v) =>
      v.parents.some((p) => {
        // Bounded as the event's own command line (the regex reads its two ends only): a parent's
        // builder-bounded argv would join to ~128 KiB for every rule and event below it.
        const c = boundedRuleCommandLine(p.argv);
        return c !== null && re.test(c);
      }),
    );
  }
  if (spec.container !== undefined) {
    const want = spec.container;
    tests.push((v) => (v.container !== null) === want);
  }
  if ('container_id' in spec && spec.container_id) {
    const globs = spec.container_id.map(compileGlob);
    tests.push((v) => {
      const id = v.container?.containerId;
      return id !== undefined && globs.some((g) => g.re.test(id) || g.re.test(id.slice(0, 12)));
    });
  }
  if ('container_image' in spec && spec.container_image) {
    const globs = spec.container_image.map(compileGlob);
    tests.push((v) => {
      const img = v.containerMeta?.image;
      return !!img && globs.some((g) => g.re.test(img));
    });
  }
  if ('namespace' in spec && spec.namespace) {
    const globs = spec.namespace.map(compileGlob);
    tests.push((v) => {
      const ns = v.containerMeta?.namespace;
      return !!ns && globs.some((g) => g.re.test(ns));
    });
  }
  if (spec.novel_reader) {
    tests.push((v) => {
      const c = v.container;
      const prog = v.exeBase ?? v.argv0Base;
      return c !== null && prog !== null && v.novelReader(c.containerId, prog);
    });
  }
  if ('any_of' in spec && spec.any_of) {
    const alts = spec.any_of.map((a) => compileMatch({ ...a, event: 'any' }));
    tests.push((v) => alts.some((p) => p(v)));
  }
  if (tests.length === 1) return tests[0] as Predicate;
  return (v) => {
    for (const t of tests) if (!t(v)) return false;
    return true;
  };
}
