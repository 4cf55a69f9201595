/**
 * Runs the canvos-lite CLI in-process (src/cli/main.ts) with captured stdout/stderr, a given environment and cwd.
 */
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(
  args: string[],
  opts: { env: NodeJS.ProcessEnv; cwd: string; signal?: AbortSignal },
): Promise<CliResult> {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (d: Buffer) => o.push(d));
  err.on('data', (d: Buffer) => e.push(d));
  const code = await main(args, {
    stdout: out,
    stderr: err,
    env: opts.env,
    cwd: opts.cwd,
    signal: opts.signal ?? new AbortController().signal,
  });
  return { code, stdout: Buffer.concat(o).toString('utf8'), stderr: Buffer.concat(e).toString('utf8') };
}
