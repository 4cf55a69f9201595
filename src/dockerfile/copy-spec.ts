/**
 * A COPY/ADD step → the LayerSpec of its layer, with Docker's semantics: sources are context paths or globs
 * (`.dockerignore`d paths do not exist), a source directory contributes its contents, the destination is a
 * directory when it ends in `/`, when there are several sources, or when the image already has a directory there;
 * `--chmod` applies to files and directories, `--chown` names are looked up in the image's /etc/passwd and
 * /etc/group (as the earlier layers left them); ADD extracts local tar archives (plain, gzip, bzip2, xz, zstd) and fetches URLs only with --checksum.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { CanvosError } from '../errors.js';
import type { FsEntry } from '../tar/entry.js';
import { readLayer } from '../layers/read.js';
import { normalizeLayerPath } from '../layers/path.js';
import type { LayerEntrySpec, LayerSpec } from '../layers/spec.js';
import { resolveInBase, type BaseScan } from '../provider/base-scan.js';
import { contextChildren, globContext, hasGlob, type BuildContext, type ContextEntry } from './context.js';
import type { CopyStep } from './evaluate.js';
import { dockerfileError } from './parse.js';

/** What a COPY/ADD needs besides the step. */
export interface CopyEnv {
  ctx: BuildContext;
  /** Dockerfile name for messages. */
  file: string;
  scan: Pick<BaseScan, 'dirs' | 'links' | 'files'>;
  /** Directories earlier steps of this Dockerfile created (normalised paths). Updated. */
  createdDirs: Set<string>;
  signal?: AbortSignal | undefined;
}

const norm = (p: string): string => normalizeLayerPath(p) ?? p.replace(/^\/+/, '');

/** Look `name` up in a passwd/group file's text: its numeric id (and primary gid for passwd). */
function lookup(text: string | undefined, name: string): [number, number] | undefined {
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined && /^\d+$/.test(f[2])) return [Number(f[2]), Number(f[3] ?? f[2])];
  }
  return undefined;
}

/** `--chown=user[:group]` → uid/gid, numeric or resolved against the base image. */
export function resolveChown(spec: string, scan: CopyEnv['scan'], where: () => never): { uid: number; gid: number } {
  const [user = '', group] = spec.split(':');
  const passwd = scan.files.get('etc/passwd')?.content.toString('utf8');
  const groups = scan.files.get('etc/group')?.content.toString('utf8');
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(user)) uid = Number(user);
  else {
    const u = lookup(passwd, user);
    if (!u) return where();
    [uid, gid] = u;
  }
  if (group !== undefined) {
    if (/^\d+$/.test(group)) gid = Number(group);
    else {
      const g = lookup(groups, group);
      if (!g) return where();
      gid = g[0];
    }
  }
  return { uid, gid: gid ?? uid };
}

type Archive = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'tar';

async function sniffArchive(path: string): Promise<Archive | undefined> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(512);
    const { bytesRead } = await fh.read(b, 0, 512, 0);
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    if (bytesRead >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
    if (bytesRead >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
    if (bytesRead >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    if (bytesRead === 512 && b.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return undefined;
  } finally {
    await fh.close();
  }
}

/**
 * A tar archive's bytes, decompressed by `bzip2`/`xz` for the formats readLayer does not sniff. Started only when
 * read (a child spawned early loses its output before the layer builder gets to it).
 */
async function* archiveBytes(path: string, kind: Archive, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  if (kind !== 'bzip2' && kind !== 'xz') {
    yield* createReadStream(path) as AsyncIterable<Buffer>;
    return;
  }
  const child = spawn(kind, ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-2000)));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      resolve(code ?? -1);
    });
  });
  yield* child.stdout as AsyncIterable<Buffer>;
  const code = await exited.catch((e: unknown) => {
    throw new CanvosError('ERR_CONFIG', `cannot decompress ${path}: ${(e as Error).message}`, {
      hint: `install ${kind} (apt-get install ${kind === 'xz' ? 'xz-utils' : 'bzip2'})`,
    });
  });
  if (code !== 0)
    throw new CanvosError(
      'ERR_LAYER_CORRUPT',
      `${kind} -dc ${path} exited ${code}: ${stderr.trim().split('\n').pop() ?? ''}`,
    );
}

async function* withOwner(src: AsyncIterable<FsEntry>, o: { uid: number; gid: number }): AsyncGenerator<FsEntry> {
  for await (const e of src) yield { ...e, uid: o.uid, gid: o.gid, uname: '', gname: '' };
}

/** Build the LayerSpec of a COPY/ADD step. Throws ERR_CONFIG naming `Dockerfile:LINE`. */
export async function copyLayerSpec(step: CopyStep, env: CopyEnv): Promise<LayerSpec> {
  const fail = (msg: string, hint?: string): never => {
    throw dockerfileError(env.file, step.ins.line, msg, hint);
  };
  const owner = step.chown
    ? resolveChown(step.chown, env.scan, () =>
        fail(
          `--chown=${step.chown}: no such user or group in the image's /etc/passwd or /etc/group`,
          'use numeric ids (--chown=1000:1000), or create the user first (in BASE_IMAGE or an earlier RUN)',
        ),
      )
    : { uid: 0, gid: 0 };
  const placed = (p: string): string => resolveInBase(env.scan, norm(p));
  const destNorm = placed(step.dest);
  const isDirInImage = env.scan.dirs.has(destNorm) || env.createdDirs.has(destNorm) || destNorm === '';
  const entries: LayerEntrySpec[] = [];
  const chmod = step.chmod;
  const fileMeta = (mode: number) => ({ mode: chmod ?? mode, uid: owner.uid, gid: owner.gid });

  // Resolve every source first: Docker decides "destination is a directory" from the full list.
  type Src =
    | { kind: 'url'; url: string }
    | { kind: 'heredoc'; name: string; content: string }
    | { kind: 'ctx'; entry: ContextEntry };
  const srcs: Src[] = [];
  for (const s of step.sources) {
    const hd = /^\d?<<-?(["']?)([A-Za-z0-9_.-]+)\1$/.exec(s);
    if (hd && step.heredocs.has(hd[2] as string)) {
      srcs.push({ kind: 'heredoc', name: hd[2] as string, content: step.heredocs.get(hd[2] as string) as string });
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
      if (!step.add) fail(`COPY cannot fetch ${s}`, 'use ADD --checksum=sha256:… for URLs');
      if (!/^https?:\/\//i.test(s)) fail(`ADD of ${s.split(':')[0]} URLs is not supported (only http and https)`);
      if (!step.checksum)
        fail(
          `ADD of a URL needs --checksum=sha256:<hex> (${s})`,
          "add --checksum=sha256:<the file's sha256> so the build stays reproducible",
        );
      srcs.push({ kind: 'url', url: s });
    } else {
      const rel = posix.normalize(s).replace(/^\/+/, '').replace(/\/+$/, '');
      if (rel === '..' || rel.startsWith('../')) fail(`${s} is outside the build context (the project directory)`);
      const cleaned = rel === '.' ? '' : rel;
      if (hasGlob(cleaned)) {
        const matched = globContext(env.ctx, cleaned);
        if (matched.length === 0)
          fail(`no files in the project directory match ${s}`, 'check the pattern and .dockerignore');
        for (const entry of matched) srcs.push({ kind: 'ctx', entry });
      } else {
        const entry =
          cleaned === '' ? { rel: '', type: 'dir' as const, mode: 0o755, size: 0 } : env.ctx.entries.get(cleaned);
        if (!entry)
          fail(`${s} does not exist in the project directory`, 'create it, fix the path, or check .dockerignore');
        srcs.push({ kind: 'ctx', entry: entry as ContextEntry });
      }
    }
  }
  if (step.sources.length > 1 || srcs.length > 1) {
    if (!step.dest.endsWith('/'))
      fail(`with more than one source file, the destination must be a directory and end with a / (${step.dest})`);
  }
  const destIsDir = step.dest.endsWith('/') || srcs.length > 1 || isDirInImage;
  const target = (name: string): string => (destIsDir ? posix.join('/', destNorm, name) : `/${destNorm}`);

  for (const src of srcs) {
    if (src.kind === 'heredoc') {
      entries.push({ type: 'file', path: target(src.name), source: { inline: src.content }, ...fileMeta(0o644) });
    } else if (src.kind === 'url') {
      const name = posix.basename(new URL(src.url).pathname) || 'download';
      entries.push({
        type: 'file',
        path: target(name),
        source: { url: src.url, sha256: step.checksum as string },
        ...fileMeta(0o600),
      });
    } else {
      const e = src.entry;
      const host = join(env.ctx.dir, e.rel);
      if (e.type === 'dir') {
        const root = `/${destNorm}`;
        // The directory's contents go into the destination; the destination itself takes the source's mode only if new.
        if (!isDirInImage && destNorm !== '') entries.push({ type: 'dir', path: root, ...fileMeta(e.mode) });
        for (const c of contextChildren(env.ctx, e.rel)) {
          const p = posix.join(root, e.rel === '' ? c.rel : c.rel.slice(e.rel.length + 1));
          if (c.type === 'dir') entries.push({ type: 'dir', path: p, ...fileMeta(c.mode) });
          else if (c.type === 'symlink')
            entries.push({ type: 'symlink', path: p, target: c.link ?? '', uid: owner.uid, gid: owner.gid });
          else entries.push({ type: 'file', path: p, source: { host: join(env.ctx.dir, c.rel) }, ...fileMeta(c.mode) });
        }
        env.createdDirs.add(destNorm);
        continue;
      }
      const archive = step.add && e.type === 'file' ? await sniffArchive(host) : undefined;
      if (archive) {
        const root = destNorm;
        const extracted = readLayer(archiveBytes(host, archive, env.signal), { name: e.rel, signal: env.signal });
        // --chown applies to the extracted entries too (BuildKit); without it they keep the archive's owners.
        const source = step.chown ? withOwner(extracted, owner) : extracted;
        entries.push({ type: 'entries', source, map: (p) => placed(root ? `${root}/${p}` : p) || null });
        env.createdDirs.add(root);
        continue;
      }
      const path = target(posix.basename(e.rel));
      if (e.type === 'symlink')
        entries.push({ type: 'symlink', path, target: e.link ?? '', uid: owner.uid, gid: owner.gid });
      else entries.push({ type: 'file', path, source: { host }, ...fileMeta(e.mode) });
    }
  }
  if (destIsDir) env.createdDirs.add(destNorm);
  // Land every explicit path where the rootfs's symlinks put it (usr-merged /lib → /usr/lib), as COPY does.
  for (const en of entries) if ('path' in en) en.path = `/${placed(en.path)}`;
  return { entries };
}
