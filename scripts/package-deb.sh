#!/usr/bin/env bash
# `npm run package`: builds dist/packages/credwatch_<version>_<arch>.deb with dpkg-deb, offline.
#
# The package is self-contained so that a node needs neither Node.js nor a compiler:
#   /usr/lib/credwatch/bin/node      this machine's Node.js binary (the agent's own runtime; its
#                                    LICENSE goes to /usr/share/doc/credwatch/)
#   /usr/lib/credwatch/              the built JavaScript, the addon prebuilt with prebuildify --napi
#                                    (prebuilds/, found by node-gyp-build), the production
#                                    node_modules (better-sqlite3 reduced to its lib/ and .node)
#   /usr/bin/credwatch               launcher: the packaged node, bin/credwatch's V8 flags
#   /lib/systemd/system/             both units from systemd/
#   /etc/credwatch/config.yaml       systemd/config.example.yaml, a conffile, 0600
# Depends: what dpkg-shlibdeps finds for the ELF files shipped. Maintainer scripts: packaging/debian/.
# Needs dpkg-dev (dpkg-shlibdeps) and the node headers for prebuildify (npm_config_nodedir, default /usr).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

node_bin=${CREDWATCH_NODE:-$(readlink -f "$(command -v node)")}
version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
out_dir=$root/dist/packages
maintainer=${CREDWATCH_MAINTAINER:-credwatch maintainers <maintainers@credwatch.dev>}
deb=$out_dir/credwatch_${version}_${arch}.deb

echo "package: building JavaScript and the N-API prebuild" >&2
npm run --silent build:ts
# shellcheck source=scripts/lib/prebuild.sh
. scripts/lib/prebuild.sh
build_prebuilds

work=$(mktemp -d "${TMPDIR:-/tmp}/credwatch-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
pkg=$work/pkg
lib=$pkg/usr/lib/credwatch
install -d "$lib/bin" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/credwatch" \
  "$pkg/usr/share/doc/credwatch" "$pkg/DEBIAN"

# --- the application -------------------------------------------------------------------------
cp -a package.json binding.gyp dist prebuilds "$lib/"
rm -rf "$lib/dist/packages" "$lib/dist/test"
# Run by the launcher as `node bin/credwatch`, never executed itself (its shebang names PATH's node).
install -m 0644 bin/credwatch "$lib/bin/credwatch"
install -m 0755 "$node_bin" "$lib/bin/node"
strip --strip-unneeded "$lib/bin/node"

# Production dependency closure only (npm's own resolution), as laid out in node_modules.
npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | while read -r dir; do
  rel=${dir#"$root"/}
  mkdir -p "$lib/$(dirname "$rel")"
  cp -a "$dir" "$lib/$rel"
done
# Build-time only: node-addon-api is C++ headers; better-sqlite3's sources and objects are not needed
# beside its compiled .node (found by `bindings` in build/Release).
sq=$lib/node_modules/better-sqlite3
rm -rf "$lib/node_modules/node-addon-api" "$sq/deps" "$sq/src" "$sq/binding.gyp"
find "$sq/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
find "$sq/build/Release" -mindepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
[[ -f "$sq/build/Release/better_sqlite3.node" ]] || { echo "package: better-sqlite3 has no build/Release/better_sqlite3.node (npm ci first)" >&2; exit 1; }
strip --strip-unneeded "$sq/build/Release/better_sqlite3.node"
# Tests, docs and type declarations of dependencies are not needed at run time.
find "$lib/node_modules" \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.map' -o -name '*.md' -o -name '*.markdown' -o -name '*.html' \) -type f -delete
# Nothing in there is executed directly (the packaged node loads it all): no exec bits, so no
# `#!/usr/bin/env node` script could ever pick up another runtime. Addons are loaded, not run: 0644.
find "$lib/node_modules" "$lib/dist" "$lib/prebuilds" -type f -exec chmod 0644 {} +
find "$lib/node_modules" -depth -type d \( -name test -o -name tests -o -name docs -o -name example -o -name examples -o -name .github -o -name .husky \) -exec rm -rf {} +
find "$lib" -name '.*' -type f -delete
find "$lib" -type d -empty -delete

# --- launcher, units, configuration, docs ----------------------------------------------------
install -m 0755 packaging/debian/credwatch.sh "$pkg/usr/bin/credwatch"
install -m 0644 systemd/credwatch.service systemd/credwatch-collector.service "$pkg/lib/systemd/system/"
install -m 0600 systemd/config.example.yaml "$pkg/etc/credwatch/config.yaml"
chmod 0700 "$pkg/etc/credwatch"
install -m 0644 README.md SECURITY.md "$pkg/usr/share/doc/credwatch/"
gzip -9n "$pkg/usr/share/doc/credwatch/README.md"
node_license=$(dirname "$(dirname "$node_bin")")/share/doc/nodejs/LICENSE
[[ -f "$node_license" ]] || { echo "package: no Node.js LICENSE at $node_license (CREDWATCH_NODE from a different layout?)" >&2; exit 1; }
install -m 0644 "$node_license" "$pkg/usr/share/doc/credwatch/LICENSE.nodejs"
# Known and accepted, see packaging/debian/lintian-overrides.
install -D -m 0644 packaging/debian/lintian-overrides "$pkg/usr/share/lintian/overrides/credwatch"
{
  echo 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/'
  echo 'Upstream-Name: credwatch'
  echo
  echo 'Files: *'
  echo 'Copyright: the credwatch authors'
  echo 'License: Apache-2.0'
  echo ' On Debian systems the full text of the Apache License 2.0 is in'
  echo ' /usr/share/common-licenses/Apache-2.0.'
  echo
  echo 'Files: usr/lib/credwatch/bin/node'
  echo 'Copyright: Node.js contributors and the authors of the libraries it bundles'
  echo "Comment: Node.js $("$node_bin" --version), copied from $node_bin; licence text follows."
  echo 'License: MIT and others'
  echo ' Node.js is MIT-licensed; it bundles libraries under their own licences. The full text'
  echo ' is in /usr/share/doc/credwatch/LICENSE.nodejs.'
  echo
  echo 'Files: usr/lib/credwatch/node_modules/*'
  echo 'License: various (MIT, ISC, Apache-2.0, BSD); each module carries its own LICENSE file.'
} >"$pkg/usr/share/doc/credwatch/copyright"
chmod 0644 "$pkg/usr/share/doc/credwatch/copyright"
{
  echo "credwatch ($version) unstable; urgency=medium"
  echo
  echo "  * Packaged by scripts/package-deb.sh from $(git rev-parse --short HEAD 2>/dev/null || echo 'a source tree')."
  echo
  echo " -- $maintainer  $(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n >"$pkg/usr/share/doc/credwatch/changelog.gz"

# --- control -----------------------------------------------------------------------------------
echo "/etc/credwatch/config.yaml" >"$pkg/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "packaging/debian/$s" "$pkg/DEBIAN/$s"; done
mapfile -t elves < <(find "$pkg" -type f \( -name '*.node' -o -path '*/bin/node' \))
mkdir -p "$work/shlib/debian"
printf 'Source: credwatch\n\nPackage: credwatch\nArchitecture: any\n' >"$work/shlib/debian/control"
depends=$(cd "$work/shlib" && dpkg-shlibdeps -O "${elves[@]/#/-e}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[[ -n "$depends" ]] || { echo "package: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size_kb=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: credwatch
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size_kb
Depends: $depends
Section: admin
Priority: optional
Homepage: https://github.com/credwatch/credwatch
Description: detector of container-API credential theft (MITRE ATT&CK T1552.007)
 credwatch reads the kernel audit stream over netlink, reassembles and enriches
 events with the process tree and the container and pod they come from, scores
 them against rules for container-API credential theft, stores findings in
 SQLite and ships them over HTTPS. It also reads Kubernetes API-server audit
 logs. The package carries its own Node.js runtime and prebuilt native addons.
CONTROL

mkdir -p "$out_dir"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "package: $deb ($(du -h "$deb" | cut -f1); installed $((size_kb / 1024)) MiB; Depends: $depends)" >&2
echo "$deb"
