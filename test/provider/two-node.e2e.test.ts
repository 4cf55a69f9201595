/**
 * TWO_NODE=true through the rootless executor: on a real Debian base (with systemd, as Kairos bases have), the
 * CanvOS steps install postgresql-16 + postgresql-contrib-16 from a PGDG-shaped apt repository (a local, signed
 * fixture repository: apt.postgresql.org and GitHub are out of reach here), kine from a local URL, write the postgres
 * user's PERL5LIB, order postgresql@.service after network-online.target and disable postgresql.
 */
import type { Server } from 'node:http';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProviderImages, type BuildProviderResult } from '../../src/provider/build.js';
import { loadBuildConfig } from '../../src/provider/load.js';
import { signedAptRepo, serveDir } from '../helpers/apt-repo.js';
import { debianBase } from '../helpers/debian-base.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo, tmpDir, umoci } from '../helpers/tools.js';
import { makeProject, pushFixtureImages } from './fixture-images.js';

let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let server: Server;
let url = '';
let result: BuildProviderResult;

/** A signed apt repository `<dir>` with suite bookworm-pgdg, and the armoured key at `<dir>/key.asc`. */
async function pgdgRepo(dir: string): Promise<void> {
  const postinst = [
    '#!/bin/sh',
    'set -e',
    'id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --create-home --shell /bin/bash postgres',
    'mkdir -p /etc/systemd/system/multi-user.target.wants',
    'ln -sf /lib/systemd/system/postgresql.service /etc/systemd/system/multi-user.target.wants/postgresql.service',
    '',
  ].join('\n');
  const version = '16.4-1.pgdg120+1';
  await signedAptRepo(dir, 'bookworm-pgdg', [
    {
      name: 'postgresql-16',
      version,
      postinst,
      files: {
        'usr/lib/postgresql/16/bin/postgres': '#!/bin/sh\necho "postgres (PostgreSQL) 16.4"\n',
        'lib/systemd/system/postgresql@.service':
          '[Unit]\nDescription=PostgreSQL Cluster %i\nAfter=network.target\n\n[Service]\nExecStart=/usr/lib/postgresql/16/bin/postgres\n',
        'lib/systemd/system/postgresql.service':
          '[Unit]\nDescription=PostgreSQL RDBMS\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n',
      },
    },
    { name: 'postgresql-contrib-16', version, files: { 'usr/share/doc/postgresql-contrib-16/README': 'contrib\n' } },
  ]);
}

beforeAll(async () => {
  reg = await startRegistry();
  tmp = await tmpDir('canvos-two-node-');
  const repo = join(tmp.path, 'www');
  await pgdgRepo(repo);
  await writeFile(join(repo, 'kine-amd64'), '#!/bin/sh\necho "kine fixture 0.15.0"\n');
  ({ server, url } = await serveDir(repo));
  const deb = await debianBase();
  await pushLayout(deb.layoutDir, reg, 'debian/base', { tag: deb.tag });
  const refs = await pushFixtureImages(reg, join(tmp.path, 'fixtures'));
  const project = join(tmp.path, 'project');
  await makeProject(
    project,
    `${refs.argLines}\nBASE_IMAGE=${reg.host}/debian/base:${deb.tag}\nTWO_NODE=true\nK8S_VERSION=1.30.4\n`,
  );
  // Kairos bases ship systemd; the Debian minbase fixture does not.
  await writeFile(
    join(project, 'Dockerfile'),
    'ARG BASE\nFROM $BASE\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd\n',
  );
  const config = await loadBuildConfig({ argFile: join(project, '.arg') });
  result = await buildProviderImages(config, {
    versions: ['1.30.4'],
    output: { push: true },
    projectDir: project,
    registry: { insecureRegistries: [reg.host], authFiles: [] },
    cacheDir: join(tmp.path, 'cache'),
    sourceDateEpoch: 1_700_000_000,
    twoNodeSources: { pgdgAptUrl: `${url}/`, pgdgKeyUrl: `${url}/key.asc`, kineUrl: `${url}/kine-amd64` },
  });
}, 900_000);

afterAll(async () => {
  server?.close();
  await reg?.stop();
  await tmp?.cleanup();
});

describe('TWO_NODE=true', () => {
  it('runs the CanvOS two-node steps as layers after the Dockerfile', () => {
    expect(result.images[0]!.appended.slice(0, 6)).toEqual([
      'Dockerfile:3',
      'TWO_NODE step 1',
      'TWO_NODE step 2',
      'TWO_NODE step 3',
      'TWO_NODE step 4',
      'TWO_NODE step 5',
    ]);
    expect(result.dockerfileRuns).toBe(6);
  });

  it('the image has postgresql-16, kine, the PERL5LIB profile, the unit ordering, and postgresql disabled', async () => {
    const layout = join(tmp.path, 'layout');
    await skopeo([
      'copy',
      '--insecure-policy',
      '--src-tls-verify=false',
      result.images[0]!.destination,
      `oci:${layout}:img`,
    ]);
    await umoci(['unpack', '--rootless', '--image', `${layout}:img`, join(tmp.path, 'bundle')]);
    const root = join(tmp.path, 'bundle/rootfs');
    const read = (p: string) => readFile(join(root, p), 'utf8');
    const status = await read('var/lib/dpkg/status');
    for (const p of ['postgresql-16', 'postgresql-contrib-16', 'iputils-ping', 'lsb-release'])
      expect(status).toMatch(new RegExp(`^Package: ${p}\\nStatus: install ok installed`, 'm'));
    expect(await read('opt/spectrocloud/bin/kine')).toContain('kine fixture 0.15.0');
    expect((await stat(join(root, 'opt/spectrocloud/bin/kine'))).mode & 0o777).toBe(0o755);
    expect(await read('var/lib/postgresql/.bash_profile')).toMatch(/^export PERL5LIB=\/usr\/share\/perl\/5\.34:/);
    expect(await read('lib/systemd/system/postgresql@.service')).toContain('After=network-online.target');
    expect(
      await stat(join(root, 'etc/systemd/system/multi-user.target.wants/postgresql.service')).then(
        () => true,
        () => false,
      ),
    ).toBe(false);
    expect(await read('etc/apt/sources.list.d/pgdg.list')).toBe(
      `deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] ${url}/ bookworm-pgdg main\n`,
    );
    const cfg = JSON.parse(
      await skopeo(['inspect', '--config', '--tls-verify=false', result.images[0]!.destination]),
    ) as { history: { created_by: string }[] };
    expect(cfg.history.filter((h) => h.created_by.endsWith('# canvos-lite TWO_NODE'))).toHaveLength(5);
  }, 300_000);
});
