/**
 * `canvos-lite mirror push`: copy the images straight to a registry.
 * @internal (dispatched by commands/mirror.ts)
 */
import { mirrorPush } from '../../../mirror/operations.js';
import type { MirrorReport } from '../../../mirror/types.js';
import { parseReference } from '../../../registry/reference.js';
import { usageError } from '../../flags.js';
import type { CliIo } from '../../types.js';
import { isPathTarget, requireTo, type MirrorArgs } from './args.js';
import { mirrorContext } from './context.js';
import { finishReport, writeRegistriesYaml } from './report.js';

export async function mirrorPushCmd(a: MirrorArgs, io: CliIo): Promise<number> {
  const to = requireTo(a);
  if (isPathTarget(to)) throw usageError('mirror', `mirror push --to takes a registry; use mirror save for ${to}`);
  const ctx = await mirrorContext(a, io, true);
  let report: MirrorReport;
  try {
    report = await mirrorPush(ctx.items, to, ctx.opts);
  } finally {
    ctx.done();
  }
  const pushed = [...new Set(report.images.filter((i) => !i.referrer).map((i) => i.source))].map(parseReference);
  await writeRegistriesYaml(a, ctx, report, to, pushed);
  return finishReport(a, ctx, report, io);
}
