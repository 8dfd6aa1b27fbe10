/**
 * One Sigma field condition: `Field|mod|mod: value(s)`. String comparisons are case-insensitive (the
 * Sigma default) and done with string operations; only `re` compiles a regex, through compileRegex
 * (the linear-time engine). A list of values is any-of, or all-of with `all`.
 */
import { compileRegex } from '../rule-schema';

export const SUPPORTED_MODIFIERS = new Set(['contains', 'startswith', 'endswith', 're', 'all', 'cidr', 'windash', 'base64', 'base64offset']);

export interface FieldTest {
  field: string;
  modifiers: string[];
  values: (string | null)[];
  test: (values: readonly string[] | null) => boolean;
}

function base64Variants(s: string, offset: boolean): string[] {
  const b = Buffer.from(s, 'utf8');
  if (!offset) return [b.toString('base64').replace(/=+$/, '')];
  // The three encodings of s at offsets 0..2 inside a longer base64 text, trimmed to stable characters.
  const starts = [0, 2, 3];
  const ends = [0, -3, -2];
  return [0, 1, 2].map((i) => {
    const enc = Buffer.concat([Buffer.alloc(i), b]).toString('base64');
    const end = ends[(b.length + i) % 3] ?? 0;
    return enc.slice(starts[i], end === 0 ? undefined : end);
  });
}

function ipv4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255)) return null;
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

function cidrTest(cidr: string): (v: string) => boolean {
  const [net, bitsText] = cidr.split('/');
  const base = ipv4(net ?? '');
  const bits = Number(bitsText ?? '32');
  if (base === null || !Number.isInteger(bits) || bits < 0 || bits > 32) throw new Error(`cidr: only IPv4 networks are supported, not "${cidr}"`);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (v) => {
    const ip = ipv4(v);
    return ip !== null && ((ip & mask) >>> 0) === ((base & mask) >>> 0);
  };
}

/** Builds the test for one field condition; throws with a reason when it cannot be mapped. */
export function fieldTest(field: string, modifiers: string[], raw: unknown): FieldTest {
  for (const m of modifiers) if (!SUPPORTED_MODIFIERS.has(m)) throw new Error(`modifier "${m}" is not supported`);
  const list = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  const values = list.map((v) => {
    if (v === null) return null;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new Error(`${field}: values must be strings, numbers or null`);
  });
  const all = modifiers.includes('all');
  const op = modifiers.find((m) => m === 'contains' || m === 'startswith' || m === 'endswith' || m === 're' || m === 'cidr') ?? 'equals';
  const b64 = modifiers.includes('base64offset') ? 'offset' : modifiers.includes('base64') ? 'plain' : null;
  const windash = modifiers.includes('windash');
  const one = (v: string | null): ((x: string | null) => boolean) => {
    if (v === null) return (x) => x === null;
    if (op === 're') {
      const re = compileRegex(v);
      return (x) => x !== null && re.test(x);
    }
    if (op === 'cidr') {
      const t = cidrTest(v);
      return (x) => x !== null && t(x);
    }
    let needles = [v];
    if (windash) needles = needles.flatMap((n) => (/^[-/]/.test(n) ? [n, '-' + n.slice(1), '/' + n.slice(1)] : [n]));
    if (b64) needles = needles.flatMap((n) => base64Variants(n, b64 === 'offset'));
    // base64 values are case-sensitive; everything else compares case-insensitively.
    const fold = b64 ? (s: string) => s : (s: string) => s.toLowerCase();
    const ns = [...new Set(needles.map(fold))];
    const effective = b64 && op === 'equals' ? 'contains' : op;
    return (x) => {
      if (x === null) return false;
      const h = fold(x);
      return ns.some((n) => (effective === 'contains' ? h.includes(n) : effective === 'startswith' ? h.startsWith(n) : effective === 'endswith' ? h.endsWith(n) : h === n));
    };
  };
  const tests = values.map(one);
  const test = (got: readonly string[] | null): boolean => {
    const xs: (string | null)[] = got === null || got.length === 0 ? [null] : [...got];
    const hit = (t: (x: string | null) => boolean): boolean => xs.some(t);
    return all ? tests.every(hit) : tests.some(hit);
  };
  return { field, modifiers, values, test };
}
