/**
 * The one zod schema every configuration form (`.arg`, canvos.yaml, library callers) is validated by, and the typed
 * BuildConfig it produces. Defaults are the Earthfile's (canvos.md §2.2); where the Earthfile has none, the
 * `.arg.template` value (§2.1). Inputs are strings (as in `.arg`), booleans or numbers; outputs are typed.
 */
import * as z from 'zod';
import { parseImageSpec } from '../transports/resolve-location.js';
import { argKey, argNameForKey, type ArgName } from './args.js';

/** What kind of value an argument takes; used for messages and for `.arg` empty-value semantics. */
export interface ArgInfo {
  kind: 'string' | 'boolean' | 'enum' | 'integer';
  /** The default as CanvOS writes it (`$VAR` references are resolved in the transform). */
  default: string;
  /** Allowed values, for enums. */
  allowed?: readonly string[];
}

const INFO = new WeakMap<z.ZodType, ArgInfo>();
const RAW = z.union([z.string(), z.boolean(), z.number()]).optional();

type Check = (s: string) => string | undefined; // error message, or undefined when valid

function field<T>(info: ArgInfo, def: T, parse: (s: string) => T, check?: Check) {
  const schema = RAW.transform((raw, ctx): T => {
    if (raw === undefined) return def;
    const s = String(raw);
    const err = check?.(s);
    if (err !== undefined) {
      ctx.addIssue({ code: 'custom', message: err });
      return z.NEVER;
    }
    return parse(s);
  });
  INFO.set(schema, info);
  return schema;
}

/** A free string, optionally matching `re` (described by `what` in errors). */
function str(def: string, re?: RegExp, what?: string) {
  return field(
    { kind: 'string', default: def },
    def,
    (s) => s,
    re ? (s) => (re.test(s) ? undefined : `must be ${what}`) : undefined,
  );
}
/** A string whose default is derived from other arguments (filled by the object transform). */
function derived(def: string, re?: RegExp, what?: string) {
  return field<string | undefined>(
    { kind: 'string', default: def },
    undefined,
    (s) => s,
    re ? (s) => (re.test(s) ? undefined : `must be ${what}`) : undefined,
  );
}
/** CanvOS compares booleans with `[ "$X" = "true" ]`: only lowercase true/false are meaningful, '' means false. */
function bool(def: boolean) {
  return field(
    { kind: 'boolean', default: String(def) },
    def,
    (s) => s === 'true',
    (s) => (s === 'true' || s === 'false' || s === '' ? undefined : 'must be true or false (lowercase)'),
  );
}
function oneOf<const T extends readonly [string, ...string[]]>(values: T, def: T[number]) {
  return field(
    { kind: 'enum', default: def, allowed: values },
    def,
    (s) => s as T[number],
    (s) => ((values as readonly string[]).includes(s) ? undefined : `must be one of: ${values.join(', ')}`),
  );
}
function int(def: number) {
  return field(
    { kind: 'integer', default: String(def) },
    def,
    (s) => Number(s),
    (s) => (/^\d+$/.test(s) ? undefined : 'must be a whole number'),
  );
}
function imageRef(def: string, optional = true) {
  return field<string>(
    { kind: 'string', default: def },
    def,
    (s) => s,
    (s) => {
      if (s === '' && optional) return undefined;
      // Any transport canvos-lite reads: a registry reference (bare or docker://), oci:DIR[:tag], docker-archive:FILE.
      try {
        parseImageSpec(s);
        return undefined;
      } catch (e) {
        return `must be an image reference ([registry/]repository[:tag], oci:DIR[:tag] or docker-archive:FILE): ${(e as Error).message}`;
      }
    },
  );
}

// distribution/reference grammar pieces (repository path components are lowercase).
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REGISTRY_RE = new RegExp(`^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\\d+)?(?:/${COMPONENT})*$`);
const REPO_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_PART_RE = /^[A-Za-z0-9_.-]*$/;
const TAGLIKE_RE = /^[\w][\w.-]{0,127}$/;
/** A Palette Edge version (`v4.9.38`, `v4.10.0-rc.2`). */
export const PE_VERSION_RE = /^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;
const K8S_VERSION_RE = /^(?:\d+\.\d+\.\d+)?$/;
const NUMERIC_VERSION_RE = /^\d+(?:\.\d+)*$/;

const DEFAULT_PUB_REPO = 'us-docker.pkg.dev/palette-images';
/** Where FIPS builds pull Spectro images from when SPECTRO_PUB_REPO is left at its default (Earthfile 13–17). */
export const FIPS_PUB_REPO = 'us-docker.pkg.dev/palette-images-fips';

/** The supported OS distributions. */
export const OS_DISTRIBUTIONS = ['ubuntu', 'opensuse-leap', 'rhel', 'sles'] as const;
/** The supported Kubernetes distributions. */
export const K8S_DISTRIBUTIONS = ['k3s', 'rke2', 'kubeadm', 'kubeadm-fips', 'nodeadm', 'canonical'] as const;
/** OS_VERSION of opensuse-leap (CanvOS os_version.json: 15.6). */
export const OPENSUSE_LEAP_RE = /^15\.\d+$/;
/** Ubuntu OS_VERSION values the Earthfile's base-image selection understands (canvos.md §1.1). */
export const UBUNTU_VERSIONS = ['20', '22', '20.04', '22.04', '24.04'] as const;

const ARGS_SHAPE = {
  customTag: str('', TAG_PART_RE, 'letters, digits, ".", "_" or "-" (it becomes part of an image tag)'),
  imageRegistry: str(
    'ttl.sh',
    REGISTRY_RE,
    'a registry host[:port] with an optional lowercase namespace, e.g. ttl.sh or docker.io/myorg',
  ),
  osDistribution: oneOf(OS_DISTRIBUTIONS, 'ubuntu'),
  imageRepo: derived('$OS_DISTRIBUTION', REPO_RE, 'a lowercase repository path, e.g. ubuntu or edge/provider'),
  osVersion: str('22.04', NUMERIC_VERSION_RE, 'a numeric version such as 22.04 or 15.6'),
  k8sDistribution: oneOf(K8S_DISTRIBUTIONS, 'k3s'),
  isoName: str('palette-edge-installer', /^[A-Za-z0-9._-]+$/, 'a file base name (letters, digits, ".", "_", "-")'),
  arch: oneOf(['amd64', 'arm64'], 'amd64'),
  httpsProxy: str(''),
  httpProxy: str(''),
  noProxy: str(''),
  updateKernel: bool(false),
  clusterconfig: str(''),
  cisHardening: bool(false),
  edgeCustomConfig: str('.edge-custom-config.yaml'),
  forceInteractiveInstall: bool(false),
  k8sVersion: str('', K8S_VERSION_RE, 'empty (all versions of k8s_version.json) or x.y.z, e.g. 1.30.4'),
  baseImage: imageRef(''),
  peVersion: str('v4.10.0-rc.2', PE_VERSION_RE, 'a Palette Edge version such as v4.9.38'),
  kairosVersion: str('v4.1.2', TAGLIKE_RE, 'a version tag'),
  kairosInitVersion: str('v0.17.1', TAGLIKE_RE, 'a version tag'),
  k3sFlavorTag: str('k3s1', TAGLIKE_RE, 'a tag suffix such as k3s1'),
  rke2FlavorTag: str('rke2r1', TAGLIKE_RE, 'a tag suffix such as rke2r1'),
  k3sProviderVersion: str('v4.10.3', TAGLIKE_RE, 'a version tag'),
  kubeadmProviderVersion: str('v4.10.1', TAGLIKE_RE, 'a version tag'),
  rke2ProviderVersion: str('v4.10.3', TAGLIKE_RE, 'a version tag'),
  nodeadmProviderVersion: str('v4.9.3', TAGLIKE_RE, 'a version tag'),
  canonicalProviderVersion: str('v4.10.1', TAGLIKE_RE, 'a version tag'),
  etcdVersion: str('v3.5.13'),
  kineVersion: str('0.15.0'),
  drbdVersion: str('9.2.13'),
  spectroPubRepo: str(DEFAULT_PUB_REPO, REGISTRY_RE, 'a registry host with an optional namespace'),
  builder3rdpartyVersion: str('4.8', TAGLIKE_RE, 'a version tag'),
  spectroThirdPartyImage: derived(`${DEFAULT_PUB_REPO}/third-party/spectro-third-party:$BUILDER_3RDPARTY_VERSION`),
  alpineTag: str('3.20', TAGLIKE_RE, 'a tag'),
  alpineImg: derived('$SPECTRO_PUB_REPO/edge/canvos/alpine:$ALPINE_TAG'),
  spectroLuetRepo: str(`${DEFAULT_PUB_REPO}/edge`, REGISTRY_RE, 'a registry host with an optional namespace'),
  kairosBaseImageUrl: derived('$SPECTRO_PUB_REPO/edge', REGISTRY_RE, 'a registry host with an optional namespace'),
  baseImageUrl: str('quay.io/kairos'),
  osbuilderVersion: str('v0.400.3'),
  osbuilderImage: derived('quay.io/kairos/osbuilder-tools:$OSBUILDER_VERSION'),
  aurorabootVersion: str('v0.26.2'),
  aurorabootImage: derived('quay.io/kairos/auroraboot:$AURORABOOT_VERSION'),
  golangVersion: str('1.23'),
  disableSelinux: bool(true),
  ubuntuProAttach: bool(false),
  fipsEnabled: bool(false),
  twoNode: bool(false),
  isMaas: bool(false),
  maasImageName: str('kairos-ubuntu-maas'),
  isUki: bool(false),
  myOrg: str('ACME Corp'),
  expirationInDays: int(5475),
  includeMsSecurebootKeys: bool(true),
  autoEnrollSecurebootKeys: bool(false),
  ukiBringYourOwnKeys: bool(false),
  enrollSpectroExtensionCert: bool(true),
  spectroExtensionCertImage: imageRef(
    'us-east1-docker.pkg.dev/spectro-images/dev/arun/sysext/palette-sysext-cert:latest',
  ),
  bundleK8sAndAgentProvider: bool(false),
  cmdline: str('stylus.registration'),
  branding: str('Palette eXtended Kubernetes Edge'),
  efiMaxSize: int(2048),
  efiImgSize: int(2200),
  debug: bool(false),
  isCloudImage: bool(false),
  region: str(''),
  s3Bucket: str(''),
  s3Key: str(''),
  installNvidiaGpuDrivers: bool(false),
  nvidiaDriverBranch: str('580', /^\d+$/, 'a driver branch number such as 580'),
  nvidiaDriverType: oneOf(['open', 'proprietary'], 'open'),
  nvidiaUseCudaRepo: bool(true),
  nvidiaInstallFabricmanager: bool(true),
  nvidiaInstallImex: bool(true),
  nvidiaInstallContainerToolkit: bool(false),
  nvidiaRebuildInitrd: bool(true),
  installAmdGpuDrivers: bool(false),
  amdgpuDriverSource: oneOf(['dkms', 'inbox'], 'dkms'),
  amdgpuDriverRelease: str('31.40', NUMERIC_VERSION_RE, 'a release marker such as 31.40 or 7.2.1'),
  amdgpuArtifactPath: str(''),
  amdgpuRebuildInitrd: bool(false),
  amdgpuInstallSmi: bool(true),
  baseImageTag: str(
    '',
    /^(?:[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*:[\w][\w.-]{0,127})?$/,
    'empty or REPOSITORY:TAG, e.g. kairos-ubuntu:22.04-core-amd64-generic-v0.17.1',
  ),
  isJetson: oneOf(['', 'true', 'false'], ''),
  stylusBase: imageRef(''),
  stylusPackageBase: imageRef(''),
  binType: oneOf(['', 'palette', 'vertex'], ''),
  cliImage: imageRef(''),
  imageTag: str('', /^(?:[\w][\w.-]{0,127})?$/, 'empty or a tag suffix such as v4.9.38-demo'),
  imagePath: imageRef(''),
  baseK8sVersion: str('', /^(?:[\w][\w.+-]{0,127})?$/, 'empty or a luet package version such as 1.30.4-k3s1'),
  k8sDistributionTag: str('', /^(?:[\w][\w.-]{0,127})?$/, 'empty or a flavor tag such as k3s1'),
  providerBase: imageRef(''),
};

/** Information about every argument, by canonical name (kind, CanvOS default, allowed values). */
export const ARG_INFO: ReadonlyMap<ArgName, ArgInfo> = new Map(
  Object.entries(ARGS_SHAPE).map(([key, schema]) => {
    const name = argNameForKey(key);
    if (!name) throw new Error(`schema key ${key} is not in ARG_NAMES`); // programming error, caught by tests
    return [name, INFO.get(schema) as ArgInfo];
  }),
);

/** The BuildArgs key of an argument name (`OS_VERSION` → `osVersion`). */
export function argKeyOf(name: ArgName): keyof BuildArgs {
  return argKey(name) as keyof BuildArgs;
}

/** Per-version source of the Kubernetes binaries (canvos.yaml `k8s:` map; a canvos-lite extension). */
export const K8sSourceSchema = z.union([
  z.strictObject({
    /** An image (e.g. a luet package image) whose whole filesystem is the k8s layer. */
    image: z.string().min(1),
  }),
  z.strictObject({
    /** A single file downloaded and verified, e.g. the k3s binary. */
    url: z.url({ protocol: /^https?$/ }),
    sha256: z.string().regex(/^(?:sha256:)?[0-9a-f]{64}$/, { error: 'must be 64 lowercase hex digits' }),
    /** Target path. Default: /usr/bin/k3s for k3s (required for other distributions). */
    path: z
      .string()
      .regex(/^\/[^\0]+$/, { error: 'must be an absolute path' })
      .optional(),
    /** Default: 0755. */
    mode: z.union([z.number().int(), z.string().regex(/^0?[0-7]{3,4}$/)]).optional(),
  }),
]);
/** Where one Kubernetes version's binaries come from. */
export type K8sSource = z.infer<typeof K8sSourceSchema>;

/**
 * Default image carrying `k8s/<dist>@<BASE_K8S_VERSION>`, assuming luet's docker-repository layout
 * (`<repo>:<name>-<category>-<version>`, `+` → `-`). Placeholders: {luetRepo} {luetArch} {dist} {version} {baseVersion} {arch}.
 */
export const DEFAULT_K8S_IMAGE_PATTERN = '{luetRepo}/luet-repo-{luetArch}:{dist}-k8s-{baseVersion}';

/** The validated, typed build arguments (every CanvOS argument, defaults applied, derived defaults resolved). */
export type BuildArgs = { [K in keyof typeof ARGS_SHAPE]: Exclude<z.output<(typeof ARGS_SHAPE)[K]>, undefined> };

function fillDerived(a: z.output<z.ZodObject<typeof ARGS_SHAPE>>): BuildArgs {
  // FIPS switches the Spectro repo only when it was left at its default (Earthfile 13–17); later defaults see it.
  const spectroPubRepo = a.fipsEnabled && a.spectroPubRepo === DEFAULT_PUB_REPO ? FIPS_PUB_REPO : a.spectroPubRepo;
  return {
    ...a,
    spectroPubRepo,
    imageRepo: a.imageRepo ?? a.osDistribution,
    spectroThirdPartyImage:
      a.spectroThirdPartyImage ?? `${DEFAULT_PUB_REPO}/third-party/spectro-third-party:${a.builder3rdpartyVersion}`,
    alpineImg: a.alpineImg ?? `${spectroPubRepo}/edge/canvos/alpine:${a.alpineTag}`,
    kairosBaseImageUrl: a.kairosBaseImageUrl ?? `${spectroPubRepo}/edge`,
    osbuilderImage: a.osbuilderImage ?? `quay.io/kairos/osbuilder-tools:${a.osbuilderVersion}`,
    aurorabootImage: a.aurorabootImage ?? `quay.io/kairos/auroraboot:${a.aurorabootVersion}`,
  };
}

/** Schema of the build arguments, camelCase keys (unknown keys are rejected; callers warn about them first). */
export const BuildArgsSchema = z
  .strictObject(ARGS_SHAPE)
  .superRefine((a, ctx) => {
    if (
      a.osDistribution === 'ubuntu' &&
      !(UBUNTU_VERSIONS as readonly string[]).includes(a.osVersion) &&
      !a.baseImage
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['osVersion'],
        message: `must be one of ${UBUNTU_VERSIONS.join(', ')} for ubuntu (or set BASE_IMAGE)`,
      });
    }
    // CanvOS's only openSUSE base is Leap 15 (kairos-opensuse:leap-15.x); without this, leap-22.04 fails much later.
    if (a.osDistribution === 'opensuse-leap' && !OPENSUSE_LEAP_RE.test(a.osVersion)) {
      ctx.addIssue({
        code: 'custom',
        path: ['osVersion'],
        message: `must be 15.<minor> for opensuse-leap, e.g. 15.6 (${a.osVersion} is${a.osVersion === '22.04' ? " CanvOS's Ubuntu default" : ' not a Leap 15 release'})`,
      });
    }
    if (a.fipsEnabled && a.updateKernel) {
      ctx.addIssue({
        code: 'custom',
        path: ['updateKernel'],
        message: 'UPDATE_KERNEL and FIPS_ENABLED are mutually exclusive; set one of them to false',
      });
    }
    if (a.installNvidiaGpuDrivers && a.installAmdGpuDrivers) {
      ctx.addIssue({
        code: 'custom',
        path: ['installAmdGpuDrivers'],
        message: 'INSTALL_NVIDIA_GPU_DRIVERS and INSTALL_AMD_GPU_DRIVERS are mutually exclusive; enable only one',
      });
    }
  })
  .transform(fillDerived);

/** The input accepted by {@link BuildArgsSchema}: any subset of the arguments, as strings, booleans or numbers. */
export type BuildArgsInput = z.input<typeof BuildArgsSchema>;
