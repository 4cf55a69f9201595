/**
 * Parser for `WWW-Authenticate` challenges (RFC 7235): `Basic realm="x"`, `Bearer realm="…",service="…",scope="…"`.
 * Quoted values may contain commas and escaped quotes; several challenges may share one header.
 */

/** One authentication challenge. Scheme is lowercased; parameter names are lowercased. */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse one or more challenges out of `WWW-Authenticate` header value(s). Unparseable input yields []. */
export function parseAuthChallenges(header: string | string[] | undefined): AuthChallenge[] {
  if (header === undefined) return [];
  if (Array.isArray(header)) return header.flatMap((h) => parseAuthChallenges(h));
  const out: AuthChallenge[] = [];
  let i = 0;
  const s = header;
  const skipWs = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < s.length && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(s[i] ?? '')) i++;
    return s.slice(start, i);
  };
  while (i < s.length) {
    skipWs();
    while (s[i] === ',') {
      i++;
      skipWs();
    }
    const scheme = token();
    if (scheme === '') break;
    const ch: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    // Parameters: name=value or name="quoted", comma separated, until the next scheme token.
    for (;;) {
      skipWs();
      const save = i;
      const name = token();
      skipWs();
      if (name === '' || s[i] !== '=') {
        // Not a parameter: the start of the next challenge (token68 forms are not used by registries).
        i = save;
        break;
      }
      i++; // '='
      skipWs();
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s.charAt(i);
          i++;
        }
        i++; // closing quote
      } else {
        const start = i;
        while (i < s.length && s[i] !== ',' && s[i] !== ' ') i++;
        value = s.slice(start, i);
      }
      ch.params[name.toLowerCase()] = value;
      skipWs();
      if (s[i] === ',') {
        i++;
        continue;
      }
      break;
    }
  }
  return out;
}

/** The Bearer challenge if present, else the Basic one, else undefined. */
export function pickChallenge(challenges: AuthChallenge[]): AuthChallenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}
