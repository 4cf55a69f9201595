/**
 * ext4 partition images from a host directory with e2fsprogs, rootless and reproducible: `mke2fs -d` populates the
 * file system without mounting it, with a fixed UUID and directory hash seed and E2FSPROGS_FAKE_TIME for the
 * superblock; then one `debugfs -w` pass sets every inode to uid/gid 0 and all four timestamps to
 * SOURCE_DATE_EPOCH (mke2fs copies owners and the unsettable ctime from the host files).
 */
import { readdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { runTool } from './tool.js';

const HINT = 'install e2fsprogs (apt-get install e2fsprogs)';

/** Options of {@link writeExt4Image}. */
export interface Ext4ImageOptions {
  /** File system label, e.g. COS_OEM. */
  label: string;
  /** File system UUID (also the htree hash seed). */
  uuid: string;
  /** Image size in bytes (a multiple of 1 MiB). */
  sizeBytes: number;
  /** Every inode's timestamps. */
  sourceDateEpoch: number;
  /** mke2fs program. Default: 'mke2fs'. */
  mke2fs?: string | undefined;
  /** debugfs program. Default: 'debugfs'. */
  debugfs?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
}

/** Every path under `dir`, `/`-rooted, parents first. */
async function listTree(dir: string, rel = '/'): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(join(dir, rel), { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = posix.join(rel, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await listTree(dir, p)));
  }
  return out;
}

/** debugfs commands that normalise owner and times of `paths`. */
export function normaliseCommands(paths: readonly string[], epoch: number): string {
  const lines: string[] = [];
  for (const p of paths) {
    // debugfs splits on blanks; quote paths (ours never contain quotes).
    const q = `"${p}"`;
    lines.push(`sif ${q} uid 0`, `sif ${q} gid 0`);
    for (const f of ['atime', 'mtime', 'ctime', 'crtime'])
      lines.push(`sif ${q} ${f} @${epoch}`, `sif ${q} ${f}_extra 0`);
  }
  return `${lines.join('\n')}\n`;
}

/** Writes `out` as an ext4 image holding the tree under `srcDir`. */
export async function writeExt4Image(srcDir: string, out: string, opts: Ext4ImageOptions): Promise<void> {
  const env = {
    ...(opts.env ?? process.env),
    E2FSPROGS_FAKE_TIME: String(opts.sourceDateEpoch),
    MKE2FS_CONFIG: '/dev/null',
  };
  const args = [
    '-q',
    '-F',
    '-t',
    'ext4',
    '-b',
    '4096',
    '-L',
    opts.label,
    '-U',
    opts.uuid,
    '-E',
    `root_owner=0:0,hash_seed=${opts.uuid},lazy_itable_init=0,lazy_journal_init=0`,
    '-O',
    'ext_attr,dir_index,filetype,extent,flex_bg,sparse_super,large_file,huge_file,dir_nlink,extra_isize,64bit,metadata_csum,has_journal',
    '-I',
    '256',
    '-d',
    srcDir,
    out,
    `${Math.floor(opts.sizeBytes / 1024)}k`,
  ];
  await runTool(opts.mke2fs ?? 'mke2fs', args, { hint: HINT, env, signal: opts.signal, watch: [out] });
  const paths = ['/', '/lost+found', ...(await listTree(srcDir))];
  await runTool(opts.debugfs ?? 'debugfs', ['-w', '-f', '-', out], {
    hint: HINT,
    env,
    input: normaliseCommands(paths, opts.sourceDateEpoch),
    signal: opts.signal,
    watch: [out],
  });
}
