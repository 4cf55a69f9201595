import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { itemsFromBuild } from '../../src/mirror/resolve.js';
import { run, tmpDir } from '../helpers/tools.js';

let tmp: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  tmp = await tmpDir('canvos-mirror-fb-');
});
afterAll(async () => tmp?.cleanup());

describe('fromBuild', () => {
  it('lists the base image, the images the layers read from, and one provider image per k8s version', async () => {
    await writeFile(
      join(tmp.path, '.arg'),
      'CUSTOM_TAG=demo\nIMAGE_REGISTRY=registry.local:5000/edge\nOS_DISTRIBUTION=ubuntu\nOS_VERSION=22.04\nK8S_DISTRIBUTION=k3s\nARCH=amd64\n',
    );
    await writeFile(
      join(tmp.path, 'k8s_version.json'),
      JSON.stringify({ k3s: ['1.30.4', '1.31.2'], rke2: ['1.30.4'] }),
    );
    // A CanvOS checkout: PE_VERSION is not in the .arg, so it comes from git describe as in `build`.
    for (const args of [
      ['init', '-q'],
      ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '--allow-empty', '-m', 'c'],
      ['tag', 'v4.9.38'],
    ]) {
      const g = await run('git', args, { cwd: tmp.path });
      expect(g.code, g.stderr).toBe(0);
    }
    const items = await itemsFromBuild({ argFile: '.arg', k8sVersions: 'k8s_version.json' }, tmp.path);
    expect(items.filter((i) => i.origin === 'fromBuild:base')).toHaveLength(1);
    const providers = items.filter((i) => i.origin.startsWith('fromBuild:provider'));
    expect(providers.map((i) => i.source.name)).toEqual([
      'registry.local:5000/edge/ubuntu',
      'registry.local:5000/edge/ubuntu',
    ]);
    expect(providers.map((i) => i.source.tag)).toEqual(['k3s-1.30.4-v4.9.38-demo', 'k3s-1.31.2-v4.9.38-demo']);
    // The per-version k8s package images are sources too; nothing is listed twice.
    expect(
      items.filter((i) => i.origin === 'fromBuild:source' && /1\.31\.2/.test(i.source.toString())),
    ).not.toHaveLength(0);
    expect(new Set(items.map((i) => i.source.toString())).size).toBe(items.length);

    expect(items.some((i) => i.source.toString().includes('stylus-framework-linux-amd64:v4.9.38'))).toBe(true);
    const only = await itemsFromBuild(
      { argFile: join(tmp.path, '.arg'), k8sVersions: ['1.30.4'], providerImages: false },
      '/nonexistent',
    );
    expect(only.some((i) => i.origin.startsWith('fromBuild:provider'))).toBe(false);
    expect(only.some((i) => /1\.31\.2/.test(i.source.toString()))).toBe(false);
  });
});
