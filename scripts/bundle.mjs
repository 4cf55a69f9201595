#!/usr/bin/env node
// Bundles the compiled CLI (dist/cli/main.js, from `tsc`) and its dependencies into dist/bundle/: one entry module
// plus one chunk per command, loaded on demand. Loading ~180 small modules (zod alone is ~100, undici's internals
// ~40) through Node's ESM loader costs more than the CLI's whole start-up otherwise does; the bundle cuts each run
// by ~50 ms of wall and CPU time (bench/README.md). bin/canvos-lite.js uses the bundle when it is at least as new
// as dist/cli/main.js, else the plain dist/ modules, so a `tsc` without this step is never served stale code.
// The library (dist/index.js) is not bundled. Without esbuild (a production install without devDependencies) this
// step is skipped.
import { rm } from 'node:fs/promises';
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
  plugins: [zodEnglishOnly],
});
