/**
 * The Dockerfile support: parser, BuildKit word expansion, single-stage evaluation, and the layer builder the
 * provider build and the installer use for the project's Dockerfile.
 */
export {
  parseDockerfile,
  type ParsedDockerfile,
  type Instruction,
  type InstructionFlag,
  type Heredoc,
  type ParseOptions,
} from './parse.js';
export { expandWord, splitWords, type Vars } from './words.js';
export {
  evaluateDockerfile,
  type EvaluatedDockerfile,
  type EvaluateOptions,
  type Step as DockerfileStep,
  type CopyStep,
  type RunStep as DockerfileRunStep,
  type ConfigStep,
} from './evaluate.js';
export type { ImageRuntimeConfig } from './config.js';
export { matchPreamble, type PreambleMatch } from './preamble.js';
export {
  buildDockerfileLayers,
  canvosBuildArgs,
  prepareProjectDockerfile,
  type DockerfileBuild,
  type DockerfileBuildOptions,
  type DockerfileHistory,
  type DockerfileLayer,
  type PreparedDockerfile,
} from './build.js';
export { defaultExecutor, type Executor } from './exec-api.js';
