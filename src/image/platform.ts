/**
 * Platforms (`os/arch[/variant]`): parsing, formatting and matching against index entries.
 */
import { CanvosError } from '../errors.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
  'os.version'?: string | undefined;
  'os.features'?: string[] | undefined;
}

/** Operating systems a lone `--platform OS` names (then the architecture is the host's, as skopeo does). */
const OS_NAMES = new Set([
  'linux',
  'windows',
  'darwin',
  'freebsd',
  'netbsd',
  'openbsd',
  'solaris',
  'illumos',
  'aix',
  'plan9',
  'android',
  'ios',
  'js',
  'wasip1',
  'dragonfly',
]);

/** The host's architecture in OCI spelling (Node's `x64` is `amd64`). */
export function hostArchitecture(): string {
  const a = process.arch;
  return a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a === 'ppc64' ? 'ppc64le' : a;
}

/**
 * Parse `linux/arm64`, `linux/arm/v7`; `linux` alone (an OS) means the host's architecture, `arm64` alone (an
 * architecture) means linux.
 */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p)) || parts.length > 3) {
    throw new CanvosError('ERR_USAGE', `invalid platform ${JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s)}`, {
      hint: 'write it as os/arch[/variant], e.g. linux/amd64 or linux/arm64, or an OS alone for the host architecture',
    });
  }
  if (parts.length === 1) {
    const [name = ''] = parts;
    return OS_NAMES.has(name)
      ? { os: name, architecture: hostArchitecture() }
      : { os: 'linux', architecture: normalizeArch(name) };
  }
  const [os, arch, variant] = parts as [string, string, string?];
  return variant ? { os, architecture: normalizeArch(arch), variant } : { os, architecture: normalizeArch(arch) };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

function normalizeArch(a: string): string {
  if (a === 'x86_64' || a === 'x86-64') return 'amd64';
  if (a === 'aarch64') return 'arm64';
  return a;
}

/** Does an index entry's platform satisfy the wanted one? arm64's implicit v8 variant is treated as equal. */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || normalizeArch(have.architecture) !== normalizeArch(want.architecture)) return false;
  if (!want.variant) return true;
  const hv = have.variant ?? (have.architecture === 'arm64' ? 'v8' : undefined);
  return hv === want.variant;
}

/** The platform of the running host, as OCI names it. */
export function hostPlatform(): Platform {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return { os: 'linux', architecture: arch };
}
