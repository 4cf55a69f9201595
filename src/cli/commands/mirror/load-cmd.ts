/**
 * `canvos-lite mirror load`: push the images of a layout directory or archive (mirror save) to a registry.
 * @internal (dispatched by commands/mirror.ts)
 */
import { mirrorLoad } from '../../../mirror/operations.js';
import type { MirrorReport } from '../../../mirror/types.js';
import { parseReference, type Reference } from '../../../registry/reference.js';
import { usageError } from '../../flags.js';
import type { CliIo } from '../../types.js';
import { isPathTarget, requireTo, type MirrorArgs } from './args.js';
import { mirrorContext } from './context.js';
import { finishReport, writeRegistriesYaml } from './report.js';

export async function mirrorLoadCmd(a: MirrorArgs, io: CliIo): Promise<number> {
  const to = requireTo(a);
  const from = a.values.from;
  if (!from) throw usageError('mirror', 'mirror load needs --from DIR|FILE.tar');
  if (isPathTarget(to)) throw usageError('mirror', 'mirror load --to takes a registry');
  const ctx = await mirrorContext(a, io, false);
  let report: MirrorReport;
  let sources: Reference[];
  try {
    const r = await mirrorLoad(from, to, ctx.opts);
    report = r;
    sources = r.sources;
  } finally {
    ctx.done();
  }
  // The archive's references of the images that were loaded (the report names them as written or normalised).
  const ok = [...new Set(report.images.filter((i) => !i.referrer).map((i) => i.source))];
  const loaded = sources.filter(
    (s) => ok.includes(s.toString()) || ok.some((o) => parseReference(o).toString() === s.toString()),
  );
  await writeRegistriesYaml(a, ctx, report, to, loaded);
  return finishReport(a, ctx, report, io);
}
