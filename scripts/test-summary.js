'use strict';
// Prints the suite's result as one plain line ("N passed, N failed, N skipped") from vitest's JSON
// report, so that CI logs end with a count a reader (or a machine) can take at a glance.
const fs = require('node:fs');
const path = require('node:path');

const file = path.join(__dirname, '..', '.vitest', 'results.json');
let report;
try {
  report = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`test-summary: cannot read ${file}: ${err.message}`);
  process.exit(1);
}
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
process.exit(report.numFailedTests > 0 || report.numPassedTests === 0 ? 1 : 0);
