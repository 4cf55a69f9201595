/**
 * Tag selection for mirrored repositories: an anchored-by-the-user regex, a semver range (a small subset of the
 * node-semver / Masterminds grammar that image tags need: comparators, `^`, `~`, `x` wildcards, hyphen-free
 * `||` unions; a leading `v` is accepted) and "the n newest". Non-semver tags never match a semver filter.
 */
import { CanvosError } from '../errors.js';
import type { TagFilter } from './config.js';

/** A parsed version: numbers plus an optional prerelease string (build metadata dropped). */
export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  pre: string;
}

const SEMVER_RE = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** Parse a tag as a version (`1`, `1.2`, `v1.2.3-rc.1`); undefined when it is not one. */
export function parseSemver(tag: string): SemVer | undefined {
  const m = SEMVER_RE.exec(tag);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2] ?? 0), patch: Number(m[3] ?? 0), pre: m[4] ?? '' };
}

/** Compare two versions (prerelease sorts before its release). */
export function compareSemver(a: SemVer, b: SemVer): number {
  if (a.major !== b.major) return a.major - b.major;
  if (a.minor !== b.minor) return a.minor - b.minor;
  if (a.patch !== b.patch) return a.patch - b.patch;
  if (a.pre === b.pre) return 0;
  if (a.pre === '') return 1;
  if (b.pre === '') return -1;
  const pa = a.pre.split('.');
  const pb = b.pre.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x) ? Number(x) : undefined;
    const ny = /^\d+$/.test(y) ? Number(y) : undefined;
    if (nx !== undefined && ny !== undefined && nx !== ny) return nx - ny;
    if (nx === undefined || ny === undefined) {
      if (nx !== undefined) return -1;
      if (ny !== undefined) return 1;
      if (x !== y) return x < y ? -1 : 1;
    }
  }
  return 0;
}

type Cmp = { op: '<' | '<=' | '>' | '>=' | '='; v: SemVer };

/** Parse `1.2`, `1.x`, `1` into [lower inclusive, upper exclusive] with how many parts were given. */
function partial(s: string, range: string): { v: SemVer; parts: number } {
  const m = /^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?$/.exec(s);
  if (!m) throw badRange(range, s);
  const nums = [m[1], m[2], m[3]];
  let parts = 0;
  for (const n of nums) {
    if (n === undefined || /^[xX*]$/.test(n)) break;
    parts++;
  }
  const num = (i: number): number => (i < parts ? Number(nums[i]) : 0);
  return { v: { major: num(0), minor: num(1), patch: num(2), pre: parts === 3 ? (m[4] ?? '') : '' }, parts };
}

function bump(v: SemVer, at: number): SemVer {
  if (at === 0) return { major: v.major + 1, minor: 0, patch: 0, pre: '' };
  if (at === 1) return { major: v.major, minor: v.minor + 1, patch: 0, pre: '' };
  return { major: v.major, minor: v.minor, patch: v.patch + 1, pre: '' };
}

function badRange(range: string, part: string): CanvosError {
  return new CanvosError('ERR_CONFIG', `invalid semver range ${JSON.stringify(range)} at ${JSON.stringify(part)}`, {
    hint: 'use comparators (>=1.2.0 <2), ^1.2, ~1.2, 1.x, joined by spaces (and) or || (or)',
  });
}

/** Compile one comparator token into comparisons. */
function comparator(tok: string, range: string): Cmp[] {
  const m = /^(\^|~|<=|>=|<|>|=)?(.+)$/.exec(tok);
  if (!m) throw badRange(range, tok);
  const [, op = '', version = ''] = m;
  const { v, parts } = partial(version, range);
  if (op === '^') {
    // ^1.2.3 := <2; ^0.2.3 := <0.3; ^0.0.3 := <0.0.4
    const at = v.major > 0 || parts <= 1 ? 0 : v.minor > 0 || parts <= 2 ? 1 : 2;
    return [
      { op: '>=', v },
      { op: '<', v: bump(v, at) },
    ];
  }
  if (op === '~')
    return [
      { op: '>=', v },
      { op: '<', v: bump(v, parts <= 1 ? 0 : 1) },
    ];
  if (parts === 0)
    return op === '' || op === '=' || op === '>=' || op === '<='
      ? []
      : [{ op: '<', v: { major: 0, minor: 0, patch: 0, pre: '' } }];
  if (op === '' || op === '=')
    return parts === 3
      ? [{ op: '=', v }]
      : [
          { op: '>=', v },
          { op: '<', v: bump(v, parts - 1) },
        ];
  if (parts < 3 && (op === '>' || op === '<=')) return [{ op: op === '>' ? '>=' : '<', v: bump(v, parts - 1) }];
  return [{ op: op as Cmp['op'], v }];
}

/** A compiled range: a tag matches when it satisfies every comparison of at least one `||` alternative. */
export function compileSemverRange(range: string): (tag: string) => boolean {
  const alts = range.split('||').map((alt) => {
    const toks = alt
      .trim()
      .replace(/(<=|>=|<|>|=|\^|~)\s+/g, '$1')
      .split(/\s+/)
      .filter((t) => t !== '');
    if (toks.length === 0) throw badRange(range, alt);
    return toks.flatMap((t) => comparator(t, range));
  });
  return (tag: string): boolean => {
    const v = parseSemver(tag);
    if (!v) return false;
    return alts.some((cmps) => {
      // Like node-semver: a prerelease only matches when a comparator of the same x.y.z carries one.
      if (
        v.pre &&
        !cmps.some((c) => c.v.pre && c.v.major === v.major && c.v.minor === v.minor && c.v.patch === v.patch)
      )
        return false;
      return cmps.every((c) => {
        const d = compareSemver(v, c.v);
        return c.op === '<' ? d < 0 : c.op === '<=' ? d <= 0 : c.op === '>' ? d > 0 : c.op === '>=' ? d >= 0 : d === 0;
      });
    });
  };
}

/** Cosign / referrers fallback tags (`sha256-<hex>[.sig|.att|.sbom]`): never mirrored as ordinary tags. */
export const DIGEST_TAG_RE = /^sha256-[a-f0-9]{64}(\.[a-z]+)?$/;

/** Apply a filter to a tag list; result is sorted newest first when `latest` or `semver` is used, else as listed. */
export function filterTags(tags: readonly string[], f: TagFilter): string[] {
  const re = f.regex !== undefined ? new RegExp(f.regex) : undefined;
  const sv = f.semver !== undefined ? compileSemverRange(f.semver) : undefined;
  let out = tags.filter((t) => !DIGEST_TAG_RE.test(t) && (!re || re.test(t)) && (!sv || sv(t)));
  if (f.latest !== undefined || sv) {
    out = [...out].sort((a, b) => {
      const va = parseSemver(a);
      const vb = parseSemver(b);
      if (va && vb) return compareSemver(vb, va) || (a < b ? 1 : -1);
      if (va) return -1;
      if (vb) return 1;
      return a < b ? 1 : a > b ? -1 : 0;
    });
  }
  return f.latest !== undefined ? out.slice(0, f.latest) : out;
}
