/**
 * The text edits CanvOS's `base-image` makes to files of the Kairos base image, as pure functions over the base
 * file's text so they can be written as an appended layer: `/etc/kairos-release` (Earthfile KAIROS_RELEASE,
 * canvos.md §1.4 step 9) and `/etc/cos/bootargs.cfg` (SELinux, cgroup v2, nouveau; §1.4 step 11). Both are
 * idempotent: applying an edit to its own output changes nothing.
 */
import type { BuildConfig } from './resolve.js';

type ReleaseCfg = Pick<BuildConfig, 'osDistribution' | 'osVersion' | 'arch' | 'isMaas'>;

/** `KAIROS_IMAGE_LABEL`: `<22.04|OS_VERSION>-standard-<arch>-generic[-maas]` (ubuntu 20/22 are written as x.04). */
export function kairosImageLabel(c: ReleaseCfg): string {
  const v =
    c.osDistribution === 'ubuntu' && (c.osVersion === '22' || c.osVersion === '20') ? `${c.osVersion}.04` : c.osVersion;
  return `${v}-standard-${c.arch}-generic${c.isMaas ? '-maas' : ''}`;
}

/** `KAIROS_NAME`: `kairos-core-<dist>-<OS_VERSION>`. */
export function kairosName(c: ReleaseCfg): string {
  return `kairos-core-${c.osDistribution}-${c.osVersion}`;
}

/**
 * New `/etc/kairos-release` text: every `KAIROS_NAME=` line set to `KAIROS_NAME="kairos-core-<dist>-<ver>"`, every
 * `KAIROS_IMAGE_LABEL=` line removed and one appended at the end. `base` undefined (file absent) → just the two
 * lines, as CanvOS does. Differences from CanvOS's sed/echo, on purpose: a missing KAIROS_NAME line is appended
 * (sed would silently leave it out), and a base without a final newline does not get the label glued to its last line.
 */
export function editKairosRelease(base: string | undefined, c: ReleaseCfg): string {
  const nameLine = `KAIROS_NAME="${kairosName(c)}"`;
  const labelLine = `KAIROS_IMAGE_LABEL="${kairosImageLabel(c)}"`;
  if (base === undefined) return `${nameLine}\n${labelLine}\n`;
  const body = base.endsWith('\n') ? base.slice(0, -1) : base;
  const lines = body === '' ? [] : body.split('\n');
  let hasName = false;
  const out: string[] = [];
  for (const line of lines) {
    if (line.startsWith('KAIROS_IMAGE_LABEL=')) continue;
    if (line.startsWith('KAIROS_NAME=')) {
      hasName = true;
      out.push(nameLine);
    } else {
      out.push(line);
    }
  }
  if (!hasName) out.push(nameLine);
  out.push(labelLine);
  return `${out.join('\n')}\n`;
}

type BootCfg = Pick<BuildConfig, 'disableSelinux' | 'isUki'>;

/** Kernel arguments CanvOS always adds (cgroup v2 is required for Kubernetes ≥ 1.35; nouveau hangs NVIDIA GSP init). */
export const CGROUP_V2_ARG = 'systemd.unified_cgroup_hierarchy=1';
/** The nouveau blacklist CanvOS appends to baseCmd. */
export const NOUVEAU_ARGS = 'rd.driver.blacklist=nouveau modprobe.blacklist=nouveau nouveau.modeset=0';

// `sed 's|\(set baseCmd="[^"]*\)"|\1 <args>"|'`: the first baseCmd assignment on each line.
const BASECMD_RE = /(set baseCmd="[^"\n]*)"/;

function appendToBaseCmd(text: string, args: string): string {
  return text
    .split('\n')
    .map((line) => line.replace(BASECMD_RE, `$1 ${args}"`))
    .join('\n');
}

/**
 * New `/etc/cos/bootargs.cfg` text (non-UKI builds; UKI images are returned unchanged): with DISABLE_SELINUX remove
 * `security=selinux ` and turn `selinux=1` into `selinux=0`; add `systemd.unified_cgroup_hierarchy=1` and the nouveau
 * blacklist to `set baseCmd="…"` unless the file already mentions them (the same guards as CanvOS's `grep -Fq`).
 */
export function editBootargs(base: string, c: BootCfg): string {
  if (c.isUki) return base;
  let text = base;
  if (c.disableSelinux) text = text.replaceAll('security=selinux ', '').replaceAll('selinux=1', 'selinux=0');
  if (!text.includes(CGROUP_V2_ARG)) text = appendToBaseCmd(text, CGROUP_V2_ARG);
  if (!text.includes('rd.driver.blacklist=nouveau')) text = appendToBaseCmd(text, NOUVEAU_ARGS);
  return text;
}
