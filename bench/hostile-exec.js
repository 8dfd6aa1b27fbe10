'use strict';
/**
 * Audit log text for one execve event with an argv the caller chooses, as the kernel writes it:
 * values holding a space, a quote or a byte outside 0x21..0x7e are hex-encoded, and an argument
 * longer than `splitAt` bytes is split into `aN_len=` + `aN[k]=` chunks across EXECVE records.
 * Used by bench/hostile-regex.js and the hostile-input tests to replay attacker-written command
 * lines through the real pipeline without running them.
 */

function needsHex(b) {
  for (const c of b) if (c < 0x21 || c > 0x7e || c === 0x22) return true;
  return false;
}

function encodeValue(b) {
  return needsHex(b) ? b.toString('hex').toUpperCase() : `"${b.toString('latin1')}"`;
}

/** @param {{argv: (string|Buffer)[], uid?: number, exe?: string, pid?: number, ppid?: number, ses?: number, serial?: number, splitAt?: number, timeSec?: number}} e */
function hostileExecLines(e) {
  const serial = e.serial ?? 1;
  const t = `${e.timeSec ?? 1795355553}.876:${serial}`;
  const uid = e.uid ?? 1000;
  const pid = e.pid ?? 40000 + serial;
  const exe = e.exe ?? '/usr/bin/true';
  const splitAt = e.splitAt ?? 7500;
  const comm = exe.slice(exe.lastIndexOf('/') + 1).slice(0, 15);
  const lines = [
    `type=SYSCALL msg=audit(${t}): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=${e.ppid ?? 1} pid=${pid} auid=${uid} uid=${uid} gid=${uid} euid=${uid} suid=${uid} fsuid=${uid} egid=${uid} sgid=${uid} fsgid=${uid} tty=pts0 ses=${e.ses ?? 3} comm="${comm}" exe="${exe}" key="credwatch:exec"`,
  ];
  let rec = `type=EXECVE msg=audit(${t}): argc=${e.argv.length}`;
  e.argv.forEach((arg, i) => {
    const b = Buffer.isBuffer(arg) ? arg : Buffer.from(arg, 'utf8');
    if (b.length <= splitAt) {
      // The kernel starts another EXECVE record when this one would pass its buffer (about 7.5 KB).
      const field = ` a${i}=${encodeValue(b)}`;
      if (rec.length + field.length > splitAt + 100) {
        lines.push(rec);
        rec = `type=EXECVE msg=audit(${t}):`;
      }
      rec += field;
      return;
    }
    lines.push(rec);
    rec = `type=EXECVE msg=audit(${t}): a${i}_len=${b.length}`;
    for (let k = 0, off = 0; off < b.length; k++, off += splitAt) {
      lines.push(rec);
      rec = `type=EXECVE msg=audit(${t}): a${i}[${k}]=${b.subarray(off, off + splitAt).toString('hex').toUpperCase()}`;
    }
  });
  lines.push(rec);
  lines.push(`type=CWD msg=audit(${t}): cwd="/home/user"`);
  lines.push(
    `type=PATH msg=audit(${t}): item=0 name="${exe}" inode=1 dev=fd:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`,
  );
  lines.push(`type=EOE msg=audit(${t}): `);
  return lines.join('\n') + '\n';
}

/** The security review's hostile command lines: name -> argv of about `bytes` bytes. */
const HOSTILE_CASES = {
  // h11's etcdctl regex had no program filter: any program's argument selects it.
  etcd: (bytes) => ({ exe: '/usr/bin/true', argv: ['/bin/true', 'etcdctl get '.repeat(Math.ceil(bytes / 12)).slice(0, bytes)] }),
  // h5: argv0 (attacker-chosen) selects the kubectl regex.
  kubectl: (bytes) => ({ exe: '/usr/bin/true', argv: ['kubectl', ...('get secrets '.repeat(Math.ceil(bytes / 12)).slice(0, bytes).split(' '))] }),
  kubectlOneArg: (bytes) => ({ exe: '/usr/bin/true', argv: ['kubectl', 'get ' + 'secrets '.repeat(Math.ceil(bytes / 8)).slice(0, bytes) + '-o'] }),
  tar: (bytes) => ({ exe: '/usr/bin/true', argv: ['tar', 'cf - '.repeat(Math.ceil(bytes / 5)).slice(0, bytes)] }),
};

/**
 * The 12.8 MB finding: bash started with `nArgs` arguments of `argBytes` bytes that are not
 * UTF-8 (each byte 0x80..0xff: a surrogate escape, six bytes once JSON-escaped), which runs
 * `kubectl exec` of a service-account token read with the same arguments. The kubectl event raises h2;
 * its argv, its parent's argv and its EXECVE record each carry the arguments.
 */
function bigNonUtf8ExecLines(nArgs = 300, argBytes = 4096, serial = 1) {
  const junk = (seed) => Array.from({ length: nArgs }, (_, i) => {
    const b = Buffer.alloc(argBytes);
    for (let k = 0; k < argBytes; k++) b[k] = 0x80 + ((k * 31 + i * 7 + seed) % 128);
    return b;
  });
  const bashPid = 41000 + serial;
  return (
    hostileExecLines({ serial, pid: bashPid, exe: '/usr/bin/bash', argv: ['bash', ...junk(1)] }) +
    hostileExecLines({
      serial: serial + 1,
      pid: bashPid + 1,
      ppid: bashPid,
      exe: '/usr/local/bin/kubectl',
      argv: ['kubectl', 'exec', 'web-0', '--', 'cat', '/var/run/secrets/kubernetes.io/serviceaccount/token', ...junk(2)],
    })
  );
}

module.exports = { hostileExecLines, HOSTILE_CASES, bigNonUtf8ExecLines };
