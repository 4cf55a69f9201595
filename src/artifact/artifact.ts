/**
 * Files as an OCI artifact (issue #17, CanvOS#255): one image manifest with `artifactType`, the empty config
 * (`application/vnd.oci.empty.v1+json`, `{}`), one layer per file named by `org.opencontainers.image.title`, and
 * the ISO's `.sha256` line as a manifest annotation. Pushed to any destination (registry, OCI layout); `copy` and
 * `mirror` carry it like any image manifest (config + layers, bytes unchanged). Pulling writes each file back
 * byte-identical: the layer stream is verified against its digest, written to a temp name, then renamed.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../errors.js';
import { openDestination, openSource, type OpenOptions } from '../transports/resolve-location.js';
import type { ProgressFn } from '../image/types.js';
import { sha256, sha256File, type Digest } from '../image/digest.js';
import { parseManifest, type Descriptor } from '../image/schemas.js';

/** artifactType of an installer ISO pushed by canvos-lite. */
export const ISO_ARTIFACT_TYPE = 'application/vnd.canvos-lite.installer-iso.v1';
/** Manifest annotation holding the `.sha256` file's line (`<hex>  <name>.iso`). */
export const SHA256SUM_ANNOTATION = 'dev.canvos-lite.sha256sum';
const TITLE = 'org.opencontainers.image.title';
const EMPTY_CONFIG = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 } as const;
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

/** Options of {@link pushArtifact}. */
export interface PushArtifactOptions extends OpenOptions {
  /** Default: {@link ISO_ARTIFACT_TYPE}. */
  artifactType?: string | undefined;
  /** A sha256sum-format file whose line becomes the {@link SHA256SUM_ANNOTATION} annotation. Default: none. */
  sha256File?: string | undefined;
  /** Manifest `org.opencontainers.image.created`, from this epoch. Default: none (reproducible digest). */
  sourceDateEpoch?: number | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ProgressFn | undefined;
}

/** Media type of a pushed file, from its name. */
export function fileMediaType(name: string): string {
  if (name.endsWith('.iso')) return 'application/vnd.efi.iso';
  if (name.endsWith('.raw') || name.endsWith('.img')) return 'application/vnd.efi.img';
  return 'application/octet-stream';
}

/** Pushes `files` as one artifact to `dest` (docker://…, oci:DIR:TAG, …); returns the manifest digest. */
export async function pushArtifact(
  files: readonly string[],
  dest: string,
  opts: PushArtifactOptions = {},
): Promise<{ digest: Digest; size: number; manifest: Buffer }> {
  const { signal } = opts;
  const layers: Descriptor[] = [];
  const names = new Set<string>();
  for (const f of files) {
    const name = basename(f);
    if (names.has(name))
      throw new CanvosError('ERR_USAGE', `two files named ${name} in one artifact`, { hint: 'rename one of them' });
    names.add(name);
    const { digest, size } = await sha256File(f, signal);
    layers.push({ mediaType: fileMediaType(name), digest, size, annotations: { [TITLE]: name } });
  }
  const annotations: Record<string, string> = {};
  if (opts.sha256File) {
    const line = (await readFile(opts.sha256File, 'utf8')).trimEnd();
    const hex = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    const layer = layers.find((l) => l.annotations?.[TITLE] === hex?.[2]);
    if (!hex || !layer || layer.digest !== `sha256:${hex[1]}`) {
      throw new CanvosError(
        'ERR_DIGEST_MISMATCH',
        `${opts.sha256File} does not match ${hex?.[2] ?? 'any pushed file'}`,
        { hint: 'rebuild the ISO; the .sha256 is stale' },
      );
    }
    annotations[SHA256SUM_ANNOTATION] = line;
  }
  if (opts.sourceDateEpoch)
    annotations['org.opencontainers.image.created'] = new Date(opts.sourceDateEpoch * 1000)
      .toISOString()
      .replace('.000Z', 'Z');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      artifactType: opts.artifactType ?? ISO_ARTIFACT_TYPE,
      config: EMPTY_CONFIG,
      layers,
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    }),
  );
  const digest = sha256(manifest);
  const dst = openDestination(dest, opts);
  try {
    await dst.putBlob({ ...EMPTY_CONFIG }, () => Promise.resolve(Readable.from([Buffer.from('{}')])), { signal });
    for (const [i, l] of layers.entries()) {
      const file = files[i] ?? '';
      await dst.putBlob(l, () => Promise.resolve(createReadStream(file)), { signal, onProgress: opts.onProgress });
    }
    await dst.putManifest({ bytes: manifest, mediaType: MANIFEST_TYPE, digest }, dst.tag, { signal });
    await dst.commit({ signal });
  } finally {
    await dst.close();
  }
  return { digest, size: manifest.length, manifest };
}

/** Options of {@link pullArtifact}. */
export interface PullArtifactOptions extends OpenOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ProgressFn | undefined;
}

/** Result of {@link pullArtifact}. */
export interface PullArtifactResult {
  digest: Digest;
  artifactType: string | undefined;
  /** Paths written, in layer order (plus the `.sha256` file when the artifact carries one). */
  files: string[];
}

/** Writes the files of the artifact at `src` into `dir` (created); existing files of the same name are replaced. */
export async function pullArtifact(
  src: string,
  dir: string,
  opts: PullArtifactOptions = {},
): Promise<PullArtifactResult> {
  const { signal } = opts;
  const source = openSource(src, opts);
  const outDir = resolve(dir);
  const files: string[] = [];
  try {
    const raw = await source.getManifest(undefined, { signal });
    const parsed = parseManifest(raw.bytes, raw.mediaType, `manifest of ${source.description}`);
    if (parsed.kind !== 'image') {
      throw new CanvosError('ERR_MANIFEST_INVALID', `${source.description} is an index, not an artifact manifest`, {
        hint: 'name the artifact itself (a tag or digest of its manifest)',
      });
    }
    const m = parsed.value;
    await mkdir(outDir, { recursive: true });
    const seen = new Set<string>();
    for (const l of m.layers) {
      const name = l.annotations?.[TITLE];
      if (!name || name === '.' || name === '..' || name.includes('/') || name.includes('\\') || seen.has(name)) {
        throw new CanvosError(
          'ERR_MANIFEST_INVALID',
          `${source.description}: layer ${l.digest} has no usable ${TITLE} annotation (${JSON.stringify(name ?? null)})`,
          {
            hint: 'only artifacts with one named file per layer (canvos-lite iso --push, oras push) can be pulled',
          },
        );
      }
      seen.add(name);
      const dest = join(outDir, name);
      const tmp = join(outDir, `.${name}.partial-${process.pid}`);
      try {
        // getBlob verifies digest and size and errors at the end on a mismatch: the rename happens only after that.
        await pipeline(await source.getBlob(l, { signal, onProgress: opts.onProgress }), createWriteStream(tmp), {
          signal,
        });
        if ((await stat(tmp)).size !== l.size)
          throw new CanvosError('ERR_SIZE_MISMATCH', `${name}: size differs from the manifest`);
        await rename(tmp, dest);
      } finally {
        await rm(tmp, { force: true });
      }
      files.push(dest);
    }
    const sum = m.annotations?.[SHA256SUM_ANNOTATION];
    if (sum) {
      const hex = /^([0-9a-f]{64}) [ *](.+)$/.exec(sum);
      const layer = m.layers.find((l) => l.annotations?.[TITLE] === hex?.[2]);
      if (!hex?.[2] || !layer || layer.digest !== `sha256:${hex[1]}`) {
        throw new CanvosError(
          'ERR_DIGEST_MISMATCH',
          `${source.description}: the ${SHA256SUM_ANNOTATION} annotation does not match its file`,
        );
      }
      const dest = join(outDir, `${hex[2]}.sha256`);
      const tmp = `${dest}.partial-${process.pid}`;
      await writeFile(tmp, `${sum}\n`);
      await rename(tmp, dest);
      files.push(dest);
    }
    return { digest: raw.digest, artifactType: m.artifactType, files };
  } finally {
    await source.close();
  }
}
