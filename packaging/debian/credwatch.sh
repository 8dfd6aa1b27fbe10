#!/bin/sh
# credwatch launcher (Debian package): the packaged Node.js runtime, never whichever node is on PATH.
# The V8 flags are bin/credwatch's own (single-threaded GC, 2 MiB semi-spaces, old-space growth 1.3x: see that file).
exec /usr/lib/credwatch/bin/node --single-threaded-gc --max-semi-space-size=2 --heap-growing-percent=30 /usr/lib/credwatch/bin/credwatch "$@"
