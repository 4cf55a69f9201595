/**
 * The end of `mirror push|save|load`: resolve failures folded into the report, `--registries-yaml`, the summary
 * (or the JSON report) on stdout, and the exit status.
 * @internal (used by the mirror subcommands)
 */
import { writeFile } from 'node:fs/promises';
import { parseDestinationRoot } from '../../../mirror/naming.js';
import { registriesYaml } from '../../../mirror/registries-yaml.js';
import type { MirrorReport } from '../../../mirror/types.js';
import type { Reference } from '../../../registry/reference.js';
import { formatBytes } from '../../progress.js';
import type { CliIo } from '../../types.js';
import type { MirrorArgs } from './args.js';
import { finishMirror, type MirrorContext } from './context.js';

/** Writes `--registries-yaml FILE` for the images of `report` that reached the destination `to`. */
export async function writeRegistriesYaml(
  a: MirrorArgs,
  ctx: MirrorContext,
  report: MirrorReport,
  to: string,
  sources: Reference[],
): Promise<void> {
  const file = a.values['registries-yaml'];
  if (!file) return;
  const yaml = registriesYaml(sources, parseDestinationRoot(to), ctx.rewrite, {
    insecure: a.values['dest-insecure'] === true,
  });
  await writeFile(file, yaml);
  report.files.push(file);
}

/** Adds the failures met while listing images, prints the report (summary and files, or JSON), returns the status. */
export async function finishReport(
  a: MirrorArgs,
  ctx: MirrorContext,
  report: MirrorReport,
  io: CliIo,
  extra: string[] = [],
): Promise<number> {
  const { values } = a;
  report.failures.unshift(...ctx.resolveFailures);
  report.totals.failed = report.failures.length;
  if (values.json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const t = report.totals;
    io.stdout.write(
      `mirror ${a.sub}: ${t.images} images to ${report.destination} (${t.blobsCopied} blobs copied, ${t.blobsSkipped} already there; ${formatBytes(t.bytesCopied)} in ${t.seconds.toFixed(1)} s)${t.failed ? `, ${t.failed} FAILED` : ''}\n`,
    );
    for (const f of report.files) io.stdout.write(`wrote ${f}\n`);
    for (const line of extra) io.stdout.write(`${line}\n`);
  }
  return finishMirror(io, report.failures, values.failures, values.json === true);
}
