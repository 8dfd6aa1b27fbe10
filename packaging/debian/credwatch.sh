#!/bin/sh
# credwatch launcher (Debian package): the packaged Node.js runtime, never whichever node is on PATH.
# The V8 flags are bin/credwatch's own (single-threaded GC, 4 MiB semi-spaces: see that file).
exec /usr/lib/credwatch/bin/node --single-threaded-gc --max-semi-space-size=4 /usr/lib/credwatch/bin/credwatch "$@"
