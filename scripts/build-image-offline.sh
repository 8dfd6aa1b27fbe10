#!/usr/bin/env bash
# Builds the credwatch container image with no registry: the cached debootstrap root
# (scripts/debootstrap-root.sh) plus the .deb, loaded with `docker import`. The result has the same
# layout as the Dockerfile's (Debian bookworm, the package installed, the same ENTRYPOINT/CMD).
#
#   scripts/build-image-offline.sh [dist/packages/credwatch_<version>_<arch>.deb] [image-name]
#
# Prints the image name (default credwatch:<version>). Needs root and a running dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(node -p 'require("./package.json").version')
deb=${1:-dist/packages/credwatch_${version}_$(dpkg --print-architecture).deb}
image=${2:-credwatch:$version}
[[ -f "$deb" ]] || { echo "build-image-offline: $deb not found (npm run package first)" >&2; exit 1; }

tarball=$(bash scripts/debootstrap-root.sh)
root=$(mktemp -d "${TMPDIR:-/tmp}/credwatch-image.XXXXXX")
trap 'rm -rf "$root"' EXIT
tar -C "$root" --numeric-owner -xf "$tarball"
cp "$deb" "$root/tmp/credwatch.deb"
chroot "$root" dpkg -i /tmp/credwatch.deb >"$root/tmp/dpkg.log" 2>&1 || { cat "$root/tmp/dpkg.log" >&2; exit 1; }
rm -f "$root/tmp/credwatch.deb" "$root/tmp/dpkg.log"
# Not part of an image: docs, man pages, locales and dpkg/apt caches.
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/var/cache/debconf/*-old \
  "$root"/var/log/*.log "$root"/var/lib/apt/lists/*
tar -C "$root" --numeric-owner -c . | docker import \
  --change 'ENTRYPOINT ["/usr/bin/credwatch"]' \
  --change 'CMD ["run", "--config", "/etc/credwatch/config.yaml"]' \
  --change 'ENV NODE_OPTIONS=--max-semi-space-size=4' \
  --change "LABEL org.opencontainers.image.title=credwatch org.opencontainers.image.version=$version" \
  - "$image" >/dev/null
echo "$image"
