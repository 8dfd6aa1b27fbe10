'use strict';
/**
 * A process note's meaning, field by field (native/triage.cc Summarize()), read the plain way: split on
 * NUL, then each field. The reference that src/native/process-note.ts's in-place parser must equal
 * (test/unit/native/process-note.test.ts) and the baseline bench/process-note-parse.js times it against.
 */
function num(s) {
  if (s === undefined || s === '') return null;
  const n = Number(s);
  return Number.isInteger(n) && n >= 0 ? n : null;
}

function processNoteBySplit(text) {
  const f = text.split('\0');
  const kind = f[0] === 'e' ? 'exec' : f[0] === 'c' ? 'connect' : f[0] === 'o' ? 'open' : null;
  const serial = num(f[1]);
  const timeMs = num(f[2]);
  const pid = num(f[4]);
  if (kind === null || serial === null || timeMs === null || pid === null || f.length < 13) return null;
  const auid = num(f[7]);
  const tty = f[8];
  return {
    kind,
    serial,
    timeMs,
    recordTypes: f[3].split(',').map(Number),
    pid,
    ppid: num(f[5]),
    uid: num(f[6]),
    auid: auid === 4294967295 ? null : auid,
    tty: tty === '' || tty === '(none)' ? null : tty,
    exe: f[9],
    comm: f[10] === '' ? null : f[10],
    cwd: f[12] === '1' ? f[11] : null,
    argv: kind === 'exec' ? f.slice(13) : null,
  };
}

module.exports = { processNoteBySplit };
