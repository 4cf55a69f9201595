/**
 * The ERR_NETWORK error a failed registry request ends in: names the host and the phase that timed out, tells TLS
 * trust problems and refused client certificates apart, and hints at the options that fix each.
 */
import { CanvosError } from '../errors.js';
import { DEFAULT_TIMEOUT_MS, isTimeoutError } from '../http/retry.js';
import { clientCertError } from './certs-d.js';

/** Wrap a connection failure as ERR_NETWORK naming the host (a refused client certificate: certs-d.ts). */
export function networkError(what: string, e: unknown, timeoutMs?: number): CanvosError {
  const msg = e instanceof Error ? e.message : String(e);
  const rawCode = (e as { code?: unknown }).code;
  const code = typeof rawCode === 'string' ? rawCode : '';
  const clientCert = clientCertError(what, e);
  if (clientCert) return clientCert;
  const host =
    /^\S+ (\w+:\/\/[^/\s]+)/.exec(what)?.[1]?.replace(/^\w+:\/\//, '') ??
    /\bto (\S+)$/.exec(what)?.[1] ??
    'the registry';
  if (isTimeoutError(e)) {
    const s = Math.round((timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000);
    const phase =
      code === 'UND_ERR_CONNECT_TIMEOUT'
        ? 'no connection'
        : code === 'UND_ERR_BODY_TIMEOUT'
          ? 'the response body stalled'
          : 'no response';
    return new CanvosError('ERR_NETWORK', `${what} failed: ${phase} within ${s} s (${code || 'timeout'})`, {
      cause: e,
      hint: `check that ${host} is up and reachable (proxy settings HTTPS_PROXY/NO_PROXY), or raise --timeout for a slow link`,
    });
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(code)) {
    return new CanvosError('ERR_NETWORK', `${what} failed: TLS certificate not trusted (${code})`, {
      cause: e,
      hint: 'add the registry CA with certsDir/caFiles, list the host in insecureRegistries if it speaks plain HTTP, or disable tlsVerify',
    });
  }
  return new CanvosError('ERR_NETWORK', `${what} failed: ${msg}`, {
    cause: e,
    hint: `check the network, proxy settings (HTTPS_PROXY/NO_PROXY) and that ${host} is up`,
  });
}
