/**
 * Inventory entries of the CanvOS arguments (see inventory.ts), one per ARG_NAMES entry and in that order. Line
 * numbers are those of CanvOS's Earthfile at HEAD fb36e29 (canvos.md).
 */
import type { ArgName } from './args.js';
import type { InventoryEntry, InventoryIssue, InventoryRule, InventoryScope } from './inventory-types.js';

type ArgEntry = InventoryEntry & { kind: 'arg'; name: ArgName };

const RUN: InventoryIssue = '#11 Dockerfile/RUN';
const UKI: InventoryIssue = '#16 UKI';
const DISK: InventoryIssue = '#17 disk/MAAS/cloud images';
const EXEC = 'W_EXEC_STEP_SKIPPED';
const PRE_BAKE =
  "canvos-lite runs the project Dockerfile's RUN lines, UPDATE_KERNEL, the kernel headers step and TWO_NODE, not this CanvOS step: add it to the project Dockerfile as a RUN line, or pre-bake it into BASE_IMAGE";

const ok = (name: ArgName, canvos: string, lite: string, rules?: InventoryRule[]): ArgEntry => ({
  kind: 'arg',
  name,
  status: 'honoured',
  canvos,
  lite,
  rules,
});

/** Accepted, but warned about when set to a non-default value (or when `when` holds). */
function warned(
  name: ArgName,
  canvos: string,
  why: string,
  issue: InventoryIssue | undefined,
  scope: InventoryScope = 'base',
  extra: Partial<InventoryRule> = {},
): ArgEntry {
  return {
    kind: 'arg',
    name,
    status: 'warned',
    canvos,
    lite: `warning: ${why}`,
    issue,
    rules: [{ status: 'warned', scope, why, issue, ...extra }],
  };
}

/** A CanvOS `RUN` step in the image, switched on by a boolean argument: warned (BASE_IMAGE must contain it). */
function execStep(name: ArgName, canvos: string, step: string): ArgEntry {
  return warned(name, canvos, `${step} runs commands inside the image; ${PRE_BAKE}`, RUN, 'base', { code: EXEC });
}

/**
 * A UKI-only parameter: build/iso/build-all refuse IS_UKI (the Trusted Boot artefacts are made by `canvos-lite uki`),
 * so in the configuration the value has no effect; `flag` is where `canvos-lite uki` takes it instead.
 */
const ukiOnly = (name: ArgName, canvos: string, flag = 'no flag: canvos-lite uki does not use it'): ArgEntry =>
  warned(
    name,
    `${canvos} (UKI builds only)`,
    `it is read only by CanvOS's UKI targets, which canvos-lite builds with \`canvos-lite uki\` (${flag})`,
    UKI,
  );

/** A parameter of a helper container CanvOS runs (alpine, osbuilder, AuroraBoot, golang): canvos-lite runs none. */
const tool = (name: ArgName, canvos: string, what: string): ArgEntry =>
  warned(
    name,
    canvos,
    `canvos-lite runs no ${what} container (${what === 'AuroraBoot' || what === 'osbuilder' ? 'the ISO is assembled by canvos-lite with xorriso' : 'it needs no helper stage'})`,
    undefined,
  );

const nvidia = (name: ArgName, line: string): ArgEntry =>
  warned(
    name,
    `NVIDIA driver install option (Earthfile ${line}, 1053–1066)`,
    'it only configures the NVIDIA driver install, a RUN step canvos-lite does not run',
    RUN,
  );
const amd = (name: ArgName, line: string): ArgEntry =>
  warned(
    name,
    `AMD GPU driver install option (Earthfile ${line}, 1070–1106)`,
    'it only configures the AMD driver install, a RUN step canvos-lite does not run',
    RUN,
  );

/** The argument inventory, in ARG_NAMES order (a test checks both lists agree). */
export const ARG_INVENTORY: readonly ArgEntry[] = [
  ok('CUSTOM_TAG', 'suffix of the provider image tag (Earthfile 218–224)', 'tag suffix, pack snippet'),
  ok('IMAGE_REGISTRY', 'registry of the provider images (218–224)', 'push destination, pack snippet'),
  ok(
    'OS_DISTRIBUTION',
    'base image, CA paths, package steps (185–201, Dockerfile 10–25)',
    'default base image, CA paths, kairos-release',
  ),
  ok('IMAGE_REPO', 'repository of the provider images (218–224)', 'push destination, pack snippet'),
  ok(
    'OS_VERSION',
    'base image tag, kairos-release (185–201, 1194–1231)',
    'default base image, kairos-release; validated per distribution',
  ),
  ok('K8S_DISTRIBUTION', 'provider, luet package, tag (250–273, 745–756)', 'provider image, k8s package, tag', [
    {
      status: 'warned',
      scope: 'provider',
      code: EXEC,
      issue: RUN,
      subject: () => 'K8S_DISTRIBUTION=nodeadm',
      why: `nodeadm on ubuntu makes CanvOS run nodeadm install -p iam-ra / ssm inside the image (843–857); ${PRE_BAKE}`,
      when: (c) => c.k8sDistribution === 'nodeadm' && c.osDistribution === 'ubuntu',
    },
  ]),
  ok(
    'ISO_NAME',
    '`build/<ISO_NAME>.iso` (561–565); Earthfile default `installer`, `.arg.template` `palette-edge-installer`',
    'ISO file name; default `palette-edge-installer` as the template and docs',
  ),
  ok('ARCH', 'platform of every image, luet repo (185–201, 378–410)', 'platform of every image read and written'),
  ok(
    'HTTPS_PROXY',
    'build-time proxy of buildkitd (image pulls) and the Dockerfile (79–84, earthly.sh 5–61)',
    "proxy of the CLI's registry requests (over the environment's); `{url, sha256}` downloads use the environment's",
  ),
  ok(
    'HTTP_PROXY',
    'build-time proxy of buildkitd (image pulls) and the Dockerfile (79–84)',
    "proxy of the CLI's registry requests (over the environment's); `{url, sha256}` downloads use the environment's",
  ),
  ok('NO_PROXY', 'proxy exclusions (79–84)', "exclusions of the CLI's registry proxy"),
  ok(
    'UPDATE_KERNEL',
    'HWE kernel upgrade / apt-mark hold, kernel headers (986–996, 757–792)',
    'the same steps as RUN layers through the rootless executor: ubuntu/amd64 `apt-get install linux-image-generic-hwe-$OS_VERSION` + `apt-get upgrade --with-new-pkgs`, opensuse-leap/amd64 `zypper refresh && zypper update -y`, then `/boot/vmlinuz` and `/boot/initrd` links, dracut (required), depmod; kernel headers on ubuntu; `apt-mark hold` (false) is a base-image step canvos-lite does not run',
    [
      {
        status: 'warned',
        scope: 'provider',
        code: EXEC,
        issue: RUN,
        when: (c) => c.updateKernel && c.osDistribution !== 'ubuntu',
        why: `CanvOS's SUSE/RHEL kernel-devel headers step (760–791) is not run (on opensuse-leap/amd64 the kernel upgrade itself is); ${PRE_BAKE}`,
      },
    ],
  ),
  ok(
    'CLUSTERCONFIG',
    'file copied `--if-exists` to the ISO `/opt/spectrocloud/clusterconfig/spc.tgz` (520–522)',
    'same; a missing file is a warning',
  ),
  execStep('CIS_HARDENING', '`cis-harden/harden.sh` in the image (1108–1111)', 'CIS_HARDENING (cis-harden/harden.sh)'),
  ok(
    'EDGE_CUSTOM_CONFIG',
    'file to ISO `/.edge_custom_config.yaml` and `/oem/.edge_custom_config.yaml` (494, 819)',
    'same, when the file exists; a name written explicitly but missing → warning W_EDGE_CUSTOM_CONFIG_MISSING',
  ),
  ok('FORCE_INTERACTIVE_INSTALL', 'grub `{{DEFAULT_ENTRY}}` 2 instead of 0 (497–503)', 'same'),
  ok('K8S_VERSION', 'one version, else all of k8s_version.json (263–270)', 'same'),
  ok('BASE_IMAGE', 'the `FROM` of base-image (940–943)', 'the image every layer is appended to'),
  ok(
    'PE_VERSION',
    'stylus/provider tags (207–224); earthly.sh prints `git describe --abbrev=0 --tags`',
    'same; unset: `git describe --abbrev=0 --tags` of the project, else exit 3',
  ),
  warned(
    'KAIROS_VERSION',
    '`+OS_RELEASE --OS_VERSION=$KAIROS_VERSION` (1154), a no-op since Aug 2025 (1609–1621)',
    'CanvOS HEAD ignores it too (+OS_RELEASE is a no-op since Aug 2025)',
    undefined,
  ),
  ok('KAIROS_INIT_VERSION', 'default base image tag (25–28, 185–201)', 'same'),
  ok('K3S_FLAVOR_TAG', 'luet package version suffix (29, 745–756)', 'same'),
  ok('RKE2_FLAVOR_TAG', 'luet package version suffix (30, 745–756)', 'same'),
  ok('K3S_PROVIDER_VERSION', 'provider-k3s tag (41, 919–936)', 'same'),
  ok('KUBEADM_PROVIDER_VERSION', 'provider-kubeadm tag (42)', 'same'),
  ok('RKE2_PROVIDER_VERSION', 'provider-rke2 tag (43)', 'same'),
  ok('NODEADM_PROVIDER_VERSION', 'provider-nodeadm tag (44)', 'same'),
  ok('CANONICAL_PROVIDER_VERSION', 'provider-canonical tag (45)', 'same'),
  warned(
    'ETCD_VERSION',
    'declared but unused: etcdctl comes from the third-party image (144, 1623–1647)',
    'CanvOS ignores it too (etcdctl comes from SPECTRO_THIRD_PARTY_IMAGE)',
    undefined,
  ),
  ok(
    'KINE_VERSION',
    'kine download for TWO_NODE (148, 859–890)',
    'kine release TWO_NODE downloads (kine-amd64, as CanvOS)',
  ),
  ok(
    'DRBD_VERSION',
    '`--build-arg DRBD_VERSION` for the Dockerfile (77, 940–943)',
    'passed to the project Dockerfile as a build argument, as CanvOS',
  ),
  ok('SPECTRO_PUB_REPO', 'prefix of every Spectro image (6, 13–17)', 'same, FIPS switch included'),
  ok('BUILDER_3RDPARTY_VERSION', 'third-party image tag (7–8)', 'same'),
  ok('SPECTRO_THIRD_PARTY_IMAGE', 'etcdctl source (8, 1623–1647)', 'same'),
  tool('ALPINE_TAG', 'helper stage image tag (9)', 'alpine'),
  tool('ALPINE_IMG', 'helper stage image (10, 229–234)', 'alpine'),
  ok(
    'SPECTRO_LUET_REPO',
    'luet repository of the k8s packages (19, 378–410)',
    'registry of the k8s package images (luet docker-repo layout)',
  ),
  ok('KAIROS_BASE_IMAGE_URL', 'default base image registry (20)', 'same'),
  warned('BASE_IMAGE_URL', 'declared but unused at HEAD (31)', 'CanvOS HEAD ignores it too', undefined),
  tool('OSBUILDER_VERSION', 'osbuilder-tools tag for build-iso (≤ v4.10.0) and UKI (32)', 'osbuilder'),
  tool('OSBUILDER_IMAGE', 'osbuilder-tools image (33)', 'osbuilder'),
  tool('AURORABOOT_VERSION', 'AuroraBoot tag for build-iso (39)', 'AuroraBoot'),
  tool('AURORABOOT_IMAGE', 'AuroraBoot image (40, 484–565)', 'AuroraBoot'),
  tool('GOLANG_VERSION', 'golang image for CanvOS helpers (181)', 'golang'),
  ok('DISABLE_SELINUX', '`/etc/cos/bootargs.cfg` selinux edits (1166–1171)', 'same edit, as a layer'),
  execStep(
    'UBUNTU_PRO_ATTACH',
    '`pro attach` with the UBUNTU_PRO_KEY secret (969–985)',
    'UBUNTU_PRO_ATTACH (pro attach)',
  ),
  ok(
    'FIPS_ENABLED',
    'FIPS repo, BIN_TYPE=vertex, no dracut (13–17, 210–216)',
    'FIPS repo and binaries; needs a FIPS BASE_IMAGE',
  ),
  {
    kind: 'arg',
    name: 'TWO_NODE',
    status: 'honoured',
    canvos: 'postgresql 16 + kine installed with apt/zypper on ubuntu/opensuse-leap amd64 (859–890)',
    lite: 'the same steps as one RUN layer through the rootless executor (cached like a Dockerfile RUN); other OS/arch refused (exit 3), as CanvOS has no steps for them',
  },
  {
    kind: 'arg',
    name: 'IS_MAAS',
    status: 'honoured',
    issue: DISK,
    canvos:
      '`-maas` label suffix (1194–1231), `COPY cloudconfigs/80_stylus_maas.yaml /system/oem/` (954–956), MAAS image (+maas-image)',
    lite: 'label suffix and 80_stylus_maas.yaml honoured; the MAAS disk image is refused (iso, build-all) or warned (build)',
    rules: [
      {
        status: 'warned',
        scope: 'provider',
        why: 'the label and cloudconfigs/80_stylus_maas.yaml are applied, but no MAAS disk image is built',
        issue: DISK,
      },
      {
        status: 'refused',
        scope: 'iso',
        why: 'the MAAS disk image (kairos-raw-image + build-kairos-maas.sh) is not built',
        hint: "set IS_MAAS=false to build the installer ISO; for a MAAS-uploadable raw disk (without CanvOS's curtin/MAAS extras) use canvos-lite disk --format raw.gz",
        issue: DISK,
      },
    ],
  },
  warned('MAAS_IMAGE_NAME', 'name of the MAAS image (151–152)', 'no MAAS image is built', DISK),
  {
    kind: 'arg',
    name: 'IS_UKI',
    status: 'refused',
    issue: UKI,
    canvos: 'UKI provider image and ISO (337–358, 412–460)',
    lite: 'refused by build/iso/build-all (exit 3) with a hint: Trusted Boot artefacts are made by `canvos-lite uki genkey | iso | provider`',
    rules: [
      {
        status: 'refused',
        scope: 'provider',
        why: 'a UKI provider image carries signed EFI artefacts built by enki/osbuilder',
        hint: 'set IS_UKI=false; build the Trusted Boot provider image with canvos-lite uki provider (keys: canvos-lite uki genkey)',
        issue: UKI,
      },
      {
        status: 'refused',
        scope: 'iso',
        why: 'the UKI installer ISO (signed EFI artefacts) is not built',
        hint: 'set IS_UKI=false; build the signed UKI installer ISO with canvos-lite uki iso (keys: canvos-lite uki genkey)',
        issue: UKI,
      },
    ],
  },
  ukiOnly('MY_ORG', 'uki-genkey organisation (572)', 'uki genkey --org'),
  ukiOnly('EXPIRATION_IN_DAYS', 'uki-genkey validity (573)', 'uki genkey --expiration-in-days'),
  ukiOnly(
    'INCLUDE_MS_SECUREBOOT_KEYS',
    'uki-genkey option (155–162)',
    'uki genkey --microsoft-keys DIR / --skip-microsoft-keys',
  ),
  ukiOnly('AUTO_ENROLL_SECUREBOOT_KEYS', '`--secure-boot-enroll force` (155–162)', 'uki iso --auto-enroll'),
  ukiOnly('UKI_BRING_YOUR_OWN_KEYS', 'uki-byok (155–162, 662–714)', 'uki genkey --byok'),
  ukiOnly('ENROLL_SPECTRO_EXTENSION_CERT', 'sysext cert merged into db (155–162)', 'uki genkey --extension-cert FILE'),
  ukiOnly(
    'SPECTRO_EXTENSION_CERT_IMAGE',
    'sysext cert image (155–162)',
    'extract the certificate and give it to uki genkey --extension-cert',
  ),
  ok('BUNDLE_K8S_AND_AGENT_PROVIDER', 'forces bundling on systemd ≥ 255 (170, 285–326)', 'same'),
  ukiOnly('CMDLINE', '`--extend-cmdline` of build-uki (172)', 'uki iso --extend-cmdline'),
  ukiOnly('BRANDING', '`--boot-branding` of build-uki (173)'),
  ukiOnly('EFI_MAX_SIZE', 'iso-efi-size-check budget (177)'),
  ukiOnly('EFI_IMG_SIZE', 'iso-efi-size-check image size (178)'),
  ok('DEBUG', 'grub cmdline `rd.immucore.debug console=tty0 rd.debug` (506–508)', 'same'),
  {
    kind: 'arg',
    name: 'IS_CLOUD_IMAGE',
    status: 'refused',
    issue: DISK,
    canvos: 'cloud raw image extras in iso-image and `+cloud-image` (1236, 1252–1286, 1309–1391)',
    lite: 'refused for the ISO (exit 3); warned in build',
    rules: [
      {
        status: 'warned',
        scope: 'provider',
        why: 'it only shapes the cloud raw image, which canvos-lite does not build',
        issue: DISK,
      },
      {
        status: 'refused',
        scope: 'iso',
        why: 'the cloud raw image and its iso-image extras are not built',
        hint: 'set IS_CLOUD_IMAGE=false to build the installer ISO; for a raw/qcow2/VHD disk (without the COS_CONTENT partition) use canvos-lite disk --format raw|qcow2|vhd',
        issue: DISK,
      },
    ],
  },
  warned('REGION', 'AWS region of aws-cloud-image (1402)', 'no AMI is built', DISK),
  warned('S3_BUCKET', 'S3 bucket of aws-cloud-image (1403)', 'no AMI is built', DISK),
  warned('S3_KEY', 'S3 key of aws-cloud-image (1404)', 'no AMI is built', DISK),
  execStep(
    'INSTALL_NVIDIA_GPU_DRIVERS',
    'NVIDIA driver install (91, 1053–1066)',
    'INSTALL_NVIDIA_GPU_DRIVERS (driver install)',
  ),
  nvidia('NVIDIA_DRIVER_BRANCH', '92'),
  nvidia('NVIDIA_DRIVER_TYPE', '93'),
  nvidia('NVIDIA_USE_CUDA_REPO', '94'),
  nvidia('NVIDIA_INSTALL_FABRICMANAGER', '95'),
  nvidia('NVIDIA_INSTALL_IMEX', '96'),
  nvidia('NVIDIA_INSTALL_CONTAINER_TOOLKIT', '97'),
  nvidia('NVIDIA_REBUILD_INITRD', '98'),
  execStep(
    'INSTALL_AMD_GPU_DRIVERS',
    'AMD driver install, `RUN --privileged` (102, 1070–1106)',
    'INSTALL_AMD_GPU_DRIVERS (driver install)',
  ),
  amd('AMDGPU_DRIVER_SOURCE', '103'),
  amd('AMDGPU_DRIVER_RELEASE', '104'),
  amd('AMDGPU_ARTIFACT_PATH', '105'),
  amd('AMDGPU_REBUILD_INITRD', '106'),
  amd('AMDGPU_INSTALL_SMI', '107'),
  ok('BASE_IMAGE_TAG', 'derived default base image tag (185–201)', 'same'),
  ok('IS_JETSON', 'derived from BASE_IMAGE (203–205)', 'same; adds cloudconfigs/mount.yaml'),
  ok('STYLUS_BASE', 'stylus framework image (207)', 'same'),
  ukiOnly('STYLUS_PACKAGE_BASE', 'stylus package image, packed for the UKI ISO (208, 367–372)'),
  ok('BIN_TYPE', 'palette|vertex third-party binaries (210–212)', 'same'),
  warned(
    'CLI_IMAGE',
    'palette-edge-cli image validating user-data (213–216, 471–481)',
    'canvos-lite checks user-data itself (YAML, #cloud-config) and runs no palette-edge-cli container',
    undefined,
  ),
  ok('IMAGE_TAG', 'derived `$PE_VERSION[-$CUSTOM_TAG]` (218–222)', 'same'),
  ok('IMAGE_PATH', 'derived provider image path (223–224)', 'same'),
  ok('BASE_K8S_VERSION', 'luet package version (745–756)', 'same'),
  ok('K8S_DISTRIBUTION_TAG', 'flavor tag of the luet version (384–390)', 'same'),
  ok('PROVIDER_BASE', 'agent provider image (919–934)', 'same'),
];
