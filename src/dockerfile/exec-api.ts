/**
 * The rootless executor as the Dockerfile build uses it (src/exec/, written separately): probe whether RUN can work
 * on this host, open a workspace holding the rootfs of the layers so far, run a command and get its filesystem
 * change as one tar layer. Loaded lazily, so builds without RUN never touch it.
 */
import { CanvosError } from '../errors.js';
import type { LayerOpener } from '../layers/merge.js';
import type { Digest } from '../oci/digest.js';

/** Options of one command run in a workspace. */
export interface ExecRunOptions {
  argv: string[];
  env: string[];
  workdir: string;
  user: string;
  /** Shown in progress/errors (`Dockerfile:12`). */
  label: string;
  /** Host directory of extra CA certificates (the project's certs/) trusted while the command runs. */
  certsDir?: string | undefined;
  /** Clamp for the mtimes written into the layer (SOURCE_DATE_EPOCH). */
  mtime?: number | undefined;
  onOutput?: ((chunk: Buffer) => void) | undefined;
}

/** A materialised rootfs that commands run in. */
export interface ExecWorkspace {
  rootfs: string;
  /** Apply one more layer (a tar byte stream, compressed or not) on top. */
  applyLayer(tar: AsyncIterable<Buffer>): Promise<void>;
  /** Run a command; its filesystem change is written to `tarPath` as an uncompressed tar layer. */
  run(o: ExecRunOptions): Promise<{ tarPath: string; diffId: Digest; size: number; entries: number }>;
  close(): Promise<void>;
}

/** The executor module's entry points. */
export interface Executor {
  probeUserNamespaces(): Promise<unknown>;
  openWorkspace(o: { layers: LayerOpener[]; arch: string; tmpDir: string; signal?: AbortSignal | undefined; onWarning?: ((code: string, msg: string) => void) | undefined }): Promise<ExecWorkspace>;
}

/** Load the executor, or throw ERR_EXEC_UNAVAILABLE naming the RUN that needs it. */
export async function loadExecutor(where: string): Promise<Executor> {
  const spec = '../exec/index.js';
  try {
    return (await import(spec)) as Executor;
  } catch (e) {
    throw new CanvosError('ERR_EXEC_UNAVAILABLE', `${where}: RUN needs canvos-lite's rootless executor, which this build does not include`, {
      hint: 'pre-bake the change into BASE_IMAGE, or use a canvos-lite release with RUN support',
      cause: e,
    });
  }
}

/** True when the probe result says user namespaces work (accepts a boolean or an `{ ok }`/`{ available }` object). */
export function probeOk(r: unknown): { ok: boolean; reason?: string | undefined } {
  if (typeof r === 'boolean') return { ok: r };
  const o = (r ?? {}) as { ok?: boolean; available?: boolean; reason?: string; message?: string };
  return { ok: o.ok ?? o.available ?? false, reason: o.reason ?? o.message };
}
