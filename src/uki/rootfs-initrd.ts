/**
 * A UKI's inputs from an image rootfs, the way enki build-uki makes them: the whole rootfs becomes the initrd
 * (gzip'd newc cpio; /sys /proc /dev /run /tmp kept empty, /init -> /usr/bin/immucore unless the image has an
 * /init), the kernel is /boot/vmlinuz (or the only /boot/vmlinuz-*), .uname its release, .osrel /etc/os-release.
 * Also picks up the image's own systemd-boot and stub (/usr/kairos, as recent enki prefers) and its systemd
 * version (libsystemd-shared-NNN). One pass over the rootfs stream; only the captured files go to disk apart.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { posix, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { CanvosError } from '../errors.js';
import { endStream } from '../fs-util.js';
import type { FsEntry } from '../layers/entry.js';
import { CpioWriter, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG } from './cpio.js';

/** What {@link rootfsUkiInputs} found and wrote. */
export interface RootfsUkiInputs {
  /** The gzip'd cpio of the rootfs. */
  initrd: string;
  kernel: string;
  uname: string;
  osRelease: string;
  /** /usr/kairos/linuxx64.efi.stub and systemd-bootx64.efi of the image, when it ships them. */
  stub?: string;
  systemdBoot?: string;
  /** systemd's major version in the image (from libsystemd-shared-NNN.so), when found. */
  systemdVersion?: number;
  /** The image's /usr/bin/kairos-agent, when it has one (UKI provider images carry it). */
  kairosAgent?: string;
}

const EMPTY_DIRS = ['sys', 'proc', 'dev', 'run', 'tmp'];
const EXTRA_DIRS = ['oem', 'efi', 'usr', 'usr/local', 'usr/local/cloud-config'];
const CAPTURE =
  /^(boot\/vmlinuz-.+|etc\/os-release|usr\/lib\/os-release|usr\/kairos\/(linuxx64\.efi\.stub|systemd-bootx64\.efi)|usr\/bin\/kairos-agent)$/;

const typeBits: Record<FsEntry['type'], number> = {
  file: S_IFREG,
  hardlink: S_IFREG,
  directory: S_IFDIR,
  symlink: S_IFLNK,
  char: S_IFCHR,
  block: S_IFBLK,
  fifo: S_IFIFO,
};

/** Streams `rootfs` into `<workDir>/initrd` and captures the UKI's other inputs into `workDir`. */
export async function rootfsUkiInputs(
  rootfs: AsyncIterable<FsEntry>,
  workDir: string,
  signal?: AbortSignal,
): Promise<RootfsUkiInputs> {
  const initrd = join(workDir, 'initrd');
  const gz = createGzip({ level: 6 });
  const done = pipeline(gz, createWriteStream(initrd), ...(signal ? [{ signal }] : []));
  const w = new CpioWriter(gz);
  const links = new Map<string, string>();
  const captured = new Map<string, string>();
  const inodes = new Map<string, number>();
  const seen = new Set<string>();
  let ino = 1;
  let systemdVersion: number | undefined;
  try {
    for await (const e of rootfs) {
      signal?.throwIfAborted();
      if (e.path === '' || EMPTY_DIRS.some((d) => e.path.startsWith(`${d}/`))) {
        e.content?.resume();
        continue;
      }
      seen.add(e.path);
      const sd = /(?:^|\/)libsystemd-shared-(\d+)[^/]*\.so$/.exec(e.path);
      if (sd) systemdVersion = Math.max(systemdVersion ?? 0, Number(sd[1]));
      const base = { name: e.path, uid: e.uid, gid: e.gid, mtime: e.mtime, mode: typeBits[e.type] | (e.mode & 0o7777) };
      if (e.type === 'symlink') {
        links.set(e.path, e.linkname ?? '');
        await w.record({ ...base, nlink: 1, ino: ino++ }, Buffer.from(e.linkname ?? ''));
      } else if (e.type === 'hardlink') {
        // the kernel links a record to an earlier one with the same inode when both say nlink >= 2
        await w.record({ ...base, nlink: 2, ino: inodes.get(e.linkname ?? '') ?? ino++ });
      } else if (e.type === 'file') {
        const n = ino++;
        inodes.set(e.path, n);
        await w.header({ ...base, nlink: 2, ino: n, size: e.size }); // nlink 2: see hardlink above
        const capture = CAPTURE.test(e.path) ? join(workDir, `cap-${captured.size}`) : undefined;
        const copy = capture ? createWriteStream(capture) : undefined;
        let got = 0;
        for await (const chunk of e.content ?? []) {
          const b = chunk as Buffer;
          got += b.length;
          await w.data(b);
          if (copy && !copy.write(b)) await once(copy, 'drain');
        }
        if (got !== e.size)
          throw new CanvosError('ERR_LAYER_CORRUPT', `${e.path}: ${got} bytes read, ${e.size} expected`);
        await w.end();
        if (copy && capture) {
          await endStream(copy);
          captured.set(e.path, capture);
        }
      } else {
        await w.record({
          ...base,
          nlink: e.type === 'directory' ? 2 : 1,
          ino: ino++,
          rdevmajor: e.devmajor ?? 0,
          rdevminor: e.devminor ?? 0,
        });
      }
    }
    const now = { uid: 0, gid: 0, mtime: 0, nlink: 2 };
    for (const d of [...EMPTY_DIRS, ...EXTRA_DIRS])
      if (!seen.has(d)) await w.record({ ...now, name: d, mode: S_IFDIR | 0o755, ino: ino++ });
    if (!seen.has('dev/console'))
      await w.record({
        ...now,
        nlink: 1,
        name: 'dev/console',
        mode: S_IFCHR | 0o600,
        ino: ino++,
        rdevmajor: 5,
        rdevminor: 1,
      });
    if (!seen.has('init'))
      await w.record(
        { ...now, nlink: 1, name: 'init', mode: S_IFLNK | 0o777, ino: ino++ },
        Buffer.from('/usr/bin/immucore'),
      );
    await w.trailer();
    gz.end();
    await done;
  } catch (e) {
    gz.destroy();
    await done.catch(() => {});
    throw e;
  }
  return ukiInputsFrom(initrd, captured, links, systemdVersion);
}

/** The UKI inputs among the captured files: the kernel (through the image's symlinks), os-release, stub, agent. */
async function ukiInputsFrom(
  initrd: string,
  captured: ReadonlyMap<string, string>,
  links: ReadonlyMap<string, string>,
  systemdVersion: number | undefined,
): Promise<RootfsUkiInputs> {
  // resolve a path through the image's symlinks (relative or absolute targets)
  const resolve = (p: string): string => {
    let cur = p;
    for (let i = 0; i < 16 && links.has(cur); i++) {
      const t = links.get(cur) as string;
      cur = t.startsWith('/') ? t.slice(1) : posix.normalize(posix.join(posix.dirname(cur), t));
    }
    return cur;
  };
  const kernels = [...captured.keys()].filter((p) => /^boot\/vmlinuz-/.test(p) && !p.includes('rescue')).sort();
  const kpath = links.has('boot/vmlinuz')
    ? resolve('boot/vmlinuz')
    : kernels.length === 1
      ? (kernels[0] as string)
      : undefined;
  const kernel = kpath ? captured.get(kpath) : undefined;
  if (!kpath || !kernel) {
    throw new CanvosError(
      'ERR_CONFIG',
      `the image has no usable kernel (/boot/vmlinuz${kernels.length > 1 ? ` is missing and there are ${kernels.length} /boot/vmlinuz-*` : ''})`,
      { hint: 'a UKI needs the Kairos base image with its kernel in /boot' },
    );
  }
  const osrelPath = captured.get(resolve('etc/os-release'));
  if (!osrelPath)
    throw new CanvosError('ERR_CONFIG', 'the image has no /etc/os-release', {
      hint: 'UKIs carry os-release in their .osrel section; use a Kairos base image',
    });
  return {
    initrd,
    kernel,
    uname: posix.basename(kpath).replace(/^vmlinuz-/, ''),
    osRelease: await readFile(osrelPath, 'utf8'),
    ...(captured.has('usr/kairos/linuxx64.efi.stub')
      ? { stub: captured.get('usr/kairos/linuxx64.efi.stub') as string }
      : {}),
    ...(captured.has('usr/kairos/systemd-bootx64.efi')
      ? { systemdBoot: captured.get('usr/kairos/systemd-bootx64.efi') as string }
      : {}),
    ...(systemdVersion !== undefined ? { systemdVersion } : {}),
    ...(captured.has('usr/bin/kairos-agent') ? { kairosAgent: captured.get('usr/bin/kairos-agent') as string } : {}),
  };
}
