/**
 * A command loads only its own code (src/cli/main.ts): `replay` and its workers, or the agent, must not
 * carry the collector, the stores and the shippers of every other command. Help and unknown names load
 * them all, so the listing and the usage error stay complete.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../../..');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
// The built main (its version comes from package.json by a dist-relative path, so not the source file).
const built = fs.existsSync(MAIN);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const main = (): typeof import('../../../src/cli/main') => require(MAIN) as typeof import('../../../src/cli/main');
const ALL = ['run', 'replay', 'findings', 'show', 'status', 'rules', 'collector', 'config'];

/** Which of the given dist modules a `credwatch <args>` run had loaded when it finished. */
function loadedBy(args: string[], modules: string[]): string[] {
  const probe = `
    const m = require(${JSON.stringify(MAIN)});
    process.stdout.write = () => true;
    m.main(['node', 'credwatch', ...${JSON.stringify(args)}]).then(() => {
      const mods = ${JSON.stringify(modules)};
      const loaded = mods.filter((x) => require.cache[require.resolve(${JSON.stringify(path.join(ROOT, 'dist/src'))} + '/' + x)]);
      process.stderr.write(JSON.stringify(loaded));
    });`;
  const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(r.stderr.trim().split('\n').pop() ?? '[]') as string[];
}

describe.skipIf(!built)('commands are loaded on demand (skip: dist/ not built, npm run build:ts)', () => {
  it('commandOf names the command an argv runs, and nothing for options, help or unknown names', () => {
    expect(main().commandOf(['node', 'credwatch', 'replay', 'x.log'])).toBe('replay');
    expect(main().commandOf(['node', 'credwatch', 'status'])).toBe('status');
    expect(main().commandOf(['node', 'credwatch', '--help'])).toBeNull();
    expect(main().commandOf(['node', 'credwatch', 'help', 'replay'])).toBeNull();
    expect(main().commandOf(['node', 'credwatch', 'bogus'])).toBeNull();
    expect(main().commandOf(['node', 'credwatch', 'constructor'])).toBeNull();
    expect(main().commandOf(['node', 'credwatch'])).toBeNull();
  });

  it('the program has every command without a name, and only that one with it', async () => {
    expect((await main().buildProgram()).commands.map((c) => c.name()).sort()).toEqual([...ALL].sort());
    expect((await main().buildProgram('replay')).commands.map((c) => c.name())).toEqual(['replay']);
  });

  it('a `status --help` loads neither the agent nor the collector nor replay; `--help` loads every command', () => {
    const heavy = ['daemon/agent.js', 'collector/server.js', 'cli/commands/replay.js'];
    expect(loadedBy(['status', '--help'], heavy)).toEqual([]);
    expect(loadedBy(['--help'], heavy)).toEqual(heavy);
  });
});
