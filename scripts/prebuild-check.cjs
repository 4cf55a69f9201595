#!/usr/bin/env node
// Prints the addon's library versions and the sha256 of its gzip and zstd output for a fixed pseudo-random input at
// several levels. scripts/prebuild.sh runs it on x64 and, under qemu-aarch64, on an arm64 Node: the two printouts
// must be identical (the prebuilds compress byte for byte alike). Plain CommonJS so old Nodes (Debian's 18) run it.
//   node scripts/prebuild-check.cjs native/prebuilds/linux-x64/node.napi.glibc.node
'use strict';
const { createHash } = require('node:crypto');
const { resolve } = require('node:path');

const addon = require(resolve(process.argv[2]));
const input = Buffer.alloc(3 << 20);
let x = 1;
for (let i = 0; i < input.length; i++) {
  x = (x * 1103515245 + 12345) & 0x7fffffff;
  input[i] = (x >> 16) % 7 === 0 ? x & 0xff : 97 + (i % 13);
}
const compress = (fn, level) => new Promise((ok, fail) => fn(input, level, (e, out) => (e ? fail(e) : ok(out))));
const sha = (b) => createHash('sha256').update(b).digest('hex');

(async () => {
  const lines = [`libdeflate ${addon.libdeflateVersion}`, `zstd ${addon.zstdVersion}`];
  for (const level of [1, 6, 9, 12]) lines.push(`gzip -${level} ${sha(await compress(addon.gzip, level))}`);
  for (const level of [1, 3, 19]) lines.push(`zstd -${level} ${sha(await compress(addon.zstd, level))}`);
  const frame = await compress(addon.zstd, 3);
  const dec = new addon.ZstdDecoder();
  const back = Buffer.concat([dec.push(frame.subarray(0, 1000)), dec.push(frame.subarray(1000))]);
  dec.end();
  lines.push(`zstd round trip ${back.equals(input) ? 'ok' : 'MISMATCH'}`);
  console.log(lines.join('\n'));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
