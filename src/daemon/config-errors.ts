/**
 * Turns YAML syntax errors and zod validation issues into messages an operator can act on:
 * FILE:LINE:COLUMN, the key path, what was expected and what was found, and a "did you mean" for a
 * misspelt key. Line numbers come from the YAML document's node ranges through a LineCounter.
 */
import { isMap, isScalar, isSeq, isPair, type Document, type LineCounter, type Node } from 'yaml';
import type { z } from 'zod';

export interface ConfigProblem {
  /** Dotted key path, e.g. "audit.mode" or "ship[0].url"; "" for the whole document. */
  path: string;
  /** 1-based; absent when the problem has no place in a file (e.g. a missing file). */
  line?: number;
  column?: number;
  message: string;
}

/**
 * A configuration that cannot be used. Exit code 2 (usage/configuration error): the CLI maps any
 * error carrying `exitCode` to it, so the daemon's config layer needs nothing from the CLI.
 */
export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(
    readonly source: string,
    readonly problems: ConfigProblem[],
  ) {
    super(formatProblems(source, problems));
    this.name = 'ConfigError';
  }
}

export function formatProblems(source: string, problems: ConfigProblem[]): string {
  const lines = problems.map((p) => {
    const where = p.line !== undefined ? `${source}:${p.line}:${p.column ?? 1}` : source;
    return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
  });
  return lines.length === 1 ? `invalid configuration: ${lines[0]}` : `invalid configuration:\n  ${lines.join('\n  ')}`;
}

export type PathSegment = string | number;

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

/** Problems for YAML syntax errors (the yaml package already knows their line and column). */
export function yamlSyntaxProblems(doc: Document): ConfigProblem[] {
  return doc.errors.map((e) => {
    const pos = e.linePos?.[0];
    // The yaml package appends a code excerpt after the first line; the first line says it all.
    const first = e.message.split('\n')[0] ?? e.message;
    const message = `YAML syntax error: ${first.replace(/ at line \d+, column \d+:?$/, '')}`;
    return pos ? { path: '', line: pos.line, column: pos.col, message } : { path: '', message };
  });
}

interface Located {
  line?: number;
  column?: number;
}

/**
 * Finds the deepest node along `path`; with `keyName`, the key node of that entry in the map at `path`
 * (an unknown key is reported where the key is written, not where its value is).
 */
export function locate(doc: Document, lc: LineCounter, path: readonly PathSegment[], keyName?: string): Located {
  let node: unknown = doc.contents;
  let best: Node | null = isNodeWithRange(node) ? node : null;
  const segments = keyName === undefined ? path : [...path, keyName];
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const isLast = i === segments.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      // For an unknown key, or a key written with no value, the key itself is the place to point at.
      if ((isLast && keyName !== undefined) || pair.value === null || pair.value === undefined) {
        if (isNodeWithRange(pair.key)) best = pair.key;
        if (isLast && keyName !== undefined) break;
      }
      if (isNodeWithRange(pair.value)) best = pair.value;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (!isNodeWithRange(item)) break;
      best = item;
      node = item;
    } else {
      break;
    }
  }
  if (!best?.range) return {};
  const pos = lc.linePos(best.range[0]);
  return { line: pos.line, column: pos.col };
}

function isNodeWithRange(n: unknown): n is Node {
  return typeof n === 'object' && n !== null && 'range' in n && Array.isArray((n as Node).range);
}

/** Known keys of the object schema found at `path` (through defaults, optionals, arrays, unions). */
export function knownKeysAt(schema: z.ZodType, path: readonly PathSegment[]): string[] {
  let current: unknown[] = [schema];
  for (const seg of path) {
    const next: unknown[] = [];
    for (const s of current.flatMap(unwrapAll)) {
      const def = defOf(s);
      if (typeof seg === 'number' && def.type === 'array') next.push(def.element);
      else if (typeof seg === 'string' && def.type === 'object' && def.shape && seg in def.shape) next.push(def.shape[seg]);
    }
    current = next;
  }
  const keys = new Set<string>();
  for (const s of current.flatMap(unwrapAll)) {
    const def = defOf(s);
    if (def.type === 'object' && def.shape) for (const k of Object.keys(def.shape)) keys.add(k);
  }
  return [...keys];
}

interface LooseDef {
  type?: string;
  innerType?: unknown;
  element?: unknown;
  options?: unknown[];
  in?: unknown;
  shape?: Record<string, unknown>;
}

function defOf(s: unknown): LooseDef {
  const zod = (s as { _zod?: { def?: LooseDef } } | null)?._zod;
  return zod?.def ?? {};
}

function unwrapAll(s: unknown): unknown[] {
  const def = defOf(s);
  switch (def.type) {
    case 'default':
    case 'prefault':
    case 'optional':
    case 'nullable':
    case 'readonly':
    case 'catch':
      return unwrapAll(def.innerType);
    case 'pipe':
      return unwrapAll(def.in);
    case 'union':
      return (def.options ?? []).flatMap(unwrapAll);
    default:
      return [s];
  }
}

/** Closest candidate within a small edit distance, or null. Cheap: the candidate lists are short. */
export function didYouMean(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      prev[j] = Math.min(up + 1, (prev[j - 1] as number) + 1, diag + cost);
      diag = up;
    }
  }
  return prev[b.length] as number;
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/**
 * A union's issue says only "no branch matched". When exactly one branch matched the value's shape
 * (its issues are all below the union's own path), that branch's issues are the useful ones: for
 * `rules: [1]` say "rules[0]: expected string", not "rules: invalid input".
 */
function flattenUnions(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const out: z.core.$ZodIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const shaped = issue.errors.filter((branch) => branch.length > 0 && branch.every((b) => b.path.length > 0));
      if (shaped.length === 1) {
        const branch = shaped[0] as z.core.$ZodIssue[];
        out.push(...flattenUnions(branch.map((b) => ({ ...b, path: [...issue.path, ...b.path] }) as z.core.$ZodIssue)));
        continue;
      }
    }
    out.push(issue);
  }
  return out;
}

/** Problems for every zod issue, each located in the YAML document. */
export function zodProblems(issues: readonly z.core.$ZodIssue[], doc: Document, lc: LineCounter, schema: z.ZodType): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of flattenUnions(issues)) {
    const path = issue.path.filter((s): s is PathSegment => typeof s === 'string' || typeof s === 'number');
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, path);
      for (const key of issue.keys) {
        const hint = didYouMean(key, known);
        const message =
          `unknown key "${key}"` +
          (hint ? `; did you mean "${hint}"?` : '') +
          (known.length ? ` (known keys: ${known.join(', ')})` : '');
        out.push({ path: formatPath([...path, key]), ...locate(doc, lc, path, key), message });
      }
      continue;
    }
    let message: string;
    switch (issue.code) {
      case 'invalid_type':
        message =
          issue.input === undefined
            ? `required: expected ${issue.expected}`
            : `expected ${issue.expected}, got ${describeValue(issue.input)}`;
        break;
      case 'invalid_value':
        message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(issue.input)}`;
        break;
      default:
        message = issue.message + ('input' in issue && issue.input !== undefined ? `, got ${describeValue(issue.input)}` : '');
    }
    out.push({ path: formatPath(path), ...locate(doc, lc, path), message });
  }
  return out;
}
