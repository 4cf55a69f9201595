/**
 * `canvos-lite mirror plan|push|save|load`: air-gap mirroring driven by mirror.yaml (--config) or image references
 * given as arguments. Progress goes to stderr as one aggregate view; stdout gets a summary (or, with --json, only
 * JSON). Failed images do not stop the others: they are listed (stderr, --json, --failures FILE) and the exit
 * status is ERR_MIRROR_PARTIAL's. Credentials given here go to the registry client and are never printed.
 */
import { writeFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CanvosError, EXIT_CODES, redactText } from '../../errors.js';
import { loadMirrorConfig, type MirrorConfig, type RewriteOptions } from '../../mirror/config.js';
import { checkMaxPartSize, FAT32_MAX_FILE } from '../../mirror/archive.js';
import { parseDestinationRoot } from '../../mirror/naming.js';
import { mirrorLoad, mirrorPush, mirrorSave } from '../../mirror/operations.js';
import { mirrorPlan, type MirrorPlan, type PlanTarget } from '../../mirror/plan.js';
import { registriesYaml } from '../../mirror/registries-yaml.js';
import { itemsFromRefs, resolveItems } from '../../mirror/resolve.js';
import type { MirrorFailure, MirrorItem, MirrorOptions, MirrorReport } from '../../mirror/types.js';
import { parseReference, type Reference } from '../../registry/reference.js';
import type { RegistryTransportOptions } from '../../registry/transport.js';
import type { CliIo, CommandModule } from '../main.js';
import { createProgress, formatBytes } from '../progress.js';
import {
  SRC_DEST_REGISTRY_OPTIONS,
  blobPartsHelp,
  checkAccessPaths,
  parsePlatforms,
  parseBlobParts,
  parseCreds as parseCredsFor,
  parseTimeout,
  TIMEOUT_OPTION,
  timeoutHelp,
  usageError as usageErrorFor,
} from '../flags.js';

const usage = `usage: canvos-lite mirror plan [--config mirror.yaml | REF...] [--to REGISTRY[/path] | --to DIR | --to FILE.tar] [--from DIR|FILE.tar]
       canvos-lite mirror push [--config mirror.yaml | REF...] --to REGISTRY[/path]
       canvos-lite mirror save [--config mirror.yaml | REF...] --to DIR | FILE.tar [--max-part-size SIZE]
       canvos-lite mirror load --from DIR | FILE.tar --to REGISTRY[/path]

options:
  --config FILE            mirror.yaml (images: references or {ref, tags, platforms}; fromBuild, rewrite,
                           concurrency, referrers)
  --platform OS/ARCH       keep only these platforms of ad-hoc REFs (repeatable; default: all, byte-exact)
  --prefix PATH            destination repository prefix (rewrite.prefix)
  --flatten [last-segment] one path segment per repository (rewrite.flatten); collisions are errors
  --no-keep-registry       drop the source registry from destination paths (rewrite.keepRegistry: false)
  --no-referrers           do not copy signatures, SBOMs, attestations
  --max-part-size SIZE     split the archive into parts (bytes, 700M, 4G, or "fat32" = 4 GiB - 1)
  --since PREV.tar         differential archive: leave out blobs PREV (a loaded earlier archive) holds (repeatable)
  --keep-layout            keep FILE.tar.layout/ (the working layout) after writing the archive
  --allow-partial          write the archive even when images failed
  --registries-yaml FILE   write a k3s/RKE2 registries.yaml for the destination (push, load)
  --failures FILE          write the failure list as JSON
  --src-creds USER:PASS    credentials for source registries
  --dest-creds USER:PASS   credentials for the destination registry
  --authfile FILE          read credentials from this auth.json / config.json
  --src-insecure           reach source registries over plain HTTP
  --dest-insecure          reach the destination registry over plain HTTP
  --cert-dir DIR           certificates for every registry instead of certs.d: CAs *.crt/*.pem, client
                           pair NAME.cert + NAME.key, also per HOST[:PORT]/ sub-directory
  ${blobPartsHelp(25)}
  ${timeoutHelp(25)}
  --images N               images copied at once (default 4)
  --jobs N                 blobs moved at once across all images (default 8)
  --json                   print only JSON on stdout`;

const usageError = (message: string): CanvosError => usageErrorFor('mirror', message);

const parseCreds = (v: string | undefined, flag: string): ReturnType<typeof parseCredsFor> =>
  parseCredsFor('mirror', v, flag);

/** `700M`, `4G`, `4GiB`, `123456`, `fat32`. */
export function parseSize(v: string): number {
  if (v.toLowerCase() === 'fat32') return FAT32_MAX_FILE;
  const m = /^(\d+)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw usageError(`--max-part-size ${JSON.stringify(v)}: expected bytes or a size like 700M, 4G, fat32`);
  const pow = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Number(m[1]) * 1024 ** pow;
}

function intOpt(v: string | undefined, flag: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw usageError(`${flag} must be an integer from 1 to ${max}, not ${JSON.stringify(v)}`);
  return n;
}

function isPathTarget(to: string): boolean {
  return to.endsWith('.tar') || /^(\/|\.\.?\/|~)/.test(to) || (existsSync(to) && statSync(to).isDirectory());
}

function printFailures(io: CliIo, failures: MirrorFailure[]): void {
  for (const f of failures)
    io.stderr.write(
      `failed: ${f.source}${f.destination ? ` -> ${f.destination}` : ''}: ${f.message}${f.hint ? ` (hint: ${f.hint})` : ''}\n`,
    );
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const sub = argv[0];
  if (sub !== 'plan' && sub !== 'push' && sub !== 'save' && sub !== 'load')
    throw usageError(
      `mirror needs a subcommand: plan, push, save or load${sub ? ` (got ${JSON.stringify(sub)})` : ''}`,
    );
  const { values, positionals } = parseArgs({
    args: argv.slice(1),
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      to: { type: 'string' },
      from: { type: 'string' },
      platform: { type: 'string', multiple: true },
      prefix: { type: 'string' },
      flatten: { type: 'boolean' },
      'flatten-last-segment': { type: 'boolean' },
      'no-keep-registry': { type: 'boolean' },
      'no-referrers': { type: 'boolean' },
      'max-part-size': { type: 'string' },
      'keep-layout': { type: 'boolean' },
      since: { type: 'string', multiple: true },
      'allow-partial': { type: 'boolean' },
      'registries-yaml': { type: 'string' },
      failures: { type: 'string' },
      ...SRC_DEST_REGISTRY_OPTIONS,
      ...TIMEOUT_OPTION,
      images: { type: 'string' },
      jobs: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  // `--flatten last-segment` arrives as a positional right after --flatten.
  let flatten: RewriteOptions['flatten'] = values['flatten-last-segment']
    ? 'last-segment'
    : values.flatten
      ? true
      : undefined;
  const refs = [...positionals];
  const li = argv.indexOf('--flatten');
  if (li >= 0 && argv[li + 1] === 'last-segment') {
    flatten = 'last-segment';
    refs.splice(refs.indexOf('last-segment'), 1);
  }
  if (values.config && refs.length) throw usageError('give either --config or image references, not both');
  if (sub !== 'load' && !values.config && refs.length === 0 && !(sub === 'plan' && values.from))
    throw usageError(`mirror ${sub} needs --config mirror.yaml or image references`);
  if ((sub === 'push' || sub === 'save' || sub === 'load') && !values.to) throw usageError(`mirror ${sub} needs --to`);
  if (sub === 'load' && !values.from) throw usageError('mirror load needs --from DIR|FILE.tar');
  if (sub === 'push' && isPathTarget(values.to!))
    throw usageError(`mirror push --to takes a registry; use mirror save for ${values.to}`);
  if (sub === 'load' && isPathTarget(values.to!)) throw usageError('mirror load --to takes a registry');
  // Checked before any configuration is read or anything is listed or downloaded.
  const maxPartSize = values['max-part-size'] === undefined ? undefined : parseSize(values['max-part-size']);
  if (maxPartSize !== undefined) {
    if (sub !== 'save') throw usageError(`--max-part-size applies to mirror save only, not mirror ${sub}`);
    if (!values.to!.endsWith('.tar'))
      throw usageError(`--max-part-size splits an archive: save to NAME.tar, not ${values.to}`);
    checkMaxPartSize(maxPartSize);
  }

  let config: MirrorConfig = {};
  if (values.config) config = await loadMirrorConfig(values.config);
  const platforms = parsePlatforms(values.platform);
  const rewrite: RewriteOptions = { ...config.rewrite };
  if (values.prefix !== undefined) rewrite.prefix = values.prefix;
  if (flatten !== undefined) rewrite.flatten = flatten;
  if (values['no-keep-registry']) rewrite.keepRegistry = false;
  const concurrency = {
    ...config.concurrency,
    images: intOpt(values.images, '--images', 64) ?? config.concurrency?.images,
    blobs: intOpt(values.jobs, '--jobs', 128) ?? config.concurrency?.blobs,
  };

  const progress = createProgress(io.stderr, { quiet: values.json === true, label: `mirror ${sub}` });
  let items: MirrorItem[] = [];
  let resolveFailures: MirrorFailure[] = [];
  const blobParts = parseBlobParts('mirror', values['blob-parts']);
  const timeoutMs = parseTimeout('mirror', values.timeout);
  await checkAccessPaths('mirror', values, io.cwd);
  const base = (creds: ReturnType<typeof parseCreds>, insecure: string[]): RegistryTransportOptions => ({
    env: io.env,
    timeoutMs,
    blobParts,
    credentials: creds,
    authFiles: values.authfile ? [values.authfile] : undefined,
    insecureRegistries: insecure,
    certsDir: values['cert-dir'],
  });
  const destHost = values.to && !isPathTarget(values.to) ? parseDestinationRoot(values.to).registry : undefined;
  const srcHosts = (list: readonly { source: Reference }[]): string[] =>
    values['src-insecure'] ? [...new Set(list.map((i) => i.source.registry))] : [];
  const sourceRegistryFor = (list: readonly { source: Reference }[]): RegistryTransportOptions =>
    base(parseCreds(values['src-creds'], '--src-creds'), srcHosts(list));
  const destRegistry = base(
    parseCreds(values['dest-creds'], '--dest-creds'),
    values['dest-insecure'] && destHost ? [destHost] : [],
  );

  if (sub !== 'load' && !(sub === 'plan' && values.from)) {
    if (values.config) {
      // Listing tags needs the insecure flag for the repositories named in the file, known before resolving.
      const named = (config.images ?? []).map((e) => ({ source: parseReference(e.ref) }));
      const r = await resolveItems(config, {
        signal: io.signal,
        sourceRegistry: sourceRegistryFor(named),
        onWarning: (_c, m) => io.stderr.write(`warning: ${m}\n`),
      });
      items = r.items;
      resolveFailures = r.failures;
    } else {
      items = itemsFromRefs(refs).map((i) => ({ ...i, platforms: platforms.length ? platforms : undefined }));
    }
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
    sourceRegistry: sourceRegistryFor(items),
    destRegistry,
    concurrency,
    rewrite,
    referrers: values['no-referrers'] ? false : config.referrers,
  };

  if (sub === 'plan') {
    const target: PlanTarget = !values.to
      ? { kind: 'none' }
      : isPathTarget(values.to)
        ? { kind: 'layout', path: values.to }
        : { kind: 'registry', to: values.to };
    let plan: MirrorPlan;
    try {
      plan = await mirrorPlan(items, target, { ...opts, from: values.from, since: values.since });
    } finally {
      progress.done();
    }
    plan.failures.unshift(...resolveFailures);
    plan.totals.failed = plan.failures.length;
    if (values.json) io.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
    else io.stdout.write(formatPlan(plan));
    return finish(io, plan.failures, values.failures, values.json === true);
  }

  let report: MirrorReport;
  let sources: Reference[] = [];
  try {
    if (sub === 'push') report = await mirrorPush(items, values.to!, opts);
    else if (sub === 'save')
      report = await mirrorSave(items, values.to!, {
        ...opts,
        maxPartSize,
        keepLayout: values['keep-layout'],
        since: values.since,
        allowPartial: values['allow-partial'],
      });
    else {
      const r = await mirrorLoad(values.from!, values.to!, opts);
      report = r;
      sources = r.sources;
    }
  } finally {
    progress.done();
  }
  report.failures.unshift(...resolveFailures);
  report.totals.failed = report.failures.length;
  if (values['registries-yaml'] && sub !== 'save') {
    const ok = new Set(report.images.filter((i) => !i.referrer).map((i) => i.source));
    const srcs =
      sub === 'load'
        ? sources.filter(
            (s) => ok.has(s.toString()) || [...ok].some((o) => parseReference(o).toString() === s.toString()),
          )
        : [...ok].map((s) => parseReference(s));
    await writeFile(
      values['registries-yaml'],
      registriesYaml(srcs, parseDestinationRoot(values.to!), rewrite, { insecure: values['dest-insecure'] === true }),
    );
    report.files.push(values['registries-yaml']);
  }
  if (values.json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const t = report.totals;
    io.stdout.write(
      `mirror ${sub}: ${t.images} images to ${report.destination} (${t.blobsCopied} blobs copied, ${t.blobsSkipped} already there; ${formatBytes(t.bytesCopied)} in ${t.seconds.toFixed(1)} s)${t.failed ? `, ${t.failed} FAILED` : ''}\n`,
    );
    for (const f of report.files) io.stdout.write(`wrote ${f}\n`);
    if (sub === 'save' && report.failures.length && !values['allow-partial'] && values.to!.endsWith('.tar')) {
      io.stdout.write(
        `no archive written because images failed; the working layout ${values.to}.layout is kept, run again to resume (or --allow-partial)\n`,
      );
    }
  }
  return finish(io, report.failures, values.failures, values.json === true);
}

async function finish(io: CliIo, failures: MirrorFailure[], file: string | undefined, json: boolean): Promise<number> {
  if (file) await writeFile(file, redactText(`${JSON.stringify(failures, null, 2)}\n`));
  if (failures.length === 0) return 0;
  if (!json) printFailures(io, failures);
  io.stderr.write(
    `canvos-lite: ${failures.length} image(s) failed\nhint: fix the causes listed above and run the same command again; finished blobs are not transferred again\n`,
  );
  return EXIT_CODES.ERR_MIRROR_PARTIAL;
}

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
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) =>
    r
      .map((cell, c) => cell.padEnd(w[c]!))
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

const command: CommandModule = {
  summary: 'canvos-lite mirror: plan, push, save and load image sets for air-gapped registries',
  usage,
  run,
};
export default command;
