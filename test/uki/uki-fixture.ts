/**
 * A tiny bootable "installer image" for UKI tests, as an OCI layout: the fixture kernel in /boot (vmlinuz symlink
 * + vmlinuz-<kver>), busybox, an /init that prints CANVOS-UKI markers read from the image's own files (so a boot
 * proves the whole rootfs became the UKI's initrd) and powers off, /etc/os-release, a hard link, and an empty
 * libsystemd-shared-255.so standing for systemd 255.
 */
import { join } from 'node:path';
import { buildLayer } from '../../src/layers/build.js';
import { OciLayout } from '../../src/transports/oci-layout/oci-layout.js';
import type { BootFixture } from '../helpers/boot-fixture.js';

export const UKI_MARKER = 'hello-from-the-uki-rootfs';
export const OS_RELEASE = 'NAME="Kairos"\nID=kairos\nKAIROS_RELEASE="v0.0.0-uki"\n';

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
[ -c /dev/ttyS0 ] && exec >/dev/ttyS0 2>&1
echo "CANVOS-UKI: rootfs initrd reached"
echo "CANVOS-UKI: marker $(cat /etc/canvos-uki-marker)"
echo "CANVOS-UKI: hardlink $(cat /usr/share/marker-link)"
echo "CANVOS-UKI: cmdline $(cat /proc/cmdline)"
[ -d /sys/firmware/efi ] && echo "CANVOS-UKI: efi"
echo "CANVOS-UKI: DONE"
poweroff -f
`;

/** Writes the image as an OCI layout at `layout` (tag latest). `withKernel: false` leaves /boot empty; `systemd` names the libsystemd-shared version. */
export async function makeUkiImage(layout: string, fx: BootFixture, withKernel = true, systemd = 255): Promise<void> {
  const oci = new OciLayout(layout);
  await oci.init();
  const layer = await buildLayer(
    {
      entries: [
        { type: 'dir', path: 'boot' },
        ...(withKernel
          ? ([
              { type: 'file', path: `boot/vmlinuz-${fx.kver}`, source: { host: fx.kernel }, mode: 0o644 },
              { type: 'symlink', path: 'boot/vmlinuz', target: `vmlinuz-${fx.kver}` },
            ] as const)
          : []),
        { type: 'file', path: 'bin/busybox', source: { host: '/bin/busybox' }, mode: 0o755 },
        {
          type: 'file',
          path: 'usr/bin/kairos-agent',
          source: { inline: '#!/bin/sh\necho kairos-agent stand-in\n' },
          mode: 0o755,
        },
        { type: 'file', path: 'init', source: { inline: INIT }, mode: 0o755 },
        { type: 'file', path: 'usr/lib/os-release', source: { inline: OS_RELEASE }, mode: 0o644 },
        { type: 'symlink', path: 'etc/os-release', target: '../usr/lib/os-release' },
        { type: 'file', path: 'etc/canvos-uki-marker', source: { inline: `${UKI_MARKER}\n` }, mode: 0o644 },
        { type: 'hardlink', path: 'usr/share/marker-link', target: 'etc/canvos-uki-marker' },
        {
          type: 'file',
          path: `usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-${systemd}.so`,
          source: { inline: '' },
          mode: 0o644,
        },
        { type: 'file', path: 'proc/should-not-be-copied', source: { inline: 'x' }, mode: 0o644 },
      ],
    },
    { dir: join(layout, 'blobs', 'sha256'), sourceDateEpoch: 1_700_000_000, compression: 'gzip' },
  );
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    }),
  );
  const config = {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    digest: await oci.writeSmallBlob(configBytes),
    size: configBytes.length,
  };
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config,
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    }),
  );
  const manifest = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: await oci.writeSmallBlob(manifestBytes),
    size: manifestBytes.length,
  };
  await oci.setTag({ ...manifest, platform: { architecture: 'amd64', os: 'linux' } }, 'latest');
}
