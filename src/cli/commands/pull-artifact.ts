/**
 * `canvos-lite pull-artifact REF DIR`: writes the files of an OCI artifact (e.g. an ISO pushed with
 * `iso --push`) into DIR byte-identical, each verified against its layer digest and renamed into place only then;
 * the ISO's `.sha256` is restored from the manifest annotation. Stdout gets the written paths.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pullArtifact } from '../../artifact/artifact.js';
import { parseImageSpec } from '../../copy/transports.js';
import { checkAccessPaths, parseCreds, usageError as usageErrorFor } from '../flags.js';
import type { CliIo, CommandModule } from '../main.js';

const usage = `usage: canvos-lite pull-artifact [--creds USER:PASS] [--authfile FILE] [--insecure] [--cert-dir DIR] [--json] REF DIR

REF: docker://HOST/REPO:TAG (or a bare reference), oci:DIR[:TAG], docker-archive:FILE — an artifact whose layers
each carry an org.opencontainers.image.title (canvos-lite iso --push, oras push).
  --creds USER:PASS          registry credentials (never echoed)
  --authfile FILE            read credentials from this auth.json / config.json
  --insecure                 reach the registry over plain HTTP
  --cert-dir DIR             extra CA certificates
  --json                     print only a JSON result on stdout`;

const usageError = (m: string): ReturnType<typeof usageErrorFor> => usageErrorFor('pull-artifact', m);

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      creds: { type: 'string' },
      authfile: { type: 'string' },
      insecure: { type: 'boolean' },
      'cert-dir': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const [ref, dir, extra] = positionals;
  if (!ref || !dir) throw usageError('pull-artifact needs REF and DIR');
  if (extra !== undefined) throw usageError(`unexpected argument ${JSON.stringify(extra)}`);
  await checkAccessPaths('pull-artifact', values, io.cwd);
  const spec = parseImageSpec(ref);
  const host = spec.transport === 'docker' ? spec.ref.registry : undefined;
  const r = await pullArtifact(ref, resolve(io.cwd, dir), {
    signal: io.signal,
    registry: {
      env: io.env,
      credentials: parseCreds('pull-artifact', values.creds, '--creds'),
      authFiles: values.authfile ? [values.authfile] : undefined,
      insecureRegistries: values.insecure && host ? [host] : undefined,
      certsDir: values['cert-dir'],
    },
  });
  if (values.json) io.stdout.write(`${JSON.stringify(r)}\n`);
  else io.stdout.write(r.files.map((f) => `${f}\n`).join(''));
  return 0;
}

const command: CommandModule = {
  summary:
    'canvos-lite pull-artifact: write the files of an OCI artifact (e.g. the ISO pushed by iso --push) into a directory',
  usage,
  run,
};
export default command;
