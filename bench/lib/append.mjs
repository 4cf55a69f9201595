/**
 * Child process for the build and memory benches ("ours"): build one deterministic gzip layer holding a host file
 * with the COMPILED library (dist/), append it to a base image read from a registry, and push the result to a
 * registry (base layers: HEAD, then cross-repository mount, streamed only as a last resort). Prints one JSON line.
 * usage: node append.mjs BASE_REF DEST_REF PAYLOAD_FILE WORK_DIR   (plain-HTTP registries on 127.0.0.1)
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { assembleImage, buildLayer, registryDestination, registrySource } from '../../dist/internal.js';

const [baseRef, destRef, payload, workDir] = process.argv.slice(2);
if (!workDir) {
  process.stderr.write('usage: node append.mjs BASE_REF DEST_REF PAYLOAD_FILE WORK_DIR\n');
  process.exit(2);
}
const hostOf = (r) => r.split('/')[0];
const opts = { insecureRegistries: [...new Set([hostOf(baseRef), hostOf(destRef)])], env: {} };

const t0 = performance.now();
const layer = await buildLayer(
  { entries: [{ type: 'file', path: '/opt/bench/payload.bin', source: { host: payload }, mode: 0o644 }] },
  // BENCH_BUILD_LEVEL: the gzip level (default: the library's), to compare with the provider path at one level.
  {
    dir: workDir,
    sourceDateEpoch: 0,
    level: process.env.BENCH_BUILD_LEVEL ? Number(process.env.BENCH_BUILD_LEVEL) : undefined,
  },
);
const t1 = performance.now();

const src = registrySource(baseRef, opts);
const dst = registryDestination(destRef, opts);
const raw = await src.getManifest();
const manifest = JSON.parse(raw.bytes.toString('utf8'));
const chunks = [];
for await (const c of await src.getBlob(manifest.config)) chunks.push(c);
const image = assembleImage({ manifest: raw, configBytes: Buffer.concat(chunks), layers: manifest.layers }, [
  { ...layer, createdBy: 'bench append' },
]);

const statuses = {};
const queue = [...image.layers];
const baseDigests = new Set(manifest.layers.map((l) => l.digest));
const worker = async () => {
  for (let d = queue.shift(); d; d = queue.shift()) {
    const desc = d;
    const open = desc.digest === layer.digest ? async () => createReadStream(layer.path) : () => src.getBlob(desc);
    const s = await dst.putBlob(desc, open, { mountFrom: baseDigests.has(desc.digest) ? src.mountOrigin : undefined });
    statuses[s] = (statuses[s] ?? 0) + 1;
  }
};
await Promise.all([worker(), worker(), worker()]);
await dst.putBlob(
  { mediaType: image.config.mediaType, digest: image.config.digest, size: image.config.bytes.length },
  async () => Readable.from([image.config.bytes]),
);
await dst.putManifest(image.manifest, dst.tag);
const t2 = performance.now();
await src.close();
await dst.close();
process.stdout.write(
  JSON.stringify({
    buildMs: t1 - t0,
    pushMs: t2 - t1,
    layer: { digest: layer.digest, size: layer.size, uncompressedSize: layer.uncompressedSize },
    configSize: image.config.bytes.length,
    manifestSize: image.manifest.bytes.length,
    statuses,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
  }) + '\n',
);
