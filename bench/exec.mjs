/**
 * `node bench/exec.mjs [--quick] [--repeat N]`: one RUN that installs a package (`apt-get update && apt-get install
 * -y wireguard-tools`) on a Debian base, rootless, as the unprivileged test user, ending with the image pushed to a
 * loopback registry. Ours: openWorkspace + run + gzip the layer + `canvos-lite copy` (bench/lib/exec-ours.mjs).
 * Theirs: rootless buildah `from` + `run --network host` + `commit` + `push`, with fresh storage each run (the
 * host's default driver: vfs without fuse-overlayfs). Base: mmdebstrap minbase plus compilers and libraries for
 * ≥ 500 MB (quick: minbase, ~170 MB), cached in $CANVOS_BENCH_CACHE or ~/.cache/canvos-lite-bench. Needs
 * deb.debian.org for both sides' apt runs, so wall times include the same downloads. Target: wall ratio ≤ 0.5.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { copyFileSync, existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMeasured } from './lib/proc.mjs';
import { startRegistry } from './lib/registry.mjs';
import { BENCH_DIR, bestOf, repeats, round, row, runIfMain, tmp } from './lib/util.mjs';

const USER = 'canvostest';
const INCLUDE = 'gcc-12,g++-12,libllvm15,python3,perl,git';
const CMD = 'apt-get update && apt-get install -y --no-install-recommends wireguard-tools';

function ids() {
  const line = execFileSync('getent', ['passwd', USER]).toString().trim().split(':');
  return { uid: Number(line[2]), gid: Number(line[3]) };
}

/** argv run as the unprivileged user with a minimal environment. */
function asUser(argv, env = {}) {
  const { uid, gid } = ids();
  const e = Object.entries({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env }).map(([k, v]) => `${k}=${v}`);
  if (process.getuid() !== 0) return ['env', ...e, ...argv];
  return ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--reset-env', '--', 'env', ...e, ...argv];
}

export async function baseTar(quick, log) {
  const cache = process.env.CANVOS_BENCH_CACHE ?? join(homedir(), '.cache', 'canvos-lite-bench');
  const key = createHash('sha256')
    .update(`bookworm minbase ${quick ? '' : INCLUDE}`)
    .digest('hex')
    .slice(0, 12);
  const out = join(cache, `exec-base-${key}.tar`);
  if (existsSync(out)) return out;
  mkdirSync(cache, { recursive: true });
  const w = await tmp('exec-base');
  execFileSync('chown', [`${ids().uid}`, w.path]);
  log(`building the base with mmdebstrap (${quick ? 'minbase' : `minbase + ${INCLUDE}`})…`);
  const argv = asUser(
    [
      'mmdebstrap',
      '--mode=unshare',
      '--variant=minbase',
      '--quiet',
      ...(quick ? [] : [`--include=${INCLUDE}`]),
      'bookworm',
      join(w.path, 'base.tar'),
      'http://deb.debian.org/debian',
    ],
    { HOME: w.path },
  );
  await runMeasured(argv[0], argv.slice(1), { cwd: w.path });
  copyFileSync(join(w.path, 'base.tar'), `${out}.part`);
  renameSync(`${out}.part`, out);
  await w.cleanup();
  return out;
}

/** An OCI layout holding the base tar as one uncompressed layer, tag `base`, owned by the unprivileged user. */
function writeLayout(dir, tar) {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const diff = execFileSync('sha256sum', [tar]).toString().split(' ')[0];
  copyFileSync(tar, join(blobs, diff));
  const put = (o) => {
    const b = Buffer.from(JSON.stringify(o));
    const d = createHash('sha256').update(b).digest('hex');
    writeFileSync(join(blobs, d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const config = put({
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diff}`] },
  });
  const layer = {
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    digest: `sha256:${diff}`,
    size: statSync(tar).size,
  };
  const m = put({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [layer],
  });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...m,
          annotations: { 'org.opencontainers.image.ref.name': 'base' },
        },
      ],
    }),
  );
  execFileSync('chown', ['-R', `${ids().uid}:${ids().gid}`, dir]);
}

async function benchExec({ quick, log }) {
  const tar = await baseTar(quick, log);
  const baseMB = statSync(tar).size / 1e6;
  const reg = await startRegistry();
  // buildah names images after the oci: path, which must be lowercase (mkdtemp's suffix is not).
  const path = join(tmpdir(), `bench-exec-${randomBytes(6).toString('hex')}`);
  mkdirSync(path, { mode: 0o700 });
  const w = { path, cleanup: () => rm(path, { recursive: true, force: true }) };
  execFileSync('chown', [`${ids().uid}`, w.path]);
  try {
    const ours = await bestOf(repeats(1), async (i) => {
      const layout = join(w.path, `ours-${i}`);
      writeLayout(layout, tar);
      log(`ours run ${i + 1}…`);
      const argv = asUser(
        [
          process.execPath,
          join(BENCH_DIR, 'lib', 'exec-ours.mjs'),
          layout,
          'base',
          'built',
          `docker://${reg.host}/exec/ours:${i}`,
          w.path,
          CMD,
        ],
        { HOME: w.path },
      );
      return runMeasured(argv[0], argv.slice(1), { cwd: w.path });
    });
    const theirs = await bestOf(repeats(1), async (i) => {
      const layout = join(w.path, `theirs-${i}`);
      const home = join(w.path, `buildah-home-${i}`);
      writeLayout(layout, tar);
      mkdirSync(join(home, 'xdg'), { recursive: true, mode: 0o700 });
      execFileSync('chown', ['-R', `${ids().uid}`, home]);
      log(`buildah run ${i + 1}…`);
      const script = `set -e; ctr=$(buildah from -q --name exec-ctr-${i} oci:${layout}:base); buildah run --network host $ctr -- sh -c '${CMD}' >&2; buildah commit -q $ctr exec-theirs >/dev/null; buildah push -q --tls-verify=false exec-theirs docker://${reg.host}/exec/theirs:${i}; buildah rm $ctr >/dev/null`;
      const argv = asUser(['sh', '-c', script], {
        HOME: home,
        XDG_RUNTIME_DIR: join(home, 'xdg'),
        DEBIAN_FRONTEND: 'noninteractive',
      });
      const r = await runMeasured(argv[0], argv.slice(1), { cwd: w.path });
      const clean = asUser(['buildah', 'unshare', 'rm', '-rf', join(home, '.local')], {
        HOME: home,
        XDG_RUNTIME_DIR: join(home, 'xdg'),
      });
      await runMeasured(clean[0], clean.slice(1), { allowFail: true });
      return r;
    });
    const baseTag = `${round(baseMB, 0)} MB base`;
    return {
      baseMB: round(baseMB, 0),
      runsMs: { ours: ours.runsMs, theirs: theirs.runsMs },
      rows: [
        row(
          'exec',
          `RUN apt-get install + push, wall (${baseTag}) vs buildah`,
          ours.ms / 1000,
          theirs.ms / 1000,
          's',
          'lower',
          '≤ 0.5',
        ),
        ...(ours.cpuS === undefined
          ? []
          : [row('exec', 'client CPU (user+sys)', ours.cpuS, theirs.cpuS, 's', 'lower')]),
        row('exec', 'peak RSS', ours.peakRssMB, theirs.peakRssMB, 'MiB', 'lower'),
      ],
    };
  } finally {
    await reg.stop();
    const argv = asUser(['unshare', '--user', '--map-root-user', '--map-auto', 'rm', '-rf', w.path]);
    await runMeasured(argv[0], argv.slice(1), { allowFail: true });
    await w.cleanup();
  }
}

await runIfMain(import.meta.url, 'exec', benchExec);
