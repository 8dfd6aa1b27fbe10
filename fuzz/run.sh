#!/bin/sh
# Coverage-guided fuzzing of the native reader's parsing (fuzz/netlink_fuzz.cc) with libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer. (batch.h pulls in errors.h, hence the N-API include
# paths; nothing from N-API is called or linked.)
#   apt-get install clang        # Debian: clang 14 ships libFuzzer (libclang-rt-14-dev)
#   fuzz/run.sh [SECONDS]        # default 180; crashes land in fuzz/artifacts/
#   FUZZ_TARGET=triage fuzz/run.sh [SECONDS]   # the reader's triage (fuzz/triage_fuzz.cc)
#   FUZZ_TARGET=replay fuzz/run.sh [SECONDS]   # replay --events in C++ (fuzz/replay_fuzz.cc)
# The seed corpus is made from real records (test/fixtures/audit) wrapped as netlink datagrams.
set -eu
cd "$(dirname "$0")"
SECONDS_TO_RUN="${1:-180}"
OUT="${FUZZ_OUT:-/tmp/credwatch-fuzz}"
mkdir -p "$OUT/corpus" artifacts
CXX="${CXX:-clang++}"
if [ "${FUZZ_TARGET:-netlink}" = replay ]; then
  mkdir -p "$OUT/replay-corpus"
  "$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -o "$OUT/replay_fuzz" replay_fuzz.cc ../native/replay_events.cc
  # Seeds: pieces of the recorded logs (up to 16 KiB each), the first byte choosing the chunk size.
  python3 - "$OUT/replay-corpus" <<'PY'
import glob, os, sys
out = sys.argv[1]
n = 0
for f in sorted(glob.glob('../test/fixtures/**/*.log', recursive=True)):
    data = open(f, 'rb').read()
    for at in range(0, min(len(data), 65536), 16384):
        open(os.path.join(out, 'seed%04d' % n), 'wb').write(bytes([n % 256]) + data[at:at + 16384])
        n += 1
PY
  exec "$OUT/replay_fuzz" -max_total_time="$SECONDS_TO_RUN" -max_len=70000 -artifact_prefix=artifacts/ -print_final_stats=1 "$OUT/replay-corpus"
fi
if [ "${FUZZ_TARGET:-netlink}" = triage ]; then
  mkdir -p "$OUT/triage-corpus"
  "$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I../node_modules/node-addon-api -I/usr/include/node -DNAPI_VERSION=8 \
    -o "$OUT/triage_fuzz" triage_fuzz.cc ../native/triage.cc ../native/record_fields.cc
  # Seeds: each fixture event's records, one per line, the first byte choosing the record type.
  python3 - "$OUT/triage-corpus" <<'PY'
import glob, os, re, sys
out = sys.argv[1]
codes = {b'SYSCALL': 0, b'EXECVE': 1, b'CWD': 2, b'SOCKADDR': 3, b'PATH': 4, b'PROCTITLE': 5, b'EOE': 6, b'BPRM_FCAPS': 7}
events, n = {}, 0
for f in sorted(glob.glob('../test/fixtures/behaviours/*.log')):
    for line in open(f, 'rb').read().split(b'\n'):
        m = re.match(rb'(?:node=\S+ )?type=(\S+) msg=(audit\([0-9.]+:(\d+)\).*)', line)
        if m and m.group(1) in codes:
            events.setdefault((f, m.group(3)), []).append(bytes([codes[m.group(1)]]) + m.group(2))
for recs in list(events.values())[:400]:
    stamp = re.match(rb'.(audit\([0-9.:]+\):)', recs[0]).group(1)
    open(os.path.join(out, 'seed%04d' % n), 'wb').write(b'\n'.join(recs + [bytes([6]) + stamp]))
    n += 1
PY
  exec "$OUT/triage_fuzz" -max_total_time="$SECONDS_TO_RUN" -max_len=70000 -artifact_prefix=artifacts/ -print_final_stats=1 "$OUT/triage-corpus"
fi
"$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I../node_modules/node-addon-api -I/usr/include/node -DNAPI_VERSION=8 \
  -o "$OUT/netlink_fuzz" netlink_fuzz.cc ../native/surrogate_escape.cc
# Seeds: byte 0 = sender 0, bytes 1-2 = not truncated, then nlmsghdr (len, type, flags, seq, pid) + text.
if [ -z "$(ls -A "$OUT/corpus")" ]; then
  python3 - "$OUT/corpus" <<'PY'
import glob, os, re, struct, sys
out = sys.argv[1]
n = 0
for f in sorted(glob.glob('../test/fixtures/audit/**/*.log', recursive=True)):
    for line in open(f, 'rb').read().split(b'\n'):
        m = re.match(rb'(?:node=\S+ )?type=\S+ msg=(audit\(.*)', line)
        if not m or n >= 400:
            continue
        text = m.group(1) + b'\0'
        hdr = struct.pack('=IHHII', 16 + len(text), 1300, 0, 0, 0)
        open(os.path.join(out, 'seed%04d' % n), 'wb').write(b'\0\0\0' + hdr + text)
        n += 1
PY
fi
exec "$OUT/netlink_fuzz" -max_total_time="$SECONDS_TO_RUN" -max_len=70000 -artifact_prefix=artifacts/ -print_final_stats=1 "$OUT/corpus"
