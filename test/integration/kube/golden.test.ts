/**
 * Every k8s audit fixture replays through the real reader and detector, and the findings match the
 * reviewed golden file test/fixtures/kube/golden/<fixture>.findings.jsonl (an empty golden file means
 * "no finding expected"). Regenerate with UPDATE_GOLDEN=1 and review the diff by hand.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, goldenLine, replayFixture } from './replay';

const GOLDEN = path.join(FIXTURES, 'golden');
const update = process.env.UPDATE_GOLDEN === '1';

function fixtureFiles(): string[] {
  const out: string[] = [];
  for (const dir of ['', 'falco', 'hub', 'synthetic']) {
    const d = path.join(FIXTURES, dir);
    for (const n of fs.readdirSync(d).sort()) {
      const full = path.join(d, n);
      if (fs.statSync(full).isFile() && /\.(json|jsonl|log)$/.test(n)) out.push(full);
    }
  }
  return out;
}

describe('kube audit fixtures replay to their golden findings', () => {
  const files = fixtureFiles();
  it('finds the fixtures', () => {
    expect(files.length).toBeGreaterThanOrEqual(50);
  });
  for (const file of files) {
    const name = path.basename(file);
    it(name, async () => {
      const { findings } = await replayFixture(file);
      const actual = findings.map(goldenLine).join('\n') + (findings.length ? '\n' : '');
      const goldenPath = path.join(GOLDEN, `${name}.findings.jsonl`);
      if (update) fs.writeFileSync(goldenPath, actual);
      expect(actual).toBe(fs.readFileSync(goldenPath, 'utf8'));
    });
  }
});
