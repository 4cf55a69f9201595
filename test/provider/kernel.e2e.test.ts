/**
 * UPDATE_KERNEL=true and the kernel headers step (CanvOS base-image §1.4 step 6, provider-image §1.5 step 2) through
 * the rootless executor, built by the CLI as the unprivileged user on a real Debian base. The Dockerfile installs an
 * old kernel (and a fixture dracut); UPDATE_KERNEL installs linux-image-generic-hwe-22.04 (depending on the new
 * kernel), upgrades, links /boot/vmlinuz and /boot/initrd to the new kernel, runs dracut and depmod for it. Then the project's
 * scripts/install-kernel-headers.sh runs in the image (its effects and marker land in a layer); without the script,
 * `apt-get install linux-headers-<kver>` runs for the newest kernel of /lib/modules. The kernels and headers come from
 * a local signed apt repository (Ubuntu's archive is out of reach here), installed by the project Dockerfile.
 */
import type { Server } from 'node:http';
import { mkdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDir, signedAptRepo, type FixtureDeb } from '../helpers/apt-repo.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir, umoci } from '../helpers/tools.js';
import { debianProject, giveToUnprivileged, unprivilegedCli } from './debian-project.js';

const OLD = '6.1.0-9-amd64';
const NEW = '6.1.0-10-amd64'; // newer by sort -V, older by plain sort
let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let server: Server;
let work = '';
let project = '';
let baseRef = '';

const kernelDebs = (kver: string): FixtureDeb[] => [
  {
    name: `linux-image-${kver}`,
    version: '6.1.1-1',
    depends: 'kmod',
    files: {
      [`boot/vmlinuz-${kver}`]: `vmlinuz ${kver}\n`,
      [`lib/modules/${kver}/modules.order`]: 'kernel/fs/fixture.ko\n',
    },
  },
  {
    name: `linux-headers-${kver}`,
    version: '6.1.1-1',
    files: { [`usr/src/linux-headers-${kver}/Makefile`]: `# headers ${kver}\n` },
  },
];

const SCRIPT = `#!/usr/bin/env bash
set -eu
kernel="$(printf '%s\\n' /lib/modules/* | xargs -n1 basename | sort -V | tail -1)"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y "linux-headers-\${kernel}"
echo "$kernel" > /etc/headers-by-project-script
`;

const cli = (args: string[]) => unprivilegedCli(work, project, args);

interface Built {
  dockerfileRuns: number;
  images: { appended: string[]; destination: string }[];
}

async function build(repo: string): Promise<Built> {
  const r = await cli([
    'build',
    '--push',
    '--json',
    '--insecure-registry',
    reg.host,
    '--set',
    'K8S_VERSION=1.30.4',
    '--set',
    `BASE_IMAGE=${baseRef}`,
    '--set',
    `IMAGE_REPO=${repo}`,
    '--set',
    'UPDATE_KERNEL=true',
  ]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Built;
}

/** The image's rootfs (umoci unpack) and its config history. */
async function unpack(image: string, name: string): Promise<{ root: string; history: string[] }> {
  const layout = join(tmp.path, `layout-${name}`);
  await skopeo(['copy', '--insecure-policy', '--src-tls-verify=false', image, `oci:${layout}:img`]);
  await umoci(['unpack', '--rootless', '--image', `${layout}:img`, join(tmp.path, `bundle-${name}`)]);
  const cfg = JSON.parse(await skopeo(['inspect', '--config', '--tls-verify=false', image])) as {
    history: { created_by: string }[];
  };
  return { root: join(tmp.path, `bundle-${name}/rootfs`), history: cfg.history.map((h) => h.created_by) };
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  reg = await startRegistry();
  tmp = await tmpDir('canvos-kernel-');
  const repo = join(tmp.path, 'www');
  await mkdir(repo);
  await signedAptRepo(repo, 'bookworm-kernel', [
    ...kernelDebs(OLD),
    ...kernelDebs(NEW),
    {
      name: 'linux-image-generic-hwe-22.04',
      version: '6.1.1-1',
      depends: `linux-image-${NEW}`,
      files: { 'usr/share/doc/linux-image-generic-hwe-22.04/README': 'hwe\n' },
    },
    // dracut as called by CanvOS (-f <initrd> <kver>): records its arguments in the initrd it writes.
    {
      name: 'fixture-dracut',
      version: '1',
      files: { 'usr/bin/dracut': '#!/bin/sh\n[ "$1" = -f ] || exit 2\necho "initrd of $3 ($*)" > "$2"\n' },
    },
  ]);
  let url: string;
  ({ server, url } = await serveDir(repo));
  const p = await debianProject(reg, join(tmp.path, 'fixtures'), 'canvos-kernel-');
  ({ baseRef, work, project } = p);
  await writeFile(join(project, 'canvos-kernel.asc'), await readFile(join(repo, 'key.asc')));
  await writeFile(
    join(project, 'Dockerfile'),
    [
      'ARG BASE',
      'FROM $BASE',
      'COPY canvos-kernel.asc /etc/apt/keyrings/canvos-kernel.asc',
      `RUN echo "deb [signed-by=/etc/apt/keyrings/canvos-kernel.asc] ${url}/ bookworm-kernel main" > /etc/apt/sources.list.d/kernel.list && apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y linux-image-${OLD} fixture-dracut`,
      '',
    ].join('\n'),
  );
  await mkdir(join(project, 'scripts'));
  await writeFile(join(project, 'scripts/install-kernel-headers.sh'), SCRIPT, { mode: 0o755 });
  await giveToUnprivileged(p);
}, 900_000);

afterAll(async () => {
  server?.close();
  await reg?.stop();
  await tmp?.cleanup();
  if (work) await run('rm', ['-rf', work]);
});

describe('UPDATE_KERNEL=true and kernel headers (ubuntu)', () => {
  it("upgrades the kernel (links, dracut, depmod), then runs the project's scripts/install-kernel-headers.sh", async () => {
    const out = await build('headers-script');
    expect(out.images[0]!.appended.slice(0, 5)).toEqual([
      'Dockerfile:3',
      'Dockerfile:4',
      'UPDATE_KERNEL step 1',
      'UPDATE_KERNEL step 2',
      'scripts/install-kernel-headers.sh',
    ]);
    expect(out.dockerfileRuns).toBe(4);
    const { root, history } = await unpack(out.images[0]!.destination, 'script');
    const status = await readFile(join(root, 'var/lib/dpkg/status'), 'utf8');
    for (const p of ['linux-image-generic-hwe-22.04', `linux-image-${NEW}`, `linux-image-${OLD}`, 'kmod'])
      expect(status).toMatch(new RegExp(`^Package: ${p}\\nStatus: install ok installed`, 'm'));
    expect(await readlink(join(root, 'boot/vmlinuz'))).toBe(`vmlinuz-${NEW}`);
    expect(await readlink(join(root, 'boot/initrd'))).toBe(`initrd-${NEW}`);
    expect(await readFile(join(root, `boot/initrd-${NEW}`), 'utf8')).toBe(
      `initrd of ${NEW} (-f /boot/initrd-${NEW} ${NEW})\n`,
    );
    expect(await exists(join(root, `boot/initrd-${OLD}`))).toBe(false);
    expect(await exists(join(root, `lib/modules/${NEW}/modules.dep`))).toBe(true); // depmod -a <kver>
    expect(await exists(join(root, `lib/modules/${OLD}/modules.dep`))).toBe(false);
    expect(history.filter((h) => h.endsWith('# canvos-lite UPDATE_KERNEL'))).toEqual([
      expect.stringMatching(
        /^RUN \/bin\/sh -c apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y linux-image-generic-hwe-22\.04 && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y --with-new-pkgs # /,
      ),
      expect.stringMatching(/^RUN \/bin\/sh -c set -e; kver=.* depmod -a "\$kver" # /),
    ]);
    expect(await readFile(join(root, 'etc/headers-by-project-script'), 'utf8')).toBe(`${NEW}\n`);
    expect(status).toMatch(new RegExp(`^Package: linux-headers-${NEW}\\nStatus: install ok installed`, 'm'));
    expect(status).not.toMatch(new RegExp(`^Package: linux-headers-${OLD}$`, 'm'));
    expect(await readFile(join(root, `usr/src/linux-headers-${NEW}/Makefile`), 'utf8')).toBe(`# headers ${NEW}\n`);
    expect(history.filter((h) => h.endsWith('# canvos-lite kernel headers'))).toEqual([
      expect.stringMatching(
        /^RUN \/usr\/bin\/env bash scripts\/install-kernel-headers\.sh \(sha256:[0-9a-f]{16}…\) # canvos-lite kernel headers$/,
      ),
    ]);
  }, 900_000);

  it('without the script, installs linux-headers-<newest kernel> with apt-get (the Dockerfile and UPDATE_KERNEL RUNs come from the cache)', async () => {
    await rm(join(project, 'scripts/install-kernel-headers.sh'));
    const out = await build('headers-apt');
    expect(out.images[0]!.appended.slice(0, 5)).toEqual([
      'Dockerfile:3',
      'Dockerfile:4',
      'UPDATE_KERNEL step 1',
      'UPDATE_KERNEL step 2',
      'kernel headers',
    ]);
    expect(out.dockerfileRuns).toBe(1);
    const { root } = await unpack(out.images[0]!.destination, 'apt');
    expect(await exists(join(root, 'etc/headers-by-project-script'))).toBe(false);
    expect(await readFile(join(root, `usr/src/linux-headers-${NEW}/Makefile`), 'utf8')).toBe(`# headers ${NEW}\n`);
    expect(await exists(join(root, `usr/src/linux-headers-${OLD}`))).toBe(false);
  }, 900_000);
});
