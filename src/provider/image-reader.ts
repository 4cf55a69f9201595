/**
 * Opens an image the provider build reads from (the base, the agent provider, stylus, third-party, k8s packages):
 * resolves the manifest for linux/ARCH, fetches the config, and hands out layer openers that go through the local
 * blob cache, so the several passes the build makes over a layer download it once. Nothing is unpacked.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { selectPlatforms, loadGraph } from '../image/graph.js';
import { openSource, type OpenOptions } from '../transports/resolve-location.js';
import type { ImageSource, RawManifest } from '../image/types.js';
import type { RegistryReadOptions } from '../transports/registry/registry-image.js';
import { CanvosError } from '../errors.js';
import { BlobCache } from '../cache/blob-cache.js';
import type { LayerOpener } from '../layers/merge.js';
import {
  parseImageConfig,
  parseManifest,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
} from '../image/schemas.js';

/** An image resolved to one platform, ready to be read layer by layer. */
export interface OpenedImage {
  /** The location as given (`docker://…`, `oci:DIR:tag`, or a bare reference). */
  ref: string;
  source: ImageSource;
  /** The platform manifest (never an index), exact bytes. */
  manifest: RawManifest;
  parsedManifest: ImageManifest;
  /** The config blob's exact bytes and parsed form. */
  configBytes: Buffer;
  config: ImageConfig;
  layers: Descriptor[];
  /** One opener per layer (bottom first), reading through the blob cache. */
  openers: LayerOpener[];
}

/** Options of {@link openImage}. */
export interface OpenImageOptions extends OpenOptions {
  cache: BlobCache;
  signal?: AbortSignal | undefined;
  /**
   * A layer that is not cached yet is read while it downloads: its bytes go into the blob cache and to the reader
   * at once, instead of the reader waiting for the whole download. The source verifies digest and size at the end
   * of the stream (a mismatch errors the reader's stream, and the blob is not cached), and such a layer is always
   * checked against its diff_id, so the reader consumes the whole stream. For single-pass readers (an ISO or a
   * disk); a second pass that starts before the first ended downloads the layer again. Not used by the CLI:
   * on the ISO bench (a loopback registry) it saved no wall time (the squashfs, not the download, is the long
   * pole) and cost ~100 MiB of peak RSS and ~2 s of CPU (bench/README.md "ISO main thread"). Default: false.
   */
  streamLayers?: boolean | undefined;
}

/**
 * Read size of a cached layer blob: 1 MiB reads instead of the default 64 KiB: fewer read callbacks and stream chunks
 * (alone, reading and gunzipping the ISO bench's 250 MB layer took 0.2–0.3 s instead of 0.3–0.6 s of main-thread
 * CPU; bench/README.md "ISO, round 4").
 */
const LAYER_READ_BYTES = 1 << 20;

/** Read a blob through the cache (downloaded and verified on first use). @internal */
export async function cachedBlobPath(
  src: ImageSource,
  desc: Descriptor,
  cache: BlobCache,
  signal?: AbortSignal,
): Promise<string> {
  if (!(await cache.has(desc.digest, desc.size))) {
    await cache.put(await src.getBlob(desc, { signal }), desc.digest, {
      size: desc.size,
      signal,
      sourceVerified: true,
    });
  }
  return cache.path(desc.digest);
}

/**
 * The blob `desc` from the cache when it is there (a later pass), else from `src` while it is stored into the cache:
 * each chunk is written to the cache's input, then handed to the reader. The generator returns only after the cache
 * committed the blob, which it does only when the source's stream ended with the right digest and size; any error
 * (a mismatch, an abort, the reader stopping early) leaves nothing cached.
 */
async function streamLayer(
  src: ImageSource,
  desc: Descriptor,
  cache: BlobCache,
  signal?: AbortSignal,
): Promise<AsyncIterable<Buffer>> {
  if (await cache.has(desc.digest, desc.size))
    return createReadStream(cache.path(desc.digest), { highWaterMark: LAYER_READ_BYTES });
  // One stream: the reader (decompressing, compressing the squashfs) is slower than one loopback or LAN stream, and
  // ranged parts would only read ahead into memory.
  const read: RegistryReadOptions = { signal, widen: () => false };
  const body = await src.getBlob(desc, read);
  const toCache = new PassThrough();
  const stored = cache.put(toCache, desc.digest, { size: desc.size, signal, sourceVerified: true });
  // Settles with the cache's error (a full disk, an unwritable cache) so that the tee never waits for a 'drain' that a
  // failed cache write will not emit; undefined once the blob is committed.
  const failed = stored.then(
    () => undefined,
    (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
  );
  return (async function* tee(): AsyncGenerator<Buffer> {
    let done = false;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (!toCache.write(chunk)) {
          const e = await Promise.race([once(toCache, 'drain', { signal }).then(() => undefined), failed]);
          if (e !== undefined) throw e;
        }
        yield chunk;
      }
      toCache.end();
      await stored;
      done = true;
    } finally {
      if (!done) {
        toCache.destroy(new Error('the layer was not read to its end'));
        body.destroy();
      }
    }
  })();
}

/**
 * Open `ref` for `arch`. A multi-platform index is narrowed to linux/`arch` (ERR_PLATFORM_NOT_FOUND otherwise); a
 * single-platform image whose config names another architecture is refused with ERR_CONFIG.
 */
export async function openImage(ref: string, arch: string, opts: OpenImageOptions): Promise<OpenedImage> {
  const source = openSource(ref, opts);
  try {
    const root = await loadGraph(source, undefined, { signal: opts.signal });
    let node = root;
    try {
      node = selectPlatforms(root, [{ os: 'linux', architecture: arch }], source.description).root;
    } catch (e) {
      if (!CanvosError.is(e) || e.code !== 'ERR_PLATFORM_NOT_FOUND') throw e;
      throw new CanvosError(e.code, e.message, {
        hint: `set ARCH to an available platform, or use an image built for linux/${arch}`,
        cause: e,
      });
    }
    if (node.kind !== 'image')
      throw new CanvosError('ERR_MANIFEST_INVALID', `${source.description}: no image manifest for linux/${arch}`);
    // loadGraph validated it already; parsing again gives the typed document without a cast.
    const parsed = parseManifest(node.raw.bytes, node.raw.mediaType, `manifest of ${source.description}`);
    if (parsed.kind !== 'image')
      throw new CanvosError('ERR_MANIFEST_INVALID', `${source.description}: no image manifest for linux/${arch}`);
    const [configDesc, ...layers] = node.blobs;
    if (!configDesc) throw new CanvosError('ERR_MANIFEST_INVALID', `${source.description}: manifest has no config`);
    const configPath = await cachedBlobPath(source, configDesc, opts.cache, opts.signal);
    const configBytes = await readFile(configPath);
    const config = parseImageConfig(configBytes, `config of ${source.description}`);
    if (root.kind === 'image' && config.architecture && config.architecture !== arch) {
      throw new CanvosError(
        'ERR_CONFIG',
        `${source.description} is a linux/${config.architecture} image, but ARCH=${arch}`,
        {
          hint: `use a ${arch} (or multi-platform) image, or set ARCH=${config.architecture}`,
        },
      );
    }
    // One diff_id per layer, or the layers appended after them would be misnumbered (and the image is damaged).
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== layers.length) {
      throw new CanvosError(
        'ERR_LAYER_CORRUPT',
        `${source.description}: the config lists ${diffIds.length} diff_ids for ${layers.length} layers`,
        {
          hint: 'the image is damaged (its config does not match its manifest): rebuild or re-push it',
        },
      );
    }
    // Each opener carries its diff_id: mergeLayers hashes the uncompressed stream in the same pass and compares;
    // the verified pair is remembered, so a layer checked once (same compressed digest, same diff_id) is not again.
    const store = opts.registry?.blobLocations;
    const openers: LayerOpener[] = await Promise.all(
      layers.map(async (d, i) => {
        const diffId = diffIds[i];
        if (opts.streamLayers && !(await opts.cache.has(d.digest, d.size))) {
          const open = (): Promise<AsyncIterable<Buffer>> => streamLayer(source, d, opts.cache, opts.signal);
          const onDiffIdVerified = (): void => void (diffId && store?.recordDiffId(d.digest, diffId));
          return Object.assign(open, { digest: d.digest, diffId, onDiffIdVerified });
        }
        const open = async (): Promise<ReturnType<typeof createReadStream>> =>
          createReadStream(await cachedBlobPath(source, d, opts.cache, opts.signal), {
            highWaterMark: LAYER_READ_BYTES,
          });
        if (!store || !diffId) return Object.assign(open, { digest: d.digest, diffId });
        if ((await store.diffId(d.digest)) === diffId) return Object.assign(open, { digest: d.digest });
        const onDiffIdVerified = (): void => void store.recordDiffId(d.digest, diffId);
        return Object.assign(open, { digest: d.digest, diffId, onDiffIdVerified });
      }),
    );
    return {
      ref,
      source,
      manifest: node.raw,
      parsedManifest: parsed.value,
      configBytes,
      config,
      layers,
      openers,
    };
  } catch (e) {
    await source.close().catch(() => {});
    throw e;
  }
}
