/**
 * Vocabulary shared by mirror plan/push/save/load: what is mirrored (MirrorItem), the options every run takes,
 * and the machine-readable report (per-image results plus the failure list that makes the run partial).
 */
import type { OpOptions } from '../image/types.js';
import type { Platform } from '../image/platform.js';
import type { Reference } from '../registry/reference.js';
import type { RegistryTransportOptions } from '../transports/registry/registry-image.js';
import type { ConcurrencyOptions, RewriteOptions } from './config.js';

/** One image to mirror: a source reference (tag or digest) and the platforms to keep. */
export interface MirrorItem {
  source: Reference;
  /** Platforms to keep; undefined = every platform, byte-exact. */
  platforms?: Platform[] | undefined;
  /** Where the item came from, e.g. `images[2]`, `fromBuild:base`, `referrer of …`. */
  origin: string;
}

/** Options shared by every mirror operation. */
export interface MirrorOptions extends OpOptions {
  /** Options for source registries (credentials, insecureRegistries, TLS). Default: {}. */
  sourceRegistry?: RegistryTransportOptions | undefined;
  /** Options for the destination registry. Default: {}. */
  destRegistry?: RegistryTransportOptions | undefined;
  /** Concurrency limits. Default: 4 images, 8 blobs, 6 requests per registry. */
  concurrency?: ConcurrencyOptions | undefined;
  /** Destination naming. Default: keep `<registry>/<path>` under the destination's path. */
  rewrite?: RewriteOptions | undefined;
  /** Copy signatures/SBOMs/attestations (referrers API, cosign `sha256-<hex>.*` tags). Default: true. */
  referrers?: boolean | undefined;
}

/** A failed image (the run went on with the others). */
export interface MirrorFailure {
  source: string;
  destination?: string | undefined;
  code: string;
  message: string;
  hint?: string | undefined;
}

/** A mirrored image. */
export interface MirrorImageResult {
  source: string;
  destination: string;
  digest: string;
  mediaType: string;
  platforms: string[];
  /** True for signatures/SBOMs/attestations copied along with an image. */
  referrer: boolean;
  blobs: { copied: number; skipped: number; mounted: number; bytes: number };
}

/** What a push/save/load did. A non-empty `failures` means the run was partial (CLI: ERR_MIRROR_PARTIAL). */
export interface MirrorReport {
  operation: 'push' | 'save' | 'load';
  destination: string;
  images: MirrorImageResult[];
  failures: MirrorFailure[];
  totals: {
    images: number;
    failed: number;
    blobsCopied: number;
    blobsSkipped: number;
    bytesCopied: number;
    seconds: number;
  };
  /** Written files (archive parts and manifest, registries.yaml). */
  files: string[];
}
