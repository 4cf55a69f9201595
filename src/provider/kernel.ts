/**
 * CanvOS's kernel headers step (provider-image, canvos.md §1.5 step 2) as RUN steps for the rootless executor. For
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
import { canvosRunStep } from './exec-steps.js';
import type { BuildConfig } from './resolve.js';

/** The project file CanvOS runs for the kernel headers. */
export const KERNEL_HEADERS_SCRIPT = 'scripts/install-kernel-headers.sh';

/** Whether CanvOS installs kernel headers into the provider image for `c` (kubeadm on ubuntu/amd64, or UPDATE_KERNEL on ubuntu). */
export function kernelHeadersWanted(c: Pick<BuildConfig, 'k8sDistribution' | 'osDistribution' | 'arch' | 'updateKernel'>): boolean {
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
  const words = m ? m[1]!.trim().split(/\s+/).filter(Boolean) : ['/bin/sh'];
  if (!words.length || !words[0]!.startsWith('/')) {
    throw new CanvosError('ERR_CONFIG', `${file}:1: the #! line names no absolute interpreter`, { hint: 'start the script with #!/bin/bash or #!/usr/bin/env bash, as CanvOS\'s' });
  }
  return words;
}

/** The kernel RUN steps `c` switches on: none, or the headers step (project script or apt-get fallback). */
export async function kernelRunSteps(c: BuildConfig, projectDir: string): Promise<RunStep[]> {
  if (!kernelHeadersWanted(c)) return [];
  const script = await readFile(join(projectDir, KERNEL_HEADERS_SCRIPT), 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new CanvosError('ERR_CONFIG', `${KERNEL_HEADERS_SCRIPT}: cannot read (${e.code ?? e.message})`, { hint: 'make the file readable, or remove it to install linux-headers-<kver> with apt-get' });
  });
  if (script === undefined) return [canvosRunStep(c, HEADERS_FALLBACK, 'kernel headers', 'kernel headers')];
  const argv = [...interpreter(script, KERNEL_HEADERS_SCRIPT), '-c', script, KERNEL_HEADERS_SCRIPT];
  const sum = createHash('sha256').update(script).digest('hex').slice(0, 16);
  return [canvosRunStep(c, argv, `${KERNEL_HEADERS_SCRIPT}`, 'kernel headers', `${argv.slice(0, -3).join(' ')} ${KERNEL_HEADERS_SCRIPT} (sha256:${sum}…)`)];
}
