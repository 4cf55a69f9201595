/**
 * The ISO-level overlay in CanvOS's order (Earthfile build-iso, canvos.md §3.1): the project's
 * `overlay/files-iso/` first, then user-data → /files-iso/config.yaml, EDGE_CUSTOM_CONFIG, the grub.cfg edits,
 * the split content bundles and CLUSTERCONFIG — a later step replaces what an earlier one put at the same path.
 * AuroraBoot then writes its boot artefacts over the tree (kernel, initrd, uefi.img, El Torito images, the
 * chainload stubs, rootfs.squashfs), so files-iso entries at those paths lose; /boot/grub2/grub.cfg is the
 * project's when it has one. Every replaced project file is reported with a warning.
 */
import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  readFile,
  readdir,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CanvosError } from '../errors.js';
import { applyGrubEdits, canvosGrubMenu } from './grub-cfg.js';
import { copyInto, splitFile } from './iso-overlay.js';
import { throwIfAborted } from '../util/abort.js';

/** An entry of a files-iso directory, path relative to it with `/` separators. */
export interface FilesIsoEntry {
  path: string;
  kind: 'dir' | 'file' | 'symlink';
  /** Symlink target, verbatim. */
  target?: string | undefined;
}

/** The grub menu path inside the ISO (and inside files-iso). */
export const GRUB_MENU_PATH = 'boot/grub2/grub.cfg';

/** ISO paths the build (as AuroraBoot) writes after the overlay; a files-iso file there is replaced. */
export const GENERATED_ISO_PATHS: readonly string[] = [
  'rootfs.squashfs',
  'boot/kernel',
  'boot/initrd',
  'boot/uefi.img',
  'boot/eltorito.img',
  'boot/boot_hybrid.img',
  'boot/boot.catalog',
  'EFI/BOOT/grub.cfg',
  'boot/grub/grub.cfg',
  'EFI/ubuntu/grub.cfg',
];

/** Directories the build writes into; a files-iso symlink there could redirect those writes, so it is refused. */
const WRITTEN_DIRS = new Set([
  'boot',
  'boot/grub',
  'boot/grub2',
  'EFI',
  'EFI/BOOT',
  'EFI/ubuntu',
  'files-iso',
  'opt',
  'opt/spectrocloud',
  'opt/spectrocloud/content',
  'opt/spectrocloud/clusterconfig',
]);

/**
 * Lists a files-iso directory (depth first, sorted) and refuses what an ISO cannot carry: device files, FIFOs,
 * sockets, and non-directories where the build writes into a directory (ERR_CONFIG naming the file; also for a
 * missing `dir`).
 */
export async function scanFilesIso(dir: string): Promise<FilesIsoEntry[]> {
  const top = await stat(dir).catch(() => undefined);
  if (!top?.isDirectory())
    throw new CanvosError('ERR_CONFIG', `files-iso ${dir} does not exist or is not a directory`, {
      hint: 'pass the directory tree to copy onto the ISO (CanvOS: overlay/files-iso)',
    });
  const out: FilesIsoEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel))).sort();
    for (const n of names) {
      const p = rel ? `${rel}/${n}` : n;
      const st = await lstat(join(dir, p));
      if (!st.isDirectory() && WRITTEN_DIRS.has(p)) {
        throw new CanvosError('ERR_CONFIG', `${join(dir, p)} is not a directory, but the build writes into /${p}`, {
          hint: 'make it a real directory',
        });
      }
      if (st.isDirectory()) {
        out.push({ path: p, kind: 'dir' });
        await walk(p);
      } else if (st.isFile()) out.push({ path: p, kind: 'file' });
      else if (st.isSymbolicLink()) {
        out.push({ path: p, kind: 'symlink', target: await readlink(join(dir, p)) });
      } else {
        throw new CanvosError(
          'ERR_CONFIG',
          `${join(dir, p)}: only files, directories and symlinks can go onto the ISO`,
          {
            hint: 'remove the device file, FIFO or socket from overlay/files-iso',
          },
        );
      }
    }
  };
  await walk('');
  return out;
}

/** Inputs of {@link stageIsoOverlay}. */
export interface IsoOverlayInput {
  /** The files-iso directory and its {@link scanFilesIso} listing. */
  filesIso?: { dir: string; entries: readonly FilesIsoEntry[] } | undefined;
  /** Validated user-data bytes. */
  userData?: Buffer | undefined;
  edgeCustomConfig?: string | undefined;
  bundles: readonly string[];
  contentSplitBytes: number;
  clusterConfig?: string | undefined;
  forceInteractive?: boolean | undefined;
  debug?: boolean | undefined;
  grubTimeout?: number | undefined;
  onWarning?: ((code: string, message: string) => void) | undefined;
  signal?: AbortSignal | undefined;
}

const exists = (p: string): Promise<boolean> =>
  lstat(p).then(
    () => true,
    () => false,
  );

/** Writes the overlay into `iso` (which already holds the generated boot files), in CanvOS's order. */
export async function stageIsoOverlay(iso: string, input: IsoOverlayInput): Promise<void> {
  const warn = input.onWarning ?? (() => {});
  const fromProject = new Set<string>();
  const fi = input.filesIso;
  if (fi) {
    let skipped: string | undefined;
    for (const e of fi.entries) {
      if (skipped !== undefined && e.path.startsWith(`${skipped}/`)) continue;
      const dest = join(iso, e.path);
      const there = await lstat(dest).catch(() => undefined);
      if (e.kind === 'dir' && (!there || there.isDirectory())) {
        await mkdir(dest, { recursive: true });
        continue;
      }
      if (there && GENERATED_ISO_PATHS.includes(e.path)) {
        warn(
          'W_FILES_ISO_REPLACED',
          `${join(fi.dir, e.path)} is not used: the build generates /${e.path} (as AuroraBoot does)`,
        );
        skipped = e.path;
        continue;
      }
      if (there) {
        throw new CanvosError('ERR_CONFIG', `${join(fi.dir, e.path)} clashes with /${e.path} the build generates`, {
          hint: 'remove it from overlay/files-iso',
        });
      }
      throwIfAborted(input.signal);
      if (e.kind === 'symlink') await symlink(e.target ?? '', dest);
      else await copyFile(join(fi.dir, e.path), dest);
      fromProject.add(e.path);
    }
  }
  /** CanvOS steps after the files-iso COPY: they replace a project file at the same path. */
  const replacing = async (rel: string, what: string): Promise<string> => {
    if (fromProject.delete(rel)) {
      warn(
        'W_FILES_ISO_REPLACED',
        `${join(fi?.dir ?? '', rel)} is replaced by ${what} (CanvOS copies it after overlay/files-iso)`,
      );
      await rm(join(iso, rel), { force: true, recursive: true });
    }
    await mkdir(join(iso, rel, '..'), { recursive: true });
    return join(iso, rel);
  };

  if (input.userData) await writeFile(await replacing('files-iso/config.yaml', 'the user-data'), input.userData);
  if (input.edgeCustomConfig)
    await copyFile(input.edgeCustomConfig, await replacing('.edge_custom_config.yaml', 'EDGE_CUSTOM_CONFIG'));

  const grubOpts = { forceInteractive: input.forceInteractive, debug: input.debug, timeout: input.grubTimeout };
  const menu = join(iso, GRUB_MENU_PATH);
  if (fromProject.has(GRUB_MENU_PATH) && (await lstat(menu)).isSymbolicLink()) {
    warn(
      'W_GRUB_SYMLINK',
      `${join(fi?.dir ?? '', GRUB_MENU_PATH)} is a symlink: it goes onto the ISO as it is, without the DEFAULT_ENTRY/DEBUG edits`,
    );
  } else if (fromProject.has(GRUB_MENU_PATH)) {
    const text = await readFile(menu, 'utf8');
    if (input.forceInteractive && !text.includes('{{DEFAULT_ENTRY}}')) {
      warn(
        'W_GRUB_NO_DEFAULT_ENTRY',
        `${join(fi?.dir ?? '', GRUB_MENU_PATH)} has no {{DEFAULT_ENTRY}}: FORCE_INTERACTIVE_INSTALL=true has no effect on its default entry`,
      );
    }
    if (input.debug && !/rd.immucore.sysrootwait/.test(text)) {
      warn(
        'W_GRUB_NO_DEBUG_LINE',
        `${join(fi?.dir ?? '', GRUB_MENU_PATH)} has no line with rd.immucore.sysrootwait: DEBUG=true adds no kernel parameters`,
      );
    }
    await writeFile(menu, applyGrubEdits(text, grubOpts));
  } else {
    await mkdir(join(menu, '..'), { recursive: true });
    await writeFile(menu, canvosGrubMenu(grubOpts));
  }

  // CanvOS's own files-iso carries an empty content/Readme.txt; a project without one gets it too.
  const content = join(iso, 'opt', 'spectrocloud', 'content');
  await mkdir(content, { recursive: true });
  if (!(await exists(join(content, 'Readme.txt')))) await writeFile(join(content, 'Readme.txt'), '');
  if (input.userData) {
    // AuroraBoot's --cloud-config location (a canvos-lite extra, read by Kairos from the live medium root).
    if (fromProject.has('config.yaml')) {
      warn(
        'W_FILES_ISO_CONFIG',
        `${join(fi?.dir ?? '', 'config.yaml')} stays at /config.yaml; the user-data is only at /files-iso/config.yaml`,
      );
    } else await writeFile(join(iso, 'config.yaml'), input.userData);
  }
  for (const b of input.bundles) {
    // Project files named like the parts are replaced (removed first: split must not write through a symlink).
    for (const rel of [...fromProject].filter((r) => r.startsWith(`opt/spectrocloud/content/${basename(b)}_part`))) {
      await replacing(rel, `a part of content bundle ${b}`);
    }
    await splitFile(b, content, input.contentSplitBytes, input.signal);
  }
  if (input.clusterConfig)
    await copyInto(input.clusterConfig, await replacing('opt/spectrocloud/clusterconfig/spc.tgz', 'CLUSTERCONFIG'));
}

/**
 * Gives `dir` and every staged directory below mode 0755 and every file 0644, or 0755 when its owner may execute
 * it, so the ISO's Rock Ridge modes do not depend on the builder's umask. Symlinks and files with more than one
 * link (a caller's squashfs hard-linked into the staging area) are left alone.
 */
export async function normalizeTreeModes(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) await normalizeTreeModes(p);
    else if (d.isFile()) {
      const st = await stat(p);
      const mode = st.mode & 0o100 ? 0o755 : 0o644;
      if (st.nlink === 1 && (st.mode & 0o7777) !== mode) await chmod(p, mode);
    }
  }
}
