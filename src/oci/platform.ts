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

/** Parse `linux/arm64`, `linux/arm/v7`, `arm64` (os defaults to linux). */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.some((p) => p === '') || parts.length > 3) {
    throw new CanvosError('ERR_USAGE', `invalid platform ${JSON.stringify(s)}`, {
      hint: 'write it as os/arch[/variant], e.g. linux/amd64 or linux/arm64',
    });
  }
  if (parts.length === 1) return { os: 'linux', architecture: normalizeArch(parts[0]!) };
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
