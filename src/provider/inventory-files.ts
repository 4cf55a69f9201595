/**
 * Inventory entries of the project files and directories CanvOS reads (see inventory.ts). Paths are relative to the
 * CanvOS checkout (canvos-lite's project directory).
 */
import type { InventoryEntry } from './inventory-types.js';

const file = (name: string, canvos: string, lite: string, extra: Partial<InventoryEntry> = {}): InventoryEntry => ({
  kind: 'file',
  name,
  status: 'honoured',
  canvos,
  lite,
  ...extra,
});

/** The project-file inventory. */
export const FILE_INVENTORY: readonly InventoryEntry[] = [
  file(
    '.arg',
    'build arguments, `source`d by earthly.sh (canvos.md §2.1)',
    'read as is (quotes, `$VAR` references, comments)',
  ),
  file(
    'Dockerfile',
    '`FROM DOCKERFILE` of base-image: certs, custom-hardware-specs, user `RUN` lines (940–943)',
    'parsed and applied after the stock preamble: COPY/ADD/config instructions as layers and config, RUN through the rootless executor (see "The project Dockerfile")',
  ),
  file(
    'certs/',
    'Dockerfile 10–25: per-distribution anchors + update-ca-certificates / update-ca-trust',
    'the files those tools pick, with the bundle (and hash links) they write',
  ),
  file(
    'overlay/files/',
    '`COPY overlay/files/etc/ /etc/` in provider-image (795–798), `COPY overlay/files/ /` in iso-image (1250)',
    'same (stylus.conf mode 0644)',
  ),
  file(
    'overlay/files-iso/',
    '`COPY overlay/files-iso/ /overlay/` of the ISO (grub.cfg, content Readme) (484–493)',
    'applied to the ISO tree first (a project grub.cfg replaces the built-in menu, with the sed edits CanvOS makes)',
  ),
  file('user-data', 'validated, then ISO `/files-iso/config.yaml` (471–493)', 'same (`#cloud-config` YAML check)'),
  file('content-*/', '`*.zst` bundles split at 3 GB into `/opt/spectrocloud/content/` (511–517)', 'same'),
  file(
    'CLUSTERCONFIG file (spc.tgz)',
    '`COPY --if-exists` to `/opt/spectrocloud/clusterconfig/spc.tgz` (520–522)',
    'same; missing → warning W_CLUSTERCONFIG_MISSING',
  ),
  file(
    'EDGE_CUSTOM_CONFIG file (.edge-custom-config.yaml)',
    'ISO root and `/oem/.edge_custom_config.yaml` when present (494, 819)',
    'same',
  ),
  file(
    'k8s_version.json',
    'versions per distribution when K8S_VERSION is empty (263–270)',
    'same (also k8s_versions.json)',
  ),
  file(
    'spectro-luet-auth.yaml',
    '`auth: {username, password, serveraddress}` appended to luet repo config (403–404)',
    'credentials of the k8s package pulls from SPECTRO_LUET_REPO; never echoed',
  ),
  file(
    'local-ui.tar',
    'extracted to `/opt/spectrocloud` of the installer rootfs (528–532)',
    'extracted likewise (streamed into rootfs.squashfs as the top layer)',
  ),
  file(
    'cloudconfigs/mount.yaml',
    'Jetson: `COPY cloudconfigs/mount.yaml /etc/kairos/mount.yaml` (945–947), no --if-exists',
    'same; missing on a Jetson build → exit 3',
  ),
  file(
    'cloudconfigs/80_stylus_uki.yaml',
    'UKI: `COPY` to `/etc/kairos/80_stylus_uki.yaml` (949–952)',
    'same with IS_UKI=true (provider rootfs and UKI ISO); missing → exit 3',
  ),
  file(
    'cloudconfigs/80_stylus_maas.yaml',
    'IS_MAAS: `COPY` to `/system/oem/80_stylus_maas.yaml` (954–956), no --if-exists',
    'same; missing with IS_MAAS=true → exit 3',
  ),
  file(
    'cloud-images/workaround/',
    'IS_CLOUD_IMAGE: `grubmenu.cfg` → `/etc/kairos/branding/`, `custom-post-reset.yaml` → `/system/oem/` (1252–1254)',
    'same (installer rootfs of `disk`/`build-all`); missing → exit 3',
    { via: 'IS_CLOUD_IMAGE' },
  ),
  file(
    'cloudconfigs/cloud-content.sh',
    'IS_CLOUD_IMAGE: `/opt/spectrocloud/scripts/` 0755, with cloud-extend-persistent.sh (1255–1259)',
    'same; missing → exit 3',
    { via: 'IS_CLOUD_IMAGE' },
  ),
  file(
    'cloudconfigs/maas-content.sh',
    'IS_MAAS: `/opt/spectrocloud/scripts/maas-content.sh` 0755 (1274–1278)',
    'same; missing → exit 3',
    { via: 'IS_MAAS' },
  ),
  file(
    'cloudconfigs/curtin-hooks',
    "IS_MAAS: `/curtin/curtin-hooks` (0750) of the MAAS image's UBUNTU_ROOTFS (earthly.sh, build-kairos-maas.sh)",
    'same; missing → exit 3',
    { via: 'IS_MAAS' },
  ),
  file(
    'noble-server-cloudimg-amd64.tar.gz',
    'IS_MAAS: downloaded by build-kairos-maas.sh from cloud-images.ubuntu.com; its `.img` becomes UBUNTU_ROOTFS',
    'read from the project directory (the `.tar.gz` or its `.img`; `disk --maas-ubuntu-image FILE`); missing → exit 3 with the URL',
    { via: 'IS_MAAS' },
  ),
  {
    kind: 'file',
    name: 'secure-boot/',
    status: 'honoured',
    issue: '#16 UKI',
    canvos: 'UKI signing keys (716–729, 412–460)',
    lite: 'written by `canvos-lite uki genkey` in the same layout; read by build/iso/build-all with IS_UKI=true (missing keys → exit 3) and by `uki iso`/`uki provider --keys`',
    via: 'IS_UKI',
  },
  {
    kind: 'file',
    name: 'cis-harden/',
    status: 'warned',
    issue: '#11 Dockerfile/RUN',
    canvos: '`cis-harden/harden.sh` run in the image with CIS_HARDENING=true (1108–1111)',
    lite: 'warning via CIS_HARDENING',
    via: 'CIS_HARDENING',
  },
  {
    kind: 'file',
    name: 'scripts/install-kernel-headers.sh',
    status: 'honoured',
    canvos: 'run in the image for kubeadm on ubuntu/amd64 or UPDATE_KERNEL (742–792)',
    lite: 'run in the image through the rootless executor for kubeadm on ubuntu/amd64 or UPDATE_KERNEL=true on ubuntu (cached like a Dockerfile RUN); without it, `apt-get install linux-headers-<kver>` for the newest kernel of /lib/modules',
  },
];
