/**
 * The CanvOS conformance inventory (issue #12): every argument of CanvOS's Earthfile and `.arg.template`
 * (ARG_NAMES) and every project file CanvOS reads, each with what canvos-lite does with it: `honoured`, `refused`
 * (exit 3 with a hint) or `warned` (accepted; a warning says why it has no effect). The refusals and warnings are
 * emitted from these entries ({@link applyInventory}), and README's table is generated from them
 * (`node scripts/inventory-table.mjs`), so the code, the messages and the documentation cannot drift apart.
 */
import { CanvosError } from '../errors.js';
import { CUSTOM_ARG_PREFIX, RETIRED_ARGS, isArgName, type ArgName } from './args.js';
import { ARG_INVENTORY } from './inventory-args.js';
import { FILE_INVENTORY } from './inventory-files.js';
import { displayValue, formatLoc, type BuildConfig, type WarningHandler } from './resolve.js';
import { ARG_INFO, argKeyOf } from './schema.js';

/** What canvos-lite does with a CanvOS input. */
export type InventoryStatus = 'honoured' | 'refused' | 'warned';

/** The issues that would make a refused or warned input work. */
export type InventoryIssue = '#11 Dockerfile/RUN' | '#16 UKI' | '#17 disk/MAAS/cloud images';

/**
 * Which build step a rule belongs to: `base` (CanvOS `base-image`, shared by provider images and the ISO),
 * `provider` (`provider-image`), `iso` (`iso-image` / `iso` and the disk artefacts built from them) or `iso-only`
 * (the installer ISO itself, not the disk images built from the same rootfs).
 */
export type InventoryScope = 'base' | 'provider' | 'iso' | 'iso-only';

/** A refusal or warning, applied when the configuration asks for something canvos-lite does not do. */
export interface InventoryRule {
  status: 'refused' | 'warned';
  scope: InventoryScope;
  /** Why it is refused / has no effect; completes "NAME=value is not supported by canvos-lite: …" / "has no effect in canvos-lite: …". */
  why: string;
  /** How to fix it (refusals). */
  hint?: string | undefined;
  issue?: InventoryIssue | undefined;
  /** When the rule applies. Default: the argument is set to a value other than CanvOS's default. */
  when?: ((c: BuildConfig) => boolean) | undefined;
  /** What the message names. Default: `NAME=value` of the entry's argument. */
  subject?: ((c: BuildConfig) => string) | undefined;
  /** Warning code. Default: W_ARG_NO_EFFECT. */
  code?: string | undefined;
}

/** One CanvOS input. */
export interface InventoryEntry {
  kind: 'arg' | 'file';
  /** The argument name, or the project path (`certs/`, `cloudconfigs/mount.yaml`). */
  name: string;
  /** Overall status (the README table's column); a honoured entry may still refuse or warn about some uses. */
  status: InventoryStatus;
  /** What CanvOS does with it, with the Earthfile lines / canvos.md section. */
  canvos: string;
  /** What canvos-lite does with it. */
  lite: string;
  issue?: InventoryIssue | undefined;
  rules?: readonly InventoryRule[] | undefined;
  /** The argument whose rules cover this file (e.g. `cis-harden/` is read only with CIS_HARDENING=true). */
  via?: ArgName | undefined;
  /** The helper branch that implements it, when that is not this one (the lead merges them). */
  owner?: string | undefined;
}

/** Every CanvOS input: the arguments (in ARG_NAMES order), then the project files. */
export const INVENTORY: readonly InventoryEntry[] = [...ARG_INVENTORY, ...FILE_INVENTORY];

/** The inventory entry of an argument. */
export function argEntry(name: ArgName): InventoryEntry | undefined {
  return ARG_INVENTORY.find((e) => e.name === name);
}

function argValue(c: BuildConfig, name: ArgName): unknown {
  return (c as unknown as Record<string, unknown>)[argKeyOf(name)];
}

/**
 * True when `name` is set to something other than CanvOS's default: compared with the literal default, or, for
 * defaults derived from other arguments (`$SPECTRO_PUB_REPO/…`), when it was written explicitly and is not empty.
 */
export function isNonDefault(c: BuildConfig, name: ArgName): boolean {
  const info = ARG_INFO.get(name);
  const v = argValue(c, name);
  if (!info) return false;
  if (info.default.includes('$')) return c.origins[name] !== undefined && v !== '' && v !== undefined;
  return String(v) !== info.default;
}

function subjectOf(e: InventoryEntry, c: BuildConfig): string {
  if (e.kind !== 'arg' || !isArgName(e.name)) return e.name;
  const v = argValue(c, e.name);
  return `${e.name}=${typeof v === 'string' ? displayValue(e.name, v) : String(v)}`;
}

function where(e: InventoryEntry, c: BuildConfig): string {
  const loc = e.kind === 'arg' && isArgName(e.name) ? formatLoc(c.origins[e.name]) : '';
  return loc ? `${loc}: ` : '';
}

/**
 * Apply the inventory's rules for the given steps: throw ERR_CONFIG (exit 3) for the first refused input in use,
 * and report every warned one through `onWarning` (only when given). `scopes` are the steps the caller runs.
 */
export function applyInventory(c: BuildConfig, scopes: readonly InventoryScope[], onWarning?: WarningHandler): void {
  for (const e of INVENTORY) {
    for (const r of e.rules ?? []) {
      if (!scopes.includes(r.scope)) continue;
      const on = r.when ? r.when(c) : e.kind === 'arg' && isArgName(e.name) && isNonDefault(c, e.name);
      if (!on) continue;
      const subject = r.subject ? r.subject(c) : subjectOf(e, c);
      const issue = r.issue ? ` (issue ${r.issue})` : '';
      if (r.status === 'refused') {
        throw new CanvosError('ERR_CONFIG', `${where(e, c)}${subject} is not supported by canvos-lite: ${r.why}`, {
          hint: `${r.hint ?? `remove ${e.name} or build this with CanvOS`}${issue}`,
          details: { input: e.name, issue: r.issue },
        });
      }
      onWarning?.(
        r.code ?? 'W_ARG_NO_EFFECT',
        `${where(e, c)}${subject} has no effect in canvos-lite: ${r.why}${issue}`,
      );
    }
  }
}

/** Markdown-safe cell text. */
function cell(s: string): string {
  // `<` outside code spans would start an HTML tag in GitHub's renderer.
  const text = s
    .split('`')
    .map((part, i) => (i % 2 === 0 ? part.replaceAll('<', '&lt;') : part))
    .join('`');
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

/** The README table generated from the inventory (between the `inventory:begin/end` markers). */
export function inventoryMarkdown(): string {
  const rows = INVENTORY.map((e) => {
    const extra = (e.rules ?? [])
      .filter((r) => r.status !== e.status)
      .map((r) =>
        `${r.status} ${r.scope === 'iso' || r.scope === 'iso-only' ? 'for the ISO' : r.scope === 'provider' ? 'for provider images' : ''}`.trim(),
      );
    const status = [e.status, ...new Set(extra)].join('; ');
    const issue = e.issue ?? [...new Set((e.rules ?? []).map((r) => r.issue).filter(Boolean))].join(', ');
    const name = e.kind === 'arg' ? `\`${e.name}\`` : `\`${e.name}\` (file)`;
    return `| ${name} | ${status}${e.owner ? ` (${e.owner})` : ''} | ${cell(e.canvos)} | ${cell(e.lite)} | ${issue || ''} |`;
  });
  // Names CanvOS no longer reads, and the Dockerfile pass-through prefix: warned about by resolve.ts.
  const retired = Object.entries(RETIRED_ARGS).map(
    ([name, why]) =>
      `| \`${name}\` | warned (retired) | no longer read by CanvOS | warning W_ARG_RETIRED: ${cell(why)} |  |`,
  );
  const custom = `| \`${CUSTOM_ARG_PREFIX}*\` | warned | Dockerfile build arguments of recent \`.arg.template\`s | warning W_ARG_UNUSED: CanvOS passes only BASE, OS_DISTRIBUTION, OS_VERSION, the proxies and DRBD_VERSION to the Dockerfile, and so does canvos-lite |  |`;
  return [
    '| input | status | CanvOS | canvos-lite | issue |',
    '|---|---|---|---|---|',
    ...rows,
    ...retired,
    custom,
  ].join('\n');
}
