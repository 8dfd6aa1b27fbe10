'use strict';
/* global setInterval */
// A stand-in for the daemon's writer: inserts findings continuously through the built store (one
// small transaction every few ms) until killed. Prints "ready" once the first batch is committed.
const { openStore } = require('../../../dist/src/store');

const dbPath = process.argv[2];
const store = openStore(dbPath);
let n = 0;
function finding() {
  n++;
  const time = new Date().toISOString();
  return {
    id: `w${process.pid}-${n}`,
    rule: 'cw.writer',
    title: 'writer',
    description: '',
    severity: 'medium',
    score: 50,
    confidence: 'medium',
    covers: [],
    mitre: ['T1552.007'],
    time,
    host: 'writer-host',
    source: 'audit',
    indicators: [],
    process: null,
    container: null,
    kube: null,
    evidence: [{ event_id: `1.1:${n}`, time, role: 'x', records: [{ type: 'SYSCALL', text: 'x'.repeat(500) }] }],
  };
}
const report = process.env.CW_WRITER_REPORT === '1';
function tick() {
  const batch = [];
  for (let i = 0; i < 20; i++) batch.push(finding());
  store.insertFindings(batch);
  // With CW_WRITER_REPORT=1, say after each commit how many findings are committed (for kill tests).
  if (report) process.stdout.write(`committed ${n}\n`);
}
tick();
process.stdout.write('ready\n');
setInterval(tick, 2);
process.on('SIGTERM', () => {
  store.close();
  process.exit(0);
});
