/**
 * The Kairos-like installer image of bench/iso.mjs, built once into $CANVOS_BENCH_CACHE (default
 * ~/.cache/canvos-lite-bench) as an OCI layout keyed by its inputs: layer 1 is exec.mjs's mmdebstrap Debian bookworm
 * rootfs (full: minbase + gcc-12, g++-12, libllvm15, python3, perl, git, ~707 MB; quick: minbase, ~170 MB), layer 2
 * the Kairos boot files where `iso --base` looks for them: /boot/vmlinuz-<kver> (Debian's current kernel package,
 * never installed) linked from /boot/vmlinuz, /boot/initrd (a gzip'd tar of the kernel's storage and USB drivers,
 * standing in for a dracut initramfs of realistic size), the host's signed shim and grub, /etc/kairos-release. Both
 * layers are gzip'd with `pigz -n -6` (deterministic).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { baseTar } from '../exec.mjs';
import { writeJsonBlob } from './layout.mjs';

const VERSION = 'iso-image-v1';
const EPOCH = 1_700_000_000;
const SHIM_FILES = [
  'usr/lib/shim/shimx64.efi.signed',
  'usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed',
  'usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed',
];

export const cacheDir = () => process.env.CANVOS_BENCH_CACHE ?? join(homedir(), '.cache', 'canvos-lite-bench');
const sh = (script, cwd) =>
  execFileSync('bash', ['-o', 'pipefail', '-c', script], { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
const sha256File = (f) => execFileSync('sha256sum', [f]).toString().split(' ')[0];

/** Debian's current kernel package, downloaded (once) and unpacked in the cache; {root, kver}. */
function kernelTree(cache) {
  const m = /Depends:\s*(linux-image-[0-9]\S*)/.exec(
    execFileSync('apt-cache', ['depends', 'linux-image-amd64']).toString(),
  );
  if (!m) throw new Error('apt-cache depends linux-image-amd64 names no kernel package');
  const pkg = m[1];
  const kver = pkg.replace(/^linux-image-/, '');
  const root = join(cache, `${pkg}.extracted`);
  if (existsSync(join(root, 'boot', `vmlinuz-${kver}`))) return { root, kver };
  if (!readdirSync(cache).some((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))) {
    execFileSync('apt-get', ['download', '-q', pkg], { cwd: cache, stdio: 'ignore' });
  }
  const deb = readdirSync(cache).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  rmSync(`${root}.part`, { recursive: true, force: true });
  execFileSync('dpkg-deb', ['-x', join(cache, deb), `${root}.part`]);
  renameSync(`${root}.part`, root);
  return { root, kver };
}

/** Layer 2's tree in `dir`: kernel, initrd, shim/grub, kairos-release. */
function bootTree(dir, { root, kver }) {
  mkdirSync(join(dir, 'boot'), { recursive: true });
  mkdirSync(join(dir, 'etc'), { recursive: true });
  execFileSync('cp', [join(root, 'boot', `vmlinuz-${kver}`), join(dir, 'boot')]);
  execFileSync('ln', ['-s', `vmlinuz-${kver}`, join(dir, 'boot', 'vmlinuz')]);
  const drivers = ['ata', 'scsi', 'cdrom', 'block', 'usb', 'nvme', 'md'].map(
    (d) => `lib/modules/${kver}/kernel/drivers/${d}`,
  );
  sh(
    `tar --sort=name --mtime=@${EPOCH} --owner=0 --group=0 -cf - ${drivers.join(' ')} | pigz -n -6 > '${join(dir, 'boot', 'initrd')}'`,
    root,
  );
  for (const f of SHIM_FILES) {
    if (!existsSync(`/${f}`)) continue;
    mkdirSync(join(dir, f, '..'), { recursive: true });
    execFileSync('cp', [`/${f}`, join(dir, f)]);
  }
  writeFileSync(
    join(dir, 'etc', 'kairos-release'),
    'KAIROS_ARCH="amd64"\nKAIROS_FLAVOR="debian"\nKAIROS_VERSION="v0.0.0-bench"\n',
  );
}

/**
 * The OCI layout (tag `base`) of the bench image, built when missing; resolves {layout, rootfsBytes}. Building the
 * full size needs deb.debian.org (mmdebstrap as the unprivileged test user, see exec.mjs) the first time.
 */
export async function isoImage(quick, log) {
  const cache = cacheDir();
  mkdirSync(cache, { recursive: true });
  const tar = await baseTar(quick, log);
  const kernel = kernelTree(cache);
  const key = createHash('sha256')
    .update(
      [
        VERSION,
        tar,
        statSync(tar).size,
        kernel.kver,
        ...SHIM_FILES.map((f) => (existsSync(`/${f}`) ? sha256File(`/${f}`) : '-')),
      ].join('\n'),
    )
    .digest('hex')
    .slice(0, 12);
  const layout = join(cache, `iso-image-${key}`);
  if (!existsSync(join(layout, 'index.json'))) {
    log(`building the bench image layout ${layout}…`);
    const part = `${layout}.part`;
    rmSync(part, { recursive: true, force: true });
    const blobs = join(part, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    const tree = join(part, 'boot-tree');
    bootTree(tree, kernel);
    const layers = [];
    const diffIds = [];
    const addLayer = (tarCmd) => {
      const tmpGz = join(part, 'layer.tar.gz');
      sh(`${tarCmd} | pigz -n -6 > '${tmpGz}'`);
      const diff = sh(`pigz -dc '${tmpGz}' | sha256sum`).toString().split(' ')[0];
      const digest = sha256File(tmpGz);
      const size = statSync(tmpGz).size;
      renameSync(tmpGz, join(blobs, digest));
      layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${digest}`, size });
      diffIds.push(`sha256:${diff}`);
    };
    addLayer(`cat '${tar}'`);
    addLayer(`tar -C '${tree}' --sort=name --mtime=@${EPOCH} --owner=0 --group=0 --numeric-owner -cf - boot etc usr`);
    rmSync(tree, { recursive: true, force: true });
    const config = await writeJsonBlob(part, 'application/vnd.oci.image.config.v1+json', {
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: diffIds },
    });
    const manifest = await writeJsonBlob(part, 'application/vnd.oci.image.manifest.v1+json', {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config,
      layers,
    });
    writeFileSync(join(part, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const ref = { 'org.opencontainers.image.ref.name': 'base' };
    const desc = { ...manifest, annotations: ref };
    writeFileSync(join(part, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [desc] }));
    renameSync(part, layout);
  }
  return { layout, rootfsBytes: statSync(tar).size };
}
