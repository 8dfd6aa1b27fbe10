#!/usr/bin/env bash
# Installs the real components the test suite runs against (Debian packages): auditd as a peer and
# reference, dockerd + runc for real containers, curl/socat/etcdctl/kubectl as attack tools, openssl
# for test certificates, strace for the auditctl byte-for-byte check, libc6-dev (libc.a) for the
# static io_uring reader the e2e lab runs inside a busybox pod, util-linux (nsenter) and procps
# (pgrep) for the alias scenarios; libaudit-dev (libaudit.h) for the generated-table check; dpkg-dev (dpkg-shlibdeps), debootstrap and lintian for the
# packaging tests (test/packaging); postgresql-15 for the collector's PostgreSQL store (the tests run
# its binaries from /usr/lib/postgresql/15/bin in a temp dir on a loopback port; the Debian cluster
# the package may create is not used). Idempotent; needs root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(auditd docker.io socat etcd-client busybox-static curl openssl iproute2 sqlite3 ca-certificates
      strace linux-libc-dev libaudit-dev libc6-dev util-linux procps gcc make dpkg-dev debootstrap lintian postgresql-15)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]} > 0)); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v kubectl >/dev/null || apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
