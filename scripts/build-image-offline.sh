#!/usr/bin/env bash
# Builds the credwatch container image with no registry: the cached debootstrap root
# (scripts/debootstrap-root.sh) plus the .deb, loaded with `docker import`. The result has the same
# layout as the Dockerfile's (Debian bookworm, the package installed, the same ENTRYPOINT/CMD).
#
#   scripts/build-image-offline.sh [DEB] [IMAGE]         build and import (default credwatch:<version>)
#   scripts/build-image-offline.sh --save-tar FILE [DEB]  only write the image's root as a tarball
#   scripts/build-image-offline.sh --from-tar FILE [IMAGE] only import such a tarball
# The split lets tests build the root before dockerd runs and import it once it does.
# Prints the image name (or the tarball). Needs root; importing needs a running dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(node -p 'require("./package.json").version')
default_deb=dist/packages/credwatch_${version}_$(dpkg --print-architecture).deb
mode=build
if [[ "${1:-}" == --save-tar || "${1:-}" == --from-tar ]]; then mode=${1#--}; tar_file=${2:?$1 needs a file}; shift 2; fi

import_tar() {
  docker import \
    --change 'ENTRYPOINT ["/usr/bin/credwatch"]' \
    --change 'CMD ["run", "--config", "/etc/credwatch/config.yaml"]' \
    --change 'ENV NODE_OPTIONS=--max-semi-space-size=2' \
    --change "LABEL org.opencontainers.image.title=credwatch org.opencontainers.image.version=$version" \
    - "$1" >/dev/null
}

if [[ "$mode" == from-tar ]]; then
  image=${1:-credwatch:$version}
  import_tar "$image" <"$tar_file"
  echo "$image"
  exit 0
fi

deb=${1:-$default_deb}
[[ -f "$deb" ]] || { echo "build-image-offline: $deb not found (npm run package first)" >&2; exit 1; }
tarball=$(bash scripts/debootstrap-root.sh)
root=$(mktemp -d "${TMPDIR:-/tmp}/credwatch-image.XXXXXX")
trap 'rm -rf "$root"' EXIT
tar -C "$root" --numeric-owner -xf "$tarball"
cp "$deb" "$root/tmp/credwatch.deb"
chroot "$root" dpkg -i /tmp/credwatch.deb >"$root/tmp/dpkg.log" 2>&1 || { cat "$root/tmp/dpkg.log" >&2; exit 1; }
rm -f "$root/tmp/credwatch.deb" "$root/tmp/dpkg.log"
# Not part of an image: man pages, info, locales and logs.
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/var/log/*.log

if [[ "$mode" == save-tar ]]; then
  tar -C "$root" --numeric-owner -cf "$tar_file" .
  echo "$tar_file"
else
  image=${2:-credwatch:$version}
  tar -C "$root" --numeric-owner -c . | import_tar "$image"
  echo "$image"
fi
