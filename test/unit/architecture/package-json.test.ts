/**
 * package.json names only files that exist: credwatch is a program (bin/credwatch), not a library,
 * so it has no "main" entry that `require('credwatch')` could resolve to a missing file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '../../..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { main?: string; bin: Record<string, string>; exports?: unknown };

describe('package.json', () => {
  it('every bin entry is a file in the repository', () => {
    for (const file of Object.values(pkg.bin)) expect(fs.existsSync(path.join(ROOT, file)), file).toBe(true);
  });

  it('declares no library entry point (main, exports): the package is the credwatch program', () => {
    expect(pkg.main).toBeUndefined();
    expect(pkg.exports).toBeUndefined();
  });
});
