/**
 * CanvOS's exec steps (the Earthfile RUNs canvos-lite runs itself) as RunSteps for the rootless executor, in
 * CanvOS's order after the project Dockerfile: UPDATE_KERNEL (base-image), the kernel headers (provider-image
 * §1.5 step 2), TWO_NODE (provider-image §1.5 step 11). Shared by the build and the dry run.
 */
import type { RunStep } from '../dockerfile/evaluate.js';
import { kernelRunSteps } from './kernel.js';
import type { BuildConfig } from './resolve.js';
import { twoNodeRunSteps, type TwoNodeSources } from './two-node.js';

/** The CanvOS exec steps `c` switches on, in CanvOS's order (reads `<projectDir>/scripts/install-kernel-headers.sh`). */
export async function canvosExecSteps(
  c: BuildConfig,
  projectDir: string,
  twoNode: TwoNodeSources = {},
): Promise<RunStep[]> {
  return [...(await kernelRunSteps(c, projectDir)), ...(c.twoNode ? twoNodeRunSteps(c, twoNode) : [])];
}
