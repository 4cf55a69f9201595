/**
 * Per-registry authentication state: which scheme the registry asked for (learned from the first 401),
 * the resolved credentials, and bearer tokens cached per scope set. The transport asks it for an
 * Authorization value before each request and hands it every 401 challenge.
 */
import { CanvosError } from '../errors.js';
import { parseAuthChallenges, pickChallenge, type AuthChallenge } from './auth-challenge.js';
import { resolveCredentials, type CredentialOptions, type Credentials } from './credentials.js';
import { basicAuth, fetchBearerToken, scopeKey, TokenCache, type TokenRequester } from './token.js';

/** `repository:<name>:<actions>` scope string. */
export function repoScope(repository: string, actions: 'pull' | 'push' | 'pull,push'): string {
  return `repository:${repository}:${actions}`;
}

/** Authentication for one registry. */
export class RegistryAuth {
  /** Canonical registry name (for credential lookup and messages). */
  readonly registry: string;
  private readonly credOpts: CredentialOptions;
  private readonly tokens = new TokenCache();
  private readonly requester: TokenRequester;
  private challenge: AuthChallenge | undefined;
  private credsPromise: Promise<Credentials | undefined> | undefined;
  private inflight = new Map<string, Promise<string>>();

  constructor(registry: string, requester: TokenRequester, credOpts: CredentialOptions = {}) {
    this.registry = registry;
    this.requester = requester;
    this.credOpts = credOpts;
  }

  /** The scheme the registry asked for so far: `none` until a 401 was seen. */
  get scheme(): 'none' | 'basic' | 'bearer' {
    const s = this.challenge?.scheme;
    return s === 'basic' || s === 'bearer' ? s : 'none';
  }

  /** The credentials for this registry (looked up once). */
  credentials(): Promise<Credentials | undefined> {
    this.credsPromise ??= resolveCredentials(this.registry, this.credOpts);
    return this.credsPromise;
  }

  /**
   * The Authorization header value to send for `scopes`, or undefined (anonymous / scheme not known yet).
   * Fetches a bearer token when the registry is known to want one, so streaming bodies are not wasted on a 401.
   */
  async authorization(scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) {
      // Before the registry asked for anything, stay anonymous: looking credentials up here would run credential
      // helpers (and fail on a missing `desktop` helper in CI) even for public registries. Explicit registry tokens
      // are the exception: they are sent as is.
      const token = this.credOpts.credentials?.registryToken;
      return token ? `Bearer ${token}` : undefined;
    }
    if (ch.scheme === 'basic') {
      const creds = await this.credentials();
      return creds?.username !== undefined && creds.password !== undefined
        ? basicAuth(creds.username, creds.password)
        : undefined;
    }
    return `Bearer ${await this.bearer(scopes, signal)}`;
  }

  private async bearer(scopes: readonly string[], signal?: AbortSignal): Promise<string> {
    const key = scopeKey(this.registry, scopes);
    const cached = this.tokens.get(key);
    if (cached) return cached.token;
    // One token request per scope set even when many blobs start at once.
    let p = this.inflight.get(key);
    if (!p) {
      p = (async () => {
        const creds = await this.credentials();
        if (creds?.registryToken) return creds.registryToken;
        const tok = await fetchBearerToken(
          this.requester,
          this.registry,
          this.challenge as AuthChallenge,
          scopes,
          creds,
          signal,
        );
        this.tokens.set(key, tok);
        return tok.token;
      })().finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /**
   * Handle a 401 for a request sent with `sentAuth`. Returns the scopes to retry with (the request's own plus any
   * scope the challenge names), or throws ERR_REGISTRY_AUTH when retrying cannot help.
   */
  async onUnauthorized(
    wwwAuthenticate: string | string[] | undefined,
    scopes: readonly string[],
    sentAuth: string | undefined,
    what: string,
  ): Promise<string[]> {
    const ch = pickChallenge(parseAuthChallenges(wwwAuthenticate));
    const creds = await this.credentials();
    if (!ch) {
      throw new CanvosError(
        'ERR_REGISTRY_AUTH',
        `${what}: registry ${this.registry} answered 401 without a usable WWW-Authenticate challenge`,
        {
          hint: 'check the registry address; a proxy may be intercepting the request',
        },
      );
    }
    const hadChallenge = this.challenge;
    this.challenge = ch;
    const retryScopes = [...scopes];
    if (ch.scheme === 'bearer' && ch.params.scope) {
      for (const s of ch.params.scope.split(' ')) if (s && !retryScopes.includes(s)) retryScopes.push(s);
    }
    if (ch.scheme === 'basic') {
      if (creds?.username === undefined || creds.password === undefined)
        throw this.authError(what, creds, 'requires credentials');
      if (sentAuth?.startsWith('Basic ')) throw this.authError(what, creds, 'rejected the credentials');
      return retryScopes;
    }
    if (ch.scheme !== 'bearer') throw this.authError(what, creds, `asked for unsupported auth scheme "${ch.scheme}"`);
    if (sentAuth?.startsWith('Bearer ') && hadChallenge?.scheme === 'bearer') {
      // We already sent a token for these scopes: a fresh one will not do better unless the old one expired.
      const key = scopeKey(this.registry, retryScopes);
      const cached = this.tokens.get(key);
      if (cached && `Bearer ${cached.token}` === sentAuth) {
        this.tokens.set(key, { token: cached.token, expiresAt: 0 });
        throw this.authError(what, creds, creds ? 'denied access with these credentials' : 'denied anonymous access');
      }
    }
    return retryScopes;
  }

  private authError(what: string, creds: Credentials | undefined, problem: string): CanvosError {
    const who = creds?.username
      ? ` (user ${JSON.stringify(creds.username)})`
      : creds?.identityToken
        ? ' (identity token)'
        : '';
    return new CanvosError('ERR_REGISTRY_AUTH', `${what}: registry ${this.registry} ${problem}${who}`, {
      hint: creds
        ? 'check the username/password or token and that it may access this repository'
        : `log in first (docker login ${this.registry}) or pass credentials`,
    });
  }
}
