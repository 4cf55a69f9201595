/**
 * One CanvOS step (an Earthfile RUN that canvos-lite runs itself) as a RunStep for the rootless executor; used by
 * the kernel (kernel.ts) and TWO_NODE (two-node.ts) steps that exec-steps.ts puts in order.
 */
import type { Instruction } from '../dockerfile/parse.js';
import type { RunStep } from '../dockerfile/evaluate.js';
import { redactUrl } from '../errors.js';
import type { BuildConfig } from './resolve.js';

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
