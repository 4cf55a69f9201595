/**
 * Public types of the rootless RUN executor (openWorkspace).
 */
import type { Readable } from 'node:stream';

/** One layer of the image to materialise, base first. `open()` returns the UNCOMPRESSED (or gzip/zstd) tar stream; it may be called more than once. */
export interface ExecLayer {
  diffId: string;
  open(): Promise<NodeJS.ReadableStream | Readable>;
}

/** Options of openWorkspace. */
export interface WorkspaceOptions {
  /** Applied in order with OCI whiteouts and opaque directories. */
  layers: readonly ExecLayer[];
  /** The image's architecture; a foreign one runs through qemu-user via binfmt when registered, else ERR_EXEC_UNAVAILABLE. */
  arch: 'amd64' | 'arm64';
  /** Parent of the work directory. Default: os.tmpdir(). */
  tmpDir?: string | undefined;
  /**
   * Where captured RUN layers are written. Default: inside the work directory, so they are removed by close();
   * set it to keep them after close().
   */
  layerDir?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Warnings: EXEC_SINGLE_UID (no subordinate id range), EXEC_EMULATED (foreign arch through qemu), EXEC_CHOWN. */
  onWarning?: ((code: string, message: string) => void) | undefined;
}

/** One RUN. */
export interface RunStep {
  /** Already resolved (shell form = [...SHELL, cmd]). */
  argv: string[];
  /** The full environment the process sees (image ENV + build ARGs + proxies). */
  env: Record<string, string>;
  /** Absolute path inside the rootfs ('/' default); created if missing (and then part of the captured layer). */
  workdir: string;
  /** 'root' default; NAME, UID, NAME:GROUP or UID:GID resolved against the rootfs /etc/passwd and /etc/group. */
  user?: string | undefined;
  /** E.g. 'Dockerfile:14'; used in errors. */
  label: string;
  /**
   * Host directory of PEM certificates (CanvOS certs/): combined with the image's CA bundle into a file the command
   * sees through SSL_CERT_FILE, CURL_CA_BUNDLE, REQUESTS_CA_BUNDLE and NODE_EXTRA_CA_CERTS (unless env sets them).
   */
  certsDir?: string | undefined;
  /** Seconds; entry mtimes in the captured layer are clamped to this (SOURCE_DATE_EPOCH), like BuildKit's rewrite-timestamp. */
  mtime?: number | undefined;
  /** The command's output as it arrives. */
  onOutput?: ((chunk: Buffer, stream: 'stdout' | 'stderr') => void) | undefined;
}

/** The filesystem difference of one RUN: an uncompressed tar layer. */
export interface CapturedLayer {
  tarPath: string;
  diffId: string;
  size: number;
  entries: number;
}

/** A materialised rootfs commands run in. */
export interface Workspace {
  readonly rootfs: string;
  /** Apply a layer (e.g. a COPY layer) so later RUNs see it. */
  applyLayer(tar: Readable | NodeJS.ReadableStream): Promise<void>;
  /** Run a step; a non-zero exit throws ERR_RUN_FAILED ('<label>: RUN exited with N: <last stderr line>'). */
  run(step: RunStep): Promise<CapturedLayer>;
  /** Remove the work directory (also after a failure or an abort). */
  close(): Promise<void>;
}
