/**
 * Error model shared by the library and the CLI.
 * Every failure the user can act on is a CanvosError with a stable code; the CLI maps the code
 * to an exit status (EXIT_CODES) and prints `message` as one line (plus `hint` when set).
 */

/** Stable machine-readable error codes. */
export type ErrorCode =
  | 'ERR_USAGE'
  | 'ERR_CONFIG'
  | 'ERR_REFERENCE_INVALID'
  | 'ERR_TRANSPORT_UNKNOWN'
  | 'ERR_MANIFEST_INVALID'
  | 'ERR_MANIFEST_UNKNOWN'
  | 'ERR_BLOB_UNKNOWN'
  | 'ERR_DIGEST_MISMATCH'
  | 'ERR_SIZE_MISMATCH'
  | 'ERR_PLATFORM_NOT_FOUND'
  | 'ERR_REGISTRY_AUTH'
  | 'ERR_REGISTRY_HTTP'
  | 'ERR_NETWORK'
  | 'ERR_TIMEOUT'
  | 'ERR_TAR_UNSAFE'
  | 'ERR_LAYER_CORRUPT'
  | 'ERR_LAYOUT'
  | 'ERR_DOWNLOAD'
  | 'ERR_XORRISO_MISSING'
  | 'ERR_XORRISO_EXIT'
  | 'ERR_ISO'
  | 'ERR_DISK'
  | 'ERR_MIRROR_PARTIAL'
  | 'ERR_RUN_FAILED'
  | 'ERR_EXEC_UNAVAILABLE'
  | 'ERR_ABORTED'
  | 'ERR_INTERNAL'
  | 'ERR_FILESYSTEM';

/**
 * For a value an invariant of the code guarantees (`xs[0] ?? internalError('xs is never empty')`): reaching it is a
 * bug in canvos-lite, never a user error (exit 70).
 */
export function internalError(what: string): never {
  throw new CanvosError('ERR_INTERNAL', `internal error: ${what}`, {
    hint: 'this is a bug in canvos-lite; please report it',
  });
}

/** CLI exit status for each code. 1 is reserved for unexpected (non-Canvos) errors. */
export const EXIT_CODES: Readonly<Record<ErrorCode, number>> = {
  ERR_USAGE: 2,
  ERR_CONFIG: 3,
  ERR_REFERENCE_INVALID: 4,
  ERR_TRANSPORT_UNKNOWN: 17,
  ERR_MANIFEST_INVALID: 5,
  ERR_MANIFEST_UNKNOWN: 6,
  ERR_BLOB_UNKNOWN: 6,
  ERR_PLATFORM_NOT_FOUND: 6,
  ERR_DIGEST_MISMATCH: 7,
  ERR_SIZE_MISMATCH: 7,
  ERR_REGISTRY_AUTH: 8,
  ERR_REGISTRY_HTTP: 9,
  ERR_NETWORK: 10,
  ERR_TIMEOUT: 10,
  ERR_TAR_UNSAFE: 11,
  ERR_LAYER_CORRUPT: 7,
  ERR_LAYOUT: 12,
  ERR_DOWNLOAD: 13,
  ERR_XORRISO_MISSING: 14,
  ERR_XORRISO_EXIT: 15,
  ERR_ISO: 15,
  ERR_DISK: 15,
  ERR_MIRROR_PARTIAL: 16,
  ERR_RUN_FAILED: 18,
  ERR_EXEC_UNAVAILABLE: 19,
  ERR_ABORTED: 130,
  ERR_INTERNAL: 70,
  ERR_FILESYSTEM: 20,
};

const BRAND = Symbol.for('canvos-lite.error');

export interface CanvosErrorOptions {
  /** The underlying error, kept for --debug output. */
  cause?: unknown;
  /** One short sentence telling the user how to fix it. */
  hint?: string;
  /** Extra structured details for --json output. Never put secrets here. */
  details?: Record<string, unknown>;
}

/** The base class of every error the library throws on purpose. */
export class CanvosError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  /**
   * `message` and `hint` go through {@link redactText} here, so an error built from a reference or URL carries no
   * userinfo or credential query value, also for library callers that print `e.message` themselves.
   */
  constructor(code: ErrorCode, message: string, opts: CanvosErrorOptions = {}) {
    super(redactText(message), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CanvosError';
    this.code = code;
    this.hint = opts.hint === undefined ? undefined : redactText(opts.hint);
    this.details = opts.details;
    Object.defineProperty(this, BRAND, { value: true });
  }
  /** Works across duplicated copies of the package. */
  static is(e: unknown): e is CanvosError {
    return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
  }
  /** The CLI exit status for this error. */
  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

/** An HTTP failure from a registry. `url` never carries userinfo or query secrets. */
export class RegistryHttpError extends CanvosError {
  readonly status: number;
  readonly method: string;
  readonly url: string;
  readonly bodyExcerpt: string;
  constructor(method: string, url: string, status: number, bodyExcerpt: string, opts: CanvosErrorOptions = {}) {
    const code: ErrorCode = status === 401 || status === 403 ? 'ERR_REGISTRY_AUTH' : 'ERR_REGISTRY_HTTP';
    const safeUrl = redactUrl(url);
    const excerpt = bodyExcerpt.replace(/\s+/g, ' ').slice(0, 200);
    super(code, `${method} ${safeUrl} failed: HTTP ${status}${excerpt ? ` (${excerpt})` : ''}`, opts);
    this.name = 'RegistryHttpError';
    this.status = status;
    this.method = method;
    this.url = safeUrl;
    this.bodyExcerpt = excerpt;
  }
}

/** xorriso exited non-zero. */
export class XorrisoError extends CanvosError {
  /** xorriso's own exit status (null when a signal ended it); `exitCode` is the CLI's, from the error code. */
  readonly processExitCode: number | null;
  readonly signal: string | null;
  readonly argv: readonly string[];
  readonly stderrTail: string;
  constructor(exitCode: number | null, signal: string | null, argv: readonly string[], stderrTail: string) {
    super('ERR_XORRISO_EXIT', `xorriso failed (${signal ?? `exit ${exitCode}`}): ${lastLine(stderrTail)}`, {
      details: { argv, stderrTail },
    });
    this.name = 'XorrisoError';
    this.processExitCode = exitCode;
    this.signal = signal;
    this.argv = argv;
    this.stderrTail = stderrTail;
  }
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

const SECRET_PARAM = /sig|signature|token|key|credential|secret|password|passwd|auth|session|policy/i;

/** Strip userinfo and sensitive query parameters from a URL for display. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    for (const k of [...u.searchParams.keys()]) {
      if (SECRET_PARAM.test(k)) u.searchParams.set(k, 'REDACTED');
    }
    return u.toString();
  } catch {
    return redactText(url);
  }
}

/**
 * Mask secrets anywhere in a text (a message, a reference, a JSON document) before it is shown or stored: the
 * userinfo of `scheme://user:pass@host` and of `user:pass@host/…` references, and the values of query parameters
 * that carry credentials (`token=`, `X-Amz-Signature=`, `sig=`, `password=`, …). The one redaction path for
 * stdout, stderr, --json, logs and image metadata.
 */
export function redactText(text: string): string {
  return (
    text
      .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@"'<>]*@/gi, '$1')
      // USER:PASS@ before anything but a digest (`repo:tag@sha256:…`): also before a bare host (`u:p@ttl.sh`).
      .replace(/(^|[\s"'=(,])[^\s/@"'=:(,]+:[^\s/@"']+@(?!sha\d+:)(?=[^\s"'@])/gi, '$1')
      .replace(/([?&;]([a-z0-9_.-]*))=([^&\s"'#;]+)/gi, (m, pre: string, name: string) =>
        SECRET_PARAM.test(name) ? `${pre}=REDACTED` : m,
      )
  );
}
