#!/usr/bin/env node
/*
 * The token trail's cost per API-server audit event, against parsing the same event (same run, same
 * machine: a ratio holds on a loaded machine where absolute times do not), for honest and hostile
 * input; and the claims decoder on an honest token vs a 1 MB payload.
 *
 *   node bench/token-trail.js [--json] [--events N]
 *
 * Needs the build (npx tsc -p tsconfig.build.json && node scripts/copy-assets.js). No root.
 */
'use strict';
const { randomUUID } = require('node:crypto');
const D = (m) => require(`../dist/src/${m}`);
const { parseKubeAuditLine } = D('kube/event');
const { TokenTrail } = D('detect/token-trail');
const { TokenHome } = D('detect/kube/token-home');
const { decodeTokenClaims } = D('kube/token-claims');

const args = process.argv.slice(2);
const JSON_OUT = args.includes('--json');
const N = Number(args[args.indexOf('--events') + 1]) || 20_000;
const POD = '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d';

function line(i, credentialId, ip) {
  return JSON.stringify({
    kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'Metadata', auditID: `a-${i}`, stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/default/secrets', verb: 'list',
    user: { username: 'system:serviceaccount:default:app', groups: ['system:authenticated'], extra: {
      'authentication.kubernetes.io/credential-id': [credentialId],
      'authentication.kubernetes.io/pod-name': ['app-0'], 'authentication.kubernetes.io/pod-uid': [POD], 'authentication.kubernetes.io/node-name': ['worker-1'] } },
    sourceIPs: [ip], userAgent: 'curl/8.5', objectRef: { resource: 'secrets', namespace: 'default' }, responseStatus: { code: 200 },
    requestReceivedTimestamp: new Date(1_795_000_000_000 + i).toISOString(),
  });
}

const MIXES = {
  // every request with the stolen jti, from a foreign address: joins and away checks on each
  'stolen jti': (i) => line(i, 'JTI=11111111-2222-4333-8444-555555555555', '203.0.113.9'),
  // a new jti and address per request: the maps fill and evict
  'distinct jtis': (i) => line(i, `JTI=${randomUUID()}`, `198.51.${(i >> 8) & 255}.${i & 255}`),
  // a 64 KiB credential-id of a wrong shape on every request
  'hostile credential-id': (i) => line(i, 'JTI=' + '%'.repeat(65_536), '203.0.113.9'),
};

function timeIt(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const read = {
  id: 'read-1', rule: 'h1-sa-token-read', title: '', description: '', severity: 'high', score: 3, confidence: 'medium', covers: ['H1'], mitre: ['T1552.007'],
  time: new Date(1_795_000_000_000 - 1000).toISOString(), host: 'worker-1', source: 'audit', indicators: [], process: null, container: null, kube: null,
  token: { jti: '11111111-2222-4333-8444-555555555555', service_account: 'app', namespace: 'default', pod: 'app-0', pod_uid: POD, node: 'worker-1', issued: null, expires: null, kind: 'bound', from: 'file',
    // The read's home (as the reading agent saw it): every joined request is checked against it.
    home: { node: ['192.0.2.11'], pod: ['10.244.1.7'], cut: 0 } },
  evidence: [{ event_id: '1.1:1', time: '', role: '', records: [] }],
};

const results = [];
for (const [name, make] of Object.entries(MIXES)) {
  const lines = Array.from({ length: N }, (_, i) => make(i));
  const parseMs = timeIt(() => { for (const l of lines) parseKubeAuditLine(l); });
  const events = lines.map((l) => parseKubeAuditLine(l).event);
  // One trail for the whole run: its finding is sent at the first request and revised (throttled) after.
  const trail = new TokenTrail({ host: 'cp', windowMs: Infinity });
  const home = new TokenHome({ host: 'cp' });
  trail.noteHostFindings([read]);
  home.onKubeEvent(parseKubeAuditLine(JSON.stringify({ kind: 'Event', auditID: 'k', stage: 'ResponseComplete', verb: 'get', requestURI: '/api/v1/pods', user: { username: 'system:node:worker-1' }, sourceIPs: ['192.0.2.11'] })).event);
  let sent = 0;
  const joinMs = timeIt(() => { for (const ev of events) { sent += trail.onKubeEvent(ev).length; home.onKubeEvent(ev); } });
  const flushMs = timeIt(() => trail.flush());
  results.push({ mix: name, events: N, parse_us: (parseMs * 1000) / N, trail_us: (joinMs * 1000) / N, flush_ms: flushMs, trail_over_parse: joinMs / parseMs, revisions_sent: sent });
}

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const token = `${b64({ alg: 'RS256' })}.${b64({ jti: randomUUID(), 'kubernetes.io': { namespace: 'a', pod: { name: 'p', uid: POD } } })}.${'s'.repeat(342)}`;
const huge = `${b64({ alg: 'RS256' })}.${b64({ pad: 'x'.repeat(1 << 20) })}.sig`;
const R = 2000;
const honestMs = timeIt(() => { for (let i = 0; i < R; i++) decodeTokenClaims(token); });
const hugeMs = timeIt(() => { for (let i = 0; i < R; i++) decodeTokenClaims(huge); });
results.push({ mix: 'decode honest token', events: R, parse_us: null, trail_us: (honestMs * 1000) / R, flush_ms: null, trail_over_parse: null });
results.push({ mix: 'decode 1 MB payload (refused)', events: R, parse_us: null, trail_us: (hugeMs * 1000) / R, flush_ms: null, trail_over_parse: hugeMs / honestMs });

if (JSON_OUT) process.stdout.write(JSON.stringify({ scenario: 'token-trail', results }) + '\n');
else {
  console.log('mix                            events  parse µs/ev  trail+home µs/ev  ratio');
  for (const r of results) {
    console.log(`${r.mix.padEnd(30)} ${String(r.events).padStart(6)}  ${r.parse_us === null ? '          -' : r.parse_us.toFixed(2).padStart(11)}  ${r.trail_us.toFixed(3).padStart(16)}  ${r.trail_over_parse === null ? '-' : r.trail_over_parse.toFixed(3)}`);
  }
}
