#!/usr/bin/env bash
# Builds the committed prebuilt addons native/prebuilds/linux-{x64,arm64}/node.napi.glibc.node (node-gyp-build's
# convention; N-API, so one file per architecture serves every Node version), statically linked against Debian's
# libdeflate.a and libzstd.a (their symbols kept local; libstdc++ stays dynamic like Node's own), stripped, without a build id
# and with source paths mapped, so the same Debian release rebuilds them byte for byte. arm64 uses Debian's cross
# compiler and the arm64 static libraries (multiarch). Run as root (or with sudo) on amd64 Debian 12 (bookworm):
#   bash scripts/prebuild.sh            # installs what it needs, builds both, prints their sha256
#   bash scripts/prebuild.sh x64        # one architecture
#   PREBUILD_DIR=/tmp/p bash scripts/prebuild.sh x64   # somewhere else (test/prebuilds.test.ts rebuilds and compares)
# Next to each binary, BUILDINFO records its sha256 and the Debian packages it was made from.
# Every install of one canvos-lite version loads these same bytes, so compressed layers get the same digests
# whether npm ran the install script or not (README "Native addon").
set -euo pipefail
cd "$(dirname "$0")/.."
ARCHES=("${@:-x64 arm64}")
read -r -a ARCHES <<<"${ARCHES[*]}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
[ "$(dpkg --print-architecture)" = amd64 ] || { echo "prebuild: run on an amd64 Debian host" >&2; exit 1; }

need=()
for a in "${ARCHES[@]}"; do
  case "$a" in
    x64) need+=(g++:amd64 libdeflate-dev:amd64 libzstd-dev:amd64) ;;
    arm64) need+=(g++-aarch64-linux-gnu libdeflate-dev:arm64 libzstd-dev:arm64) ;;
    *) echo "prebuild: unknown architecture '$a' (x64 or arm64)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [[ " ${missing[*]} " == *":arm64 "* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
  fi
  echo "prebuild: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# N-API's C headers are architecture-independent: Node's own (<prefix>/include/node) serve both targets.
NODE_INC="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node"
[ -f "$NODE_INC/node_api.h" ] || { echo "prebuild: $NODE_INC/node_api.h not found (Node's headers)" >&2; exit 1; }

for a in "${ARCHES[@]}"; do
  case "$a" in
    x64) triple=x86_64-linux-gnu; cxx=g++; strip=strip; pkgs=(g++:amd64 libdeflate-dev:amd64 libzstd-dev:amd64) ;;
    arm64) triple=aarch64-linux-gnu; cxx=aarch64-linux-gnu-g++; strip=aarch64-linux-gnu-strip
      pkgs=(g++-aarch64-linux-gnu libdeflate-dev:arm64 libzstd-dev:arm64) ;;
  esac
  out="${PREBUILD_DIR:-native/prebuilds}/linux-$a/node.napi.glibc.node"
  mkdir -p "$(dirname "$out")"
  "$cxx" -shared -fPIC -O2 -std=c++17 -fvisibility=hidden -DNAPI_VERSION=8 -DBUILDING_NODE_EXTENSION \
    -ffile-prefix-map="$PWD"=. -I"$NODE_INC" -o "$out" native/src/canvos_native.cc \
    "/usr/lib/$triple/libdeflate.a" "/usr/lib/$triple/libzstd.a" \
    -Wl,--exclude-libs,ALL -Wl,--gc-sections -Wl,--build-id=none -Wl,-z,noexecstack
  "$strip" --strip-all "$out"
  # Only Node's napi_* symbols may stay undefined besides glibc and libstdc++ (which Node itself links), and nothing
  # may need a glibc newer than Node 20's own minimum (2.28).
  syms="$(nm -D --undefined-only "$out" | awk '$1 == "U" {print $2}')"
  if grep -v '^napi_' <<<"$syms" | grep -vE '@(GLIBC|GLIBCXX|CXXABI|GCC)_' | grep .; then
    echo "prebuild: $out has unexpected undefined symbols (above)" >&2; exit 1
  fi
  if grep -E '@GLIBC_2\.(29|[3-9][0-9])' <<<"$syms"; then
    echo "prebuild: $out needs a glibc newer than 2.28 (above)" >&2; exit 1
  fi
  { echo "sha256 $(sha256sum "$out" | cut -d' ' -f1)"; echo "debian $(cut -d. -f1 /etc/debian_version)"
    for p in "${pkgs[@]}"; do echo "$p $(dpkg-query -W -f='${Version}' "$p")"; done; } >"$(dirname "$out")/BUILDINFO"
  echo "$(sha256sum "$out" | cut -d' ' -f1)  $(stat -c %s "$out") bytes  $out  ($(file -b "$out" | cut -d, -f1-2))"
done
