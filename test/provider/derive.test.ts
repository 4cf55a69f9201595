import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { parseArgText } from '../../src/provider/arg-file.js';
import {
  baseK8sVersion,
  isJetsonBase,
  k8sSource,
  providerImage,
  providerImagePath,
  resolveBaseImage,
  stylusImage,
  thirdPartyBinaryPath,
} from '../../src/provider/derive.js';
import { editBootargs, editKairosRelease, kairosImageLabel } from '../../src/provider/os-edits.js';
import { packSnippet, systemUriTemplate } from '../../src/provider/pack-snippet.js';
import { planProviderImages } from '../../src/provider/provider-plan.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../../fixtures/config/${name}`, import.meta.url), 'utf8');
const cfg = (arg: string) => parseArgText(arg, '.arg');

describe('derived values', () => {
  it.each([
    ['OS_VERSION=22.04', 'us-docker.pkg.dev/palette-images/edge/kairos-ubuntu:22.04-core-amd64-generic-v0.17.1'],
    ['OS_VERSION=22', 'us-docker.pkg.dev/palette-images/edge/kairos-ubuntu:22.04-core-amd64-generic-v0.17.1'],
    [
      'OS_VERSION=20\nARCH=arm64',
      'us-docker.pkg.dev/palette-images/edge/kairos-ubuntu:20.04-core-arm64-generic-v0.17.1',
    ],
    [
      'OS_VERSION=24.04\nIS_UKI=true',
      'us-docker.pkg.dev/palette-images/edge/kairos-ubuntu:24.04-core-amd64-generic-v0.17.1-uki',
    ],
    [
      'OS_DISTRIBUTION=opensuse-leap\nOS_VERSION=15.6\nKAIROS_INIT_VERSION=v0.18.0',
      'us-docker.pkg.dev/palette-images/edge/kairos-opensuse:leap-15.6-core-amd64-generic-v0.18.0',
    ],
    ['KAIROS_BASE_IMAGE_URL=reg.local/edge', 'reg.local/edge/kairos-ubuntu:22.04-core-amd64-generic-v0.17.1'],
    ['OS_DISTRIBUTION=rhel\nOS_VERSION=9\nBASE_IMAGE=reg.local/rhel:9', 'reg.local/rhel:9'],
  ])('base image for %j', (arg, expected) => {
    expect(resolveBaseImage(cfg(arg))).toBe(expected);
  });

  it.each([
    ['OS_DISTRIBUTION=rhel\nOS_VERSION=9', /^\.arg:1: OS_DISTRIBUTION=rhel requires BASE_IMAGE/, /rhel-core-images/],
    ['OS_DISTRIBUTION=sles\nOS_VERSION=15.6', /^\.arg:1: OS_DISTRIBUTION=sles requires BASE_IMAGE/, /slem/],
    ['FIPS_ENABLED=true', /^\.arg:1: FIPS_ENABLED=true requires BASE_IMAGE/, /ubuntu-fips/],
  ])('no default base image for %j', (arg, msg, hint) => {
    const e = (() => {
      try {
        resolveBaseImage(cfg(arg));
      } catch (x) {
        return x as CanvosError;
      }
      throw new Error('expected error');
    })();
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.message).toMatch(msg);
    expect(e.hint).toMatch(hint);
  });

  it('provider/stylus/third-party references follow the distro, PE version and FIPS repo', () => {
    const c = cfg('K8S_DISTRIBUTION=rke2\nPE_VERSION=v4.9.38\n');
    expect(providerImage(c)).toBe('us-docker.pkg.dev/palette-images/edge/kairos-io/provider-rke2:v4.10.3');
    expect(stylusImage(c)).toBe('us-docker.pkg.dev/palette-images/edge/stylus-framework-linux-amd64:v4.9.38');
    expect(providerImage(cfg('K8S_DISTRIBUTION=kubeadm-fips\nFIPS_ENABLED=true\nBASE_IMAGE=r.local/f:1'))).toBe(
      'us-docker.pkg.dev/palette-images-fips/edge/kairos-io/provider-kubeadm:v4.10.1',
    );
    expect(providerImage(cfg('K8S_DISTRIBUTION=canonical\nCANONICAL_PROVIDER_VERSION=v9.9.9'))).toBe(
      'us-docker.pkg.dev/palette-images/edge/kairos-io/provider-canonical:v9.9.9',
    );
    expect(thirdPartyBinaryPath(cfg('ARCH=arm64'), 'etcdctl')).toBe('/binaries/etcdctl/latest/palette/arm64/etcdctl');
    expect(thirdPartyBinaryPath(cfg('FIPS_ENABLED=true'), 'etcdctl')).toBe(
      '/binaries/etcdctl/latest/vertex/amd64/etcdctl',
    );
  });

  it.each([
    ['k3s', '1.30.4', '1.30.4-k3s1'],
    ['rke2', '1.30.4', '1.30.4-rke2r1'],
    ['kubeadm', '1.30.4', '1.30.4'],
    ['kubeadm-fips', '1.30.4', '1.30.4'],
    ['nodeadm', '1.30.0', '1.30.0'],
    ['canonical', '1.32.3', '1.32.3'],
  ])('BASE_K8S_VERSION for %s %s is %s', (dist, v, expected) => {
    expect(baseK8sVersion(cfg(`K8S_DISTRIBUTION=${dist}`), v)).toBe(expected);
  });

  it.each([
    ['CUSTOM_TAG=demo\nPE_VERSION=v4.0.6\nIMAGE_REPO=ubuntu', '1.27.2', 'ttl.sh/ubuntu:k3s-1.27.2-v4.0.6-demo'],
    ['CUSTOM_TAG=\nPE_VERSION=v4.0.6', '1.27.2', 'ttl.sh/ubuntu:k3s-1.27.2-v4.0.6'],
    ['PE_VERSION=v4.9.38', '1.30.4', 'ttl.sh/ubuntu:k3s-1.30.4-v4.9.38'],
    [
      'IMAGE_REGISTRY=docker.io/spectrocloud\nOS_DISTRIBUTION=opensuse-leap\nOS_VERSION=15.6\nIMAGE_REPO=$OS_DISTRIBUTION\nCUSTOM_TAG=palette-learn\nPE_VERSION=v4.0.6',
      '1.26.6',
      'docker.io/spectrocloud/opensuse-leap:k3s-1.26.6-v4.0.6-palette-learn',
    ],
    [
      'K8S_DISTRIBUTION=rke2\nIMAGE_REGISTRY=localhost:5000/edge\nIMAGE_REPO=provider\nPE_VERSION=v4.10.0-rc.2\nCUSTOM_TAG=x',
      '1.31.2',
      'localhost:5000/edge/provider:rke2-1.31.2-v4.10.0-rc.2-x',
    ],
  ])('IMAGE_PATH for %j @ %s', (arg, v, expected) => {
    expect(providerImagePath(cfg(arg), v)).toBe(expected);
  });

  it('Earthfile-derived arguments set explicitly override the derivation', () => {
    const c = cfg(
      [
        'STYLUS_BASE=reg.local/stylus:1',
        'PROVIDER_BASE=reg.local/provider:2',
        'BIN_TYPE=vertex',
        'IMAGE_TAG=custom',
        'K8S_DISTRIBUTION_TAG=k3s9',
        'BASE_IMAGE_TAG=kairos-ubuntu:my-tag',
        'KAIROS_BASE_IMAGE_URL=reg.local/edge',
        'IS_JETSON=true',
      ].join('\n'),
    );
    expect(stylusImage(c)).toBe('reg.local/stylus:1');
    expect(providerImage(c)).toBe('reg.local/provider:2');
    expect(thirdPartyBinaryPath(c, 'etcdctl')).toBe('/binaries/etcdctl/latest/vertex/amd64/etcdctl');
    expect(providerImagePath(c, '1.30.4')).toBe('ttl.sh/ubuntu:k3s-1.30.4-custom');
    expect(baseK8sVersion(c, '1.30.4')).toBe('1.30.4-k3s9');
    expect(resolveBaseImage(c)).toBe('reg.local/edge/kairos-ubuntu:my-tag');
    expect(isJetsonBase('x', c.isJetson)).toBe(true);
    expect(
      isJetsonBase(
        'quay.io/kairos/ubuntu:20.04-core-arm64-nvidia-jetson-agx-orin-v2.4.3',
        cfg('IS_JETSON=false').isJetson,
      ),
    ).toBe(false);
    const one = cfg('IMAGE_PATH=reg.local/x/y:z\nBASE_K8S_VERSION=1.30.4-k3s2');
    expect(providerImagePath(one, '1.30.4')).toBe('reg.local/x/y:z');
    expect(baseK8sVersion(one, '1.30.4')).toBe('1.30.4-k3s2');
    expect(() => planProviderImages(one, ['1.30.4', '1.31.2'])).toThrow(
      /^\.arg:1: IMAGE_PATH is set, but 2 Kubernetes versions would all use it$/,
    );
    expect(planProviderImages(one, ['1.30.4']).images[0]).toMatchObject({
      imageRef: 'reg.local/x/y:z',
      tag: 'z',
      baseK8sVersion: '1.30.4-k3s2',
    });
  });

  it('a tag longer than 128 characters is ERR_CONFIG naming the tag', () => {
    expect(() => providerImagePath(cfg(`CUSTOM_TAG=${'x'.repeat(120)}`), '1.30.4')).toThrow(
      /provider image tag "k3s-1\.30\.4-v4\.10\.0-rc\.2-x+…" \(144 characters\) is not a valid tag/,
    );
  });

  it('k8s source: canvos.yaml entry wins, else the luet package image pattern', () => {
    const c = {
      ...cfg('K8S_DISTRIBUTION=k3s\nARCH=arm64'),
      k8sSources: { '1.30.4': { url: 'https://x/k3s', sha256: 'a'.repeat(64) } },
    };
    expect(k8sSource(c, '1.30.4')).toEqual({ url: 'https://x/k3s', sha256: 'a'.repeat(64), origin: 'config' });
    expect(k8sSource(c, '1.29.8')).toEqual({
      image: 'us-docker.pkg.dev/palette-images/edge/luet-repo-arm:k3s-k8s-1.29.8-k3s1',
      origin: 'pattern',
    });
    expect(k8sSource({ ...c, k8sImagePattern: 'reg.local/{dist}:{version}-{arch}' }, '1.29.8')).toEqual({
      image: 'reg.local/k3s:1.29.8-arm64',
      origin: 'pattern',
    });
  });
});

describe('OS file edits', () => {
  it('kairos-release matches CanvOS golden output and is idempotent', () => {
    const c = cfg('OS_VERSION=22.04');
    const out = editKairosRelease(fixture('kairos-release'), c);
    expect(out).toBe(fixture('kairos-release.golden'));
    expect(editKairosRelease(out, c)).toBe(out);
  });

  it('kairos-release: absent file, missing KAIROS_NAME, no final newline, MAAS and short ubuntu versions', () => {
    expect(editKairosRelease(undefined, cfg('OS_VERSION=22\nIS_MAAS=true'))).toBe(
      'KAIROS_NAME="kairos-core-ubuntu-22"\nKAIROS_IMAGE_LABEL="22.04-standard-amd64-generic-maas"\n',
    );
    expect(
      editKairosRelease('KAIROS_ID="kairos"', cfg('OS_DISTRIBUTION=opensuse-leap\nOS_VERSION=15.6\nARCH=arm64')),
    ).toBe(
      'KAIROS_ID="kairos"\nKAIROS_NAME="kairos-core-opensuse-leap-15.6"\nKAIROS_IMAGE_LABEL="15.6-standard-arm64-generic"\n',
    );
    expect(kairosImageLabel(cfg('OS_VERSION=24.04'))).toBe('24.04-standard-amd64-generic');
  });

  it("kairos-release agrees with CanvOS's own sed/echo commands run by GNU sed", () => {
    const dir = mkdtempSync(join(tmpdir(), 'canvos-kr-'));
    try {
      const f = join(dir, 'kairos-release');
      const base = 'KAIROS_NAME="x"\nKAIROS_IMAGE_LABEL="a"\nKAIROS_FLAVOR="ubuntu"\nKAIROS_IMAGE_LABEL="b"\n';
      writeFileSync(f, base);
      const script = `sed -i 's/^KAIROS_NAME=.*/KAIROS_NAME="kairos-core-ubuntu-24.04"/' "$1" && sed -i '/^KAIROS_IMAGE_LABEL=/d' "$1" && echo 'KAIROS_IMAGE_LABEL="24.04-standard-amd64-generic"' >> "$1"`;
      execFileSync('bash', ['-c', script, 'x', f]);
      expect(editKairosRelease(base, cfg('OS_VERSION=24.04'))).toBe(readFileSync(f, 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bootargs.cfg matches CanvOS golden output, is idempotent, and honours DISABLE_SELINUX/IS_UKI', () => {
    const base = fixture('bootargs.cfg');
    const out = editBootargs(base, cfg(''));
    expect(out).toBe(fixture('bootargs.cfg.golden'));
    expect(editBootargs(out, cfg(''))).toBe(out);
    const keep = editBootargs(base, cfg('DISABLE_SELINUX=false'));
    expect(keep).toContain('security=selinux selinux=1');
    expect(keep).toContain('systemd.unified_cgroup_hierarchy=1 rd.driver.blacklist=nouveau');
    expect(editBootargs(base, cfg('IS_UKI=true\nOS_VERSION=24.04'))).toBe(base);
    // already present arguments are not added twice
    const pre = 'set baseCmd="a systemd.unified_cgroup_hierarchy=1 rd.driver.blacklist=nouveau"\n';
    expect(editBootargs(pre, cfg(''))).toBe(pre);
  });
});

describe('pack snippet', () => {
  it('is byte-identical to earthly.sh print_os_pack output (canvos.md §2.4)', () => {
    const c = cfg(
      'CUSTOM_TAG=demo\nIMAGE_REGISTRY=ttl.sh\nOS_DISTRIBUTION=ubuntu\nIMAGE_REPO=$OS_DISTRIBUTION\nOS_VERSION=22.04\nK8S_DISTRIBUTION=k3s\nPE_VERSION=v4.9.38\n',
    );
    expect(packSnippet(c)).toBe(fixture('pack-snippet.golden.txt'));
  });

  it('without CUSTOM_TAG the uri template has no customTag suffix (fix of CanvOS) and otherwise nothing changes', () => {
    const c = cfg('CUSTOM_TAG=\nPE_VERSION=v4.9.38\n');
    const golden = fixture('pack-snippet.golden.txt')
      .replace('-{{ .spectro.pack.edge-native-byoi.options.system.customTag }}"', '"')
      .replace('system.customTag: demo', 'system.customTag: ');
    expect(packSnippet(c)).toBe(golden);
    expect(systemUriTemplate('')).not.toMatch(/customTag|-$/);
  });
});
