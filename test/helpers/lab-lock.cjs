/*
 * The lab lock: kernel audit (one audit pid, one rule list, enabled/backlog), dockerd and the loopback
 * ports are shared by everyone on a lab machine, so whatever drives them holds /tmp/credwatch-lab.lock.
 * Held by running `flock LOCK sh -c 'echo locked; exec cat'` with a pipe on stdin: the lock lasts until
 * the pipe is closed (release()) or this process dies (the pipe closes with it), never longer, and no
 * file descriptor of ours carries it into children.
 *
 * A caller that already holds the lock (`flock LOCK npx vitest ...`, `flock LOCK bash .ci/run`) is
 * seen in /proc/locks: the holder is one of our ancestors, and taking it again from a child would wait
 * for ever. CREDWATCH_LAB_LOCKED=1 (or the older CREDWATCH_BENCH_LOCKED=1) says so explicitly.
 *
 * Plain CommonJS so that the benchmarks (node, no TypeScript) and the tests share it.
 */
'use strict';
const fs = require('node:fs');
const { spawn } = require('node:child_process');

const LAB_LOCK = '/tmp/credwatch-lab.lock';

function heldByCaller(env = process.env, lockPath = LAB_LOCK) {
  return env.CREDWATCH_LAB_LOCKED === '1' || env.CREDWATCH_BENCH_LOCKED === '1' || holderIsAncestor(lockPath);
}

/** Whether a flock(2) on lockPath is held by this process or one of its ancestors. */
function holderIsAncestor(lockPath) {
  let inode;
  let locks;
  try {
    inode = fs.statSync(lockPath).ino;
    locks = fs.readFileSync('/proc/locks', 'utf8');
  } catch {
    return false; // no lock file yet (nobody holds it), or no /proc
  }
  const holders = new Set();
  // "1: FLOCK  ADVISORY  WRITE 15545 fe:00:2146590 0 EOF": the pid, then maj:min:inode.
  for (const line of locks.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === 'FLOCK' && Number(f[5]?.split(':')[2]) === inode) holders.add(Number(f[4]));
  }
  if (holders.size === 0) return false;
  for (let pid = process.pid; pid > 1; pid = parentOf(pid)) if (holders.has(pid)) return true;
  return false;
}

/** The parent pid from /proc/PID/stat (after the command name, which may hold spaces and parens), or 0. */
function parentOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) || 0;
  } catch {
    return 0;
  }
}

/** Resolves, once the lock is ours, to a function that gives it back. `lockPath` is for this file's tests. */
async function acquireLabLock(env = process.env, lockPath = LAB_LOCK) {
  if (heldByCaller(env, lockPath)) return () => {};
  const child = spawn('flock', [lockPath, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`flock ${lockPath} exited ${code} before taking the lock`)));
  });
  child.removeAllListeners('exit');
  return () => {
    child.stdin.end();
  };
}

module.exports = { LAB_LOCK, acquireLabLock, heldByCaller };
