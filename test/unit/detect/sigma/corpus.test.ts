/**
 * Every SigmaHQ rule of the three logsources credwatch reads (/work/shared/corpora/sigma, DRL 1.1)
 * either compiles or is refused with file:line:col and a reason; every one that compiles fires on an
 * event built from its own detection and on none of the benign events. Skipped when the shared corpus
 * is not on this machine (it is not part of the repository).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LineCounter, parseDocument } from 'yaml';
import { positionOf } from '../../../../src/detect/rule-loader';
import { compileSigmaDocument, type SigmaRule } from '../../../../src/detect/sigma/compile';
import type { Cond } from '../../../../src/detect/sigma/condition';
import type { FieldTest } from '../../../../src/detect/sigma/value-match';

const CORPUS = '/work/shared/corpora/sigma/rules';

function yamlFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? yamlFiles(path.join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [path.join(dir, e.name)] : []));
}

type Fields = Map<string, string[]>;

/** A value that satisfies one field test (null: the test wants the field absent; undefined: cannot build). */
function witness(t: FieldTest): string[] | null | undefined {
  if (t.modifiers.includes('re') || t.modifiers.some((m) => m.startsWith('base64'))) return undefined;
  const wrap = (v: string): string => (t.modifiers.includes('contains') ? `x ${v} x` : t.modifiers.includes('startswith') ? `${v} x` : t.modifiers.includes('endswith') ? `/x/${v}` : v);
  if (t.modifiers.includes('cidr')) return [t.values[0]!.split('/')[0]!];
  const vals = t.modifiers.includes('all') ? t.values : t.values.slice(0, 1);
  if (vals.some((v) => v === null)) return null;
  if (t.modifiers.includes('all')) return [wrap((vals as string[]).join(' '))];
  return [wrap(vals[0] as string)];
}

function selectionEvent(groups: FieldTest[][]): Fields | undefined {
  for (const g of groups) {
    const f: Fields = new Map();
    let ok = true;
    for (const t of g) {
      const w = witness(t);
      if (w === undefined) {
        ok = false;
        break;
      }
      if (w !== null) f.set(t.field, [...(f.get(t.field) ?? []), ...w]);
    }
    if (ok) return f;
  }
  return undefined;
}

function positiveNames(c: Cond, neg = false, out: string[] = []): string[] {
  if (c.op === 'sel') {
    if (!neg) out.push(c.name);
  } else if (c.op === 'not') positiveNames(c.a, !neg, out);
  else {
    positiveNames(c.a, neg, out);
    positiveNames(c.b, neg, out);
  }
  return out;
}

/** Tries each positive selection alone, then all of them together; the rule's own matcher decides. */
function firingEvent(r: SigmaRule): Fields | undefined {
  const names = [...new Set(positiveNames(r.condition))];
  const events = names.map((n) => selectionEvent(r.selections.get(n)!)).filter((e): e is Fields => e !== undefined);
  const merged: Fields = new Map();
  for (const e of events) for (const [k, v] of e) merged.set(k, [...(merged.get(k) ?? []), ...v]);
  return [...events, merged].find((e) => r.matches((f) => e.get(f) ?? null));
}

const BENIGN: Record<SigmaRule['target'], Fields[]> = {
  process_creation: [
    new Map([['Image', ['/usr/bin/ls']], ['CommandLine', ['ls -la /home/alice']], ['ParentImage', ['/usr/bin/bash']], ['User', ['alice']], ['CurrentDirectory', ['/home/alice']]]),
    new Map([['Image', ['/usr/bin/git']], ['CommandLine', ['git status']], ['ParentImage', ['/usr/bin/bash']], ['User', ['alice']], ['CurrentDirectory', ['/srv/repo']]]),
  ],
  auditd: [
    new Map([['type', ['EXECVE']], ['argc', ['2']], ['a0', ['ls']], ['a1', ['-la']]]),
    new Map([['type', ['SYSCALL']], ['SYSCALL', ['openat']], ['exe', ['/usr/bin/cat']], ['comm', ['cat']], ['key', ['none']]]),
  ],
  kube_audit: [new Map([['verb', ['get']], ['objectRef.resource', ['pods']], ['user.username', ['alice']], ['responseStatus.code', ['200']], ['sourceIPs', ['10.0.0.5']]])],
};

interface Outcome {
  file: string;
  target?: string;
  rule?: SigmaRule;
  refused?: string;
}

function compileAll(): Outcome[] {
  return yamlFiles(CORPUS).flatMap((file): Outcome[] => {
    const text = fs.readFileSync(file, 'utf8');
    if (!/product: (linux|kubernetes)/.test(text)) return [];
    const ls = /service: auditd|category: process_creation|service: audit\b/.exec(text);
    if (!ls) return [];
    const lc = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lc });
    try {
      return [{ file, target: ls[0], rule: compileSigmaDocument(doc.toJS() as Record<string, unknown>, file, (p) => positionOf(doc, lc, p)) }];
    } catch (err) {
      return [{ file, target: ls[0], refused: (err as Error).message }];
    }
  });
}

const outcomes = compileAll();

describe.skipIf(outcomes.length === 0)('Sigma corpus (linux auditd, linux process_creation, kubernetes audit)', () => {
  it('every rule loads or is refused with file:line:col and a reason', () => {
    const byTarget = new Map<string, { loaded: number; refused: number }>();
    for (const o of outcomes) {
      const c = byTarget.get(o.target!) ?? { loaded: 0, refused: 0 };
      if (o.rule) c.loaded++;
      else c.refused++;
      byTarget.set(o.target!, c);
      if (o.refused) expect(o.refused).toMatch(/\.yml:\d+:\d+: /);
    }
    console.log('sigma corpus:', JSON.stringify(Object.fromEntries(byTarget)));
    const reasons = new Map<string, number>();
    for (const o of outcomes) if (o.refused) reasons.set(o.refused.replace(/^.*?: /, '').replace(/"[^"]*"/g, '"…"'), (reasons.get(o.refused.replace(/^.*?: /, '').replace(/"[^"]*"/g, '"…"')) ?? 0) + 1);
    console.log('refusals:', JSON.stringify([...reasons].sort((a, b) => b[1] - a[1])));
    expect(outcomes.filter((o) => o.rule).length).toBeGreaterThan(0);
  });

  it('each loaded rule fires on an event built from its own detection and on no benign event', () => {
    let proven = 0;
    const unprovable: string[] = [];
    for (const o of outcomes) {
      const r = o.rule;
      if (!r) continue;
      const ev = firingEvent(r);
      if (!ev) {
        unprovable.push(path.basename(o.file));
        continue;
      }
      proven++;
      for (const b of BENIGN[r.target]) expect(r.matches((f) => b.get(f) ?? null), `${o.file} on benign ${JSON.stringify([...b])}`).toBe(false);
    }
    console.log(`sigma corpus: ${proven} loaded rules proven to fire; without a built event (re/base64 values): ${unprovable.length} ${unprovable.join(' ')}`);
    expect(proven).toBeGreaterThan(0);
  });
});
