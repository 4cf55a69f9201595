import { describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { parseArgText } from '../../src/provider/arg-file.js';
import { parseConfigYaml } from '../../src/provider/config-file.js';
import { parseK8sVersions, selectK8sVersions } from '../../src/provider/k8s-versions.js';
import { BUNDLED_SENTINEL, planProviderImages } from '../../src/provider/provider-plan.js';
import { readFileSync } from 'node:fs';

const versionsJson = parseK8sVersions(
  readFileSync(new URL('../../fixtures/config/k8s_version.json', import.meta.url), 'utf8'),
);
const ARG =
  'CUSTOM_TAG=demo\nIMAGE_REGISTRY=ttl.sh\nOS_DISTRIBUTION=ubuntu\nIMAGE_REPO=$OS_DISTRIBUTION\nOS_VERSION=22.04\nK8S_DISTRIBUTION=k3s\nARCH=amd64\nPE_VERSION=v4.9.38\n';

describe('provider plan', () => {
  it('K8S_VERSION empty → one plan per listed version, sharing every layer but k8s', () => {
    const c = parseArgText(ARG);
    const versions = selectK8sVersions(c, versionsJson);
    const plan = planProviderImages(c, versions, { projectDir: '/proj' });
    expect(plan.images.map((p) => p.imageRef)).toEqual(versions.map((v) => `ttl.sh/ubuntu:k3s-${v}-v4.9.38-demo`));
    expect(plan.images).toHaveLength(6);
    expect(plan.bundled).toBe(true);
    expect(plan.baseImage).toBe('us-docker.pkg.dev/palette-images/edge/kairos-ubuntu:22.04-core-amd64-generic-v0.17.1');
    expect(plan.sharedLayers.map((l) => l.name)).toEqual([
      'os-config',
      'overlay',
      'agent-provider',
      'stylus',
      'finalize',
    ]);
    for (const img of plan.images) {
      expect(img.layers.map((l) => l.name)).toEqual([
        'os-config',
        'overlay',
        'agent-provider',
        'stylus',
        'finalize',
        `k8s-${img.k8sVersion}`,
      ]);
      expect(img.layers.slice(0, 5)).toEqual(plan.sharedLayers);
      img.layers.slice(0, 5).forEach((l, i) => expect(l).toBe(plan.sharedLayers[i])); // same objects: build once
      const k8s = img.layers[5];
      expect(k8s?.shared).toBe(false);
      expect(k8s?.items).toEqual([
        {
          op: 'copy',
          source: {
            kind: 'image',
            ref: `us-docker.pkg.dev/palette-images/edge/luet-repo-amd:k3s-k8s-${img.baseK8sVersion}`,
            path: '/',
            exclude: ['/var/cache'],
          },
          target: '/',
        },
      ]);
      expect(img.baseK8sVersion).toBe(`${img.k8sVersion}-k3s1`);
    }
    expect(plan.sourceImages).toContain('us-docker.pkg.dev/palette-images/edge/kairos-io/provider-k3s:v4.10.3');
    expect(plan.sourceImages).toContain('us-docker.pkg.dev/palette-images/edge/stylus-framework-linux-amd64:v4.9.38');
    expect(plan.sourceImages).toContain('us-docker.pkg.dev/palette-images/third-party/spectro-third-party:4.8');
  });

  it('plans the CanvOS provider steps as layer items', () => {
    const c = parseArgText(`${ARG}K8S_VERSION=1.30.4\nEDGE_CUSTOM_CONFIG=my-edge.yaml\n`);
    const [img] = planProviderImages(c, selectK8sVersions(c, undefined), { projectDir: '/proj' }).images;
    const byName = Object.fromEntries((img?.layers ?? []).map((l) => [l.name, l.items]));
    expect(byName['os-config']).toEqual([
      {
        op: 'copy',
        source: { kind: 'ca-certs', dir: '/proj/certs', distro: 'ubuntu' },
        target: '/usr/local/share/ca-certificates',
        optional: true,
      },
      {
        op: 'edit',
        source: { kind: 'base-edit', path: '/etc/kairos-release', edit: 'kairos-release' },
        target: '/etc/kairos-release',
        mode: 0o644,
      },
      {
        op: 'edit',
        source: { kind: 'base-edit', path: '/etc/cos/bootargs.cfg', edit: 'bootargs' },
        target: '/etc/cos/bootargs.cfg',
        optional: true,
      },
      {
        op: 'whiteout',
        source: { kind: 'base-match', dir: '/var/lib/dbus', pattern: 'machine-id' },
        target: '/var/lib/dbus',
      },
      { op: 'create', source: { kind: 'generated', content: '' }, target: '/etc/machine-id', mode: 0o444 },
    ]);
    expect(byName['overlay']?.[0]).toEqual({
      op: 'copy',
      source: { kind: 'host-tree', path: '/proj/overlay/files/etc' },
      target: '/etc',
      optional: true,
    });
    expect(byName['agent-provider']).toContainEqual({
      op: 'copy',
      source: {
        kind: 'image',
        ref: 'us-docker.pkg.dev/palette-images/edge/kairos-io/provider-k3s:v4.10.3',
        path: '/usr/local/system/providers/agent-provider-*',
      },
      target: '/system/providers',
    });
    expect(byName['agent-provider']).toContainEqual({
      op: 'whiteout',
      source: { kind: 'base-match', dir: '/usr/local/system', pattern: 'providers' },
      target: '/usr/local/system',
    });
    expect(byName['agent-provider']).toContainEqual({
      op: 'create',
      source: { kind: 'generated', content: '' },
      target: BUNDLED_SENTINEL,
      mode: 0o644,
    });
    const stylus = 'us-docker.pkg.dev/palette-images/edge/stylus-framework-linux-amd64:v4.9.38';
    expect(byName['stylus']).toEqual([
      {
        op: 'copy',
        source: { kind: 'image', ref: stylus, path: '/etc/kairos/branding' },
        target: '/etc/kairos/branding',
      },
      {
        op: 'copy',
        source: { kind: 'image', ref: stylus, path: '/etc/kairos/80_stylus.yaml' },
        target: '/etc/kairos/80_stylus.yaml',
        optional: true,
      },
      {
        op: 'copy',
        source: { kind: 'image', ref: stylus, path: '/oem/stylus_config.yaml' },
        target: '/etc/kairos/branding/stylus_config.yaml',
      },
      {
        op: 'copy',
        source: { kind: 'image', ref: stylus, path: '/etc/elemental/config.yaml' },
        target: '/etc/elemental/config.yaml',
      },
      // An EDGE_CUSTOM_CONFIG written explicitly but absent is warned about (CanvOS copies it only if present).
      {
        op: 'copy',
        source: { kind: 'host-file', path: '/proj/my-edge.yaml' },
        target: '/oem/.edge_custom_config.yaml',
        optional: true,
        missingWarning:
          '.arg:10: EDGE_CUSTOM_CONFIG=my-edge.yaml: /proj/my-edge.yaml does not exist, so no edge custom config is added (CanvOS copies it only if it exists)',
      },
    ]);
    expect(byName['finalize']?.slice(0, 2)).toEqual([
      { op: 'whiteout', source: { kind: 'base-match', dir: '/etc/ssh', pattern: 'ssh_host_*' }, target: '/etc/ssh' },
      { op: 'whiteout', source: { kind: 'base-match', dir: '/etc/ssh', pattern: 'moduli' }, target: '/etc/ssh' },
    ]);
  });

  it('per-version k8s sources from canvos.yaml: url (k3s default path) and image', () => {
    const sha = 'b'.repeat(64);
    const c = parseConfigYaml(
      `peVersion: v4.9.38\nk8s:\n  "1.30.4": { url: "https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1/k3s?token=abc", sha256: "sha256:${sha}" }\n  "1.31.2": { image: reg.local/k8s:1.31.2 }\n`,
    );
    const plan = planProviderImages(c, ['1.30.4', '1.31.2']);
    const k = plan.images.map((i) => i.layers.at(-1));
    expect(k[0]?.items).toEqual([
      {
        op: 'copy',
        source: {
          kind: 'url',
          url: 'https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1/k3s?token=abc',
          sha256: sha,
        },
        target: '/usr/bin/k3s',
        mode: 0o755,
      },
    ]);
    expect(k[0]?.description).not.toContain('token'); // descriptions end up in image history
    expect(k[1]?.items[0]?.source).toEqual({
      kind: 'image',
      ref: 'reg.local/k8s:1.31.2',
      path: '/',
      exclude: ['/var/cache'],
    });
    const rke = parseConfigYaml(
      `k8sDistribution: rke2\nk8s:\n  "1.30.4": { url: "https://x/rke2", sha256: "${sha}" }\n`,
    );
    expect(() => planProviderImages(rke, ['1.30.4'])).toThrow(/needs a target path/);
  });

  it('systemd ≥ 255 bases get neither agent provider nor k8s layers unless BUNDLE_K8S_AND_AGENT_PROVIDER=true', () => {
    const c = parseArgText(ARG);
    const sysext = planProviderImages(c, ['1.30.4', '1.31.2'], { supportsSystemdExtensions: true });
    expect(sysext.bundled).toBe(false);
    expect(sysext.images[0]?.layers.map((l) => l.name)).toEqual(['os-config', 'overlay', 'stylus', 'finalize']);
    const forced = planProviderImages(parseArgText(`${ARG}BUNDLE_K8S_AND_AGENT_PROVIDER=true\n`), ['1.30.4'], {
      supportsSystemdExtensions: true,
    });
    expect(forced.bundled).toBe(true);
    expect(forced.images[0]?.layers.map((l) => l.name)).toContain('k8s-1.30.4');
  });

  it('distro-specific CA paths, Jetson and MAAS extras', () => {
    const suse = planProviderImages(
      parseArgText('OS_DISTRIBUTION=opensuse-leap\nOS_VERSION=15.6\nIS_MAAS=true\n'),
      ['1.30.4'],
      { projectDir: '/p' },
    );
    const items = suse.sharedLayers[0]?.items ?? [];
    expect(items[0]).toEqual({
      op: 'copy',
      source: { kind: 'ca-certs', dir: '/p/certs', distro: 'opensuse-leap' },
      target: '/usr/share/pki/trust/anchors',
      optional: true,
    });
    // Plain COPY in CanvOS (no --if-exists): required, with a hint naming the switch.
    expect(items).toContainEqual(
      expect.objectContaining({
        op: 'copy',
        source: { kind: 'host-file', path: '/p/cloudconfigs/80_stylus_maas.yaml' },
        target: '/system/oem/80_stylus_maas.yaml',
        missingHint: expect.stringMatching(/^IS_MAAS=true/),
      }),
    );
    const jetson = planProviderImages(
      parseArgText('ARCH=arm64\nBASE_IMAGE=quay.io/kairos/ubuntu:20.04-core-arm64-nvidia-jetson-agx-orin-v2.4.3\n'),
      ['1.30.4'],
      { projectDir: '/p' },
    );
    expect(jetson.sharedLayers[0]?.items).toContainEqual(
      expect.objectContaining({
        op: 'copy',
        source: { kind: 'host-file', path: '/p/cloudconfigs/mount.yaml' },
        target: '/etc/kairos/mount.yaml',
        missingHint: expect.stringMatching(/nvidia-jetson-agx-orin.*cloudconfigs\/mount\.yaml/),
      }),
    );
    expect(jetson.sharedLayers[0]?.items.find((i) => i.target === '/etc/kairos/mount.yaml')?.optional).toBeUndefined();
    expect(jetson.images[0]?.layers.at(-1)?.items[0]?.source).toMatchObject({
      ref: 'us-docker.pkg.dev/palette-images/edge/luet-repo-arm:k3s-k8s-1.30.4-k3s1',
    });
  });

  it('refuses shapes it cannot build and warns about steps that need execution', () => {
    const e = (() => {
      try {
        planProviderImages(parseArgText('CUSTOM_TAG=x\nTWO_NODE=true\nARCH=arm64\n'), ['1.30.4']);
      } catch (x) {
        return x as CanvosError;
      }
      throw new Error('expected error');
    })();
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.message).toBe(
      '.arg:2: TWO_NODE=true needs OS_DISTRIBUTION=ubuntu or opensuse-leap with ARCH=amd64 (found ubuntu/arm64)',
    );
    expect(() => planProviderImages(parseArgText('TWO_NODE=true\n'), ['1.30.4'])).not.toThrow(); // runs through the executor
    // IS_UKI: CanvOS's base-image copies cloudconfigs/80_stylus_uki.yaml and leaves bootargs.cfg alone
    const uki = planProviderImages(parseArgText('IS_UKI=true\nOS_VERSION=24.04\n'), ['1.30.4']).sharedLayers[0];
    expect(uki?.items.map((i) => i.target)).toContain('/etc/kairos/80_stylus_uki.yaml');
    expect(uki?.items.map((i) => i.target)).not.toContain('/etc/cos/bootargs.cfg');
    const warnings: string[] = [];
    planProviderImages(parseArgText('K8S_DISTRIBUTION=kubeadm\nUPDATE_KERNEL=true\n'), ['1.30.4'], {
      onWarning: (code, m) => warnings.push(`${code} ${m}`),
    });
    expect(warnings).toEqual([]); // UPDATE_KERNEL and the kubeadm kernel headers run through the executor (kernel.ts)
  });

  it('the same version listed twice is planned once', () => {
    expect(planProviderImages(parseArgText(ARG), ['1.30.4', '1.30.4']).images).toHaveLength(1);
  });
});
