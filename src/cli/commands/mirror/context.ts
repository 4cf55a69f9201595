/**
 * What every mirror subcommand sets up the same way from its flags: mirror.yaml, the rewrite rules, concurrency,
 * source and destination registry options, the images (from mirror.yaml or the arguments), the aggregate progress
 * view; and how each ends (failure list, ERR_MIRROR_PARTIAL).
 * @internal (used by the mirror subcommands)
 */
import { writeFile } from 'node:fs/promises';
import { EXIT_CODES, redactText } from '../../../errors.js';
import { loadMirrorConfig, type MirrorConfig, type RewriteOptions } from '../../../mirror/config.js';
import { parseDestinationRoot } from '../../../mirror/naming.js';
import { itemsFromRefs, resolveItems } from '../../../mirror/resolve.js';
import type { MirrorFailure, MirrorItem, MirrorOptions } from '../../../mirror/types.js';
import { parseReference, type Reference } from '../../../registry/reference.js';
import { srcDestRegistries } from '../../flag-sets.js';
import { parseIntFlag, parsePlatformFlags } from '../../flags.js';
import { createProgress } from '../../progress.js';
import type { CliIo } from '../../types.js';
import { isPathTarget, type MirrorArgs } from './args.js';

/** A mirror run, set up: the library options, the images, and the failures met while listing them. */
export interface MirrorContext {
  config: MirrorConfig;
  rewrite: RewriteOptions;
  items: MirrorItem[];
  resolveFailures: MirrorFailure[];
  opts: MirrorOptions;
  /** Ends the progress view; call once the operation is over. */
  done: () => void;
}

/**
 * Sets a mirror run up. `listItems` false: the images come from a layout or archive (`load`, `plan --from`), so
 * neither mirror.yaml's images nor the arguments are listed.
 */
export async function mirrorContext(a: MirrorArgs, io: CliIo, listItems: boolean): Promise<MirrorContext> {
  const { values } = a;
  const config: MirrorConfig = values.config ? await loadMirrorConfig(values.config) : {};
  const rewrite: RewriteOptions = { ...config.rewrite };
  if (values.prefix !== undefined) rewrite.prefix = values.prefix;
  if (a.flatten !== undefined) rewrite.flatten = a.flatten;
  if (values['no-keep-registry']) rewrite.keepRegistry = false;
  const concurrency = {
    ...config.concurrency,
    images: parseIntFlag('mirror', values.images, '--images', 64) ?? config.concurrency?.images,
    blobs: parseIntFlag('mirror', values.jobs, '--jobs', 128) ?? config.concurrency?.blobs,
  };
  const progress = createProgress(io.stderr, { quiet: values.json === true, label: `mirror ${a.sub}` });
  const registries = await srcDestRegistries('mirror', values, io);
  const destHost = values.to && !isPathTarget(values.to) ? parseDestinationRoot(values.to).registry : undefined;
  const sourceHosts = (list: readonly { source: Reference }[]): string[] => [
    ...new Set(list.map((i) => i.source.registry)),
  ];
  let items: MirrorItem[] = [];
  let resolveFailures: MirrorFailure[] = [];
  if (listItems && values.config) {
    // Listing tags needs the insecure flag for the repositories named in the file, known before resolving.
    const named = (config.images ?? []).map((e) => ({ source: parseReference(e.ref) }));
    const r = await resolveItems(config, {
      signal: io.signal,
      sourceRegistry: registries.source(sourceHosts(named)),
      onWarning: (_c, m) => io.stderr.write(`warning: ${m}\n`),
    });
    items = r.items;
    resolveFailures = r.failures;
  } else if (listItems) {
    const platforms = parsePlatformFlags(values.platform);
    items = itemsFromRefs(a.refs).map((i) => ({ ...i, platforms: platforms.length ? platforms : undefined }));
  }
  const opts: MirrorOptions = {
    signal: io.signal,
    onProgress: (e) => {
      // Image-level events (the item is a reference, not a digest): one readable line each on a non-TTY.
      if (e.status === 'mirrored' || e.status === 'referrer' || e.status === 'failed') {
        if (!values.json && !io.stderr.isTTY)
          io.stderr.write(`${e.status} ${e.item ?? ''} (${e.itemsDone ?? 0}/${e.itemsTotal ?? 0})\n`);
        else progress.onProgress({ ...e, item: undefined, status: undefined });
        return;
      }
      progress.onProgress(e);
    },
    sourceRegistry: registries.source(sourceHosts(items)),
    destRegistry: registries.destination(destHost ? [destHost] : []),
    concurrency,
    rewrite,
    referrers: values['no-referrers'] ? false : config.referrers,
  };
  return {
    config,
    rewrite,
    items,
    resolveFailures,
    opts,
    done: () => {
      progress.done();
    },
  };
}

/**
 * Ends a run: writes `--failures FILE`, lists the failures on stderr (not under --json) and returns the exit status
 * (0, or ERR_MIRROR_PARTIAL's).
 */
export async function finishMirror(
  io: CliIo,
  failures: MirrorFailure[],
  file: string | undefined,
  json: boolean,
): Promise<number> {
  if (file) await writeFile(file, redactText(`${JSON.stringify(failures, null, 2)}\n`));
  if (failures.length === 0) return 0;
  if (!json)
    for (const f of failures)
      io.stderr.write(
        `failed: ${f.source}${f.destination ? ` -> ${f.destination}` : ''}: ${f.message}${f.hint ? ` (hint: ${f.hint})` : ''}\n`,
      );
  io.stderr.write(
    `canvos-lite: ${failures.length} image(s) failed\nhint: fix the causes listed above and run the same command again; finished blobs are not transferred again\n`,
  );
  return EXIT_CODES.ERR_MIRROR_PARTIAL;
}
