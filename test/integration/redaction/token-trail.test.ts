/**
 * Issue 18: the token trail handles the token itself (the agent reads the file) and API requests that
 * may carry it (a token in a query string, a user agent, a TokenRequest's status). The raw JWT, its
 * signature and its header.payload part must reach none of the sinks: replay stdout, the SQLite file,
 * `findings`/`show`, every ship format, the agent's log line. The claims (jti...) must, or the test
 * would pass on findings that carry nothing.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenClaimsReader } from '../../../src/enrich/token-claims';
import { WatchedObjects, kernelDevString } from '../../../src/enrich/watched-objects';
import { TokenTrail } from '../../../src/detect/token-trail';
import { TokenHome } from '../../../src/detect/kube/token-home';
import { createKubeDetector } from '../../../src/detect/kube';
import type { Finding } from '../../../src/model/finding';
import { parseKubeAuditLine } from '../../../src/kube/event';
import { builtCli, collectSinks, findingSinks, leakedIn, type Sinks } from '../../helpers/leak-sinks';
import { boundClaims, signJwt } from '../../helpers/jwt';
import { requestLine } from '../../helpers/kube-requests';
import { BEHAVIOURS, replay } from '../detect/replay';

const pod = JSON.parse(fs.readFileSync(path.join(BEHAVIOURS, 'pod.json'), 'utf8')) as { containerId: string; podUid: string };
const JTI = '4c3b2a19-0807-4f6e-9d5c-4b3a29180706';
const TOKEN = signJwt(boundClaims({ jti: JTI, podUid: pod.podUid, node: 'worker-1' }));
const parts = (t: string): string[] => [t, t.split('.').slice(0, 2).join('.'), t.split('.')[2]!, t.split('.')[1]!];

let dir = '';
let agent: Sinks;
let replayed: Sinks;

/** The API requests: the stolen token used from afar, with the token itself in the places a client puts it. */
function requestLines(readMs: number): string[] {
  const base = { jti: JTI, podUid: pod.podUid, node: 'worker-1', sourceIPs: ['203.0.113.50'] };
  return [
    requestLine({ auditID: 'kubelet-1', atMs: readMs, username: 'system:node:worker-1', sourceIPs: ['192.0.2.11'], verb: 'get', resource: 'pods' }),
    requestLine({ ...base, auditID: 'q-token', atMs: readMs + 1000, verb: 'list', resource: 'secrets', namespace: 'kube-system', name: `x?access_token=${TOKEN}` }),
    requestLine({ ...base, auditID: 'ua-token', atMs: readMs + 2000, userAgent: `curl/8.5 Authorization: Bearer ${TOKEN}` }),
    requestLine({
      ...base,
      auditID: 'tokenrequest',
      atMs: readMs + 3000,
      verb: 'create',
      resource: 'serviceaccounts',
      name: 'default',
      subresource: 'token',
      requestObject: { kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1', status: { token: TOKEN }, spec: { audiences: [TOKEN] } },
    }),
  ];
}

describe.skipIf(!builtCli())('the raw token never reaches a sink on the token trail', () => {
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-trail-leak-'));
    // The agent's read of the token file (kubelet layout), as in the daemon.
    const vol = path.join(dir, 'pods', pod.podUid, 'volumes', 'kubernetes.io~projected', 'kube-api-access-abcde');
    const gen = path.join(vol, '..2026_12_02_10_00_00.1');
    fs.mkdirSync(gen, { recursive: true });
    fs.writeFileSync(path.join(gen, 'token'), TOKEN);
    fs.symlinkSync('..2026_12_02_10_00_00.1', path.join(vol, '..data'));
    fs.symlinkSync('..data/token', path.join(vol, 'token'));
    const reader = new TokenClaimsReader();
    const objects = new WatchedObjects({ onIndexFile: (i, f, o) => reader.noteFile(i, f, o) });
    objects.add(vol, 'pod-token');
    const st = fs.statSync(path.join(gen, 'token'), { bigint: true });
    const token = reader.claimsFor({ class: 'pod-token', podUid: pod.podUid, containerId: null, watch: vol, via: 'inode', inode: `${kernelDevString(st.dev)}/${st.ino}`, file: path.join(gen, 'token') });
    expect(token?.jti).toBe(JTI);

    const { findings: host } = await replay('pod-cat-token.log', { podUidOf: (id) => (id === pod.containerId ? pod.podUid : null) });
    const reads = host.map((f) => (f.container?.pod_uid === pod.podUid && f.covers.includes('H1') ? { ...f, token: token! } : f));
    const readMs = Date.parse(reads.find((f) => f.token)!.time);
    const lines = requestLines(readMs);
    const trail = new TokenTrail({ host: 'cp' });
    const home = new TokenHome({ host: 'cp' });
    const kube = createKubeDetector({ host: 'cp' });
    trail.noteHostFindings(reads);
    const out: Finding[] = [...reads];
    for (const l of lines) {
      const r = parseKubeAuditLine(l);
      if (!r.ok) throw new Error(r.error);
      trail.onKubeEvent(r.event);
      out.push(...kube.onKubeEvent(r.event), ...home.onKubeEvent(r.event));
    }
    out.push(...kube.flush(), ...trail.flush());
    agent = { findings: out, texts: findingSinks(out) };

    const kubeLog = path.join(dir, 'kube-audit.log');
    fs.writeFileSync(kubeLog, lines.join('\n') + '\n');
    replayed = collectSinks(kubeLog, { auditText: false });
  }, 120_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the findings carry the claims: one stolen-token finding with the jti, away-from-node findings', () => {
    const trailFindings = agent.findings.filter((f) => f.rule === 'seq-stolen-token-used');
    expect(trailFindings).toHaveLength(1);
    expect(trailFindings[0]!.token?.jti).toBe(JTI);
    expect(trailFindings[0]!.evidence.filter((e) => e.role.startsWith('sequence:api-request')).map((e) => e.event_id)).toEqual(['q-token', 'ua-token', 'tokenrequest']);
    expect(agent.findings.filter((f) => f.rule === 'kube-token-used-away-from-node').length).toBeGreaterThanOrEqual(1);
    expect(replayed.findings.filter((f) => f.rule === 'kube-token-used-away-from-node' && f.token?.jti === JTI).length).toBeGreaterThanOrEqual(1);
    expect(agent.texts.get('db file')).toContain(JTI);
  });

  it.each(parts(TOKEN).map((p, i) => [['token', 'header.payload', 'signature', 'payload'][i]!, p] as const))('no sink holds the %s', (_what, secret) => {
    expect(leakedIn(agent, secret)).toEqual([]);
    expect(leakedIn(replayed, secret)).toEqual([]);
  });
});
