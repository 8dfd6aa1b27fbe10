#!/bin/bash
# Records a real auditd log on this machine for bench/replay-throughput.js: Debian auditd (ENRICHED
# format) with execve, openat (under /etc) and connect rules, while a workload execs programs, opens
# files and connects to loopback sockets for a few seconds. Output: .bench-data/replay-sample.log.
#
# Changes global audit state, so it takes the lab lock itself and puts everything back: deletes only
# its own rules (key credwatch:bench) by their text, stops auditd by pid, restores enabled and
# backlog_limit (raised during the recording so the burst is not lost).
#   sudo bench/replay-throughput-record.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-8}"
OUT_DIR="$PWD/.bench-data"
mkdir -p "$OUT_DIR"
exec 9>/tmp/credwatch-lab.lock
flock 9

WORK="$(mktemp -d /tmp/credwatch-bench-XXXXXX)"
mkdir -p "$WORK/plugins"
cat >"$WORK/auditd.conf" <<CONF
local_events = yes
write_logs = yes
log_file = $WORK/audit.log
log_group = root
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 100
max_log_file = 4000
num_logs = 1
max_log_file_action = IGNORE
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
q_depth = 20000
overflow_action = SYSLOG
plugin_dir = $WORK/plugins
end_of_event_timeout = 2
CONF
chmod 600 "$WORK/auditd.conf"

status() { auditctl -s | awk -v k="$1" '$1 == k { print $2 }'; }
ENABLED_BEFORE="$(status enabled)"
BACKLOG_BEFORE="$(status backlog_limit)"
LOST_BEFORE="$(status lost)"
RULES=(
  "always,exit -F arch=b64 -S execve -k credwatch:bench"
  "always,exit -F arch=b64 -S openat -F dir=/etc -k credwatch:bench"
  "always,exit -F arch=b64 -S connect -k credwatch:bench"
)
AUDITD_PID=""
cleanup() {
  for r in "${RULES[@]}"; do auditctl -d $r >/dev/null 2>&1 || true; done
  if [ -n "$AUDITD_PID" ]; then kill "$AUDITD_PID" 2>/dev/null || true; wait "$AUDITD_PID" 2>/dev/null || true; fi
  [ "$(status enabled)" != "$ENABLED_BEFORE" ] && auditctl -e "$ENABLED_BEFORE" >/dev/null
  [ "$(status backlog_limit)" != "$BACKLOG_BEFORE" ] && auditctl -b "$BACKLOG_BEFORE" >/dev/null
  true
}
trap cleanup EXIT

/usr/sbin/auditd -n -c "$WORK" &
AUDITD_PID=$!
for _ in $(seq 100); do [ "$(status pid)" = "$AUDITD_PID" ] && break; sleep 0.05; done
auditctl -b 16384 >/dev/null
for r in "${RULES[@]}"; do auditctl -a $r; done
auditctl -e 1 >/dev/null

# Workload: execs with varied argv, opens under /etc, TCP connects (refused and accepted) and unix connects.
END=$((SECONDS + SECONDS_TO_RUN))
i=0
while [ $SECONDS -lt $END ]; do
  /bin/true "bench-$i" "arg with space" >/dev/null
  cat /etc/hostname /etc/os-release >/dev/null
  (exec 3<>/dev/tcp/127.0.0.1/2375) 2>/dev/null || true
  (exec 3<>/dev/tcp/127.0.0.1/9) 2>/dev/null || true
  head -c 10 /etc/passwd >/dev/null
  i=$((i + 1))
done
for r in "${RULES[@]}"; do auditctl -d $r >/dev/null; done
kill "$AUDITD_PID"; wait "$AUDITD_PID" || true
AUDITD_PID=""
cp "$WORK/audit.log" "$OUT_DIR/replay-sample.log"
rm -rf "$WORK"
echo "recorded $(wc -l <"$OUT_DIR/replay-sample.log") lines, workload iterations $i, kernel lost $(( $(status lost) - LOST_BEFORE )) -> $OUT_DIR/replay-sample.log"
