/*
 * Which linear-time regex engine for rule regexes (issue 15 item 1)? Times the review's hostile inputs
 * against V8's backtracking engine, V8's experimental linear engine (`l` flag; needs
 * --enable-experimental-regexp-engine, and refuses the `i` flag on Node 20), re2-wasm and re2js.
 * re2js is timed through test() (the DFA, as src/detect/rule-regex.ts uses it) and find() (submatches).
 * Usage: node --enable-experimental-regexp-engine bench/regex-engines.js [--backtrack]
 * (--backtrack also times V8's default engine, which takes minutes on the larger inputs; 20 s cap each).
 * Prints one JSON line per (case, engine): median ms of 5 warm runs.
 */
'use strict';
const { RE2JS } = require('re2js');
// re2-wasm was measured and rejected (fixed 16 MiB heap, compiled regexes never freed: the unit suite
// ran it out of memory); time it again with `npm i --no-save re2-wasm`.
let RE2 = null;
try {
  ({ RE2 } = require('re2-wasm'));
} catch {
  /* not installed */
}

const CASES = [
  { name: 'h11 etcdctl 24KB', re: 'etcdctl\\b.*\\bget\\b.*(/registry/(secrets|serviceaccounts)|--prefix)', text: '/bin/true ' + 'etcdctl get '.repeat(2048) },
  { name: 'h11 etcdctl 64KB', re: 'etcdctl\\b.*\\bget\\b.*(/registry/(secrets|serviceaccounts)|--prefix)', text: '/bin/true ' + 'etcdctl get '.repeat(5461) },
  { name: 'h11 etcdctl 64KB match at end', re: 'etcdctl\\b.*\\bget\\b.*(/registry/(secrets|serviceaccounts)|--prefix)', text: '/bin/true ' + 'etcdctl get '.repeat(5461) + '--prefix' },
  { name: 'h11 etcdctl 1MB', re: 'etcdctl\\b.*\\bget\\b.*(/registry/(secrets|serviceaccounts)|--prefix)', text: '/bin/true ' + 'etcdctl get '.repeat(87381) },
  { name: 'h5 kubectl 524KB', re: '\\b(get|describe|edit)\\b.*\\b(secrets?|serviceaccounts?|sa|configmaps?|cm)\\b', text: 'kubectl ' + 'get '.repeat(131072) },
  { name: '(a+)+$ 1MB', re: '^(a+)+$', text: 'a'.repeat(1 << 20) + '!' },
  { name: '1MB plain text', re: 'etcdctl\\b.*\\bget\\b.*(/registry/(secrets|serviceaccounts)|--prefix)', text: 'x'.repeat(1 << 20) },
];

function time(fn) {
  const runs = [];
  for (let i = 0; i < 5; i++) {
    const t = process.hrtime.bigint();
    fn();
    runs.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return +runs.sort((a, b) => a - b)[2].toFixed(2);
}

// A variable: eslint's no-invalid-regexp does not know the experimental flag.
const LINEAR_FLAG = 'l';
const engines = {
  'v8-linear': (src) => { const r = new RegExp(src, LINEAR_FLAG); return (s) => r.test(s); },
  're2js-test': (src) => { const r = RE2JS.compile(src); return (s) => r.test(s); },
  're2js-find': (src) => { const r = RE2JS.compile(src); return (s) => r.matcher(s).find(); },
};
if (RE2) engines['re2-wasm'] = (src) => { const r = new RE2(src, 'u'); return (s) => r.test(s); };
if (process.argv.includes('--backtrack')) engines['v8-backtrack'] = (src) => { const r = new RegExp(src); return (s) => r.test(s); };

for (const c of CASES) {
  for (const [engine, make] of Object.entries(engines)) {
    let out;
    try {
      const test = make(c.re);
      test('warm up');
      out = { case: c.name, bytes: c.text.length, engine, ms: time(() => test(c.text)) };
    } catch (err) {
      out = { case: c.name, engine, error: err.message };
    }
    console.log(JSON.stringify(out));
  }
}
