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
    expect(r.out.split('\n')[0]).toMatch(/^ID\s+SOURCE\s+SEVERITY\s+COVERS\s+TITLE$/);
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
    expect(ok.out).toMatch(/host-pod-tokens\.yaml: 4 host rules, valid/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-rc-'));
    const bad = path.join(dir, 'bad.yaml');
    const good = fs.readFileSync(path.join(ROOT, 'src/detect/rules/host-clients.yaml'), 'utf8');
    fs.writeFileSync(bad, good.replace("argv: '\\bcreate\\s+token\\b'", "argv: '(unclosed'"));
    const r = cw('rules', 'check', bad);
    expect(r.code).toBe(2);
    const line = good.split('\n').findIndex((l) => l.includes("argv: '\\bcreate\\s+token\\b'")) + 1;
    expect(r.err).toContain(`${bad}:${line}: rules[0].indicators[1].match.argv: invalid regex`);
    expect(cw('rules', 'check', path.join(dir, 'missing.yaml')).code).toBe(2);
    fs.rmSync(dir, { recursive: true });
  });
});
