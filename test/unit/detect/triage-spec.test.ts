import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import type { AuditEvent, Sockaddr } from '../../../src/audit/event';
import { REPLAY_REASSEMBLY, Reassembler } from '../../../src/audit/reassembler';
import { linesToRecords } from '../../../src/sources/auditlog';
import { fixtureFiles, readLogEvents } from '../../helpers/fixture-events';
import { createHostStages } from '../../../src/pipeline/host-stages';
import { EventView } from '../../../src/enrich/event-view';
import { compileMatch, type Predicate } from '../../../src/detect/match';
import { defaultRulesDir, loadRuleDir, type LoadedRule } from '../../../src/detect/rule-loader';
import { compileRegex, ruleSpec, type MatchSpec } from '../../../src/detect/rule-schema';
import { compileTriageSpec, triageInteresting, triagePredicates, triageSummaryOf, type TriageSpec, type TriageSummary } from '../../../src/detect/triage-spec';
import { ProcessTable } from '../../../src/enrich/process-table';
import { makeEvent } from '../enrich/helpers';

const FIXTURES = path.join(__dirname, '../../fixtures');
const RUNTIMES = ['runc', 'crun'];

function rule(over: Record<string, unknown>): LoadedRule {
  return {
    ...ruleSpec.parse({
      id: 'r1',
      title: 't',
      description: 'd',
      severity: 'high',
      confidence: 'low',
      mitre: ['T1552.007'],
      covers: ['H1'],
      ...over,
    }),
    file: 'test.yaml',
  };
}

/** One anchor indicator with this match spec. */
function anchored(match: Record<string, unknown>, extra: Record<string, unknown> = {}): LoadedRule {
  return rule({ indicators: [{ id: 'a', anchor: true, match }], ...extra });
}

const execOf = (argv: string[] | null, exe: string | null = argv?.[0] ?? null): TriageSummary => ({ kind: 'exec', exe, argv, sockaddr: null });
const connectOf = (sockaddr: TriageSummary['sockaddr'], exe: string | null = '/usr/bin/app'): TriageSummary => ({ kind: 'connect', exe, argv: null, sockaddr });
const unix = (p: string | null) => ({ family: 'unix', port: null, addr: null, path: p });
const inet = (addr: string | null, port: number | null) => ({ family: 'inet', port, addr, path: null });
const inet6 = (addr: string, port: number) => ({ family: 'inet6', port, addr, path: null });

describe('compileTriageSpec', () => {
  it('exec: program globs win over exe, argv and argv_all; globs with / go to execExes', () => {
    const s = compileTriageSpec([
      anchored({ event: 'exec', program: ['kubectl', '/opt/*/oc'], exe: ['x'], argv: 'secrets' }),
      rule({ id: 'r2', indicators: [{ id: 'b', anchor: true, match: { event: 'exec', exe: ['/usr/bin/etcdctl', 'crictl'], argv: 'get' } }] }),
      rule({ id: 'r3', indicators: [{ id: 'c', anchor: true, match: { event: 'exec', argv: '\\bcreate\\s+token\\b' } }] }),
      rule({ id: 'r4', indicators: [{ id: 'd', anchor: true, match: { event: 'exec', argv_all: ['\\s+', '(?i)Metadata\\.Google'] } }] }),
    ]);
    expect(s.execPrograms).toEqual(['kubectl']);
    expect(s.execExes).toEqual(['/opt/*/oc', '/usr/bin/etcdctl', 'crictl']);
    expect(s.execArgvLiterals).toEqual(['create', 'metadata.google']);
    expect(s.execAll).toBe(false);
    expect(s.reasons).toEqual([]);
  });

  it('exec: a predicate with nothing testable (or a bare * glob) sets execAll and says which', () => {
    const s = compileTriageSpec([anchored({ event: 'exec', program: ['*'], argv: '\\s+', uid: [0] })]);
    expect(s.execAll).toBe(true);
    expect(s.reasons).toHaveLength(1);
    expect(s.reasons[0]).toContain('r1/a');
  });

  it('only anchors, novel_reader indicators and sequence.then of enabled rules count', () => {
    const s = compileTriageSpec([
      rule({
        indicators: [
          { id: 'anchor', anchor: true, match: { event: 'exec', program: ['kubectl'] } },
          { id: 'weak', match: { event: 'exec', argv: '\\s' } }, // would force execAll if it counted
          { id: 'learn', match: { event: 'any', program: ['cat'], novel_reader: true } },
        ],
      }),
      rule({ id: 'off', enabled: false, indicators: [{ id: 'a', anchor: true, match: { event: 'exec', argv: '\\s' } }] }),
      rule({ id: 'seq', sequence: { after: ['r1'], then: [{ event: 'connect', sockaddr: { family: 'ip', port: [6443] } }, { event: 'exec', program: ['curl'] }] } }),
    ]);
    expect(s.execPrograms).toEqual(['cat', 'curl', 'kubectl']);
    expect(s.connectPorts).toEqual([6443]);
    expect(s.execAll).toBe(false);
    // novel_reader with event any also covers connect: program is not usable there.
    expect(s.connectAll).toBe(true);
    expect(s.reasons.join('\n')).toContain('r1/learn');
  });

  it('open-only predicates need nothing from exec or connect', () => {
    const s = compileTriageSpec([anchored({ event: 'open', path: '.*' })]);
    expect(s).toMatchObject({ execAll: false, connectAll: false, execPrograms: [], execArgvLiterals: [] });
  });

  it('extraPrograms are always interesting execs', () => {
    expect(compileTriageSpec([], RUNTIMES).execPrograms).toEqual(['crun', 'runc']);
  });

  it.each<[string, Record<string, unknown>, Partial<TriageSpec>]>([
    ['port list', { family: 'ip', port: [2376, 2375, 2375] }, { connectPorts: [2375, 2376] }],
    ['inet addr + port: the address is more selective', { family: 'inet', addr: '^169\\.254\\.169\\.254$', port: [80] }, { connectInet4Literals: ['169.254.169.254'], connectPorts: [] }],
    ['unix path', { family: 'unix', path: '(docker|podman)\\.sock$' }, { connectUnixLiterals: ['docker.sock', 'podman.sock'] }],
    ['any-family path', { path: 'docker\\.sock' }, { connectUnixLiterals: ['docker.sock'], connectInet4All: false, connectInet6All: false }],
    ['unix path without literal', { family: 'unix', path: '\\w+$' }, { connectUnixAll: true }],
    ['unix without path', { family: 'unix' }, { connectUnixAll: true }],
    ['ip addr', { family: 'ip', addr: '^10\\.0\\.0\\.1$' }, { connectInet4Literals: ['10.0.0.1'], connectInet6All: true }],
    ['inet addr', { family: 'inet', addr: '^10\\.0\\.0\\.1$' }, { connectInet4Literals: ['10.0.0.1'], connectInet6All: false }],
    ['inet6 addr', { family: 'inet6', addr: '^fd00::1$' }, { connectInet4Literals: [], connectInet6All: true }],
    ['addr without literal', { addr: '^\\d+' }, { connectInet4All: true, connectInet6All: true, connectUnixAll: false }],
    ['family inet only', { family: 'inet' }, { connectInet4All: true, connectInet6All: false, connectUnixAll: false }],
    ['family ip only', { family: 'ip' }, { connectInet4All: true, connectInet6All: true, connectUnixAll: false }],
    ['no family, nothing', {}, { connectInet4All: true, connectInet6All: true, connectUnixAll: true }],
  ])('sockaddr: %s', (_name, sockaddr, want) => {
    const s = compileTriageSpec([anchored({ event: 'connect', sockaddr })]);
    expect(s).toMatchObject({ connectAll: false, ...want });
    const flags = (['connectUnixAll', 'connectInet4All', 'connectInet6All'] as const).filter((k) => s[k]);
    expect(s.reasons).toHaveLength(flags.length);
  });

  it('connect: exe globs win over sockaddr; neither means connectAll', () => {
    const s = compileTriageSpec([
      anchored({ event: 'connect', exe: ['curl'], sockaddr: { family: 'unix' } }),
      rule({ id: 'r2', indicators: [{ id: 'x', anchor: true, match: { event: 'connect', program: ['curl'], container: true } }] }),
    ]);
    expect(s.connectExes).toEqual(['curl']);
    expect(s.connectUnixAll).toBe(false);
    expect(s.connectAll).toBe(true);
    expect(s.reasons.join('\n')).toContain('r2/x');
  });

  it('drops literals that contain another literal (the shorter one already catches them)', () => {
    const s = compileTriageSpec([anchored({ event: 'exec', argv: '(api/v1/|api/v1/namespaces/)' })]);
    expect(s.execArgvLiterals).toEqual(['api/v1/']);
  });
});

describe('triageInteresting', () => {
  const spec = compileTriageSpec([
    anchored({ event: 'exec', program: ['kubectl', 'python*'] }),
    rule({ id: 'r2', indicators: [{ id: 'e', anchor: true, match: { event: 'exec', exe: ['/tmp/*', 'nc'] } }] }),
    rule({ id: 'r3', indicators: [{ id: 'l', anchor: true, match: { event: 'exec', argv: '/var/run/Docker\\.sock' } }] }),
    rule({ id: 'r4', indicators: [{ id: 'c', anchor: true, match: { event: 'connect', sockaddr: { family: 'ip', port: [6443] } } }] }),
    rule({ id: 'r5', indicators: [{ id: 'u', anchor: true, match: { event: 'connect', sockaddr: { family: 'unix', path: 'docker\\.sock$' } } }] }),
    rule({ id: 'r6', indicators: [{ id: 'a', anchor: true, match: { event: 'connect', sockaddr: { family: 'inet', addr: '^169\\.254\\.169\\.254$' } } }] }),
    rule({ id: 'r7', indicators: [{ id: 'x', anchor: true, match: { event: 'connect', exe: ['/usr/bin/socat'] } }] }),
  ]);

  it.each<[string, TriageSummary, boolean]>([
    ['boring exec', execOf(['/bin/true'], '/usr/bin/true'), false],
    ['program by exe basename', execOf(['k'], '/usr/local/bin/kubectl'), true],
    ['program by argv0 basename', execOf(['/usr/bin/kubectl', 'get'], '/usr/bin/kubectl.real'), true],
    ['program glob', execOf(['python3.11'], '/usr/bin/python3.11'), true],
    ['exe full-path glob crosses directories', execOf(['x'], '/tmp/a/b/x'), true],
    ['exe basename glob', execOf(['ncat'], '/usr/bin/nc'), true],
    ['exe basename glob is not tested against argv0', execOf(['nc'], '/usr/bin/ncat'), false],
    ['argv literal, ASCII case-insensitive', execOf(['curl', '--unix-socket', '/VAR/run/docker.SOCK'], '/usr/bin/curl'), true],
    ['literal across the argv join', execOf(['sh', '/var/run/docker.sock'], '/bin/sh'), true],
    ['argv0 reduced to its basename before the literal test', execOf(['/var/run/docker.sock/x'], '/bin/x'), false],
    ['exec with unknown exe', execOf(['true'], null), true],
    ['exec with unknown argv', execOf(null, '/bin/true'), true],
    ['exec with empty argv', execOf([], '/bin/true'), true],
    ['inet port', connectOf(inet('10.0.0.1', 6443)), true],
    ['inet6 port', connectOf(inet6('fd00::1', 6443)), true],
    ['boring inet', connectOf(inet('10.0.0.1', 443)), false],
    ['boring inet6', connectOf(inet6('fd00::1', 443)), false],
    ['inet addr literal', connectOf(inet('169.254.169.254', 80)), true],
    ['inet without addr', connectOf(inet(null, 80)), true],
    ['unix literal', connectOf(unix('/run/Docker.sock')), true],
    ['boring unix', connectOf(unix('/run/systemd/journal/stdout')), false],
    ['unnamed unix socket', connectOf(unix(null)), true],
    ['other family', connectOf({ family: 'netlink', port: null, addr: null, path: null }), true],
    ['connect without sockaddr', connectOf(null), true],
    ['connect exe glob', connectOf(unix('/tmp/x'), '/usr/bin/socat'), true],
    ['connect with unknown exe while exe globs exist (the engine would use the process table)', connectOf(unix('/tmp/x'), null), true],
  ])('%s -> %s', (_n, summary, want) => {
    expect(triageInteresting(spec, summary)).toBe(want);
  });

  it('globs: only * and ? are special; case-sensitive', () => {
    const g = compileTriageSpec([anchored({ event: 'exec', program: ['a[b]?', 'x.y*'] })]);
    expect(triageInteresting(g, execOf(['a[b]c'], '/bin/a[b]c'))).toBe(true);
    expect(triageInteresting(g, execOf(['ab'], '/bin/ab'))).toBe(false);
    expect(triageInteresting(g, execOf(['x.yz'], '/bin/x.yz'))).toBe(true);
    expect(triageInteresting(g, execOf(['xzy'], '/bin/xzy'))).toBe(false);
    expect(triageInteresting(g, execOf(['X.Y'], '/bin/X.Y'))).toBe(false);
  });

  it('execAll and connectAll make everything of that kind interesting', () => {
    const all = { ...spec, execAll: true, connectAll: true };
    expect(triageInteresting(all, execOf(['/bin/true'], '/usr/bin/true'))).toBe(true);
    expect(triageInteresting(all, connectOf(inet('10.0.0.1', 443)))).toBe(true);
  });

  it('the *All flags cover their family only', () => {
    const s = { ...spec, connectUnixAll: true };
    expect(triageInteresting(s, connectOf(unix('/tmp/x')))).toBe(true);
    expect(triageInteresting(s, connectOf(inet('10.0.0.1', 443)))).toBe(false);
    expect(triageInteresting({ ...spec, connectInet4All: true }, connectOf(inet('10.0.0.1', 443)))).toBe(true);
    expect(triageInteresting({ ...spec, connectInet4All: true }, connectOf(inet6('fd00::1', 443)))).toBe(false);
    expect(triageInteresting({ ...spec, connectInet6All: true }, connectOf(inet6('fd00::1', 443)))).toBe(true);
  });
});

// ---- the shipped rule pack ---------------------------------------------------------------------

const shipped = loadRuleDir(defaultRulesDir());
const shippedSpec = compileTriageSpec(shipped, RUNTIMES);

/** The predicates the triage must respect, selected here independently of triagePredicates(). */
function mustRespect(rules: readonly LoadedRule[]): { label: string; kinds: Set<string>; pred: Predicate }[] {
  const out: { label: string; kinds: Set<string>; pred: Predicate }[] = [];
  const add = (label: string, m: MatchSpec): void => {
    const kinds = new Set(m.event === 'any' ? ['exec', 'connect'] : [m.event]);
    if (kinds.has('exec') || kinds.has('connect')) out.push({ label, kinds, pred: compileMatch(m) });
  };
  for (const r of rules.filter((x) => x.enabled)) {
    for (const i of r.indicators) if (i.anchor || i.match.novel_reader) add(`${r.id}/${i.id}`, i.match);
    (r.sequence?.then ?? []).forEach((m, n) => add(`${r.id}/then[${n}]`, m));
  }
  for (const p of RUNTIMES) add(`runtime ${p}`, { event: 'exec', program: [p] });
  return out;
}
const predicates = mustRespect(shipped);

const summaryOf = triageSummaryOf;

describe('the shipped rule pack', () => {
  it('compiles to a spec that triages both kinds (prints it)', () => {
    console.log(`triage spec of the shipped pack (extraPrograms runc, crun):\n${JSON.stringify(shippedSpec, null, 2)}`);
    expect(triagePredicates(shipped).length).toBeGreaterThan(10);
    expect(shippedSpec.execAll).toBe(false);
    expect(shippedSpec.connectAll).toBe(false);
    expect(shippedSpec.execPrograms).toEqual(expect.arrayContaining(['kubectl', 'runc', 'crun']));
  });

  it('calls common boring events boring', () => {
    expect(triageInteresting(shippedSpec, execOf(['true'], '/bin/true'))).toBe(false);
    expect(triageInteresting(shippedSpec, execOf(['sed', '-e', 's/a/b/', 'file.txt'], '/usr/bin/sed'))).toBe(false);
    expect(triageInteresting(shippedSpec, execOf(['sh', '-c', 'make -j8'], '/bin/sh'))).toBe(false);
    expect(triageInteresting(shippedSpec, connectOf(unix('/tmp/nothing')))).toBe(false);
    expect(triageInteresting(shippedSpec, connectOf(inet('10.1.2.3', 5432)))).toBe(false);
  });

  it('calls the reference behaviours interesting', () => {
    expect(triageInteresting(shippedSpec, execOf(['kubectl', 'get', 'secrets', '-A'], '/usr/local/bin/kubectl'))).toBe(true);
    expect(triageInteresting(shippedSpec, execOf(['cat', '/run/secrets/kubernetes.io/serviceaccount/token'], '/bin/busybox'))).toBe(true);
    expect(triageInteresting(shippedSpec, connectOf(unix('/var/run/docker.sock')))).toBe(true);
    expect(triageInteresting(shippedSpec, connectOf(inet('127.0.0.1', 2375)))).toBe(true);
    expect(triageInteresting(shippedSpec, connectOf(inet('169.254.169.254', 80)))).toBe(true);
  });
});

// ---- safety on real recorded logs --------------------------------------------------------------

const fixtureLogs = (): string[] => fixtureFiles(/\.(log|log\.gz|yaml)$/);

async function eventsOf(file: string): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  const r = new Reassembler({ onEvent: (ev) => events.push(ev), ...REPLAY_REASSEMBLY });
  if (file.endsWith('.yaml')) {
    // go-libaudit's aucoalesce testdata: named snippets of log text.
    const doc = parseYaml(fs.readFileSync(file, 'utf8')) as { tests?: Record<string, string> };
    for (const text of Object.values(doc.tests ?? {})) {
      for (const rec of linesToRecords(text.split('\n').filter((l) => l.trim() !== ''))) r.push(rec, rec.node);
      r.flush();
    }
    return events;
  }
  return readLogEvents(file);
}

interface Tally {
  exec: number;
  connect: number;
  execInteresting: number;
  connectInteresting: number;
  mustBeInteresting: number;
  findings: number;
}

describe('safety on every recorded audit log', () => {
  const files = fixtureLogs();
  const failures: string[] = [];
  const tally: Tally = { exec: 0, connect: 0, execInteresting: 0, connectInteresting: 0, mustBeInteresting: 0, findings: 0 };
  const byFile: string[] = [];

  beforeAll(async () => {
    for (const file of files) {
      const detector = createHostStages({ host: 'lab-node', users: null });
      // Pretend every reader is new: the novel_reader predicates then match whenever their
      // other conditions do (the strictest reading for this test).
      const ctx = { table: detector.enricher.processTable, readers: { observe: () => true } };
      let n = 0;
      for (const ev of await eventsOf(file)) {
        const found = detector.onAuditEvent(ev);
        const s = summaryOf(ev);
        if (!s) continue;
        n++;
        const verdict = triageInteresting(shippedSpec, s);
        tally[s.kind]++;
        if (verdict) tally[s.kind === 'exec' ? 'execInteresting' : 'connectInteresting']++;
        const view = new EventView(ev, ctx);
        const why = [...found.map((f) => `finding ${f.rule}`), ...predicates.filter((p) => p.kinds.has(s.kind) && p.pred(view)).map((p) => p.label)];
        if (why.length === 0) continue;
        tally.mustBeInteresting++;
        tally.findings += found.length;
        if (!verdict) failures.push(`${path.relative(FIXTURES, file)} ${ev.id} ${JSON.stringify(s)}: ${why.join(', ')}`);
      }
      byFile.push(`${path.relative(FIXTURES, file)}: ${n}`);
    }
  }, 120_000);

  it('reads exec and connect events from every fixture log', () => {
    console.log(`exec/connect events per fixture:\n  ${byFile.join('\n  ')}`);
    expect(files.length).toBeGreaterThan(20);
    expect(tally.exec).toBeGreaterThan(1000);
    expect(tally.connect).toBeGreaterThan(10);
  });

  it('never calls boring an event on which a rule fired or a relevant predicate matched', () => {
    console.log(
      `triage over fixtures: exec ${tally.execInteresting}/${tally.exec} interesting, connect ${tally.connectInteresting}/${tally.connect} interesting; ` +
        `${tally.mustBeInteresting} events had to be (${tally.findings} findings)`,
    );
    expect(tally.mustBeInteresting).toBeGreaterThan(20);
    expect(tally.findings).toBeGreaterThan(10);
    expect(failures).toEqual([]);
  });

  it('is useful: most recorded execs are boring', () => {
    expect(tally.execInteresting).toBeLessThan(tally.exec / 2);
  });
});

// ---- safety on generated events ----------------------------------------------------------------

/** Word-ish pieces of every shipped regex and glob, so generated events come close to the rules. */
function pieces(rules: readonly LoadedRule[]): { words: string[]; programs: string[]; argvRegexes: string[] } {
  const words = new Set<string>();
  const programs = new Set<string>(RUNTIMES);
  const argvRegexes = new Set<string>();
  const fromMatch = (m: MatchSpec): void => {
    for (const src of [m.argv, ...(m.argv_all ?? []), m.sockaddr?.path, m.sockaddr?.addr]) {
      if (!src) continue;
      for (const w of src.match(/[A-Za-z0-9_./:=-]{2,}/g) ?? []) words.add(w.replace(/\\/g, ''));
    }
    if (m.argv) argvRegexes.add(m.argv);
    for (const a of m.argv_all ?? []) argvRegexes.add(a);
    for (const g of [...(m.program ?? []), ...(m.exe ?? [])]) programs.add(g.replace(/\*/g, 'x').replace(/\?/g, 'y'));
  };
  for (const r of rules) {
    for (const i of r.indicators) fromMatch(i.match);
    for (const t of r.sequence?.then ?? []) fromMatch(t);
  }
  return { words: [...words], programs: [...programs], argvRegexes: [...argvRegexes] };
}

describe('safety on generated events (property)', () => {
  const { words, programs, argvRegexes } = pieces(shipped);
  const names = [...programs, 'true', 'sh', 'sed', 'env', 'ls'];
  const basename = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

  // A command line that matches a rule regex (fast-check cannot do \b: a space stands in), split into argv.
  const matchingCmdline = fc.constantFrom(...argvRegexes).chain((src) => {
    const ic = src.startsWith('(?i)');
    const body = (ic ? src.slice(4) : src).replace(/(?<!\\)((?:\\\\)*)\\([bB])/g, (_m, pre: string, b: string) => pre + (b === 'b' ? ' ' : ''));
    return fc.stringMatching(new RegExp(body), { maxLength: 120 });
  });
  const word = fc.oneof(fc.constantFrom(...words), fc.constantFrom(...names), fc.string({ maxLength: 6 }));
  const exePath = fc.tuple(fc.constantFrom('/usr/bin/', '/bin/', '/tmp/', '/usr/local/bin/', '/opt/x/', ''), fc.constantFrom(...names)).map(([d, n]) => d + n);
  const argv = fc.oneof(
    fc.tuple(fc.constantFrom(...names), fc.array(word, { maxLength: 6 })).map(([a0, rest]) => [a0, ...rest]),
    matchingCmdline.map((s) => s.split(' ')),
  );
  const sockaddr: fc.Arbitrary<Sockaddr> = fc.oneof(
    fc.tuple(fc.constantFrom('/var/run/', '/run/', '/tmp/', '@', ''), fc.oneof(fc.constantFrom(...words), fc.string({ maxLength: 8 }))).map(
      ([d, w]): Sockaddr => ({ family: 'unix', path: d + w, addr: null, port: null }),
    ),
    fc.tuple(fc.constantFrom('127.0.0.1', '169.254.169.254', '10.0.0.1', '169.254.169.25'), fc.constantFrom(80, 443, 2375, 6443, 10250, 2379, 5432)).map(
      ([addr, port]): Sockaddr => ({ family: 'inet', path: null, addr, port }),
    ),
    fc.constantFrom(80, 443, 2376, 6443, 10255).map((port): Sockaddr => ({ family: 'inet6', path: null, addr: 'fd00::1', port })),
  );
  const event = fc.oneof(
    fc.tuple(exePath, argv, fc.boolean()).map(([exe, av, sameName]) => {
      const e = sameName ? `/usr/bin/${basename(av[0] ?? 'x')}` : exe;
      return makeEvent({ syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 }, process: { exe: e, argv: av, comm: basename(e) } });
    }),
    fc.tuple(exePath, sockaddr).map(([exe, sa]) =>
      makeEvent({ syscall: { arch: 'x86_64', nr: 42, name: 'connect', success: false, exit: -115 }, process: { exe, comm: basename(exe) }, sockaddr: sa }),
    ),
  );

  it('every generated event on which a relevant predicate matches is interesting', () => {
    let matched = 0;
    const runs = 4000;
    fc.assert(
      fc.property(event, (ev) => {
        const table = new ProcessTable();
        table.observe(ev);
        const view = new EventView(ev, { table, readers: { observe: () => true } });
        const s = summaryOf(ev) as TriageSummary;
        const hits = predicates.filter((p) => p.kinds.has(s.kind) && p.pred(view)).map((p) => p.label);
        if (hits.length === 0) return;
        matched++;
        expect(triageInteresting(shippedSpec, s), `${JSON.stringify(s)} matched ${hits.join(', ')}`).toBe(true);
      }),
      { numRuns: runs },
    );
    console.log(`generated events: ${matched}/${runs} matched a predicate`);
    expect(matched).toBeGreaterThan(runs / 10);
  });

  it('the argv regexes used to generate are valid', () => {
    for (const src of argvRegexes) expect(() => compileRegex(src)).not.toThrow();
  });
});

describe('compileTriageSpec with open events (replay)', () => {
  const open = (r: LoadedRule[], sigma: { id: string; target: 'auditd' | 'process_creation' | 'kube_audit' }[] = []) => compileTriageSpec(r, RUNTIMES, sigma, { open: true });

  it('the live spec has no open fields: the reader is never asked about opens', () => {
    const spec = compileTriageSpec([anchored({ event: 'open', path: '^/run/secrets/.+token$' })], RUNTIMES);
    expect(spec).not.toHaveProperty('openAll');
    expect(spec).not.toHaveProperty('openPathLiterals');
  });

  it('a path regex gives its required literals; any_of needs each branch: path or the watch keys of its object classes', () => {
    const spec = open([anchored({ event: 'open', any_of: [{ path: '^/var/run/secrets/kubernetes\\.io/.+$' }, { object: ['pod-token'] }] })]);
    expect(spec.openAll).toBe(false);
    expect(spec.openPathLiterals).toEqual(['/var/run/secrets/kubernetes.io/']);
    expect(spec.openObjectKeys).toEqual(['credwatch:pod-token']);
  });

  it('an open predicate with nothing the native side can test, an `any` event, or a Sigma auditd rule: every open passes', () => {
    expect(open([anchored({ event: 'open', exe: ['cat'] })]).openAll).toBe(true);
    expect(open([anchored({ event: 'any', auid_unset: true })]).openAll).toBe(true);
    expect(open([anchored({ event: 'open', path: '.*' })]).openAll).toBe(true);
    expect(open([], [{ id: 's1', target: 'auditd' }]).openAll).toBe(true);
    // process_creation reads exec events only; a kube rule reads no host event.
    expect(open([], [{ id: 's2', target: 'process_creation' }, { id: 's3', target: 'kube_audit' }]).openAll).toBe(false);
  });

  it('the pack: opens are triaged by literals, never all of them', () => {
    const spec = open(loadRuleDir(defaultRulesDir()));
    expect(spec.openAll).toBe(false);
    expect(spec.openPathLiterals?.some((l) => l.includes('serviceaccount') || l.includes('/run/secrets/'))).toBe(true);
    expect(spec.openObjectKeys).toContain('credwatch:pod-token');
  });
});
