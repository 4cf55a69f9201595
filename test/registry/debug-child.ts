/**
 * Child process for debug-log.test.ts: pushes and pulls a blob with credentials while NODE_DEBUG=canvos is set,
 * so the parent can check the debug output on stderr never contains secrets.
 */
import { Readable } from 'node:stream';
import { sha256 } from '../../src/image/digest.js';
import { RegistryRepository } from '../../src/registry/index.js';

const [host, username, password] = process.argv.slice(2);
const data = Buffer.from('debug log blob');
const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
const repo = new RegistryRepository(host!, 'debug/a', {
  insecureRegistries: [host!],
  credentials: { username, password },
});
await repo.pushBlob(desc, async () => Readable.from([data]));
for await (const _ of await repo.getBlob(desc)) {
  // drain the blob
}
await repo.close();
