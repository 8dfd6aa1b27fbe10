/**
 * Issue 15 "Redaction is a list with holes": each secret-bearing form once, through the real pipeline
 * (kernel-format audit log / Kubernetes audit JSON → replay → store → CLI → ship formats → log), and the
 * secret must appear in none of them. One replay per source keeps it fast; each case has its own secret,
 * so a leak names its case and the sinks it reached.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectSinks, builtCli, leakedIn, type Sinks } from '../../helpers/leak-sinks';
import { hostCaseLines, hostCases, kubeCases } from '../../helpers/secret-forms';

const secretFor = (tag: string) => (i: number): string => `Zq${tag}${i}x7RkWpLmQ2vTs9`;
const HOST = hostCases(secretFor('h'));
const KUBE = kubeCases(secretFor('k'));

let dir = '';
let host: Sinks;
let kube: Sinks;

describe.skipIf(!builtCli())('redaction of every listed form, end to end', () => {
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-forms-'));
    const auditLog = path.join(dir, 'audit.log');
    fs.writeFileSync(auditLog, HOST.flatMap((c, i) => hostCaseLines(i, c.argv)).join('\n') + '\n');
    host = collectSinks(auditLog, { auditText: true });
    const kubeLog = path.join(dir, 'kube-audit.log');
    fs.writeFileSync(kubeLog, KUBE.map((c) => JSON.stringify(c.event)).join('\n') + '\n');
    kube = collectSinks(kubeLog, { auditText: false });
  }, 120_000);
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    // The before/after figures for the closing note: cases leaking anywhere, and without `replay --events`.
    const count = (s: Sinks, cases: { secret: string }[], skipEvents: boolean): number =>
      cases.filter((c) => leakedIn(s, c.secret).some((n) => !skipEvents || n !== 'replay --events --records')).length;
    console.log(
      `[redaction forms] host leaking: ${count(host, HOST, false)}/${HOST.length} (${count(host, HOST, true)} outside replay --events); ` +
        `kube leaking: ${count(kube, KUBE, false)}/${KUBE.length}`,
    );
  });

  it('has 43 host and 11 Kubernetes cases, and every case raised a finding that carries it', () => {
    expect(HOST).toHaveLength(43);
    expect(KUBE).toHaveLength(11);
    // A case whose input raised no finding would pass vacuously: each host case's child curl and each
    // kube event must have produced a finding.
    expect(host.findings.filter((f) => f.rule === 'h7-runtime-socket-in-argv').length).toBeGreaterThanOrEqual(HOST.length);
    expect(new Set(kube.findings.flatMap((f) => f.evidence.map((e) => e.event_id))).size).toBe(KUBE.length);
  });

  it.each(HOST.map((c) => [c.name, c] as const))('host: %s', (_name, c) => {
    expect(leakedIn(host, c.secret)).toEqual([]);
  });

  it.each(KUBE.map((c) => [c.name, c] as const))('kube: %s', (_name, c) => {
    expect(leakedIn(kube, c.secret)).toEqual([]);
  });

  it('keeps the evidence useful: program names and endpoints survive redaction', () => {
    const shown = host.texts.get('show') ?? '';
    expect(shown).toContain('/run/docker.sock');
    expect(shown).toContain('sshpass');
    expect(shown).toContain('registry.local');
    expect(kube.texts.get('show') ?? '').toContain('/var/run/docker.sock');
  });
});
