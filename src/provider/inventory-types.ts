/**
 * The vocabulary of the CanvOS conformance inventory (inventory.ts): statuses, scopes, rules and entries. A module
 * of its own so the entry tables (inventory-args.ts, inventory-files.ts) and inventory.ts, which combines and
 * applies them, import it without importing each other.
 */
import type { ArgName } from './args.js';
import type { BuildConfig } from './resolve.js';

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
