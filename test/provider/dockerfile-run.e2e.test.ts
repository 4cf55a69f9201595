/**
 * RUN in the project Dockerfile, end to end and rootless: the CLI (bin/canvos-lite.js, run as the unprivileged test
 * user) builds on a real Debian base (mmdebstrap, test/helpers/debian-base.ts) with `apt-get install wireguard-tools`,
 * COPY, ENV and `RUN rm` of a base file, pushes to a real registry; the image is unpacked with umoci and checked.
 * A second build runs nothing and gives the same digest; without user namespaces the build fails up front, pushing
 * nothing. Needs deb.debian.org (apt) and the tools of scripts/install-deps.sh (mmdebstrap, bwrap, uidmap, umoci).
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir, umoci } from '../helpers/tools.js';
import { unprivilegedIdentity } from '../helpers/unprivileged.js';
import { debianProject, giveToUnprivileged, unprivilegedCli } from './debian-project.js';
import { makeProject, registryTags } from './fixture-images.js';

let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let work: string;
let project: string;
let baseRef: string;

const DOCKERFILE = `ARG BASE
FROM $BASE
ARG OS_DISTRIBUTION
ENV DEBIAN_FRONTEND=noninteractive
COPY --chmod=0644 hello.txt /etc/hello.txt
RUN apt-get update && apt-get install -y --no-install-recommends wireguard-tools && rm -rf /var/lib/apt/lists/*
RUN rm /etc/issue.net
`;

/** Run the CLI as the unprivileged user; `env` adds to a minimal environment. */
const cli = (args: string[], env: Record<string, string> = {}, cwd = project) => unprivilegedCli(work, cwd, args, env);

const build = (repo: string, env: Record<string, string> = {}, cwd = project, extra: string[] = []) =>
  cli(
    [
      'build',
      '--push',
      '--json',
      '--insecure-registry',
      reg.host,
      '--set',
      'K8S_VERSION=1.30.4',
      '--set',
      `BASE_IMAGE=${baseRef}`,
      '--set',
      `IMAGE_REPO=${repo}`,
      ...extra,
    ],
    env,
    cwd,
  );

const tags = (repo: string) => registryTags(reg, repo);

beforeAll(async () => {
  reg = await startRegistry();
  tmp = await tmpDir('canvos-dockerfile-run-');
  const p = await debianProject(reg, join(tmp.path, 'fixtures'), 'canvos-dockerfile-run-');
  ({ baseRef, work, project } = p);
  await writeFile(join(project, 'hello.txt'), 'hello from COPY\n');
  await writeFile(join(project, 'Dockerfile'), DOCKERFILE);
  await giveToUnprivileged(p);
}, 900_000);

afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
  if (work) await run('rm', ['-rf', work]);
});

describe('Dockerfile RUN, rootless', () => {
  let digest = '';
  let image = '';
  let root = '';
  let layout = '';

  it('builds as the unprivileged user with RUN apt-get install, COPY, ENV and RUN rm', async () => {
    const r = await build('wg');
    expect(r.stderr).not.toMatch(/canvos-lite: /);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      dockerfileRuns: number;
      images: { digest: string; appended: string[]; destination: string }[];
    };
    expect(out.dockerfileRuns).toBe(2);
    image = out.images[0]!.destination;
    expect(out.images[0]!.appended.slice(0, 3)).toEqual(['Dockerfile:5', 'Dockerfile:6', 'Dockerfile:7']);
    digest = out.images[0]!.digest;
  }, 900_000);

  it('the image unpacked by umoci has the package, the copied file, root ownership and the deletion', async () => {
    layout = join(tmp.path, 'layout');
    await skopeo(['copy', '--insecure-policy', '--src-tls-verify=false', image, `oci:${layout}:img`]);
    await umoci(['unpack', '--rootless', '--image', `${layout}:img`, join(tmp.path, 'bundle')]);
    root = join(tmp.path, 'bundle', 'rootfs');
    const wg = await run('unshare', ['-Ur', 'chroot', root, '/usr/bin/wg', '--version']);
    expect(wg.code, wg.stderr).toBe(0);
    expect(wg.stdout).toMatch(/^wireguard-tools v/);
    const status = await readFile(join(root, 'var/lib/dpkg/status'), 'utf8');
    expect(status).toMatch(/^Package: wireguard-tools\nStatus: install ok installed/m);
    expect(await readFile(join(root, 'etc/hello.txt'), 'utf8')).toBe('hello from COPY\n');
    expect(
      await stat(join(root, 'etc/issue.net')).then(
        () => true,
        () => false,
      ),
    ).toBe(false);
    expect(
      await stat(join(root, 'etc/issue')).then(
        () => true,
        () => false,
      ),
    ).toBe(true);
    // Owners as stored in the RUN layers: root inside the namespace is 0/0, never the building user's uid.
    const m = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(
      await readFile(join(layout, 'blobs/sha256', m.manifests[0]!.digest.slice(7)), 'utf8'),
    ) as { layers: { digest: string }[] };
    const runLayer = await run('tar', [
      '--numeric-owner',
      '-tvzf',
      join(layout, 'blobs/sha256', manifest.layers[2]!.digest.slice(7)),
    ]);
    expect(runLayer.stdout).toMatch(/-rwxr-xr-x 0\/0 .* usr\/bin\/wg\n/);
    expect(runLayer.stdout).not.toMatch(/ 1001\//);
    const rmLayer = await run('tar', [
      '--numeric-owner',
      '-tvzf',
      join(layout, 'blobs/sha256', manifest.layers[3]!.digest.slice(7)),
    ]);
    expect(rmLayer.stdout).toMatch(/etc\/\.wh\.issue\.net/);
  }, 300_000);

  it('records each instruction in the history', async () => {
    const cfg = JSON.parse(await skopeo(['inspect', '--config', '--tls-verify=false', image])) as {
      config: { Env: string[] };
      history: { created_by: string; empty_layer?: boolean }[];
    };
    expect(cfg.config.Env).toContain('DEBIAN_FRONTEND=noninteractive');
    expect(cfg.history.slice(1, 5).map((h) => h.created_by)).toEqual([
      'ENV DEBIAN_FRONTEND=noninteractive',
      'COPY --chmod=0644 hello.txt /etc/hello.txt # buildkit',
      'RUN |1 OS_DISTRIBUTION=ubuntu /bin/sh -c apt-get update && apt-get install -y --no-install-recommends wireguard-tools && rm -rf /var/lib/apt/lists/* # buildkit',
      'RUN |1 OS_DISTRIBUTION=ubuntu /bin/sh -c rm /etc/issue.net # buildkit',
    ]);
  });

  it('a second build executes nothing and gives the same digest', async () => {
    const r = await build('wg');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { dockerfileRuns: number; images: { digest: string }[] };
    expect(out.dockerfileRuns).toBe(0);
    expect(out.images[0]!.digest).toBe(digest);
  }, 300_000);

  it('another --compression-level runs the RUNs again (the cache key holds the level), then caches them too', async () => {
    const first = await build('wg9', {}, project, ['--compression-level', '9']);
    expect(first.code, first.stderr).toBe(0);
    const a = JSON.parse(first.stdout) as { dockerfileRuns: number; images: { digest: string }[] };
    expect(a.dockerfileRuns).toBe(2); // not the level-1 layers recorded by the builds above
    expect(a.images[0]!.digest).not.toBe(digest);
    const again = await build('wg9', {}, project, ['--compression-level', '9']);
    const b = JSON.parse(again.stdout) as { dockerfileRuns: number; images: { digest: string }[] };
    expect(b.dockerfileRuns).toBe(0);
    expect(b.images[0]!.digest).toBe(a.images[0]!.digest);
  }, 600_000);

  it('with SOURCE_DATE_EPOCH, two cold builds of deterministic RUNs give the same digest', async () => {
    const p2 = join(work, 'project2');
    await makeProject(p2, await readFile(join(project, '.arg'), 'utf8'));
    await writeFile(join(p2, 'hello.txt'), 'copied between two RUNs\n');
    // A COPY after a RUN is applied to the open workspace, so the second RUN sees it.
    await writeFile(
      join(p2, 'Dockerfile'),
      'ARG BASE\nFROM $BASE\nRUN echo deterministic > /etc/greeting && rm /etc/issue.net && mkdir -p /opt/x && ln -s /etc/greeting /opt/x/link\nCOPY hello.txt /etc/hello2.txt\nRUN cp /etc/hello2.txt /etc/hello3.txt\n',
    );
    const id = unprivilegedIdentity()!;
    await run('chown', ['-R', `${id.uid}:${id.gid}`, p2]);
    const digests: string[] = [];
    for (const cache of ['cold-1', 'cold-2']) {
      const r = await build('cold', { CANVOS_CACHE_DIR: join(work, cache) }, p2);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { dockerfileRuns: number; images: { digest: string }[] };
      expect(out.dockerfileRuns).toBe(2);
      digests.push(out.images[0]!.digest);
    }
    expect(digests[1]).toBe(digests[0]);
    const inspect = JSON.parse(
      await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/out/cold:k3s-1.30.4-v4.9.38-demo`]),
    ) as { Layers: string[] };
    const blob = join(tmp.path, 'run2.tar.gz');
    await writeFile(
      blob,
      Buffer.from(await (await fetch(`${reg.url}/v2/out/cold/blobs/${inspect.Layers[3]}`)).arrayBuffer()),
    );
    expect((await run('tar', ['-tzf', blob])).stdout.split('\n')).toContain('etc/hello3.txt');
  }, 300_000);

  it('a failing RUN exits 18 naming Dockerfile:LINE, and pushes nothing', async () => {
    const p3 = join(work, 'project3');
    await makeProject(p3, await readFile(join(project, '.arg'), 'utf8'));
    await writeFile(
      join(p3, 'Dockerfile'),
      'ARG BASE\nFROM $BASE\nRUN echo ok\nRUN echo "no such thing" >&2 && exit 3\n',
    );
    const id = unprivilegedIdentity()!;
    await run('chown', ['-R', `${id.uid}:${id.gid}`, p3]);
    const r = await build('failing', {}, p3);
    expect(r.code).toBe(18);
    expect(r.stderr).toMatch(/^canvos-lite: Dockerfile:4: RUN exited with 3: no such thing$/m);
    expect(await tags('out/failing')).toEqual([]);
  }, 300_000);

  it('without user namespaces the build fails up front with one line naming Dockerfile:LINE, and pushes nothing', async () => {
    const r = await build('nouserns', { CANVOS_EXEC_DISABLE_USERNS: '1' });
    expect(r.code).toBe(19);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe(
      'canvos-lite: Dockerfile:6: RUN cannot be executed here: user namespaces are disabled by CANVOS_EXEC_DISABLE_USERNS=1',
    );
    expect(lines[1]).toMatch(/^hint: enable unprivileged user namespaces .* or pre-bake the change into BASE_IMAGE$/);
    expect(await tags('out/nouserns')).toEqual([]); // IMAGE_REGISTRY=<registry>/out (fixture-images.ts)
    expect(await tags('out/wg')).toEqual(['k3s-1.30.4-v4.9.38-demo']);
  }, 120_000);
});
