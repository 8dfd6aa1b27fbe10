#!/usr/bin/env node
/*
 * CPU of reading findings-mode replay's process notes (issue 23): parseProcessNote (fields found with
 * indexOf, numbers read in place) against reading the same fields with split('\0') (the parser before
 * it), alternating rounds on the same notes in one run, so the ratio holds whatever the machine's load.
 * The notes: an exec (argv of 3) and a connect, as native/triage.cc writes them, with varying pids.
 *
 *   npm run build:ts && node bench/process-note-parse.js [--notes 1000000] [--rounds 5]
 *
 * In-process, no kernel audit: no lab lock needed.
 */
'use strict';
const os = require('node:os');
const path = require('node:path');
const { parseProcessNote } = require(path.join(__dirname, '..', 'dist', 'src', 'native', 'process-note.js'));

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? Number(process.argv[i + 1]) : dflt;
}
const NOTES = arg('--notes', 1_000_000);
const ROUNDS = arg('--rounds', 5);

/** The earlier reading: split into fields, then each field (the unit test's reference too). */
const { processNoteBySplit: bySplit } = require('../test/helpers/process-note-by-split.cjs');

const notes = [];
for (let i = 0; i < 1000; i++) {
  const pid = String(30000 + i);
  notes.push(['e', String(1444000 + i), String(1795355785044 + i), '1300,1309,1307,1302,1302,1327', pid, '10690', '0', '4294967295', '(none)', '/usr/bin/curl', 'curl', '/work/main', '1', 'curl', '-s', 'http://127.0.0.1:2375/version'].join('\0'));
  notes.push(['c', String(1445000 + i), String(1795355785050 + i), '1300,1306,1307,1302,1327', pid, '10690', '0', '4294967295', '(none)', '/usr/bin/curl', 'curl', '/work/main', '1'].join('\0'));
}

function round(parse) {
  const t0 = process.cpuUsage();
  let sink = 0;
  for (let i = 0; i < NOTES; i++) sink += parse(notes[i % notes.length]).pid;
  const t = process.cpuUsage(t0);
  if (sink === 0) throw new Error('no notes parsed');
  return ((t.user + t.system) * 1000) / NOTES; // ns per note
}

const res = { inPlace: [], split: [] };
for (let r = 0; r < ROUNDS; r++) {
  res.inPlace.push(round(parseProcessNote));
  res.split.push(round(bySplit));
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(JSON.stringify({ notes: NOTES, rounds: ROUNDS, nsPerNote: { inPlace: Math.round(med(res.inPlace)), split: Math.round(med(res.split)) }, ratio: +(med(res.inPlace) / med(res.split)).toFixed(2), loadavg: os.loadavg().map((x) => +x.toFixed(2)) }));
