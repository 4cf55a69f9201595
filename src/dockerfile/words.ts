/**
 * BuildKit's shell-word rules for the instructions the builder itself expands (COPY, ADD, ENV, ARG, LABEL, WORKDIR,
 * USER, EXPOSE, VOLUME, STOPSIGNAL, FROM and flag values): word splitting outside quotes, quote removal, the escape
 * character, and `$X`, `${X}`, `${X:-d}`, `${X-d}`, `${X:+a}`, `${X+a}`, `${X:?e}`, `${X?e}`, `${X#p}`, `${X##p}`,
 * `${X%p}`, `${X%%p}`, `${X/p/r}`, `${X//p/r}`. Single quotes and an escaped `$` keep a `$` literal.
 * RUN's shell form is not expanded here: the shell does it with the ARG/ENV values in its environment.
 */

/** Variables in scope: name → value (absent = unset). */
export type Vars = ReadonlyMap<string, string>;

/** Thrown by {@link expandWord} for `${X:?msg}` and bad modifiers; the caller adds `Dockerfile:LINE`. */
export class WordError extends Error {}

/** Split `s` into raw words at unquoted, unescaped blanks; quotes and escapes are kept for {@link expandWord}. */
export function splitWords(s: string, escape = '\\'): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] as string;
    if (quote) {
      cur += ch;
      if (ch === escape && quote === '"' && i + 1 < s.length) cur += s.charAt(++i);
      else if (ch === quote) quote = '';
      continue;
    }
    if (ch === ' ' || ch === '\t' || ch === '\n') {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    cur += ch;
    if (ch === escape && i + 1 < s.length) cur += s.charAt(++i);
    else if (ch === '"' || ch === "'") quote = ch;
  }
  if (inWord) out.push(cur);
  return out;
}

/** Quote and escape removal without variable expansion. */
export function unquote(word: string, escape = '\\'): string {
  return expandWord(word, new Map(), escape, { noVars: true });
}

/** Expand one raw word: quotes removed, variables substituted. Throws WordError. */
export function expandWord(word: string, vars: Vars, escape = '\\', o: { noVars?: boolean } = {}): string {
  const st = { s: word, i: 0 };
  return lex(st, vars, escape, o.noVars === true, '');
}

/** Expand a whole argument string into words (COPY/ADD sources, EXPOSE, VOLUME…). */
export function expandWords(s: string, vars: Vars, escape = '\\'): string[] {
  return splitWords(s, escape).map((w) => expandWord(w, vars, escape));
}

interface State {
  s: string;
  i: number;
}

/** Lex until `stop` (a `}` ending a `${…}` word part) or the end. */
function lex(st: State, vars: Vars, esc: string, noVars: boolean, stop: string): string {
  let out = '';
  while (st.i < st.s.length) {
    const ch = st.s[st.i] as string;
    if (stop && ch === stop) return out;
    st.i++;
    if (ch === esc) {
      if (st.i < st.s.length) out += st.s.charAt(st.i++);
      else out += ch;
    } else if (ch === "'") {
      const end = st.s.indexOf("'", st.i);
      if (end < 0) throw new WordError('unexpected end of statement while looking for matching single-quote');
      out += st.s.slice(st.i, end);
      st.i = end + 1;
    } else if (ch === '"') {
      out += doubleQuoted(st, vars, esc, noVars);
    } else if (ch === '$' && !noVars) {
      out += dollar(st, vars, esc);
    } else {
      out += ch;
    }
  }
  if (stop) throw new WordError(`syntax error: missing '${stop}'`);
  return out;
}

function doubleQuoted(st: State, vars: Vars, esc: string, noVars: boolean): string {
  let out = '';
  while (st.i < st.s.length) {
    const ch = st.s[st.i++] as string;
    if (ch === '"') return out;
    if (ch === esc && st.i < st.s.length) {
      const next = st.s[st.i] as string;
      // Only these can be escaped inside double quotes; other escapes stay as written (BuildKit).
      if (next === '"' || next === '$' || next === esc) {
        out += next;
        st.i++;
      } else {
        out += ch;
      }
    } else if (ch === '$' && !noVars) {
      out += dollar(st, vars, esc);
    } else {
      out += ch;
    }
  }
  throw new WordError('unexpected end of statement while looking for matching double-quote');
}

function dollar(st: State, vars: Vars, esc: string): string {
  const s = st.s;
  if (s[st.i] !== '{') {
    const m = /^(?:[A-Za-z_][A-Za-z0-9_]*|[0-9])/.exec(s.slice(st.i));
    if (!m) return '$';
    st.i += m[0].length;
    return vars.get(m[0]) ?? '';
  }
  st.i++;
  const m = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9]/.exec(s.slice(st.i));
  if (!m) throw new WordError(`bad substitution: \${${s.slice(st.i, s.indexOf('}', st.i) >>> 0)}}`);
  const name = m[0];
  st.i += name.length;
  const value = vars.get(name);
  if (s[st.i] === '}') {
    st.i++;
    return value ?? '';
  }
  const op = /^(:[-+?]|[-+?]|##|#|%%|%|\/\/|\/)/.exec(s.slice(st.i))?.[0];
  if (!op) throw new WordError(`unsupported modifier (${s[st.i] ?? ''}) in substitution`);
  st.i += op.length;
  if (op === '/' || op === '//') {
    const pat = lex({ s: until(st, '/'), i: 0 }, vars, esc, false, '');
    if (s[st.i] === '/') st.i++;
    const repl = lex(st, vars, esc, false, '}');
    st.i++;
    return replacePattern(value ?? '', pat, repl, op === '//');
  }
  const word = lex(st, vars, esc, false, '}');
  st.i++;
  const empty = value === undefined || value === '';
  switch (op) {
    case ':-':
      return empty ? word : value;
    case '-':
      return value === undefined ? word : value;
    case ':+':
      return empty ? '' : word;
    case '+':
      return value === undefined ? '' : word;
    case ':?':
    case '?':
      if (op === ':?' ? empty : value === undefined)
        throw new WordError(`${name}: ${word || 'is not allowed to be unset'}`);
      return value ?? '';
    default:
      return trimPattern(value ?? '', word, op);
  }
}

/** Raw text up to (not including) the next unescaped `ch` or the closing `}`. */
function until(st: State, ch: string): string {
  let out = '';
  while (st.i < st.s.length && st.s[st.i] !== ch && st.s[st.i] !== '}') {
    if (st.s[st.i] === '\\' && st.i + 1 < st.s.length) out += st.s.charAt(st.i++);
    out += st.s.charAt(st.i++);
  }
  return out;
}

/** Shell glob (`*`, `?`, `[…]`) → regex source. */
export function globToRegex(p: string, star = '[\\s\\S]*'): string {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c === '*') out += star;
    else if (c === '?') out += star === '[\\s\\S]*' ? '[\\s\\S]' : '[^/]';
    else if (c === '[') {
      const end = p.indexOf(']', i + 2);
      if (end < 0) out += '\\[';
      else {
        const body = p
          .slice(i + 1, end)
          .replace(/^[!^]/, '^')
          .replace(/\\/g, '\\\\');
        out += `[${body}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < p.length) out += `\\${p[++i]}`;
    else out += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return out;
}

function trimPattern(v: string, pat: string, op: string): string {
  const re = new RegExp(`^${globToRegex(pat)}$`);
  const shortest = op === '#' || op === '%';
  const order = Array.from({ length: v.length + 1 }, (_, k) => k);
  if (op.startsWith('#')) {
    // Prefix lengths: shortest first for #, longest first for ##.
    for (const k of shortest ? order : order.reverse()) if (re.test(v.slice(0, k))) return v.slice(k);
  } else {
    // Suffix start positions: from the end for %, from the start for %%.
    for (const k of shortest ? order.reverse() : order) if (re.test(v.slice(k))) return v.slice(0, k);
  }
  return v;
}

function replacePattern(v: string, pat: string, repl: string, all: boolean): string {
  if (pat === '') return v;
  const re = new RegExp(globToRegex(pat), all ? 'g' : '');
  return v.replace(re, () => repl);
}
