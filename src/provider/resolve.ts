/**
 * Turns located key/value entries (from `.arg`, canvos.yaml or code) into a validated BuildConfig: canonicalises
 * names, warns about unknown/retired/duplicate keys, runs the zod schema and maps its issues back to `file:line`.
 * Both input forms go through here, so an invalid value reads the same whichever file it came from.
 */
import { CanvosError, redactUrl } from '../errors.js';
import {
  ARG_ALIASES,
  CUSTOM_ARG_PREFIX,
  RETIRED_ARGS,
  SECRET_ARGS,
  URL_ARGS,
  canonicalArgName,
  isArgName,
  type ArgName,
} from './args.js';
import {
  ARG_INFO,
  BuildArgsSchema,
  DEFAULT_K8S_IMAGE_PATTERN,
  argKeyOf,
  type BuildArgs,
  type K8sSource,
} from './schema.js';

/** Where a value was written. */
export interface SourceLocation {
  file: string;
  line: number;
  /** 1-based column, when known (YAML). */
  col?: number | undefined;
}

/** One `KEY=value` as written by the user. */
export interface ConfigEntry {
  /** The key as written (`OS_VERSION`, `osVersion`, `http_proxy`, …). */
  key: string;
  value: string | boolean | number;
  loc: SourceLocation;
  /** Accept only CanvOS's exact spelling for this entry (`.arg` lines). Default: the `keys` option. */
  upperOnly?: boolean | undefined;
}

/** Receives recoverable oddities (unknown keys, duplicates…); `code` is stable, `message` names file:line. */
export type WarningHandler = (code: string, message: string) => void;

/** A fully resolved build configuration: every CanvOS argument typed, plus canvos-lite extensions. */
export interface BuildConfig extends BuildArgs {
  /** Per-version k8s binaries sources (canvos.yaml `k8s:`). Default: {} (use {@link k8sImagePattern}). */
  k8sSources: Record<string, K8sSource>;
  /** Image naming pattern of the k8s package for versions without a source. Default: {@link DEFAULT_K8S_IMAGE_PATTERN}. */
  k8sImagePattern: string;
  /** Where each argument that was set explicitly came from (later errors cite it). */
  origins: Partial<Record<ArgName, SourceLocation>>;
}

/** Options of {@link resolveBuildConfig}. */
export interface ResolveOptions {
  /**
   * Key spellings accepted: 'upper' (`.arg`: exact CanvOS names plus lowercase proxy aliases) or 'any' (canvos.yaml:
   * UPPER or camelCase). Default: 'any'.
   */
  keys?: 'upper' | 'any';
  onWarning?: WarningHandler | undefined;
  /** Default: {}. */
  k8sSources?: Record<string, K8sSource> | undefined;
  /** Default: DEFAULT_K8S_IMAGE_PATTERN. */
  k8sImagePattern?: string | undefined;
}

/** `file:line[:col]`. */
export function formatLoc(loc: SourceLocation | undefined): string {
  if (!loc) return '';
  return `${loc.file}:${loc.line}${loc.col !== undefined ? `:${loc.col}` : ''}`;
}

/** A value as it may be shown in messages: secrets hidden, URL userinfo stripped, long values shortened. */
export function displayValue(name: string, value: unknown): string {
  if (SECRET_ARGS.has(name)) return '"***"';
  let s = String(value);
  if (URL_ARGS.has(name) && s) s = redactUrl(s);
  if (s.length > 80) s = `${s.slice(0, 77)}...`;
  return JSON.stringify(s);
}

function suggest(key: string): string | undefined {
  const upper = key.toUpperCase().replace(/-/g, '_');
  if (isArgName(upper)) return upper;
  const close = [...ARG_INFO.keys()].find((n) => distance(n, upper) <= 2);
  return close;
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] ?? 0;
      row[j] = Math.min((row[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] ?? 0;
}

function canonical(key: string, mode: 'upper' | 'any'): ArgName | undefined {
  if (mode === 'upper') return isArgName(key) ? key : ARG_ALIASES[key];
  return canonicalArgName(key);
}

function hintFor(name: ArgName, loc: SourceLocation | undefined): string {
  const info = ARG_INFO.get(name);
  const where = loc ? ` on line ${loc.line} of ${loc.file}` : '';
  if (info?.kind === 'enum' && info.allowed)
    return `write ${name}=${info.allowed[0]} (or another allowed value)${where}`;
  if (info?.kind === 'boolean') return `write ${name}=true or ${name}=false${where}`;
  if (info?.kind === 'integer') return `write a whole number, e.g. ${name}=${info.default}${where}`;
  return `fix the value of ${name}${where}; CanvOS's default is ${JSON.stringify(info?.default ?? '')}`;
}

/**
 * Validate located entries into a BuildConfig. Later entries win. Throws CanvosError ERR_CONFIG naming
 * `file:line`, the key, the allowed values and a fix for the first invalid value (all issues in `details.issues`).
 */
export function resolveBuildConfig(entries: readonly ConfigEntry[], opts: ResolveOptions = {}): BuildConfig {
  const mode = opts.keys ?? 'any';
  const warn = opts.onWarning ?? (() => {});
  const values = new Map<ArgName, ConfigEntry>();
  const aliasOnly = new Map<ArgName, ConfigEntry>();
  // Spelling suggestions cost ~25 µs per key: only for the first unknown keys (a generated 80k-key file has no typos).
  let unknownKeys = 0;
  for (const e of entries) {
    const where = formatLoc(e.loc);
    const name = canonical(e.key, e.upperOnly ? 'upper' : mode);
    if (!name) {
      if (e.key.startsWith(CUSTOM_ARG_PREFIX)) {
        warn(
          'W_ARG_UNUSED',
          `${where}: ${e.key} is unused: CanvOS passes only BASE, OS_DISTRIBUTION, OS_VERSION, HTTP_PROXY, HTTPS_PROXY, NO_PROXY and DRBD_VERSION to the Dockerfile, and so does canvos-lite`,
        );
      } else if (RETIRED_ARGS[e.key]) {
        warn('W_ARG_RETIRED', `${where}: ${e.key} is ignored: ${RETIRED_ARGS[e.key]}`);
      } else {
        const s = ++unknownKeys <= 50 ? suggest(e.key) : undefined;
        warn('W_ARG_UNKNOWN', `${where}: unknown argument ${e.key} ignored${s ? ` (did you mean ${s}?)` : ''}`);
      }
      continue;
    }
    const isAlias = !isArgName(e.key) && ARG_ALIASES[e.key] === name;
    const target = isAlias ? aliasOnly : values;
    const prev = target.get(name);
    if (prev && prev.loc.file === e.loc.file) {
      warn('W_ARG_DUPLICATE', `${where}: ${name} is set again (first at line ${prev.loc.line}); the later value wins`);
    }
    target.set(name, e);
  }
  // Lowercase proxy aliases only fill in what the uppercase spelling left unset (Earthfile: http_proxy=${HTTP_PROXY}).
  for (const [name, e] of aliasOnly) if (!values.has(name)) values.set(name, e);

  const input: Record<string, string | boolean | number> = {};
  const origins: Partial<Record<ArgName, SourceLocation>> = {};
  for (const [name, e] of values) {
    const info = ARG_INFO.get(name);
    if (info?.kind === 'boolean' && e.value === '' && info.default === 'true') {
      warn(
        'W_ARG_EMPTY_BOOLEAN',
        `${formatLoc(e.loc)}: ${name} is empty, which CanvOS treats as false (its default is true)`,
      );
    }
    input[argKeyOf(name)] = e.value;
    origins[name] = e.loc;
  }

  const parsed = BuildArgsSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((iss) => {
      const key = String(iss.path[0] ?? '');
      const name = canonicalArgName(key) ?? key;
      const e = isArgName(name) ? values.get(name) : undefined;
      return { name, loc: e?.loc, value: e?.value, message: iss.message };
    });
    // Report in file order, so the first message points at the first bad line.
    issues.sort((a, b) => (a.loc && b.loc && a.loc.file === b.loc.file ? a.loc.line - b.loc.line : 0));
    const first = issues[0];
    if (!first) throw new CanvosError('ERR_INTERNAL', 'configuration validation failed without an issue');
    const where = first.loc ? `${formatLoc(first.loc)}: ` : '';
    const shown = first.value !== undefined ? `=${displayValue(first.name, first.value)}` : '';
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
    throw new CanvosError('ERR_CONFIG', `${where}${first.name}${shown} is invalid: ${first.message}${more}`, {
      hint: isArgName(first.name) ? hintFor(first.name, first.loc) : undefined,
      details: {
        issues: issues.map((i) => ({ key: i.name, location: formatLoc(i.loc) || undefined, message: i.message })),
      },
    });
  }
  return {
    ...parsed.data,
    k8sSources: opts.k8sSources ?? {},
    k8sImagePattern: opts.k8sImagePattern ?? DEFAULT_K8S_IMAGE_PATTERN,
    origins,
  };
}
