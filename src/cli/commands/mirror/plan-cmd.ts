/**
 * `canvos-lite mirror plan`: what a push, save or load would move, with sizes, without moving anything.
 * @internal (dispatched by commands/mirror.ts)
 */
import { mirrorPlan, type MirrorPlan, type PlanTarget } from '../../../mirror/mirror-plan.js';
import { formatBytes } from '../../progress.js';
import type { CliIo } from '../../types.js';
import { isPathTarget, type MirrorArgs } from './args.js';
import { finishMirror, mirrorContext } from './context.js';

export async function mirrorPlanCmd(a: MirrorArgs, io: CliIo): Promise<number> {
  const { values } = a;
  const ctx = await mirrorContext(a, io, !values.from);
  const target: PlanTarget = !values.to
    ? { kind: 'none' }
    : isPathTarget(values.to)
      ? { kind: 'layout', path: values.to }
      : { kind: 'registry', to: values.to };
  let plan: MirrorPlan;
  try {
    plan = await mirrorPlan(ctx.items, target, { ...ctx.opts, from: values.from, since: values.since });
  } finally {
    ctx.done();
  }
  plan.failures.unshift(...ctx.resolveFailures);
  plan.totals.failed = plan.failures.length;
  io.stdout.write(values.json ? `${JSON.stringify(plan, null, 2)}\n` : formatPlan(plan));
  return finishMirror(io, plan.failures, values.failures, values.json === true);
}

/** The plan as a table and a total line. */
function formatPlan(p: MirrorPlan): string {
  const rows = [['SOURCE', 'DESTINATION', 'PLATFORMS', 'BLOBS', 'SIZE', 'NEW BLOBS', 'NEW SIZE']];
  for (const i of p.images)
    rows.push([
      i.source,
      i.destination || '-',
      String(i.platforms.length || 1),
      String(i.blobs),
      formatBytes(i.bytes),
      String(i.newBlobs),
      formatBytes(i.newBytes),
    ]);
  const header = rows[0] ?? [];
  const w = header.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const lines = rows.map((r) =>
    r
      .map((cell, c) => cell.padEnd(w[c] ?? 0))
      .join('  ')
      .trimEnd(),
  );
  const t = p.totals;
  lines.push(
    '',
    `total: ${t.images} images, ${t.blobs} distinct blobs, ${formatBytes(t.bytes)}; to move: ${t.newBlobs} blobs, ${formatBytes(t.newBytes)}; already present: ${formatBytes(t.presentBytes)}${t.failed ? `; ${t.failed} FAILED` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}
