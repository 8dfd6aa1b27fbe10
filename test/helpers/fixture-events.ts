/**
 * Recorded audit logs under test/fixtures as reassembled events, the way `credwatch replay` reads
 * them (log reader + reassembler with the replay settings).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { AuditEvent } from '../../src/audit/event';
import { REPLAY_REASSEMBLY, Reassembler } from '../../src/audit/reassembler';
import { readAuditLogStream } from '../../src/sources/auditlog';

export const FIXTURES = path.join(__dirname, '../fixtures');

/** Every event of an auditd log file (.log, or .log.gz). */
export async function readLogEvents(file: string): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  const r = new Reassembler({ onEvent: (ev) => events.push(ev), ...REPLAY_REASSEMBLY });
  let input: Readable = fs.createReadStream(file);
  if (file.endsWith('.gz')) input = input.pipe(createGunzip());
  for await (const batch of readAuditLogStream(input)) for (const rec of batch) r.push(rec, rec.node);
  r.flush();
  return events;
}

/** Recorded files under fixtures/audit and fixtures/behaviours (golden/ holds expected output, not logs). */
export function fixtureFiles(pattern: RegExp): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'golden') walk(p);
      } else if (pattern.test(e.name)) out.push(p);
    }
  };
  walk(path.join(FIXTURES, 'audit'));
  walk(path.join(FIXTURES, 'behaviours'));
  return out.sort();
}
