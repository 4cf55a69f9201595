/**
 * CanvOS's kernel steps as RUN steps for the rootless executor. UPDATE_KERNEL=true (base-image, canvos.md §1.4 step
 * 6–7, amd64 only as there): ubuntu installs `linux-image-generic-hwe-$OS_VERSION` and runs `apt-get upgrade
 * --with-new-pkgs`, opensuse-leap runs `zypper refresh && zypper update -y`; then, for the newest kernel,
 * `/boot/vmlinuz` → `vmlinuz-<kver>`, `dracut -f /boot/initrd-<kver> <kver>` + `/boot/initrd` → `initrd-<kver>` (an
 * image without dracut fails the step, as in CanvOS; FIPS, which skips it, excludes UPDATE_KERNEL) and `depmod -a <kver>`. UPDATE_KERNEL=false's
 * `apt-mark hold` / `zypper al` belong to the base-image steps canvos-lite does not run for kairosified bases.
 * The kernel headers step (provider-image, canvos.md §1.5 step 2): for
 * kubeadm on ubuntu/amd64, or UPDATE_KERNEL=true on ubuntu, CanvOS copies the project's
 * `scripts/install-kernel-headers.sh` into the image and runs it; canvos-lite runs THAT script (its bytes are part
 * of the RUN cache key) under the interpreter of its `#!` line. Without the script (projects older than it), the
 * equivalent `apt-get install linux-headers-<kver>` runs for the newest kernel of /lib/modules (else /boot/vmlinuz-*).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CanvosError } from '../errors.js';
import type { RunStep } from '../dockerfile/evaluate.js';
import { canvosRunStep } from './run-step.js';
import type { BuildConfig } from './resolve.js';

/** The project file CanvOS runs for the kernel headers. */
export const KERNEL_HEADERS_SCRIPT = 'scripts/install-kernel-headers.sh';

/** Whether CanvOS installs kernel headers into the provider image for `c` (kubeadm on ubuntu/amd64, or UPDATE_KERNEL on ubuntu). */
export function kernelHeadersWanted(
  c: Pick<BuildConfig, 'k8sDistribution' | 'osDistribution' | 'arch' | 'updateKernel'>,
): boolean {
  return c.osDistribution === 'ubuntu' && ((c.k8sDistribution === 'kubeadm' && c.arch === 'amd64') || c.updateKernel);
}

/** The newest kernel version of the image (shell): /lib/modules, else /boot/vmlinuz-*; fails loudly when there is none. */
export const KVER_SHELL = [
  'kver=$(ls /lib/modules 2>/dev/null | sort -V | tail -n1)',
  '[ -n "$kver" ] || kver=$(ls /boot 2>/dev/null | sed -n "s/^vmlinuz-//p" | sort -V | tail -n1)',
  'if [ -z "$kver" ]; then echo "no kernel in /lib/modules or /boot/vmlinuz-*" >&2; exit 1; fi',
].join('; ');

/** The apt-get equivalent of the script, for projects without it. */
export const HEADERS_FALLBACK = `${KVER_SHELL}; if ls /usr/src 2>/dev/null | grep -q "linux-headers-$kver"; then echo "linux-headers-$kver already present"; else apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "linux-headers-$kver"; fi`;

/** The interpreter argv of a script's `#!` line (`/bin/sh` without one). */
function interpreter(script: string, file: string): string[] {
  const m = /^#!([^\n]*)/.exec(script);
  const words = m ? (m[1] ?? '').trim().split(/\s+/).filter(Boolean) : ['/bin/sh'];
  if (!words[0]?.startsWith('/')) {
    throw new CanvosError('ERR_CONFIG', `${file}:1: the #! line names no absolute interpreter`, {
      hint: "start the script with #!/bin/bash or #!/usr/bin/env bash, as CanvOS's",
    });
  }
  return words;
}

/** Whether CanvOS upgrades the kernel for `c` (UPDATE_KERNEL=true on ubuntu or opensuse-leap, amd64). */
export function kernelUpgradeWanted(c: Pick<BuildConfig, 'osDistribution' | 'arch' | 'updateKernel'>): boolean {
  return (
    c.updateKernel && c.arch === 'amd64' && (c.osDistribution === 'ubuntu' || c.osDistribution === 'opensuse-leap')
  );
}

/** The HWE kernel package CanvOS installs (`OS_VERSION=22` is written `22.04` in the package name). */
export const hweKernelPackage = (osVersion: string): string =>
  `linux-image-generic-hwe-${osVersion.includes('.') ? osVersion : `${osVersion}.04`}`;

/** After a kernel change: the /boot links, the initrd (dracut; its absence fails the step) and the module index. */
export const POST_KERNEL = [
  'set -e',
  KVER_SHELL,
  'if [ ! -e "/boot/vmlinuz-$kver" ]; then echo "UPDATE_KERNEL: /boot/vmlinuz-$kver is missing" >&2; exit 1; fi',
  'ln -sf "vmlinuz-$kver" /boot/vmlinuz',
  'if command -v dracut >/dev/null 2>&1; then dracut -f "/boot/initrd-$kver" "$kver"; ln -sf "initrd-$kver" /boot/initrd; else echo "UPDATE_KERNEL: dracut is not in the image, so /boot/initrd cannot be regenerated for $kver (CanvOS runs dracut here): add dracut to BASE_IMAGE" >&2; exit 1; fi',
  'depmod -a "$kver"',
].join('; ');

/** The kernel upgrade scripts of UPDATE_KERNEL=true, in order (none when CanvOS has none for the OS/arch). */
export function kernelUpgradeScripts(c: BuildConfig): string[] {
  if (!kernelUpgradeWanted(c)) return [];
  const upgrade =
    c.osDistribution === 'ubuntu'
      ? `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${hweKernelPackage(c.osVersion)} && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y --with-new-pkgs`
      : 'zypper refresh && zypper update -y';
  return [upgrade, POST_KERNEL];
}

/** The kernel RUN steps `c` switches on, in CanvOS's order: the UPDATE_KERNEL upgrade, then the headers step (project script or apt-get fallback). */
export async function kernelRunSteps(c: BuildConfig, projectDir: string): Promise<RunStep[]> {
  const steps = kernelUpgradeScripts(c).map((script, i) =>
    canvosRunStep(c, script, `UPDATE_KERNEL step ${i + 1}`, 'UPDATE_KERNEL'),
  );
  return [...steps, ...(await kernelHeadersSteps(c, projectDir))];
}

async function kernelHeadersSteps(c: BuildConfig, projectDir: string): Promise<RunStep[]> {
  if (!kernelHeadersWanted(c)) return [];
  const script = await readFile(join(projectDir, KERNEL_HEADERS_SCRIPT), 'utf8').catch((err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return undefined;
    throw new CanvosError('ERR_CONFIG', `${KERNEL_HEADERS_SCRIPT}: cannot read (${e.code ?? e.message})`, {
      hint: 'make the file readable, or remove it to install linux-headers-<kver> with apt-get',
    });
  });
  if (script === undefined) return [canvosRunStep(c, HEADERS_FALLBACK, 'kernel headers', 'kernel headers')];
  const argv = [...interpreter(script, KERNEL_HEADERS_SCRIPT), '-c', script, KERNEL_HEADERS_SCRIPT];
  const sum = createHash('sha256').update(script).digest('hex').slice(0, 16);
  return [
    canvosRunStep(
      c,
      argv,
      KERNEL_HEADERS_SCRIPT,
      'kernel headers',
      `${argv.slice(0, -3).join(' ')} ${KERNEL_HEADERS_SCRIPT} (sha256:${sum}…)`,
    ),
  ];
}
