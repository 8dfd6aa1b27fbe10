/**
 * Drives a recorded auditd log through the real pipeline pieces (helper C's log reader and
 * reassembler) into the detector, the way `credwatch replay` does.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { AuditEvent } from '../../../src/audit/event';
import { REPLAY_REASSEMBLY, Reassembler } from '../../../src/audit/reassembler';
import { readAuditLogStream } from '../../../src/sources/auditlog';
import { createDetector, type Detector, type DetectorOptions } from '../../../src/detect/engine';
import type { Finding } from '../../../src/detect/finding';

export const BEHAVIOURS = path.join(__dirname, '../../fixtures/behaviours');

export async function readEvents(file: string): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  const r = new Reassembler({ onEvent: (ev) => events.push(ev), ...REPLAY_REASSEMBLY });
  let input: Readable = fs.createReadStream(file);
  if (file.endsWith('.gz')) input = input.pipe(createGunzip());
  for await (const batch of readAuditLogStream(input)) for (const rec of batch) r.push(rec, rec.node);
  r.flush();
  return events;
}

export async function replay(
  file: string,
  opts: Partial<DetectorOptions> = {},
): Promise<{ events: AuditEvent[]; findings: Finding[]; detector: Detector }> {
  const events = await readEvents(path.isAbsolute(file) ? file : path.join(BEHAVIOURS, file));
  const detector = createDetector({ host: 'lab-node', users: null, ...opts });
  const findings: Finding[] = [];
  for (const ev of events) findings.push(...detector.onAuditEvent(ev));
  return { events, findings, detector };
}
