#!/usr/bin/env node
// The package's "install" script, also run by scripts/test.sh: makes sure the optional native addon (native/) is
// loadable, quietly. A committed prebuild (native/prebuilds/<platform>-<arch>/) that loads wins and nothing is
// built. Otherwise the addon is built from source with node-gyp when a C++ compiler and the libdeflate/libzstd
// headers exist; when it cannot be built this prints ONE line saying why and exits 0 (the pure-JS fallback is used;
// the install never fails because of the addon). `--verbose` (or npm's loglevel verbose) shows node-gyp's output.
// node-gyp-build prefers a build from source (native/build/Release) over the prebuild, so a build older than
// native/src or binding.gyp (a checkout updated since it was built) is removed first, with one line: it would
// otherwise shadow a newer prebuild, or go on missing what the new source added.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'native');
const require = createRequire(import.meta.url);
const verbose = process.argv.includes('--verbose') || process.env.npm_config_loglevel === 'verbose';
const FALLBACK = 'using the JS fallback';

/** Where node-gyp-build finds a loadable addon, or undefined (checked in a child: a failed dlopen is not retried). */
function loadable() {
  const probe =
    `const b = require(${JSON.stringify(require.resolve('node-gyp-build'))});` +
    `const p = b.resolve(${JSON.stringify(nativeDir)}); require(p); process.stdout.write(p);`;
  const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : undefined;
}

/** node-gyp: npm's own (npm sets npm_config_node_gyp for scripts), an installed one, or npm's bundled copy. */
function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    candidates.push(join(dirname(require.resolve('node-gyp/package.json')), 'bin', 'node-gyp.js'));
  } catch {}
  if (process.env.npm_execpath)
    candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const npmRoot = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  if (npmRoot.status === 0)
    candidates.push(join(npmRoot.stdout.trim(), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => c && existsSync(c));
}

function skipped(reason, hint) {
  console.error(`native addon skipped: ${reason}; ${FALLBACK} (${hint})`);
  process.exit(0);
}

/** The newest modification time (ms) of the addon's sources: binding.gyp and everything under native/src. */
function newestSource() {
  let newest = statSync(join(nativeDir, 'binding.gyp')).mtimeMs;
  for (const e of readdirSync(join(nativeDir, 'src'), { recursive: true, withFileTypes: true })) {
    if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs);
  }
  return newest;
}

const builtAddon = join(nativeDir, 'build', 'Release', 'canvos_native.node');
if (existsSync(builtAddon) && statSync(builtAddon).mtimeMs < newestSource()) {
  rmSync(join(nativeDir, 'build'), { recursive: true, force: true });
  console.error('native addon: removed native/build, a build from source older than native/src');
}

if (process.env.npm_config_build_from_source !== 'true' && loadable()) process.exit(0);

const cxx = process.env.CXX || 'c++';
if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) {
  skipped(`no C++ compiler (${cxx}) found`, 'apt-get install g++ libdeflate-dev libzstd-dev');
}
const headers = spawnSync(cxx, ['-E', '-x', 'c++', '-'], {
  input: '#include <libdeflate.h>\n#include <zstd.h>\n',
  stdio: ['pipe', 'ignore', 'ignore'],
});
if (headers.status !== 0) skipped('libdeflate/libzstd headers not found', 'apt-get install libdeflate-dev libzstd-dev');
const gyp = nodeGyp();
if (!gyp) skipped('node-gyp not found', 'it comes with npm: run npm ci');

// node-gyp downloads Node's headers unless told where they are; Node's own install ships them in <prefix>/include/node.
const args = [gyp, 'rebuild'];
const prefix = join(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h')))
  args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: nativeDir, encoding: 'utf8', stdio: verbose ? 'inherit' : 'pipe' });
if (r.status !== 0) {
  const lines = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n').map((l) => l.trim());
  const download = lines.find((l) => /^gyp http GET .*headers\.tar\.gz/.test(l));
  const why =
    lines.find((l) => /: (fatal )?error: /.test(l)) ??
    lines.find((l) => l.startsWith('gyp: ')) ??
    (download ? `could not download Node's headers (${download.split(' ').pop()})` : undefined) ??
    lines.find((l) => l.startsWith('gyp ERR! stack Error: ')) ??
    lines.find((l) => l.startsWith('gyp ERR! ')) ??
    `node-gyp exited with ${r.status}`;
  skipped(
    `the build from source failed: ${why.replace(/^gyp ERR! (stack )?/, '').slice(0, 160)}`,
    'see why: node scripts/install-native.mjs --verbose',
  );
}
const built = loadable();
if (!built) skipped('the addon built from source does not load', 'see why: node scripts/install-native.mjs --verbose');
console.error(`native addon built from source: ${built}`);
