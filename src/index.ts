/**
 * canvos-lite public API. Every name exported here is documented and stable within a minor version.
 */
export {
  CanvosError,
  RegistryHttpError,
  XorrisoError,
  EXIT_CODES,
  redactText,
  redactUrl,
  type ErrorCode,
  type CanvosErrorOptions,
} from './errors.js';
export { toCanvosError, FS_ERRNO_HINTS } from './error-map.js';
export { INPUT_LIMITS } from './text-input.js';
export { VERSION } from './version.js';
export * from './image/index.js';
export {
  runTool,
  runToolRaw,
  withToolTimeouts,
  DEFAULT_TOOL_IDLE_MS,
  type ToolTimeouts,
  type RunToolOptions,
  type ToolExit,
} from './util/run-tool.js';
export * from './layers/index.js';
export * from './registry/index.js';
export * from './copy/index.js';
export * from './provider/index.js';
export * from './mirror/index.js';
export * from './iso/index.js';
export * from './exec/index.js';
export * from './dockerfile/index.js';
export * from './disk/index.js';
export * from './artifact/index.js';
export * from './uki/index.js';
