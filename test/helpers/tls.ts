/**
 * Throwaway PKI for TLS tests, made with the openssl CLI in a temp dir: a CA, a server certificate for
 * localhost/127.0.0.1, client certificates (CN = agent id) for mTLS, a server certificate for another
 * name (host-name mismatch) and a second, untrusted CA with its own server certificate (unknown CA).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertPair {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

export interface TestPki {
  dir: string;
  caFile: string;
  ca: string;
  /** Valid for DNS:localhost and IP:127.0.0.1, signed by the CA. */
  server: CertPair;
  /** Signed by the CA but for DNS:wrong.example only. */
  wrongName: CertPair;
  /** For localhost, signed by a CA nobody trusts. */
  untrusted: CertPair;
  untrustedCaFile: string;
  /** Client certificate for an agent (CN = agentId), signed by the CA. */
  client(agentId: string): CertPair;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function pair(dir: string, name: string): CertPair {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

function makeCa(dir: string, name: string): void {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

function makeLeaf(dir: string, ca: string, name: string, cn: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'credwatch-pki-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  const serverExt = 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n';
  makeLeaf(dir, 'ca', 'server', 'localhost', serverExt);
  makeLeaf(dir, 'ca', 'wrong-name', 'wrong.example', 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:wrong.example\n');
  makeLeaf(dir, 'other-ca', 'untrusted', 'localhost', serverExt);
  const clients = new Map<string, CertPair>();
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    server: pair(dir, 'server'),
    wrongName: pair(dir, 'wrong-name'),
    untrusted: pair(dir, 'untrusted'),
    untrustedCaFile: join(dir, 'other-ca.crt'),
    client(agentId: string): CertPair {
      let c = clients.get(agentId);
      if (!c) {
        const name = `client-${agentId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
        makeLeaf(dir, 'ca', name, agentId, 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
        c = pair(dir, name);
        clients.set(agentId, c);
      }
      return c;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
