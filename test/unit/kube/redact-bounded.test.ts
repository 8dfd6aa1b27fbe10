/**
 * Kubernetes evidence with bounded work (src/kube/redact.ts): an exec URI's commands are redacted and
 * bounded as a finding's argv (at most 256, then one `command=…[+N args]`), the rest of a long URI is
 * cut as cut text, and a request object far over the evidence limit is summarised without being walked.
 */
import { describe, expect, it } from 'vitest';
import { MAX_ARGS } from '../../../src/detect/bound';
import { redactRequestObject, redactRequestUri } from '../../../src/detect/redact/kube-event';

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
    expect(redactRequestObject(obj)).toEqual({ truncated: true, kind: 'Secret', chars: JSON.stringify(obj).length });
    const small = { kind: 'Pod', spec: { containers: [{ name: 'c', args: ['--password', SECRET] }] } };
    expect(JSON.stringify(redactRequestObject(small))).not.toContain(SECRET);
  });
});
