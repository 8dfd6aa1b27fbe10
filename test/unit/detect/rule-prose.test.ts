/**
 * Findings carry their rule's title and description through the text redactor (a user's rule file
 * could hold anything). The built-in rules' prose must come through it unchanged: a sentence that
 * looks like `secret: value` to the redactor shows up in every finding as "[REDACTED]".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { redactText } from '../../../src/detect/redact/text';

const RULES = path.join(__dirname, '../../../src/detect/rules');

function prose(node: unknown, at: string, out: { at: string; text: string }[]): void {
  if (Array.isArray(node)) node.forEach((x, i) => prose(x, `${at}[${i}]`, out));
  else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if ((k === 'title' || k === 'description') && typeof v === 'string') out.push({ at: `${at}.${k}`, text: v });
      else prose(v, `${at}.${k}`, out);
    }
  }
}

describe('built-in rule prose', () => {
  const files = fs.readdirSync(RULES).filter((f) => f.endsWith('.yaml'));
  const texts: { at: string; text: string }[] = [];
  for (const f of files) prose(parse(fs.readFileSync(path.join(RULES, f), 'utf8')), f, texts);

  it('is found in every rule file', () => {
    expect(files.length).toBeGreaterThan(0);
    expect(texts.length).toBeGreaterThan(files.length);
  });

  it('comes through the text redactor unchanged', () => {
    const changed = texts.filter((t) => redactText(t.text) !== t.text).map((t) => `${t.at}: ${redactText(t.text)}`);
    expect(changed).toEqual([]);
  });
});
