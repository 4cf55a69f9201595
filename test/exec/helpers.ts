/**
 * Shared parts of the executor tests: run test/exec/driver.mjs (the library, from dist/) as the unprivileged user,
 * a tiny busybox base layer written with the project's own tar writer (arbitrary owners, xattrs and hardlinks
 * without root), and reading a captured layer back.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FsEntry } from '../../src/tar/entry.js';
import type { PlannedEntry } from '../../src/tar/header.js';
import { readLayer } from '../../src/layers/read.js';
import { tarBytes } from '../../src/tar/write.js';
import { run } from '../helpers/tools.js';
import { asUnprivileged } from '../helpers/unprivileged.js';

const DRIVER = fileURLToPath(new URL('./driver.mjs', import.meta.url));

/** One JSON event of the driver. */
export type DriverEvent = { event: string; [k: string]: unknown };

/** Run the driver; it is killed after `timeoutMs` (below vitest's test timeout, so no driver outlives its test). */
export async function runDriver(
  dir: string,
  cfg: Record<string, unknown>,
  env: Record<string, string> = {},
  timeoutMs = 100_000,
): Promise<{ events: DriverEvent[]; stderr: string; ms: number }> {
  const cfgPath = join(dir, `cfg-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(cfgPath, JSON.stringify(cfg), { mode: 0o644 });
  const argv = asUnprivileged([
    'env',
    'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
    `HOME=${dir}`,
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    process.execPath,
    DRIVER,
    cfgPath,
  ]);
  const t0 = Date.now();
  const r = await run(argv[0]!, argv.slice(1), { cwd: dir, timeoutMs });
  const events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as DriverEvent);
  if (!events.some((e) => e.event === 'done'))
    throw new Error(`driver exited ${r.code} without finishing: ${r.stderr.slice(-3000)}`);
  return { events, stderr: r.stderr, ms: Date.now() - t0 };
}

/** The entries of a tar file, with file contents read (small layers only). */
export async function readTar(path: string): Promise<Array<Omit<FsEntry, 'content'> & { data?: Buffer }>> {
  const out: Array<Omit<FsEntry, 'content'> & { data?: Buffer }> = [];
  for await (const e of readLayer(createReadStream(path))) {
    const { content, ...meta } = e;
    if (content) {
      const parts: Buffer[] = [];
      for await (const c of content) parts.push(c as Buffer);
      out.push({ ...meta, data: Buffer.concat(parts) });
    } else out.push(meta);
  }
  return out;
}

const T = 1_600_000_000;

/** A v2 file capability (VFS_CAP_REVISION_2, effective) granting cap_net_raw. */
export const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');

/** A tiny base layer: static busybox with applet links, users root/app, and a /data tree to change. */
export async function writeTinyBase(path: string): Promise<void> {
  const busybox = readFileSync('/bin/busybox');
  const dir = (p: string, uid = 0, mode = 0o755): PlannedEntry => ({
    path: p,
    type: 'directory',
    mode,
    uid,
    gid: uid,
    mtime: T,
    size: 0,
  });
  const file = (p: string, body: string | Buffer, extra: Partial<PlannedEntry> = {}): PlannedEntry => {
    const buf = Buffer.from(body);
    return { path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: T, size: buf.length, data: { buf }, ...extra };
  };
  const link = (p: string, target: string): PlannedEntry => ({
    path: p,
    type: 'symlink',
    mode: 0o777,
    uid: 0,
    gid: 0,
    mtime: T,
    size: 0,
    linkname: target,
  });
  const applets = [
    'sh',
    'echo',
    'rm',
    'mkdir',
    'ln',
    'chown',
    'touch',
    'id',
    'sleep',
    'cat',
    'env',
    'ls',
    'stat',
    'wget',
  ];
  const entries: PlannedEntry[] = [
    dir('bin'),
    file('bin/busybox', busybox, { mode: 0o755 }),
    file('bin/capped', '#!/bin/sh\n', { mode: 0o755, xattrs: { 'security.capability': CAP_NET_RAW } }),
    ...applets.map((a) => link(`bin/${a}`, 'busybox')),
    dir('data'),
    file('data/del', 'delete me\n'),
    dir('data/dir'),
    file('data/dir/old', 'old\n'),
    file('data/h1', 'linked\n'),
    { path: 'data/h2', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: T, size: 0, linkname: 'data/h1' },
    file('data/keep', 'keep\n', { uid: 1000, gid: 50, mode: 0o640 }),
    file('data/xfile', 'x\n', { xattrs: { 'user.canvos': Buffer.from('hello') } }),
    dir('etc'),
    file('etc/group', 'root:x:0:\nstaff:x:50:app\napp:x:1000:\n'),
    file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n'),
    dir('home'),
    dir('home/app', 1000),
  ];
  const chunks: Buffer[] = [];
  for await (const c of tarBytes(entries)) chunks.push(c);
  await writeFile(path, Buffer.concat(chunks), { mode: 0o644 });
}

/** `run` that throws on a non-zero exit. */
export async function mustRun(argv: string[], cwd?: string): Promise<string> {
  const r = await run(argv[0]!, argv.slice(1), { cwd, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}
