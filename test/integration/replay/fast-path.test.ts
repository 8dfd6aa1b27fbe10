/**
 * Differential test for replay's fast path (issue 23): `credwatch replay` as a user runs it (the
 * built CLI: raw records not redacted when they are not printed, ISO times formatted once a second,
 * the FIFO of emitted stamps, indexOf value scans) against the full path computed here from the same
 * file with the plain definitions: every event redacted whole (records included) and then printed,
 * `new Date(timeMs).toISOString()` for every time, and the daemon's pipeline for findings. Every
 * recorded log under test/fixtures/audit and test/fixtures/behaviours (the corpora copies included),
 * and every capture of the go-libaudit YAML fixtures, must give byte-identical events and findings.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../src/audit/event';
import { REPLAY_REASSEMBLY, Reassembler } from '../../../src/audit/reassembler';
import { toJsonLine } from '../../../src/cli/render/escape';
import { createHostStages } from '../../../src/pipeline/host-stages';
import type { Finding } from '../../../src/model/finding';
import { DEFAULT_MAX_FINDING_BYTES, FindingCap } from '../../../src/detect/finding-cap';
import { latestRevisions } from '../../../src/detect/incidents';
import { firstTimeMs, inTimeOrder } from '../../../src/cli/commands/replay-order';
import { TokenTrail } from '../../../src/detect/token-trail';
import { redactAuditEvent } from '../../../src/detect/redact/event';
import { AuditPipeline } from '../../../src/pipeline/audit-pipeline';
import { fixtureFiles } from '../../helpers/fixture-events';
import { fixtureFiles as auditFixtureFiles, fixtureStreams } from '../../unit/audit/fixtures';
import * as fs from 'node:fs';
import { createGunzip, gunzipSync } from 'node:zlib';
import type { Readable } from 'node:stream';
import { readAuditLogStream } from '../../../src/sources/auditlog';

const ROOT = path.join(__dirname, '../../..');
const built = existsSync(path.join(ROOT, 'dist/src/cli/main.js'));
if (!built) console.warn('[skip] replay fast-path differential: no build (npm run build:ts)');

function credwatch(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/credwatch'), ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The full --events line: the whole event redacted, records included, then left out unless wanted. */
function fullEventLine(ev: AuditEvent, withRecords: boolean): string {
  const red = redactAuditEvent(ev);
  return JSON.stringify(withRecords ? red : { ...red, records: undefined }) + '\n';
}

function open(file: string): Readable {
  const input = fs.createReadStream(file);
  return file.endsWith('.gz') ? input.pipe(createGunzip()) : input;
}

/** The files read in order as one stream, as replay reads several files, into reassembled events. */
async function fullEvents(files: string[]): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  const r = new Reassembler({ ...REPLAY_REASSEMBLY, onEvent: (ev) => events.push(ev) });
  for (const f of files) for await (const batch of readAuditLogStream(open(f))) for (const rec of batch) r.push(rec, rec.node);
  r.flush();
  return events;
}

/**
 * Findings as `replay --json` defines them (src/cli/commands/replay-findings.ts, audit logs only): the
 * daemon's pipeline, each finding through the size cap and the token trail, the trail flushed at the
 * end, and each incident's latest revision, in the order incidents opened.
 */
async function fullFindings(files: string[]): Promise<string[]> {
  const host = os.hostname();
  const emitted: Finding[] = [];
  const trail = new TokenTrail({ host, windowMs: Number.POSITIVE_INFINITY });
  const cap = new FindingCap(DEFAULT_MAX_FINDING_BYTES);
  const emit = (raw: Finding[]): void => {
    const fs = cap.applyAll(raw);
    trail.noteHostFindings(fs);
    emitted.push(...fs);
  };
  const detector = createHostStages({ host, users: null });
  const pipeline = new AuditPipeline({ stages: detector, live: false, onFindings: emit, reassembler: REPLAY_REASSEMBLY });
  // Findings mode reads several files in recorded time order (each by its first stamp) and prints in
  // recorded time (src/cli/commands/replay-order.ts): the full path keeps the same contract.
  const head = (f: string): string => (f.endsWith('.gz') ? gunzipSync(fs.readFileSync(f)) : fs.readFileSync(f)).subarray(0, 65536).toString('utf8');
  for (const f of inTimeOrder(files, (x) => firstTimeMs(head(x)))) for await (const batch of readAuditLogStream(open(f))) pipeline.pushBatch(batch);
  pipeline.flush();
  pipeline.tick(Number.MAX_SAFE_INTEGER);
  emit(trail.flush());
  return inTimeOrder(latestRevisions(emitted), (f) => Date.parse(f.time) || null).map((f) => toJsonLine(f) + '\n');
}

/** Every log file, with the captures of each go-libaudit YAML fixture written out as one log file. */
function inputs(): string[] {
  const files = fixtureFiles(/\.log(\.gz)?$/);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'credwatch-fastpath-'));
  for (const rel of auditFixtureFiles().filter((f) => f.endsWith('.yaml'))) {
    const p = path.join(dir, `${rel.replace(/\//g, '__')}.log`);
    writeFileSync(p, fixtureStreams(rel).map((lines) => lines.join('\n') + '\n').join(''));
    files.push(p);
  }
  return files;
}

/** Line-by-line equality, reporting the first differing line rather than two huge strings. */
function expectSameLines(got: string, want: string[], what: string): void {
  const lines = got.split(/(?<=\n)/).filter((l) => l !== '');
  const n = Math.min(lines.length, want.length);
  for (let i = 0; i < n; i++) if (lines[i] !== want[i]) expect(`${what} line ${i + 1}: ${lines[i]}`).toBe(`${what} line ${i + 1}: ${want[i]}`);
  expect(lines.length, `${what}: number of lines`).toBe(want.length);
}

describe.skipIf(!built)('replay fast path = full path on every fixture', () => {
  const files = built ? inputs() : [];
  // One stream of every fixture: three CLI runs instead of three per file (the machine is shared).
  // --jobs 1: the full path here reads them as one stream, which is what --jobs 1 does.
  let events: AuditEvent[] = [];

  beforeAll(async () => {
    events = await fullEvents(files);
  });

  it('covers the fixtures (audit logs, the corpora copies, behaviours, YAML captures)', () => {
    expect(files.filter((f) => f.includes(`${path.sep}behaviours${path.sep}`)).length).toBeGreaterThan(10);
    expect(files.filter((f) => f.includes('go-libaudit')).length).toBeGreaterThan(15);
    expect(files.filter((f) => f.endsWith('.yaml.log')).length).toBeGreaterThan(5);
    expect(events.length).toBeGreaterThan(1000);
  });

  it('times are exactly toISOString of the audit timestamp', () => {
    for (const ev of events) expect(ev.time).toBe(new Date(ev.timeMs).toISOString());
  });

  it('--events prints what redacting each whole event and dropping its records prints', () => {
    const r = credwatch(['replay', '--jobs', '1', '--events', ...files]);
    expect(r.code).toBe(0);
    expectSameLines(r.stdout, events.map((ev) => fullEventLine(ev, false)), '--events');
  });

  it('--events --records prints the fully redacted events', () => {
    const r = credwatch(['replay', '--jobs', '1', '--events', '--records', ...files]);
    expect(r.code).toBe(0);
    expectSameLines(r.stdout, events.map((ev) => fullEventLine(ev, true)), '--events --records');
  });

  it('findings (--json) are what the pipeline, size cap, token trail and latest revisions give, and there are some', async () => {
    const want = await fullFindings(files);
    expect(want.length).toBeGreaterThan(10);
    const r = credwatch(['replay', '--jobs', '1', '--json', ...files]);
    expect(r.code).toBe(0);
    expectSameLines(r.stdout, want, 'findings');
  });
});
