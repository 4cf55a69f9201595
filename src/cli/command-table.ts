/**
 * The command table: `canvos-lite <name>` → its module under commands/, loaded on demand (so one command's start-up
 * does not pay for the others). main.ts reads it; the commands never import main.ts or this table.
 */
import type { CommandModule } from './types.js';

/** Every top-level command, in the order `canvos-lite --help` lists them. */
export const COMMANDS: Readonly<Record<string, () => Promise<CommandModule>>> = {
  copy: async () => (await import('./commands/copy.js')).default,
  mirror: async () => (await import('./commands/mirror.js')).default,
  build: async () => (await import('./commands/build.js')).default,
  iso: async () => (await import('./commands/iso.js')).default,
  disk: async () => (await import('./commands/disk.js')).default,
  'pull-artifact': async () => (await import('./commands/pull-artifact.js')).default,
  'build-all': async () => (await import('./commands/build-all.js')).default,
  uki: async () => (await import('./commands/uki.js')).default,
};
