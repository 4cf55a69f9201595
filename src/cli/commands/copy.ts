/**
 * `canvos-lite copy SRC DST`: copy an image (every platform by default, byte-exact) between registries, OCI layout
 * directories and docker-archive tarballs. Progress goes to stderr; stdout gets one summary line, or with --json
 * only the JSON result. Credentials given on the command line are passed to the registry client and never printed.
 */
import { parseArgs } from 'node:util';
import { CanvosError } from '../../errors.js';
import { copyImage, type CopyResult } from '../../copy/copy.js';
import { openDestination, openSource, parseImageSpec, type ImageSpec } from '../../transports/resolve-location.js';
import type { ImageDestination, ImageSource } from '../../image/types.js';
import { DEFAULT_CONCURRENCY } from '../../util/semaphore.js';
import type { CliIo, CommandModule } from '../types.js';
import { createProgress, formatBytes } from '../progress.js';
import { JSON_OPTION, SRC_DEST_OPTIONS, srcDestRegistries } from '../flag-sets.js';
import { blobPartsHelp, parseIntFlag, parsePlatformFlags, timeoutHelp, usageError as usageErrorFor } from '../flags.js';

const usage = `usage: canvos-lite copy [options] SRC DST

SRC and DST: docker://HOST/REPO:TAG (or a bare reference), oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG]

options:
  --all-platforms         copy every platform of an index, byte-exact (default)
  --platform OS/ARCH      copy only this platform (repeatable); one platform becomes the root manifest
  --src-creds USER:PASS   credentials for the source registry
  --dest-creds USER:PASS  credentials for the destination registry
  --authfile FILE         read credentials from this auth.json / config.json
  --src-insecure          reach the source registry over plain HTTP
  --dest-insecure         reach the destination registry over plain HTTP
  --cert-dir DIR          certificates for both registries instead of certs.d: CAs *.crt/*.pem, client
                          pair NAME.cert + NAME.key, also per HOST[:PORT]/ sub-directory
  --jobs N                blobs copied at once, and requests in flight per registry (default 8); Range parts
                          of slow blobs may open as many connections again (twice N in all, at most 16)
  ${blobPartsHelp(24)}
  ${timeoutHelp(24)}
  --include-foreign       also copy layers with urls (non-distributable)
  --force                 copy blobs even under manifests the destination already has
  --json                  print only a JSON summary on stdout`;

const usageError = (message: string): CanvosError => usageErrorFor('copy', message);

/** The registry of a docker:// image, for its side's --*-insecure; layouts and archives have none. */
const hostsOf = (spec: ImageSpec): string[] => (spec.transport === 'docker' ? [spec.ref.registry] : []);

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'all-platforms': { type: 'boolean' },
      all: { type: 'boolean' },
      platform: { type: 'string', multiple: true },
      ...SRC_DEST_OPTIONS,
      jobs: { type: 'string' },
      'include-foreign': { type: 'boolean' },
      force: { type: 'boolean' },
      ...JSON_OPTION,
    },
  });
  const [srcArg, dstArg] = positionals;
  if (positionals.length !== 2 || srcArg === undefined || dstArg === undefined)
    throw usageError(`copy takes exactly two arguments, SRC and DST (got ${positionals.length})`);
  const platforms = parsePlatformFlags(values.platform);
  if (platforms.length > 0 && (values['all-platforms'] || values.all))
    throw usageError('--platform and --all-platforms exclude each other');
  const jobs = parseIntFlag('copy', values.jobs, '--jobs', 64);
  // Every blob in flight holds one request slot at each end: --jobs must raise the per-registry limit too.
  const registries = await srcDestRegistries('copy', values, io, { concurrency: jobs ?? DEFAULT_CONCURRENCY });
  const srcSpec = parseImageSpec(srcArg);
  const dstSpec = parseImageSpec(dstArg);

  const progress = createProgress(io.stderr, { quiet: values.json === true, label: 'copying' });
  let src: ImageSource | undefined;
  let dst: ImageDestination | undefined;
  let result: CopyResult;
  try {
    src = openSource(srcSpec, { registry: registries.source(hostsOf(srcSpec)) });
    dst = openDestination(dstSpec, { registry: registries.destination(hostsOf(dstSpec)) });
    result = await copyImage(src, dst, {
      platforms,
      concurrency: jobs,
      includeForeign: values['include-foreign'],
      force: values.force,
      signal: io.signal,
      onProgress: (e) => {
        progress.onProgress(e);
      },
    });
  } finally {
    progress.done();
    await Promise.allSettled([src?.close(), dst?.close()]);
  }
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ source: src.description, destination: dst.description, ...result })}\n`);
    return 0;
  }
  const b = result.blobs;
  io.stdout.write(
    `copied ${src.description} -> ${dst.description}: ${result.rootDigest} (${result.manifests} manifests; blobs: ${b.copied} copied, ${b.skipped} skipped, ${b.mounted} mounted; ${formatBytes(b.bytes)})\n`,
  );
  if (result.rewritten)
    io.stdout.write(
      `note: a new index of ${result.platforms.join(', ')} was written; its digest differs from the source's ${result.sourceDigest}\n`,
    );
  return 0;
}

const command: CommandModule = {
  summary: 'canvos-lite copy: copy an image between registries, OCI layouts and docker-archive tarballs',
  usage,
  run,
};
export default command;
