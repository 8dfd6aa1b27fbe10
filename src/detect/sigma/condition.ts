/**
 * Sigma `condition:` expressions: names, `1 of X*`, `all of X*`, `1 of them`, `all of them`, `and`,
 * `or`, `not` and parentheses, parsed into a tree over selection names. Precedence: not > and > or.
 */
export type Cond =
  | { op: 'sel'; name: string }
  | { op: 'not'; a: Cond }
  | { op: 'and' | 'or'; a: Cond; b: Cond };

function globNames(pattern: string, names: readonly string[]): string[] {
  const out = pattern === 'them' ? names.filter((n) => !n.startsWith('_')) : pattern.endsWith('*') ? names.filter((n) => n.startsWith(pattern.slice(0, -1))) : names.filter((n) => n === pattern);
  if (out.length === 0) throw new Error(`condition: "${pattern}" names no selection`);
  return out;
}

function fold(op: 'and' | 'or', list: Cond[]): Cond {
  return list.reduce((a, b) => ({ op, a, b }));
}

export function parseCondition(text: string, names: readonly string[]): Cond {
  if (text.includes('|')) throw new Error('condition: aggregations and pipes are not supported');
  const toks = text.match(/\(|\)|[^\s()]+/g) ?? [];
  let i = 0;
  const peek = (): string | undefined => toks[i];
  const primary = (): Cond => {
    const t = toks[i++];
    if (t === undefined) throw new Error('condition: ends too early');
    if (t === '(') {
      const e = orExpr();
      if (toks[i++] !== ')') throw new Error('condition: missing )');
      return e;
    }
    if (t === 'not') return { op: 'not', a: primary() };
    if (t === '1' || t === 'all' || t === 'any') {
      if (toks[i++] !== 'of') throw new Error(`condition: expected "of" after ${t}`);
      const pat = toks[i++];
      if (pat === undefined) throw new Error('condition: expected a name after "of"');
      const sels = globNames(pat, names).map((name): Cond => ({ op: 'sel', name }));
      return fold(t === 'all' ? 'and' : 'or', sels);
    }
    if (t === 'and' || t === 'or' || t === ')') throw new Error(`condition: unexpected "${t}"`);
    globNames(t, names);
    return { op: 'sel', name: t };
  };
  const andExpr = (): Cond => {
    let e = primary();
    while (peek() === 'and') {
      i++;
      e = { op: 'and', a: e, b: primary() };
    }
    return e;
  };
  const orExpr = (): Cond => {
    let e = andExpr();
    while (peek() === 'or') {
      i++;
      e = { op: 'or', a: e, b: andExpr() };
    }
    return e;
  };
  const tree = orExpr();
  if (i !== toks.length) throw new Error(`condition: unexpected "${toks[i] ?? ''}"`);
  return tree;
}

export function evalCondition(c: Cond, sel: (name: string) => boolean): boolean {
  switch (c.op) {
    case 'sel':
      return sel(c.name);
    case 'not':
      return !evalCondition(c.a, sel);
    case 'and':
      return evalCondition(c.a, sel) && evalCondition(c.b, sel);
    case 'or':
      return evalCondition(c.a, sel) || evalCondition(c.b, sel);
  }
}
