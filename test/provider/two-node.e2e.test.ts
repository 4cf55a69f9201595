/**
 * TWO_NODE=true through the rootless executor: on a real Debian base (with systemd, as Kairos bases have), the
 * CanvOS steps install postgresql-16 + postgresql-contrib-16 from a PGDG-shaped apt repository (a local, signed
 * fixture repository: apt.postgresql.org and GitHub are out of reach here), kine from a local URL, write the postgres
 * user's PERL5LIB, order postgresql@.service after network-online.target and disable postgresql.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProviderImages, type BuildProviderResult } from '../../src/provider/build.js';
import { loadBuildConfig } from '../../src/provider/load.js';
import { debianBase } from '../helpers/debian-base.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir, umoci } from '../helpers/tools.js';
import { makeProject, pushFixtureImages } from './fixture-images.js';

let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let server: Server;
let url = '';
let result: BuildProviderResult;

async function checked(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await run(cmd, args, { env: env ? { ...process.env, ...env } : undefined });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A .deb built with dpkg-deb from files and maintainer scripts. */
async function deb(dir: string, name: string, files: Record<string, string>, postinst?: string): Promise<string> {
  const root = join(dir, `${name}-src`);
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  await writeFile(join(root, 'DEBIAN/control'), `Package: ${name}\nVersion: 16.4-1.pgdg120+1\nArchitecture: amd64\nMaintainer: canvos-lite tests <t@example.invalid>\nDescription: ${name} fixture\n`);
  if (postinst) {
    await writeFile(join(root, 'DEBIAN/postinst'), postinst);
    await chmod(join(root, 'DEBIAN/postinst'), 0o755);
  }
  for (const [p, content] of Object.entries(files)) {
    await mkdir(join(root, p, '..'), { recursive: true });
    await writeFile(join(root, p), content, { mode: p.includes('/bin/') ? 0o755 : 0o644 });
  }
  const out = join(dir, 'pool', `${name}_16.4-1_amd64.deb`);
  await mkdir(join(dir, 'pool'), { recursive: true });
  await checked('dpkg-deb', ['--root-owner-group', '--build', root, out]);
  return out;
}

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
  const debs = [
    await deb(dir, 'postgresql-16', {
      'usr/lib/postgresql/16/bin/postgres': '#!/bin/sh\necho "postgres (PostgreSQL) 16.4"\n',
      'lib/systemd/system/postgresql@.service': '[Unit]\nDescription=PostgreSQL Cluster %i\nAfter=network.target\n\n[Service]\nExecStart=/usr/lib/postgresql/16/bin/postgres\n',
      'lib/systemd/system/postgresql.service': '[Unit]\nDescription=PostgreSQL RDBMS\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n',
    }, postinst),
    await deb(dir, 'postgresql-contrib-16', { 'usr/share/doc/postgresql-contrib-16/README': 'contrib\n' }),
  ];
  let packages = '';
  for (const d of debs) {
    const bytes = await readFile(d);
    const control = await checked('dpkg-deb', ['-f', d]);
    packages += `${control.trim()}\nFilename: pool/${d.split('/').pop()}\nSize: ${bytes.length}\nSHA256: ${createHash('sha256').update(bytes).digest('hex')}\n\n`;
  }
  const dist = join(dir, 'dists/bookworm-pgdg');
  await mkdir(join(dist, 'main/binary-amd64'), { recursive: true });
  await writeFile(join(dist, 'main/binary-amd64/Packages'), packages);
  const sha = createHash('sha256').update(packages).digest('hex');
  const release = `Origin: canvos-test\nLabel: PGDG fixture\nSuite: bookworm-pgdg\nCodename: bookworm-pgdg\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n ${sha} ${Buffer.byteLength(packages)} main/binary-amd64/Packages\n`;
  await writeFile(join(dist, 'Release'), release);
  const gnupg = join(dir, '..', 'gnupg');
  await mkdir(gnupg, { mode: 0o700 });
  const env = { GNUPGHOME: gnupg };
  await checked('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', 'canvos test <t@example.invalid>', 'ed25519', 'sign', 'never'], env);
  await writeFile(join(dir, 'key.asc'), await checked('gpg', ['--armor', '--export'], env));
  await checked('gpg', ['--batch', '--yes', '--clearsign', '--digest-algo', 'SHA256', '-o', join(dist, 'InRelease'), join(dist, 'Release')], env);
}

beforeAll(async () => {
  reg = await startRegistry();
  tmp = await tmpDir('canvos-two-node-');
  const repo = join(tmp.path, 'www');
  await pgdgRepo(repo);
  await writeFile(join(repo, 'kine-amd64'), '#!/bin/sh\necho "kine fixture 0.15.0"\n');
  server = createServer((req, res) => {
    const p = join(repo, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    readFile(p).then(
      (b) => res.end(b),
      () => {
        res.statusCode = 404;
        res.end();
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const deb = await debianBase();
  await pushLayout(deb.layoutDir, reg, 'debian/base', { tag: deb.tag });
  const refs = await pushFixtureImages(reg, join(tmp.path, 'fixtures'));
  const project = join(tmp.path, 'project');
  await makeProject(project, `${refs.argLines}\nBASE_IMAGE=${reg.host}/debian/base:${deb.tag}\nTWO_NODE=true\nK8S_VERSION=1.30.4\n`);
  // Kairos bases ship systemd; the Debian minbase fixture does not.
  await writeFile(join(project, 'Dockerfile'), 'ARG BASE\nFROM $BASE\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd\n');
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
    expect(result.images[0]!.appended.slice(0, 6)).toEqual(['Dockerfile:3', 'TWO_NODE step 1', 'TWO_NODE step 2', 'TWO_NODE step 3', 'TWO_NODE step 4', 'TWO_NODE step 5']);
    expect(result.dockerfileRuns).toBe(6);
  });

  it('the image has postgresql-16, kine, the PERL5LIB profile, the unit ordering, and postgresql disabled', async () => {
    const layout = join(tmp.path, 'layout');
    await skopeo(['copy', '--insecure-policy', '--src-tls-verify=false', result.images[0]!.destination, `oci:${layout}:img`]);
    await umoci(['unpack', '--rootless', '--image', `${layout}:img`, join(tmp.path, 'bundle')]);
    const root = join(tmp.path, 'bundle/rootfs');
    const read = (p: string) => readFile(join(root, p), 'utf8');
    const status = await read('var/lib/dpkg/status');
    for (const p of ['postgresql-16', 'postgresql-contrib-16', 'iputils-ping', 'lsb-release']) expect(status).toMatch(new RegExp(`^Package: ${p}\\nStatus: install ok installed`, 'm'));
    expect(await read('opt/spectrocloud/bin/kine')).toContain('kine fixture 0.15.0');
    expect((await stat(join(root, 'opt/spectrocloud/bin/kine'))).mode & 0o777).toBe(0o755);
    expect(await read('var/lib/postgresql/.bash_profile')).toMatch(/^export PERL5LIB=\/usr\/share\/perl\/5\.34:/);
    expect(await read('lib/systemd/system/postgresql@.service')).toContain('After=network-online.target');
    expect(await stat(join(root, 'etc/systemd/system/multi-user.target.wants/postgresql.service')).then(() => true, () => false)).toBe(false);
    expect(await read('etc/apt/sources.list.d/pgdg.list')).toBe(`deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] ${url}/ bookworm-pgdg main\n`);
    const cfg = JSON.parse(await skopeo(['inspect', '--config', '--tls-verify=false', result.images[0]!.destination])) as { history: { created_by: string }[] };
    expect(cfg.history.filter((h) => h.created_by.endsWith('# canvos-lite TWO_NODE'))).toHaveLength(5);
  }, 300_000);
});
