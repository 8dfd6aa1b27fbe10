/**
 * Shared helpers for the audit fixtures in test/fixtures/audit: list them, turn each into streams
 * of record lines (a .log is one stream; a go-libaudit .yaml holds one stream per test case, which
 * are independent captures and are reassembled separately), and reassemble the way replay does.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import type { AuditEvent } from '../../../src/audit/event';
import { REPLAY_REASSEMBLY, Reassembler, type ReassemblerOptions, type ReassemblerStats } from '../../../src/audit/reassembler';
import { logLineHeader } from '../../../src/sources/auditlog';

export const FIXTURE_DIR = join(__dirname, '../../fixtures/audit');
export const GOLDEN_DIR = join(FIXTURE_DIR, 'golden');

export function fixtureFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (name !== 'golden' && name !== 'synthetic') walk(p);
      } else if (name.endsWith('.log') || name.endsWith('.yaml')) out.push(relative(FIXTURE_DIR, p));
    }
  };
  walk(FIXTURE_DIR);
  return out;
}

export function goldenPath(rel: string): string {
  return join(GOLDEN_DIR, rel.replace(/\//g, '__').replace(/\.(log|yaml)$/, '') + '.events.jsonl');
}

/** One array of lines per independent capture. */
export function fixtureStreams(rel: string): string[][] {
  const text = readFileSync(join(FIXTURE_DIR, rel), 'utf8');
  if (rel.endsWith('.yaml')) {
    const doc = parse(text) as { tests: Record<string, string> };
    return Object.values(doc.tests).map((t) => t.split('\n').filter((l) => l.trim() !== ''));
  }
  return [text.split('\n').filter((l) => l !== '')];
}

export interface Reassembled {
  events: AuditEvent[];
  stats: ReassemblerStats;
}

/** Reassembles lines as `credwatch replay` does (ageing by a window of records; flush at the end). */
export function reassembleLines(lines: string[], opts: Partial<ReassemblerOptions> = {}): Reassembled {
  const events: AuditEvent[] = [];
  const r = new Reassembler({ ...REPLAY_REASSEMBLY, ...opts, onEvent: (ev) => events.push(ev) });
  for (const text of lines) {
    const h = logLineHeader(text);
    r.push({ type: h.type, text }, h.node);
  }
  r.flush();
  return { events, stats: r.stats };
}

export function reassembleFixture(rel: string): Reassembled[] {
  return fixtureStreams(rel).map((lines) => reassembleLines(lines));
}

/** The golden form: one JSON line per event, raw records left out (they are the input). */
export function toGoldenLines(events: AuditEvent[]): string {
  return events.map((ev) => JSON.stringify({ ...ev, records: undefined }) + '\n').join('');
}

export function fixtureLines(rel: string): string[] {
  const streams = fixtureStreams(rel);
  if (streams.length !== 1) throw new Error(`${rel} holds ${streams.length} streams`);
  return streams[0] as string[];
}

/** The argv the recording passed to execve (recorded/debian-auditd-3.0.9-enriched.log; the live test passes the same list). */
export function recordedArgv(marker: string): Buffer[] {
  return [
    Buffer.from('/bin/true'),
    Buffer.from(marker),
    Buffer.from('x'),
    Buffer.from('a'.repeat(100)),
    Buffer.from('abcdefghij'.repeat(2000)),
    Buffer.from('with space'),
    Buffer.from('quote"inside'),
    Buffer.from('new\nline'),
    Buffer.from('tab\there'),
    Buffer.from('grüße ✓'),
    Buffer.from([0xff, 0xfe, ...Buffer.from('invalid')]),
    Buffer.alloc(0),
    Buffer.from('p'.repeat(5000)),
    Buffer.from('q'.repeat(5000)),
    Buffer.from('r'.repeat(5000)),
    Buffer.from('grüße✓'.repeat(2500)),
  ];
}

