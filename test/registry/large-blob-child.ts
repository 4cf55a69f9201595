/**
 * Child process for large-blob.test.ts: pushes and pulls a deterministic 2 GiB blob through the registry
 * client and prints peak RSS (VmHWM), so the parent can assert streaming (no whole-blob buffering).
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { RegistryRepository } from '../../src/registry/index.js';

const [host, repoName, sizeArg] = process.argv.slice(2);
const CHUNK = 1024 * 1024;
const total = Number(sizeArg);

/** Deterministic content: a 1 MiB block from a fixed hash chain, with the chunk index stamped in. */
const base = Buffer.alloc(CHUNK);
for (let off = 0, i = 0; off < CHUNK; off += 32, i++)
  createHash('sha256').update(`canvos-${i}`).digest().copy(base, off);
function content(): Readable {
  let i = 0;
  return new Readable({
    read() {
      const left = total - i * CHUNK;
      if (left <= 0) return void this.push(null);
      const b = Buffer.from(base.subarray(0, Math.min(CHUNK, left)));
      b.writeUInt32BE(i, 0);
      i++;
      this.push(b);
    },
  });
}
const vmhwm = (): number => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) * 1024;

// Bundled to CommonJS by the test (so no top-level await).
async function main(): Promise<void> {
  const marks: Record<string, number> = { start: vmhwm() };
  const h = createHash('sha256');
  for await (const c of content()) h.update(c as Buffer);
  const desc = { mediaType: 'application/octet-stream', digest: `sha256:${h.digest('hex')}` as const, size: total };

  marks.hashed = vmhwm();
  const repo = new RegistryRepository(host!, repoName!, { insecureRegistries: [host!] });
  const t0 = Date.now();
  const result = await repo.pushBlob(desc, async () => content());
  const t1 = Date.now();
  marks.uploaded = vmhwm();
  let n = 0;
  for await (const c of await repo.getBlob(desc)) n += (c as Buffer).length;
  const t2 = Date.now();
  await repo.close();
  process.stdout.write(
    JSON.stringify({
      result,
      digest: desc.digest,
      read: n,
      uploadMs: t1 - t0,
      downloadMs: t2 - t1,
      vmhwm: vmhwm(),
      marks,
    }) + '\n',
  );
}
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
