# shellcheck shell=bash
# build_prebuilds: the addon as an N-API prebuild in prebuilds/<platform>-<arch>/ (one build for
# every Node >= 20), which node-gyp-build loads when there is no build/Release. Shared by the .deb
# build and `npm pack` (prepack). The headers come from npm_config_nodedir (Debian's nodejs ships
# them under /usr/include/node), so no download happens.
build_prebuilds() {
  export npm_config_nodedir=${npm_config_nodedir:-/usr}
  local log
  log=$(mktemp)
  npx --no-install prebuildify --napi --strip >"$log" 2>&1 || { tail -n 40 "$log" >&2; rm -f "$log"; return 1; }
  rm -f "$log"
  local n
  n=$(find prebuilds -name '*.node' -type f | wc -l)
  [[ "$n" -gt 0 ]] || { echo "prebuild: prebuildify produced no .node under prebuilds/" >&2; return 1; }
}
