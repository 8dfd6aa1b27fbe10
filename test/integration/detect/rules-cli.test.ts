/**
 * `credwatch rules` through the built CLI, as a user runs it. Needs a build first
 * (`npm run build`; `npm test` does it).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '../../..');
const built = fs.existsSync(path.join(ROOT, 'dist/src/cli/commands/rules.js'));
if (!built) console.log('rules CLI tests skipped: run `npm run build` first (dist/ is missing)');

function cw(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/credwatch'), ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe.skipIf(!built)('credwatch rules', () => {
  it('list shows every host row and the kube rules', () => {
    const r = cw('rules', 'list');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toMatch(/^ID\s+SOURCE\s+SEVERITY\s+COVERS\s+FILE\s+TITLE$/);
    for (let i = 1; i <= 14; i++) expect(r.out).toMatch(new RegExp(`\\bH${i}\\b`));
    expect(r.out).toMatch(/kube-audit/);
  });

  it('list --json prints one object per line with id, severity, covers, title', () => {
    const r = cw('rules', 'list', '--json');
    expect(r.code).toBe(0);
    const rows = r.out.trim().split('\n').map((l) => JSON.parse(l) as { id: string; severity: string; covers: string[]; title: string; source: string });
    const h1 = rows.find((x) => x.id === 'h1-sa-token-read');
    expect(h1).toMatchObject({ source: 'audit', severity: 'high', covers: ['H1'] });
    expect(rows.every((x) => x.id && x.severity && x.covers.length > 0 && x.title)).toBe(true);
  });

  it('check: exit 0 for valid files, exit 2 with file:line for a bad one', () => {
    const ok = cw('rules', 'check', path.join(ROOT, 'src/detect/rules/host-pod-tokens.yaml'));
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^ok: \d+ host, \d+ Kubernetes audit and 0 Sigma rules with the built-in pack/m);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-rc-'));
    const bad = path.join(dir, 'bad.yaml');
    // The pack's own files check as one set with the pack (they used to fail on cross-file sequences).
    expect(cw('rules', 'check', ...fs.readdirSync(path.join(ROOT, 'src/detect/rules')).map((n) => path.join(ROOT, 'src/detect/rules', n))).code).toBe(0);
    const rule = "rules:\n  - id: my-rule\n    title: T\n    description: D\n    severity: high\n    confidence: low\n    mitre: [T1552]\n    covers: [H1]\n    indicators:\n      - id: a\n        anchor: true\n        match: { event: exec, argv: '(unclosed' }\n";
    fs.writeFileSync(bad, rule, { mode: 0o644 });
    const r = cw('rules', 'check', bad);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(new RegExp(`${bad.replace(/[.]/g, '\\.')}:12:\\d+: rules\\[0\\]\\.indicators\\[0\\]\\.match\\.argv: invalid regex`));
    fs.chmodSync(dir, 0o755);
    expect(cw('rules', 'check', dir).code).toBe(2); // a directory is read, not EISDIR
    expect(cw('rules', 'check', path.join(dir, 'missing.yaml')).code).toBe(2);
    fs.rmSync(dir, { recursive: true });
  });
});
