/**
 * TLS material for outbound HTTPS (shipper outputs and the collector query client), and a plain-words
 * classification of TLS failures so an operator reads "unknown CA" instead of an OpenSSL code.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** The `tls:` block of a ship output (snake_case: it comes straight from the YAML config). */
export interface TlsConfig {
  ca_file?: string | undefined;
  cert_file?: string | undefined;
  key_file?: string | undefined;
  insecure_skip_verify?: boolean | undefined;
  server_name?: string | undefined;
}

/** What node:tls / undici's connector take. Verification is on unless explicitly skipped. */
export interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  servername?: string;
}

/** A PEM given inline is used as is; anything else is a path to read. */
export function pemOrFile(value: string): string {
  return value.trimStart().startsWith('-----BEGIN') ? value : readFileSync(value, 'utf8');
}

/**
 * Reads the files named in the config. Throws with the file named when one is unreadable: a missing CA
 * file must stop the output from starting rather than silently fall back to the system roots.
 */
export function loadTlsMaterial(cfg: TlsConfig | undefined): TlsMaterial {
  const out: TlsMaterial = { rejectUnauthorized: cfg?.insecure_skip_verify !== true };
  if (!cfg) return out;
  const read = (what: string, path: string | undefined): string | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read TLS ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  const ca = read('ca', cfg.ca_file);
  const cert = read('cert', cfg.cert_file);
  const key = read('key', cfg.key_file);
  if ((cert === undefined) !== (key === undefined)) throw new Error('TLS cert_file and key_file must be given together');
  if (ca !== undefined) assertCertificates('ca', cfg.ca_file!, ca);
  if (cert !== undefined) assertCertificates('cert', cfg.cert_file!, cert);
  if (key !== undefined) assertPrivateKey(cfg.key_file!, key);
  if (ca !== undefined) out.ca = ca;
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) out.key = key;
  if (cfg.server_name !== undefined) out.servername = cfg.server_name;
  return out;
}

/**
 * A key file must hold a private key. OpenSSL's own words for a certificate given as a key are
 * "error:1E08010C:DECODER routines::unsupported"; an operator needs to read which file and why.
 */
export function assertPrivateKey(file: string, pem: string): void {
  try {
    createPrivateKey(pem);
  } catch {
    const what = /-----BEGIN CERTIFICATE-----/.test(pem) ? 'holds a certificate, not a private key (key_file and cert_file swapped?)' : /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem) ? 'holds a private key that cannot be read (encrypted, or damaged)' : 'is not a PEM private key';
    throw new Error(`TLS key file ${file} ${what}`);
  }
}

/** A certificate or CA file must hold at least one PEM certificate that parses, and no private key. */
export function assertCertificates(what: string, file: string, pem: string): void {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw new Error(`TLS ${what} file ${file} holds a private key, not a certificate${what === 'cert' ? ' (key_file and cert_file swapped?)' : ''}`);
  const first = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(pem);
  try {
    if (!first) throw new Error('no certificate');
    new X509Certificate(first[0]);
  } catch {
    throw new Error(`TLS ${what} file ${file} is not a PEM certificate`);
  }
}

const UNKNOWN_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * Names the cause of a TLS failure, or returns null when the error is not a TLS one. Looks through
 * `cause` chains because undici wraps socket errors.
 */
export function describeTlsError(err: unknown): string | null {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (UNKNOWN_CA.has(code)) return `server certificate not trusted (unknown CA: ${code})`;
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      const reason = (e as { reason?: unknown }).reason;
      return `server certificate does not match the host name (${typeof reason === 'string' ? reason : code})`;
    }
    if (code === 'CERT_HAS_EXPIRED') return 'server certificate has expired';
    if (code === 'CERT_NOT_YET_VALID') return 'server certificate is not yet valid';
    if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') return 'receiver does not speak TLS (plain HTTP on an https:// URL?)';
    if (/^ERR_SSL_.*ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|HANDSHAKE_FAILURE|ACCESS_DENIED)$/.test(code)) {
      return `receiver rejected the TLS handshake, probably our client certificate (${code})`;
    }
    if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code === 'EPROTO') return `TLS handshake failed (${code})`;
  }
  return null;
}
