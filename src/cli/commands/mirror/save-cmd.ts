/**
 * `canvos-lite mirror save`: write the images into a layout directory or an archive (optionally split into parts,
 * optionally differential against earlier archives).
 * @internal (dispatched by commands/mirror.ts)
 */
import { checkMaxPartSize } from '../../../mirror/archive.js';
import { mirrorSave } from '../../../mirror/operations.js';
import type { MirrorReport } from '../../../mirror/types.js';
import { usageError } from '../../flags.js';
import type { CliIo } from '../../types.js';
import { parseSize, requireTo, type MirrorArgs } from './args.js';
import { mirrorContext } from './context.js';
import { finishReport } from './report.js';

export async function mirrorSaveCmd(a: MirrorArgs, io: CliIo): Promise<number> {
  const { values } = a;
  const to = requireTo(a);
  // Checked before any configuration is read or anything is listed or downloaded.
  const maxPartSize = values['max-part-size'] === undefined ? undefined : parseSize(values['max-part-size']);
  if (maxPartSize !== undefined) {
    if (!to.endsWith('.tar'))
      throw usageError('mirror', `--max-part-size splits an archive: save to NAME.tar, not ${to}`);
    checkMaxPartSize(maxPartSize);
  }
  const ctx = await mirrorContext(a, io, true);
  let report: MirrorReport;
  try {
    report = await mirrorSave(ctx.items, to, {
      ...ctx.opts,
      maxPartSize,
      keepLayout: values['keep-layout'],
      since: values.since,
      allowPartial: values['allow-partial'],
    });
  } finally {
    ctx.done();
  }
  const kept =
    report.failures.length + ctx.resolveFailures.length > 0 && !values['allow-partial'] && to.endsWith('.tar')
      ? [
          `no archive written because images failed; the working layout ${to}.layout is kept, run again to resume (or --allow-partial)`,
        ]
      : [];
  return finishReport(a, ctx, report, io, kept);
}
