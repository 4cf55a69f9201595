/**
 * The interface shared by the native addon and the JS fallback for chunked compression.
 */

/** Streaming zstd decoder: feed compressed bytes, get decompressed bytes; `end()` throws on a truncated stream. */
export interface ZstdDecoder {
  push(chunk: Buffer): Buffer;
  end(): void;
}

/** Compresses independent chunks on the thread pool; each result is a complete gzip member / zstd frame. */
export interface ChunkCompressor {
  readonly backend: 'native' | 'js';
  readonly versions: Record<string, string>;
  /** One gzip member. Levels 1..9 (native accepts up to 12). */
  gzip(chunk: Buffer, level: number): Promise<Buffer>;
  /**
   * One zlib stream (RFC 1950), adler32 included, computed off the main thread; levels 1..12. Only on an addon that
   * has it (older prebuilds do not): callers fall back to `gzip` and re-wrap.
   */
  readonly zlib?: ((chunk: Buffer, level: number) => Promise<Buffer>) | undefined;
  /** One zstd frame with content checksum. Throws ERR_CONFIG when no zstd implementation is available. */
  zstd(chunk: Buffer, level: number): Promise<Buffer>;
  /** A streaming zstd decoder. Throws ERR_CONFIG when no zstd implementation is available. */
  zstdDecoder(): ZstdDecoder;
}

/** @internal The raw addon exports (native/src/canvos_native.cc). */
export interface NativeBinding {
  // Plain functions of the addon (no `this`), hence properties rather than methods.
  gzip: (chunk: Buffer, level: number, cb: (err: Error | null, out?: Buffer) => void) => void;
  /** Absent from addons built before it was added. */
  zlib?: ((chunk: Buffer, level: number, cb: (err: Error | null, out?: Buffer) => void) => void) | undefined;
  zstd: (chunk: Buffer, level: number, cb: (err: Error | null, out?: Buffer) => void) => void;
  ZstdDecoder: new () => ZstdDecoder;
  libdeflateVersion: string;
  zstdVersion: string;
}
