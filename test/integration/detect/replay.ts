/**
 * Drives a recorded auditd log through the real pipeline pieces (helper C's log reader and
 * reassembler) into the detector, the way `credwatch replay` does.
 */
import * as path from 'node:path';
import type { AuditEvent } from '../../../src/audit/event';
import { readLogEvents } from '../../helpers/fixture-events';
import { createHostStages, type HostStages } from '../../../src/pipeline/host-stages';
import type { Finding } from '../../../src/model/finding';
import { latestRevisions } from '../../../src/detect/incidents';

export const BEHAVIOURS = path.join(__dirname, '../../fixtures/behaviours');

export const readEvents = readLogEvents;

export async function replay(
  file: string,
  opts: Partial<Parameters<typeof createHostStages>[0]> = {},
): Promise<{ events: AuditEvent[]; findings: Finding[]; detector: HostStages }> {
  const events = await readEvents(path.isAbsolute(file) ? file : path.join(BEHAVIOURS, file));
  const detector = createHostStages({ host: 'lab-node', users: null, ...opts });
  const findings: Finding[] = [];
  for (const ev of events) findings.push(...detector.onAuditEvent(ev));
  // As `credwatch replay`: close the incidents at the end of the log and keep each one's last revision.
  findings.push(...detector.tick(Number.MAX_SAFE_INTEGER));
  return { events, findings: latestRevisions(findings), detector };
}
