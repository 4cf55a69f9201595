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
 * A parameter of CanvOS's key targets (+uki-genkey, +uki-byok): build/iso read the keys already in secure-boot/,
 * so in the configuration it has no effect; `flag` is where `canvos-lite uki genkey` takes it.
 */
const genkeyArg = (name: ArgName, canvos: string, flag: string): ArgEntry =>
  warned(
    name,
    `${canvos} (key generation only)`,
    `it is read when the keys are made (CanvOS +uki-genkey/+uki-byok); build and iso use the keys already in secure-boot/: make them with canvos-lite uki genkey ${flag}`,
    UKI,
  );

/** A UKI parameter canvos-lite does not implement (warned about when set). */
const ukiOnly = (name: ArgName, canvos: string, why: string): ArgEntry =>
  warned(name, `${canvos} (UKI builds only)`, why, UKI);

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
      '`-maas` label suffix (1194–1231), `COPY cloudconfigs/80_stylus_maas.yaml /system/oem/` (954–956), maas-content.sh in iso-image (1274–1286), MAAS image (`+maas-image`: kairos-raw-image + build-kairos-maas.sh)',
    lite: 'label suffix and 80_stylus_maas.yaml honoured; `canvos-lite disk` and `build-all` build `$MAAS_IMAGE_NAME.raw.gz` (EFI, UBUNTU_ROOTFS with curtin-hooks from the Ubuntu cloud image in the project, COS_CONTENT) instead of the ISO; `iso` refuses it',
    rules: [
      {
        status: 'refused',
        scope: 'iso-only',
        why: "IS_MAAS=true asks for CanvOS's MAAS disk image (+maas-image), not the installer ISO",
        hint: 'build the MAAS image with canvos-lite disk (or build-all); set IS_MAAS=false for the installer ISO',
        issue: DISK,
      },
    ],
  },
  ok(
    'MAAS_IMAGE_NAME',
    'name of the MAAS image (151–152; earthly.sh strips `.raw`/`.raw.gz`)',
    'same: `<MAAS_IMAGE_NAME>.raw.gz` + `.sha256`',
  ),
  {
    kind: 'arg',
    name: 'IS_UKI',
    status: 'honoured',
    issue: UKI,
    canvos: 'UKI provider image and ISO (337–358, 412–460)',
    lite: 'build/build-all: UKI provider images (carrier + signed /trusted-boot, same tags and pack snippet); iso/build-all: the signed UKI ISO; keys from `secure-boot/` (`canvos-lite uki genkey`); arm64 ISOs fall back to the plain ISO with a warning',
    rules: [
      {
        status: 'warned',
        scope: 'iso',
        code: 'W_UKI_ARM64',
        why: 'CanvOS builds the UKI ISO on amd64 only; on arm64 it builds the plain installer ISO, and so does canvos-lite',
        issue: UKI,
        when: (c) => c.isUki && c.arch === 'arm64',
      },
    ],
  },
  genkeyArg('MY_ORG', 'uki-genkey organisation (572)', '--org'),
  genkeyArg('EXPIRATION_IN_DAYS', 'uki-genkey validity (573)', '--expiration-in-days'),
  genkeyArg(
    'INCLUDE_MS_SECUREBOOT_KEYS',
    'uki-genkey option (155–162)',
    '--microsoft-keys DIR / --skip-microsoft-keys',
  ),
  ok(
    'AUTO_ENROLL_SECUREBOOT_KEYS',
    '`--secure-boot-enroll force` of build-uki-iso (155–162)',
    'UKI ISO: `secure-boot-enroll force` in loader.conf (default `manual`)',
  ),
  genkeyArg('UKI_BRING_YOUR_OWN_KEYS', 'uki-byok (155–162, 662–714)', '--byok'),
  genkeyArg('ENROLL_SPECTRO_EXTENSION_CERT', 'sysext cert merged into db (155–162)', '--extension-cert FILE'),
  genkeyArg(
    'SPECTRO_EXTENSION_CERT_IMAGE',
    'sysext cert image (155–162)',
    '--extension-cert FILE (extract the certificate from the image first)',
  ),
  ok('BUNDLE_K8S_AND_AGENT_PROVIDER', 'forces bundling on systemd ≥ 255 (170, 285–326)', 'same'),
  ok('CMDLINE', '`--extend-cmdline` of build-uki-iso (172)', 'appended to the UKI ISO command line'),
  ok('BRANDING', '`--boot-branding` of build-uki (173)', 'loader entry title of the UKI ISO and UKI provider images'),
  ukiOnly(
    'EFI_MAX_SIZE',
    'iso-efi-size-check budget (177)',
    'the +iso-efi-size-check target is not implemented: the EFI image is sized to its content',
  ),
  ukiOnly(
    'EFI_IMG_SIZE',
    'iso-efi-size-check image size (178)',
    'the +iso-efi-size-check target is not implemented: the EFI image is sized to its content',
  ),
  ok('DEBUG', 'grub cmdline `rd.immucore.debug console=tty0 rd.debug` (506–508)', 'same'),
  {
    kind: 'arg',
    name: 'IS_CLOUD_IMAGE',
    status: 'honoured',
    issue: DISK,
    canvos: 'cloud raw image extras in iso-image and `+cloud-image` (1236, 1252–1286, 1309–1391)',
    lite: 'the extras go into the rootfs; `canvos-lite disk` and `build-all` build the cloud raw image (COS_CONTENT with content bundles, CLUSTERCONFIG, EDGE_CUSTOM_CONFIG) instead of the ISO; `iso` refuses it; warned in build',
    rules: [
      {
        status: 'warned',
        scope: 'provider',
        why: 'it only shapes the cloud raw image (canvos-lite disk / build-all), not provider images',
        issue: DISK,
      },
      {
        status: 'refused',
        scope: 'iso-only',
        why: "IS_CLOUD_IMAGE=true asks for CanvOS's cloud raw image (+cloud-image), not the installer ISO",
        hint: 'build the cloud image with canvos-lite disk (or build-all); set IS_CLOUD_IMAGE=false for the installer ISO',
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
  ok(
    'STYLUS_PACKAGE_BASE',
    'stylus package image, packed as `/stylus-image.tar` on the UKI ISO (208, 367–372)',
    'same: `/stylus-image.tar` of the UKI ISO (a docker-archive of the image, tagged STYLUS_BASE)',
  ),
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
