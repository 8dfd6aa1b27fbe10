/** Replays a kube audit fixture through the real source reader and detector (shared by golden tests). */
import * as path from 'node:path';
import { readKubeAuditFile } from '../../../src/sources/kube-audit';
import { createKubeDetector } from '../../../src/detect/kube';
import type { Finding } from '../../../src/model/finding';

export const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'kube');

export async function replayFixture(file: string): Promise<{ findings: Finding[]; badLines: number; events: number }> {
  const det = createKubeDetector({ host: 'fixture-host', now: () => 0 });
  const findings: Finding[] = [];
  const r = await readKubeAuditFile(file, { onEvent: (ev) => findings.push(...det.onKubeEvent(ev)) });
  findings.push(...det.flush());
  return { findings, badLines: r.stats.badLines, events: r.stats.events };
}

/** The reviewed projection of a finding kept in golden files. */
export function goldenLine(f: Finding): string {
  const k = f.kube;
  return JSON.stringify({
    rule: f.rule,
    covers: f.covers,
    severity: f.severity,
    confidence: f.confidence,
    indicators: f.indicators,
    audit_id: k?.audit_id ?? null,
    user: k?.user ?? null,
    impersonated_user: k?.impersonated_user ?? null,
    verb: k?.verb ?? null,
    resource: k?.subresource ? `${k.resource}/${k.subresource}` : (k?.resource ?? null),
    namespace: k?.namespace ?? null,
    name: k?.name ?? null,
    response_code: k?.response_code ?? null,
    id: f.id,
  });
}
