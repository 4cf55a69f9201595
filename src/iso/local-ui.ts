/**
 * local-ui.tar: CanvOS extracts it into /opt/spectrocloud of the installer rootfs after copying the rootfs
 * (Earthfile build-iso 528–532), so its files win over the image's. Here it becomes the top layer of the merged
 * rootfs: its entries relocated under opt/spectrocloud/ and streamed into the squashfs, never unpacked. The layer
 * reader's safety rules apply (no `..` in paths or hardlink targets, bounded headers); OCI whiteout names are
 * refused too (`tar -xf` would create them as plain files, in a layer they would delete files).
 */
import { createReadStream } from 'node:fs';
import { CanvosError } from '../errors.js';
import type { FsEntry } from '../tar/entry.js';
import type { LayerOpener } from '../layers/merge.js';
import { baseName } from '../layers/path.js';
import { readLayer } from '../layers/read.js';
import { entriesToTar } from '../tar/write.js';

/** Where CanvOS extracts local-ui.tar in the rootfs. */
export const LOCAL_UI_DIR = 'opt/spectrocloud';

/** The entries of `file` (tar, optionally gzip/zstd compressed like `tar -xf` accepts) relocated under {@link LOCAL_UI_DIR}. */
async function* localUiEntries(file: string, signal?: AbortSignal): AsyncGenerator<FsEntry> {
  const under = (p: string): string => (p === '' ? LOCAL_UI_DIR : `${LOCAL_UI_DIR}/${p}`);
  for await (const e of readLayer(createReadStream(file), { name: file, signal })) {
    if (baseName(e.path).startsWith('.wh.')) {
      e.content?.resume();
      throw new CanvosError(
        'ERR_TAR_UNSAFE',
        `${file}: entry ${e.path} has a whiteout name (.wh.*), which would delete files of the installer rootfs`,
        {
          hint: 'rename or remove that entry from local-ui.tar',
        },
      );
    }
    yield {
      ...e,
      path: under(e.path),
      linkname: e.type === 'hardlink' && e.linkname !== undefined ? under(e.linkname) : e.linkname,
    };
  }
}

/**
 * Reads `file` through once and throws what extracting it would throw (ERR_CONFIG when it is missing, ERR_TAR_UNSAFE
 * or ERR_LAYER_CORRUPT for its entries), so a bad tar fails before the long squashfs step. Returns its entry count.
 */
export async function checkLocalUi(file: string, signal?: AbortSignal): Promise<number> {
  let n = 0;
  try {
    for await (const e of localUiEntries(file, signal)) {
      e.content?.resume();
      n++;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EISDIR') {
      throw new CanvosError('ERR_CONFIG', `cannot read local-ui ${file}: ${(e as NodeJS.ErrnoException).code}`, {
        cause: e,
        hint: 'pass the local-ui.tar file',
      });
    }
    throw e;
  }
  return n;
}

/** A layer opener serving `file` as a tar layer of entries under /opt/spectrocloud (stack it last). */
export function localUiLayer(file: string, signal?: AbortSignal): LayerOpener {
  return () => Promise.resolve(entriesToTar(localUiEntries(file, signal), signal));
}
