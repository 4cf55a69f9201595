/**
 * CanvOS's exec steps (the Earthfile RUNs canvos-lite runs itself) as RunSteps for the rootless executor, in
 * CanvOS's order after the project Dockerfile: UPDATE_KERNEL (base-image), the kernel headers (provider-image
 * §1.5 step 2), TWO_NODE (provider-image §1.5 step 11). Shared by the build and the dry run.
 */
import type { Instruction } from '../dockerfile/parse.js';
import type { RunStep } from '../dockerfile/evaluate.js';
import { redactUrl } from '../errors.js';
import { kernelRunSteps } from './kernel.js';
import type { BuildConfig } from './resolve.js';
import { twoNodeRunSteps, type TwoNodeSources } from './two-node.js';

/**
 * One CanvOS step as an executor RUN step: `argv` (a string: `/bin/sh -c` it), the build's proxies in the
 * environment, history `createdBy` (URLs redacted) ending in `# canvos-lite <tag>`.
 */
export function canvosRunStep(
  c: BuildConfig,
  command: string | string[],
  label: string,
  tag: string,
  shown?: string,
): RunStep {
  const env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
  for (const [k, v] of [
    ['HTTP_PROXY', c.httpProxy],
    ['HTTPS_PROXY', c.httpsProxy],
    ['NO_PROXY', c.noProxy],
  ] as const) {
    if (v) env.push(`${k}=${v}`, `${k.toLowerCase()}=${v}`);
  }
  const argv = typeof command === 'string' ? ['/bin/sh', '-c', command] : command;
  const text = shown ?? argv.join(' ');
  const ins: Instruction = {
    keyword: 'RUN',
    line: 0,
    endLine: 0,
    flags: [],
    args: text,
    json: undefined,
    heredocs: [],
    original: `RUN ${text}`,
  };
  return {
    kind: 'run',
    ins,
    argv,
    env,
    workdir: '/',
    user: 'root',
    createdBy: `RUN ${text.replace(/[a-z]+:\/\/[^\s'"]+/g, (u) => redactUrl(u))} # canvos-lite ${tag}`,
    label,
  };
}

/** The CanvOS exec steps `c` switches on, in CanvOS's order (reads `<projectDir>/scripts/install-kernel-headers.sh`). */
export async function canvosExecSteps(
  c: BuildConfig,
  projectDir: string,
  twoNode: TwoNodeSources = {},
): Promise<RunStep[]> {
  return [...(await kernelRunSteps(c, projectDir)), ...(c.twoNode ? twoNodeRunSteps(c, twoNode) : [])];
}
