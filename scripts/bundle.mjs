#!/usr/bin/env node
// Bundles the compiled CLI (dist/cli/main.js, from `tsc`) and its dependencies into dist/bundle/: one entry module
// plus one chunk per command, loaded on demand. Loading ~180 small modules (zod alone is ~100, undici's internals
// ~40) through Node's ESM loader costs more than the CLI's whole start-up otherwise does; the bundle cuts each run
// by ~50 ms of wall and CPU time (bench/README.md). bin/canvos-lite.js uses the bundle when it is at least as new
// as dist/cli/main.js, else the plain dist/ modules, so a `tsc` without this step is never served stale code.
// The library (dist/index.js) is not bundled. Without esbuild (a production install without devDependencies) this
// step is skipped.
import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = process.argv[2] ?? `${root}dist/bundle`;
const entry = process.argv[3] ?? `${root}dist/cli/main.js`;

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('bundle: esbuild is not installed; the CLI runs from the unbundled dist/ modules');
  process.exit(0);
}
/**
 * zod's classic API re-exports every error-message locale (`z.locales`, ~40 languages, half of zod's bundled size)
 * although it configures only English. canvos-lite never touches `z.locales`, so the bundle gets a `locales` module
 * holding English alone; parsing the rest cost every CLI run ~10 ms.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]zod[\\/]v4[\\/](classic|core|mini)[\\/]/.test(args.importer)) return undefined;
      return { path: join(dirname(args.importer), '..', 'locales', 'index.js'), namespace: 'zod-locales' };
    });
    build.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: 'export { default as en } from "./en.js";\n',
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};

/**
 * undici's HTTP/2 client (lib/dispatcher/client-h2.js) requires node:http2 when it is loaded, for ten header-name
 * constants and `http2.connect`; canvos-lite never negotiates h2 (undici's `allowH2` is off), yet loading node:http2
 * and its ~25 internal modules cost every CLI run ~10 ms of CPU. The bundle gets the constants as literals (read
 * here, from this Node) and `connect` loading node:http2 on first use. The rewrite is checked: if undici's file no
 * longer has that exact `require` or uses anything of http2 besides `constants` and `connect`, the bundle fails.
 */
const undiciLazyHttp2 = {
  name: 'undici-lazy-http2',
  setup(build) {
    build.onLoad({ filter: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client-h2\.js$/ }, async (args) => {
      const src = await readFile(args.path, 'utf8');
      const needle = "  http2 = require('node:http2')\n";
      const uses = new Set([...src.matchAll(/\bhttp2\.(\w+)/g)].map((m) => m[1]));
      const block = /const \{\s*constants: \{([^}]*)\}\s*\} = http2/.exec(src);
      if (!src.includes(needle) || !block || [...uses].some((u) => u !== 'connect'))
        throw new Error(`bundle: ${args.path} changed (http2 use: ${[...uses].join(', ')}); update undiciLazyHttp2`);
      const { constants } = await import('node:http2');
      const names = block[1]
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean);
      const picked = Object.fromEntries(names.map((n) => [n, constants[n]]));
      const lazy = `  http2 = { constants: ${JSON.stringify(picked)}, connect: (...a) => require('node:http2').connect(...a) }\n`;
      return { contents: src.replace(needle, lazy), loader: 'js' };
    });
  },
};

await rm(outdir, { recursive: true, force: true });
await esbuild.build({
  entryPoints: { main: entry },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outExtension: { '.js': '.mjs' },
  // Names are kept (error messages and --debug stack traces stay readable); only whitespace and syntax shrink.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'linked',
  // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __canvosCreateRequire } from 'node:module'; const require = __canvosCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
  plugins: [zodEnglishOnly, undiciLazyHttp2],
});
