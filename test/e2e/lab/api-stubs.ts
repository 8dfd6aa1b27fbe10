/**
 * Loopback HTTPS stubs that answer like a Kubernetes API server (127.0.0.1:6443) and a kubelet
 * (127.0.0.1:10250), just enough for real kubectl and curl to complete their requests: the point of
 * the lab is the telemetry those tools produce on the node (exec, connect, token reads), not the
 * Kubernetes semantics.
 */
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface StubServer {
  port: number;
  requests: { method: string; url: string; authorization: string | null }[];
  close(): Promise<void>;
}

const SECRET_ITEMS = [
  { name: 'db-password', namespace: 'default' },
  { name: 'api-key', namespace: 'default' },
  { name: 'bootstrap-token-abcdef', namespace: 'kube-system' },
];

function secretList(namespace: string | null): unknown {
  return {
    kind: 'SecretList',
    apiVersion: 'v1',
    metadata: { resourceVersion: '1' },
    items: SECRET_ITEMS.filter((s) => namespace === null || s.namespace === namespace).map((s) => ({
      metadata: { name: s.name, namespace: s.namespace, uid: `uid-${s.name}`, creationTimestamp: '2026-11-01T00:00:00Z' },
      type: 'Opaque',
      data: { value: Buffer.from('not-a-real-secret').toString('base64') },
    })),
  };
}

const API_RESOURCES = {
  kind: 'APIResourceList',
  groupVersion: 'v1',
  resources: [
    { name: 'secrets', singularName: 'secret', namespaced: true, kind: 'Secret', verbs: ['get', 'list', 'watch'] },
    { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list', 'watch'], shortNames: ['po'] },
    { name: 'configmaps', singularName: 'configmap', namespaced: true, kind: 'ConfigMap', verbs: ['get', 'list'], shortNames: ['cm'] },
    { name: 'serviceaccounts', singularName: 'serviceaccount', namespaced: true, kind: 'ServiceAccount', verbs: ['get', 'list'], shortNames: ['sa'] },
    { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['get', 'list'], shortNames: ['ns'] },
  ],
};

function apiServerAnswer(url: URL): unknown {
  const p = url.pathname;
  if (p === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1:6443' }] };
  if (p === '/apis') return { kind: 'APIGroupList', apiVersion: 'v1', groups: [] };
  if (p === '/api/v1') return API_RESOURCES;
  if (p === '/version') return { major: '1', minor: '32', gitVersion: 'v1.32.0-credwatch-stub' };
  if (p === '/api/v1/secrets') return secretList(null);
  const ns = /^\/api\/v1\/namespaces\/([^/]+)\/secrets$/.exec(p);
  if (ns) return secretList(ns[1] ?? null);
  const pods = /^\/api\/v1\/(namespaces\/[^/]+\/)?pods$/.exec(p);
  if (pods) return { kind: 'PodList', apiVersion: 'v1', metadata: {}, items: [] };
  return null;
}

function kubeletAnswer(url: URL): unknown {
  if (url.pathname === '/pods' || url.pathname === '/runningpods/') return { kind: 'PodList', apiVersion: 'v1', metadata: {}, items: [] };
  if (url.pathname === '/healthz') return 'ok';
  return null;
}

async function serve(port: number, cert: { key: string; cert: string }, answer: (u: URL) => unknown): Promise<StubServer> {
  const requests: StubServer['requests'] = [];
  const server = https.createServer({ key: cert.key, cert: cert.cert }, (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', authorization: req.headers.authorization ?? null });
    req.resume();
    const body = answer(url);
    if (body === null) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function startApiServerStub(cert: { key: string; cert: string }, port = 6443): Promise<StubServer> {
  return serve(port, cert, apiServerAnswer);
}

export function startKubeletStub(cert: { key: string; cert: string }, port = 10250): Promise<StubServer> {
  return serve(port, cert, kubeletAnswer);
}
