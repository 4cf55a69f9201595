/**
 * The Dockerfile parser: text → instructions, with BuildKit's rules for parser directives (`# syntax=`, `# escape=`
 * only before anything else), line continuations (the escape character, `\` or a backtick, optionally followed by
 * blanks), comment and empty lines inside continuations, JSON (exec) and shell forms, leading `--flag[=value]`s and
 * heredocs (`<<EOF`, `<<-EOF`, quoted delimiters, several per instruction). No variable is expanded here (words.ts
 * does that when the instruction is evaluated). Every instruction keeps its first line number.
 */
import { CanvosError } from '../errors.js';
import { splitWords, unquote } from './words.js';

/** A `--name[=value]` flag written before an instruction's arguments. */
export interface InstructionFlag {
  name: string;
  /** Undefined for a bare `--link`. Not expanded yet. */
  value: string | undefined;
}

/** A heredoc body attached to RUN, COPY or ADD. */
export interface Heredoc {
  /** The delimiter word without quotes (`EOF`). */
  name: string;
  /** The body, each line ending in `\n` (tabs stripped for `<<-`). */
  content: string;
  /** False when the delimiter was quoted (`<<'EOF'`, `<<"EOF"`): the body is taken literally. */
  expand: boolean;
}

/** One instruction as written. */
export interface Instruction {
  /** Upper-case keyword (`RUN`, `COPY`…). */
  keyword: string;
  /** 1-based line of the keyword. */
  line: number;
  /** 1-based last line (continuations and heredoc bodies included). */
  endLine: number;
  flags: InstructionFlag[];
  /** The arguments after the flags, continuations joined, unexpanded. */
  args: string;
  /** The exec form, when the arguments are a JSON array of strings. */
  json: string[] | undefined;
  heredocs: Heredoc[];
  /** The instruction's text with continuations joined (`RUN apt-get …`), as BuildKit's `original`. */
  original: string;
}

/** A parsed Dockerfile. */
export interface ParsedDockerfile {
  /** Name used in messages (`Dockerfile`). */
  file: string;
  /** The escape character (`\` unless `# escape=` says otherwise). */
  escape: string;
  /** `# syntax=` value, if any (informational: canvos-lite has one built-in frontend). */
  syntax: string | undefined;
  instructions: Instruction[];
}

/** Options of {@link parseDockerfile}. */
export interface ParseOptions {
  /** Name used in error messages. Default: `Dockerfile`. */
  file?: string | undefined;
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);
const HEREDOC_WORD = /^(?:\d)?<<(-?)(.+)$/;

/** A CanvosError ERR_CONFIG located at `file:line`. */
export function dockerfileError(file: string, line: number, message: string, hint?: string): CanvosError {
  return new CanvosError('ERR_CONFIG', `${file}:${line}: ${message}`, { hint });
}

/** Parse Dockerfile text. Throws ERR_CONFIG (`Dockerfile:LINE: …`) for malformed input. */
export function parseDockerfile(text: string, opts: ParseOptions = {}): ParsedDockerfile {
  const file = opts.file ?? 'Dockerfile';
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let i = 0;
  let escape = '\\';
  let syntax: string | undefined;
  const seen = new Set<string>();
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i] as string);
    const name = m?.[1]?.toLowerCase();
    if (!m || !name || !KNOWN_DIRECTIVES.has(name)) break;
    if (seen.has(name)) throw dockerfileError(file, i + 1, `only one ${name} parser directive can be used`);
    seen.add(name);
    const value = m[2] ?? '';
    if (name === 'escape') {
      if (value !== '\\' && value !== '`')
        throw dockerfileError(
          file,
          i + 1,
          `invalid escape token ${JSON.stringify(value)}`,
          'use # escape=\\ or # escape=`',
        );
      escape = value;
    } else if (name === 'syntax') {
      syntax = value;
    }
  }
  const continuation = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  const isComment = (l: string): boolean => /^\s*#/.test(l);
  const instructions: Instruction[] = [];
  while (i < lines.length) {
    const first = lines[i] as string;
    if (first.trim() === '' || isComment(first)) {
      i++;
      continue;
    }
    const start = i + 1;
    let joined = first.replace(/^\s+/, '');
    i++;
    while (continuation.test(joined)) {
      joined = joined.replace(continuation, '');
      // Comment lines and empty lines inside a continuation are dropped (BuildKit).
      while (i < lines.length && ((lines[i] as string).trim() === '' || isComment(lines[i] as string))) i++;
      if (i >= lines.length) break;
      joined += lines[i] as string;
      i++;
    }
    const m = /^(\S+)\s*([\s\S]*)$/.exec(joined);
    const keyword = (m?.[1] ?? '').toUpperCase();
    let rest = (m?.[2] ?? '').replace(/\s+$/, '');
    const flags: InstructionFlag[] = [];
    // Flags come first; each is one shell word (quotes allowed in values: --mount=type=secret,id="a b").
    for (;;) {
      const fm = /^--([A-Za-z][A-Za-z0-9-]*)(=(?:"[^"]*"|'[^']*'|\S)*)?(?:\s+|$)/.exec(rest);
      if (!fm || rest.startsWith('-- ')) break;
      flags.push({ name: fm[1] as string, value: fm[2] === undefined ? undefined : unquote(fm[2].slice(1), escape) });
      rest = rest.slice(fm[0].length);
    }
    const json = parseJsonForm(rest);
    const heredocs: Heredoc[] = [];
    if (HEREDOC_KEYWORDS.has(keyword) && !json) {
      for (const w of splitWords(rest, escape)) {
        const hm = HEREDOC_WORD.exec(w);
        if (!hm) continue;
        const chomp = hm[1] === '-';
        const quoted = /^(["']).*\1$/.test(hm[2] as string);
        const name = quoted ? (hm[2] as string).slice(1, -1) : unquote(hm[2] as string, escape);
        if (!/^[A-Za-z0-9_.-]+$/.test(name)) continue;
        const body: string[] = [];
        for (;;) {
          if (i >= lines.length)
            throw dockerfileError(
              file,
              start,
              `heredoc <<${name} is not terminated`,
              `end it with a line reading exactly ${name}`,
            );
          let l = lines[i++] as string;
          if (chomp) l = l.replace(/^\t+/, '');
          if (l === name) break;
          body.push(`${l}\n`);
        }
        heredocs.push({ name, content: body.join(''), expand: !quoted && !/[\\"']/.test(hm[2] as string) });
      }
    }
    instructions.push({
      keyword,
      line: start,
      endLine: i,
      flags,
      args: rest,
      json,
      heredocs,
      original: joined.replace(/\s+$/, ''),
    });
  }
  return { file, escape, syntax, instructions };
}

/** The exec form: a JSON array of strings, else undefined (BuildKit then falls back to the shell form). */
function parseJsonForm(s: string): string[] | undefined {
  if (!s.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(s) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    // not JSON: shell form
  }
  return undefined;
}
