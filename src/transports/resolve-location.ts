/**
 * skopeo-style image location strings: `docker://host/repo:tag` (or a bare reference), `oci:DIR[:tag]` and
 * `docker-archive:FILE[:name:tag]`, parsed into a typed spec and opened as ImageSource / ImageDestination.
 * Anything else that is not a valid reference fails with ERR_TRANSPORT_UNKNOWN listing the transports.
 */
import { CanvosError } from '../errors.js';
import { echo } from '../util/echo.js';
import { dockerArchiveDestination } from './docker-archive/docker-archive-destination.js';
import { dockerArchiveSource } from './docker-archive/docker-archive-source.js';
import { layoutSource } from './oci-layout/layout-source.js';
import { layoutDestination } from './oci-layout/layout-destination.js';
import { parseReference, type Reference } from '../registry/reference.js';
import { registryDestination, registrySource, type RegistryTransportOptions } from './registry/registry-image.js';
import type { ImageDestination, ImageSource } from '../image/types.js';

/** The transports this build can read and write. */
export const TRANSPORTS = ['docker', 'oci', 'docker-archive'] as const;
/** One of {@link TRANSPORTS}. */
export type TransportName = (typeof TRANSPORTS)[number];

/** A parsed image location. */
export type ImageSpec =
  | { transport: 'docker'; ref: Reference }
  | { transport: 'oci'; dir: string; tag: string | undefined }
  | { transport: 'docker-archive'; file: string; ref: string | undefined };

// Transports skopeo knows but we do not: named explicitly so `dir:x` is not mistaken for the image `dir:x`.
const FOREIGN = new Set([
  'dir',
  'oci-archive',
  'docker-daemon',
  'containers-storage',
  'ostree',
  'sif',
  'tarball',
  'atomic',
]);

function unknownTransport(spec: string, name: string): CanvosError {
  return new CanvosError(
    'ERR_TRANSPORT_UNKNOWN',
    `unknown transport "${name}" in ${JSON.stringify(spec)} (valid: docker://, oci:, docker-archive:)`,
    {
      hint: 'write docker://host/repo:tag, oci:DIR[:tag] or docker-archive:FILE[:name:tag]',
    },
  );
}

/** Parse a location string (see the file header). Throws ERR_TRANSPORT_UNKNOWN or ERR_REFERENCE_INVALID. */
export function parseImageSpec(spec: string): ImageSpec {
  if (spec.startsWith('docker://')) return { transport: 'docker', ref: parseReference(spec.slice('docker://'.length)) };
  if (spec.startsWith('oci:')) {
    const rest = spec.slice(4);
    const colon = rest.lastIndexOf(':');
    // A colon in the last path component separates the tag; earlier ones belong to the directory name.
    const tagged = colon > rest.lastIndexOf('/') && colon > 0;
    const dir = tagged ? rest.slice(0, colon) : rest;
    const tag = tagged ? rest.slice(colon + 1) : undefined;
    if (dir === '')
      throw new CanvosError('ERR_REFERENCE_INVALID', `${JSON.stringify(spec)}: the layout directory is missing`, {
        hint: 'write oci:DIR[:tag]',
      });
    if (tag === '')
      throw new CanvosError('ERR_REFERENCE_INVALID', `${JSON.stringify(spec)}: the tag is empty`, {
        hint: 'write oci:DIR[:tag]',
      });
    // The tag grammar of the distribution spec (skopeo refuses the same): at most 128 of [A-Za-z0-9_.-], not starting with . or -.
    if (tag !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) {
      throw new CanvosError(
        'ERR_REFERENCE_INVALID',
        `oci:${dir}: invalid tag ${echo(tag)} (${tag.length} characters)`,
        {
          hint: 'a tag is 1 to 128 letters, digits, "_", "." or "-", and does not start with "." or "-"',
        },
      );
    }
    return { transport: 'oci', dir, tag };
  }
  if (spec.startsWith('docker-archive:')) {
    const rest = spec.slice('docker-archive:'.length);
    const colon = rest.indexOf(':');
    const file = colon < 0 ? rest : rest.slice(0, colon);
    const ref = colon < 0 ? undefined : rest.slice(colon + 1);
    if (file === '')
      throw new CanvosError('ERR_REFERENCE_INVALID', `${JSON.stringify(spec)}: the archive file is missing`, {
        hint: 'write docker-archive:FILE[:name:tag]',
      });
    if (ref !== undefined && !/^@\d+$/.test(ref)) parseReference(ref); // validate early, one clear error
    return { transport: 'docker-archive', file, ref: ref === '' ? undefined : ref };
  }
  const prefix = /^([a-z][a-z0-9-]*):.*$/.exec(spec)?.[1];
  if (prefix !== undefined && FOREIGN.has(prefix)) throw unknownTransport(spec, prefix);
  try {
    return { transport: 'docker', ref: parseReference(spec) };
  } catch (e) {
    if (prefix !== undefined) throw unknownTransport(spec, prefix);
    throw e;
  }
}

/** Format a spec back into its string form (never contains credentials). */
export function formatImageSpec(s: ImageSpec): string {
  if (s.transport === 'docker') return `docker://${s.ref.toString()}`;
  if (s.transport === 'oci') return `oci:${s.dir}${s.tag !== undefined ? `:${s.tag}` : ''}`;
  return `docker-archive:${s.file}${s.ref !== undefined ? `:${s.ref}` : ''}`;
}

/** Options of {@link openSource} / {@link openDestination}. */
export interface OpenOptions {
  /** Registry connection/auth options, used for `docker://` locations. Default: {}. */
  registry?: RegistryTransportOptions | undefined;
}

/** Open a location string or spec for reading. */
export function openSource(spec: string | ImageSpec, opts: OpenOptions = {}): ImageSource {
  const s = typeof spec === 'string' ? parseImageSpec(spec) : spec;
  if (s.transport === 'docker') return registrySource(s.ref, opts.registry ?? {});
  if (s.transport === 'oci') return layoutSource(s.dir, { tag: s.tag });
  return dockerArchiveSource(s.file, { ref: s.ref });
}

/** Open a location string or spec for writing; its `tag` is the tag the copied root gets. */
export function openDestination(spec: string | ImageSpec, opts: OpenOptions = {}): ImageDestination {
  const s = typeof spec === 'string' ? parseImageSpec(spec) : spec;
  if (s.transport === 'oci') return layoutDestination(s.dir, { tag: s.tag });
  if (s.transport === 'docker-archive') {
    const ref = s.ref && !s.ref.startsWith('@') ? parseReference(s.ref).familiar : undefined;
    return dockerArchiveDestination(s.file, { ref });
  }
  const d = registryDestination(s.ref, opts.registry ?? {});
  const tag = s.ref.digest ? undefined : s.ref.tag;
  // Delegate explicitly (rather than spreading) so the registry adapter's own fields stay private to it.
  return {
    description: d.description,
    tag,
    checksOnPut: d.checksOnPut,
    hasBlob: (desc, o) => d.hasBlob(desc, o),
    putBlob: (desc, open, o) => d.putBlob(desc, open, o),
    hasManifest: (digest, o) => d.hasManifest(digest, o),
    putManifest: (m, t, o) => d.putManifest(m, t, o),
    commit: (o) => d.commit(o),
    close: () => d.close(),
  };
}
