/**
 * `docker save` archives as copy transports. Reading indexes the tar once and streams members as file ranges; the
 * manifest is synthesised from `manifest.json` (Docker v2s2 when every layer is gzip, else OCI with `tar`/`tar+zstd`
 * layer types: layers are never recompressed, so a layer docker stored uncompressed keeps its uncompressed digest,
 * which differs from the registry original), unless the archive also is an OCI layout holding the original manifest
 * (docker >= 25, ours), whose exact bytes are then used. Writing spools blobs and builds the tar (also an OCI layout)
 * at commit.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../errors.js';
import { encodeHeader, END_OF_ARCHIVE, padding } from '../tar/header.js';
import type { ImageDestination, ImageSource, PutBlobResult, RawManifest } from '../copy/types.js';
import { blobFile, blobSize, storeBlob } from './cache.js';
import { DigestCounter, digestHex, sha256, VerifyingStream, type Digest } from './digest.js';
import { isIndexMediaType, MediaType } from './media-types.js';
import { parseManifest, type Descriptor } from './schemas.js';
import { indexTar, openMember, readMember, resolveMember, type TarMember } from './tar-index.js';
import { mkdirs } from '../fs-util.js';
import { tempPathFor } from '../util/atomic-file.js';
import { withPath } from '../error-map.js';

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

/** An ImageSource reading one image of a `docker save` archive (`docker-archive:FILE[:name:tag]`). */
export function dockerArchiveSource(file: string, opts: DockerArchiveSourceOptions = {}): ImageSource {
  const what = `docker-archive:${file}`;
  const blobs = new Map<string, TarMember>();
  let state: Promise<RawManifest> | undefined;

  const load = async (): Promise<RawManifest> => {
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
    let entries: ManifestEntry[];
    try {
      entries = JSON.parse((await readMember(file, mf)).toString('utf8')) as ManifestEntry[];
      if (!Array.isArray(entries)) throw new Error('not an array');
    } catch (e) {
      throw new CanvosError('ERR_LAYOUT', `${what}: manifest.json is invalid (${(e as Error).message})`);
    }
    const names = entries.map((e, i) => e.RepoTags?.join(',') || `@${i}`);
    let entry: ManifestEntry | undefined;
    if (opts.ref === undefined) {
      if (entries.length !== 1)
        throw new CanvosError('ERR_LAYOUT', `${what} holds ${entries.length} images; name one (${names.join(', ')})`, {
          hint: `write ${what}:<name:tag> or ${what}:@<index>`,
        });
      entry = entries[0];
    } else if (/^@\d+$/.test(opts.ref)) {
      entry = entries[Number(opts.ref.slice(1))];
    } else {
      const want = canonicalName(opts.ref);
      entry = entries.find((e) => (e.RepoTags ?? []).some((t) => canonicalName(t) === want));
    }
    if (!entry)
      throw new CanvosError('ERR_MANIFEST_UNKNOWN', `${what} has no image ${JSON.stringify(opts.ref)}`, {
        hint: `available: ${names.join(', ')}`,
      });

    const cfgMember = resolveMember(members, entry.Config, what);
    const cfgBytes = await readMember(file, cfgMember);
    const cfgDigest = sha256(cfgBytes);
    blobs.set(cfgDigest, cfgMember);
    const layers: Array<{ digest: Digest; size: number; comp: 'gzip' | 'zstd' | 'none' }> = [];
    for (const path of entry.Layers) {
      const m = resolveMember(members, path, what);
      const head = Buffer.alloc(4);
      const fh = await open(file, 'r');
      try {
        await fh.read(head, 0, Math.min(4, m.size), m.offset);
      } finally {
        await fh.close();
      }
      const named = /(?:^|\/)blobs\/sha256\/([a-f0-9]{64})$/.exec(m.name);
      let digest: Digest;
      if (named) digest = `sha256:${named[1]!}`;
      else {
        // Legacy `<id>/layer.tar` names say nothing about the content: hash it once.
        const c = new DigestCounter();
        await pipeline(openMember(file, m), c.transform(), new Writable({ write: (_c, _e, cb) => cb() }));
        digest = c.result().digest;
      }
      blobs.set(digest, m);
      layers.push({ digest, size: m.size, comp: compressionOf(head) });
    }
    const embedded = await embeddedManifest(
      file,
      members,
      cfgDigest,
      layers.map((l) => l.digest),
    );
    if (embedded) return embedded;
    const docker = layers.every((l) => l.comp === 'gzip');
    const layerType = (c: 'gzip' | 'zstd' | 'none'): string =>
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
  };

  return {
    description: `${what}${opts.ref !== undefined ? `:${opts.ref}` : ''}`,
    async getManifest(digest?: Digest): Promise<RawManifest> {
      const m = await (state ??= load());
      if (digest !== undefined && digest !== m.digest)
        throw new CanvosError('ERR_MANIFEST_UNKNOWN', `${what} has no manifest ${digest}`);
      return m;
    },
    async getBlob(desc: Descriptor): Promise<Readable> {
      await (state ??= load());
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

/** Options of {@link dockerArchiveDestination}. */
export interface DockerArchiveDestinationOptions {
  /** Name recorded in RepoTags (`docker load` tags the image with it), e.g. `example.com/app:1.0`. Default: none. */
  ref?: string | undefined;
}

/**
 * An ImageDestination writing a single-image `docker save` archive that `docker load` accepts (blobs stored as
 * they are, compressed layers included). The tar is also an OCI image layout (oci-layout, index.json). Blobs are
 * spooled next to FILE and the archive appears atomically (temp + rename) in commit().
 */
export function dockerArchiveDestination(file: string, opts: DockerArchiveDestinationOptions = {}): ImageDestination {
  const what = `docker-archive:${file}`;
  const spool = join(dirname(file), `.${randomBytes(6).toString('hex')}.canvos-spool`);
  const blobRoot = join(spool, 'blobs');
  let image: RawManifest | undefined;
  const cleanup = (): Promise<void> => rm(spool, { recursive: true, force: true });
  return {
    description: `${what}${opts.ref ? `:${opts.ref}` : ''}`,
    singleImage: true,
    async hasBlob(desc: Descriptor): Promise<boolean> {
      return (await blobSize(blobRoot, desc.digest)) === desc.size;
    },
    async putBlob(desc, openBlob, o = {}): Promise<PutBlobResult> {
      if ((await blobSize(blobRoot, desc.digest)) === desc.size) return 'exists';
      await storeBlob(blobRoot, await openBlob(), {
        digest: desc.digest,
        size: desc.size,
        signal: o.signal,
        sourceVerified: o.sourceVerified === true,
      });
      return 'uploaded';
    },
    async hasManifest(): Promise<boolean> {
      return false;
    },
    async putManifest(m: RawManifest): Promise<void> {
      const parsed = parseManifest(m.bytes, m.mediaType, `manifest ${m.digest}`);
      if (parsed.kind === 'index' || isIndexMediaType(m.mediaType)) {
        throw new CanvosError('ERR_USAGE', `${what} holds a single image, not an index`, {
          hint: 'select one platform with --platform',
        });
      }
      image = m;
    },
    async commit(o = {}): Promise<void> {
      if (!image) throw new CanvosError('ERR_INTERNAL', `${what}: commit without a manifest`);
      const parsed = parseManifest(image.bytes, image.mediaType);
      if (parsed.kind !== 'image') throw new CanvosError('ERR_INTERNAL', `${what}: not an image manifest`);
      const { config, layers } = parsed.value;
      const p = (d: Digest): string => `blobs/sha256/${digestHex(d)}`;
      const entries: Array<{ name: string; size: number; from: string | Buffer }> = [];
      const seen = new Set<string>();
      for (const d of [config, ...layers]) {
        if (d.urls?.length && (await blobSize(blobRoot, d.digest)) === undefined) continue;
        if (!seen.has(d.digest)) entries.push({ name: p(d.digest), size: d.size, from: blobFile(blobRoot, d.digest) });
        seen.add(d.digest);
      }
      entries.push({ name: p(image.digest), size: image.bytes.length, from: image.bytes });
      const manifestJson = [
        {
          Config: p(config.digest),
          RepoTags: opts.ref ? [opts.ref] : null,
          Layers: layers.filter((l) => seen.has(l.digest)).map((l) => p(l.digest)),
        },
      ];
      const index = {
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [
          {
            mediaType: image.mediaType,
            digest: image.digest,
            size: image.bytes.length,
            ...(opts.ref
              ? {
                  annotations: {
                    'io.containerd.image.name': opts.ref,
                    'org.opencontainers.image.ref.name': opts.ref.slice(opts.ref.lastIndexOf(':') + 1),
                  },
                }
              : {}),
          },
        ],
      };
      for (const [name, json] of [
        ['manifest.json', manifestJson],
        ['index.json', index],
        ['oci-layout', { imageLayoutVersion: '1.0.0' }],
      ] as const) {
        const b = Buffer.from(JSON.stringify(json));
        entries.push({ name, size: b.length, from: b });
      }
      const tmp = tempPathFor(file);
      async function* tarStream(): AsyncGenerator<Buffer> {
        yield encodeHeader({ path: 'blobs', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });
        yield encodeHeader({ path: 'blobs/sha256', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });
        for (const e of entries) {
          yield encodeHeader({ path: e.name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: e.size });
          if (typeof e.from === 'string') for await (const c of createReadStream(e.from)) yield c as Buffer;
          else yield e.from;
          yield Buffer.alloc(padding(e.size));
        }
        yield END_OF_ARCHIVE;
      }
      try {
        await mkdirs(dirname(file));
        await pipeline(Readable.from(tarStream()), createWriteStream(tmp), o.signal ? { signal: o.signal } : {});
        await rename(tmp, file);
      } catch (e) {
        await rm(tmp, { force: true });
        throw withPath(e, tmp);
      }
      await cleanup();
    },
    close: cleanup,
  };
}
