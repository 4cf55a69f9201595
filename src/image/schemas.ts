/**
 * zod schemas for the JSON documents read at the edges: descriptors, image manifests (OCI + Docker v2s2),
 * indexes / manifest lists, and image configs. Unknown fields are kept (loose objects) so that a parsed
 * document can be re-serialised without losing data; byte-exact copies never re-serialise at all.
 */
import * as z from 'zod';
import { CanvosError } from '../errors.js';
import { isDigest } from './digest.js';

const digestSchema = z.string().refine(isDigest, { error: 'invalid digest' });

export const platformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
});

export const descriptorSchema = z.looseObject({
  mediaType: z.string(),
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: platformSchema.optional(),
  artifactType: z.string().optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

export const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;

export const imageIndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ImageIndex = z.infer<typeof imageIndexSchema>;

export const historySchema = z.looseObject({
  created: z.string().optional(),
  created_by: z.string().optional(),
  author: z.string().optional(),
  comment: z.string().optional(),
  empty_layer: z.boolean().optional(),
});
export type History = z.infer<typeof historySchema>;

export const imageConfigSchema = z.looseObject({
  created: z.string().optional(),
  author: z.string().optional(),
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  config: z
    .looseObject({
      User: z.string().optional(),
      Env: z.array(z.string()).nullish(),
      Entrypoint: z.array(z.string()).nullish(),
      Cmd: z.array(z.string()).nullish(),
      WorkingDir: z.string().optional(),
      Labels: z.record(z.string(), z.string()).nullish(),
    })
    .optional(),
  rootfs: z.looseObject({ type: z.literal('layers'), diff_ids: z.array(digestSchema) }),
  history: z.array(historySchema).optional(),
});
export type ImageConfig = z.infer<typeof imageConfigSchema>;

/** Any manifest we understand, discriminated after parsing. */
export type AnyManifest = { kind: 'index'; value: ImageIndex } | { kind: 'image'; value: ImageManifest };

function parseJson(buf: Uint8Array | string, what: string): unknown {
  try {
    return JSON.parse(typeof buf === 'string' ? buf : Buffer.from(buf).toString('utf8'));
  } catch (e) {
    throw new CanvosError('ERR_MANIFEST_INVALID', `${what} is not valid JSON: ${(e as Error).message}`);
  }
}

function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue?.path.join('.') || '(root)';
    throw new CanvosError(
      'ERR_MANIFEST_INVALID',
      `${what} is invalid at ${path}: ${issue?.message ?? 'schema mismatch'}`,
    );
  }
  return r.data;
}

/**
 * Parse manifest bytes. `mediaType` is the Content-Type or descriptor media type if known; when absent,
 * the document's own `mediaType` or shape (`manifests` vs `layers`) decides.
 */
export function parseManifest(buf: Uint8Array | string, mediaType?: string, what = 'manifest'): AnyManifest {
  // JSON `null` parses too: hence the optional chains.
  const json = parseJson(buf, what) as Record<string, unknown> | null;
  const mt = (typeof json?.mediaType === 'string' ? json.mediaType : undefined) ?? mediaType;
  const looksIndex =
    mt === 'application/vnd.oci.image.index.v1+json' ||
    mt === 'application/vnd.docker.distribution.manifest.list.v2+json' ||
    (mt === undefined && Array.isArray(json?.manifests));
  if (json?.schemaVersion === 1) {
    throw new CanvosError('ERR_MANIFEST_INVALID', `${what} is a Docker schema 1 manifest, which is not supported`, {
      hint: 'rebuild or re-push the image with a current tool (schema 2 / OCI)',
    });
  }
  return looksIndex
    ? { kind: 'index', value: check(imageIndexSchema, json, what) }
    : { kind: 'image', value: check(imageManifestSchema, json, what) };
}

export function parseImageConfig(buf: Uint8Array | string, what = 'image config'): ImageConfig {
  return check(imageConfigSchema, parseJson(buf, what), what);
}
