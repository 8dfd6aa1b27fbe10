/**
 * Hostile credential-ids through `credwatch replay` (the real CLI): counted on stderr, never a crash,
 * never a join key, and the good requests around them still read.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../../src/model/finding';
import { requestLine } from '../../helpers/kube-requests';

const ROOT = path.resolve(__dirname, '../../..');
const built = fs.existsSync(path.join(ROOT, 'dist/src/cli/main.js'));
const POD = '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d';

describe.skipIf(!built)('replay: credential-ids of a wrong shape', () => {
  it('counts them, joins nothing on them, and still flags the well-formed request used away from its node', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-cred-bad-'));
    try {
      const t = Date.parse('2026-12-02T10:00:00Z');
      const bad = ['JTI=', 'JTI=a b c', `JTI=${'x'.repeat(200_000)}`, 'JTI=<img src=x>', '=', 'JTI=\u0000\u0001'];
      const lines = [
        requestLine({ auditID: 'kubelet', atMs: t, username: 'system:node:worker-1', sourceIPs: ['192.0.2.11'], verb: 'get', resource: 'pods' }),
        ...bad.map((c, i) => requestLine({ auditID: `bad-${i}`, atMs: t + i, credentialId: c, podUid: POD, node: 'worker-1', sourceIPs: ['203.0.113.9'] })),
        requestLine({ auditID: 'good', atMs: t + 100, jti: 'e3b0c442-98fc-4c14-9afb-f4c8996fb924', podUid: POD, node: 'worker-1', sourceIPs: ['203.0.113.9'] }),
      ];
      const file = path.join(dir, 'audit.log');
      fs.writeFileSync(file, lines.join('\n') + '\n');
      const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/credwatch'), 'replay', '--json', file], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status).toBe(0);
      expect(r.stderr).toContain(`${bad.length} malformed credential-ids`);
      const findings = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Finding);
      const away = findings.filter((f) => f.rule === 'kube-token-used-away-from-node');
      expect(away.map((f) => f.kube?.audit_id)).toEqual(['good']);
      expect(r.stdout).not.toContain('x'.repeat(1000));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
