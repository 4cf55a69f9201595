/**
 * Child process of the build bench ("ours"): what `canvos-lite build` does for N Kubernetes versions, on the
 * COMPILED library (dist/) and its provider-build modules, with one host file as each version's new layer: open the
 * base (provider/image-reader), build each version's layer in turn (buildLayer, default compression settings unless
 * LEVEL is given) while the previous ones upload (provider/early-upload), then write each version's image through
 * the copy engine (provider/push-image: base layers HEAD/mounted, new blobs found present, config, manifest last).
 * Prints one JSON line.
 * usage: node provider-append.mjs BASE_REF DEST_REPO WORK_DIR LEVEL|- PAYLOAD...   (plain-HTTP registries on 127.0.0.1)
 */
import { join } from 'node:path';
import { BlobCache } from '../../dist/cache/blob-cache.js';
import { buildLayer } from '../../dist/layers/build.js';
import { assembleImage, layerMediaTypeFor } from '../../dist/provider/assemble.js';
import { EarlyUploads, repositoryOf } from '../../dist/provider/early-upload.js';
import { openImage } from '../../dist/provider/image-reader.js';
import { pushAssembledImage } from '../../dist/provider/push-image.js';
import { openDestination } from '../../dist/transports/resolve-location.js';

// As bin/canvos-lite.js does for every command (BENCH_GC_PACER=0: the library's default GC policy).
if (process.env.BENCH_GC_PACER !== '0') (await import('../../dist/cli/gc-pacer.js')).startGcPacer();

const [baseRef, destRepo, workDir, levelArg, ...payloads] = process.argv.slice(2);
if (payloads.length === 0) {
  process.stderr.write('usage: node provider-append.mjs BASE_REF DEST_REPO WORK_DIR LEVEL|- PAYLOAD...\n');
  process.exit(2);
}
const hostOf = (r) => r.split('/')[0];
const registry = { insecureRegistries: [...new Set([hostOf(baseRef), hostOf(destRepo)])], authFiles: [] };
const level = levelArg === '-' ? undefined : Number(levelArg);
const cache = new BlobCache({ dir: join(workDir, 'cache') });

const t0 = performance.now();
// BENCH_TIMELINE=1: one stderr line per event (ms since start): layer builds, uploads, manifest writes.
const mark = process.env.BENCH_TIMELINE
  ? (what) => process.stderr.write(`${(performance.now() - t0).toFixed(0).padStart(6)} ms  ${what}\n`)
  : () => {};
// BENCH_TIMELINE=1 also samples memory every 20 ms and reports the breakdown at the RSS peak.
let peak = { rss: 0 };
const sampler = process.env.BENCH_TIMELINE
  ? setInterval(() => {
      const m = process.memoryUsage();
      if (m.rss > peak.rss) peak = { ...m, at: Math.round(performance.now() - t0) };
    }, 20)
  : undefined;
const base = await openImage(`docker://${baseRef}`, 'amd64', { registry, cache });
mark('base opened');
const statuses = {};
const onProgress = (e) => {
  if (e.phase === 'write-blob') {
    statuses[e.status] = (statuses[e.status] ?? 0) + 1;
    mark(`blob ${e.status} ${e.item.slice(7, 19)} (${Math.round((e.itemSize ?? 0) / 1048576)} MiB)`);
  }
};
const early = new EarlyUploads({ registry, onProgress });
const layers = [];
let buildMs = 0;
for (const [i, payload] of payloads.entries()) {
  const t = performance.now();
  mark(`build v${i + 1} start`);
  const layer = await buildLayer(
    { entries: [{ type: 'file', path: '/opt/bench/payload.bin', source: { host: payload }, mode: 0o644 }] },
    {
      dir: join(workDir, 'layers'),
      sourceDateEpoch: 0,
      level,
      mediaType: layerMediaTypeFor(base.manifest.mediaType),
    },
  );
  buildMs += performance.now() - t;
  mark(`build v${i + 1} done ${layer.digest.slice(7, 19)}`);
  early.add(layer, [repositoryOf(`${destRepo}:v${i + 1}`)]);
  layers.push(layer);
}
mark('settle');
await early.settle();
mark('settled');
const t1 = performance.now();
const files = new Map(layers.map((l) => [l.digest, l.path]));
const images = [];
for (const [i, layer] of layers.entries()) {
  const image = assembleImage(base, [{ ...layer, createdBy: 'bench append' }]);
  const dst = openDestination(`docker://${destRepo}:v${i + 1}`, { registry });
  try {
    await pushAssembledImage(dst, image, { base, files, cache }, { tag: `v${i + 1}`, onProgress });
  } finally {
    await dst.close();
  }
  mark(`image v${i + 1} written`);
  images.push({ configSize: image.config.bytes.length, manifestSize: image.manifest.bytes.length });
}
const t2 = performance.now();
await early.close();
await base.source.close();
if (process.env.BENCH_TIMELINE) {
  clearInterval(sampler);
  const mib = (x) => Math.round((x / 1048576) * 10) / 10;
  mark(
    `RSS peak at ${peak.at} ms, MiB: ${JSON.stringify(Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, k === 'at' ? v : mib(v)])))}`,
  );
  // CPU per thread name (main, libuv workers, V8 GC/compiler threads): /proc/self/task/*/stat, in seconds.
  const { readdirSync, readFileSync } = await import('node:fs');
  const byName = {};
  for (const t of readdirSync('/proc/self/task')) {
    const st = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
    const name = t === String(process.pid) ? 'main' : `${st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))}-${t}`;
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    byName[name] = (byName[name] ?? 0) + (Number(f[11]) + Number(f[12])) / 100;
  }
  mark(`thread CPU s: ${JSON.stringify(byName)}`);
}
process.stdout.write(
  JSON.stringify({
    buildMs,
    uploadWaitMs: t1 - t0 - buildMs,
    writeMs: t2 - t1,
    layers: layers.map((l) => ({ digest: l.digest, size: l.size, uncompressedSize: l.uncompressedSize })),
    metaBytes: images.reduce((n, x) => n + x.configSize + x.manifestSize, 0),
    statuses,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
  }) + '\n',
);
