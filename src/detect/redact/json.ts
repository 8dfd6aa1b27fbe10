/**
 * Structured redaction of a parsed JSON value (a Kubernetes request object, a JSON argument, an
 * annotation holding JSON such as kubectl.kubernetes.io/last-applied-configuration):
 *  - data / stringData / binaryData: keys kept, every value replaced;
 *  - a key whose name says secret (password, token, api_key, auth, ...) holding a string: replaced;
 *    status.token (TokenRequest) too;
 *  - env-style {name, value} pairs whose name says secret: value replaced;
 *  - arrays of strings (command, args) redacted as argv, so ["--password", "X"] loses X;
 *  - every other string: JSON inside it is parsed and redacted the same way, else the text rules.
 */
import { redactArgvWith } from './argv';
import { REDACTED } from './marker';
import { isSecretName } from './secret-names';

type TextRedactor = (s: string) => string;

const SECRET_VALUE_KEYS = new Set(['data', 'stringData', 'binaryData']);
const SECRET_KEY_NAME = /^(token|password|passwd|secret|client-key-data|client-certificate-data|bearerToken|apiKey|api_key)$/i;
const MAX_DEPTH = 32;

function redactString(s: string, depth: number, text: TextRedactor): string {
  const t = s.trimStart();
  if ((t.startsWith('{') || t.startsWith('[')) && depth < MAX_DEPTH) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(s);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed === 'object' && parsed !== null) return JSON.stringify(walk(parsed, depth + 1, null, text));
  }
  return text(s);
}

function walk(v: unknown, depth: number, parentKey: string | null, text: TextRedactor): unknown {
  if (depth > MAX_DEPTH) return REDACTED;
  if (typeof v === 'string') return redactString(v, depth, text);
  if (Array.isArray(v)) {
    if (v.length > 0 && v.every((x) => typeof x === 'string')) return redactArgvWith(v as string[], (x) => redactString(x, depth, text));
    return v.map((x) => walk(x, depth + 1, parentKey, text));
  }
  if (typeof v !== 'object' || v === null) return v;
  const o = v as Record<string, unknown>;
  const secretPair = typeof o.name === 'string' && typeof o.value === 'string' && isSecretName(o.name);
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(o)) {
    if (secretPair && k === 'value') out[k] = REDACTED;
    else if (SECRET_VALUE_KEYS.has(k) && val !== null && typeof val === 'object') {
      // Keep the key names (which secret fields exist is useful), drop every value.
      out[k] = Object.fromEntries(Object.keys(val as object).map((name) => [name, REDACTED]));
    } else if ((SECRET_KEY_NAME.test(k) || isSecretName(k)) && typeof val === 'string') out[k] = REDACTED;
    else if (parentKey === 'status' && k === 'token') out[k] = REDACTED;
    else out[k] = walk(val, depth + 1, k, text);
  }
  return out;
}

export function redactJsonValue(v: unknown, text: TextRedactor): unknown {
  return walk(v, 0, null, text);
}
