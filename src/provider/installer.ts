/**
 * The installer rootfs of CanvOS's `iso-image` target (canvos.md §1.7) as one merged FsEntry stream, without
 * unpacking anything: BASE_IMAGE's layers + the base-image edits the provider build computes (CA certificates,
 * kairos-release, bootargs.cfg, machine-id) + the WHOLE stylus framework image copied at `/` (streamed through
 * the same COPY-style relocation the provider layers use) + `overlay/files/` at `/` + removal of the SSH host keys
 * + the project's local-ui.tar under /opt/spectrocloud (what CanvOS's build-iso extracts into the rootfs).
 * The project Dockerfile's layers come right after the base (CanvOS: iso-image is FROM base-image); its RUN layers
 * are shared with the provider build through the RUN cache (same key: gzip layers, same chain).
 * Only the small edit/overlay layers are written (as plain tar, in a scratch directory); the images are streamed.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildDockerfileLayers, dockerfileWatchFiles, prepareProjectDockerfile } from '../dockerfile/build.js';
import type { Executor } from '../dockerfile/exec-api.js';
import { CanvosError } from '../errors.js';
import { buildLayer, sourceDateEpochFromEnv } from '../layers/build.js';
import type { FsEntry } from '../tar/entry.js';
import { mergeLayers, type LayerOpener } from '../layers/merge.js';
import type { EntriesSpec } from '../layers/spec.js';
import { localUiLayer } from '../iso/local-ui.js';
import { BlobCache } from '../cache/blob-cache.js';
import { MediaType } from '../image/media-types.js';
import type { RegistryTransportOptions } from '../transports/registry/registry-image.js';
import { entriesToTar } from '../tar/write.js';
import { rootfsExtraItems } from '../disk/rootfs-extras.js';
import { scanBase } from './base-scan.js';
import { resolveBaseImage, stylusImage } from './derive.js';
import { openImage, type OpenedImage } from './image-reader.js';
import { layerBuildSpec, type SpecContext } from './layer-specs.js';
import { baseScanRequest, planProviderImages } from './provider-plan.js';
import type { PlannedLayer } from './plan-types.js';
import type { BuildConfig, WarningHandler } from './resolve.js';

/** Options of {@link openInstallerRootfs}. */
export interface InstallerRootfsOptions {
  /** Directory holding overlay/, certs/, cloudconfigs/. Default: process.cwd(). */
  projectDir?: string | undefined;
  /** Registry connection/auth options for the base and stylus images. Default: {}. */
  registry?: RegistryTransportOptions | undefined;
  /** Blob cache directory. Default: BlobCache's default (`$CANVOS_CACHE_DIR`, XDG cache). */
  cacheDir?: string | undefined;
  /** Clamp for the mtimes of the added layers. Default: `env` SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number | undefined;
  /** Environment for the cache location (CANVOS_CACHE_DIR, XDG) and SOURCE_DATE_EPOCH. Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  /**
   * gzip level of the project Dockerfile's layers (read here, never written): give the provider build's
   * `compressionLevel` so both share the RUN cache (its key holds the level). Default: 1.
   */
  compressionLevel?: number | undefined;
  /** The RUN executor for the project Dockerfile. Default: canvos-lite's rootless executor, loaded on demand. */
  executor?: Executor | undefined;
  signal?: AbortSignal | undefined;
  /** Called with a short line per step (resolve, scan, layer). Default: none. */
  onProgress?: ((message: string) => void) | undefined;
  onWarning?: WarningHandler | undefined;
  /** local-ui.tar extracted into /opt/spectrocloud on top of everything (CanvOS build-iso). Default: none. */
  localUi?: string | undefined;
}

/** An opened installer rootfs. `rootfs` can be iterated once; call `close()` afterwards (also on failure). */
export interface InstallerRootfs {
  baseImage: string;
  stylusImage: string;
  /** Names of the layers stacked on the base, bottom first. */
  layers: string[];
  rootfs: AsyncIterable<FsEntry>;
  close(): Promise<void>;
}

/** The layers of the installer (iso-image) on top of BASE_IMAGE, built from the provider plan's shared items. */
export function planInstallerLayers(
  config: BuildConfig,
  projectDir: string,
  onWarning?: WarningHandler,
): { osConfig: PlannedLayer; stylus: PlannedLayer; overlay: PlannedLayer; finalize: PlannedLayer } {
  // The provider plan computes the base-image edits; with k8s unbundled and TWO_NODE off it reads no extra image.
  const plan = planProviderImages({ ...config, bundleK8sAndAgentProvider: false, twoNode: false }, ['0.0.0'], {
    projectDir,
    supportsSystemdExtensions: true,
    onWarning,
    scope: 'iso',
  });
  const shared = (name: string): PlannedLayer => {
    const l = plan.sharedLayers.find((x) => x.name === name);
    if (!l) throw new CanvosError('ERR_INTERNAL', `provider plan has no ${name} layer`);
    return l;
  };
  const osConfig = shared('os-config');
  const fin = shared('finalize');
  const ref = stylusImage(config);
  return {
    osConfig,
    stylus: {
      name: 'stylus-framework',
      shared: true,
      description: `the whole stylus framework image ${ref} at /`,
      items: [{ op: 'copy', source: { kind: 'image', ref, path: '/' }, target: '/' }],
    },
    overlay: {
      name: 'overlay',
      shared: true,
      description: 'overlay/files → /',
      items: [
        {
          op: 'copy',
          source: { kind: 'host-tree', path: resolve(projectDir, 'overlay/files') },
          target: '/',
          optional: true,
        },
        // IS_CLOUD_IMAGE / IS_MAAS: CanvOS copies its disk flavours' files right after overlay/files.
        ...rootfsExtraItems(config, projectDir),
      ],
    },
    finalize: {
      name: 'finalize',
      shared: true,
      description: 'remove SSH host keys and moduli, empty /etc/machine-id',
      // etcdctl is a provider-image addition (canvos.md §1.5), not part of iso-image.
      items: fin.items.filter((i) => i.source.kind !== 'image'),
    },
  };
}

/** Relocate the entries of an `entries` spec the way buildLayer would, without spooling them. */
async function* relocated(spec: EntriesSpec): AsyncGenerator<FsEntry> {
  for await (const e of spec.source) {
    const to = spec.map ? spec.map(e.path) : e.path;
    if (to === null) {
      e.content?.resume();
      continue;
    }
    const linkname =
      e.type === 'hardlink' && e.linkname !== undefined && spec.map ? (spec.map(e.linkname) ?? e.linkname) : e.linkname;
    yield { ...e, path: to, linkname };
  }
}

/** Open the installer rootfs of `config` (see the file header). */
export async function openInstallerRootfs(
  config: BuildConfig,
  opts: InstallerRootfsOptions = {},
): Promise<InstallerRootfs> {
  const signal = opts.signal;
  const say = opts.onProgress ?? (() => {});
  const warn = opts.onWarning ?? (() => {});
  const projectDir = resolve(opts.projectDir ?? process.cwd());
  const planned = planInstallerLayers(config, projectDir, warn);
  const dockerfile = await prepareProjectDockerfile(config, resolveBaseImage(config), projectDir, {
    executor: opts.executor,
    signal,
  });
  const cache = new BlobCache({ dir: opts.cacheDir, env: opts.env });
  const open = { registry: opts.registry, cache, signal };
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv(opts.env);
  const opened: OpenedImage[] = [];
  const work = await mkdtemp(join(tmpdir(), 'canvos-installer-'));
  const close = async (): Promise<void> => {
    await Promise.all(opened.map((o) => o.source.close().catch(() => {})));
    await rm(work, { recursive: true, force: true });
  };
  try {
    const baseRef = resolveBaseImage(config);
    say(`resolve ${baseRef}`);
    const base = await openImage(baseRef, config.arch, open);
    opened.push(base);
    const ref = stylusImage(config);
    say(`resolve ${ref}`);
    const stylus = await openImage(ref, config.arch, open);
    opened.push(stylus);
    say(`scan ${baseRef}`);
    const scanRequest = baseScanRequest([planned.osConfig, planned.overlay, planned.finalize]);
    // The files canvos-lite edits (and the Dockerfile's --chown reads); kept current through its layers.
    const watchFiles = dockerfileWatchFiles(scanRequest.files);
    const scan = await scanBase(base.openers, { files: watchFiles, listDirs: scanRequest.listDirs }, { signal });
    const ctx: SpecContext = { config, scan, images: new Map([[ref, stylus]]), onWarning: warn, signal };

    const openers: LayerOpener[] = [...base.openers];
    const names: string[] = [];
    if (dockerfile) {
      say('Dockerfile');
      // gzip layers: the same RUN cache keys as a default provider build, so build-all runs each RUN once.
      const layerOpts = {
        compression: 'gzip' as const,
        level: opts.compressionLevel,
        mediaType: MediaType.OciLayerGzip,
        sourceDateEpoch: epoch,
      };
      const df = await buildDockerfileLayers(dockerfile.df, {
        ...dockerfile.options,
        ...layerOpts,
        base,
        scan,
        watchFiles,
        cache,
        workDir: work,
        signal,
        onWarning: warn,
        onLog: say,
      });
      for (const h of df.history) {
        if (!h.layer) continue;
        const path = h.layer.path;
        openers.push(() => Promise.resolve(createReadStream(path)));
        names.push(h.name);
      }
    }
    const built = async (layer: PlannedLayer): Promise<void> => {
      const s = await layerBuildSpec(layer, ctx);
      if (!s) return;
      say(`layer ${layer.name}`);
      const b = await buildLayer(s.spec, {
        dir: join(work, 'layers'),
        compression: 'none',
        sourceDateEpoch: epoch,
        parentMeta: (p) => scan.dirs.get(p),
        download: opts.registry,
        signal,
      });
      s.verify();
      openers.push(() => Promise.resolve(createReadStream(b.path)));
      names.push(layer.name);
    };
    await built(planned.osConfig);
    // The stylus image is streamed at every read (merged, relocated through the base's symlinks, serialised as tar).
    openers.push(async () => {
      const s = await layerBuildSpec(planned.stylus, ctx);
      const item = s?.spec.entries[0];
      if (!item || item.type !== 'entries')
        throw new CanvosError('ERR_INTERNAL', 'stylus layer spec has no entries source');
      return entriesToTar(relocated(item), signal);
    });
    names.push(planned.stylus.name);
    say(`layer ${planned.stylus.name} (streamed from ${ref})`);
    await built(planned.overlay);
    await built(planned.finalize);
    if (opts.localUi) {
      openers.push(localUiLayer(opts.localUi, signal));
      names.push('local-ui');
      say(`layer local-ui (streamed from ${opts.localUi})`);
    }
    return { baseImage: baseRef, stylusImage: ref, layers: names, rootfs: mergeLayers(openers, { signal }), close };
  } catch (e) {
    await close();
    throw e;
  }
}
