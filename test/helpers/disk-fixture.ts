/**
 * The boot fixture (test/helpers/boot-fixture.ts) adapted to installed-disk boots: a second newc archive appended
 * to its initramfs (the kernel unpacks concatenated archives in order, later files win) adds ext4 and a new /init
 * that finds `root=live:LABEL=…` (or `root=LABEL=…`) on any file system, mounts COS_OEM and prints what the disk
 * image put there (and where COS_CONTENT is).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildLayer } from '../../src/layers/build.js';
import { run } from './tools.js';
import { ROOT_MODULES, moduleClosure, newcRecord, prepareBootFixture, type BootFixture } from './boot-fixture.js';

const DISK_MODULES = [...ROOT_MODULES, 'crc32c_generic', 'ext4'];

function diskInit(modules: readonly string[]): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
[ -c /dev/ttyS0 ] && exec >/dev/ttyS0 2>&1
echo "CANVOS-TEST: initramfs reached"
if [ -d /sys/firmware/efi ]; then echo "CANVOS-TEST: firmware=UEFI"; else echo "CANVOS-TEST: firmware=BIOS"; fi
echo "CANVOS-TEST: cmdline: $(cat /proc/cmdline)"
for m in ${modules.join(' ')}; do insmod /lib/modules/$m.ko 2>/dev/null; done
arg() { tr ' ' '\\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
label=$(arg root | sed 's/^live:\\(CD\\)\\{0,1\\}LABEL=//; s/^LABEL=//')
dir=$(arg rd.live.dir); img=$(arg rd.live.squashimg)
dev=""
for i in $(seq 1 150); do dev=$(findfs LABEL="$label" 2>/dev/null) && break; sleep 0.2; done
echo "CANVOS-TEST: LABEL=$label -> \${dev:-NOT FOUND}"
content=$(findfs LABEL=COS_CONTENT 2>/dev/null) && echo "CANVOS-TEST: LABEL=COS_CONTENT -> $content"
mkdir -p /oem
oem=$(findfs LABEL=COS_OEM 2>/dev/null)
if [ -n "$oem" ] && mount -t ext4 -o ro "$oem" /oem; then
  echo "CANVOS-TEST: oem: $(head -n 1 /oem/90_custom.yaml)"
  echo "CANVOS-TEST: grubenv: $(grep -a next_entry /oem/grubenv)"
fi
if [ -n "$dev" ] && mount -o ro "$dev" /run/initramfs/live; then
  if mount -t squashfs -o ro,loop "/run/initramfs/live/$dir/$img" /run/rootfsbase; then
    echo "CANVOS-TEST: squashfs marker: $(cat /run/rootfsbase/etc/canvos-test-marker)"
  fi
fi
echo "CANVOS-TEST: DONE"
poweroff -f
`;
}

/** The fixture plus `diskInitrd`: its initramfs with the disk /init and ext4 appended (cached next to it). */
export async function prepareDiskFixture(): Promise<BootFixture & { diskInitrd: string }> {
  const fx = await prepareBootFixture();
  const diskInitrd = join(dirname(fx.initrd), 'initrd-disk-v2.img');
  if (existsSync(diskInitrd)) return { ...fx, diskInitrd };
  const modDir = join(dirname(dirname(fx.kernel)), 'lib', 'modules', fx.kver);
  const all = await moduleClosure(modDir, DISK_MODULES);
  const base = new Set((await moduleClosure(modDir)).map((m) => m.name));
  const recs: Buffer[] = [];
  let ino = 1000;
  recs.push(newcRecord('oem', 0o040755, Buffer.alloc(0), ino++));
  for (const m of all.filter((x) => !base.has(x.name)))
    recs.push(newcRecord(`lib/modules/${m.name}.ko`, 0o100644, await readFile(m.path), ino++));
  recs.push(newcRecord('init', 0o100755, Buffer.from(diskInit(all.map((m) => m.name))), ino++));
  recs.push(newcRecord('TRAILER!!!', 0, Buffer.alloc(0), 0));
  const tmp = `${diskInitrd}.${process.pid}.tmp`;
  await writeFile(tmp, Buffer.concat([await readFile(fx.initrd), gzipSync(Buffer.concat(recs))]));
  await rename(tmp, diskInitrd);
  return { ...fx, diskInitrd };
}

/**
 * Copies the fixture's OCI layout to `dest` with one more layer replacing /boot/initrd by the disk initramfs
 * (tag `latest`), so a CLI run with `--base oci:DEST:latest` builds a bootable disk.
 */
export async function writeDiskLayout(fx: { layoutDir: string; diskInitrd: string }, dest: string): Promise<void> {
  const blobs = join(dest, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  await cp(join(fx.layoutDir, 'blobs'), join(dest, 'blobs'), { recursive: true });
  await writeFile(join(dest, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const readJson = async (d: string): Promise<Record<string, unknown>> =>
    JSON.parse(await readFile(join(blobs, d.replace(/^sha256:/, '')), 'utf8')) as Record<string, unknown>;
  const index = JSON.parse(await readFile(join(fx.layoutDir, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string }>;
  };
  const manifest = (await readJson(index.manifests[0]?.digest ?? '')) as {
    config: { digest: string };
    layers: unknown[];
  };
  const config = (await readJson(manifest.config.digest)) as { rootfs: { diff_ids: string[] } };
  const layer = await buildLayer(
    { entries: [{ type: 'file', path: 'boot/initrd', source: { host: fx.diskInitrd }, mode: 0o644 }] },
    { dir: blobs, sourceDateEpoch: 1_700_000_000, compression: 'gzip' },
  );
  const put = async (obj: unknown): Promise<{ digest: string; size: number }> => {
    const data = Buffer.from(JSON.stringify(obj));
    const hex = createHash('sha256').update(data).digest('hex');
    await writeFile(join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const cfg = await put({ ...config, rootfs: { type: 'layers', diff_ids: [...config.rootfs.diff_ids, layer.diffId] } });
  const man = await put({
    ...manifest,
    config: { ...manifest.config, ...cfg },
    layers: [...manifest.layers, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
  });
  await writeFile(
    join(dest, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...man,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    }),
  );
}

/** File system label → type of each partition of `raw` that has a label (blkid, probing at the partition offset). */
export async function partitionLabels(
  raw: string,
  parts: readonly { label: string; firstLba: number }[],
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of parts.filter((x) => x.label !== 'BIOS_BOOT')) {
    const offset = String(p.firstLba * 512);
    const b = await run('blkid', ['-p', '-O', offset, '-s', 'LABEL', '-s', 'TYPE', '-o', 'export', raw]);
    out[/LABEL=(\S+)/.exec(b.stdout)?.[1] ?? '?'] = /TYPE=(\S+)/.exec(b.stdout)?.[1] ?? '?';
  }
  return out;
}
