import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BUILTIN_DEFAULTS_SOURCE,
  ConfigError,
  defaultConfig,
  loadConfig,
  parseConfigText,
  parseListenAddress,
  shipTokenEnvName,
} from '../../../src/daemon/config';

function problemsOf(text: string, env: Record<string, string> = {}): ConfigError {
  try {
    parseConfigText(text, 'test.yaml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

/** The ConfigError loadConfig throws for `p` (fails the test when it loads). */
function refusal(p: string): ConfigError {
  try {
    loadConfig(p, {});
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`${p} loaded, expected a ConfigError`);
}

describe('config errors name the key, the line and what is expected', () => {
  it('bad type', () => {
    const e = problemsOf('storage:\n  path: /x/y.db\n  retention_days: "ten"\n');
    expect(e.problems).toEqual([
      { path: 'storage.retention_days', line: 3, column: 19, message: 'expected number, got the string "ten"' },
    ]);
    expect(e.message).toContain('test.yaml:3:19: storage.retention_days: expected number');
    expect(e.exitCode).toBe(2);
  });

  it('unknown key, with a did-you-mean hint', () => {
    const e = problemsOf('log:\n  level: info\naudit:\n  backlog_limt: 100\n');
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatchObject({ path: 'audit.backlog_limt', line: 4, column: 3 });
    expect(e.problems[0]?.message).toContain('unknown key "backlog_limt"; did you mean "backlog_limit"?');
  });

  it('unknown top-level key', () => {
    const e = problemsOf('metric:\n  listen: off\n');
    expect(e.problems[0]).toMatchObject({ path: 'metric', line: 1, column: 1 });
    expect(e.problems[0]?.message).toContain('did you mean "metrics"');
  });

  it('bad enum value lists the allowed ones', () => {
    const e = problemsOf('audit:\n  mode: fast\n');
    expect(e.problems).toEqual([
      { path: 'audit.mode', line: 2, column: 9, message: 'expected one of "auto", "unicast", "multicast", got the string "fast"' },
    ]);
  });

  it('bad YAML syntax gives the line from the parser', () => {
    const e = problemsOf('audit:\n  mode: auto\n  rules: [ "-a always,exit"\nlog:\n  level: info\n');
    expect(e.problems[0]?.line).toBeGreaterThanOrEqual(3);
    expect(e.problems[0]?.message).toMatch(/^YAML syntax error: /);
  });

  it('duplicate keys are an error, not a silent override', () => {
    const e = problemsOf('log:\n  level: info\nlog:\n  level: debug\n');
    expect(e.problems[0]).toMatchObject({ line: 3 });
    expect(e.problems[0]?.message).toContain('unique');
  });

  it('a bad item in a list points at the item', () => {
    const e = problemsOf('audit:\n  rules:\n    - "-w /etc/shadow -p r -k credwatch:x"\n    - 42\n');
    expect(e.problems).toEqual([{ path: 'audit.rules[1]', line: 4, column: 7, message: 'expected string, got number 42' }]);
  });

  it('explicit audit rules must encode and carry a credwatch key', () => {
    const e = problemsOf('audit:\n  rules:\n    - "-a always,exit -F arch=b64 -S execve -k credwatch:exec"\n    - "-a always,exit -S nosuchcall -k credwatch:x"\n    - "-w /etc/shadow -p r -k theirs"\n');
    expect(e.problems.map((p) => [p.path, p.line])).toEqual([
      ['audit.rules[1]', 4],
      ['audit.rules[2]', 5],
    ]);
    expect(e.problems[0]?.message).toContain('not a valid audit rule');
    expect(e.problems[1]?.message).toContain('needs a key starting with "credwatch"');
  });

  it('a missing required key points at its parent', () => {
    const e = problemsOf('kube_audit:\n  - webhook:\n      listen: 127.0.0.1:8443\n');
    expect(e.problems[0]).toMatchObject({ path: 'kube_audit[0].webhook.tls', line: 3, message: 'required: expected object' });
  });

  it('a kube_audit source is a path or a webhook, not both or neither', () => {
    for (const text of ['kube_audit:\n  - {}\n', 'kube_audit:\n  - path: /var/log/a.log\n    webhook:\n      listen: 127.0.0.1:1\n      tls: {cert_file: /a, key_file: /b, client_ca_file: /c}\n']) {
      expect(problemsOf(text).problems[0]).toMatchObject({ path: 'kube_audit[0]', line: 2, message: 'give either path (an audit log file) or webhook, not both or neither, got a mapping' });
    }
  });

  it('a webhook source: listen address, absolute TLS files, a body cap; defaults filled', () => {
    const ok = parseConfigText('kube_audit:\n  - webhook:\n      listen: 0.0.0.0:8443\n      tls: {cert_file: /etc/cw/wh.crt, key_file: /etc/cw/wh.key, client_ca_file: /etc/cw/apiserver-ca.crt}\n', 'test.yaml', {});
    expect(ok.kube_audit[0]).toEqual({ webhook: { listen: '0.0.0.0:8443', path: '/', max_body_bytes: 32 * 1024 * 1024, tls: { cert_file: '/etc/cw/wh.crt', key_file: '/etc/cw/wh.key', client_ca_file: '/etc/cw/apiserver-ca.crt' } } });
    expect(problemsOf('kube_audit:\n  - webhook:\n      listen: "off"\n      tls: {cert_file: /a, key_file: /b, client_ca_file: /c}\n').problems[0]?.path).toBe('kube_audit[0].webhook.listen');
    expect(problemsOf('kube_audit:\n  - webhook:\n      listen: 127.0.0.1:1\n      tls: {cert_file: a.crt, key_file: /b, client_ca_file: /c}\n').problems[0]?.path).toBe('kube_audit[0].webhook.tls.cert_file');
    expect(problemsOf('kube_audit:\n  - webhook:\n      listen: 127.0.0.1:1\n      max_body_bytes: 10\n      tls: {cert_file: /a, key_file: /b, client_ca_file: /c}\n').problems[0]?.path).toBe('kube_audit[0].webhook.max_body_bytes');
  });

  it('reports every problem, not only the first', () => {
    const e = problemsOf('audit:\n  mode: x\nlog:\n  level: loud\n');
    expect(e.problems.map((p) => [p.path, p.line])).toEqual([
      ['audit.mode', 2],
      ['log.level', 4],
    ]);
  });

  it('a non-mapping document is refused', () => {
    expect(problemsOf('- a\n- b\n').problems[0]?.message).toContain('expected a mapping');
  });
});

describe('defaults', () => {
  it('empty text gives the built-in defaults', () => {
    const c = parseConfigText('', 'empty.yaml', {});
    expect(c).toEqual(defaultConfig());
    expect(c.storage).toEqual({ path: '/var/lib/credwatch/findings.db', retention_days: 30, max_mb: 1024, max_finding_kb: 64 });
    expect(c.audit).toEqual({ mode: 'auto', backlog_limit: 8192, rules: 'default', triage: true });
    expect(c.metrics.listen).toBe('127.0.0.1:9464');
    expect(c.log.level).toBe('info');
    expect(c.ship).toEqual([]);
    expect(c.detections.allow.exes).toEqual([]);
  });

  it('a partial section keeps the defaults of its other keys', () => {
    const c = parseConfigText('audit:\n  mode: multicast\n', 'p.yaml', {});
    expect(c.audit).toEqual({ mode: 'multicast', backlog_limit: 8192, rules: 'default', triage: true });
  });

  it('no file at the default path means built-in defaults', () => {
    const r = loadConfig(undefined, {}, '/nonexistent/credwatch/config.yaml');
    expect(r.source).toBe(BUILTIN_DEFAULTS_SOURCE);
    expect(r.config).toEqual(defaultConfig());
  });

  it('an explicitly given file that does not exist is an error', () => {
    expect(() => loadConfig('/nonexistent/credwatch/config.yaml', {})).toThrow(/no such file/);
  });

  it('metrics can be turned off; listen addresses parse', () => {
    expect(parseConfigText('metrics:\n  listen: "off"\n', 'm.yaml', {}).metrics.listen).toBe('off');
    expect(parseListenAddress('off')).toBeNull();
    expect(parseListenAddress('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListenAddress('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(() => parseListenAddress('127.0.0.1:99999')).toThrow();
  });
});

describe('secrets', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-config-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function write(name: string, text: string, mode: number): string {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    fs.chmodSync(p, mode);
    return p;
  }

  it('CREDWATCH_SHIP_<NAME>_TOKEN overrides the token of that output', () => {
    const text = 'ship:\n  - name: splunk-prod\n    type: splunk-hec\n    url: https://127.0.0.1:8088\n';
    const env = { [shipTokenEnvName('splunk-prod')]: 'from-env' };
    expect(shipTokenEnvName('splunk-prod')).toBe('CREDWATCH_SHIP_SPLUNK_PROD_TOKEN');
    const c = parseConfigText(text, 'e.yaml', env);
    expect((c.ship[0] as { token?: string }).token).toBe('from-env');
  });

  it('token_env names the variable holding the token', () => {
    const text = 'ship:\n  - name: hec\n    type: splunk-hec\n    url: https://127.0.0.1:8088\n    token_env: MY_HEC_TOKEN\n';
    const c = parseConfigText(text, 'e.yaml', { MY_HEC_TOKEN: 's3cret' });
    expect(c.ship[0]).toMatchObject({ name: 'hec', token: 's3cret' });
    expect(c.ship[0]).not.toHaveProperty('token_env');
    const e = problemsOf(text, {});
    expect(e.problems[0]).toMatchObject({ path: 'ship[0].token_env', line: 5 });
    expect(e.problems[0]?.message).toContain('MY_HEC_TOKEN is not set');
  });

  it('a world-readable file holding a token literal is refused, naming the line', () => {
    const p = write('readable.yaml', 'log:\n  level: info\nship:\n  - name: hec\n    token: abc123\n    type: splunk-hec\n    url: https://127.0.0.1:8088\n', 0o644);
    const err = refusal(p);
    const ce = err;
    expect(ce.problems[0]).toMatchObject({ path: 'ship[0].token', line: 5 });
    expect(ce.message).toContain('readable by group or others');
    expect(ce.message).toContain('chmod 600');
    expect(ce.message).not.toContain('abc123');
  });

  it('a group-readable (0640) file holding a token literal is refused (accepted on main)', () => {
    const p = write('group.yaml', 'ship:\n  - name: hec\n    type: splunk-hec\n    url: https://127.0.0.1:8088\n    token: abc123\n', 0o640);
    expect(() => loadConfig(p, {})).toThrow(/ship\[0\]\.token.*readable by group or others \(mode 0640\)/s);
  });

  it('a 0644 file with user:password@ in a URL is refused, naming the key and not the password (accepted on main)', () => {
    const p = write('urlpw.yaml', 'ship:\n  - name: es\n    type: elasticsearch\n    url: https://elastic:hunter2@127.0.0.1:9200\n', 0o644);
    const err = refusal(p);
    expect(err.problems[0]).toMatchObject({ path: 'ship[0].url', line: 4 });
    expect(err.message).not.toContain('hunter2');
    // A URL without a password in a readable file is fine.
    const ok = write('urlok.yaml', 'ship:\n  - name: es\n    type: elasticsearch\n    url: https://127.0.0.1:9200\n    token_env: ES_T\n', 0o644);
    expect(loadConfig(ok, { ES_T: 'x' }).config.ship[0]).toMatchObject({ url: 'https://127.0.0.1:9200' });
  });

  it('an unset token_env variable is a refusal naming the key and line', () => {
    const p = write('unset.yaml', 'ship:\n  - name: hec\n    type: splunk-hec\n    url: https://127.0.0.1:8088\n    token_env: UNSET_T\n', 0o600);
    expect(refusal(p).problems).toEqual([{ path: 'ship[0].token_env', line: 5, column: 16, message: expect.stringContaining('UNSET_T is not set') as unknown }]);
  });

  it('the same file with mode 0600 loads', () => {
    const p = write('private.yaml', 'ship:\n  - name: hec\n    type: splunk-hec\n    url: https://127.0.0.1:8088\n    token: abc123\n', 0o600);
    expect(loadConfig(p, {}).config.ship[0]).toMatchObject({ token: 'abc123' });
  });

  it('a world-readable file whose token comes from the environment loads', () => {
    const p = write('envtoken.yaml', 'ship:\n  - name: hec\n    type: splunk-hec\n    url: https://127.0.0.1:8088\n    token_env: HEC_T\n', 0o644);
    expect(loadConfig(p, { HEC_T: 'x' }).config.ship[0]).toMatchObject({ token: 'x' });
  });

  it('a group- or world-writable file is refused', () => {
    const p = write('writable.yaml', 'log:\n  level: info\n', 0o666);
    expect(() => loadConfig(p, {})).toThrow(/group- or world-writable/);
  });

  it('duplicate output names are refused (they would share one outbox cursor)', () => {
    const out = (n: string) => `  - name: ${n}\n    type: collector\n    url: https://127.0.0.1:9443\n`;
    const e = problemsOf(`ship:\n${out('a')}${out('b')}${out('a')}`);
    expect(e.problems[0]).toMatchObject({ path: 'ship[2].name', line: 8 });
  });

  it('ship outputs are validated by the shipper schema, with key and line', () => {
    const e = problemsOf('ship:\n  - name: c\n    type: collector\n    url: https://127.0.0.1:9443\n    gzipp: true\n');
    expect(e.problems.map((p) => [p.path, p.line])).toEqual([
      ['ship[0].gzipp', 5],
    ]);
    expect(e.problems[0]?.message).toContain('did you mean "gzip"');
    const e2 = problemsOf('ship:\n  - name: c\n    type: collector\n    url: http://127.0.0.1:9443\n');
    expect(e2.problems[0]).toMatchObject({ path: 'ship[0].url', line: 4 });
    expect(e2.problems[0]?.message).toContain('https://');
  });
});
