/**
 * When the Docker daemon the lab reuses does not listen on tcp://127.0.0.1:2375 (a distribution's
 * docker.service started by the package install, say), the lab exposes it there itself: a loopback
 * TCP listener piping each connection to /var/run/docker.sock — the way Docker APIs end up exposed
 * in the wild. The client side, which is what scenario 5 judges (curl's exec and its connect() to
 * 127.0.0.1:2375), is the same as against a dockerd listening on TCP itself.
 */
import * as net from 'node:net';

export interface DockerTcpProxy {
  port: number;
  close(): Promise<void>;
}

export function startDockerTcpProxy(port = 2375, socketPath = '/var/run/docker.sock'): Promise<DockerTcpProxy> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () =>
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      }),
    );
  });
}
