/**
 * `canvos-lite mirror plan|push|save|load`: air-gap mirroring driven by mirror.yaml (--config) or image references
 * given as arguments. Progress goes to stderr as one aggregate view; stdout gets a summary (or, with --json, only
 * JSON). Failed images do not stop the others: they are listed (stderr, --json, --failures FILE) and the exit
 * status is ERR_MIRROR_PARTIAL's. Credentials given here go to the registry client and are never printed.
 */
import { CanvosError } from '../../errors.js';
import { blobPartsHelp, timeoutHelp, usageError as usageErrorFor } from '../flags.js';
import type { CliIo, CommandModule } from '../types.js';
import { parseMirrorArgs, parseSize, type MirrorArgs, type MirrorSubcommand } from './mirror/args.js';
import { mirrorLoadCmd } from './mirror/load-cmd.js';
import { mirrorPlanCmd } from './mirror/plan-cmd.js';
import { mirrorPushCmd } from './mirror/push-cmd.js';
import { mirrorSaveCmd } from './mirror/save-cmd.js';

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

const SUBCOMMANDS: Record<MirrorSubcommand, (a: MirrorArgs, io: CliIo) => Promise<number>> = {
  plan: mirrorPlanCmd,
  push: mirrorPushCmd,
  save: mirrorSaveCmd,
  load: mirrorLoadCmd,
};

const isSubcommand = (s: string | undefined): s is MirrorSubcommand => s !== undefined && Object.hasOwn(SUBCOMMANDS, s);

async function run(argv: string[], io: CliIo): Promise<number> {
  const sub = argv[0];
  if (!isSubcommand(sub))
    throw usageError(
      `mirror needs a subcommand: plan, push, save or load${sub ? ` (got ${JSON.stringify(sub)})` : ''}`,
    );
  const a = parseMirrorArgs(sub, argv.slice(1));
  const { values, refs } = a;
  // What the command line alone can refute is refused before any configuration is read.
  if (values.config && refs.length) throw usageError('give either --config or image references, not both');
  if (sub !== 'load' && !values.config && refs.length === 0 && !(sub === 'plan' && values.from))
    throw usageError(`mirror ${sub} needs --config mirror.yaml or image references`);
  if (values['max-part-size'] !== undefined && sub !== 'save') {
    parseSize(values['max-part-size']);
    throw usageError(`--max-part-size applies to mirror save only, not mirror ${sub}`);
  }
  return SUBCOMMANDS[sub](a, io);
}

const command: CommandModule = {
  summary: 'canvos-lite mirror: plan, push, save and load image sets for air-gapped registries',
  usage,
  run,
};
export default command;
