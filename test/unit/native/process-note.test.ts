/**
 * parseProcessNote reads a note in place (indexOf, digits read without substrings); it must give what
 * reading the note's fields with split('\0') gives (the definition below, the parser before that
 * change), on the shapes C++ writes and on every malformed or odd one around them.
 */
import { describe, expect, it } from 'vitest';
import { parseProcessNote } from '../../../src/native/process-note';
// The note's meaning, field by field (native/triage.cc Summarize()), read with split('\0').
import { processNoteBySplit } from '../../helpers/process-note-by-split.cjs';

const bySplit = processNoteBySplit;

const exec = ['e', '42', '1795355785044', '1300,1309,1307,1302,1327', '11126', '10690', '0', '4294967295', '(none)', '/usr/bin/sleep', 'sleep', '/work/main', '1', 'sleep', '0.3'];

describe('parseProcessNote', () => {
  it('reads an exec, a connect and an open note as their fields say', () => {
    const e = parseProcessNote(exec.join('\0'));
    expect(e).toEqual({ kind: 'exec', serial: 42, timeMs: 1795355785044, recordTypes: [1300, 1309, 1307, 1302, 1327], pid: 11126, ppid: 10690, uid: 0, auid: null, tty: null, exe: '/usr/bin/sleep', comm: 'sleep', cwd: '/work/main', argv: ['sleep', '0.3'] });
    const c = parseProcessNote(['c', ...exec.slice(1, 11), '', '0'].join('\0'));
    expect(c).toMatchObject({ kind: 'connect', cwd: null, argv: null, comm: 'sleep' });
  });

  it('agrees with the fields read by split on edited and cut notes', () => {
    const variants: string[][] = [exec, exec.slice(0, 13), exec.slice(0, 12), exec.slice(0, 5), [...exec, ''], [...exec.slice(0, 13), '']];
    const odd = ['', '0', '00012', '1e3', ' 7', '-1', '0x1f', '1.5', '12345678901234567', '999999999999999', '4294967295', 'ab', '(none)', '1', ',', '1300,', ',1300', 'é'];
    for (let i = 0; i < 13; i++) for (const v of odd) variants.push(exec.map((x, k) => (k === i ? v : x)));
    for (const v of variants) {
      const text = v.join('\0');
      expect(parseProcessNote(text), JSON.stringify(text)).toEqual(bySplit(text));
    }
  });
});
