/**
 * Path normalisation for layer entries: one canonical spelling (no leading `/` or `./`, no empty or `.` segments,
 * no trailing `/`), and rejection of anything with a `..` segment so no entry can ever address a location outside
 * the root it is unpacked into.
 */

/**
 * Normalise a tar/spec path. Returns `null` when the path has a `..` segment (it could escape the root).
 * The root itself normalises to `''`.
 */
export function normalizeLayerPath(p: string): string | null {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return null;
    out.push(seg);
  }
  return out.join('/');
}

/** Parent directory of a normalised path (`''` for top-level names and the root). */
export function parentPath(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/** Last segment of a normalised path. */
export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Join a normalised directory and a name. */
export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Strict ancestors of a normalised path, shortest first (`a/b/c` → `a`, `a/b`). */
export function ancestors(p: string): string[] {
  const out: string[] = [];
  let i = p.indexOf('/');
  while (i >= 0) {
    out.push(p.slice(0, i));
    i = p.indexOf('/', i + 1);
  }
  return out;
}

/** Any UTF-16 code unit outside ASCII. */
const NON_ASCII = /[\u0080-\uffff]/;

/** Byte-order comparison of two paths (UTF-8), the order entries are written in. */
export function comparePaths(a: string, b: string): number {
  // Fast path: pure ASCII strings compare identically as UTF-16 code units and as bytes.
  if (!NON_ASCII.test(a) && !NON_ASCII.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * Resolve a symlink target against the directory holding the link, inside an image root: absolute targets start at
 * the root, and `..` never climbs above it (like a chroot). Returns a normalised path.
 */
export function resolveLinkTarget(linkDir: string, target: string): string {
  const parts = target.startsWith('/') ? [] : linkDir.split('/').filter((s) => s !== '');
  for (const seg of target.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return parts.join('/');
}
