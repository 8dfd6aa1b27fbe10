#!/usr/bin/env bash
# prepack / postpack: `npm pack` carries both native parts prebuilt, so `npm install -g ./credwatch-*.tgz`
# needs no compiler (and no network for binaries):
#   - the credwatch addon: an N-API prebuild in prebuilds/ (node-gyp-build loads it; our install
#     script then builds nothing);
#   - better-sqlite3 (bundleDependencies): its compiled .node copied where its loader (`bindings`)
#     looks, lib/binding/node-v<ABI>-<platform>-<arch>/ (lib/ is in its published files), and its
#     install script prefixed with a load test, so a binary that loads on the installing Node is
#     kept and only a different ABI falls back to its usual prebuild-install || node-gyp rebuild.
# The second change touches node_modules/better-sqlite3/package.json; `postpack` restores it.
#   scripts/npm-pack-natives.sh prepare | restore
set -euo pipefail
cd "$(dirname "$0")/.."
sq=node_modules/better-sqlite3
backup=$sq/package.json.credwatch-orig

case "${1:-}" in
  prepare)
    npm run --silent build:ts
    # shellcheck source=scripts/lib/prebuild.sh
    . scripts/lib/prebuild.sh
    build_prebuilds
    [[ -f $sq/build/Release/better_sqlite3.node ]] || { echo "npm-pack-natives: $sq is not built (npm ci first)" >&2; exit 1; }
    dest=$sq/lib/binding/node-v$(node -p process.versions.modules)-$(node -p process.platform)-$(node -p process.arch)
    mkdir -p "$dest"
    cp "$sq/build/Release/better_sqlite3.node" "$dest/"
    [[ -f $backup ]] || cp "$sq/package.json" "$backup"
    node -e '
      const fs = require("fs"), f = process.argv[1], p = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
      p.scripts.install = `node -e "require(\x27bindings\x27)(\x27better_sqlite3.node\x27)" 2>/dev/null || ${p.scripts.install}`;
      fs.writeFileSync(f, JSON.stringify(p, null, 2) + "\n");' "$sq/package.json" "$backup"
    ;;
  restore)
    if [[ -f $backup ]]; then mv "$backup" "$sq/package.json"; fi
    rm -rf "$sq/lib/binding"
    ;;
  *) echo "usage: $0 prepare|restore" >&2; exit 2 ;;
esac
