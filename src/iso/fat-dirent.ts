/**
 * FAT directory entries: 8.3 short names (with the `~N` numeric tail), VFAT long-file-name (LFN) entry chains,
 * and DOS date/time encoding. Any name that is not already an upper-case 8.3 name gets an LFN chain, so names
 * like `grub.cfg` keep their case on every reader (Linux vfat, mtools, UEFI firmware).
 */
import { CanvosError } from '../errors.js';

export const ATTR_READONLY = 0x01;
export const ATTR_VOLUME = 0x08;
export const ATTR_DIR = 0x10;
export const ATTR_ARCHIVE = 0x20;
const ATTR_LFN = 0x0f;

/** Characters allowed in a short name besides A–Z and 0–9. */
const SHORT_OK = /^[A-Z0-9!#$%&'()\-@^_`{}~]*$/;

/** DOS date and time of a Unix timestamp, in UTC, clamped to 1980-01-01 … 2107-12-31. */
export function dosDateTime(epochSeconds: number): { date: number; time: number } {
  const d = new Date(Math.max(315532800, Math.min(epochSeconds, 4354819199)) * 1000);
  const date = ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  const time = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2);
  return { date, time };
}

/** Whether `name` has a control character or one of FAT's reserved characters (code units: no surrogate is one). */
function hasForbiddenChar(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || '"*/:<>?\\|'.includes(name.charAt(i))) return true;
  }
  return false;
}

/** Throws unless `name` is a legal long file name component. */
export function checkLongName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.length > 255 || hasForbiddenChar(name)) {
    throw new CanvosError('ERR_ISO', `invalid FAT file name ${JSON.stringify(name)}`, {
      hint: 'use names without control characters or any of "*/:<>?\\|, at most 255 characters',
    });
  }
}

/** The 11-byte short name if `name` is already a valid upper-case 8.3 name, else undefined. */
function exactShort(name: string): string | undefined {
  const m = /^([^.]{1,8})(?:\.([^.]{1,3}))?$/.exec(name);
  if (!m || !SHORT_OK.test(m[1] ?? '') || !SHORT_OK.test(m[2] ?? '')) return undefined;
  return (m[1] ?? '').padEnd(8, ' ') + (m[2] ?? '').padEnd(3, ' ');
}

/**
 * Chooses the short name for `name` among the `taken` ones (11-char padded strings) and whether an LFN chain is
 * needed. Names that only differ from 8.3 by case keep their letters (`grub.cfg` → `GRUB    CFG`); others get a
 * basis name with `~N`.
 */
export function shortNameFor(name: string, taken: Set<string>): { short: string; needsLfn: boolean } {
  const exact = exactShort(name);
  if (exact !== undefined && !taken.has(exact)) return { short: exact, needsLfn: false };
  const upper = exactShort(name.toUpperCase());
  if (upper !== undefined && !taken.has(upper)) return { short: upper, needsLfn: true };
  const clean = (s: string): string =>
    s
      .toUpperCase()
      .replace(/[ .]/g, '')
      .replace(/[^A-Z0-9!#$%&'()\-@^_`{}~]/g, '_');
  const dot = name.lastIndexOf('.');
  const base = clean(dot > 0 ? name.slice(0, dot) : name) || '_';
  const ext = clean(dot > 0 ? name.slice(dot + 1) : '').slice(0, 3);
  for (let n = 1; n < 1_000_000; n++) {
    const tail = `~${n}`;
    const short = (base.slice(0, 8 - tail.length) + tail).padEnd(8, ' ') + ext.padEnd(3, ' ');
    if (!taken.has(short)) return { short, needsLfn: true };
  }
  throw new CanvosError('ERR_ISO', `too many FAT names similar to ${JSON.stringify(name)}`);
}

/** The LFN checksum of an 11-byte short name. */
export function lfnChecksum(short: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + (short[i] ?? 0)) & 0xff;
  return sum;
}

/** LFN entries for `name` in on-disk order (highest sequence number first). */
export function lfnEntries(name: string, short: Buffer): Buffer[] {
  const units: number[] = [];
  for (let i = 0; i < name.length; i++) units.push(name.charCodeAt(i));
  if (units.length % 13 !== 0) units.push(0);
  while (units.length % 13 !== 0) units.push(0xffff);
  const count = units.length / 13;
  const sum = lfnChecksum(short);
  const out: Buffer[] = [];
  for (let seq = count; seq >= 1; seq--) {
    const e = Buffer.alloc(32);
    e[0] = seq | (seq === count ? 0x40 : 0);
    e[11] = ATTR_LFN;
    e[13] = sum;
    const part = units.slice((seq - 1) * 13, seq * 13);
    const offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
    part.forEach((u, i) => e.writeUInt16LE(u, offsets[i] ?? 0));
    out.push(e);
  }
  return out;
}

/** One 32-byte short directory entry. */
export function shortEntry(
  short: string | Buffer,
  attr: number,
  cluster: number,
  size: number,
  when: { date: number; time: number },
): Buffer {
  const e = Buffer.alloc(32);
  (typeof short === 'string' ? Buffer.from(short, 'latin1') : short).copy(e, 0, 0, 11);
  e[11] = attr;
  e.writeUInt16LE(when.time, 14);
  e.writeUInt16LE(when.date, 16);
  e.writeUInt16LE(when.date, 18);
  e.writeUInt16LE((cluster >>> 16) & 0xffff, 20);
  e.writeUInt16LE(when.time, 22);
  e.writeUInt16LE(when.date, 24);
  e.writeUInt16LE(cluster & 0xffff, 26);
  e.writeUInt32LE(size >>> 0, 28);
  return e;
}
