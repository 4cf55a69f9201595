/**
 * The project Dockerfile applied by `buildProviderImages` against a real registry: COPY (--chmod/--chown, glob,
 * directory, into an existing directory, heredoc), ADD of local tars, .dockerignore, ENV/LABEL/WORKDIR/CMD, the
 * stock preamble skipped, history per instruction, identical digests on rebuild, refusals that push nothing.
 */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { buildProviderImages, type BuildProviderResult } from '../../src/provider/build.js';
import { describeProviderBuild } from '../../src/provider/dry-run.js';
import { loadBuildConfig } from '../../src/provider/load.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir, umoci } from '../helpers/tools.js';
import { BASE_FILES, makeProject, pushFixtureImages, registryTags, type FixtureRefs } from './fixture-images.js';

let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let refs: FixtureRefs;
let project: string;
let first: BuildProviderResult;
let server: Server;
const DOWNLOAD = 'downloaded tool bytes\n';
const EPOCH = 1_700_000_000;

const DOCKERFILE = `# syntax=docker/dockerfile:1
ARG BASE
FROM $BASE

ARG OS_DISTRIBUTION
ARG HTTP_PROXY
RUN mkdir -p /certs
COPY certs/ /certs/
RUN rm -rf /certs

########################### Add any other image customizations here #######################
ARG DRBD_VERSION
ENV APP_HOME=/opt/app \\
    DRBD=\${DRBD_VERSION}
LABEL org.example.vendor="ACME corp" os=$OS_DISTRIBUTION
WORKDIR $APP_HOME
COPY --chmod=0750 --chown=app:staff scripts/*.sh bin/
COPY conf/ /etc/acme/
COPY tool /usr/local/bin
ADD vendor.tar.gz /opt/vendor/
ADD plain.tar ./plain/
COPY <<EOF /etc/motd
Welcome to $APP_HOME
EOF
CMD ["/opt/app/bin/start.sh"]
COPY bootargs.cfg /etc/cos/
ADD --checksum=sha256:@SHA@ @URL@/dl/tool-1.0.bin /opt/dl/
ADD --chown=1000 extra.tar.xz /opt/xz/
`;

async function build(cacheDir: string, versionsOverride?: string): Promise<BuildProviderResult> {
  const config = await loadBuildConfig({
    argFile: join(project, '.arg'),
    overrides: { K8S_VERSION: versionsOverride ?? '1.30.4' },
  });
  return buildProviderImages(config, {
    versions: [config.k8sVersion],
    output: { push: true },
    projectDir: project,
    registry: { insecureRegistries: [reg.host], authFiles: [] },
    cacheDir,
    sourceDateEpoch: EPOCH,
  });
}

const tags = (repo: string) => registryTags(reg, repo);

beforeAll(async () => {
  reg = await startRegistry();
  tmp = await tmpDir('canvos-dockerfile-e2e-');
  const baseFiles = {
    ...BASE_FILES,
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n',
    'etc/group': 'root:x:0:\nstaff:x:50:\napp:x:1000:\n',
    'usr/local/bin/existing': 'x\n',
  };
  refs = await pushFixtureImages(reg, join(tmp.path, 'fixtures'), { baseFiles });
  project = join(tmp.path, 'project');
  await makeProject(project, refs.argLines);
  await mkdir(join(project, 'scripts'));
  await writeFile(join(project, 'scripts/start.sh'), '#!/bin/sh\necho start\n');
  await writeFile(join(project, 'scripts/stop.sh'), '#!/bin/sh\necho stop\n');
  await writeFile(join(project, 'scripts/notes.txt'), 'not matched by *.sh\n');
  await mkdir(join(project, 'conf/sub'), { recursive: true });
  await writeFile(join(project, 'conf/a.conf'), 'a=1\n');
  await writeFile(join(project, 'conf/sub/b.conf'), 'b=2\n');
  await writeFile(join(project, 'conf/secret.key'), 'SECRET\n');
  await writeFile(join(project, 'conf/old.bak'), 'old\n');
  await writeFile(join(project, 'conf/keep.bak'), 'keep\n');
  await writeFile(join(project, '.dockerignore'), '# local junk\nconf/secret.*\n**/*.bak\n!conf/keep.bak\n');
  await writeFile(join(project, 'tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  const src = join(tmp.path, 'tarsrc');
  await mkdir(join(src, 'inner'), { recursive: true });
  await writeFile(join(src, 'inner/file'), 'from the tarball\n');
  await writeFile(join(src, 'p.txt'), 'plain\n');
  await run('tar', ['-czf', join(project, 'vendor.tar.gz'), '-C', src, 'inner']);
  await run('tar', ['-cf', join(project, 'plain.tar'), '-C', src, 'p.txt']);
  await writeFile(
    join(project, 'bootargs.cfg'),
    'set kernel=/boot/vmlinuz\nset baseCmd="console=ttyS0 custom.arg=1 security=selinux selinux=1"\n',
  );
  await writeFile(join(src, 'xz.txt'), 'from xz\n');
  await run('tar', ['-cJf', join(project, 'extra.tar.xz'), '-C', src, 'xz.txt']);
  server = createServer((req, res) => res.end(req.url === '/dl/tool-1.0.bin' ? DOWNLOAD : ''));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const sha = createHash('sha256').update(DOWNLOAD).digest('hex');
  await writeFile(join(project, 'Dockerfile'), DOCKERFILE.replace('@SHA@', sha).replace('@URL@', url));
  first = await build(join(tmp.path, 'cache-1'));
}, 300_000);

afterAll(async () => {
  server?.close();
  await reg?.stop();
  await tmp?.cleanup();
});

describe('project Dockerfile', () => {
  it('appends one layer per COPY/ADD right after the base, before canvos-lite layers', async () => {
    const img = first.images[0]!;
    expect(img.appended).toEqual([
      'Dockerfile:17',
      'Dockerfile:18',
      'Dockerfile:19',
      'Dockerfile:20',
      'Dockerfile:21',
      'Dockerfile:22',
      'Dockerfile:26',
      'Dockerfile:27',
      'Dockerfile:28',
      'os-config',
      'overlay',
      'agent-provider',
      'stylus',
      'finalize',
      'k8s-1.30.4',
    ]);
    expect(img.layers.slice(0, 2).map((l) => l.digest)).toEqual(refs.baseDigests.amd64);
    expect(first.dockerfileRuns).toBe(0);
  });

  it('writes ENV, LABEL, WORKDIR and CMD into the config and one history entry per instruction', async () => {
    const ref = `docker://${reg.host}/out/ubuntu:${first.images[0]!.tag}`;
    const cfg = JSON.parse(await skopeo(['inspect', '--config', '--tls-verify=false', ref])) as {
      config: { Env: string[]; Labels: Record<string, string>; WorkingDir: string; Cmd: string[] };
      history: { created_by: string; empty_layer?: boolean }[];
      rootfs: { diff_ids: string[] };
    };
    expect(cfg.config.Env).toEqual([
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'APP_HOME=/opt/app',
      'DRBD=9.2.13',
    ]);
    expect(cfg.config.Labels).toEqual({
      'canvos.test/platform': 'linux/amd64',
      'org.example.vendor': 'ACME corp',
      os: 'ubuntu',
    });
    expect(cfg.config.WorkingDir).toBe('/opt/app');
    expect(cfg.config.Cmd).toEqual(['/opt/app/bin/start.sh']);
    const h = cfg.history.slice(2, 13); // up to the bootargs COPY
    expect(h.map((x) => [x.created_by, x.empty_layer ?? false])).toEqual([
      ['ENV APP_HOME=/opt/app DRBD=9.2.13', true],
      ['LABEL org.example.vendor=ACME corp os=ubuntu', true],
      ['WORKDIR /opt/app', true],
      ['COPY --chmod=0750 --chown=app:staff scripts/*.sh bin/ # buildkit', false],
      ['COPY conf/ /etc/acme/ # buildkit', false],
      ['COPY tool /usr/local/bin # buildkit', false],
      ['ADD vendor.tar.gz /opt/vendor/ # buildkit', false],
      ['ADD plain.tar ./plain/ # buildkit', false],
      ['COPY <<EOF /etc/motd # buildkit', false],
      ['CMD ["/opt/app/bin/start.sh"]', true],
      ['COPY bootargs.cfg /etc/cos/ # buildkit', false],
    ]);
    expect(cfg.history.filter((x) => !x.empty_layer)).toHaveLength(cfg.rootfs.diff_ids.length);
  });

  it('the unpacked image (umoci) has each COPY/ADD effect, .dockerignore honoured, the preamble not replayed', async () => {
    const layout = join(tmp.path, 'layout');
    await skopeo([
      'copy',
      '--insecure-policy',
      '--src-tls-verify=false',
      `docker://${reg.host}/out/ubuntu:${first.images[0]!.tag}`,
      `oci:${layout}:img`,
    ]);
    const bundle = join(tmp.path, 'bundle');
    await umoci(['unpack', '--rootless', '--image', `${layout}:img`, bundle]);
    const root = join(bundle, 'rootfs');
    const read = (p: string) => readFile(join(root, p), 'utf8');
    const exists = (p: string) =>
      stat(join(root, p)).then(
        () => true,
        () => false,
      );
    expect(await read('opt/app/bin/start.sh')).toContain('echo start');
    expect((await stat(join(root, 'opt/app/bin/stop.sh'))).mode & 0o7777).toBe(0o750);
    expect(await exists('opt/app/bin/notes.txt')).toBe(false);
    expect(await read('etc/acme/a.conf')).toBe('a=1\n');
    expect(await read('etc/acme/sub/b.conf')).toBe('b=2\n');
    expect(await read('etc/acme/keep.bak')).toBe('keep\n');
    expect(await exists('etc/acme/secret.key')).toBe(false);
    expect(await exists('etc/acme/old.bak')).toBe(false);
    expect(await read('usr/local/bin/tool')).toContain('echo tool'); // into the base's existing directory
    expect(await read('usr/local/bin/existing')).toBe('x\n');
    expect(await read('opt/vendor/inner/file')).toBe('from the tarball\n');
    expect(await read('opt/app/plain/p.txt')).toBe('plain\n');
    expect(await read('etc/motd')).toBe('Welcome to /opt/app\n');
    expect(await exists('certs')).toBe(false);
    expect(await read('opt/dl/tool-1.0.bin')).toBe(DOWNLOAD); // ADD URL, verified against --checksum
    expect((await stat(join(root, 'opt/dl/tool-1.0.bin'))).mode & 0o777).toBe(0o600);
    expect(await read('opt/xz/xz.txt')).toBe('from xz\n'); // ADD of a local .tar.xz extracts it
    // canvos-lite's bootargs edit applies to the Dockerfile's bootargs.cfg, not the base's.
    expect(await read('etc/cos/bootargs.cfg')).toBe(
      'set kernel=/boot/vmlinuz\nset baseCmd="console=ttyS0 custom.arg=1 selinux=0 systemd.unified_cgroup_hierarchy=1 rd.driver.blacklist=nouveau modprobe.blacklist=nouveau nouveau.modeset=0"\n',
    );
    // Owners as written in the layer (umoci --rootless maps them to the caller): --chown=app:staff → 1000:50.
    const blobs = join(layout, 'blobs/sha256');
    const listing = await run('tar', [
      '--numeric-owner',
      '-tvzf',
      join(blobs, first.images[0]!.layers[2]!.digest.slice(7)),
    ]);
    expect(listing.stdout).toMatch(/-rwxr-x--- 1000\/50 .* opt\/app\/bin\/start\.sh/);
    const conf = await run('tar', [
      '--numeric-owner',
      '-tvzf',
      join(blobs, first.images[0]!.layers[3]!.digest.slice(7)),
    ]);
    expect(conf.stdout).toMatch(/-rw-r--r-- 0\/0 .* etc\/acme\/a\.conf/);
    const xz = await run('tar', [
      '--numeric-owner',
      '-tvzf',
      join(blobs, first.images[0]!.layers[10]!.digest.slice(7)),
    ]);
    expect(xz.stdout).toMatch(/ 1000\/1000 .* opt\/xz\/xz\.txt/); // ADD --chown=1000 applies to extracted entries
  });

  it('--dry-run lists the Dockerfile steps without running anything', async () => {
    const config = await loadBuildConfig({ argFile: join(project, '.arg'), overrides: { K8S_VERSION: '1.30.4' } });
    const r = await describeProviderBuild(config, {
      versions: ['1.30.4'],
      projectDir: project,
      registry: { insecureRegistries: [reg.host], authFiles: [] },
      cacheDir: join(tmp.path, 'cache-dry'),
    });
    expect(r.dockerfileSteps.map((st) => st.name)).toEqual([
      'Dockerfile:13',
      'Dockerfile:15',
      'Dockerfile:16',
      'Dockerfile:17',
      'Dockerfile:18',
      'Dockerfile:19',
      'Dockerfile:20',
      'Dockerfile:21',
      'Dockerfile:22',
      'Dockerfile:25',
      'Dockerfile:26',
      'Dockerfile:27',
      'Dockerfile:28',
    ]);
    expect(r.dockerfileSteps[3]?.createdBy).toBe('COPY --chmod=0750 --chown=app:staff scripts/*.sh bin/ # buildkit');
  });

  it('a rebuild with a fresh cache gives the same digests', async () => {
    const again = await build(join(tmp.path, 'cache-2'));
    expect(again.images[0]!.manifestDigest).toBe(first.images[0]!.manifestDigest);
  });

  it('refuses an unsupported instruction or a missing source, naming Dockerfile:LINE, and pushes nothing', async () => {
    const saved = await readFile(join(project, 'Dockerfile'), 'utf8');
    try {
      for (const [line, bad, msg] of [
        [
          'RUN --mount=type=cache,target=/var/cache/apt apt-get update',
          'ERR_CONFIG',
          /^Dockerfile:29: RUN --mount=type=cache,target=\/var\/cache\/apt is not supported/,
        ],
        ['FROM $BASE', 'ERR_CONFIG', /^Dockerfile:29: a second FROM/],
        ['ADD https://example.com/x.tgz /x/', 'ERR_CONFIG', /^Dockerfile:29: ADD of a URL needs --checksum/],
        ['COPY missing.txt /x', 'ERR_CONFIG', /^Dockerfile:29: missing\.txt does not exist in the project directory/],
      ] as const) {
        await writeFile(join(project, 'Dockerfile'), `${saved}${line}\n`);
        const e = await build(join(tmp.path, 'cache-bad'), '1.29.8').then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(CanvosError.is(e), line).toBe(true);
        expect((e as CanvosError).code).toBe(bad);
        expect((e as CanvosError).message).toMatch(msg);
      }
      expect(await tags('out/ubuntu')).toEqual([first.images[0]!.tag]);
    } finally {
      await writeFile(join(project, 'Dockerfile'), saved);
      await rm(join(tmp.path, 'cache-bad'), { recursive: true, force: true });
    }
  });
});
