import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CanvosError } from '../../src/errors.js';
import { parseMirrorConfig } from '../../src/mirror/config.js';
import { RegistryConnections } from '../../src/mirror/connections.js';
import { destinationRepository, parseDestinationRoot, planNames } from '../../src/mirror/naming.js';
import { registriesYaml } from '../../src/mirror/registries-yaml.js';
import { compileSemverRange, filterTags } from '../../src/mirror/tags.js';
import { parseReference } from '../../src/registry/reference.js';

function configError(text: string): CanvosError {
  try {
    parseMirrorConfig(text, 'm.yaml');
  } catch (e) {
    if (CanvosError.is(e)) return e;
    throw e;
  }
  throw new Error('expected an error');
}

describe('mirror.yaml', () => {
  it('parses images, tag filters, platforms, rewrite, concurrency, referrers, fromBuild', () => {
    const c = parseMirrorConfig(
      [
        'images:',
        '  - ref: quay.io/kairos/ubuntu',
        '    tags: { semver: ">=22.4 <25", latest: 2 }',
        '  - ref: docker.io/library/alpine:3.20',
        '    platforms: [linux/amd64, linux/arm64]',
        'fromBuild: { argFile: .arg, k8sVersions: [1.30.4] }',
        'rewrite: { prefix: mirror, flatten: last-segment }',
        'concurrency: { images: 2, blobs: 6, registries: { docker.io: 2 } }',
        'referrers: false',
      ].join('\n'),
    );
    expect(c.images?.[0]?.tags).toEqual({ semver: '>=22.4 <25', latest: 2 });
    expect(c.images?.[1]?.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect(c.rewrite).toEqual({ prefix: 'mirror', flatten: 'last-segment' });
    expect(c.fromBuild?.k8sVersions).toEqual(['1.30.4']);
    expect(c.referrers).toBe(false);
  });

  it('accepts bare references under images:, alone or mixed with the object form', () => {
    const c = parseMirrorConfig(
      [
        'images:',
        '  - quay.io/kairos/ubuntu:24.04',
        '  - ref: docker.io/library/alpine',
        '    tags: { latest: 1 }',
        `  - ghcr.io/a/b@sha256:${'a'.repeat(64)}`,
      ].join('\n'),
    );
    expect(c.images).toEqual([
      { ref: 'quay.io/kairos/ubuntu:24.04' },
      { ref: 'docker.io/library/alpine', tags: { latest: 1 } },
      { ref: `ghcr.io/a/b@sha256:${'a'.repeat(64)}` },
    ]);
    expect(parseMirrorConfig('images: [alpine, "busybox:1.36"]\n').images).toEqual([
      { ref: 'alpine' },
      { ref: 'busybox:1.36' },
    ]);
    expect(configError('images:\n  - alpine\n  - "UPPER/Case"\n').message).toMatch(
      /^m\.yaml:3: images\[1\]\.ref: must be an image reference/,
    );
    expect(configError('images:\n  - alpine\n  - 42\n').message).toMatch(
      /^m\.yaml:3: images\[1\]: must be an image reference, or a map with ref/,
    );
    expect(configError('images:\n  - [alpine]\n').message).toMatch(
      /^m\.yaml:2: images\[0\]: must be an image reference, or a map/,
    );
  });

  it('errors name file:line and the field', () => {
    const e = configError('images:\n  - ref: alpine\n  - ref: "UPPER/Case"\n');
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.message).toMatch(/^m\.yaml:3: images\[1\]\.ref: must be an image reference/);
    expect(configError('images:\n  - ref: alpine\n    platforms: ["linux//x"]\n').message).toMatch(
      /^m\.yaml:3: images\[0\]\.platforms\[0\]/,
    );
    expect(configError('images:\n  - ref: alpine\n    tagz: {}\n').message).toMatch(/^m\.yaml:2: images\[0\]/);
    expect(configError('images:\n  - ref: alpine\n    tags: { regex: "(" }\n').message).toMatch(
      /^m\.yaml:3: images\[0\]\.tags\.regex: is not a valid regular expression/,
    );
    expect(configError('images:\n  - ref: alpine:3.20\n    tags: { latest: 1 }\n').message).toMatch(
      /^m\.yaml:2: images\[0\]\.ref: .*names a tag/,
    );
    expect(configError('images: [\n').message).toMatch(/^m\.yaml:\d+:\d+: invalid YAML/);
    expect(configError('rewrite: { prefix: mirror }\n').message).toMatch(/nothing to mirror/);
  });
});

describe('tag filters', () => {
  const tags = [
    '1.0.0',
    '1.2.3',
    'v1.3.0',
    '1.3.0-rc.1',
    '2.0.0',
    '2.1',
    'latest',
    'sha256-' + 'a'.repeat(64) + '.sig',
    '3.19',
    '3.20',
    '3.20.1',
    'edge',
  ];
  it('semver ranges: comparators, caret, tilde, x, ||; prereleases only when asked', () => {
    expect(filterTags(tags, { semver: '>=1.2.0 <2' })).toEqual(['v1.3.0', '1.2.3']);
    expect(filterTags(tags, { semver: '^1.2' })).toEqual(['v1.3.0', '1.2.3']);
    expect(filterTags(tags, { semver: '~3.20' })).toEqual(['3.20.1', '3.20']);
    expect(filterTags(tags, { semver: '2.x || 1.0.0' })).toEqual(['2.1', '2.0.0', '1.0.0']);
    expect(compileSemverRange('>=1.3.0-rc.0')('1.3.0-rc.1')).toBe(true);
    expect(compileSemverRange('>=1.2.0')('1.3.0-rc.1')).toBe(false);
    expect(() => compileSemverRange('>>1')).toThrow(/invalid semver range/);
  });
  it('regex and latest n; digest tags never count as ordinary tags', () => {
    expect(filterTags(tags, { regex: '^3\\.' })).toEqual(['3.19', '3.20', '3.20.1']);
    expect(filterTags(tags, { regex: '^3\\.', latest: 2 })).toEqual(['3.20.1', '3.20']);
    expect(filterTags(tags, { regex: 'sha256' })).toEqual([]);
    expect(filterTags(tags, { latest: 1 })).toEqual(['3.20.1']);
  });
});

describe('destination naming and registries.yaml', () => {
  const root = parseDestinationRoot('registry.local:5000/edge');
  const refs = ['docker.io/library/alpine', 'quay.io/kairos/ubuntu', 'quay.io/other/ubuntu', 'ghcr.io/a/b/c'].map((r) =>
    parseReference(r),
  );
  it('keeps registry/path under the prefix; flatten joins or keeps the last segment', () => {
    expect(destinationRepository(refs[0]!, root, { prefix: 'm' })).toBe('edge/m/docker.io/library/alpine');
    expect(destinationRepository(refs[3]!, root, { flatten: true })).toBe('edge/ghcr.io-a-b-c');
    expect(destinationRepository(refs[3]!, root, { flatten: 'last-segment', keepRegistry: false })).toBe('edge/c');
    expect(destinationRepository(parseReference('127.0.0.1:5000/x/y'), parseDestinationRoot('h:1'), {})).toBe(
      '127.0.0.1-5000/x/y',
    );
  });
  it('a flatten collision is an error naming both sources', () => {
    expect(planNames(refs, root, { flatten: true }).size).toBe(4);
    let err: unknown;
    try {
      planNames(refs, root, { flatten: 'last-segment' });
    } catch (e) {
      err = e;
    }
    expect(CanvosError.is(err) && err.code).toBe('ERR_CONFIG');
    expect((err as Error).message).toBe(
      'destination collision: quay.io/kairos/ubuntu and quay.io/other/ubuntu both map to registry.local:5000/edge/ubuntu',
    );
  });
  it('registries.yaml: one mirror per source registry; rewrite regex, or one rule per repository when flattened', () => {
    const plain = parse(registriesYaml(refs, root, { prefix: 'm' })) as Record<string, unknown>;
    expect(plain).toEqual({
      mirrors: {
        'docker.io': { endpoint: ['https://registry.local:5000'], rewrite: { '^(.*)$': 'edge/m/docker.io/$1' } },
        'ghcr.io': { endpoint: ['https://registry.local:5000'], rewrite: { '^(.*)$': 'edge/m/ghcr.io/$1' } },
        'quay.io': { endpoint: ['https://registry.local:5000'], rewrite: { '^(.*)$': 'edge/m/quay.io/$1' } },
      },
    });
    const flat = parse(registriesYaml(refs, root, { flatten: true }, { insecure: true, skipVerify: true })) as {
      mirrors: Record<string, { endpoint: string[]; rewrite: Record<string, string> }>;
      configs: unknown;
    };
    expect(flat.mirrors['quay.io']).toEqual({
      endpoint: ['http://registry.local:5000'],
      rewrite: { '^kairos/ubuntu$': 'edge/quay.io-kairos-ubuntu', '^other/ubuntu$': 'edge/quay.io-other-ubuntu' },
    });
    expect(flat.configs).toEqual({ 'registry.local:5000': { tls: { insecure_skip_verify: true } } });
    // Without prefix/path and without the registry segment, names are unchanged: no rewrite at all.
    expect(parse(registriesYaml([refs[0]!], parseDestinationRoot('r:5000'), { keepRegistry: false }))).toEqual({
      mirrors: { 'docker.io': { endpoint: ['https://r:5000'] } },
    });
  });
});

describe('per-registry connections', () => {
  it('one shared transport per registry and side, with the per-registry request limit', async () => {
    const c = new RegistryConnections({ perRegistry: 3, registries: { 'index.docker.io': 2, 'Quay.io': 6 } });
    expect(c.limitFor('docker.io')).toBe(2);
    expect(c.limitFor('quay.io')).toBe(6);
    expect(c.limitFor('ghcr.io')).toBe(3);
    expect(c.get('quay.io', 'src')).toBe(c.get('QUAY.IO', 'src'));
    expect(c.get('quay.io', 'src')).not.toBe(c.get('quay.io', 'dst'));
    expect(new RegistryConnections().limitFor('x.io')).toBe(8);
    await c.close();
  });
});
