import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadRuleSet } from '../../../src/detect/rule-set';
import { describe, expect, it } from 'vitest';
import { createKubeDetector, execCommand, isSystemPrincipal } from '../../../src/detect/kube';
import type { KubeAuditEvent } from '../../../src/kube/event';
import { requestCredential } from '../../../src/kube/credential';
import { kubeEvidenceText, redactText } from '../../../src/detect/redact/kube-event';

let seq = 0;
function ev(p: Omit<Partial<KubeAuditEvent>, 'objectRef'> & { objectRef?: Partial<NonNullable<KubeAuditEvent['objectRef']>> | null } = {}): KubeAuditEvent {
  seq++;
  const { objectRef, ...rest } = p;
  const base = {
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `aid-${seq}`,
    stage: 'ResponseComplete',
    verb: 'get',
    requestURI: '/api/v1/namespaces/app/secrets/db',
    objectRef:
      objectRef === null
        ? null
        : { resource: 'secrets', subresource: null, namespace: 'app', name: 'db', apiGroup: '', apiVersion: 'v1', ...objectRef },
    user: { username: 'alice', uid: null, groups: ['system:authenticated'], extra: {} },
    impersonatedUser: null,
    sourceIPs: ['10.0.0.9'],
    userAgent: 'kubectl/v1.30.2 (linux/amd64) kubernetes/3968350',
    responseCode: 200,
    annotations: { 'authorization.k8s.io/decision': 'allow' },
    requestObject: null,
    requestReceivedTimestamp: '2026-01-10T10:00:00Z',
    stageTimestamp: null,
    timeMs: Date.parse('2026-01-10T10:00:00Z'),
    ...rest,
  };
  return { ...base, credential: requestCredential(base) };
}
const user = (username: string, groups: string[] = ['system:authenticated']) => ({ username, uid: null, groups, extra: {} });

function detector(now = () => 0) {
  return createKubeDetector({ host: 'node-1', now, stageTimeoutMs: 1000 });
}
const rulesOf = (d: ReturnType<typeof detector>, e: KubeAuditEvent) => d.onKubeEvent(e).map((f) => f.rule);

describe('K1 reference rule and its exclusions', () => {
  it('fires on get/list/watch of secrets, serviceaccounts and configmaps by a user', () => {
    const d = detector();
    expect(rulesOf(d, ev())).toEqual(['k8s-secret-access']);
    expect(rulesOf(d, ev({ verb: 'watch', objectRef: { resource: 'configmaps', name: null } }))).toEqual(['k8s-secret-access']);
    expect(rulesOf(d, ev({ verb: 'list', objectRef: { resource: 'serviceaccounts', name: null } }))).toEqual(['k8s-secret-access']);
    expect(rulesOf(d, ev({ verb: 'delete' }))).toEqual([]);
    expect(rulesOf(d, ev({ objectRef: { resource: 'pods' } }))).toEqual([]);
  });

  it('fills the finding contract for a kube-audit finding', () => {
    const [f] = detector().onKubeEvent(ev({ auditID: 'fixed-id' }));
    expect(f).toMatchObject({
      rule: 'k8s-secret-access',
      severity: 'high',
      confidence: 'medium',
      covers: ['K1'],
      mitre: ['T1552.007'],
      source: 'kube-audit',
      host: 'node-1',
      time: '2026-01-10T10:00:00.000Z',
      process: null,
      container: null,
      kube: {
        user: 'alice',
        groups: ['system:authenticated'],
        impersonated_user: null,
        verb: 'get',
        resource: 'secrets',
        subresource: null,
        namespace: 'app',
        name: 'db',
        source_ips: ['10.0.0.9'],
        user_agent: 'kubectl/v1.30.2 (linux/amd64) kubernetes/3968350',
        response_code: 200,
        audit_id: 'fixed-id',
      },
    });
    expect(f!.evidence).toHaveLength(1);
    expect(f!.evidence[0]).toMatchObject({ event_id: 'fixed-id', records: [{ type: 'k8s' }] });
    expect(JSON.parse(f!.evidence[0]!.records[0]!.text)).toMatchObject({ kind: 'Event', auditID: 'fixed-id', verb: 'get' });
    expect(f!.id).toMatch(/^[0-9a-f]{64}$/);
    expect(detector().onKubeEvent(ev({ auditID: 'fixed-id' }))[0]!.id).toBe(f!.id);
  });

  it.each([
    ['a node', user('system:node:worker-1', ['system:nodes'])],
    ['a kube-system service account', user('system:serviceaccount:kube-system:replicaset-controller')],
    ['a kube-public service account', user('system:serviceaccount:kube-public:x')],
    ['the controller manager', user('system:kube-controller-manager')],
    ['an EKS principal', user('eks:addon-manager')],
    ['aksService', user('aksService')],
    ['a flux service account (group)', user('system:serviceaccount:flux-system:kustomize-controller', ['system:serviceaccounts:flux-system'])],
  ])('excludes %s', (_n, u) => {
    const d = detector();
    expect(rulesOf(d, ev({ user: u }))).toEqual([]);
    expect(Object.keys(d.stats.excluded).some((k) => k.startsWith('k8s-secret-access:'))).toBe(true);
  });

  it('does not excuse anonymous or an application service account', () => {
    expect(isSystemPrincipal('system:anonymous')).toBe(false);
    expect(rulesOf(detector(), ev({ user: user('system:serviceaccount:app:web') }))).toEqual(['k8s-secret-access']);
  });

  it('excludes in-tree clients without version info and loopback controllers, not loopback users', () => {
    expect(rulesOf(detector(), ev({ userAgent: 'my-operator/v0.0.0 (linux/amd64) kubernetes/$Format' }))).toEqual([]);
    expect(rulesOf(detector(), ev({ user: user('system:serviceaccount:app:ctrl'), sourceIPs: ['127.0.0.1'] }))).toEqual([]);
    expect(rulesOf(detector(), ev({ sourceIPs: ['::1'] }))).toEqual(['k8s-secret-access']);
  });

  it('is not bypassed by impersonating from an excluded identity', () => {
    const d = detector();
    const [f] = d.onKubeEvent(ev({ user: user('system:admin'), impersonatedUser: user('mallory') }));
    expect(f?.rule).toBe('k8s-secret-access');
    expect(f?.kube?.impersonated_user).toBe('mallory');
    expect(f?.indicators).toContain('impersonation');
    expect(rulesOf(d, ev({ user: user('system:admin'), impersonatedUser: user('system:node:n1') }))).toEqual([]);
  });

  it('raises confidence for scripting user agents', () => {
    for (const ua of ['curl/8.5.0', 'python-requests/2.31', 'Go-http-client/1.1', 'Wget/1.21']) {
      const [f] = detector().onKubeEvent(ev({ userAgent: ua }));
      expect(f?.confidence, ua).toBe('high');
      expect(f?.indicators).toContain('scripting_user_agent');
    }
  });

  it('reports failed requests as a separate, lower-severity finding', () => {
    const [denied] = detector().onKubeEvent(ev({ responseCode: 403 }));
    expect(denied).toMatchObject({ rule: 'k8s-secret-access-failed', severity: 'low' });
    const [notFound] = detector().onKubeEvent(ev({ responseCode: 404 }));
    expect(notFound).toMatchObject({ rule: 'k8s-secret-access-failed', severity: 'info' });
  });
});

describe('repeat suppression', () => {
  it('reports an identical request once per suppress_repeats_seconds window, counting the rest', () => {
    const d = detector();
    const t0 = Date.parse('2026-01-10T10:00:00Z');
    const poll = (dt: number, name = 'db') => rulesOf(d, ev({ objectRef: { name }, timeMs: t0 + dt * 1000 })).filter((r) => r === 'k8s-secret-access');
    expect(poll(0)).toEqual(['k8s-secret-access']);
    expect(poll(10)).toEqual([]);
    expect(poll(1799)).toEqual([]);
    expect(poll(20, 'other')).toEqual(['k8s-secret-access']);
    expect(poll(1800)).toEqual(['k8s-secret-access']);
    expect(d.stats.suppressedRepeats).toBe(2);
  });
});

describe('K1 burst', () => {
  it('fires once at the third distinct secret of one principal within the window, listing them all', () => {
    const d = detector();
    const t0 = Date.parse('2026-01-10T10:00:00Z');
    const get = (name: string, dt: number, ip = '10.0.0.9') =>
      d.onKubeEvent(ev({ objectRef: { name }, timeMs: t0 + dt * 1000, sourceIPs: [ip] })).filter((f) => f.rule === 'k8s-secret-burst');
    expect(get('a', 0)).toEqual([]);
    expect(get('a', 1)).toEqual([]); // same name again: not distinct
    expect(get('b', 2, '10.0.0.10')).toEqual([]); // other address: other principal key
    expect(get('b', 3)).toEqual([]);
    const [burst] = get('c', 4);
    expect(burst?.description).toContain('app/a, app/b, app/c');
    expect(burst?.evidence.map((e) => e.event_id)).toHaveLength(3);
    expect(get('d', 5)).toEqual([]); // same window: no second finding
    expect(get('e', 700)).toEqual([]); // window slid: only e is recent
  });

  it('does not count names spread beyond the window', () => {
    const d = detector();
    const t0 = 0;
    const bursts = ['a', 'b', 'c'].flatMap((name, i) =>
      d.onKubeEvent(ev({ objectRef: { name }, timeMs: t0 + i * 400_000 })).filter((f) => f.rule === 'k8s-secret-burst'),
    );
    expect(bursts).toEqual([]);
  });
});

describe('stages: one request, one finding', () => {
  it('holds RequestReceived and evaluates ResponseComplete once', () => {
    const d = detector();
    expect(d.onKubeEvent(ev({ auditID: 's1', stage: 'RequestReceived', responseCode: null }))).toEqual([]);
    expect(d.stats.pending).toBe(1);
    expect(rulesOf(d, ev({ auditID: 's1' }))).toEqual(['k8s-secret-access']);
    expect(rulesOf(d, ev({ auditID: 's1' }))).toEqual([]);
    expect(d.stats).toMatchObject({ pending: 0, evaluated: 1, duplicates: 1 });
  });

  it('evaluates a lone ResponseStarted after the timeout, on tick', () => {
    let clock = 0;
    const d = detector(() => clock);
    const exec = ev({ auditID: 'x1', stage: 'ResponseStarted', verb: 'create', responseCode: 101, requestURI: '/api/v1/namespaces/app/pods/p/exec?command=sh', objectRef: { resource: 'pods', subresource: 'exec', name: 'p' } });
    expect(d.onKubeEvent(exec)).toEqual([]);
    expect(d.tick(999)).toEqual([]);
    clock = 1000;
    expect(d.tick(1000).map((f) => f.rule)).toEqual(['k8s-pod-exec']);
    expect(d.stats.stageTimeouts).toBe(1);
  });

  it('bounds held stages, evaluating the oldest early', () => {
    const d = createKubeDetector({ host: 'h', now: () => 0, maxPending: 2 });
    for (let i = 0; i < 3; i++) d.onKubeEvent(ev({ auditID: `p${i}`, stage: 'RequestReceived', responseCode: null, objectRef: { name: `s${i}` } }));
    expect(d.stats).toMatchObject({ pending: 2, pendingOverflow: 1, evaluated: 1 });
    expect(d.flush().filter((f) => f.rule === 'k8s-secret-access')).toHaveLength(2);
  });
});

describe('K4 exec/attach', () => {
  const execEv = (verb: string, uri: string, requestObject: unknown = null) =>
    ev({ verb, responseCode: 101, requestURI: uri, requestObject, objectRef: { resource: 'pods', subresource: 'exec', name: 'p' } });

  it('decodes command= parameters and checks credential paths for create and get (WebSocket)', () => {
    for (const verb of ['create', 'get']) {
      for (const path of ['%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken', '%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken', '%2Fetc%2Fkubernetes%2Fadmin.conf', '%2Fproc%2F1%2Fenviron', '%2Fvar%2Frun%2Fsecrets%2Feks.amazonaws.com%2Fserviceaccount%2Ftoken']) {
        const [f] = detector().onKubeEvent(execEv(verb, `/api/v1/namespaces/app/pods/p/exec?command=cat&command=${path}&stdout=true`));
        expect(f?.severity, `${verb} ${path}`).toBe('critical');
        expect(f?.indicators).toContain('credential_path');
      }
    }
  });

  it('reads the command from requestObject when the URI has none', () => {
    const e = execEv('create', '/api/v1/namespaces/app/pods/p/exec', { kind: 'PodExecOptions', command: ['sh', '-c', 'cat /run/secrets/kubernetes.io/serviceaccount/token'] });
    expect(execCommand(e)).toEqual(['sh', '-c', 'cat /run/secrets/kubernetes.io/serviceaccount/token']);
    expect(detector().onKubeEvent(e)[0]?.severity).toBe('critical');
  });

  it('keeps an ordinary shell at medium and the ELA resolv.conf exclusion', () => {
    expect(detector().onKubeEvent(execEv('create', '/api/v1/namespaces/app/pods/p/exec?command=bash&tty=true'))[0]?.severity).toBe('medium');
    expect(detector().onKubeEvent(execEv('create', '/api/v1/namespaces/app/pods/p/exec?command=cat&command=%2Fetc%2Fresolv.conf'))).toEqual([]);
  });

  it('redacts a bearer token passed in the exec command', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4eHh4eHh4eHgifQ.c2lnbmF0dXJlc2ln';
    const [f] = detector().onKubeEvent(execEv('create', `/api/v1/namespaces/app/pods/p/exec?command=curl&command=-H&command=Authorization%3A+Bearer+${jwt}`));
    expect(JSON.stringify(f)).not.toContain(jwt);
  });
});

describe('K6 sensitive hostPath', () => {
  const pod = (paths: string[], image = 'alpine') =>
    ev({
      verb: 'create',
      responseCode: 201,
      objectRef: { resource: 'pods', name: null },
      requestObject: { kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [{ image }], volumes: paths.map((p, i) => ({ name: `v${i}`, hostPath: { path: p } })) } },
    });
  it.each([
    ['/var/run/docker.sock', 'critical'],
    ['/run/containerd/containerd.sock', 'critical'],
    ['/var/run', 'critical'],
    ['/', 'critical'],
    ['/var/lib/kubelet/pods', 'critical'],
    ['/etc/kubernetes/', 'critical'],
    ['/proc', 'high'],
    ['/home/u/.local/share/podman.sock', 'critical'],
  ])('flags %s as %s', (p, sev) => {
    const [f] = detector().onKubeEvent(pod([p]));
    expect(f?.rule).toBe('k8s-sensitive-hostpath');
    expect(f?.severity).toBe(sev);
  });
  it('ignores ordinary host paths and allowlisted agent images', () => {
    expect(detector().onKubeEvent(pod(['/data', '/var/log']))).toEqual([]);
    expect(detector().onKubeEvent(pod(['/proc'], 'quay.io/prometheus/node-exporter:v1.8'))).toEqual([]);
  });
  it('reads workload templates too', () => {
    const e = ev({
      verb: 'create',
      responseCode: 201,
      objectRef: { resource: 'daemonsets', apiGroup: 'apps', name: 'ds' },
      requestObject: { kind: 'DaemonSet', spec: { template: { spec: { containers: [{ image: 'x' }], volumes: [{ name: 's', hostPath: { path: '/var/run/docker.sock' } }] } } } },
    });
    expect(detector().onKubeEvent(e)[0]?.severity).toBe('critical');
  });
});

describe('K3, K5, K7, K8', () => {
  it('K3 TokenRequest by a user, not by the kubelet', () => {
    const tr = (u: string) => ev({ verb: 'create', responseCode: 201, user: user(u), objectRef: { resource: 'serviceaccounts', subresource: 'token', name: 'web' } });
    expect(rulesOf(detector(), tr('alice'))).toEqual(['k8s-sa-token-request']);
    expect(rulesOf(detector(), tr('system:node:worker-1'))).toEqual([]);
  });
  it('K5 node proxy, except metrics', () => {
    const np = (uri: string) => ev({ verb: 'get', requestURI: uri, objectRef: { resource: 'nodes', subresource: 'proxy', namespace: null, name: 'n1' } });
    expect(detector().onKubeEvent(np('/api/v1/nodes/n1/proxy/pods'))[0]?.severity).toBe('critical');
    expect(detector().onKubeEvent(np('/api/v1/nodes/n1/proxy/metrics/cadvisor'))).toEqual([]);
  });
  it('K7 webhook configuration change by a user, not by cert-manager', () => {
    const wh = (u: string) => ev({ verb: 'patch', user: user(u), objectRef: { resource: 'validatingwebhookconfigurations', namespace: null, name: 'w' } });
    expect(rulesOf(detector(), wh('alice'))).toEqual(['k8s-admission-webhook-change']);
    expect(rulesOf(detector(), wh('system:serviceaccount:cert-manager:cert-manager-cainjector'))).toEqual([]);
  });
  it('K8 anonymous allowed except health endpoints', () => {
    const anon = (uri: string, code = 200) => ev({ verb: 'get', requestURI: uri, responseCode: code, user: user('system:anonymous', ['system:unauthenticated']), objectRef: null });
    expect(rulesOf(detector(), anon('/api/v1/namespaces'))).toEqual(['k8s-anonymous-allowed']);
    for (const uri of ['/healthz', '/livez?verbose', '/readyz/etcd', '/version']) expect(rulesOf(detector(), anon(uri)), uri).toEqual([]);
    expect(rulesOf(detector(), { ...anon('/api'), annotations: { 'authorization.k8s.io/decision': 'forbid' }, responseCode: 403 })).toEqual([]);
  });
});

describe('redaction', () => {
  it('scrubs JWTs, bearer tokens and token/password flags but keeps ordinary words', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4eHh4eHh4eHgifQ.c2lnbmF0dXJlc2ln';
    expect(redactText(`Authorization: Bearer abcdefgh12345678 --token=${jwt} --password hunter2 token%3Dsecret`)).toBe(
      'Authorization: Bearer [REDACTED] --token=[REDACTED] --password [REDACTED] token%3D[REDACTED]',
    );
    expect(redactText('get secrets app/db-password from 10.0.0.1, a token for web')).toBe('get secrets app/db-password from 10.0.0.1, a token for web');
  });
  it('drops secret data and TokenRequest tokens from evidence, keeping key names', () => {
    const text = kubeEvidenceText(
      ev({
        verb: 'create',
        requestObject: { kind: 'Secret', data: { 'tls.key': 'LS0tLS1CRUdJTg==' }, stringData: { pw: 'hunter2' }, status: { token: 'opaque-token-value' } },
      }),
    );
    expect(text).toContain('"data":{"tls.key":"[REDACTED]"}');
    expect(text).not.toMatch(/LS0tLS1CRUdJTg|hunter2|opaque-token-value/);
  });
  it('caps a huge request object', () => {
    const text = kubeEvidenceText(ev({ requestObject: { kind: 'ConfigMap', spec: { blob: 'x'.repeat(100_000) } } }));
    expect(text.length).toBeLessThan(2000);
    expect(text).toContain('"truncated":true');
  });
});

describe('setRules (SIGHUP reload of the kube rules with rules_dir)', () => {
  it('a rule excluded by rules_dir stops firing after setRules, others still fire', () => {
    const d = detector();
    const alice = ev({ auditID: 'a1', user: user('alice') });
    expect(rulesOf(d, alice)).toEqual(['k8s-secret-access']);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-kube-set-'));
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(path.join(dir, 'x.yaml'), "kind: KubeRulePack\nversion: 1\nrules:\n  - id: k8s-secret-access\n    override: { exclude: append }\n    exclude: { users: [alice] }\n", { mode: 0o644 });
    d.setRules(loadRuleSet([dir]).kube);
    expect(rulesOf(d, ev({ auditID: 'a2', user: user('alice') }))).toEqual([]);
    expect(rulesOf(d, ev({ auditID: 'b1', user: user('bob') }))).toEqual(['k8s-secret-access']);
    expect(d.rules.find((r) => r.id === 'k8s-secret-access')?.exclude.users).toContain('alice');
    fs.rmSync(dir, { recursive: true });
  });
});
