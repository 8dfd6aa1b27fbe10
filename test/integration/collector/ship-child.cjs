'use strict';
/**
 * The agent's shipping half in its own process, over a real SQLite outbox, so that a test can SIGKILL
 * it mid-batch. Runs the compiled code in dist/ (build first: npx tsc -p tsconfig.build.json).
 * Config comes as JSON in CW_SHIP_CHILD: { db, outputs, backoff }. Logs are pino JSON on stdout.
 */
const path = require('node:path');
const pino = require('pino');

const dist = path.resolve(__dirname, '../../../dist/src');
const { createShipper } = require(path.join(dist, 'ship/shipper.js'));
const { openStore } = require(path.join(dist, 'store/index.js'));

const cfg = JSON.parse(process.env.CW_SHIP_CHILD || '{}');
const store = openStore(cfg.db);
const logger = pino({ level: 'info' });
const shipper = createShipper({ outputs: cfg.outputs, outbox: store.outbox, host: 'node-a', agentId: 'agent-a', logger, backoff: cfg.backoff });
shipper.start();
logger.info('ship child started');

process.on('SIGTERM', () => {
  shipper.stop().then(() => {
    store.close();
    process.exit(0);
  });
});
