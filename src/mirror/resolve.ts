/**
 * From mirror.yaml (or ad-hoc references) to the list of images to copy: explicit references as written,
 * repositories with `tags:` filters expanded by listing their tags (Link paging in the registry client), and the
 * images a CanvOS build configuration implies (base image, the images its layers read from, and the provider
 * images it pushes, one per Kubernetes version). A repository that cannot be listed becomes a failure, not an abort.
 */
import { dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { CanvosError } from '../errors.js';
import { parsePlatform } from '../image/platform.js';
import { RegistryRepository } from '../registry/client.js';
import { makeReference, parseReference } from '../registry/reference.js';
import type { RegistryTransportOptions } from '../transports/registry/registry-image.js';
import type { FromBuild, MirrorConfig, MirrorImageEntry } from './config.js';
import { RegistryConnections } from './connections.js';
import { eachLimited, toFailure } from './engine.js';
import { filterTags } from './tags.js';
import type { MirrorFailure, MirrorItem } from './types.js';

/** Options of {@link resolveItems}. */
export interface ResolveItemsOptions {
  signal?: AbortSignal | undefined;
  sourceRegistry?: RegistryTransportOptions | undefined;
  /** Shared connections (created and closed internally when absent). */
  connections?: RegistryConnections | undefined;
  /** Warnings from the build configuration. Default: ignored. */
  onWarning?: ((code: string, message: string) => void) | undefined;
}

/** Items for ad-hoc references (all platforms). */
export function itemsFromRefs(refs: readonly string[]): MirrorItem[] {
  return refs.map((r, i) => ({ source: parseReference(r), origin: `argument ${i + 1}` }));
}

function platformsOf(e: MirrorImageEntry): MirrorItem['platforms'] {
  return e.platforms === undefined || e.platforms === 'all' ? undefined : e.platforms.map(parsePlatform);
}

/** The images a build configuration implies (see the file header). */
export async function itemsFromBuild(
  fb: FromBuild,
  baseDir: string,
  onWarning?: (code: string, message: string) => void,
): Promise<MirrorItem[]> {
  // Loaded on demand: the provider area is large and only fromBuild needs it.
  const { loadBuildConfig, loadK8sVersions, planProviderImages, selectK8sVersions, withPeVersionDefault } =
    await import('../provider/index.js');
  const atPath = (p: string): string => (isAbsolute(p) ? p : resolvePath(baseDir, p));
  const at = (p: string | undefined): string | undefined => (p === undefined ? undefined : atPath(p));
  const loaded = await loadBuildConfig({ argFile: at(fb.argFile), configFile: at(fb.config), onWarning });
  // PE_VERSION defaults as in `build` (earthly.sh: git describe of the CanvOS checkout that holds the .arg), so the
  // mirror lists the same stylus/provider tags the build will use.
  const projectDir = dirname(at(fb.argFile) ?? at(fb.config) ?? join(baseDir, '.arg'));
  const config = await withPeVersionDefault(loaded, projectDir);
  const versions = Array.isArray(fb.k8sVersions)
    ? fb.k8sVersions
    : selectK8sVersions(
        config,
        typeof fb.k8sVersions === 'string' ? await loadK8sVersions(atPath(fb.k8sVersions)) : undefined,
        fb.k8sVersions ?? 'k8s_version.json',
      );
  const plan = planProviderImages(config, versions, { projectDir: baseDir, onWarning });
  const out: MirrorItem[] = [];
  const add = (ref: string, origin: string): void => {
    if (!out.some((o) => o.source.toString() === parseReference(ref).toString()))
      out.push({ source: parseReference(ref), origin });
  };
  add(plan.baseImage, 'fromBuild:base');
  for (const s of plan.sourceImages) add(s, 'fromBuild:source');
  if (fb.providerImages !== false)
    for (const img of plan.images) add(img.imageRef, `fromBuild:provider ${img.k8sVersion}`);
  return out;
}

/** Expand a mirror.yaml into items; listing failures are returned, not thrown. */
export async function resolveItems(
  config: MirrorConfig,
  opts: ResolveItemsOptions = {},
): Promise<{ items: MirrorItem[]; failures: MirrorFailure[] }> {
  const conns = opts.connections ?? new RegistryConnections(config.concurrency);
  const items: MirrorItem[] = [];
  const failures: MirrorFailure[] = [];
  try {
    // A few listings at once: each waiting entry would otherwise park an abort listener on the caller's signal.
    await eachLimited(config.images ?? [], config.concurrency?.images ?? 4, async (e, i) => {
      const origin = `images[${i}]`;
      const ref = parseReference(e.ref);
      if (!e.tags) {
        items.push({ source: ref, platforms: platformsOf(e), origin });
        return;
      }
      try {
        const repo = new RegistryRepository(
          ref.registry,
          ref.repository,
          conns.options(ref.registry, 'src', opts.sourceRegistry),
        );
        const tags = filterTags(await repo.listTags({ signal: opts.signal }), e.tags);
        if (tags.length === 0) {
          throw new CanvosError(
            'ERR_MANIFEST_UNKNOWN',
            `${ref.name}: no tag matches the filter ${JSON.stringify(e.tags)}`,
            { hint: 'check tags.regex / tags.semver against the repository tags' },
          );
        }
        for (const t of tags)
          items.push({ source: makeReference(ref.registry, ref.repository, t), platforms: platformsOf(e), origin });
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        failures.push(toFailure({ source: `${ref.name} (${origin})`, destination: '' }, err));
      }
    });
    if (config.fromBuild)
      items.push(...(await itemsFromBuild(config.fromBuild, config.baseDir ?? process.cwd(), opts.onWarning)));
  } finally {
    if (!opts.connections) await conns.close();
  }
  // Keep the config order stable (listings push in completion order) and drop duplicates.
  const order = (o: string): number => (o.startsWith('images[') ? Number(/\d+/.exec(o)?.[0] ?? 1e9) : 1e9);
  items.sort((a, b) => order(a.origin) - order(b.origin));
  const seen = new Set<string>();
  return { items: items.filter((it) => !seen.has(it.source.toString()) && seen.add(it.source.toString())), failures };
}
