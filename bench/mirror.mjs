#!/usr/bin/env node
// Benchmark: `canvos-lite mirror push` A→B against `skopeo sync --all` A→C for a set of multi-platform images.
// Run after `npm run build` (uses dist/ through bin/canvos-lite.js). Registries are real docker-registry processes on
// loopback, fresh for each tool; images are random gzip'd tar layers written here (no canvos-lite code involved),
// seeded into A with skopeo. Writes bench/results/mirror.json. Env: BENCH_IMAGES (5), BENCH_LAYER_MB (4).
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { startRegistry } from './lib/registry.mjs';
import { startWan } from './lib/wan.mjs';

const exec = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const IMAGES = Number(process.env.BENCH_IMAGES ?? 5);
const LAYER_MB = Number(process.env.BENCH_LAYER_MB ?? 4);
const PLATFORMS = ['linux/amd64', 'linux/arm64'];
const LAYERS = 3;

const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function tarOf(name, bytes) {
  const p = pack();
  const chunks = [];
  p.on('data', (c) => chunks.push(c));
  const done = new Promise((r) => p.on('end', r));
  p.entry({ name, size: bytes.length, mtime: new Date(0) }, bytes);
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** One OCI layout per image (index of PLATFORMS), random incompressible layers. */
async function makeLayout(dir, n) {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (buf) => {
    const d = sha(buf);
    await writeFile(join(dir, 'blobs', 'sha256', d.slice(7)), buf);
    return { digest: d, size: buf.length };
  };
  const manifests = [];
  for (const plat of PLATFORMS) {
    const [os, architecture] = plat.split('/');
    const layers = [];
    const diffIds = [];
    for (let l = 0; l < LAYERS; l++) {
      const t = await tarOf(`img${n}-${architecture}-${l}.bin`, randomBytes(LAYER_MB * 1024 * 1024));
      diffIds.push(sha(t));
      layers.push({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        ...(await put(gzipSync(t, { level: 1 }))),
      });
    }
    const config = Buffer.from(
      JSON.stringify({ architecture, os, rootfs: { type: 'layers', diff_ids: diffIds }, config: {} }),
    );
    const m = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(config)) },
        layers,
      }),
    );
    manifests.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...(await put(m)),
      platform: { os, architecture },
    });
  }
  const idx = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }),
  );
  const top = await put(idx);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.index.v1+json',
          ...top,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    }),
  );
  return top.digest;
}

async function timed(fn) {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** Run a command under /usr/bin/time; returns its CPU seconds (user + sys). */
async function cpuOf(cmd, args) {
  const r = await exec('/usr/bin/time', ['-f', 'CPU %U %S', cmd, ...args], { maxBuffer: 64 << 20 });
  const m = /CPU ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return m ? Number(m[1]) + Number(m[2]) : NaN;
}

const root = await mkdtemp(join(tmpdir(), 'canvos-bench-mirror-'));
const regs = [];
try {
  const a = await startRegistry();
  regs.push(a);
  const refs = [];
  const digests = {};
  for (let i = 0; i < IMAGES; i++) {
    const dir = join(root, `img${i}`);
    digests[`bench/img${i}:v1`] = await makeLayout(dir, i);
    await exec('skopeo', [
      'copy',
      '--all',
      '--insecure-policy',
      '--dest-tls-verify=false',
      `oci:${dir}:v1`,
      `docker://${a.host}/bench/img${i}:v1`,
    ]);
    refs.push(`${a.host}/bench/img${i}:v1`);
  }
  const totalMB = IMAGES * PLATFORMS.length * LAYERS * LAYER_MB;

  async function scenario(srcHost, label) {
    const b = await startRegistry();
    regs.push(b);
    const cli = join(here, '..', 'bin', 'canvos-lite.js');
    const srcRefs = refs.map((r) => r.replace(a.host, srcHost));
    let oursCpu = 0;
    const ours = async () => {
      oursCpu = await cpuOf(process.execPath, [
        ...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_PROF] : []),
        cli,
        'mirror',
        'push',
        ...srcRefs,
        '--to',
        `${b.host}/mirror`,
        '--src-insecure',
        '--dest-insecure',
        '--json',
      ]);
    };
    const oursCold = await timed(ours);
    const oursColdCpu = oursCpu;
    const oursWarm = await timed(ours);

    const c = await startRegistry();
    regs.push(c);
    // skopeo sync, one process per repository (its --src docker form), all platforms.
    let skopeoCpu = 0;
    const skopeoSync = async () => {
      skopeoCpu = 0;
      for (let i = 0; i < IMAGES; i++) {
        skopeoCpu += await cpuOf('skopeo', [
          'sync',
          '--all',
          '--src',
          'docker',
          '--dest',
          'docker',
          '--src-tls-verify=false',
          '--dest-tls-verify=false',
          `${srcHost}/bench/img${i}:v1`,
          `${c.host}/mirror`,
        ]);
      }
    };
    const skopeoCold = await timed(skopeoSync);
    const skopeoColdCpu = skopeoCpu;
    const skopeoWarm = await timed(skopeoSync);

    // Both must have produced byte-identical indexes.
    for (let i = 0; i < IMAGES; i++) {
      const want = digests[`bench/img${i}:v1`];
      for (const ref of [
        `${b.host}/mirror/${srcHost.replace(':', '-')}/bench/img${i}:v1`,
        `${c.host}/mirror/img${i}:v1`,
      ]) {
        const { stdout } = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], {
          maxBuffer: 64 << 20,
        });
        if (sha(Buffer.from(stdout)) !== want) throw new Error(`digest mismatch for img${i} at ${ref}`);
      }
    }
    const r = {
      canvosLite: { coldSeconds: oursCold, coldCpuSeconds: oursColdCpu, noopSeconds: oursWarm },
      skopeoSync: { coldSeconds: skopeoCold, coldCpuSeconds: skopeoColdCpu, noopSeconds: skopeoWarm },
      ratioCold: skopeoCold / oursCold,
      ratioNoop: skopeoWarm / oursWarm,
    };
    console.log(
      `[${label}] mirror push ${IMAGES} images × ${PLATFORMS.length} platforms (${totalMB} MB): canvos-lite ${oursCold.toFixed(2)} s, skopeo sync ${skopeoCold.toFixed(2)} s → ${r.ratioCold.toFixed(2)}× (client CPU ${oursColdCpu.toFixed(2)} s vs ${skopeoColdCpu.toFixed(2)} s); no-op rerun: ${oursWarm.toFixed(2)} s vs ${skopeoWarm.toFixed(2)} s → ${r.ratioNoop.toFixed(2)}×`,
    );
    return r;
  }
  const only = process.env.BENCH_SCENARIO; // 'loopback' or 'wan' to run one
  const loopback = only === 'wan' ? undefined : await scenario(a.host, 'loopback');
  const wanCfg = {
    latencyMs: Number(process.env.BENCH_WAN_LATENCY_MS ?? 30),
    bytesPerSec: Number(process.env.BENCH_WAN_STREAM_MBPS ?? 4) * 1024 * 1024,
  };
  let wan;
  if (only !== 'loopback') {
    const wanProxy = await startWan(a.host, wanCfg.latencyMs, wanCfg.bytesPerSec);
    regs.push(wanProxy);
    wan = await scenario(
      wanProxy.host,
      `wan ${wanCfg.latencyMs} ms + ${wanCfg.bytesPerSec / 1048576} MiB/s per stream`,
    );
  }
  const result = {
    images: IMAGES,
    platforms: PLATFORMS,
    layersPerPlatform: LAYERS,
    layerMB: LAYER_MB,
    totalMB,
    loopback,
    wan: { ...wanCfg, ...wan },
    ratioCold: loopback?.ratioCold,
    date: new Date().toISOString(),
  };
  await mkdir(join(here, 'results'), { recursive: true });
  await writeFile(join(here, 'results', 'mirror.json'), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await Promise.all(regs.map((r) => r.stop()));
  await rm(root, { recursive: true, force: true });
}
