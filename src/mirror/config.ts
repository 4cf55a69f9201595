/**
 * `mirror.yaml`: the declarative list of what to mirror (explicit references, repositories with tag filters, the
 * images a CanvOS build configuration implies), how destination repositories are named, concurrency and whether
 * signatures/SBOMs travel along. Validated with zod; every error names `file:line` of the offending value.
 */
import { dirname } from 'node:path';
import { isNode, LineCounter } from 'yaml';
import { INPUT_LIMITS, parseYaml, readTextInput } from '../text-input.js';
import * as z from 'zod';
import { CanvosError, internalError } from '../errors.js';
import { parsePlatform } from '../image/platform.js';
import { parseReference } from '../registry/reference.js';

const platformString = z.string().refine(
  (s) => {
    try {
      parsePlatform(s);
      return true;
    } catch {
      return false;
    }
  },
  { error: 'must be os/arch[/variant], e.g. linux/amd64' },
);

const refString = z.string().refine(
  (s) => {
    try {
      parseReference(s);
      return true;
    } catch {
      return false;
    }
  },
  { error: 'must be an image reference like registry/repository[:tag][@sha256:…]' },
);

/** Tag selection for a repository: every filter given must match; `latest` keeps the n highest after filtering. */
export const TagFilterSchema = z.strictObject({
  /** JavaScript regular expression searched in the tag (write ^…$ to match the whole tag). */
  regex: z
    .string()
    .refine(
      (s) => {
        try {
          new RegExp(s);
          return true;
        } catch {
          return false;
        }
      },
      { error: 'is not a valid regular expression' },
    )
    .optional(),
  /** Semver range (`>=1.2.0 <2`, `^1.30`, `~3.19`, `1.x`, `a || b`); non-semver tags never match. */
  semver: z.string().min(1).optional(),
  /** Keep only the n newest (semver order, else reverse lexical) matching tags. */
  latest: z.number().int().positive().optional(),
});
/** A parsed `tags:` filter. */
export type TagFilter = z.infer<typeof TagFilterSchema>;

/** One `images:` entry. */
export const MirrorImageSchema = z.strictObject(
  {
    ref: refString,
    tags: TagFilterSchema.optional(),
    platforms: z.union([z.literal('all'), z.array(platformString).min(1)]).optional(),
  },
  {
    error: (iss) =>
      iss.code === 'invalid_type' ? 'must be an image reference, or a map with ref (and tags, platforms)' : undefined,
  },
);
/** A parsed `images:` entry. */
export type MirrorImageEntry = z.infer<typeof MirrorImageSchema>;

/** Destination repository naming. */
export const RewriteSchema = z.strictObject({
  /** Repository path prepended at the destination, e.g. `mirror` → `REGISTRY/mirror/...`. Default: none. */
  prefix: z
    .string()
    .regex(/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, {
      error: 'must be a lowercase repository path like "mirror" or "team/mirror"',
    })
    .optional(),
  /** Keep the source registry as the first path segment (`docker.io/library/alpine`), as Palette does. Default: true. */
  keepRegistry: z.boolean().optional(),
  /**
   * For registries that do not allow nested paths: `true` joins the path with `-` into one segment,
   * `'last-segment'` keeps only the last segment. Two sources mapping to one repository is an error. Default: false.
   */
  flatten: z.union([z.boolean(), z.literal('last-segment')]).optional(),
});
/** A parsed `rewrite:` section. */
export type RewriteOptions = z.infer<typeof RewriteSchema>;

/** `concurrency:` limits (images, blobs, requests per registry). */
export const ConcurrencySchema = z.strictObject({
  /** Images copied at once. Default: 4. */
  images: z.number().int().min(1).max(64).optional(),
  /** Blobs moved at once across all images. Default: 8. */
  blobs: z.number().int().min(1).max(128).optional(),
  /** Requests in flight per registry (every registry). Default: 8 (DEFAULT_CONCURRENCY in registry/semaphore.ts; skopeo/containers-image use 6 blob streams per image, regclient 3). */
  perRegistry: z.number().int().min(1).max(64).optional(),
  /** Per-registry overrides, keyed by registry host (`docker.io`, `quay.io`, `127.0.0.1:5000`). */
  registries: z.record(z.string(), z.number().int().min(1).max(64)).optional(),
});
/** A parsed `concurrency:` section. */
export type ConcurrencyOptions = z.infer<typeof ConcurrencySchema>;

/** `fromBuild:` the CanvOS build configuration whose images are mirrored. */
export const FromBuildSchema = z.strictObject({
  /** CanvOS `.arg` file. */
  argFile: z.string().optional(),
  /** canvos.yaml. */
  config: z.string().optional(),
  /** k8s_version.json path, or an explicit list of versions. Default: K8S_VERSION from the configuration. */
  k8sVersions: z.union([z.string(), z.array(z.string().regex(/^\d+\.\d+\.\d+$/))]).optional(),
  /** Also mirror the provider images the build pushes (`IMAGE_REGISTRY/IMAGE_REPO:<tag>`). Default: true. */
  providerImages: z.boolean().optional(),
});
/** A parsed `fromBuild:` section. */
export type FromBuild = z.infer<typeof FromBuildSchema>;

/** An `images:` item: the object form, or a bare reference string (`- quay.io/kairos/ubuntu:24.04`) = `{ ref }`. */
export const MirrorImageItemSchema = z.preprocess((v) => (typeof v === 'string' ? { ref: v } : v), MirrorImageSchema);

/** The whole file. */
export const MirrorConfigSchema = z.strictObject({
  images: z.array(MirrorImageItemSchema).optional(),
  fromBuild: FromBuildSchema.optional(),
  rewrite: RewriteSchema.optional(),
  concurrency: ConcurrencySchema.optional(),
  /** Copy signatures, SBOMs and attestations (referrers API and cosign `sha256-<hex>.sig/.att/.sbom` tags). Default: true. */
  referrers: z.boolean().optional(),
});
/** A parsed mirror.yaml. */
export type MirrorConfig = z.infer<typeof MirrorConfigSchema> & {
  /** Directory relative paths are resolved against. */ baseDir?: string;
};

/** Parse mirror.yaml text; `file` names the source in errors. Throws ERR_CONFIG with `file:line`. */
export function parseMirrorConfig(text: string, file = 'mirror.yaml'): MirrorConfig {
  const lc = new LineCounter();
  const doc = parseYaml(text, { lineCounter: lc, prettyErrors: false });
  const yerr = doc.errors[0];
  if (yerr) {
    const p = lc.linePos(yerr.pos[0]);
    throw new CanvosError('ERR_CONFIG', `${file}:${p.line}:${p.col}: invalid YAML: ${yerr.message.split('\n')[0]}`, {
      hint: 'fix the YAML syntax',
    });
  }
  let json: unknown;
  try {
    json = doc.toJS() ?? {};
  } catch (e) {
    // An undefined alias, or aliases expanding past the yaml package's limit (maxAliasCount).
    throw new CanvosError('ERR_CONFIG', `${file}: invalid YAML: ${(e as Error).message.split('\n')[0]}`, {
      hint: 'define every *alias with an &anchor before it, and avoid deeply nested aliases',
    });
  }
  const r = MirrorConfigSchema.safeParse(json);
  if (!r.success) {
    const iss = r.error.issues[0] ?? internalError('a failed zod parse has an issue');
    const path = iss.path.filter((p): p is string | number => typeof p !== 'symbol');
    // Walk up until a node with a position exists (a missing key points at its parent map).
    let line = 1;
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) {
        line = lc.linePos(node.range[0]).line;
        break;
      }
    }
    const where = path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))
      .join('')
      .replace(/^\./, '');
    throw new CanvosError('ERR_CONFIG', `${file}:${line}: ${where || '(root)'}: ${iss.message}`, {
      hint: 'see the mirror.yaml reference: images[REF | {ref, tags{regex,semver,latest}, platforms}], fromBuild, rewrite, concurrency, referrers',
    });
  }
  if (!r.data.images?.length && !r.data.fromBuild) {
    throw new CanvosError('ERR_CONFIG', `${file}:1: nothing to mirror (no images and no fromBuild)`, {
      hint: 'add an images: list or a fromBuild: section',
    });
  }
  for (const [i, img] of (r.data.images ?? []).entries()) {
    if (img.tags && hasTagOrDigest(img.ref)) {
      const node = doc.getIn(['images', i, 'ref'], true);
      const line = isNode(node) && node.range ? lc.linePos(node.range[0]).line : 1;
      throw new CanvosError(
        'ERR_CONFIG',
        `${file}:${line}: images[${i}].ref: ${img.ref} names a tag or digest, but tags: filters select tags`,
        {
          hint: 'write the repository without a tag when using tags: filters',
        },
      );
    }
  }
  return r.data;
}

/** Read and parse a mirror.yaml file; relative fromBuild paths resolve against its directory. */
export async function loadMirrorConfig(path: string): Promise<MirrorConfig> {
  const text = await readTextInput(path, {
    what: 'mirror.yaml',
    limit: INPUT_LIMITS.mirrorYaml,
    hint: 'pass --config <path of mirror.yaml>',
  });
  const c = parseMirrorConfig(text, path);
  return { ...c, baseDir: dirname(path) };
}

/** True when the reference string itself names a tag or a digest (parseReference would imply `latest`). */
export function hasTagOrDigest(ref: string): boolean {
  if (ref.includes('@')) return true;
  const last = ref.slice(ref.lastIndexOf('/') + 1);
  return last.includes(':');
}
