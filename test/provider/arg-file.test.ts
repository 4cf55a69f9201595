import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { ARG_NAMES, canonicalArgName } from '../../src/provider/args.js';
import { loadArgFile, parseArgEntries, parseArgText } from '../../src/provider/arg-file.js';
import { ARG_INFO } from '../../src/provider/schema.js';

const FIXTURES = new URL('../../fixtures/config/', import.meta.url);

function collect(): { warnings: [string, string][]; onWarning: (c: string, m: string) => void } {
  const warnings: [string, string][] = [];
  return { warnings, onWarning: (c, m) => warnings.push([c, m]) };
}

function configError(fn: () => unknown): CanvosError {
  try {
    fn();
  } catch (e) {
    expect(CanvosError.is(e)).toBe(true);
    expect((e as CanvosError).code).toBe('ERR_CONFIG');
    return e as CanvosError;
  }
  throw new Error('expected an ERR_CONFIG error');
}

describe('argument catalogue', () => {
  it('every known argument has schema info and round-trips through its camelCase key', () => {
    expect(ARG_INFO.size).toBe(ARG_NAMES.length);
    for (const name of ARG_NAMES) {
      expect(ARG_INFO.get(name), name).toBeDefined();
      const camel = name.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      expect(canonicalArgName(camel), camel).toBe(name);
    }
  });
});

describe('.arg parser', () => {
  it('parses the CanvOS .arg.template (reconstructed from canvos.md §2.1) without warnings', async () => {
    const text = await readFile(new URL('arg.template', FIXTURES), 'utf8');
    const { warnings, onWarning } = collect();
    const c = parseArgText(text, '.arg', { onWarning });
    expect(warnings).toEqual([]);
    expect(c).toMatchObject({
      customTag: 'demo',
      imageRegistry: 'ttl.sh',
      osDistribution: 'ubuntu',
      imageRepo: 'ubuntu',
      osVersion: '22.04',
      k8sDistribution: 'k3s',
      isoName: 'palette-edge-installer',
      arch: 'amd64',
      httpsProxy: '',
      updateKernel: false,
      clusterconfig: 'spc.tgz',
      cisHardening: false,
      edgeCustomConfig: '.edge-custom-config.yaml',
      forceInteractiveInstall: false,
      // Earthfile defaults for what the template leaves out
      disableSelinux: true,
      peVersion: 'v4.10.0-rc.2',
      spectroPubRepo: 'us-docker.pkg.dev/palette-images',
      kairosBaseImageUrl: 'us-docker.pkg.dev/palette-images/edge',
      alpineImg: 'us-docker.pkg.dev/palette-images/edge/canvos/alpine:3.20',
      k8sVersion: '',
    });
    expect(c.origins.ARCH).toEqual({ file: '.arg', line: 8 });
  });

  it('handles quotes, export, inline comments, CRLF and references', () => {
    const text = [
      'export OS_DISTRIBUTION=opensuse-leap',
      "OS_VERSION='15.6'\r",
      'IMAGE_REPO="${OS_DISTRIBUTION}-edge"   # comment',
      'MY_ORG="ACME \\"Corp\\""',
      "BRANDING='$NOT_EXPANDED'",
      'CUSTOM_TAG=${UNSET:-fallback}',
      'IMAGE_REGISTRY=$SPECTRO_PUB_REPO/x', // a CanvOS default may be referenced
      'PE_VERSION=v4.9.38 # trailing comment',
      '   # indented comment',
      '',
    ].join('\n');
    const c = parseArgText(text, 'my.arg');
    expect(c.osDistribution).toBe('opensuse-leap');
    expect(c.osVersion).toBe('15.6');
    expect(c.imageRepo).toBe('opensuse-leap-edge');
    expect(c.myOrg).toBe('ACME "Corp"');
    expect(c.branding).toBe('$NOT_EXPANDED');
    expect(c.customTag).toBe('fallback');
    expect(c.imageRegistry).toBe('us-docker.pkg.dev/palette-images/x');
    expect(c.peVersion).toBe('v4.9.38');
  });

  it('warns (does not fail) on unknown, retired, Dockerfile and duplicate keys, never echoing secrets', () => {
    const { warnings, onWarning } = collect();
    const text =
      'ARCHH=amd64\nPROXY_CERT_PATH=/x.pem\nCUSTOM_ARG_BRAND=acme\nUBUNTU_PRO_KEY=C1234secret\nARCH=amd64\nARCH=arm64\narch=amd64\n';
    const c = parseArgText(text, '.arg', { onWarning });
    expect(c.arch).toBe('arm64');
    expect(warnings.map((w) => w[0])).toEqual([
      'W_ARG_UNKNOWN',
      'W_ARG_RETIRED',
      'W_ARG_UNUSED',
      'W_ARG_RETIRED',
      'W_ARG_DUPLICATE',
      'W_ARG_UNKNOWN',
    ]);
    expect(warnings[0]?.[1]).toBe('.arg:1: unknown argument ARCHH ignored (did you mean ARCH?)');
    expect(warnings[4]?.[1]).toContain('.arg:6: ARCH is set again (first at line 5)');
    expect(warnings[5]?.[1]).toContain('.arg:7: unknown argument arch ignored (did you mean ARCH?)');
    expect(JSON.stringify(warnings)).not.toContain('C1234secret');
  });

  it('accepts lowercase proxy aliases; the uppercase spelling wins', () => {
    expect(parseArgText('http_proxy=http://p:3128\n').httpProxy).toBe('http://p:3128');
    expect(parseArgText('http_proxy=http://a:1\nHTTP_PROXY=http://b:2\n').httpProxy).toBe('http://b:2');
  });

  it('treats an empty boolean as false (CanvOS semantics) and warns when the default is true', () => {
    const { warnings, onWarning } = collect();
    const c = parseArgText('DISABLE_SELINUX=\nUPDATE_KERNEL=\n', '.arg', { onWarning });
    expect(c.disableSelinux).toBe(false);
    expect(c.updateKernel).toBe(false);
    expect(warnings).toEqual([
      ['W_ARG_EMPTY_BOOLEAN', '.arg:1: DISABLE_SELINUX is empty, which CanvOS treats as false (its default is true)'],
    ]);
  });

  const bad: [string, string, string, RegExp][] = [
    [
      'ARCH=x86',
      '.arg:3: ARCH="x86" is invalid: must be one of: amd64, arm64',
      'write ARCH=amd64 (or another allowed value) on line 3 of .arg',
      /ARCH/,
    ],
    [
      'K8S_DISTRIBUTION=k8s',
      '.arg:3: K8S_DISTRIBUTION="k8s" is invalid: must be one of: k3s, rke2, kubeadm, kubeadm-fips, nodeadm, canonical',
      'write K8S_DISTRIBUTION=k3s (or another allowed value) on line 3 of .arg',
      /K8S/,
    ],
    [
      'OS_DISTRIBUTION=windows',
      '.arg:3: OS_DISTRIBUTION="windows" is invalid: must be one of: ubuntu, opensuse-leap, rhel, sles',
      'write OS_DISTRIBUTION=ubuntu (or another allowed value) on line 3 of .arg',
      /OS_/,
    ],
    [
      'UPDATE_KERNEL=yes',
      '.arg:3: UPDATE_KERNEL="yes" is invalid: must be true or false (lowercase)',
      'write UPDATE_KERNEL=true or UPDATE_KERNEL=false on line 3 of .arg',
      /UPDATE/,
    ],
    [
      'DISABLE_SELINUX=True',
      '.arg:3: DISABLE_SELINUX="True" is invalid: must be true or false (lowercase)',
      'write DISABLE_SELINUX=true or DISABLE_SELINUX=false on line 3 of .arg',
      /SELINUX/,
    ],
    [
      'EXPIRATION_IN_DAYS=10y',
      '.arg:3: EXPIRATION_IN_DAYS="10y" is invalid: must be a whole number',
      'write a whole number, e.g. EXPIRATION_IN_DAYS=5475 on line 3 of .arg',
      /EXP/,
    ],
    [
      'K8S_VERSION=v1.30',
      '.arg:3: K8S_VERSION="v1.30" is invalid: must be empty (all versions of k8s_version.json) or x.y.z, e.g. 1.30.4',
      'fix the value of K8S_VERSION on line 3 of .arg; CanvOS\'s default is ""',
      /K8S/,
    ],
    [
      'OS_VERSION=21.10',
      '.arg:3: OS_VERSION="21.10" is invalid: must be one of 20, 22, 20.04, 22.04, 24.04 for ubuntu (or set BASE_IMAGE)',
      'fix the value of OS_VERSION on line 3 of .arg; CanvOS\'s default is "22.04"',
      /OS/,
    ],
    [
      'IMAGE_REPO=Ubuntu',
      '.arg:3: IMAGE_REPO="Ubuntu" is invalid: must be a lowercase repository path, e.g. ubuntu or edge/provider',
      'fix the value of IMAGE_REPO on line 3 of .arg; CanvOS\'s default is "$OS_DISTRIBUTION"',
      /REPO/,
    ],
    [
      'CUSTOM_TAG=my tag',
      '.arg:3: CUSTOM_TAG: unquoted value contains whitespace',
      'quote it, e.g. CUSTOM_TAG="my tag"',
      /TAG/,
    ],
    [
      'CUSTOM_TAG="my tag"',
      '.arg:3: CUSTOM_TAG="my tag" is invalid: must be letters, digits, ".", "_" or "-" (it becomes part of an image tag)',
      'fix the value of CUSTOM_TAG on line 3 of .arg; CanvOS\'s default is ""',
      /TAG/,
    ],
    [
      'this is not an assignment',
      '.arg:3: malformed line starting with "this": expected KEY=value',
      'each line must be KEY=value, a # comment, or blank',
      /./,
    ],
    ['ARCH = amd64', '.arg:3: malformed line: no spaces are allowed around "=" (ARCH)', 'write it as ARCH=value', /./],
    [
      'PE_VERSION=$(git describe --abbrev=0 --tags)',
      '.arg:3: PE_VERSION: command substitution $(...) is not supported',
      'write the value itself, e.g. PE_VERSION=v4.9.38 instead of $(git describe --abbrev=0 --tags)',
      /./,
    ],
    [
      'PE_VERSION=`git describe`',
      '.arg:3: PE_VERSION: command substitution with backquotes is not supported',
      'write the value itself',
      /./,
    ],
    [
      'IMAGE_REPO=$OS_DISTRO',
      '.arg:3: IMAGE_REPO references $OS_DISTRO, which is not set on an earlier line',
      'define OS_DISTRO=... above line 3, or write the value directly',
      /./,
    ],
    ['MY_ORG="ACME', '.arg:3: MY_ORG: unterminated double quote', 'close the quote, e.g. MY_ORG="value"', /./],
  ];
  it.each(bad)('rejects %s with file:line, key, allowed values and a hint', (line, message, hint) => {
    const e = configError(() => parseArgText(`CUSTOM_TAG=demo\n# comment\n${line}\nISO_NAME=edge\n`, '.arg'));
    expect(e.message).toBe(message);
    expect(e.hint).toBe(hint);
  });

  it('never echoes a secret or proxy password in errors', () => {
    const e = configError(() => parseArgText('UBUNTU_PRO_KEY C1234secret\n'));
    expect(e.message).not.toContain('C1234secret');
    // proxy values are free strings; a bad one elsewhere must not leak them either
    const e2 = configError(() => parseArgText('HTTP_PROXY=http://user:pw@proxy:3128\nARCH=x86\n'));
    expect(e2.message).not.toContain('pw@');
  });

  it('reports every issue in details and mentions how many more there are', () => {
    const e = configError(() => parseArgText('ARCH=x86\nK8S_DISTRIBUTION=k8s\n'));
    expect(e.message).toMatch(/^\.arg:1: ARCH=.*\(and 1 more problem\)$/);
    expect((e.details?.issues as unknown[]).length).toBe(2);
  });

  it('rejects mutually exclusive toggles at the line that set them', () => {
    const e = configError(() => parseArgText('FIPS_ENABLED=true\nBASE_IMAGE=r.local/fips:1\nUPDATE_KERNEL=true\n'));
    expect(e.message).toBe(
      '.arg:3: UPDATE_KERNEL="true" is invalid: UPDATE_KERNEL and FIPS_ENABLED are mutually exclusive; set one of them to false',
    );
  });

  it('applies the FIPS repository switch only to the default SPECTRO_PUB_REPO', () => {
    const fips = parseArgText('FIPS_ENABLED=true\n');
    expect(fips.spectroPubRepo).toBe('us-docker.pkg.dev/palette-images-fips');
    expect(fips.kairosBaseImageUrl).toBe('us-docker.pkg.dev/palette-images-fips/edge');
    expect(fips.spectroLuetRepo).toBe('us-docker.pkg.dev/palette-images/edge'); // not switched in CanvOS either
    const custom = parseArgText('FIPS_ENABLED=true\nSPECTRO_PUB_REPO=reg.local/mirror\n');
    expect(custom.spectroPubRepo).toBe('reg.local/mirror');
    expect(custom.alpineImg).toBe('reg.local/mirror/edge/canvos/alpine:3.20');
  });

  it('keeps entries for literal references in order (later lines see earlier values)', () => {
    const entries = parseArgEntries('A_X=1\nB_Y=$A_X-2\nA_X=3\nC_Z=${A_X}\n');
    expect(entries.map((e) => e.value)).toEqual(['1', '1-2', '3', '3']);
  });

  it('loadArgFile reads a file and reports a missing one with a hint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'canvos-arg-'));
    try {
      await writeFile(join(dir, '.arg'), 'K8S_DISTRIBUTION=rke2\n');
      expect((await loadArgFile(join(dir, '.arg'))).k8sDistribution).toBe('rke2');
      const e = (await loadArgFile(join(dir, 'missing')).catch((x: unknown) => x)) as CanvosError;
      expect(e.code).toBe('ERR_CONFIG');
      expect(e.message).toContain('no such file');
      expect(e.hint).toContain('cp .arg.template .arg');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
