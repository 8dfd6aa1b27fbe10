/**
 * `credwatch config check` refuses what `credwatch run` and `credwatch collector` refuse before they
 * touch the kernel or the network, with the same message and exit 2: one case per check, each run
 * through both real commands (child processes of bin/credwatch; needs the build).
 *
 * Every case is built to fail before the agent opens an audit socket. Should a check regress and
 * `run` get further, it must still not touch kernel audit (other suites may be using it): `run` is
 * started in a user namespace of its own (`unshare --user --map-root-user`), where the kernel does not
 * let audit netlink change anything, with a kill timer; the test then fails on the exit code.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from '../../helpers/tls';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/credwatch');
const built = fs.existsSync(path.join(ROOT, 'dist/src/cli/main.js'));
const hasUnshare = spawnSync('unshare', ['--user', '--map-root-user', 'true']).status === 0;
if (built && !hasUnshare) console.log('skipping config check parity with run: unshare --user is not available here (run must not touch kernel audit)');

interface Result {
  code: number | null;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}, ownUserNs = false): Result {
  const cmd = ownUserNs ? ['unshare', '--user', '--map-root-user', process.execPath, BIN, ...args] : [process.execPath, BIN, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
  return { code: r.status, stderr: r.stderr };
}

/** The refusal line main.ts prints for both commands (`credwatch: ...`), without the log lines run writes before it. */
function refusal(r: Result): string {
  return r.stderr.split('\n').filter((l) => l.startsWith('credwatch: ')).join('\n');
}

describe.skipIf(!built || !hasUnshare)('config check parity with run and collector', { timeout: 90_000 }, () => {
  let dir: string;
  let pki: TestPki;
  const write = (name: string, text: string, mode = 0o600): string => {
    const p = path.join(dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
    fs.writeFileSync(p, text);
    fs.chmodSync(p, mode);
    return p;
  };
  /** An agent config whose storage is ours, with no metrics listener and no kube sources. */
  const agentConfig = (name: string, extra: string): string =>
    write(name, `storage:\n  path: ${path.join(dir, 'db', name + '.db')}\nmetrics:\n  listen: "off"\naudit:\n  mode: multicast\n${extra}`);

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-parity-'));
    fs.chmodSync(dir, 0o755);
    pki = makeTestPki();
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    pki.cleanup();
  });

  function expectSameRefusal(file: string, pattern: RegExp, env: Record<string, string> = {}, command: 'run' | 'collector' = 'run'): void {
    const checked = cli(['config', 'check', file], env);
    const ran = command === 'run' ? cli(['run', '--config', file], env, true) : cli(['collector', '--config', file], env);
    expect(checked.code, checked.stderr).toBe(2);
    expect(ran.code, ran.stderr).toBe(2);
    expect(refusal(checked)).toMatch(pattern);
    expect(refusal(ran)).toBe(refusal(checked));
  }

  it('detections.rules_dir that does not exist', () => {
    const missing = path.join(dir, 'no-such-rules.d');
    expectSameRefusal(agentConfig('missing-dir.yaml', `detections:\n  rules_dir: ${missing}\n`), new RegExp(`^credwatch: ${missing}: rules directory does not exist$`));
  });

  it('detections.rules_dir holding a broken rule (file:line:col)', () => {
    write('broken.d/10-mine.yaml', 'rules:\n  - id: my-rule\n    title: x\n    severity: loud\n', 0o644);
    expectSameRefusal(agentConfig('broken-rule.yaml', `detections:\n  rules_dir: ${path.join(dir, 'broken.d')}\n`), /10-mine\.yaml:\d+:\d+: rules\[0\]\./);
  });

  it('detections.rules_dir holding a Sigma rule that cannot be mapped', () => {
    write('sigma.d/s.yml', 'title: t\nid: s1\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  sel:\n    Hashes: abc\n  condition: sel\nlevel: high\n', 0o644);
    expectSameRefusal(agentConfig('sigma-rule.yaml', `detections:\n  rules_dir: ${path.join(dir, 'sigma.d')}\n`), /s\.yml:8:\d+: detection\.sel\.Hashes: field "Hashes" cannot be mapped/);
  });

  it('a group-writable rule file (file modes)', () => {
    write('loose.d/r.yaml', 'rules: []\n', 0o664);
    expectSameRefusal(agentConfig('loose-rule.yaml', `detections:\n  rules_dir: ${path.join(dir, 'loose.d')}\n`), /r\.yaml: refusing a group- or world-writable rule file \(mode 0664\)/);
  });

  it('a group-writable configuration file (file modes)', () => {
    const file = agentConfig('loose.yaml', '');
    fs.chmodSync(file, 0o664);
    expectSameRefusal(file, /refusing a group- or world-writable configuration file \(mode 0664\)/);
  });

  const ship = (tls: string): string => `ship:\n  - name: fleet\n    type: collector\n    url: https://127.0.0.1:9443\n    tls:\n${tls}`;

  it('a ship output whose tls.ca_file is missing', () => {
    const ca = path.join(dir, 'no-ca.pem');
    expectSameRefusal(agentConfig('no-ca.yaml', ship(`      ca_file: ${ca}\n`)), new RegExp(`^credwatch: ship output fleet: cannot read TLS ca file ${ca}: ENOENT$`));
  });

  it('a ship output whose token_env variable is unset (check refuses what run refuses)', () => {
    const file = agentConfig('noenv.yaml', 'ship:\n  - name: hec\n    type: splunk-hec\n    url: https://127.0.0.1:8088\n    token_env: PARITY_UNSET_TOKEN\n');
    expectSameRefusal(file, /ship\[0\]\.token_env: environment variable PARITY_UNSET_TOKEN is not set/);
    expect(cli(['config', 'check', file], { PARITY_UNSET_TOKEN: 'x' }).code).toBe(0);
  });

  it('tls.insecure_skip_verify without CREDWATCH_ALLOW_INSECURE_TLS=1', () => {
    const file = agentConfig('insecure.yaml', ship('      insecure_skip_verify: true\n'));
    expectSameRefusal(file, /^credwatch: ship output fleet: tls\.insecure_skip_verify is refused unless insecure TLS is explicitly allowed \(CREDWATCH_ALLOW_INSECURE_TLS=1\)$/);
    // With the variable set, config check accepts it (run would go on to the kernel: not run here).
    expect(cli(['config', 'check', file], { CREDWATCH_ALLOW_INSECURE_TLS: '1' }).code).toBe(0);
  });

  it('a ship output whose key_file is a certificate: a clear message, not DECODER routines', () => {
    const file = agentConfig('swapped.yaml', ship(`      ca_file: ${pki.caFile}\n      cert_file: ${pki.client('a').certFile}\n      key_file: ${pki.client('a').certFile}\n`));
    expectSameRefusal(file, /^credwatch: ship output fleet: TLS key file \S+ holds a certificate, not a private key \(key_file and cert_file swapped\?\)$/);
    expect(cli(['config', 'check', file]).stderr).not.toMatch(/DECODER|routines/);
  });

  const collectorConfig = (name: string, tls: string, mode = 0o600): string =>
    write(name, `listen: 127.0.0.1:1\ntls:\n${tls}agents:\n  - agent: a\n    token_sha256: '${'0'.repeat(64)}'\nstorage:\n  path: ${path.join(dir, 'db', name + '.db')}\n`, mode);

  it('collector: key_file that is a certificate', () => {
    const file = collectorConfig('c-swapped.yaml', `  cert_file: ${pki.server.certFile}\n  key_file: ${pki.server.certFile}\n`);
    expectSameRefusal(file, /^credwatch: collector: TLS key file \S+ holds a certificate, not a private key/, {}, 'collector');
  });

  it('collector: a key that belongs to another certificate', () => {
    const file = collectorConfig('c-mismatch.yaml', `  cert_file: ${pki.server.certFile}\n  key_file: ${pki.wrongName.keyFile}\n`);
    expectSameRefusal(file, /^credwatch: collector: TLS key file \S+ does not belong to the certificate in \S+$/, {}, 'collector');
  });

  it('collector: a missing client CA file', () => {
    const file = collectorConfig('c-noca.yaml', `  cert_file: ${pki.server.certFile}\n  key_file: ${pki.server.keyFile}\n  client_ca_file: ${path.join(dir, 'none.pem')}\n`);
    expectSameRefusal(file, /^credwatch: collector: cannot read TLS client CA \S+ \(ENOENT\)/, {}, 'collector');
  });

  it('collector: a world-readable file holding a token (file modes)', () => {
    const file = write('c-token.yaml', `tls:\n  cert_file: ${pki.server.certFile}\n  key_file: ${pki.server.keyFile}\nagents:\n  - agent: a\n    token: 0123456789abcdef0123\n`, 0o644);
    expectSameRefusal(file, /holds a token and is world-readable; run chmod 600/, {}, 'collector');
  });

  it('a valid collector configuration is ok (and named as one)', () => {
    const r = spawnSync(process.execPath, [BIN, 'config', 'check', collectorConfig('c-ok.yaml', `  cert_file: ${pki.server.certFile}\n  key_file: ${pki.server.keyFile}\n`)], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ok: \S+c-ok\.yaml \(collector\)\n/);
  });
});
