/**
 * The Repository API of the OCI distribution client: manifests (GET/HEAD/PUT with digest checks and a 4 MiB
 * limit), blobs (HEAD, verified resumable GET, download to file, upload with mount), tag listing with `Link`
 * paging, and the referrers API with the `sha256-<hex>` tag-schema fallback.
 */
import type { Readable } from 'node:stream';
import { CanvosError } from '../errors.js';
import { isDigest, sha256, verifyBuffer, type Digest } from '../image/digest.js';
import { MANIFEST_ACCEPT, MediaType } from '../image/media-types.js';
import { imageIndexSchema, type Descriptor, type ImageIndex } from '../image/schemas.js';
import type { OpOptions, RawManifest } from '../image/types.js';
import { repoScope } from './auth.js';
import {
  fetchBlobToFile,
  headBlob,
  openBlob,
  type BlobLocation,
  type BlobReadOptions,
  type FetchToFileOptions,
} from './blobs.js';
import { header, httpError, readBody, RegistryHttp, type RegistryHttpOptions } from './http.js';
import { normalizeRegistry, parseReference, type Reference } from './reference.js';
import { holdsBlob, uploadBlob, type UploadOptions } from './upload.js';

/** Largest manifest accepted (the limit containerd and oras use). */
export const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;

/** Options for a Repository. */
export interface RegistryRepositoryOptions extends RegistryHttpOptions {
  /** Share one transport (connections, tokens, concurrency) between repositories of the same registry. Default: own one. */
  http?: RegistryHttp | undefined;
  /** Ask for push access on every request (one token for a destination). Default: false. */
  push?: boolean | undefined;
  /** Upload strategy. Default: `auto` (monolithic, chunked when refused). */
  uploadMode?: UploadOptions['uploadMode'];
  /** Chunk size for chunked uploads. Default: 8 MiB. */
  chunkSize?: number | undefined;
}

/** Options of {@link RegistryRepository.pushBlob}. */
export interface PushBlobOptions extends Omit<UploadOptions, 'checkAfterMount'> {
  /** Check first whether the repository holds the blob, and if so do nothing (`exists`). Default: true. */
  skipExisting?: boolean | undefined;
  /**
   * With `skipExisting` and `mountFrom`: try the mounts before that check, which then runs only when no mount
   * succeeds (one request instead of two when a mount works: a 201 proves the blob is there). For a blob more likely
   * mountable than already present. Default: false (HEAD first).
   */
  mountFirst?: boolean | undefined;
}

/** What a manifest HEAD tells. */
export interface ManifestInfo {
  digest: Digest;
  mediaType: string;
  size: number;
}

function mediaTypeOf(contentType: string | undefined, bytes: Buffer | undefined): string {
  const ct = contentType?.split(';')[0]?.trim();
  if (ct && ct !== 'application/json' && ct !== 'text/plain' && ct !== 'application/octet-stream') return ct;
  if (bytes) {
    try {
      const j = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown; layers?: unknown };
      if (typeof j.mediaType === 'string') return j.mediaType;
      if (Array.isArray(j.manifests)) return MediaType.OciIndex;
      if (Array.isArray(j.layers)) return MediaType.OciManifest;
    } catch {
      // Not JSON: reported by whoever parses it.
    }
  }
  return ct ?? 'application/octet-stream';
}

/** One repository on a registry. */
export class RegistryRepository {
  readonly registry: string;
  readonly repository: string;
  readonly http: RegistryHttp;
  private readonly opts: RegistryRepositoryOptions;
  private readonly ownHttp: boolean;

  /** `name` is `registry/repository` or any reference (tag/digest ignored). */
  static open(name: string | Reference, opts: RegistryRepositoryOptions = {}): RegistryRepository {
    const ref = typeof name === 'string' ? parseReference(name) : name;
    return new RegistryRepository(ref.registry, ref.repository, opts);
  }

  constructor(registry: string, repository: string, opts: RegistryRepositoryOptions = {}) {
    this.registry = normalizeRegistry(registry);
    this.repository = repository;
    this.opts = opts;
    this.ownHttp = opts.http === undefined;
    this.http = opts.http ?? new RegistryHttp(registry, opts);
  }

  private loc(push = false): BlobLocation {
    return {
      http: this.http,
      repository: this.repository,
      scopes: [repoScope(this.repository, push || this.opts.push ? 'pull,push' : 'pull')],
    };
  }
  private manifestPath(ref: string): string {
    return `/v2/${this.repository}/manifests/${ref}`;
  }
  private where(ref: string): string {
    return `${this.registry}/${this.repository}${isDigest(ref) ? '@' : ':'}${ref}`;
  }

  /** HEAD a manifest by tag or digest; undefined when it does not exist. */
  async headManifest(ref: string, opts: OpOptions = {}): Promise<ManifestInfo | undefined> {
    const res = await this.http.send({
      method: 'HEAD',
      path: this.manifestPath(ref),
      scopes: this.loc().scopes,
      headers: { accept: MANIFEST_ACCEPT },
      signal: opts.signal,
    });
    res.body.resume();
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await httpError(res, 'HEAD');
    const d = header(res, 'docker-content-digest');
    if (!isDigest(d)) {
      // Without the header HEAD is useless for comparing: fall back to GET.
      const m = await this.getManifest(ref, opts);
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
    }
    return {
      digest: d,
      mediaType: mediaTypeOf(header(res, 'content-type'), undefined),
      size: Number(header(res, 'content-length') ?? -1),
    };
  }

  /** GET a manifest by tag or digest as exact bytes; verified against the digest (or Docker-Content-Digest for tags). */
  async getManifest(ref: string, opts: OpOptions = {}): Promise<RawManifest> {
    const res = await this.http.send({
      method: 'GET',
      path: this.manifestPath(ref),
      scopes: this.loc().scopes,
      headers: { accept: MANIFEST_ACCEPT },
      signal: opts.signal,
    });
    if (res.status === 404) {
      res.body.resume();
      throw new CanvosError('ERR_MANIFEST_UNKNOWN', `manifest ${this.where(ref)} not found`, {
        hint: 'check the repository name and tag, and log in if the registry hides private repositories from anonymous users',
      });
    }
    if (res.status !== 200) throw await httpError(res, 'GET');
    const bytes = await readBody(res, MANIFEST_MAX_BYTES, `manifest ${this.where(ref)}`);
    let digest: Digest;
    if (isDigest(ref)) {
      verifyBuffer(bytes, ref, `manifest ${this.where(ref)}`);
      digest = ref;
    } else {
      digest = sha256(bytes);
      const claimed = header(res, 'docker-content-digest');
      if (isDigest(claimed) && claimed.startsWith('sha256:') && claimed !== digest) {
        throw new CanvosError(
          'ERR_DIGEST_MISMATCH',
          `manifest ${this.where(ref)}: registry says ${claimed} but the bytes hash to ${digest}`,
          { hint: 'a proxy may be rewriting responses' },
        );
      }
    }
    return { bytes, digest, mediaType: mediaTypeOf(header(res, 'content-type'), bytes) };
  }

  /** PUT a manifest (Content-Type = its media type) by digest or tag. Returns its digest. */
  async putManifest(m: { bytes: Buffer; mediaType: string }, ref?: string, opts: OpOptions = {}): Promise<Digest> {
    const digest = sha256(m.bytes);
    const target = ref ?? digest;
    const res = await this.http.send({
      method: 'PUT',
      path: this.manifestPath(target),
      scopes: this.loc(true).scopes,
      headers: { 'content-type': m.mediaType, 'content-length': String(m.bytes.length) },
      body: m.bytes,
      signal: opts.signal,
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) {
      throw await httpError(
        res,
        'PUT',
        res.status === 400
          ? `the registry rejected the manifest (media type ${m.mediaType}); some registries accept only Docker or only OCI types`
          : undefined,
      );
    }
    res.body.resume();
    const got = header(res, 'docker-content-digest');
    if (isDigest(got) && got.startsWith('sha256:') && got !== digest) {
      throw new CanvosError(
        'ERR_DIGEST_MISMATCH',
        `PUT manifest ${this.where(target)}: registry stored ${got}, expected ${digest}`,
        { hint: 'the registry rewrote the manifest' },
      );
    }
    return digest;
  }

  /** HEAD a blob: its size, or undefined when absent. */
  headBlob(digest: Digest, opts: OpOptions = {}): Promise<{ size: number } | undefined> {
    return headBlob(this.loc(), digest, opts);
  }

  /** Stream a blob, verified against desc (errors at end on mismatch), resuming broken connections with Range. */
  getBlob(desc: Descriptor, opts: BlobReadOptions = {}): Promise<Readable> {
    return openBlob(this.loc(), desc, opts);
  }

  /** Download a blob to `path` atomically (via `<path>.partial`, resumable). */
  fetchBlobToFile(desc: Descriptor, path: string, opts: FetchToFileOptions = {}): Promise<void> {
    return fetchBlobToFile(this.loc(), desc, path, opts);
  }

  /**
   * Upload a blob unless present: HEAD, then mount from `mountFrom` (same registry), then upload; with `mountFirst`
   * the mounts come before the HEAD. `open` may be called more than once (retries).
   */
  async pushBlob(
    desc: Descriptor,
    open: () => Promise<Readable>,
    opts: PushBlobOptions = {},
  ): Promise<'exists' | 'mounted' | 'uploaded'> {
    const loc = this.loc(true);
    const check = opts.skipExisting !== false;
    const mountFirst = check && opts.mountFirst === true && (opts.mountFrom?.length ?? 0) > 0;
    if (check && !mountFirst && (await holdsBlob(loc, desc, opts))) return 'exists';
    return uploadBlob(loc, desc, open, {
      uploadMode: this.opts.uploadMode,
      chunkSize: this.opts.chunkSize,
      ...opts,
      checkAfterMount: mountFirst,
    });
  }

  /** All tags, following `Link` pages (`n` per page). */
  async listTags(opts: OpOptions & { pageSize?: number } = {}): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = `/v2/${this.repository}/tags/list${opts.pageSize ? `?n=${opts.pageSize}` : ''}`;
    for (let page = 0; path && page < 10_000; page++) {
      const res = await this.http.send({ method: 'GET', path, scopes: this.loc().scopes, signal: opts.signal });
      if (res.status === 404) {
        res.body.resume();
        throw new CanvosError('ERR_MANIFEST_UNKNOWN', `repository ${this.registry}/${this.repository} not found`, {
          hint: 'check the repository name',
        });
      }
      if (res.status !== 200) throw await httpError(res, 'GET');
      const body = JSON.parse((await readBody(res, 16 * 1024 * 1024, 'tag list')).toString('utf8')) as {
        tags?: string[] | null;
      };
      tags.push(...(body.tags ?? []));
      path = nextLink(header(res, 'link'), res.url);
    }
    return tags;
  }

  /**
   * Referrers of a manifest (OCI 1.1), as an index. Registries without the API (404) fall back to the
   * `sha256-<hex>` tag schema; no referrers gives an empty index.
   */
  async referrers(digest: Digest, opts: OpOptions & { artifactType?: string } = {}): Promise<ImageIndex> {
    const q = opts.artifactType ? `?artifactType=${encodeURIComponent(opts.artifactType)}` : '';
    const manifests: Descriptor[] = [];
    let path: string | undefined = `/v2/${this.repository}/referrers/${digest}${q}`;
    const res0 = await this.http.send({
      method: 'GET',
      path,
      scopes: this.loc().scopes,
      headers: { accept: MediaType.OciIndex },
      signal: opts.signal,
    });
    if (res0.status === 404) {
      res0.body.resume();
      const tag = digest.replace(':', '-');
      let idx: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
      if (await this.headManifest(tag, opts)) {
        const m = await this.getManifest(tag, opts);
        idx = imageIndexSchema.parse(JSON.parse(m.bytes.toString('utf8')));
      }
      if (opts.artifactType)
        idx = { ...idx, manifests: idx.manifests.filter((d) => d.artifactType === opts.artifactType) };
      return idx;
    }
    let res = res0;
    for (let page = 0; ; page++) {
      if (res.status !== 200) throw await httpError(res, 'GET');
      const idx = imageIndexSchema.parse(
        JSON.parse((await readBody(res, MANIFEST_MAX_BYTES, 'referrers')).toString('utf8')),
      );
      manifests.push(...idx.manifests);
      path = nextLink(header(res, 'link'), res.url);
      if (!path || page > 1000) break;
      res = await this.http.send({
        method: 'GET',
        path,
        scopes: this.loc().scopes,
        headers: { accept: MediaType.OciIndex },
        signal: opts.signal,
      });
    }
    return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
  }

  /** Release connections (only the transport this object created). */
  async close(): Promise<void> {
    if (this.ownHttp) await this.http.close();
  }
}

/** The `rel="next"` target of a Link header, resolved against the request URL. */
export function nextLink(link: string | undefined, base: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(part.trim());
    if (m?.[1]) return new URL(m[1], base).toString();
  }
  return undefined;
}
