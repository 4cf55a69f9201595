/**
 * A bootable Kairos-shaped base image for ISO boot tests, from Debian packages only: the current Debian kernel
 * (apt-get download + dpkg-deb -x, never installed), a busybox initramfs (newc cpio written here) whose /init
 * emulates dracut's `root=live:CDLABEL=…`, prints CANVOS-TEST markers on ttyS0 and powers off, packaged as an
 * OCI image layout. Cached in $CANVOS_TEST_CACHE or ~/.cache/canvos-lite-test (built in a temp dir, renamed).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildLayer } from '../../src/layers/build.js';
import type { FsEntry } from '../../src/tar/entry.js';
import { mergeLayers, type LayerOpener } from '../../src/layers/merge.js';
import { run } from './tools.js';

/** What {@link prepareBootFixture} provides. */
export interface BootFixture {
  /** Kernel release, e.g. 6.1.0-56-amd64. */
  kver: string;
  /** Host paths of the kernel and the test initramfs. */
  kernel: string;
  initrd: string;
  /** OCI image layout of the base image (tag `latest`, linux/amd64, one gzip layer). */
  layoutDir: string;
  tag: string;
  /** Content of /etc/canvos-test-marker. */
  marker: string;
}

/** Bump when the fixture's content changes so stale caches are rebuilt. */
const FIXTURE_VERSION = 'v2';
/** Printed by /init once the squashfs inside the ISO was loop-mounted. */
export const MARKER = 'hello-from-rootfs.squashfs';
/** Kernel modules the initramfs loads (plus their dependencies): CD-ROM and disk (USB-stick style boot) on IDE (pc) and AHCI (q35), isofs, squashfs, loop. */
export const ROOT_MODULES = ['ata_piix', 'ahci', 'sr_mod', 'sd_mod', 'isofs', 'squashfs', 'loop'];

/** The cache directory. */
export function cacheDir(): string {
  return process.env.CANVOS_TEST_CACHE ?? join(homedir(), '.cache', 'canvos-lite-test');
}

async function checked(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await run(cmd, args, { cwd, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** The kernel package linux-image-amd64 currently depends on, e.g. linux-image-6.1.0-56-amd64. */
async function kernelPackage(): Promise<string> {
  const out = await checked('apt-cache', ['depends', 'linux-image-amd64']);
  const m = /Depends:\s*(linux-image-[0-9][^\s]*)/.exec(out);
  if (!m?.[1]) throw new Error(`cannot find the kernel package in: ${out}`);
  return m[1];
}

/** Downloads (once) and unpacks the kernel package; returns the extract dir and kernel release. */
async function kernelTree(cache: string): Promise<{ root: string; kver: string }> {
  const pkg = await kernelPackage();
  const kver = pkg.replace(/^linux-image-/, '');
  const root = join(cache, `${pkg}.extracted`);
  if (existsSync(join(root, 'boot', `vmlinuz-${kver}`))) return { root, kver };
  let deb = (await readdir(cache)).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!deb) {
    await checked('apt-get', ['download', '-q', pkg], cache);
    deb = (await readdir(cache)).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${cache}`);
  }
  const tmp = await mkdtemp(join(cache, '.extract-'));
  await checked('dpkg-deb', ['-x', join(cache, deb), tmp]);
  await rename(tmp, root).catch(async () => rm(tmp, { recursive: true, force: true }));
  return { root, kver };
}

/** `depends=` of a .ko file's .modinfo section. */
function moduleDepends(ko: Buffer): string[] {
  const i = ko.indexOf('\0depends=');
  if (i < 0) return [];
  const end = ko.indexOf(0, i + 1);
  return ko
    .toString('latin1', i + 9, end)
    .split(',')
    .filter(Boolean);
}

/** Module files for `modules` (default ROOT_MODULES) and their dependencies, dependencies first. */
export async function moduleClosure(
  modDir: string,
  modules: readonly string[] = ROOT_MODULES,
): Promise<Array<{ name: string; path: string }>> {
  const byName = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else if (e.name.endsWith('.ko')) byName.set(e.name.slice(0, -3).replace(/-/g, '_'), join(d, e.name));
    }
  };
  await walk(join(modDir, 'kernel'));
  const order: Array<{ name: string; path: string }> = [];
  const seen = new Set<string>();
  const visit = async (name: string): Promise<void> => {
    const key = name.replace(/-/g, '_');
    if (seen.has(key)) return;
    seen.add(key);
    const path = byName.get(key);
    if (!path) return; // built into the kernel
    for (const dep of moduleDepends(await readFile(path))) await visit(dep);
    order.push({ name: key, path });
  };
  for (const m of modules) await visit(m);
  return order;
}

/** One newc (SVR4 "070701") cpio record. */
export function newcRecord(
  name: string,
  mode: number,
  data: Buffer,
  ino: number,
  rdev: [number, number] = [0, 0],
): Buffer {
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  const nameBuf = Buffer.from(`${name}\0`);
  const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBuf.length, 0];
  const header = Buffer.from(`070701${fields.map(hex).join('')}`, 'latin1');
  const pad = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);
  return Buffer.concat([header, nameBuf, pad(header.length + nameBuf.length), data, pad(data.length)]);
}

function initScript(modules: readonly string[]): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
# The EFI menu entry ends with console=tty0; the test reads the first serial port.
[ -c /dev/ttyS0 ] && exec >/dev/ttyS0 2>&1
echo "CANVOS-TEST: initramfs reached"
if [ -d /sys/firmware/efi ]; then echo "CANVOS-TEST: firmware=UEFI"; else echo "CANVOS-TEST: firmware=BIOS"; fi
echo "CANVOS-TEST: cmdline: $(cat /proc/cmdline)"
for m in ${modules.join(' ')}; do insmod /lib/modules/$m.ko 2>/dev/null; done
label=$(sed -n 's/.*root=live:CDLABEL=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
dev=""
for i in $(seq 1 150); do dev=$(findfs LABEL="$label" 2>/dev/null) && break; sleep 0.2; done
echo "CANVOS-TEST: LABEL=$label -> \${dev:-NOT FOUND}"
if [ -n "$dev" ] && mount -t iso9660 -o ro "$dev" /run/initramfs/live; then
  f=/run/initramfs/live/files-iso/config.yaml
  [ -f $f ] && echo "CANVOS-TEST: config.yaml: $(head -n 1 $f)"
  if mount -t squashfs -o ro,loop /run/initramfs/live/rootfs.squashfs /run/rootfsbase; then
    echo "CANVOS-TEST: squashfs marker: $(cat /run/rootfsbase/etc/canvos-test-marker)"
  fi
fi
echo "CANVOS-TEST: DONE"
poweroff -f
`;
}

/** Builds the gzip'd newc initramfs. */
async function buildInitramfs(modDir: string): Promise<Buffer> {
  const mods = await moduleClosure(modDir);
  const recs: Buffer[] = [];
  let ino = 1;
  const dir = (p: string): number => recs.push(newcRecord(p, 0o040755, Buffer.alloc(0), ino++));
  for (const d of [
    'bin',
    'dev',
    'proc',
    'sys',
    'tmp',
    'run',
    'run/initramfs',
    'run/initramfs/live',
    'run/rootfsbase',
    'lib',
    'lib/modules',
  ])
    dir(d);
  // /dev/console must exist before devtmpfs is mounted, or /init starts without stdout.
  recs.push(newcRecord('dev/console', 0o020600, Buffer.alloc(0), ino++, [5, 1]));
  recs.push(newcRecord('bin/busybox', 0o100755, await readFile('/bin/busybox'), ino++));
  for (const m of mods) recs.push(newcRecord(`lib/modules/${m.name}.ko`, 0o100644, await readFile(m.path), ino++));
  recs.push(newcRecord('init', 0o100755, Buffer.from(initScript(mods.map((m) => m.name))), ino++));
  recs.push(newcRecord('TRAILER!!!', 0, Buffer.alloc(0), 0));
  return gzipSync(Buffer.concat(recs), { level: 6 });
}

async function writeBlob(layoutDir: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const hex = createHash('sha256').update(data).digest('hex');
  await writeFile(join(layoutDir, 'blobs', 'sha256', hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

/** Builds (or reuses from the cache) the kernel, test initramfs and OCI layout. */
export async function prepareBootFixture(): Promise<BootFixture> {
  const cache = cacheDir();
  await mkdir(cache, { recursive: true });
  const { root, kver } = await kernelTree(cache);
  const final = join(cache, `fixture-${FIXTURE_VERSION}-${kver}`);
  const result: BootFixture = {
    kver,
    kernel: join(root, 'boot', `vmlinuz-${kver}`),
    initrd: join(final, 'initrd.img'),
    layoutDir: join(final, 'layout'),
    tag: 'latest',
    marker: MARKER,
  };
  if (existsSync(join(final, 'layout', 'index.json'))) return result;
  const tmp = await mkdtemp(join(cache, '.fixture-'));
  try {
    const initrd = join(tmp, 'initrd.img');
    await writeFile(initrd, await buildInitramfs(join(root, 'lib', 'modules', kver)));
    const layout = join(tmp, 'layout');
    await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const layer = await buildLayer(
      {
        entries: [
          { type: 'dir', path: 'boot' },
          { type: 'dir', path: 'etc' },
          { type: 'dir', path: 'bin' },
          { type: 'file', path: `boot/vmlinuz-${kver}`, source: { host: result.kernel }, mode: 0o644 },
          { type: 'symlink', path: 'boot/vmlinuz', target: `vmlinuz-${kver}` },
          { type: 'file', path: 'boot/initrd', source: { host: initrd }, mode: 0o644 },
          { type: 'file', path: 'bin/busybox', source: { host: '/bin/busybox' }, mode: 0o755 },
          {
            type: 'file',
            path: 'etc/kairos-release',
            source: { inline: 'KAIROS_ARCH="amd64"\nKAIROS_FLAVOR="debian"\nKAIROS_VERSION="v0.0.0-test"\n' },
          },
          { type: 'file', path: 'etc/canvos-test-marker', source: { inline: `${MARKER}\n` } },
        ],
      },
      { dir: join(layout, 'blobs', 'sha256'), sourceDateEpoch: 1_700_000_000, compression: 'gzip' },
    );
    const config = await writeBlob(
      layout,
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config: {},
          rootfs: { type: 'layers', diff_ids: [layer.diffId] },
        }),
      ),
    );
    const manifest = await writeBlob(
      layout,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
        }),
      ),
    );
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    };
    await writeFile(join(layout, 'index.json'), JSON.stringify(index));
    await rename(tmp, final);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if (existsSync(join(final, 'layout', 'index.json'))) return result; // another worker won the race
    throw e;
  }
  return result;
}

/** The merged rootfs of a single-manifest OCI layout (tag `latest`), as an FsEntry stream. */
export async function layoutRootfs(layoutDir: string): Promise<AsyncIterable<FsEntry>> {
  return mergeLayers(await layoutOpeners(layoutDir));
}

/** The layer openers of a single-manifest OCI layout, bottom first. */
export async function layoutOpeners(layoutDir: string): Promise<LayerOpener[]> {
  const blob = async (d: string): Promise<Buffer> =>
    readFile(join(layoutDir, 'blobs', 'sha256', d.replace(/^sha256:/, '')));
  const index = JSON.parse((await readFile(join(layoutDir, 'index.json'))).toString()) as {
    manifests: Array<{ digest: string }>;
  };
  const manifest = JSON.parse((await blob(index.manifests[0]?.digest ?? '')).toString()) as {
    layers: Array<{ digest: string }>;
  };
  const openers = manifest.layers.map(
    (l) => async () =>
      createReadStream(join(layoutDir, 'blobs', 'sha256', l.digest.replace(/^sha256:/, ''))) as AsyncIterable<Buffer>,
  );
  return openers;
}

/** Host files (shim-signed, grub-efi-amd64-signed) placed where Debian/Ubuntu-based Kairos images have them. */
export const HOST_SHIM_FILES: ReadonlyArray<readonly [string, string]> = [
  ['usr/lib/shim/shimx64.efi.signed', '/usr/lib/shim/shimx64.efi.signed'],
  ['usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed', '/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed'],
];

/** `rootfs` followed by the host's signed shim and CD grub (see {@link HOST_SHIM_FILES}). */
export async function* withHostShim(rootfs: AsyncIterable<FsEntry>): AsyncGenerator<FsEntry> {
  yield* rootfs;
  for (const [path, host] of HOST_SHIM_FILES) {
    yield {
      path,
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: 1_700_000_000,
      size: statSync(host).size,
      content: createReadStream(host),
    };
  }
}
