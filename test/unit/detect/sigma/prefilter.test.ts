/**
 * The Sigma prefilter (src/detect/sigma/prefilter.ts) may only skip a rule that cannot match: for
 * every SigmaHQ corpus rule that loads, on field sets built from the rules' own values (random case,
 * wildcards filled, values padded past the matcher's text bound, fields of other rules mixed in),
 * every rule that matches is among the candidates. And the literals it keeps are the selective ones.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LineCounter, parseDocument } from 'yaml';
import { positionOf } from '../../../../src/detect/rule-loader';
import { MAX_MATCH_TEXT } from '../../../../src/detect/linear-regex';
import { compileSigmaDocument, type FieldGetter, type SigmaRule } from '../../../../src/detect/sigma/compile';
import { SigmaIndex } from '../../../../src/detect/sigma/prefilter';

const CORPUS = path.join(__dirname, '../../../fixtures/sigma/rules');

function yamlFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? yamlFiles(path.join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [path.join(dir, e.name)] : []));
}

function compileText(text: string, file: string): SigmaRule {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  return compileSigmaDocument(doc.toJS() as Record<string, unknown>, file, (p) => positionOf(doc, lc, p));
}

function corpusRules(): SigmaRule[] {
  const out: SigmaRule[] = [];
  for (const f of yamlFiles(CORPUS)) {
    try {
      out.push(compileText(fs.readFileSync(f, 'utf8'), f));
    } catch {
      // refused rules are the corpus test's business
    }
  }
  return out;
}

/** xorshift32: the same cases every run. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

type Fields = Map<string, string[]>;

function fieldSets(rules: readonly SigmaRule[], cases: number, seed: number): Fields[] {
  const rand = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const noise = (): string => pick(['', 'x', '/usr/bin/', ' --flag ', 'A'.repeat(MAX_MATCH_TEXT + 100), '\u00e9t\u00e9', '.']);
  const recase = (s: string): string => [...s].map((c) => (rand() < 0.3 ? c.toUpperCase() : c)).join('');
  const fill = (v: string): string => v.replace(/\\([*?\\])|\*|\?/g, (m, esc: string | undefined) => (esc ?? (m === '?' ? 'q' : noise())));
  const out: Fields[] = [];
  for (let i = 0; i < cases; i++) {
    const f: Fields = new Map();
    // One or two rules' selections, filled in; then noise fields.
    for (let k = 0; k < 1 + Math.floor(rand() * 2); k++) {
      const r = pick(rules);
      for (const groups of r.selections.values()) {
        const g = pick(groups);
        if (!g) continue;
        for (const t of g) {
          const v = t.values.find((x) => x !== null);
          if (v === undefined || rand() < 0.1) continue;
          const text = recase(fill(v));
          const wrapped = t.modifiers.includes('contains') ? noise() + text + noise() : t.modifiers.includes('endswith') ? noise() + text : t.modifiers.includes('startswith') ? text + noise() : text;
          f.set(t.field, [...(f.get(t.field) ?? []), wrapped]);
        }
      }
    }
    out.push(f);
  }
  return out;
}

/** A process_creation rule with this detection block (YAML, indented by two). */
function inlineRule(n: number, detection: string): SigmaRule {
  const doc = `title: t\nid: 11111111-2222-3333-4444-55555555555${n}\nlogsource: {product: linux, category: process_creation}\ndetection:\n${detection}level: low\n`;
  return compileText(doc, 'inline.yml');
}

const getter =
  (f: Fields): FieldGetter =>
  (k) =>
    f.get(k) ?? null;

describe('Sigma prefilter', () => {
  const rules = corpusRules();

  it('never skips a rule that matches: the corpus rules on 3,000 field sets built from their own values', () => {
    expect(rules.length).toBeGreaterThan(150);
    const byTarget = new Map<string, SigmaRule[]>();
    for (const r of rules) byTarget.set(r.target, [...(byTarget.get(r.target) ?? []), r]);
    const matchedRules = new Set<string>();
    let skipped = 0;
    for (const [target, rs] of byTarget) {
      const index = new SigmaIndex(rs);
      for (const f of fieldSets(rs, 1000, 0x9e3779b9 ^ target.length)) {
        const get = getter(f);
        const cands = new Set(index.candidates(get));
        for (const r of rs) {
          if (!r.matches(get)) {
            if (!cands.has(r)) skipped++;
            continue;
          }
          matchedRules.add(r.id);
          expect(cands.has(r), `${path.basename(r.file)} matches ${JSON.stringify([...f].map(([k, v]) => [k, v.map((x) => x.slice(0, 80))]))} but was skipped`).toBe(true);
        }
      }
    }
    // The cases exercise most rules, and the index does skip what cannot match.
    expect(matchedRules.size).toBeGreaterThan(rules.length / 2);
    expect(skipped).toBeGreaterThan(0);
  });

  it('keeps the selective literal of a selection: a path over a two-character flag', () => {
    const r = inlineRule(5, `  selection:
    CommandLine|contains: ['-f', '-x']
    Image|endswith: '/iptables'
  condition: selection
`);
    expect(r.needs).toEqual([{ field: 'Image', literals: ['/iptables'] }]);
  });

  it('a rule whose condition is only a negation is always a candidate', () => {
    const r = inlineRule(6, `  filter:
    Image|endswith: '/bash'
  condition: not filter
`);
    expect(r.needs).toBeNull();
    expect(new SigmaIndex([r]).candidates(() => null)).toEqual([r]);
    expect(r.matches(() => null)).toBe(true);
  });

  it('a literal hidden in the middle of a text longer than the matcher bound is neither matched nor a candidate; at either end it is both', () => {
    const r = inlineRule(7, `  selection:
    CommandLine|contains: 'secret-word'
  condition: selection
`);
    const index = new SigmaIndex([r]);
    const pad = 'p'.repeat(MAX_MATCH_TEXT);
    for (const [text, want] of [
      [pad + 'SECRET-WORD' + pad, false],
      ['Secret-Word' + pad + pad, true],
      [pad + pad + 'secret-word', true],
    ] as const) {
      const get: FieldGetter = (k) => (k === 'CommandLine' ? [text] : null);
      expect(r.matches(get)).toBe(want);
      expect(index.candidates(get).includes(r)).toBe(want);
    }
  });
});
