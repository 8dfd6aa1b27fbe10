/**
 * Kubernetes evidence with bounded work (src/kube/redact.ts): an exec URI's commands are redacted and
 * bounded as a finding's argv (at most 256, then one `command=…[+N args]`), the rest of a long URI is
 * cut as cut text, and a request object far over the evidence limit is summarised without being walked.
 */
import { describe, expect, it } from 'vitest';
import { MAX_ARGS } from '../../../src/detect/bound';
import { jsonCharsUpTo, redactRequestObject, redactRequestUri } from '../../../src/detect/redact/kube-event';
import { parseKubeAuditLine } from '../../../src/kube/event';
import { createKubeDetector } from '../../../src/detect/kube';
import { loadRunnableRuleSet } from '../../../src/detect/rule-set';

const SECRET = 'Qz9Wk3mR7tXb2Lp5Nv8Hc4Jd6Fg1Sa0Ye';

describe('kube evidence, bounded', () => {
  it('an exec URI keeps 256 redacted commands and a marker for the rest', () => {
    const cmds = ['kubectl', '--token', SECRET, ...Array.from({ length: 400 }, (_, i) => `http://a:${SECRET}${i}@h/`)];
    const uri = `/api/v1/namespaces/d/pods/p/exec?${cmds.map((c) => `command=${encodeURIComponent(c)}`).join('&')}&container=c&stdout=true`;
    const out = redactRequestUri(uri);
    expect(out).not.toContain(SECRET.slice(0, 6));
    const params = new URLSearchParams(out.slice(out.indexOf('?') + 1));
    const kept = params.getAll('command');
    expect(kept).toHaveLength(MAX_ARGS + 1);
    expect(kept[MAX_ARGS]).toBe(`…[+${cmds.length - MAX_ARGS} args]`);
    expect(kept.slice(0, 3)).toEqual(['kubectl', '--token', '[REDACTED]']);
    expect(params.get('container')).toBe('c');
  });

  it('a URI longer than its cap is cut, and a secret straddling the cut goes from its start', () => {
    const uri = `/api/v1/nodes/n/proxy/x?pad=${'y'.repeat(64 * 1024 - 40)}&u=https://admin:${SECRET}${'z'.repeat(5000)}@h/`;
    const out = redactRequestUri(uri);
    expect(out.length).toBeLessThan(64 * 1024 + 40);
    expect(out).toMatch(/…\[\+\d+ chars\]$/);
    expect(out).not.toContain(SECRET.slice(0, 4));
  });

  it('a request object far over the limit becomes a summary (no content, so no secret)', () => {
    const obj = { kind: 'Secret', apiVersion: 'v1', data: { k: SECRET }, stringData: { pad: 'x'.repeat(100_000) } };
    expect(redactRequestObject(obj)).toEqual({ truncated: true, kind: 'Secret', over_chars: 64 * 1024 });
    const small = { kind: 'Pod', spec: { containers: [{ name: 'c', args: ['--password', SECRET] }] } };
    expect(JSON.stringify(redactRequestObject(small))).not.toContain(SECRET);
  });

  it('a request object nested 100,000 deep (JSON.parse takes it, JSON.stringify overflows) is summarised, not a crash', () => {
    const deep = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000)) as unknown;
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    expect(redactRequestObject(deep)).toEqual({ truncated: true, kind: null, over_chars: 64 * 1024 });
    // Deep but small: walked to the redaction's depth bound, and its output is safe to stringify.
    const narrow = JSON.parse('{"a":'.repeat(5_000) + '"x"' + '}'.repeat(5_000)) as unknown;
    expect(JSON.stringify(redactRequestObject(narrow)).length).toBeLessThan(1_000);
  });

  it('counts JSON size exactly enough to bound it: small objects near their length, large ones stopped at the limit', () => {
    const pod = { kind: 'Pod', spec: { containers: [{ name: 'c', image: 'busybox', args: ['sleep', '1'] }] } };
    const n = jsonCharsUpTo(pod, 1 << 20);
    expect(n).toBeGreaterThanOrEqual(JSON.stringify(pod).length * 0.8);
    expect(n).toBeLessThanOrEqual(JSON.stringify(pod).length * 1.5);
    expect(jsonCharsUpTo({ pad: 'x'.repeat(1 << 20) }, 1000)).toBe(1001);
    expect(jsonCharsUpTo(Array.from({ length: 100_000 }, () => [1]), 1000)).toBe(1001);
  });

  it('the secret-list rule still fires on an event whose request object is nested 100,000 deep (was a thrown stack overflow: no finding)', () => {
    const line = JSON.stringify({
      kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'Request', auditID: 'deep-1', stage: 'ResponseComplete',
      requestURI: '/api/v1/secrets', verb: 'list', user: { username: 'mallory' }, objectRef: { resource: 'secrets' },
      responseStatus: { code: 200 }, requestObject: 0,
    }).replace('"requestObject":0', `"requestObject":${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    const parsed = parseKubeAuditLine(line);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const set = loadRunnableRuleSet([]);
    const kube = createKubeDetector({ host: 'h', rules: set.kube, sigma: set.sigma });
    const found = [...kube.onKubeEvent(parsed.event), ...kube.flush()];
    expect(found.map((f) => f.rule)).toContain('k8s-secret-list-wide');
  });
});
