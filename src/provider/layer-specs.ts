/**
 * Turns a PlannedLayer into the LayerSpec buildLayer writes, now that the base image has been scanned and the
 * source images are open: host files and trees, entries streamed from other images (relocated and filtered in one
 * pass per image), verified downloads, edited base files and whiteouts of names found in the base listing.
 */
import { stat } from 'node:fs/promises';
import { CanvosError } from '../errors.js';
import { mergeLayers } from '../layers/merge.js';
import { normalizeLayerPath } from '../layers/path.js';
import type { LayerEntrySpec, LayerSpec } from '../layers/spec.js';
import { globMatch, resolveInBase, type BaseScan } from './base-scan.js';
import type { OpenedImage } from './image-reader.js';
import { caCertsEntries } from './ca-certs.js';
import { editBootargs, editKairosRelease } from './os-edits.js';
import type { PlannedItem, PlannedLayer } from './plan-types.js';
import type { BuildConfig, WarningHandler } from './resolve.js';

/** Inputs shared by every layer of a build. */
export interface SpecContext {
  config: BuildConfig;
  scan: BaseScan;
  /** Source images by reference, opened for ARCH. */
  images: ReadonlyMap<string, OpenedImage>;
  onWarning: WarningHandler;
  signal?: AbortSignal | undefined;
}

/** A LayerSpec plus the checks to run once the layer was built (required entries of other images were found). */
export interface LayerBuildSpec {
  spec: LayerSpec;
  verify: () => void;
}

const norm = (p: string): string => normalizeLayerPath(p) ?? p;

async function exists(p: string): Promise<'file' | 'dir' | undefined> {
  try {
    const s = await stat(p);
    return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : undefined;
  } catch {
    return undefined;
  }
}

function missing(what: string, hint: string): CanvosError {
  return new CanvosError('ERR_CONFIG', `${what} does not exist`, { hint });
}

/** Map an entry path of a source image through the items that read from it; null drops it. */
function imageMapper(items: PlannedItem[], matched: Set<PlannedItem>, scan: BaseScan): (p: string) => string | null {
  return (path) => {
    for (const it of items) {
      if (it.source.kind !== 'image') continue;
      const src = norm(it.source.path);
      const target = norm(it.target);
      if ((it.source.exclude ?? []).some((x) => path === norm(x) || path.startsWith(`${norm(x)}/`))) continue;
      let out: string | undefined;
      const slash = src.lastIndexOf('/');
      const last = src.slice(slash + 1);
      if (last.includes('*')) {
        const dir = slash < 0 ? '' : src.slice(0, slash);
        const pslash = path.lastIndexOf('/');
        const pdir = pslash < 0 ? '' : path.slice(0, pslash);
        const name = path.slice(pslash + 1);
        if (pdir === dir && globMatch(last, name)) out = target ? `${target}/${name}` : name;
      } else if (src === '') {
        out = target ? `${target}/${path}` : path;
      } else if (path === src) {
        out = target;
      } else if (path.startsWith(`${src}/`)) {
        out = `${target}/${path.slice(src.length + 1)}`;
      }
      if (out === undefined) continue;
      matched.add(it);
      const landed = resolveInBase(scan, out);
      // Directories the base already has keep the base's metadata (implied parents), as a COPY into them would.
      if (landed === '' || scan.dirs.has(landed)) return null;
      return landed;
    }
    return null;
  };
}

/** Build the spec of one planned layer; `null` when it has nothing to add (e.g. no overlay directory). */
export async function layerBuildSpec(layer: PlannedLayer, ctx: SpecContext): Promise<LayerBuildSpec | null> {
  const entries: LayerEntrySpec[] = [];
  const checks: (() => void)[] = [];
  const byImage = new Map<string, PlannedItem[]>();
  for (const it of layer.items) {
    if (it.source.kind === 'image') {
      const list = byImage.get(it.source.ref) ?? [];
      list.push(it);
      byImage.set(it.source.ref, list);
    }
  }
  const emittedImages = new Set<string>();

  for (const it of layer.items) {
    const src = it.source;
    const meta = it.mode !== undefined ? { mode: it.mode } : {};
    switch (src.kind) {
      case 'image': {
        if (emittedImages.has(src.ref)) break;
        emittedImages.add(src.ref);
        const img = ctx.images.get(src.ref);
        if (!img) throw new CanvosError('ERR_INTERNAL', `source image ${src.ref} was not opened`);
        const items = byImage.get(src.ref) ?? [];
        const matched = new Set<PlannedItem>();
        entries.push({
          type: 'entries',
          source: mergeLayers(img.openers, { signal: ctx.signal }),
          map: imageMapper(items, matched, ctx.scan),
        });
        // Entries keep the source image's metadata (CanvOS COPY --keep-own semantics); `mode` is not applied here.
        checks.push(() => {
          for (const i of items) {
            if (!i.optional && !matched.has(i) && i.source.kind === 'image') {
              throw new CanvosError('ERR_CONFIG', `${src.ref} has no ${i.source.path} (needed for ${i.target})`, {
                hint: 'check the image reference and version (PE_VERSION, *_PROVIDER_VERSION, SPECTRO_PUB_REPO)',
              });
            }
          }
        });
        break;
      }
      case 'host-tree': {
        const kind = await exists(src.path);
        if (kind !== 'dir') {
          if (it.optional) break;
          throw missing(src.path, 'create the directory or remove it from the configuration');
        }
        entries.push({ type: 'tree', path: it.target, host: src.path, dirMode: 0o755 });
        const dirMeta = ctx.scan.dirs.get(norm(it.target));
        if (dirMeta) entries.push({ type: 'dir', path: it.target, ...dirMeta }); // keep the base's /etc metadata
        break;
      }
      case 'host-file': {
        if ((await exists(src.path)) !== 'file') {
          if (it.optional && it.missingWarning) ctx.onWarning('W_EDGE_CUSTOM_CONFIG_MISSING', it.missingWarning);
          if (it.optional) break;
          throw missing(src.path, it.missingHint ?? 'create the file or fix the path in the configuration');
        }
        entries.push({ type: 'file', path: it.target, source: { host: src.path }, ...meta });
        break;
      }
      case 'ca-certs':
        entries.push(...(await caCertsEntries(src.dir, src.distro, ctx.scan, ctx.onWarning)));
        break;
      case 'url':
        entries.push({ type: 'file', path: it.target, source: { url: src.url, sha256: src.sha256 }, ...meta });
        break;
      case 'generated':
        entries.push({ type: 'file', path: it.target, source: { inline: src.content }, ...meta });
        break;
      case 'base-edit': {
        const base = ctx.scan.files.get(norm(src.path));
        const owner = base ? { uid: base.uid, gid: base.gid } : {};
        const mode = it.mode ?? base?.mode ?? 0o644;
        let text: string;
        if (src.edit === 'kairos-release') {
          text = editKairosRelease(base?.content.toString('utf8'), ctx.config);
        } else {
          if (!base) {
            ctx.onWarning(
              'W_BASE_FILE_MISSING',
              `${src.path} is not in the base image; the SELinux/cgroup v2/nouveau kernel arguments were not applied`,
            );
            break;
          }
          text = editBootargs(base.content.toString('utf8'), ctx.config);
        }
        entries.push({ type: 'file', path: it.target, source: { inline: text }, mode, ...owner });
        break;
      }
      case 'base-match': {
        const names = (ctx.scan.children.get(norm(src.dir)) ?? []).filter((n) => globMatch(src.pattern, n));
        if (names.length) entries.push({ type: 'whiteout', paths: names.map((n) => `${norm(src.dir)}/${n}`) });
        break;
      }
    }
  }
  if (entries.length === 0) return null;
  return {
    spec: { entries },
    verify: () => {
      checks.forEach((c) => {
        c();
      });
    },
  };
}
