/**
 * Property test over the issue-15 forms: fast-check generates secrets; each form is rendered in every
 * way the attacker can pick — plain, hex-encoded by the kernel (an argument with a space), split
 * across EXECVE records (an argument over 7,500 bytes), URL-encoded inside a URL, inside a JSON
 * argument, and as Kubernetes exec `command=` parameters, container args and inside
 * last-applied-configuration — and the whole lot goes through the real pipeline once (replay → store
 * → CLI → ship formats → log). No generated secret may appear in any sink.
 */
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtCli, collectSinks, leakedIn, type Sinks } from '../../helpers/leak-sinks';
import { hostCaseLines, hostCases, type HostCase } from '../../helpers/secret-forms';

const SAMPLES_PER_FORM = 1;
const SEED = 15_002;

type HostVariant = 'plain' | 'hex' | 'split' | 'url' | 'json';
type KubeVariant = 'kube-exec' | 'kube-args' | 'kube-last-applied';
const HOST_VARIANTS: HostVariant[] = ['plain', 'hex', 'split', 'url', 'json'];
const KUBE_VARIANTS: KubeVariant[] = ['kube-exec', 'kube-args', 'kube-last-applied'];

interface Generated {
  form: string;
  variant: HostVariant | KubeVariant;
  secret: string;
  argv: string[];
}

// Secrets: letters, digits and the URL-safe punctuation a token or password can hold; a fixed tail
// keeps them long enough to be unambiguous in the haystack.
const secretArb = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~'), minLength: 6, maxLength: 30 }).map((s) => `P${s}q9Zt`);

function hostVariant(c: HostCase, v: HostVariant): { argv: string[]; secret: string } {
  const holds = (a: string): boolean => a.includes(c.secret);
  switch (v) {
    case 'plain':
      return { argv: c.argv, secret: c.secret };
    case 'hex':
      // A trailing " #" makes the kernel hex-encode the argument (EXECVE and PROCTITLE).
      return { argv: c.argv.map((a) => (holds(a) ? `${a} #` : a)), secret: c.secret };
    case 'split':
      // Over 7,500 bytes the kernel splits the argument into aN[k]= chunks across EXECVE records.
      return { argv: c.argv.map((a) => (holds(a) ? a.split(c.secret).join(c.secret + 'x'.repeat(7600)) : a)), secret: c.secret };
    case 'url':
      return { argv: ['curl', `https://h.example/run?q=${encodeURIComponent(c.argv.join(' '))}`], secret: c.secret };
    case 'json':
      return { argv: ['curl', '-d', JSON.stringify({ args: c.argv }), 'https://h.example/jobs'], secret: c.secret };
  }
}

function kubeEvent(i: number, argv: string[], v: KubeVariant): Record<string, unknown> {
  const ts = `2026-01-10T11:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.000000Z`;
  const base = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    auditID: `c1000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    user: { username: 'dev-alice', groups: ['system:authenticated'] },
    sourceIPs: ['10.0.0.5'],
    userAgent: 'kubectl/v1.30.2 (linux/amd64) kubernetes/3968350',
    requestReceivedTimestamp: ts,
    stageTimestamp: ts,
    annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': '' },
  };
  if (v === 'kube-exec') {
    return {
      ...base,
      level: 'Metadata',
      stage: 'ResponseStarted',
      verb: 'get',
      requestURI: `/api/v1/namespaces/default/pods/web-${i}/exec?${argv.map((a) => `command=${encodeURIComponent(a)}`).join('&')}&container=web&stdout=true`,
      objectRef: { resource: 'pods', apiVersion: 'v1', namespace: 'default', name: `web-${i}`, subresource: 'exec' },
      responseStatus: { metadata: {}, code: 101 },
    };
  }
  const container = { name: 'c', image: 'alpine:3.19', args: argv, volumeMounts: [{ name: 'sock', mountPath: '/var/run/docker.sock' }] };
  const spec = { containers: [container], volumes: [{ name: 'sock', hostPath: { path: '/var/run/docker.sock', type: 'Socket' } }] };
  return {
    ...base,
    level: 'Request',
    stage: 'ResponseComplete',
    verb: 'create',
    requestURI: '/api/v1/namespaces/app/pods',
    objectRef: { resource: 'pods', apiVersion: 'v1', namespace: 'app' },
    responseStatus: { metadata: {}, code: 201 },
    requestObject:
      v === 'kube-args'
        ? { kind: 'Pod', apiVersion: 'v1', metadata: { name: `p-${i}` }, spec }
        : {
            kind: 'Pod',
            apiVersion: 'v1',
            metadata: { name: `p-${i}`, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ kind: 'Pod', spec }) } },
            spec: { ...spec, containers: [{ ...container, args: ['sleep', 'infinity'] }] },
          },
  };
}

const samples = fc.sample(fc.array(secretArb, { minLength: 43, maxLength: 43 }), { numRuns: SAMPLES_PER_FORM, seed: SEED });
const host: Generated[] = [];
const kube: Generated[] = [];
// Each variant gets its own secret (a variant tag appended), so a leak is charged to its variant only.
for (const secrets of samples) {
  HOST_VARIANTS.forEach((v, k) => {
    for (const c of hostCases((i) => `${secrets[i] as string}H${k}`)) host.push({ form: c.name, variant: v, ...hostVariant(c, v) });
  });
  KUBE_VARIANTS.forEach((v, k) => {
    for (const c of hostCases((i) => `${secrets[i] as string}K${k}`)) kube.push({ form: c.name, variant: v, argv: c.argv, secret: c.secret });
  });
}

/**
 * Combinations still leaking. Empty since the bounded-findings work (issue 15): a ratchet, not an
 * allowance: any leak outside this list fails, and so does an entry that stops leaking.
 */
const KNOWN_OPEN = new Set<string>([]);

let dir = '';
let hostSinks: Sinks;
let kubeSinks: Sinks;

describe.skipIf(!builtCli())('property: no generated secret of any form reaches a sink', () => {
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-prop-'));
    const auditLog = path.join(dir, 'audit.log');
    fs.writeFileSync(auditLog, host.flatMap((g, i) => hostCaseLines(i, g.argv)).join('\n') + '\n');
    hostSinks = collectSinks(auditLog, { auditText: true });
    const kubeLog = path.join(dir, 'kube.log');
    fs.writeFileSync(kubeLog, kube.map((g, i) => JSON.stringify(kubeEvent(i, g.argv, g.variant as KubeVariant))).join('\n') + '\n');
    kubeSinks = collectSinks(kubeLog, { auditText: false });
  }, 240_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('generated every form in every variant, and each raised a finding', () => {
    expect(host).toHaveLength(43 * SAMPLES_PER_FORM * HOST_VARIANTS.length);
    expect(kube).toHaveLength(43 * SAMPLES_PER_FORM * KUBE_VARIANTS.length);
    expect(hostSinks.findings.filter((f) => f.rule === 'h7-runtime-socket-in-argv').length).toBeGreaterThanOrEqual(host.length);
    expect(new Set(kubeSinks.findings.flatMap((f) => f.evidence.map((e) => e.event_id))).size).toBe(kube.length);
  });

  it('leaks nothing: db bytes, log, stdout, every ship format', () => {
    const leaks = [...host.map((g) => ({ g, where: leakedIn(hostSinks, g.secret) })), ...kube.map((g) => ({ g, where: leakedIn(kubeSinks, g.secret) }))].filter(
      (x) => x.where.length > 0,
    );
    const byVariant = new Map<string, number>();
    for (const x of leaks) byVariant.set(x.g.variant, (byVariant.get(x.g.variant) ?? 0) + 1);
    console.log(
      `[redaction property] ${host.length + kube.length} cases (${SAMPLES_PER_FORM} secrets x 43 forms x ${HOST_VARIANTS.length + KUBE_VARIANTS.length} variants), ` +
        `${leaks.length} leaking ${JSON.stringify(Object.fromEntries(byVariant))}`,
    );
    const named = leaks.map((x) => `${x.g.variant} / ${x.g.form}`);
    expect(leaks.filter((x) => !KNOWN_OPEN.has(`${x.g.variant} / ${x.g.form}`)).map((x) => `${x.g.variant} / ${x.g.form}: ${x.where.join(', ')}`)).toEqual([]);
    expect([...KNOWN_OPEN].filter((k) => !named.includes(k))).toEqual([]);
  });
});
