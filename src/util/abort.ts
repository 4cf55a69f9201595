/**
 * AbortSignal → error, the one way: an aborted operation ends in CanvosError ERR_ABORTED (exit 130), whatever
 * step noticed it. `throwIfAborted` between steps, `abortedOr` in a catch (a failure caused by the abort becomes
 * ERR_ABORTED), `sleep` and waits that reject with the same error.
 */
import { CanvosError } from '../errors.js';

/** The error of an aborted operation (the signal's reason as its cause). */
export function abortError(signal: AbortSignal | undefined): CanvosError {
  return new CanvosError('ERR_ABORTED', 'operation aborted', { cause: signal?.reason });
}

/** Throw ERR_ABORTED when `signal` has fired (unlike `AbortSignal.throwIfAborted`, never the raw reason). */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/**
 * The error to rethrow after `e` when the operation may have been aborted: when `signal` fired, ERR_ABORTED (an
 * ERR_ABORTED `e` is kept, a CanvosError stays as it is when `keepCanvos`), otherwise `e` itself.
 */
export function abortedOr(signal: AbortSignal | undefined, e: unknown, keepCanvos = true): unknown {
  if (!signal?.aborted) return e;
  if (CanvosError.is(e) && (keepCanvos || e.code === 'ERR_ABORTED')) return e;
  return abortError(signal);
}

/** Sleep that rejects with ERR_ABORTED when the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError(signal));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
