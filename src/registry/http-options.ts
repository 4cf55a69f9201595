/**
 * Connection options shared by every registry a client talks to: the generic HTTP options (http/dispatcher.ts),
 * credentials, certs.d, insecure registries, the per-registry request limit and ranged blob reads.
 */
import type { HttpOptions } from '../http/dispatcher.js';
import type { BlobPartsOptions } from './blob-parts.js';
import type { CredentialOptions } from './credentials.js';

/** Connection options shared by every registry a client talks to. */
export interface RegistryHttpOptions extends CredentialOptions, HttpOptions {
  /** Registries (`host[:port]`) reached over plain HTTP instead of HTTPS. Default: []. */
  insecureRegistries?: string[] | undefined;
  /**
   * Certificate directory for every registry, like skopeo's `--cert-dir`: CAs (`*.crt`, `*.pem`), a client pair
   * (`NAME.cert` + `NAME.key`), and the same per `<host[:port]>/` sub-directory. Replaces the certs.d search
   * (`certsDirs`). Default: none.
   */
  certsDir?: string | undefined;
  /** Extra CA certificate files (PEM). Default: []. */
  caFiles?: string[] | undefined;
  /**
   * containers-certs.d roots searched for `<host[:port]>/` (CAs `*.crt`, client pair `NAME.cert` + `NAME.key`);
   * the first existing one is used. Default: `~/.config/containers/certs.d`, `/etc/containers/certs.d`,
   * `/etc/docker/certs.d` (certs-d.ts).
   */
  certsDirs?: string[] | undefined;
  /**
   * Requests in flight per registry; a streaming response body holds its slot until consumed. Copying between two
   * repositories of one registry must use two RegistryHttp instances (the transports do), or a PUT fed by a GET
   * on the same instance can starve. Default: 8 (DEFAULT_CONCURRENCY, as the copy engine's blob concurrency).
   */
  concurrency?: number | undefined;
  /**
   * Parallel ranged reads of large blobs (blob-parts.ts): a blob of 2 MiB+ whose one stream turns out slow takes
   * idle connections for Range parts of up to 8 MiB (or halves of its longest stream), 8 streams at most, 64 MiB
   * read-ahead per process, and up to `concurrency` more connections that only such parts use (16 in all at most,
   * BlobPartsOptions.connections); `false` reads every blob with one GET. Default: on.
   */
  blobParts?: BlobPartsOptions | false | undefined;
}
