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
import type { InventoryEntry, InventoryScope } from './inventory-types.js';
import { displayValue, formatLoc, type BuildConfig, type WarningHandler } from './resolve.js';
import { ARG_INFO, argKeyOf } from './schema.js';

export type {
  InventoryEntry,
  InventoryIssue,
  InventoryRule,
  InventoryScope,
  InventoryStatus,
} from './inventory-types.js';

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
