/**
 * The COS_CONTENT partition of CanvOS's cloud and MAAS images (add-content-partition.sh, build-kairos-maas.sh):
 * an ext4 file system labelled COS_CONTENT, GPT name COS_CONTENT, type Linux, placed right after COS_RECOVERY,
 * holding `bundle-content/` (the `.zst` and `.tar` content bundles), `spc-config/spc.tgz` (CLUSTERCONFIG) and
 * `edge-config/.edge_custom_config.yaml`. On first boot of the installed system the image's cloud-content.sh /
 * maas-content.sh extract them and delete the partition. Sized as CanvOS sizes it: the files + 20 % + 100 MiB;
 * absent when there is nothing to carry.
 */
import { copyFile, link, mkdir, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CanvosError } from '../errors.js';
import { throwIfAborted } from '../util/abort.js';
import { writeExt4Image } from './ext4.js';

/** What goes on COS_CONTENT. */
export interface DiskContent {
  /** Content bundle files (`.zst` / `.tar`) → bundle-content/<name>. */
  bundles?: readonly string[] | undefined;
  /** CLUSTERCONFIG → spc-config/spc.tgz. */
  clusterConfig?: string | undefined;
  /** EDGE_CUSTOM_CONFIG → edge-config/.edge_custom_config.yaml. */
  edgeCustomConfig?: string | undefined;
}

export const CONTENT_LABEL = 'COS_CONTENT';
const MIB = 1024 * 1024;

/**
 * The content bundles of `dirs` as CanvOS's cloud image collects them (it copies every content-* directory into
 * /workdir, then takes each `.zst` / `.tar` file directly in /workdir): regular files at the top of each directory, a later directory's file
 * replacing an earlier one of the same name.
 */
export async function contentBundles(dirs: readonly string[]): Promise<string[]> {
  const byName = new Map<string, string>();
  for (const dir of dirs) {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.isFile() && /\.(zst|tar)$/.test(e.name)) byName.set(e.name, join(dir, e.name));
    }
  }
  return [...byName.values()];
}

/** Whether `c` puts anything on the partition. */
export function hasContent(c: DiskContent | undefined): boolean {
  return !!c && ((c.bundles?.length ?? 0) > 0 || !!c.clusterConfig || !!c.edgeCustomConfig);
}

/** Writes the COS_CONTENT ext4 image `out` from `c` (staged in `dir`); returns its size in MiB. */
export async function writeContentImage(
  c: DiskContent,
  dir: string,
  out: string,
  ext4: {
    uuid: string;
    sourceDateEpoch: number;
    env?: NodeJS.ProcessEnv | undefined;
    signal?: AbortSignal | undefined;
  },
): Promise<number> {
  const files: [string, string][] = [];
  for (const b of c.bundles ?? []) files.push([b, join('bundle-content', basename(b))]);
  if (c.clusterConfig) files.push([c.clusterConfig, join('spc-config', 'spc.tgz')]);
  if (c.edgeCustomConfig) files.push([c.edgeCustomConfig, join('edge-config', '.edge_custom_config.yaml')]);
  for (const sub of ['bundle-content', 'spc-config', 'edge-config']) await mkdir(join(dir, sub), { recursive: true });
  let bytes = 0;
  for (const [from, to] of files) {
    const st = await stat(from).catch(() => undefined);
    if (!st?.isFile()) throw new CanvosError('ERR_CONFIG', `content file ${from} does not exist or is not a file`);
    bytes += st.size;
    // A hard link when the staging dir is on the same file system (bundles can be gigabytes), else a copy.
    await link(from, join(dir, to)).catch(() => copyFile(from, join(dir, to)));
    throwIfAborted(ext4.signal);
  }
  const sizeMiB = Math.ceil((bytes + Math.floor(bytes / 5) + 100 * MIB) / MIB);
  await writeExt4Image(dir, out, { ...ext4, label: CONTENT_LABEL, sizeBytes: sizeMiB * MIB });
  return sizeMiB;
}
