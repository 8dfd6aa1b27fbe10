/**
 * `credwatch config check` through the real CLI, as an operator runs it. Needs the build
 * (`npx tsc -p tsconfig.build.json && node scripts/copy-assets.js`, or `npm test` which builds first).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../../..');
const built = fs.existsSync(path.join(root, 'dist/src/cli/main.js'));
if (!built) console.log('skipping config check CLI tests: no build in dist/ (run the build first)');

function check(file: string, env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(root, 'bin/credwatch'), 'config', 'check', file], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const FULL = `storage:
  path: /var/lib/credwatch/findings.db
  retention_days: 14
  max_mb: 512
audit:
  mode: multicast
  backlog_limit: 16384
  backlog_wait_time: 0
  rules:
    - "-a always,exit -F arch=b64 -S execve -k credwatch:exec"
    - "-w /var/run/secrets/kubernetes.io/serviceaccount -p r -k credwatch:sa-token"
detections:
  rules_dir: /etc/credwatch/rules.d
  allow:
    exes: [/usr/bin/velero]
    uids: [0]
    auids: [1000]
    container_images: [registry.k8s.io/kube-proxy]
    container_ids: [0123456789ab]
    namespaces: [kube-system]
    k8s_users: ["system:serviceaccount:monitoring:prometheus"]
ship:
  - name: fleet
    type: collector
    url: https://127.0.0.1:9443
  - name: splunk
    type: splunk-hec
    url: https://127.0.0.1:8088
    token_env: SPLUNK_HEC_TOKEN
    min_severity: medium
kube_audit:
  - path: /var/log/kubernetes/audit/audit.log
  - webhook:
      listen: 0.0.0.0:8443
      path: /audit
      tls: {cert_file: /etc/credwatch/webhook.crt, key_file: /etc/credwatch/webhook.key, client_ca_file: /etc/credwatch/apiserver-client-ca.crt}
      max_body_bytes: 16777216
metrics:
  listen: "[::1]:9464"
log:
  level: debug
`;

describe.skipIf(!built)('credwatch config check', () => {
  let dir: string;
  const write = (name: string, text: string, mode = 0o600): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    fs.chmodSync(p, mode);
    return p;
  };
  let full: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-cfgcli-'));
    // config check loads rules_dir as run does (it must exist and hold valid rules): an empty one here.
    fs.mkdirSync(path.join(dir, 'rules.d'), { mode: 0o755 });
    full = FULL.replace('/etc/credwatch/rules.d', path.join(dir, 'rules.d'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('exit 0 and a summary for systemd/config.example.yaml', () => {
    const r = check(path.join(root, 'systemd/config.example.yaml'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok: .*config\.example\.yaml\n/);
    expect(r.stdout).toContain('audit: mode auto, backlog_limit 8192');
    expect(r.stdout).toContain('metrics: http://127.0.0.1:9464/metrics');
  });

  it('exit 0 for a config that sets every key, without printing the token', () => {
    const r = check(write('full.yaml', full), { SPLUNK_HEC_TOKEN: 'hec-secret-value' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ship: fleet (collector https://127.0.0.1:9443, token none), splunk (splunk-hec https://127.0.0.1:8088, token set)');
    expect(r.stdout).toContain('metrics: http://[::1]:9464/metrics');
    expect(r.stdout).toContain('kube_audit: /var/log/kubernetes/audit/audit.log, webhook https://0.0.0.0:8443/audit');
    expect(r.stdout).not.toContain('hec-secret-value');
  });

  const broken: [string, string, RegExp][] = [
    ['unknown', 'log:\n  level: info\naudit:\n  mdoe: auto\n', /unknown\.yaml:4:3: audit\.mdoe: unknown key "mdoe"; did you mean "mode"\?/],
    ['enum', 'log:\n  level: loud\n', /enum\.yaml:2:10: log\.level: expected one of "fatal"/],
    ['type', 'storage:\n  retention_days: thirty\n', /type\.yaml:2:19: storage\.retention_days: expected number/],
    ['yaml', 'audit:\n  mode: auto\n   rules: x\n', /yaml\.yaml:[23]:\d+: YAML syntax error: /],
    ['rule', 'audit:\n  rules:\n    - "-a always,exit -S execve"\n', /rule\.yaml:3:7: audit\.rules\[0\]: needs a key starting with "credwatch"/],
    ['webhook-tls', 'kube_audit:\n  - webhook:\n      listen: 0.0.0.0:8443\n      tls: {cert_file: /a.crt, key_file: /a.key}\n', /webhook-tls\.yaml:4:\d+: kube_audit\[0\]\.webhook\.tls\.client_ca_file: required/],
    ['url', 'ship:\n  - name: x\n    type: collector\n    url: http://127.0.0.1:9443\n', /url\.yaml:4:10: ship\[0\]\.url: must be an https:\/\/ URL/],
  ];
  for (const [what, text, expected] of broken) {
    it(`exit 2 naming key and line: ${what}`, () => {
      const file = write(`${what}.yaml`, text);
      const r = check(file);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(expected);
    });
  }

  it('a token_env variable unset where it checks is exit 2 naming key and line, as run refuses it', () => {
    const r = check(write('noenv.yaml', full));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/noenv\.yaml:29:16: ship\[1\]\.token_env: environment variable SPLUNK_HEC_TOKEN is not set/);
  });

  it('exit 2 for a world-readable file holding a token', () => {
    const file = write('token.yaml', 'ship:\n  - name: s\n    type: splunk-hec\n    url: https://127.0.0.1:8088\n    token: abc\n', 0o644);
    const r = check(file);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/token\.yaml:5:12: ship\[0\]\.token: this file holds a secret and is readable by group or others/);
  });

  it('exit 2 for a file that does not exist', () => {
    const r = check(path.join(dir, 'missing.yaml'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no such file');
  });
});
