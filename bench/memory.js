#!/usr/bin/env node
/*
 * Memory: the agent's RSS (default rules) after a long run at 1,600 exec/s (10 minutes; --quick: 1),
 * and around a burst of 100,000 events produced as fast as the machine can (unix connects: one
 * audited syscall each, no fork, so the burst is far faster than any exec load), with peak RSS, the
 * RSS once drained, how long draining took, and whether anything was lost.
 *
 *   node bench/memory.js [--minutes 10] [--burst 100000] [--quick] [--json]
 */
'use strict';
const fs = require('node:fs');
const L = require('./lib');
const { MIX, EXEC_SHARE } = require('./live-load');

const MiB = 2 ** 20;

async function main() {
  const quick = L.flag('--quick');
  const minutes = Number(L.arg('--minutes', quick ? '1' : '10'));
  const burst = Number(L.arg('--burst', '100000'));
  const execRate = Number(L.arg('--exec-rate', '1600'));
  const release = await L.acquireLock();
  const before = L.snapshotAuditState();
  const pod = L.createPodTokenVolume();
  const workDir = L.mkWorkDir('memory');
  let agent = null;
  try {
    agent = await L.startAgent({ workDir, podVolume: pod });
    await L.sleep(1000);
    const startRss = L.procStat(agent.pid).rssBytes;

    L.log(`memory: ${minutes} min at ${execRate} exec/s`);
    let m0 = await agent.metrics();
    let k0 = L.auditStatus();
    let rss = L.rssSampler(agent.pid, 1000);
    const gen = await L.runLoadgen({ opsRate: execRate / EXEC_SHARE, seconds: minutes * 60, workers: 1, open: pod.token, mix: MIX });
    await L.waitAgentDrained(agent);
    let m1 = await agent.metrics();
    const sustained = {
      minutes,
      execPerSec: gen.exec / gen.seconds,
      rssEndMiB: L.procStat(agent.pid).rssBytes / MiB,
      peakRssMiB: rss.stop() / MiB,
      kernelLost: L.auditStatus().lost - k0.lost,
      drops: L.dropsBetween(m0, m1),
      events: L.sumSeries(m1, 'credwatch_events_total', ['serial_gap']) - L.sumSeries(m0, 'credwatch_events_total', ['serial_gap']),
    };

    L.log(`memory: burst of ${burst} connects`);
    m0 = m1;
    k0 = L.auditStatus();
    rss = L.rssSampler(agent.pid, 100);
    const t0 = Date.now();
    const b = await L.runLoadgen({ opsRate: 0, seconds: 600, workers: 1, mix: '0:0:1', count: burst });
    const drainMs = await L.waitAgentDrained(agent);
    const peak = rss.stop();
    m1 = await agent.metrics();
    const afterBurst = {
      events: L.sumSeries(m1, 'credwatch_events_total', ['serial_gap']) - L.sumSeries(m0, 'credwatch_events_total', ['serial_gap']),
      generatorSecs: b.seconds,
      generatorRate: b.rate,
      secsToDrain: (Date.now() - t0) / 1000,
      drainMs,
      peakRssMiB: peak / MiB,
      rssAfterMiB: L.procStat(agent.pid).rssBytes / MiB,
      kernelLost: L.auditStatus().lost - k0.lost,
      drops: L.dropsBetween(m0, m1),
    };
    await L.sleep(5000);
    afterBurst.rssAfter5sMiB = L.procStat(agent.pid).rssBytes / MiB;
    await agent.stop();
    const result = { scenario: 'memory', startRssMiB: startRss / MiB, sustained, burst: { size: burst, ...afterBurst }, reader: agent.readerReport()?.reader ?? null, mix: MIX };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    if (agent) await agent.stop().catch((e) => L.log(String(e)));
    pod.cleanup();
    L.checkRestored(before, 'memory');
    release();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
