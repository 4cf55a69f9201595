/**
 * The flags of `canvos-lite mirror plan|push|save|load` (one set for the four subcommands) and their parsing:
 * `--flatten` takes the optional value `last-segment`, sizes (`--max-part-size`), and what `--to` names.
 * @internal (used by the mirror subcommands)
 */
import { existsSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FAT32_MAX_FILE } from '../../../mirror/archive.js';
import type { RewriteOptions } from '../../../mirror/config.js';
import { JSON_OPTION, SRC_DEST_OPTIONS } from '../../flag-sets.js';
import { usageError } from '../../flags.js';

/** The mirror subcommands. */
export type MirrorSubcommand = 'plan' | 'push' | 'save' | 'load';

/** parseArgs options of every mirror subcommand. */
export const MIRROR_OPTIONS = {
  config: { type: 'string' },
  to: { type: 'string' },
  from: { type: 'string' },
  platform: { type: 'string', multiple: true },
  prefix: { type: 'string' },
  flatten: { type: 'boolean' },
  'flatten-last-segment': { type: 'boolean' },
  'no-keep-registry': { type: 'boolean' },
  'no-referrers': { type: 'boolean' },
  'max-part-size': { type: 'string' },
  'keep-layout': { type: 'boolean' },
  since: { type: 'string', multiple: true },
  'allow-partial': { type: 'boolean' },
  'registries-yaml': { type: 'string' },
  failures: { type: 'string' },
  ...SRC_DEST_OPTIONS,
  images: { type: 'string' },
  jobs: { type: 'string' },
  ...JSON_OPTION,
} as const;

/** The parsed values of {@link MIRROR_OPTIONS}. */
export type MirrorValues = ReturnType<typeof parseArgs<{ options: typeof MIRROR_OPTIONS }>>['values'];

/** A parsed mirror command line. */
export interface MirrorArgs {
  sub: MirrorSubcommand;
  values: MirrorValues;
  /** Image references given as arguments. */
  refs: string[];
  /** `--flatten` (true) or `--flatten last-segment`; undefined when not given. */
  flatten: RewriteOptions['flatten'] | undefined;
}

/**
 * Parses `argv` (after the subcommand). `--flatten` is a flag with an optional value: `--flatten last-segment`
 * (the value as the next argument) and `--flatten-last-segment` both select last-segment flattening; an argument
 * `last-segment` anywhere else (or after `--`) stays an image reference.
 */
export function parseMirrorArgs(sub: MirrorSubcommand, argv: string[]): MirrorArgs {
  const { values, tokens } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    tokens: true,
    options: MIRROR_OPTIONS,
  });
  let valueAt = -1;
  tokens.forEach((t, i) => {
    const next = tokens[i + 1];
    if (t.kind === 'option' && t.name === 'flatten' && next?.kind === 'positional' && next.value === 'last-segment')
      valueAt = next.index;
  });
  const refs = tokens.flatMap((t) => (t.kind === 'positional' && t.index !== valueAt ? [t.value] : []));
  const flatten = values['flatten-last-segment'] || valueAt >= 0 ? 'last-segment' : values.flatten ? true : undefined;
  return { sub, values, refs, flatten };
}

/** `700M`, `4G`, `4GiB`, `123456`, `fat32`. */
export function parseSize(v: string): number {
  if (v.toLowerCase() === 'fat32') return FAT32_MAX_FILE;
  const m = /^(\d+)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m)
    throw usageError('mirror', `--max-part-size ${JSON.stringify(v)}: expected bytes or a size like 700M, 4G, fat32`);
  const pow = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Number(m[1]) * 1024 ** pow;
}

/** Whether `--to` names a layout directory or an archive (else a registry). */
export function isPathTarget(to: string): boolean {
  return to.endsWith('.tar') || /^(\/|\.\.?\/|~)/.test(to) || (existsSync(to) && statSync(to).isDirectory());
}

/** `--to`, checked present. */
export function requireTo(a: MirrorArgs): string {
  if (!a.values.to) throw usageError('mirror', `mirror ${a.sub} needs --to`);
  return a.values.to;
}
