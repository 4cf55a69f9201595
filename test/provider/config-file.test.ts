import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { parseArgText } from '../../src/provider/arg-file.js';
import { parseConfigYaml } from '../../src/provider/config-file.js';
import { loadK8sVersions, parseK8sVersions, selectK8sVersions } from '../../src/provider/k8s-versions.js';
import { loadBuildConfig } from '../../src/provider/load.js';

function err(fn: () => unknown): CanvosError {
  try {
    fn();
  } catch (e) {
    expect(CanvosError.is(e)).toBe(true);
    return e as CanvosError;
  }
  throw new Error('expected an error');
}

const ARG = `CUSTOM_TAG=demo
IMAGE_REGISTRY=ttl.sh
OS_DISTRIBUTION=ubuntu
IMAGE_REPO=$OS_DISTRIBUTION
OS_VERSION=22.04
K8S_DISTRIBUTION=k3s
ARCH=amd64
UPDATE_KERNEL=false
`;

describe('canvos.yaml', () => {
  it('camelCase and UPPER keys normalise into the same BuildConfig as .arg', () => {
    const fromArg = parseArgText(ARG);
    const camel = parseConfigYaml(
      'customTag: demo\nimageRegistry: ttl.sh\nosDistribution: ubuntu\nosVersion: "22.04"\nk8sDistribution: k3s\narch: amd64\nupdateKernel: false\n',
    );
    const upper = parseConfigYaml(
      'CUSTOM_TAG: demo\nIMAGE_REGISTRY: ttl.sh\nOS_DISTRIBUTION: ubuntu\nOS_VERSION: 22.04\nK8S_DISTRIBUTION: k3s\nARCH: amd64\nUPDATE_KERNEL: false\n',
    );
    const strip = ({ origins: _o, ...rest }: ReturnType<typeof parseArgText>) => rest;
    expect(strip(camel)).toEqual(strip(fromArg));
    expect(strip(upper)).toEqual(strip(fromArg));
    expect(upper.origins.OS_VERSION).toEqual({ file: 'canvos.yaml', line: 4, col: 1 });
  });

  it('the documented example fixtures/config/canvos.yaml is valid and equals its .arg counterpart', async () => {
    const { readFile } = await import('node:fs/promises');
    const c = parseConfigYaml(await readFile(new URL('../../fixtures/config/canvos.yaml', import.meta.url), 'utf8'));
    const a = parseArgText(`${ARG}PE_VERSION=v4.9.38\nEDGE_CUSTOM_CONFIG=.edge-custom-config.yaml\n`);
    const strip = ({ origins: _o, k8sSources: _k, ...rest }: ReturnType<typeof parseArgText>) => rest;
    expect(strip(c)).toEqual(strip(a));
    expect(Object.keys(c.k8sSources)).toEqual(['1.30.4', '1.31.2']);
  });

  it('keeps version-like scalars as written (failsafe schema: 20.10 is not 20.1)', () => {
    expect(parseConfigYaml('osDistribution: opensuse-leap\nosVersion: 15.60\n').osVersion).toBe('15.60');
  });

  it('an empty file gives CanvOS defaults', () => {
    const c = parseConfigYaml('# nothing\n');
    expect(c.k8sDistribution).toBe('k3s');
    expect(c.k8sSources).toEqual({});
  });

  it('reads k8s sources and k8sImagePattern', () => {
    const sha = 'a'.repeat(64);
    const c = parseConfigYaml(
      `k8s:\n  "1.30.4": { url: "https://example.com/k3s", sha256: "${sha}" }\n  "1.29.8":\n    image: reg.local/k8s:1.29.8\nk8sImagePattern: "reg.local/k8s/{dist}:{version}"\n`,
    );
    expect(c.k8sSources).toEqual({
      '1.30.4': { url: 'https://example.com/k3s', sha256: sha },
      '1.29.8': { image: 'reg.local/k8s:1.29.8' },
    });
    expect(c.k8sImagePattern).toBe('reg.local/k8s/{dist}:{version}');
  });

  it('invalid YAML is ERR_CONFIG with file:line:col', () => {
    const e = err(() => parseConfigYaml('arch: amd64\nk8s: [1, 2\nosVersion: 22.04\n', 'my.yaml'));
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.message).toMatch(/^my\.yaml:3:1: invalid YAML: /);
    const dup = err(() => parseConfigYaml('arch: amd64\narch: arm64\n', 'my.yaml'));
    expect(dup.message).toMatch(/^my\.yaml:2:1: invalid YAML: Map keys must be unique/);
  });

  it('bad values cite file:line:col and the key as written in the schema', () => {
    const e = err(() => parseConfigYaml('osDistribution: ubuntu\narch: x86\n', 'c.yaml'));
    expect(e.message).toBe('c.yaml:2:1: ARCH="x86" is invalid: must be one of: amd64, arm64');
    const nested = err(() => parseConfigYaml('arch:\n  - amd64\n', 'c.yaml'));
    expect(nested.message).toBe('c.yaml:2:3: arch must be a single value, not a list or mapping');
    const src = err(() => parseConfigYaml('k8s:\n  "1.30.4": { url: "https://x/k3s", sha256: "nothex" }\n', 'c.yaml'));
    expect(src.message).toBe('c.yaml:2:3: k8s "1.30.4": invalid source (sha256): must be 64 lowercase hex digits');
    const ver = err(() => parseConfigYaml('k8s:\n  latest: { image: x }\n', 'c.yaml'));
    expect(ver.message).toContain('c.yaml:2:3: k8s: "latest" is not a Kubernetes version x.y.z');
  });

  it('loadBuildConfig merges .arg then canvos.yaml then overrides, citing the right file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'canvos-cfg-'));
    try {
      await writeFile(join(dir, '.arg'), ARG);
      await writeFile(join(dir, 'canvos.yaml'), 'customTag: prod\nARCH: bogus\n');
      const e = (await loadBuildConfig({ argFile: join(dir, '.arg'), configFile: join(dir, 'canvos.yaml') }).catch(
        (x: unknown) => x,
      )) as CanvosError;
      expect(e.message).toBe(`${join(dir, 'canvos.yaml')}:2:1: ARCH="bogus" is invalid: must be one of: amd64, arm64`);
      await writeFile(join(dir, 'canvos.yaml'), 'customTag: prod\n');
      const c = await loadBuildConfig({
        argFile: join(dir, '.arg'),
        configFile: join(dir, 'canvos.yaml'),
        overrides: { K8S_VERSION: '1.30.4' },
      });
      expect(c.customTag).toBe('prod');
      expect(c.imageRepo).toBe('ubuntu');
      expect(c.k8sVersion).toBe('1.30.4');
      expect(c.origins.CUSTOM_TAG?.file).toBe(join(dir, 'canvos.yaml'));
      expect(c.origins.ARCH?.file).toBe(join(dir, '.arg'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('k8s_version.json', () => {
  const fixture = new URL('../../fixtures/config/k8s_version.json', import.meta.url).pathname;

  it('loads the CanvOS sample and selects all versions of the distribution when K8S_VERSION is empty', async () => {
    const v = await loadK8sVersions(fixture);
    expect(Object.keys(v)).toEqual(['k3s', 'kubeadm', 'rke2', 'kubeadm-fips', 'nodeadm', 'canonical']);
    const sel = selectK8sVersions({ k8sVersion: '', k8sDistribution: 'nodeadm', origins: {} }, v);
    expect(sel).toEqual(['1.29.0', '1.30.0', '1.31.0', '1.32.0']);
    expect(selectK8sVersions({ k8sVersion: '1.30.4', k8sDistribution: 'k3s', origins: {} }, v)).toEqual(['1.30.4']);
    expect(selectK8sVersions({ k8sVersion: '1.30.4', k8sDistribution: 'k3s', origins: {} }, undefined)).toEqual([
      '1.30.4',
    ]);
  });

  it('unknown distribution, empty list, no file, bad JSON and bad versions are ERR_CONFIG', () => {
    const v = parseK8sVersions('{"k3s": ["1.30.4"], "rke2": []}');
    const unknown = err(() =>
      selectK8sVersions(
        { k8sVersion: '', k8sDistribution: 'kubeadm', origins: { K8S_DISTRIBUTION: { file: '.arg', line: 6 } } },
        v,
      ),
    );
    expect(unknown.message).toBe(
      'k8s_version.json has no entry for K8S_DISTRIBUTION=kubeadm (set at .arg:6); it lists: k3s, rke2',
    );
    expect(err(() => selectK8sVersions({ k8sVersion: '', k8sDistribution: 'rke2', origins: {} }, v)).message).toBe(
      'k8s_version.json lists no versions for rke2',
    );
    expect(
      err(() => selectK8sVersions({ k8sVersion: '', k8sDistribution: 'k3s', origins: {} }, undefined)).hint,
    ).toContain('--k8s-versions');
    expect(err(() => parseK8sVersions('{\n "k3s": [1.30]\n}', 'v.json')).message).toBe(
      'v.json at .k3s[0]: Invalid input: expected string, received number',
    );
    expect(err(() => parseK8sVersions('{\n "k3s": ["1.30"]\n}', 'v.json')).message).toBe(
      'v.json at .k3s[0]: must be x.y.z',
    );
    expect(err(() => parseK8sVersions('{\n "k3s": [\n}', 'v.json')).message).toMatch(/^v\.json:3:1: invalid JSON/);
  });
});
