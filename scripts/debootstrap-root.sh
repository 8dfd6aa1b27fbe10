#!/usr/bin/env bash
# Prints the path of a pristine minimal Debian root (debootstrap --variant=minbase: no Node.js, no
# compiler) packed as a tarball, building it once and caching it: debootstrap takes minutes, so the
# package tests and the offline image build reuse the tarball and unpack a fresh copy each time.
#
#   scripts/debootstrap-root.sh            # -> /var/tmp/credwatch-cache/debootstrap-bookworm-amd64.tar
#   CREDWATCH_CACHE=/some/dir scripts/debootstrap-root.sh
#
# The suite and mirror are this machine's own (VERSION_CODENAME in /etc/os-release, the first
# deb.debian.org-style URI in /etc/apt/sources.list*), so it needs no configuration and uses the
# mirror apt already uses. Needs root and the Debian package debootstrap.
set -euo pipefail

cache=${CREDWATCH_CACHE:-/var/tmp/credwatch-cache}
arch=$(dpkg --print-architecture)
# shellcheck disable=SC1091
suite=${DEBOOTSTRAP_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")}
out="$cache/debootstrap-$suite-$arch.tar"
if [[ -s "$out" ]]; then echo "$out"; exit 0; fi

mirror_from_apt_sources() {
  # deb822 (.sources: "URIs: http://deb.debian.org/debian") and one-line ("deb URI suite ...") forms;
  # the main archive is the one that carries $suite without a "-security" suffix.
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e "$f" ]] || continue
    awk -v s="$suite" '
      /^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
      /^$/ { if (ok && uri != "") { print uri; exit } ok = 0; uri = "" }
      END { if (ok && uri != "") print uri }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -e "$f" ]] || continue
    awk -v s="$suite" '$1 == "deb" { u = ($2 ~ /^\[/) ? $3 : $2; su = ($2 ~ /^\[/) ? $4 : $3; if (su == s) print u }' "$f"
  done
}
mirror=${DEBOOTSTRAP_MIRROR:-$(mirror_from_apt_sources | head -n1)}
[[ -n "$mirror" ]] || { echo "debootstrap-root: no apt source for suite $suite found in /etc/apt/sources.list*" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap-root: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/root.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "debootstrap-root: debootstrap --variant=minbase $suite from $mirror (cached as $out)" >&2
debootstrap --variant=minbase --arch="$arch" "$suite" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
# Package lists and downloaded .debs are not part of a node's root.
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
tar -C "$work/root" --numeric-owner -cf "$work/root.tar" .
mv "$work/root.tar" "$out"
echo "$out"
