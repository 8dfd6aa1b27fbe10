/**
 * Recorded real behaviours (test/fixtures/behaviours, captured on the lab kernel with auditd by
 * record.sh) through the real log reader, reassembler and detector.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { hasRule, type Finding } from '../../../src/model/finding';
import { parseProcCgroup } from '../../../src/enrich/cgroup';
import { BEHAVIOURS, replay } from './replay';

interface PodInfo {
  containerId: string;
  podUid: string;
  cgroup: string;
}
const pod = JSON.parse(fs.readFileSync(path.join(BEHAVIOURS, 'pod.json'), 'utf8')) as PodInfo;
// Replay has no /proc: the container comes from runtime ancestry in the log, and its pod from the
// cgroup record.sh saved for it (what the live cgroup lookup returns).
const podUidOf = (cid: string): string | null => (cid === pod.containerId ? (parseProcCgroup(pod.cgroup)?.podUid ?? null) : null);

const all = new Map<string, Finding[]>();
const logs = fs.readdirSync(BEHAVIOURS).filter((n) => n.endsWith('.log'));

beforeAll(async () => {
  for (const f of logs) all.set(f, (await replay(f, { podUidOf })).findings);
});

// A rule's hit is part of the incident of its behaviour: the incident lists the rule in `rules`.
function findings(log: string, rule: string): Finding[] {
  const out = (all.get(log) ?? []).filter((f) => hasRule(f, rule));
  expect(out.length, `${log}: ${rule} in ${JSON.stringify((all.get(log) ?? []).map((f) => f.rule))}`).toBeGreaterThan(0);
  return out;
}

describe('recorded behaviours', () => {
  it('pod.json describes a container in a kubepods cgroup', () => {
    expect(pod.podUid).toMatch(/^[0-9a-f-]{36}$/);
    expect(parseProcCgroup(pod.cgroup)).toEqual({ containerId: pod.containerId, runtime: 'unknown', podUid: pod.podUid });
  });

  it.each([
    ['kubectl-get-secrets.log', 'h5-kubectl-secret-access', 'H5', /kubectl .*get secrets --all-namespaces/],
    ['kubectl-describe-secret.log', 'h5-kubectl-secret-access', 'H5', /kubectl .*describe secret db-password/],
    ['docker-ps-xargs-inspect.log', 'h8-runtime-cli-harvest', 'H8', /^docker inspect [0-9a-f]{12}/],
    ['node-harvest-tokens.log', 'h3-kubelet-pod-volume-harvest', 'H3', /^cat \/var\/lib\/kubelet\/pods\/[0-9a-f-]{36}\/volumes\/kubernetes\.io~projected\/kube-api-access-/],
    ['docker-sock-curl.log', 'h7-runtime-socket-connect', 'H7', /^curl .*--unix-socket \/var\/run\/docker\.sock/],
    ['docker-sock-curl.log', 'h7-runtime-socket-in-argv', 'H7', /^curl .*--unix-socket/],
    ['docker-sock-socat.log', 'h7-runtime-socket-connect', 'H7', /^socat .*UNIX-CONNECT:\/var\/run\/docker\.sock/],
    ['docker-tcp-curl.log', 'h9-docker-remote-api', 'H9', /^curl .*127\.0\.0\.1:2375\/containers\/json/],
    ['kubelet-curl.log', 'h10-kubelet-api-access', 'H10', /^curl .*127\.0\.0\.1:10250\/pods/],
    ['api-bearer-curl.log', 'h6-api-request-from-tool', 'H6', /^curl .*Authorization: Bearer \[REDACTED\] https:\/\/127\.0\.0\.1:6443\/api\/v1\/namespaces\/default\/secrets/],
    ['etcdctl-get-secrets.log', 'h11-etcd-direct-access', 'H11', /^etcdctl .*get \/registry\/secrets --prefix/],
  ])('%s -> %s', (log, rule, row, argv) => {
    const fs_ = findings(log, rule);
    const f = fs_.find((x) => argv.test((x.process?.argv ?? []).map((a, i) => (i === 0 ? path.basename(a) : a)).join(' ')));
    expect(f, JSON.stringify(fs_.map((x) => x.process?.argv))).toBeDefined();
    expect(f?.covers).toContain(row);
    expect(['high', 'critical', 'medium']).toContain(f?.severity);
    expect(f?.host).toBe('lab-node');
    expect(f?.evidence[0]?.records.length).toBeGreaterThan(0);
  });

  it.each([
    ['pod-cat-token.log', 'cat'],
    ['pod-head-token.log', 'head'],
    ['pod-base64-token.log', 'base64'],
    ['pod-python-token.log', 'python3'],
    ['pod-node-token.log', 'node'],
    ['pod-cd-cat-token.log', 'cat'],
    ['pod-read-redirect.log', 'sh'],
  ])('%s: token read inside the pod -> H1 with container id and pod uid (%s)', (log, prog) => {
    const f = findings(log, 'h1-sa-token-read').find((x) => path.basename(x.process?.argv?.[0] ?? '') === prog);
    expect(f).toBeDefined();
    expect(f?.severity).toBe('high');
    expect(f?.container).toEqual({ id: pod.containerId, runtime: 'docker', pod_uid: pod.podUid });
    expect(f?.process?.auid).toBeNull(); // exec'd by the runtime, like kubectl exec
    // The incident's evidence holds every event of the behaviour (the exec that named the path too): the open is one.
    const open = f?.evidence.flatMap((e) => e.records).find((r) => r.type === 'PATH' && r.text.includes('token'));
    expect(open?.text).toMatch(/name="(\/run\/secrets\/kubernetes\.io\/serviceaccount\/)?token"/);
  });

  it('cd into the token dir then cat token -> H2 by CWD', () => {
    const f = findings('pod-cd-cat-token.log', 'h2-sa-token-path-in-argv').find((x) => x.indicators.includes('token-arg-in-sa-cwd'));
    expect(f?.process?.argv).toEqual(['cat', 'token']);
    expect(f?.process?.cwd).toBe('/run/secrets/kubernetes.io/serviceaccount');
  });

  it('docker ps | xargs docker inspect keeps the chain bash -> xargs -> docker', () => {
    const f = findings('docker-ps-xargs-inspect.log', 'h8-runtime-cli-harvest')[0];
    expect(f?.process?.parents.slice(0, 2).map((p) => path.basename(p.exe ?? ''))).toEqual(['xargs', 'bash']);
  });

  it('token read then API call with the bearer token -> one critical sequence finding linking both', () => {
    const [seq, ...rest] = findings('api-bearer-curl.log', 'seq-credential-read-then-use');
    expect(rest).toHaveLength(0);
    expect(seq?.severity).toBe('critical');
    expect(seq?.evidence.length).toBeGreaterThanOrEqual(2);
    // Evidence roles are prefixed with the rule that kept them (several rules share one incident).
    expect(seq?.evidence.some((e) => e.role.split(';').includes('seq-credential-read-then-use:sequence:seq-credential-read-then-use:then'))).toBe(true);
    expect(seq?.evidence.some((e) => e.role.includes('kubelet-volume-open'))).toBe(true);
  });

  it('the benign workload (>= 10,000 events) gives zero findings', async () => {
    const { events, findings: fp } = await replay('benign.log.gz', { podUidOf });
    console.log(`benign workload: ${events.length} events, ${fp.length} findings`);
    expect(events.length).toBeGreaterThanOrEqual(10_000);
    expect(fp.map((f) => `${f.rule} ${f.process?.argv?.join(' ')}`)).toEqual([]);
  });

  it('no JWT or bearer token survives into any finding, in any encoding', () => {
    // The real token of the recording, from the curl argv (hex in the raw log).
    const raw = fs.readFileSync(path.join(BEHAVIOURS, 'api-bearer-curl.log'), 'utf8');
    const decoded = [...raw.matchAll(/=([0-9A-F]{40,})/g)].map((m) => Buffer.from(m[1] as string, 'hex').toString('latin1')).join('\n');
    const jwt = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/.exec(decoded)?.[0];
    expect(jwt).toBeDefined();
    const pieces = [jwt as string];
    for (let i = 0; i + 16 <= (jwt as string).length; i += 8) pieces.push((jwt as string).slice(i, i + 16));
    let n = 0;
    for (const list of all.values()) {
      for (const f of list) {
        n++;
        const text = JSON.stringify(f);
        const upper = text.toUpperCase();
        for (const p of pieces) {
          expect(text.includes(p), `${f.rule} leaks ${p}`).toBe(false);
          expect(upper.includes(Buffer.from(p).toString('hex').toUpperCase()), `${f.rule} leaks hex of ${p}`).toBe(false);
        }
        expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{8,}/);
        expect(text).not.toMatch(/Bearer\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}/i);
      }
    }
    expect(n).toBeGreaterThan(20);
  });
});
