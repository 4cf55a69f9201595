/**
 * CanvOS conformance (issue #12) over fixtures/canvos-project, a CanvOS-shaped checkout with every project file and
 * a `.arg` setting every argument the inventory warns about. Each inventory entry is checked here: honoured ones by
 * their effect in the pushed provider image (umoci), the ISO (xorriso, unsquashfs) or the plan; the others by their
 * refusal (exit 3) or warning. The last test fails when an inventory entry was not checked.
 */
import { chmod, cp, readFile, readlink, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INVENTORY, type InventoryEntry } from '../../src/provider/inventory.js';
import { installerIsoInputs } from '../../src/provider/installer-iso.js';
import { loadBuildConfig } from '../../src/provider/load.js';
import { planProviderImages } from '../../src/provider/plan.js';
import { prepareBootFixture } from '../helpers/boot-fixture.js';
import { runCli } from '../helpers/cli.js';
import { startForwardProxy } from '../helpers/forward-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir, umoci } from '../helpers/tools.js';
import { imageLayerDigests, registryBlobPath, whiteoutProblems } from '../helpers/whiteouts.js';
import { pushFixtureImages } from './fixture-images.js';

let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let project: string;
let sets: string[]; // --set KEY=VALUE pointing the .arg at the test registry
let build: { code: number; stdout: string; stderr: string };
const covered = new Map<string, string>();
const cover = (name: string, how: string): void => void covered.set(name, how);
const FIXTURE = new URL('../../fixtures/canvos-project/', import.meta.url).pathname;
const TAG = 'k3s-1.30.4-v4.9.38-demo';

/** Run `canvos-lite <command>` in the project with the test's --set values first (later --set values win). */
async function cli(command: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    HOME: tmp.path,
    PATH: process.env.PATH,
    CANVOS_CACHE_DIR: join(tmp.path, 'cache'),
    SOURCE_DATE_EPOCH: '1700000000',
  };
  return runCli([command, '--insecure-registry', reg.host, ...sets.flatMap((s) => ['--set', s]), ...args], {
    env,
    cwd: project,
  });
}

async function sh(cmd: string, ...args: string[]): Promise<string> {
  const r = await run(cmd, args, {
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@e',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@e',
      LC_ALL: 'C',
    },
    cwd: project,
  });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The fixture's configuration with the test's --set values and `overrides`; keys set to null are left at CanvOS's default. */
async function config(overrides: Record<string, string | null> = {}) {
  const all: Record<string, string | null> = {
    ...Object.fromEntries(sets.map((s) => s.split(/=(.*)/s).slice(0, 2) as [string, string])),
    PE_VERSION: 'v4.9.38',
    ...overrides,
  };
  return loadBuildConfig({
    argFile: join(project, '.arg'),
    overrides: Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== null)),
  });
}

beforeAll(async () => {
  reg = await startRegistry();
  tmp = await tmpDir('canvos-conformance-');
  const refs = await pushFixtureImages(reg, join(tmp.path, 'images'));
  sets = refs.argLines
    .split('\n')
    .filter((l) =>
      /^(IMAGE_REGISTRY|SPECTRO_PUB_REPO|SPECTRO_LUET_REPO|SPECTRO_THIRD_PARTY_IMAGE|BASE_IMAGE)=/.test(l),
    );
  sets.push('UPDATE_KERNEL=false'); // its steps run commands, which the fixture base (no shell) cannot; see --dry-run below
  project = join(tmp.path, 'canvos');
  await cp(FIXTURE, project, { recursive: true });
  await chmod(join(project, 'overlay/files/etc/logrotate.d/stylus.conf'), 0o600); // CanvOS chmods it to 0644
  await sh(
    'openssl',
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(tmp.path, 'corp.key'),
    '-out',
    'certs/corp-proxy.crt',
    '-subj',
    '/CN=Corp Proxy CA/O=ACME',
    '-days',
    '3650',
  );
  await sh(
    'sh',
    '-c',
    `printf 'auth:\\n  username: luet\\n  password: luet-pw\\n  serveraddress: ${reg.host}\\n' > spectro-luet-auth.yaml && tar -cf local-ui.tar -C local-ui .`,
  );
  await sh('git', 'init', '-q', '-b', 'main');
  await sh('git', 'add', '-A');
  await sh('git', 'commit', '-q', '-m', 'canvos checkout');
  await sh('git', 'tag', 'v4.9.38');
  build = await cli('build', '--push');
}, 600_000);

afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
});

describe.sequential('CanvOS conformance over fixtures/canvos-project', () => {
  it('build --push succeeds; PE_VERSION from git describe, one image per k8s_version.json version', async () => {
    expect(build.code, build.stderr).toBe(0);
    for (const v of ['1.29.8', '1.30.4'])
      expect(build.stderr).toContain(`pushed ${reg.host}/out/ubuntu:k3s-${v}-v4.9.38-demo`);
    for (const n of [
      'PE_VERSION',
      'K8S_VERSION',
      'k8s_version.json',
      'CUSTOM_TAG',
      'IMAGE_REGISTRY',
      'IMAGE_REPO',
      'K8S_DISTRIBUTION',
      '.arg',
    ])
      cover(n, 'provider image tags');
    const inspect = JSON.parse(
      await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/out/ubuntu:${TAG}`]),
    ) as { Architecture: string; Layers: string[] };
    expect(inspect.Architecture).toBe('amd64');
    cover('ARCH', 'image architecture');
    const layers = await imageLayerDigests(`docker://${reg.host}/out/ubuntu:${TAG}`);
    expect(await whiteoutProblems(layers.map((d) => registryBlobPath(reg.dataDir, d)))).toEqual([]);
  });

  it('every honoured provider-side input has its effect in the image (umoci unpack)', async () => {
    const layout = join(tmp.path, 'layout');
    await skopeo([
      'copy',
      '--insecure-policy',
      '--src-tls-verify=false',
      `docker://${reg.host}/out/ubuntu:${TAG}`,
      `oci:${layout}:img`,
    ]);
    await umoci(['unpack', '--rootless', '--image', `${layout}:img`, join(tmp.path, 'bundle')]);
    const root = join(tmp.path, 'bundle/rootfs');
    const read = (p: string) => readFile(join(root, p), 'utf8');
    const fixture = (p: string) => readFile(join(project, p), 'utf8');
    const checks: [string, () => Promise<void>][] = [
      [
        'OS_DISTRIBUTION',
        async () => expect(await read('etc/kairos-release')).toContain('KAIROS_NAME="kairos-core-ubuntu-22.04"'),
      ],
      [
        'OS_VERSION',
        async () =>
          expect(await read('etc/kairos-release')).toContain('KAIROS_IMAGE_LABEL="22.04-standard-amd64-generic-maas"'),
      ],
      [
        'IS_MAAS',
        async () =>
          expect(await read('system/oem/80_stylus_maas.yaml')).toBe(await fixture('cloudconfigs/80_stylus_maas.yaml')),
      ],
      [
        'cloudconfigs/80_stylus_maas.yaml',
        async () => expect(await read('system/oem/80_stylus_maas.yaml')).toContain('fixture: maas'),
      ],
      [
        'IS_JETSON',
        async () => expect(await read('etc/kairos/mount.yaml')).toBe(await fixture('cloudconfigs/mount.yaml')),
      ],
      [
        'cloudconfigs/mount.yaml',
        async () => expect(await read('etc/kairos/mount.yaml')).toContain('fixture: overlay /usr/local'),
      ],
      ['DISABLE_SELINUX', async () => expect(await read('etc/cos/bootargs.cfg')).toContain('selinux=0')],
      ['BASE_IMAGE', async () => expect(await read('etc/ssh/sshd_config')).toBe('PermitRootLogin no\n')],
      [
        'overlay/files/',
        async () => {
          expect(await read('etc/spectrocloud/custom-hardware-specs-lookup.json')).toBe(
            await fixture('overlay/files/etc/spectrocloud/custom-hardware-specs-lookup.json'),
          );
          expect((await stat(join(root, 'etc/logrotate.d/stylus.conf'))).mode & 0o777).toBe(0o644);
          expect(await stat(join(root, 'etc/kairos/.nousers')).then(() => true)).toBe(true);
          expect(await stat(join(root, 'opt/spectrocloud/bin/check-disk-size.sh')).catch(() => 'absent')).toBe(
            'absent',
          ); // provider image: etc/ only
        },
      ],
      [
        'certs/',
        async () => {
          const pem = await fixture('certs/corp-proxy.crt');
          expect((await read('etc/ssl/certs/ca-certificates.crt')).endsWith(pem)).toBe(true);
          expect(await readlink(join(root, 'etc/ssl/certs/corp-proxy.pem'))).toBe(
            '/usr/local/share/ca-certificates/corp-proxy.crt',
          );
          const hash = (await sh('openssl', 'x509', '-in', 'certs/corp-proxy.crt', '-noout', '-subject_hash')).trim();
          expect(await readlink(join(root, `etc/ssl/certs/${hash}.0`))).toBe('corp-proxy.pem');
        },
      ],
      [
        'EDGE_CUSTOM_CONFIG',
        async () => expect(await read('oem/.edge_custom_config.yaml')).toBe(await fixture('.edge-custom-config.yaml')),
      ],
      [
        'EDGE_CUSTOM_CONFIG file (.edge-custom-config.yaml)',
        async () => expect(await read('oem/.edge_custom_config.yaml')).toContain('fixture key'),
      ],
      [
        'SPECTRO_PUB_REPO',
        async () => expect(await read('etc/kairos/branding/stylus_config.yaml')).toBe('stylus: {}\n'),
      ],
      [
        'K3S_PROVIDER_VERSION',
        async () => expect(await read('system/providers/agent-provider-k3s')).toBe('#!agent-provider-k3s\n'),
      ],
      [
        'BUNDLE_K8S_AND_AGENT_PROVIDER',
        async () => expect(await read('etc/spectro-sysext/k8s-and-agent-provider-bundled')).toBe(''),
      ],
      ['SPECTRO_LUET_REPO', async () => expect(await read('usr/bin/k3s')).toBe('k3s 1.30.4 amd\n')],
      ['spectro-luet-auth.yaml', async () => expect(await read('usr/bin/k3s')).toBe('k3s 1.30.4 amd\n')], // auth failures: luet-auth.e2e.test.ts
      ['SPECTRO_THIRD_PARTY_IMAGE', async () => expect(await read('usr/bin/etcdctl')).toBe('#!etcdctl\n')],
      [
        'Dockerfile',
        async () => {
          expect(await read('etc/site-9.2.12.conf')).toBe(await fixture('overlay/dockerfile/site.conf'));
          const cfg = JSON.parse(await readFile(join(tmp.path, 'bundle/config.json'), 'utf8')) as {
            process: { env: string[] };
          };
          expect(cfg.process.env).toContain('SITE_CONFORMANCE=yes');
        },
      ],
      ['DRBD_VERSION', async () => expect(await read('etc/site-9.2.12.conf')).toBe('site=conformance\n')], // the Dockerfile's ARG
    ];
    for (const [name, check] of checks) {
      await check().catch((e: unknown) => {
        throw new Error(`${name}: ${(e as Error).message}`);
      });
      cover(name, 'provider image');
    }
  });

  it('every argument the inventory warns about is set in the .arg and produces its warning; no other warning', () => {
    const warnings = build.stderr.split('\n').filter((l) => l.startsWith('warning: '));
    const warnedArgs = INVENTORY.filter(
      (e) =>
        e.kind === 'arg' &&
        (e.status === 'warned' || (e.rules ?? []).some((r) => r.status === 'warned' && r.scope !== 'iso' && !r.when)),
    );
    for (const e of warnedArgs.filter((x) => x.name !== 'INSTALL_AMD_GPU_DRIVERS')) {
      expect(
        warnings.some((w) => w.includes(`: ${e.name}=`) && / has no effect in canvos-lite: /.test(w)),
        `${e.name}\n${warnings.join('\n')}`,
      ).toBe(true);
      cover(e.name, 'warning');
    }
    // The only other warning: certs/README.md, which update-ca-certificates does not trust.
    const others = warnings.filter((w) => !warnedArgs.some((e) => w.includes(`: ${e.name}=`)));
    expect(others).toEqual([
      expect.stringMatching(
        /^warning: .*certs\/README\.md is copied to \/usr\/local\/share\/ca-certificates but not trusted.*\[W_CERT_IGNORED\]$/,
      ),
    ]);
  });

  it('steps switched on by other arguments warn too (INSTALL_AMD_GPU_DRIVERS); kubeadm kernel headers run', async () => {
    const amd = await cli(
      'build',
      '--dry-run',
      '--set',
      'INSTALL_NVIDIA_GPU_DRIVERS=false',
      '--set',
      'INSTALL_AMD_GPU_DRIVERS=true',
    );
    expect(amd.stderr).toMatch(
      /warning: \(command line\):1: INSTALL_AMD_GPU_DRIVERS=true has no effect in canvos-lite: .*\[W_EXEC_STEP_SKIPPED\]/,
    );
    cover('INSTALL_AMD_GPU_DRIVERS', 'warning');
    const kubeadm = await cli('build', '--dry-run', '--set', 'K8S_DISTRIBUTION=kubeadm', '--set', 'K8S_VERSION=1.30.4');
    expect(kubeadm.stderr).not.toMatch(/K8S_DISTRIBUTION=kubeadm/);
    // The project's script runs in the image (for real in kernel.e2e.test.ts); without it, the apt-get equivalent.
    expect(kubeadm.stdout + kubeadm.stderr).toMatch(
      /scripts\/install-kernel-headers.sh RUN \/bin\/sh scripts\/install-kernel-headers.sh \(sha256:[0-9a-f]{16}…\)/,
    );
    await rename(join(project, 'scripts/install-kernel-headers.sh'), join(project, 'headers.away'));
    const apt = await cli(
      'build',
      '--dry-run',
      '--set',
      'K8S_DISTRIBUTION=kubeadm',
      '--set',
      'K8S_VERSION=1.30.4',
    ).finally(() => rename(join(project, 'headers.away'), join(project, 'scripts/install-kernel-headers.sh')));
    expect(apt.stdout + apt.stderr).toMatch(
      /kernel headers +RUN \/bin\/sh -c kver=.*apt-get install -y "linux-headers-\$kver"/,
    );
    // UPDATE_KERNEL=true (off in the main build: the fixture base cannot run commands): upgrade, post-kernel steps, headers.
    const uk = await cli('build', '--dry-run', '--set', 'UPDATE_KERNEL=true', '--set', 'K8S_VERSION=1.30.4');
    expect(uk.stderr).not.toMatch(/UPDATE_KERNEL=true has no effect/);
    expect(uk.stdout + uk.stderr).toMatch(
      /UPDATE_KERNEL step 1 RUN \/bin\/sh -c apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y linux-image-generic-hwe-22\.04 && .*apt-get upgrade -y --with-new-pkgs\n/,
    );
    expect(uk.stdout + uk.stderr).toMatch(
      /UPDATE_KERNEL step 2 RUN \/bin\/sh -c set -e; .*dracut -f "\/boot\/initrd-\$kver" "\$kver".*depmod -a "\$kver"\n +scripts\/install-kernel-headers.sh RUN /,
    );
    cover('UPDATE_KERNEL', 'dry-run steps (run for real in kernel.e2e.test.ts)');
    cover('scripts/install-kernel-headers.sh', 'dry-run steps');
    cover('cis-harden/', 'warning (CIS_HARDENING)');
  });

  it("TWO_NODE runs CanvOS's postgres + kine steps (listed by --dry-run; installed for real in two-node.e2e.test.ts)", async () => {
    const r = await cli('build', '--dry-run', '--set', 'TWO_NODE=true', '--set', 'K8S_VERSION=1.30.4');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toContain('kine/releases/download/v0.14.0/kine-amd64');
    cover('TWO_NODE', 'dry-run steps');
    cover('KINE_VERSION', 'kine download URL');
  });

  it('refused inputs exit 3 with the issue in the hint, before anything is written', async () => {
    const cases: [string, [string, ...string[]], RegExp][] = [
      [
        'TWO_NODE',
        ['build', '--dry-run', '--set', 'TWO_NODE=true', '--set', 'ARCH=arm64'],
        /TWO_NODE=true needs OS_DISTRIBUTION=ubuntu or opensuse-leap with ARCH=amd64/,
      ],
      [
        'IS_UKI',
        ['build', '--dry-run', '--set', 'IS_UKI=true', '--set', 'OS_VERSION=24.04'],
        /IS_UKI=true is not supported[\s\S]*#16 UKI/,
      ],
      ['IS_MAAS', ['iso'], /IS_MAAS=true is not supported by canvos-lite: the MAAS disk image[\s\S]*#17/],
      ['IS_CLOUD_IMAGE', ['iso', '--set', 'IS_MAAS=false'], /IS_CLOUD_IMAGE=true is not supported[\s\S]*#17/],
      ['IS_MAAS', ['build-all', '--output', 'oci:refused-out'], /IS_MAAS=true is not supported/], // before any image is built
    ];
    for (const [name, args, re] of cases) {
      const r = await cli(...args);
      expect(r.code, `${name}: ${r.stderr}`).toBe(3);
      expect(r.stderr, name).toMatch(re);
      cover(name, 'refusal');
    }
    expect(await stat(join(project, 'refused-out')).catch(() => 'absent')).toBe('absent');
    cover('cloudconfigs/80_stylus_uki.yaml', 'refusal (IS_UKI)');
    cover('secure-boot/', 'refusal (IS_UKI)');
    // Plain COPYs in CanvOS: a missing Jetson mount.yaml / MAAS cloudconfig fails the build.
    for (const [file, hint] of [
      ['cloudconfigs/mount.yaml', /hint: IS_JETSON=true, so CanvOS copies cloudconfigs\/mount.yaml/],
      ['cloudconfigs/80_stylus_maas.yaml', /hint: IS_MAAS=true, so CanvOS copies cloudconfigs\/80_stylus_maas.yaml/],
    ] as const) {
      await rename(join(project, file), join(project, `${file}.away`));
      const r = await cli('build', '--output', 'oci:missing-out', '--set', 'K8S_VERSION=1.30.4').finally(() =>
        rename(join(project, `${file}.away`), join(project, file)),
      );
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(hint);
    }
  });

  it('derived and version arguments change the plan as CanvOS derives them', async () => {
    const plan = async (o: Record<string, string | null>) =>
      JSON.stringify(planProviderImages(await config(o), ['1.30.4'], { projectDir: project }));
    const checks: [string, Record<string, string | null>, string][] = [
      [
        'KAIROS_INIT_VERSION',
        { BASE_IMAGE: '', KAIROS_INIT_VERSION: 'v0.9.9' },
        'kairos-ubuntu:22.04-core-amd64-generic-v0.9.9',
      ],
      [
        'KAIROS_BASE_IMAGE_URL',
        { BASE_IMAGE: '', KAIROS_BASE_IMAGE_URL: 'mirror.example.com/edge' },
        '"baseImage":"mirror.example.com/edge/kairos-ubuntu:',
      ],
      ['BASE_IMAGE_TAG', { BASE_IMAGE: '', BASE_IMAGE_TAG: 'kairos-ubuntu:custom' }, '/kairos-ubuntu:custom"'],
      ['K3S_FLAVOR_TAG', { K3S_FLAVOR_TAG: 'k3s9' }, 'luet-repo-amd:k3s-k8s-1.30.4-k3s9'],
      ['RKE2_FLAVOR_TAG', { K8S_DISTRIBUTION: 'rke2', RKE2_FLAVOR_TAG: 'rke2r9' }, 'rke2-k8s-1.30.4-rke2r9'],
      ['RKE2_PROVIDER_VERSION', { K8S_DISTRIBUTION: 'rke2', RKE2_PROVIDER_VERSION: 'v9.1.1' }, 'provider-rke2:v9.1.1'],
      [
        'KUBEADM_PROVIDER_VERSION',
        { K8S_DISTRIBUTION: 'kubeadm', KUBEADM_PROVIDER_VERSION: 'v9.1.2' },
        'provider-kubeadm:v9.1.2',
      ],
      [
        'NODEADM_PROVIDER_VERSION',
        { K8S_DISTRIBUTION: 'nodeadm', NODEADM_PROVIDER_VERSION: 'v9.1.3' },
        'provider-nodeadm:v9.1.3',
      ],
      [
        'CANONICAL_PROVIDER_VERSION',
        { K8S_DISTRIBUTION: 'canonical', CANONICAL_PROVIDER_VERSION: 'v9.1.4' },
        'provider-canonical:v9.1.4',
      ],
      ['K8S_DISTRIBUTION_TAG', { K8S_DISTRIBUTION_TAG: 'k3s7' }, 'k3s-k8s-1.30.4-k3s7'],
      ['BASE_K8S_VERSION', { BASE_K8S_VERSION: '1.30.4-k3s5' }, 'k3s-k8s-1.30.4-k3s5'],
      [
        'PROVIDER_BASE',
        { PROVIDER_BASE: 'mirror.example.com/provider-k3s:x' },
        '"ref":"mirror.example.com/provider-k3s:x"',
      ],
      ['STYLUS_BASE', { STYLUS_BASE: 'mirror.example.com/stylus:x' }, '"ref":"mirror.example.com/stylus:x"'],
      ['IMAGE_TAG', { IMAGE_TAG: 'v1-custom' }, '"tag":"k3s-1.30.4-v1-custom"'],
      ['IMAGE_PATH', { IMAGE_PATH: 'mirror.example.com/edge/img:t1' }, '"imageRef":"mirror.example.com/edge/img:t1"'],
      ['BIN_TYPE', { BIN_TYPE: 'vertex' }, '/binaries/etcdctl/latest/vertex/amd64/etcdctl'],
      [
        'FIPS_ENABLED',
        { FIPS_ENABLED: 'true', UPDATE_KERNEL: 'false' },
        '/binaries/etcdctl/latest/vertex/amd64/etcdctl',
      ],
      [
        'BUILDER_3RDPARTY_VERSION',
        { SPECTRO_THIRD_PARTY_IMAGE: null, BUILDER_3RDPARTY_VERSION: '4.9' },
        'spectro-third-party:4.9',
      ],
    ];
    for (const [name, o, want] of checks) {
      expect(await plan(o), name).toContain(want);
      cover(name, 'plan');
    }
  });

  it('HTTP_PROXY / HTTPS_PROXY / NO_PROXY from .arg route the registry traffic', async () => {
    const proxy = await startForwardProxy();
    try {
      const via = await cli(
        'build',
        '--dry-run',
        '--set',
        `HTTP_PROXY=${proxy.url}`,
        '--set',
        `HTTPS_PROXY=${proxy.url}`,
      );
      expect(via.code, via.stderr).toBe(0);
      expect(proxy.seen).toContain(`CONNECT ${reg.host}`); // undici tunnels plain-HTTP registry requests too
      const seen = proxy.seen.length;
      const bypass = await cli('build', '--dry-run', '--set', `HTTP_PROXY=${proxy.url}`, '--set', 'NO_PROXY=127.0.0.1');
      expect(bypass.code, bypass.stderr).toBe(0);
      expect(proxy.seen.length).toBe(seen);
    } finally {
      proxy.server.closeAllConnections();
      proxy.server.close();
    }
    for (const n of ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) cover(n, 'proxy');
  });

  it('the installer ISO has every honoured ISO-side input (xorriso, unsquashfs)', async () => {
    const fx = await prepareBootFixture();
    const r = await cli(
      'iso',
      '--json',
      '--set',
      'IS_MAAS=false',
      '--set',
      'IS_CLOUD_IMAGE=false',
      '--set',
      `BASE_IMAGE=oci:${fx.layoutDir}:${fx.tag}`,
    );
    expect(r.code, r.stderr).toBe(0);
    const iso = join(project, 'build/palette-edge-installer.iso');
    expect((JSON.parse(r.stdout) as { isoPath: string }).isoPath).toBe(iso);
    cover('ISO_NAME', 'ISO file name');
    const out = join(tmp.path, 'iso');
    const x = await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', out]);
    expect(x.code, x.stderr).toBe(0);
    const isoFile = (p: string) => readFile(join(out, p), 'utf8');
    const grub = await isoFile('boot/grub2/grub.cfg');
    expect(grub).toMatch(/^set default=2$/m);
    cover('FORCE_INTERACTIVE_INSTALL', 'grub default entry');
    expect(grub).toContain('rd.immucore.debug');
    cover('DEBUG', 'grub command line');
    expect(grub).toContain('menuentry "fixture menu"');
    cover('overlay/files-iso/', "the project's grub.cfg");
    expect(await isoFile('files-iso/config.yaml')).toBe(await readFile(join(project, 'user-data'), 'utf8'));
    cover('user-data', 'ISO');
    expect(await isoFile('opt/spectrocloud/content/core.zst_part00')).toBe('zstd-content-bundle-bytes\n');
    cover('content-*/', 'ISO');
    expect(await isoFile('opt/spectrocloud/clusterconfig/spc.tgz')).toBe('cluster-definition-bytes\n');
    cover('CLUSTERCONFIG', 'ISO');
    cover('CLUSTERCONFIG file (spc.tgz)', 'ISO');
    expect(await isoFile('.edge_custom_config.yaml')).toContain('fixture key');
    const ls = await run('unsquashfs', ['-lln', join(out, 'rootfs.squashfs')]);
    cover('local-ui.tar', 'rootfs.squashfs');
    for (const p of [
      'opt/spectrocloud/ui/index.html',
      'etc/site-9.2.12.conf',
      'opt/spectrocloud/bin/check-disk-size.sh',
      'usr/lib/os-release.tmpl',
      'etc/kairos/mount.yaml',
      'usr/local/share/ca-certificates/corp-proxy.crt',
      'etc/kairos/branding/grub_menu.cfg',
    ]) {
      expect(ls.stdout, p).toContain(`squashfs-root/${p}`);
    }
    // A missing CLUSTERCONFIG file is a warning (CanvOS COPY --if-exists), shown without building another ISO.
    const warnings: string[] = [];
    await installerIsoInputs(await config({ CLUSTERCONFIG: 'absent.tgz', IS_MAAS: 'false', IS_CLOUD_IMAGE: 'false' }), {
      projectDir: project,
      onWarning: (c) => warnings.push(c),
    });
    expect(warnings).toEqual(['W_CLUSTERCONFIG_MISSING']);
  });

  it('every inventory entry was checked above', () => {
    const unchecked = INVENTORY.filter((e: InventoryEntry) => !covered.has(e.name)).map((e) => e.name);
    expect(unchecked).toEqual([]);
  });
});
