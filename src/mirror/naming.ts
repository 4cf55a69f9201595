/**
 * Destination repository naming. Default (Palette's convention): `<dest registry>/<prefix>/<source registry>/<path>`.
 * `flatten: true` joins everything after the prefix into one segment with `-` (Quay/GHCR/GitLab forbid deep paths);
 * `'last-segment'` keeps only the last path segment. Two source repositories mapping to one destination repository
 * is refused up front (ERR_CONFIG listing both), so a flatten never silently overwrites another image.
 */
import { CanvosError } from '../errors.js';
import { makeReference, normalizeRegistry, type Reference } from '../registry/reference.js';
import type { RewriteOptions } from './config.js';

/** A destination `REGISTRY[/prefix]` as given to `--to`. */
export interface DestinationRoot {
  registry: string;
  /** Path under the registry (`--to host/a/b` → `a/b`), joined before the rewrite prefix. */
  path: string;
}

/** Parse `--to HOST[:PORT][/path]`. */
export function parseDestinationRoot(to: string): DestinationRoot {
  const s = to.replace(/^docker:\/\//, '').replace(/\/+$/, '');
  const slash = s.indexOf('/');
  const host = slash < 0 ? s : s.slice(0, slash);
  const path = slash < 0 ? '' : s.slice(slash + 1);
  if (host === '' || /[^a-zA-Z0-9.:[\]-]/.test(host)) {
    throw new CanvosError('ERR_USAGE', `--to ${JSON.stringify(to)}: expected REGISTRY[:PORT][/path]`, {
      hint: 'e.g. --to registry.local:5000/mirror',
    });
  }
  if (path !== '' && !/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(path)) {
    throw new CanvosError(
      'ERR_USAGE',
      `--to ${JSON.stringify(to)}: ${JSON.stringify(path)} is not a lowercase repository path`,
      { hint: 'e.g. --to registry.local:5000/mirror' },
    );
  }
  return { registry: normalizeRegistry(host), path };
}

/** A registry host as a repository path segment (`127.0.0.1:5000` → `127.0.0.1-5000`). */
function hostSegment(registry: string): string {
  return registry.toLowerCase().replace(/[[\]]/g, '').replace(/:/g, '-');
}

/** The destination repository (no registry) for a source repository. */
export function destinationRepository(
  src: Pick<Reference, 'registry' | 'repository'>,
  root: DestinationRoot,
  rw: RewriteOptions = {},
): string {
  const keepRegistry = rw.keepRegistry ?? true;
  const segs = [...(keepRegistry ? [hostSegment(src.registry)] : []), ...src.repository.split('/')];
  let tail: string;
  if (rw.flatten === 'last-segment') tail = segs.at(-1) ?? '';
  else if (rw.flatten === true) tail = segs.join('-');
  else tail = segs.join('/');
  return [root.path, rw.prefix ?? '', tail].filter((s) => s !== '').join('/');
}

/** The destination reference of a source reference (tag and digest kept). */
export function destinationReference(src: Reference, root: DestinationRoot, rw: RewriteOptions = {}): Reference {
  return makeReference(root.registry, destinationRepository(src, root, rw), src.tag, src.digest);
}

/**
 * Map every source repository to its destination repository; throws ERR_CONFIG when two different sources land
 * on the same destination repository.
 */
export function planNames(
  sources: readonly Pick<Reference, 'registry' | 'repository'>[],
  root: DestinationRoot,
  rw: RewriteOptions = {},
): Map<string, string> {
  const bySource = new Map<string, string>();
  const byDest = new Map<string, string>();
  for (const s of sources) {
    const key = `${s.registry}/${s.repository}`;
    if (bySource.has(key)) continue;
    const dest = destinationRepository(s, root, rw);
    const other = byDest.get(dest);
    if (other !== undefined && other !== key) {
      throw new CanvosError(
        'ERR_CONFIG',
        `destination collision: ${other} and ${key} both map to ${root.registry}/${dest}`,
        {
          hint:
            rw.flatten === 'last-segment'
              ? 'use flatten: true (joins the whole path) or a different prefix per source'
              : 'change rewrite.prefix/flatten so every source gets its own repository',
          details: { sources: [other, key], destination: `${root.registry}/${dest}` },
        },
      );
    }
    byDest.set(dest, key);
    bySource.set(key, dest);
  }
  return bySource;
}
