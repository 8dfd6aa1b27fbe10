/**
 * What `credwatch collector` checks before it opens its database or a socket, shared with
 * `credwatch config check` so both say the same words: the TLS files are readable, the certificate
 * is a certificate, the key a private key that belongs to it, the client CA a certificate.
 * Throws CollectorPreflightError (exit 2).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { accessSync, constants, readFileSync } from 'node:fs';
import { assertCertificates, assertPrivateKey } from '../ship/tls';
import type { CollectorConfig } from './config';

/** A configuration problem found before start: exit 2 (src/cli/errors.ts exitCodeOf reads exitCode). */
export class CollectorPreflightError extends Error {
  readonly exitCode = 2;
}

function requireReadable(what: string, file: string): string {
  try {
    accessSync(file, constants.R_OK);
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CollectorPreflightError(`collector: cannot read TLS ${what} ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}); TLS is required, the collector does not serve plain HTTP`);
  }
}

function asUsage(f: () => void): void {
  try {
    f();
  } catch (err) {
    throw new CollectorPreflightError(`collector: ${(err as Error).message}`);
  }
}

export function preflightCollector(config: CollectorConfig): void {
  const { cert_file, key_file, client_ca_file } = config.tls;
  const cert = requireReadable('certificate', cert_file);
  const key = requireReadable('key', key_file);
  const ca = client_ca_file ? requireReadable('client CA', client_ca_file) : undefined;
  asUsage(() => assertCertificates('cert', cert_file, cert));
  asUsage(() => assertPrivateKey(key_file, key));
  if (ca !== undefined) asUsage(() => assertCertificates('client CA', client_ca_file!, ca));
  const leaf = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(cert)?.[0] ?? cert;
  if (!new X509Certificate(leaf).checkPrivateKey(createPrivateKey(key))) {
    throw new CollectorPreflightError(`collector: TLS key file ${key_file} does not belong to the certificate in ${cert_file}`);
  }
}
