/**
 * The rootless RUN executor: materialise an image's layers, run commands in user + mount namespaces, capture each
 * command's filesystem difference as a deterministic tar layer.
 */
export { openWorkspace } from './workspace.js';
export { probeUserNamespaces, checkArch, USERNS_HINT, type UserNamespaceProbe } from './probe.js';
export type { CapturedLayer, ExecLayer, RunStep, Workspace, WorkspaceOptions } from './types.js';
