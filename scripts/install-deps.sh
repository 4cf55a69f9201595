#!/usr/bin/env bash
# Installs the Debian packages canvos-lite's tests and benchmarks run against, when any is missing.
set -euo pipefail
PKGS=(docker-registry skopeo umoci xorriso squashfs-tools squashfs-tools-ng mtools dosfstools qemu-system-x86 ovmf
      busybox-static grub-efi-amd64-bin grub-pc-bin grub-common apache2-utils cpio libdeflate-dev libzstd-dev openssl
      shim-signed grub-efi-amd64-signed pigz time attr zstd uidmap mmdebstrap bubblewrap g++ make python3 file git ca-certificates gpg e2fsprogs gdisk fdisk qemu-utils
      efitools sbsigntool systemd-boot-efi swtpm libtss2-esys-3.0.2-0 libtss2-tcti-swtpm0)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Rootless tests run commands as this user (test/helpers/unprivileged.ts); useradd gives it a subordinate uid/gid
# range in /etc/subuid and /etc/subgid, which the rootless RUN executor maps in full with newuidmap/newgidmap.
if [ "$(id -u)" = 0 ] && ! getent passwd canvostest >/dev/null; then
  useradd --create-home --shell /bin/bash canvostest
fi
if [ "$(id -u)" = 0 ] && ! grep -q '^canvostest:' /etc/subuid 2>/dev/null; then
  echo 'canvostest:200000:65536' >> /etc/subuid
  echo 'canvostest:200000:65536' >> /etc/subgid
fi
