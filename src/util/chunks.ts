/** Re-chunking of a byte stream into pieces of a fixed size, the one copy (layer compression, chunked uploads). */

/** Read `src` as buffers of exactly `size` bytes (the last may be shorter; none for an empty input). */
export async function* fixedChunks(src: AsyncIterable<Buffer | Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const c of src) {
    let buf = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    while (buf.length > 0) {
      const take = Math.min(size - have, buf.length);
      parts.push(buf.subarray(0, take));
      have += take;
      buf = buf.subarray(take);
      if (have === size) {
        yield Buffer.concat(parts, have);
        parts = [];
        have = 0;
      }
    }
  }
  if (have > 0) yield Buffer.concat(parts, have);
}
