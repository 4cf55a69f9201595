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
    # The compiler and binutils that really ran (g++ is a metapackage), then the libraries.
    tools=("$(dpkg -S "$(readlink -f "$(command -v "$cxx")")" | cut -d: -f1)" "$(dpkg -S "$(readlink -f "$(command -v "$strip")")" | cut -d: -f1)")
    for p in "${tools[@]}" "${pkgs[@]:1}"; do echo "$p $(dpkg-query -W -f='${Version}' "$p")"; done; } >"$(dirname "$out")/BUILDINFO"
  echo "$(sha256sum "$out" | cut -d' ' -f1)  $(stat -c %s "$out") bytes  $out  ($(file -b "$out" | cut -d, -f1-2))"
done

# arm64: load the prebuild on Debian's arm64 Node under qemu-aarch64 (a sysroot of the .debs, not installed) and check
# that it compresses byte for byte like the x64 one. ARM64_ROOT keeps the sysroot (default native/build/arm64-node).
if [[ " ${ARCHES[*]} " == *" arm64 "* && -z "${PREBUILD_NO_QEMU:-}" ]]; then
  root="${ARM64_ROOT:-native/build/arm64-node}"
  if [ ! -x "$root/usr/bin/node" ]; then
    command -v qemu-aarch64-static >/dev/null || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
    debs="$(mktemp -d)"; chmod 755 "$debs"
    (cd "$debs" && apt-get download -q=2 nodejs:arm64 libnode108:arm64 libc6:arm64 libgcc-s1:arm64 libstdc++6:arm64 \
      libbrotli1:arm64 libc-ares2:arm64 libicu72:arm64 libnghttp2-14:arm64 libssl3:arm64 libuv1:arm64 zlib1g:arm64 \
      node-acorn node-cjs-module-lexer node-undici 2>/dev/null)
    mkdir -p "$root"; for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$root"; done; rm -rf "$debs"
  fi
  x64_out="${PREBUILD_DIR:-native/prebuilds}/linux-x64/node.napi.glibc.node"
  [ -f "$x64_out" ] || x64_out=native/prebuilds/linux-x64/node.napi.glibc.node
  want="$(node scripts/prebuild-check.cjs "$x64_out")"
  got="$(qemu-aarch64-static -L "$root" "$root/usr/bin/node" scripts/prebuild-check.cjs \
    "${PREBUILD_DIR:-native/prebuilds}/linux-arm64/node.napi.glibc.node")"
  if [ "$want" != "$got" ]; then
    diff <(echo "$want") <(echo "$got") >&2 || true
    echo "prebuild: the arm64 addon under qemu-aarch64 compresses differently from the x64 one (above)" >&2; exit 1
  fi
  echo "prebuild: arm64 addon loaded under qemu-aarch64 on Debian's arm64 Node; output identical to x64"
fi
