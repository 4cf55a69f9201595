/**
 * Reads CanvOS's `.arg` file as is: the shell-ish `KEY=value` lines earthly.sh `source`s and Earthly reads as build
 * args. Supports `#` comments (whole-line, or after whitespace), blank lines, `export ` prefixes, single/double
 * quotes, backslash escapes and `$VAR` / `${VAR}` / `${VAR:-default}` references to keys set on earlier lines (or to
 * CanvOS defaults). Command substitution is refused: nothing in a config file is ever executed.
 */
import { CanvosError } from '../errors.js';
import { INPUT_LIMITS, readTextInput } from '../text-input.js';
import { isArgName } from './args.js';
import {
  resolveBuildConfig,
  type BuildConfig,
  type ConfigEntry,
  type ResolveOptions,
  type SourceLocation,
} from './resolve.js';
import { ARG_INFO } from './schema.js';

const LINE_RE = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

function fail(loc: SourceLocation, message: string, hint: string): CanvosError {
  return new CanvosError('ERR_CONFIG', `${loc.file}:${loc.line}: ${message}`, {
    hint,
    details: { file: loc.file, line: loc.line },
  });
}

/** Look up a referenced name: earlier lines first, then CanvOS's literal default. */
type Lookup = (name: string) => string | undefined;

function parseValue(raw: string, key: string, loc: SourceLocation, lookup: Lookup): string {
  let out = '';
  let i = 0;
  const n = raw.length;
  const expand = (): void => {
    // At raw[i] === '$'.
    const next = raw[i + 1];
    if (next === '(')
      throw fail(
        loc,
        `${key}: command substitution $(...) is not supported`,
        `write the value itself, e.g. ${key}=v4.9.38 instead of $(git describe --abbrev=0 --tags)`,
      );
    let name: string;
    let fallback: string | undefined;
    if (next === '{') {
      const end = raw.indexOf('}', i + 2);
      if (end < 0)
        throw fail(loc, `${key}: unterminated \${ in value`, 'close the reference with }, e.g. ${OS_DISTRIBUTION}');
      const body = raw.slice(i + 2, end);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/.exec(body);
      if (!m) throw fail(loc, `${key}: unsupported reference \${${body}}`, 'use $NAME, ${NAME} or ${NAME:-default}');
      name = m[1] ?? '';
      fallback = m[2];
      i = end + 1;
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(raw.slice(i + 1));
      if (!m) {
        out += '$'; // a lone `$` is literal, as in the shell
        i++;
        return;
      }
      name = m[0];
      i += 1 + name.length;
    }
    const v = lookup(name);
    if (v !== undefined && (v !== '' || fallback === undefined)) out += v;
    else if (fallback !== undefined) out += fallback;
    else
      throw fail(
        loc,
        `${key} references $${name}, which is not set on an earlier line`,
        `define ${name}=... above line ${loc.line}, or write the value directly`,
      );
  };

  while (i < n) {
    const c = raw[i] ?? '';
    if (c === "'") {
      const end = raw.indexOf("'", i + 1);
      if (end < 0) throw fail(loc, `${key}: unterminated single quote`, `close the quote, e.g. ${key}='value'`);
      out += raw.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= n) throw fail(loc, `${key}: unterminated double quote`, `close the quote, e.g. ${key}="value"`);
        const d = raw[i] ?? '';
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\' && i + 1 < n && '"\\$`'.includes(raw[i + 1] ?? '')) {
          out += raw.charAt(i + 1);
          i += 2;
        } else if (d === '$') {
          expand();
        } else if (d === '`') {
          throw fail(loc, `${key}: command substitution with backquotes is not supported`, 'write the value itself');
        } else {
          out += d;
          i++;
        }
      }
    } else if (c === '\\') {
      if (i + 1 >= n)
        throw fail(loc, `${key}: line continuation (trailing \\) is not supported`, 'put the whole value on one line');
      out += raw.charAt(i + 1);
      i += 2;
    } else if (c === '$') {
      expand();
    } else if (c === '`') {
      throw fail(loc, `${key}: command substitution with backquotes is not supported`, 'write the value itself');
    } else if (c === ' ' || c === '\t') {
      const rest = raw.slice(i).trimStart();
      if (rest === '' || rest.startsWith('#')) break; // trailing blanks / inline comment
      throw fail(
        loc,
        `${key}: unquoted value contains whitespace`,
        `quote it, e.g. ${key}="${(out + raw.slice(i)).replace(/\s+#.*$/, '').trim()}"`,
      );
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Options of {@link parseArgText} / {@link loadArgFile}. */
export type ArgFileOptions = Omit<ResolveOptions, 'keys'>;

/**
 * Parse `.arg` text into located entries (no validation of values; see {@link resolveBuildConfig}).
 * Throws ERR_CONFIG with `file:line` for malformed lines, bad quoting, unresolvable references and `$(...)`.
 */
export function parseArgEntries(text: string, file = '.arg'): ConfigEntry[] {
  const entries: ConfigEntry[] = [];
  const seen = new Map<string, string>();
  const lookup: Lookup = (name) => {
    const v = seen.get(name);
    if (v !== undefined) return v;
    const info = isArgName(name) ? ARG_INFO.get(name) : undefined;
    // Only literal defaults can be referenced; derived ones ($OS_DISTRIBUTION…) depend on other lines.
    return info && !info.default.includes('$') ? info.default : undefined;
  };
  const lines = text.split('\n');
  lines.forEach((rawLine, idx) => {
    const loc = { file, line: idx + 1 };
    let line = rawLine.replace(/\r$/, '').trim();
    if (idx === 0) line = line.replace(/^\uFEFF/, '');
    if (line === '' || line.startsWith('#')) return;
    line = line.replace(/^export\s+/, '');
    const m = LINE_RE.exec(line);
    if (!m) {
      const spaced = /^([A-Za-z_][A-Za-z0-9_]*)\s+=|^([A-Za-z_][A-Za-z0-9_]*)=\s/.exec(line);
      if (spaced)
        throw fail(
          loc,
          `malformed line: no spaces are allowed around "=" (${(spaced[1] ?? spaced[2]) as string})`,
          `write it as ${(spaced[1] ?? spaced[2]) as string}=value`,
        );
      // Show only the first word: the rest may be a secret value written without '='.
      const first = (line.split(/[\s=:]/)[0] ?? '').slice(0, 40);
      throw fail(
        loc,
        `malformed line starting with ${JSON.stringify(first)}: expected KEY=value`,
        'each line must be KEY=value, a # comment, or blank',
      );
    }
    const key = m[1] ?? '';
    const value = parseValue(m[2] ?? '', key, loc, lookup);
    seen.set(key, value);
    entries.push({ key, value, loc, upperOnly: true });
  });
  return entries;
}

/** Parse and validate `.arg` text into a BuildConfig. */
export function parseArgText(text: string, file = '.arg', opts: ArgFileOptions = {}): BuildConfig {
  return resolveBuildConfig(parseArgEntries(text, file), { ...opts, keys: 'upper' });
}

/** Read, parse and validate a `.arg` file. A missing file is ERR_CONFIG with a hint to copy the template. */
export async function loadArgFile(path: string, opts: ArgFileOptions = {}): Promise<BuildConfig> {
  return parseArgText(await readConfigText(path, 'cp .arg.template .arg, or pass --arg-file <path>'), path, opts);
}

/**
 * Read a config file as UTF-8 (size-limited, UTF-8 checked; src/text-input.ts), turning I/O errors into ERR_CONFIG
 * naming the path. Default limit: {@link INPUT_LIMITS}.argFile. @internal
 */
export async function readConfigText(
  path: string,
  hint: string,
  limit: number = INPUT_LIMITS.argFile,
  what = '.arg',
): Promise<string> {
  return readTextInput(path, { what, limit, hint });
}
