/**
 * Every test file outside test/unit may drive kernel audit, dockerd, PostgreSQL or loopback servers, so
 * it holds the lab lock (test/helpers/lab-lock.cjs) from its first hook to its last. Files run one at a
 * time (vitest.config.mts), so the lock is taken and given back once per file: a unit-test run never
 * waits, and another session's live run waits for our file instead of sharing the kernel with it.
 * Set CREDWATCH_LAB_LOCKED=1 when the whole run already holds the lock (`flock LOCK npm test`).
 */
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { acquireLabLock } from '../helpers/lab-lock.cjs';

const UNIT_DIR = path.resolve(__dirname, '..', 'unit') + path.sep;
/** Another session's live suite can hold the lock for several minutes per file. */
const WAIT_FOR_LOCK_MS = 30 * 60_000;

let release: (() => void) | null = null;

// Vitest 4 passes the suite second; its first argument must be a destructuring pattern.
// eslint-disable-next-line no-empty-pattern
beforeAll(async ({}, suite) => {
  const file = 'filepath' in suite ? suite.filepath : suite.file.filepath;
  if (path.resolve(file).startsWith(UNIT_DIR)) return;
  release = await acquireLabLock();
}, WAIT_FOR_LOCK_MS);

afterAll(() => {
  release?.();
  release = null;
});
