/**
 * The folders of src/ import only downward along the data flow (eslint.config.mjs, LAYERS; see
 * docs/architecture.md). These lint probe files placed inside src/ without writing them: an upward
 * import must be an error naming the rule, a downward one must pass.
 */
import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '../../..');

async function lintAs(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: ROOT });
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? ''}: ${m.message}`);
}

describe('module direction', () => {
  it('refuses an upward import (store reaching into the daemon)', async () => {
    const messages = await lintAs('src/store/probe.ts', "import { Agent } from '../daemon/agent';\nexport const x = Agent;\n");
    expect(messages.some((m) => m.startsWith('import/no-restricted-paths') && m.includes('src/store sits below'))).toBe(true);
  }, 30_000);

  it('refuses detect importing the pipeline (the old engine -> process-note cycle)', async () => {
    const messages = await lintAs('src/detect/probe.ts', "import { AuditPipeline } from '../pipeline/audit-pipeline';\nexport const x = AuditPipeline;\n");
    expect(messages.filter((m) => m.startsWith('import/no-restricted-paths'))).toHaveLength(1);
  }, 30_000);

  it('keeps the model lowest: it may not import even the audit layer', async () => {
    const messages = await lintAs('src/model/probe.ts', "import { parseRecord } from '../audit/record';\nexport const x = parseRecord;\n");
    expect(messages.some((m) => m.startsWith('import/no-restricted-paths') && m.includes('src/model sits below log, audit'))).toBe(true);
  }, 30_000);

  it('keeps the log policy low: every layer may use it, it may use only the model', async () => {
    const up = await lintAs('src/log/probe.ts', "import { parseRecord } from '../audit/record';\nexport const x = parseRecord;\n");
    expect(up.some((m) => m.startsWith('import/no-restricted-paths') && m.includes('src/log sits below audit'))).toBe(true);
    const down = await lintAs('src/sources/probe.ts', "import { LogWindow } from '../log/rate-limit';\nexport const x = LogWindow;\n");
    expect(down.filter((m) => m.startsWith('import/no-restricted-paths'))).toEqual([]);
  }, 30_000);

  it('accepts a downward import (the daemon using the store)', async () => {
    const messages = await lintAs('src/daemon/probe.ts', "import { openStore } from '../store';\nexport const x = openStore;\n");
    expect(messages.filter((m) => m.startsWith('import/no-restricted-paths'))).toEqual([]);
  }, 30_000);
});
