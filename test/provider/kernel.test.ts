/**
 * Which kernel steps a configuration switches on, and their scripts (the Debian e2e test, kernel.e2e.test.ts, runs
 * the ubuntu ones for real; zypper has no test system here, so its script is checked as text).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { parseArgText } from '../../src/provider/arg-file.js';
import { kernelRunSteps } from '../../src/provider/kernel.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'canvos-kernel-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const labels = async (arg: string, project = dir) =>
  (await kernelRunSteps(parseArgText(arg), project)).map((s) => s.label);

describe('kernel steps', () => {
  it('are switched on as in CanvOS: upgrade on ubuntu|opensuse-leap amd64, headers for kubeadm ubuntu/amd64 or UPDATE_KERNEL on ubuntu', async () => {
    expect(await labels('K8S_DISTRIBUTION=k3s\n')).toEqual([]);
    expect(await labels('K8S_DISTRIBUTION=kubeadm\n')).toEqual(['kernel headers']);
    expect(await labels('K8S_DISTRIBUTION=kubeadm\nARCH=arm64\n')).toEqual([]);
    expect(await labels('UPDATE_KERNEL=true\n')).toEqual([
      'UPDATE_KERNEL step 1',
      'UPDATE_KERNEL step 2',
      'kernel headers',
    ]);
    expect(await labels('UPDATE_KERNEL=true\nARCH=arm64\n')).toEqual(['kernel headers']); // CanvOS's upgrade steps are amd64-only
    expect(await labels('UPDATE_KERNEL=true\nOS_DISTRIBUTION=opensuse-leap\nOS_VERSION=15.6\n')).toEqual([
      'UPDATE_KERNEL step 1',
      'UPDATE_KERNEL step 2',
    ]);
  });

  it('ubuntu installs the HWE kernel of OS_VERSION (22 → 22.04); opensuse-leap runs zypper; both then relink, dracut, depmod', async () => {
    const [u22] = await kernelRunSteps(parseArgText('UPDATE_KERNEL=true\nOS_VERSION=22\n'), dir);
    expect(u22!.argv).toEqual([
      '/bin/sh',
      '-c',
      'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y linux-image-generic-hwe-22.04 && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y --with-new-pkgs',
    ]);
    const [zy, post] = await kernelRunSteps(
      parseArgText(
        'UPDATE_KERNEL=true\nOS_DISTRIBUTION=opensuse-leap\nOS_VERSION=15.6\nHTTP_PROXY=http://proxy.example:3128\n',
      ),
      dir,
    );
    expect(zy!.argv[2]).toBe('zypper refresh && zypper update -y');
    expect(zy!.env).toContain('http_proxy=http://proxy.example:3128');
    expect(post!.argv[2]).toMatch(
      /^set -e; kver=.*ln -sf "vmlinuz-\$kver" \/boot\/vmlinuz; if command -v dracut .*then dracut -f "\/boot\/initrd-\$kver" "\$kver"; ln -sf "initrd-\$kver" \/boot\/initrd; else .*; fi; depmod -a "\$kver"$/,
    );
    expect(post!.createdBy).toMatch(/# canvos-lite UPDATE_KERNEL$/);
  });

  it("runs the project's script under its #! interpreter; a #! without an absolute path is refused", async () => {
    const project = join(dir, 'p');
    await mkdir(join(project, 'scripts'), { recursive: true });
    await writeFile(join(project, 'scripts/install-kernel-headers.sh'), '#!/bin/bash -e\necho hi\n');
    const [st] = await kernelRunSteps(parseArgText('K8S_DISTRIBUTION=kubeadm\n'), project);
    expect(st!.label).toBe('scripts/install-kernel-headers.sh');
    expect(st!.argv).toEqual([
      '/bin/bash',
      '-e',
      '-c',
      '#!/bin/bash -e\necho hi\n',
      'scripts/install-kernel-headers.sh',
    ]);
    await writeFile(join(project, 'scripts/install-kernel-headers.sh'), '#!bash\necho hi\n');
    const e = await kernelRunSteps(parseArgText('K8S_DISTRIBUTION=kubeadm\n'), project).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CanvosError);
    expect((e as CanvosError).message).toBe(
      'scripts/install-kernel-headers.sh:1: the #! line names no absolute interpreter',
    );
  });
});
