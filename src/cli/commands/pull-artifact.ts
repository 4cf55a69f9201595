/**
 * `canvos-lite pull-artifact REF DIR`: writes the files of an OCI artifact (e.g. an ISO pushed with
 * `iso --push`) into DIR byte-identical, each verified against its layer digest and renamed into place only then;
 * the ISO's `.sha256` is restored from the manifest annotation. Stdout gets the written paths.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pullArtifact } from '../../artifact/artifact.js';
import { commandOutput, JSON_OPTION, REGISTRY_OPTIONS, registryFromFlags, registryHelp } from '../flag-sets.js';
import { usageError as usageErrorFor } from '../flags.js';
import type { CliIo, CommandModule } from '../types.js';

const usage = `usage: canvos-lite pull-artifact [--creds USER:PASS] [--authfile FILE] [--insecure] [--cert-dir DIR] [--timeout SECONDS]
                                 [--json] REF DIR

REF: docker://HOST/REPO:TAG (or a bare reference), oci:DIR[:TAG], docker-archive:FILE — an artifact whose layers
each carry an org.opencontainers.image.title (canvos-lite iso --push, oras push).
  ${registryHelp(27)}
  --json                     print only a JSON result on stdout`;

const usageError = (m: string): ReturnType<typeof usageErrorFor> => usageErrorFor('pull-artifact', m);

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { ...REGISTRY_OPTIONS, ...JSON_OPTION },
  });
  const [ref, dir, extra] = positionals;
  if (!ref || !dir) throw usageError('pull-artifact needs REF and DIR');
  if (extra !== undefined) throw usageError(`unexpected argument ${JSON.stringify(extra)}`);
  const registry = await registryFromFlags('pull-artifact', values, [ref], io);
  const r = await pullArtifact(ref, resolve(io.cwd, dir), { signal: io.signal, registry });
  commandOutput(io, values.json).result(r, r.files);
  return 0;
}

const command: CommandModule = {
  summary:
    'canvos-lite pull-artifact: write the files of an OCI artifact (e.g. the ISO pushed by iso --push) into a directory',
  usage,
  run,
};
export default command;
