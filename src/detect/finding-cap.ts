/**
 * A hard cap on a finding's encoded size, applied before it is stored, logged or shipped.
 *
 * Every part of a finding is bounded on its own (argv: src/detect/bound.ts; kube request objects:
 * src/kube/redact.ts), but the parts add up, and bytes that are not UTF-8 grow six-fold in JSON
 * (`\udcNN`): bash → kubectl exec with long non-UTF-8 arguments made a 12.8 MB finding, over a
 * collector's 8 MB body limit, and the output stalled on it. Here a finding whose JSON is over
 * `maxBytes` is cut, deterministically, in steps until it fits:
 *  - every string (an argument, a raw record, the description) longer than the step's limit keeps
 *    its head and tail around a `…[+N bytes]…` marker;
 *  - every list (argv, parents, evidence, records, groups) longer than the step's limit keeps its
 *    first and last entries (argv gets a `…[+N args]` element in the middle);
 * and the finding says so: `truncated: {fields, original_bytes}` names the fields cut (dotted paths
 * without indices) and the JSON size before. The id, rule, severity, time, host and the other
 * identifying fields are never touched, so the finding still groups, dedupes and sorts the same.
 * The cut works on text that is already redacted: no piece of it can hold a secret.
 */
import type { Finding, FindingCut } from '../model/finding';

export const DEFAULT_MAX_FINDING_BYTES = 64 * 1024;
/** Below this the identifying fields alone may not fit. */
export const MIN_MAX_FINDING_BYTES = 8 * 1024;

/** Steps: the longest string and the longest list each keeps. */
const STEPS: readonly { chars: number; items: number }[] = [
  { chars: 4096, items: 64 },
  { chars: 1024, items: 32 },
  { chars: 256, items: 16 },
  { chars: 96, items: 8 },
  { chars: 32, items: 4 },
  { chars: 16, items: 2 },
];

/** Top-level fields that identify the finding; never cut. */
const KEEP = new Set(['id', 'rule', 'severity', 'score', 'confidence', 'covers', 'mitre', 'time', 'host', 'source', 'indicators', 'truncated', 'revision', 'count', 'first_seen', 'last_seen']);

export interface CapStats {
  /** Findings that were over the cap and were cut. */
  cut: number;
  /** Their JSON bytes before the cut, summed. */
  cutBytes: number;
}

function jsonBytes(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v), 'utf8');
}

function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Head and tail of `s` (about 3:1) around a marker; never splits a surrogate pair. */
function cutString(s: string, chars: number): string {
  let headLen = Math.ceil((chars * 3) / 4);
  let tailAt = s.length - (chars - headLen);
  const isHigh = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
  const isLow = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;
  if (headLen > 0 && isHigh(s.charCodeAt(headLen - 1))) headLen--;
  if (tailAt < s.length && isLow(s.charCodeAt(tailAt)) && isHigh(s.charCodeAt(tailAt - 1))) tailAt++;
  const dropped = s.slice(headLen, tailAt);
  return `${s.slice(0, headLen)}…[+${utf8Bytes(dropped)} bytes]…${s.slice(tailAt)}`;
}

function isArgvPath(path: string): boolean {
  return path === 'process.argv' || path === 'process.parents.argv';
}

function cutValue(v: unknown, path: string, step: { chars: number; items: number }, cutFields: Set<string>): unknown {
  if (typeof v === 'string') {
    // A marker is about 20 characters: cutting a string only a little over the limit gains nothing.
    if (v.length <= step.chars + 24) return v;
    cutFields.add(path);
    return cutString(v, step.chars);
  }
  if (Array.isArray(v)) {
    let items: unknown[] = v;
    if (v.length > step.items) {
      cutFields.add(path);
      const headN = Math.ceil(step.items / 2);
      const tailN = step.items - headN;
      const middle = isArgvPath(path) ? [`…[+${v.length - step.items} args]`] : [];
      items = [...v.slice(0, headN), ...middle, ...v.slice(v.length - tailN)];
    }
    return items.map((x) => cutValue(x, path, step, cutFields));
  }
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = cutValue(x, path === '' ? k : `${path}.${k}`, step, cutFields);
    return out;
  }
  return v;
}

function cutFinding(f: Finding, step: { chars: number; items: number }, originalBytes: number): Finding {
  const cutFields = new Set<string>(f.truncated?.fields ?? []);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f)) out[k] = KEEP.has(k) ? v : cutValue(v, k, step, cutFields);
  const truncated: FindingCut = { fields: [...cutFields].sort(), original_bytes: f.truncated?.original_bytes ?? originalBytes };
  return { ...(out as unknown as Finding), truncated };
}

/** Cuts findings over a byte cap (see the module comment) and counts what it cut. */
export class FindingCap {
  readonly stats: CapStats = { cut: 0, cutBytes: 0 };

  constructor(readonly maxBytes = DEFAULT_MAX_FINDING_BYTES) {
    if (!Number.isInteger(maxBytes) || maxBytes < MIN_MAX_FINDING_BYTES) throw new RangeError(`max finding size must be an integer of at least ${MIN_MAX_FINDING_BYTES} bytes`);
  }

  /** The finding itself when it fits, else a cut copy marked `truncated`. */
  apply(f: Finding): Finding {
    const bytes = jsonBytes(f);
    if (bytes <= this.maxBytes) return f;
    this.stats.cut++;
    this.stats.cutBytes += bytes;
    let last = f;
    for (const step of STEPS) {
      last = cutFinding(f, step, bytes);
      if (jsonBytes(last) <= this.maxBytes) return last;
    }
    // Only the identifying fields left (a finding with thousands of indicators, say): keep those,
    // drop what can be dropped, and say so. Never over the cap: indicators are cut last of all.
    const bare: Finding = { ...last, process: null, kube: null, evidence: [], description: '' };
    const dropped = ['description', 'evidence', 'kube', 'process'];
    const fields = [...new Set([...(last.truncated?.fields ?? []), ...dropped])].sort();
    let out: Finding = { ...bare, truncated: { fields, original_bytes: bytes } };
    if (jsonBytes(out) > this.maxBytes) out = { ...out, indicators: out.indicators.slice(0, 8), title: out.title.slice(0, 256), truncated: { fields: [...fields, 'indicators', 'title'].sort(), original_bytes: bytes } };
    return out;
  }

  applyAll(fs: Finding[]): Finding[] {
    let changed = false;
    const out = fs.map((f) => {
      const c = this.apply(f);
      if (c !== f) changed = true;
      return c;
    });
    return changed ? out : fs;
  }
}
