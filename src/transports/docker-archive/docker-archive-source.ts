/**
 * `docker save` archives as an image source (`docker-archive:FILE[:name:tag]`). Reading indexes the tar once and
 * streams members as file ranges; the manifest is synthesised from `manifest.json` (Docker v2s2 when every layer is
 * gzip, else OCI with `tar`/`tar+zstd` layer types: layers are never recompressed, so a layer docker stored
 * uncompressed keeps its uncompressed digest, which differs from the registry original), unless the archive also is
 * an OCI layout holding the original manifest (docker >= 25, ours), whose exact bytes are then used.
 */
import { open } from 'node:fs/promises';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../../errors.js';
import type { ImageSource, RawManifest } from '../../image/types.js';
import { DigestCounter, digestHex, sha256, VerifyingStream, type Digest } from '../../image/digest.js';
import { isIndexMediaType, MediaType } from '../../image/media-types.js';
import { parseManifest, type Descriptor } from '../../image/schemas.js';
import { indexTar, openMember, readMember, resolveMember, type TarMember } from '../../tar/tar-index.js';

interface ManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** Options of {@link dockerArchiveSource}. */
export interface DockerArchiveSourceOptions {
  /** Image to read: a RepoTags name (`ubuntu:22.04`) or `@N` (N-th image). Default: the only image. */
  ref?: string | undefined;
}

/** Canonical form of a docker name for comparison (`ubuntu` → `docker.io/library/ubuntu:latest`). */
function canonicalName(s: string): string {
  const t = /:[\w][\w.-]*$/.test(s.slice(s.lastIndexOf('/') + 1)) ? s : `${s}:latest`;
  const slash = t.indexOf('/');
  const first = slash < 0 ? '' : t.slice(0, slash);
  const hasDomain = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasDomain) return t;
  return `docker.io/${slash < 0 ? `library/${t}` : t}`;
}

function compressionOf(head: Buffer): 'gzip' | 'zstd' | 'none' {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/**
 * Archives that are also OCI layouts (docker >= 25, regctl, ours) carry the original manifest: when one in
 * index.json (or one level below it) names exactly this config and these layers, use its bytes, so the image
 * keeps its digest through the archive.
 */
async function embeddedManifest(
  file: string,
  members: Map<string, TarMember>,
  config: Digest,
  layers: Digest[],
): Promise<RawManifest | undefined> {
  const idx = members.get('index.json');
  if (!idx) return undefined;
  const read = async (d: Descriptor): Promise<Buffer | undefined> => {
    const m = members.get(`blobs/sha256/${digestHex(d.digest)}`);
    if (!m || m.size > 4 * 1024 * 1024 || !d.digest.startsWith('sha256:')) return undefined;
    const b = await readMember(file, m);
    return sha256(b) === d.digest ? b : undefined;
  };
  try {
    const top = parseManifest(await readMember(file, idx, 4 * 1024 * 1024), MediaType.OciIndex);
    if (top.kind !== 'index') return undefined;
    const candidates: Descriptor[] = [];
    for (const d of top.value.manifests) {
      if (!isIndexMediaType(d.mediaType)) candidates.push(d);
      else {
        const b = await read(d);
        const child = b && parseManifest(b, d.mediaType);
        if (child && child.kind === 'index') candidates.push(...child.value.manifests);
      }
    }
    for (const d of candidates) {
      const b = await read(d);
      const m = b && parseManifest(b, d.mediaType);
      if (!b || !m || m.kind !== 'image' || m.value.config.digest !== config) continue;
      if (m.value.layers.length !== layers.length || m.value.layers.some((l, i) => l.digest !== layers[i])) continue;
      return { bytes: b, mediaType: m.value.mediaType ?? d.mediaType, digest: d.digest };
    }
  } catch {
    // A broken or foreign index.json is not an error here: manifest.json is the authority.
  }
  return undefined;
}

/** Index the archive and read its `manifest.json` (ERR_LAYOUT when either is unreadable). */
async function readArchiveIndex(
  file: string,
  what: string,
): Promise<{ members: Map<string, TarMember>; entries: ManifestEntry[] }> {
  let members: Map<string, TarMember>;
  try {
    members = await indexTar(file);
  } catch (e) {
    if (CanvosError.is(e)) throw e;
    throw new CanvosError('ERR_LAYOUT', `cannot read ${what}: ${(e as Error).message}`, {
      cause: e,
      hint: 'give the path of a tar written by docker save',
    });
  }
  const mf = members.get('manifest.json');
  if (!mf)
    throw new CanvosError('ERR_LAYOUT', `${what} has no manifest.json`, {
      hint: 'give the path of a tar written by docker save',
    });
  return { members, entries: await readManifestJson(file, what, mf) };
}

/** `manifest.json` of a docker-archive: a regular member holding a JSON array, else corrupt content (exit 7). */
async function readManifestJson(file: string, what: string, mf: TarMember): Promise<ManifestEntry[]> {
  const hint = 'the archive is corrupt or not written by docker save: write it again';
  // A link (to /etc/passwd, or anything) is not what docker save writes: corrupt content, never followed.
  if (mf.type !== '0' && mf.type !== '7')
    throw new CanvosError('ERR_LAYER_CORRUPT', `${what}: manifest.json is not a regular file (tar type ${mf.type})`, {
      hint,
    });
  try {
    const entries = JSON.parse((await readMember(file, mf, 4 * 1024 * 1024)).toString('utf8')) as unknown;
    if (!Array.isArray(entries)) throw new Error('not an array');
    return entries as ManifestEntry[];
  } catch (e) {
    if (CanvosError.is(e)) throw e;
    throw new CanvosError(
      'ERR_LAYER_CORRUPT',
      `${what}: manifest.json is invalid (${(e as Error).message.slice(0, 80)})`,
      {
        hint,
      },
    );
  }
}

/** The `manifest.json` entry `ref` names (a RepoTags name or `@N`); without `ref`, the only one. */
function pickEntry(entries: ManifestEntry[], ref: string | undefined, what: string): ManifestEntry {
  const names = entries.map((e, i) => e.RepoTags?.join(',') || `@${i}`);
  let entry: ManifestEntry | undefined;
  if (ref === undefined) {
    if (entries.length !== 1)
      throw new CanvosError('ERR_LAYOUT', `${what} holds ${entries.length} images; name one (${names.join(', ')})`, {
        hint: `write ${what}:<name:tag> or ${what}:@<index>`,
      });
    entry = entries[0];
  } else if (/^@\d+$/.test(ref)) {
    entry = entries[Number(ref.slice(1))];
  } else {
    const want = canonicalName(ref);
    entry = entries.find((e) => (e.RepoTags ?? []).some((t) => canonicalName(t) === want));
  }
  if (!entry)
    throw new CanvosError('ERR_MANIFEST_UNKNOWN', `${what} has no image ${JSON.stringify(ref)}`, {
      hint: `available: ${names.join(', ')}`,
    });
  return entry;
}

type Compression = 'gzip' | 'zstd' | 'none';

/** A layer member's digest (from its `blobs/sha256/<hex>` name, else by hashing it once) and compression. */
async function describeLayer(file: string, m: TarMember): Promise<{ digest: Digest; size: number; comp: Compression }> {
  const head = Buffer.alloc(4);
  const fh = await open(file, 'r');
  try {
    await fh.read(head, 0, Math.min(4, m.size), m.offset);
  } finally {
    await fh.close();
  }
  const named = /(?:^|\/)blobs\/sha256\/([a-f0-9]{64})$/.exec(m.name)?.[1];
  let digest: Digest;
  if (named !== undefined) digest = `sha256:${named}`;
  else {
    // Legacy `<id>/layer.tar` names say nothing about the content: hash it once.
    const c = new DigestCounter();
    await pipeline(
      openMember(file, m),
      c.transform(),
      new Writable({
        write: (_c, _e, cb) => {
          cb();
        },
      }),
    );
    digest = c.result().digest;
  }
  return { digest, size: m.size, comp: compressionOf(head) };
}

/**
 * The manifest of an archive image without an embedded original: Docker v2s2 when every layer is gzip, else OCI
 * with each layer's own type (layers are never recompressed).
 */
function synthesizeManifest(
  cfgBytes: Buffer,
  cfgDigest: Digest,
  layers: ReadonlyArray<{ digest: Digest; size: number; comp: Compression }>,
): RawManifest {
  const docker = layers.every((l) => l.comp === 'gzip');
  const layerType = (c: Compression): string =>
    docker
      ? MediaType.DockerLayerGzip
      : c === 'gzip'
        ? MediaType.OciLayerGzip
        : c === 'zstd'
          ? MediaType.OciLayerZstd
          : MediaType.OciLayerTar;
  const mediaType = docker ? MediaType.DockerManifest : MediaType.OciManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: {
      mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig,
      size: cfgBytes.length,
      digest: cfgDigest,
    },
    layers: layers.map((l) => ({ mediaType: layerType(l.comp), size: l.size, digest: l.digest })),
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 3));
  return { bytes, mediaType, digest: sha256(bytes) };
}

/** Read the image `ref` names from the archive: its manifest, and every blob's member recorded in `blobs`. */
async function loadArchiveImage(
  file: string,
  ref: string | undefined,
  what: string,
  blobs: Map<string, TarMember>,
): Promise<RawManifest> {
  const { members, entries } = await readArchiveIndex(file, what);
  const entry = pickEntry(entries, ref, what);
  const cfgMember = resolveMember(members, entry.Config, what);
  const cfgBytes = await readMember(file, cfgMember);
  const cfgDigest = sha256(cfgBytes);
  blobs.set(cfgDigest, cfgMember);
  const layers: Array<{ digest: Digest; size: number; comp: Compression }> = [];
  for (const path of entry.Layers) {
    const m = resolveMember(members, path, what);
    const layer = await describeLayer(file, m);
    blobs.set(layer.digest, m);
    layers.push(layer);
  }
  const embedded = await embeddedManifest(
    file,
    members,
    cfgDigest,
    layers.map((l) => l.digest),
  );
  return embedded ?? synthesizeManifest(cfgBytes, cfgDigest, layers);
}

/** An ImageSource reading one image of a `docker save` archive (`docker-archive:FILE[:name:tag]`). */
export function dockerArchiveSource(file: string, opts: DockerArchiveSourceOptions = {}): ImageSource {
  const what = `docker-archive:${file}`;
  const blobs = new Map<string, TarMember>();
  let state: Promise<RawManifest> | undefined;
  const load = (): Promise<RawManifest> => (state ??= loadArchiveImage(file, opts.ref, what, blobs));
  return {
    description: `${what}${opts.ref !== undefined ? `:${opts.ref}` : ''}`,
    async getManifest(digest?: Digest): Promise<RawManifest> {
      const m = await load();
      if (digest !== undefined && digest !== m.digest)
        throw new CanvosError('ERR_MANIFEST_UNKNOWN', `${what} has no manifest ${digest}`);
      return m;
    },
    async getBlob(desc: Descriptor): Promise<Readable> {
      await load();
      const m = blobs.get(desc.digest);
      if (!m) throw new CanvosError('ERR_BLOB_UNKNOWN', `${what} has no blob ${desc.digest}`);
      const v = new VerifyingStream(desc.digest, { size: desc.size, what: `blob ${desc.digest} in ${what}` });
      const rs = openMember(file, m);
      rs.on('error', (e) => v.destroy(e));
      return rs.pipe(v);
    },
    async close(): Promise<void> {},
  };
}
