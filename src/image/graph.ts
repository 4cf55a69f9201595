/**
 * Loading an image's manifest graph from an ImageSource (root, index children, nested indexes) and narrowing an
 * index to the wanted platforms. One platform makes that child the new root (its digest is kept); several make a
 * new index of the selected children, whose digest necessarily differs from the source's.
 */
import { CanvosError } from '../errors.js';
import { sha256, type Digest } from './digest.js';
import { isIndexMediaType, MediaType } from './media-types.js';
import { formatPlatform, platformMatches, type Platform } from './platform.js';
import { parseManifest, type Descriptor } from './schemas.js';
import type { ImageSource, OpOptions, RawManifest } from './types.js';
import { throwIfAborted } from '../util/abort.js';

/** One manifest of the graph with its children (index) or blobs (image). */
export interface ManifestNode {
  raw: RawManifest;
  kind: 'index' | 'image';
  /** Platform from the parent index's descriptor, when known. */
  platform?: Platform | undefined;
  children: ManifestNode[];
  /** Config and layers of an image manifest (empty for an index). */
  blobs: Descriptor[];
}

const MAX_DEPTH = 4;

/** Load a manifest (root when `desc` is undefined) and, recursively, every child of an index. */
export async function loadGraph(
  src: ImageSource,
  desc: Descriptor | undefined,
  opts: OpOptions,
  depth = 0,
): Promise<ManifestNode> {
  throwIfAborted(opts.signal);
  const raw = await src.getManifest(desc?.digest, { signal: opts.signal });
  const parsed = parseManifest(
    raw.bytes,
    desc?.mediaType ?? raw.mediaType,
    `manifest ${raw.digest} of ${src.description}`,
  );
  // The PUT Content-Type must equal the document's own mediaType; the descriptor is the next best witness.
  raw.mediaType = parsed.value.mediaType ?? desc?.mediaType ?? raw.mediaType;
  if (parsed.kind === 'image') {
    const m = parsed.value;
    return { raw, kind: 'image', platform: desc?.platform, children: [], blobs: [m.config, ...m.layers] };
  }
  if (depth >= MAX_DEPTH) {
    throw new CanvosError(
      'ERR_MANIFEST_INVALID',
      `manifest ${raw.digest} of ${src.description}: indexes nested deeper than ${MAX_DEPTH}`,
    );
  }
  const children = await Promise.all(parsed.value.manifests.map((d) => loadGraph(src, d, opts, depth + 1)));
  return { raw, kind: 'index', platform: desc?.platform, children, blobs: [] };
}

/** Platforms of an index's children, formatted (`linux/arm64`), for messages and results. */
export function childPlatforms(node: ManifestNode): string[] {
  return node.children.flatMap((c) => (c.platform ? [formatPlatform(c.platform)] : []));
}

/** Result of {@link selectPlatforms}. */
export interface Selection {
  root: ManifestNode;
  /** True when the root is a new index (its digest differs from the source's). */
  rewritten: boolean;
}

/**
 * Narrow an index root to `wanted` platforms (each must match a child, else ERR_PLATFORM_NOT_FOUND). An image
 * root is returned as is. Exactly one selected child becomes the root; several become a new index keeping the
 * source's fields (annotations, media type) with only those children.
 */
export function selectPlatforms(root: ManifestNode, wanted: Platform[], what: string): Selection {
  if (root.kind === 'image' || wanted.length === 0) return { root, rewritten: false };
  const picked: ManifestNode[] = [];
  for (const w of wanted) {
    const c = root.children.find((ch) => platformMatches(ch.platform, w));
    if (!c) {
      throw new CanvosError(
        'ERR_PLATFORM_NOT_FOUND',
        `${what} has no image for platform ${formatPlatform(w)} (available: ${childPlatforms(root).join(', ') || 'none'})`,
        {
          hint: 'pick one of the available platforms with --platform, or copy them all with --all-platforms',
        },
      );
    }
    if (!picked.includes(c)) picked.push(c);
  }
  const [only] = picked;
  if (only && picked.length === 1) return { root: only, rewritten: false };
  const doc = JSON.parse(root.raw.bytes.toString('utf8')) as { manifests: unknown[] } & Record<string, unknown>;
  const keep = new Set(picked.map((p) => p.raw.digest));
  doc.manifests = doc.manifests.filter((d) => keep.has((d as { digest: Digest }).digest));
  const bytes = Buffer.from(JSON.stringify(doc));
  const mediaType = isIndexMediaType(root.raw.mediaType) ? root.raw.mediaType : MediaType.OciIndex;
  const children = root.children.filter((c) => keep.has(c.raw.digest));
  return { root: { ...root, raw: { bytes, mediaType, digest: sha256(bytes) }, children }, rewritten: true };
}

/** Every distinct node of the graph, children before parents (the order manifests must be written in). */
export function bottomUp(root: ManifestNode): ManifestNode[] {
  const out: ManifestNode[] = [];
  const seen = new Set<string>();
  const visit = (n: ManifestNode): void => {
    if (seen.has(n.raw.digest)) return;
    seen.add(n.raw.digest);
    for (const c of n.children) visit(c);
    out.push(n);
  };
  visit(root);
  return out;
}
