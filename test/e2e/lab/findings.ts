/**
 * What the e2e scenarios judge by: `credwatch findings --json --db DB` output, exactly as an operator
 * would read it, plus the commit time of each finding (findings.stored_ms, read-only) for the
 * detection-latency table.
 */
import Database from 'better-sqlite3';
import { SEVERITIES, type Finding, type Severity } from '../../../src/model/finding';
import { run } from './commands';
import { CREDWATCH_BIN } from './daemon';

export interface FindingsRead {
  findings: Finding[];
  /** The raw CLI output: the secret checks look at exactly what an operator would see. */
  raw: string;
}

export async function readFindings(dbPath: string): Promise<FindingsRead> {
  const r = await run(process.execPath, [CREDWATCH_BIN, 'findings', '--json', '--limit', '0', '--db', dbPath], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`credwatch findings: exit ${r.code}: ${r.stderr.trim()}`);
  const findings = r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Finding);
  return { findings, raw: r.stdout };
}

export function atLeast(s: Severity, min: Severity): boolean {
  return SEVERITIES.indexOf(s) >= SEVERITIES.indexOf(min);
}

/**
 * What "seen" remembers of a finding: its id and revision. An incident grows under one id, and a
 * revision not seen before is news for the scenario that caused it (docs/shipping.md, incidents).
 */
export function stateKey(f: Finding): string {
  return `${f.id}#${f.revision ?? 1}`;
}

/**
 * Polls the findings until `pred` holds for the set of findings not in `seen` (findings that
 * existed before the scenario started), or the timeout passes; returns the new findings either way.
 */
export async function waitForNewFindings(
  dbPath: string,
  seen: ReadonlySet<string>,
  pred: (fresh: Finding[]) => boolean,
  timeoutMs: number,
): Promise<FindingsRead & { fresh: Finding[] }> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const read = await readFindings(dbPath);
    const fresh = read.findings.filter((f) => !seen.has(stateKey(f)));
    if (pred(fresh) || Date.now() >= end) return { ...read, fresh };
    await new Promise((r) => setTimeout(r, 300));
  }
}

/**
 * Like waitForNewFindings, but returns only once the new findings have stopped changing for `quietMs`
 * as well: an incident grows by revisions (a `docker exec` CLI hit, then the exec in the pod, then its
 * open), and a scenario that judges what the incident finally says must not judge a revision caught
 * between two of its events.
 */
export async function waitForSettledFindings(
  dbPath: string,
  seen: ReadonlySet<string>,
  pred: (fresh: Finding[]) => boolean,
  quietMs: number,
  timeoutMs: number,
): Promise<FindingsRead & { fresh: Finding[] }> {
  const end = Date.now() + timeoutMs;
  let last = '';
  let stableSince = Date.now();
  for (;;) {
    const read = await readFindings(dbPath);
    const fresh = read.findings.filter((f) => !seen.has(stateKey(f)));
    const state = fresh.map(stateKey).sort().join(' ');
    if (state !== last) {
      last = state;
      stableSince = Date.now();
    }
    const settled = Date.now() - stableSince >= quietMs;
    if ((pred(fresh) && settled) || Date.now() >= end) return { ...read, fresh };
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Commit time (ms) of each finding id, from the store's own column; the database is opened read-only. */
export function storedTimes(dbPath: string, ids: string[]): Map<string, number> {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const stmt = db.prepare('SELECT stored_ms FROM findings WHERE id = ?');
    const out = new Map<string, number>();
    for (const id of ids) {
      const row = stmt.get(id) as { stored_ms: number } | undefined;
      if (row) out.set(id, row.stored_ms);
    }
    return out;
  } finally {
    db.close();
  }
}

/** The syscall time of a finding's triggering event: its last evidence event id, "SEC.MS:SERIAL". */
export function triggerTimeMs(f: Finding): number {
  const id = f.evidence[f.evidence.length - 1]?.event_id ?? '';
  const m = /^(\d+)\.(\d{3}):\d+$/.exec(id);
  return m ? Number(m[1]) * 1000 + Number(m[2]) : Date.parse(f.time);
}

/** One line per finding, for assertion messages. */
export function describeFindings(fs: Finding[]): string {
  return fs
    .map((f) => `${f.rule} ${f.severity} [${f.covers.join(',')}] pid=${f.process?.pid} exe=${f.process?.exe ?? '-'} comm=${f.process?.comm ?? '-'} parents=${(f.process?.parents ?? []).map((x) => x.exe).join('<')} [${f.indicators.join(',')}] argv=${JSON.stringify(f.process?.argv)} container=${f.container?.id?.slice(0, 12) ?? '-'} pod=${f.container?.pod_uid ?? '-'}`)
    .join('\n');
}
