/**
 * The rootless executor (src/exec/) as the Dockerfile build uses it: the up-front check that RUN can work on this
 * host (user namespaces, bwrap, the image's architecture), with the failure naming the first RUN's `Dockerfile:LINE`.
 * Tests and library users may pass another {@link Executor} with the same shape.
 */
import { CanvosError } from '../errors.js';
import { checkArch, openWorkspace, probeUserNamespaces } from '../exec/index.js';

/** The executor entry points the build calls. Default: {@link defaultExecutor}. */
export interface Executor {
  probeUserNamespaces: typeof probeUserNamespaces;
  checkArch: typeof checkArch;
  openWorkspace: typeof openWorkspace;
}

/** canvos-lite's rootless executor. */
export const defaultExecutor: Executor = { probeUserNamespaces, checkArch, openWorkspace };

/**
 * Throw ERR_EXEC_UNAVAILABLE (`Dockerfile:LINE: RUN cannot run here: <reason>` + the executor's hint) unless RUN
 * can be executed for `arch`.
 */
export async function checkExecutor(
  where: string,
  arch: 'amd64' | 'arm64',
  exec: Executor = defaultExecutor,
  signal?: AbortSignal,
): Promise<void> {
  const probe = await exec.probeUserNamespaces(signal ? { signal } : {});
  if (!probe.ok)
    throw new CanvosError('ERR_EXEC_UNAVAILABLE', `${where}: RUN cannot be executed here: ${probe.reason}`, {
      hint: probe.hint,
    });
  try {
    exec.checkArch(arch);
  } catch (e) {
    if (!CanvosError.is(e)) throw e;
    throw new CanvosError(e.code, `${where}: RUN cannot be executed here: ${e.message}`, { hint: e.hint, cause: e });
  }
}
