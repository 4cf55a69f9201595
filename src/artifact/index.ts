/** Public API of the artifact area: files (the installer ISO) pushed and pulled as an OCI artifact. */
export {
  ISO_ARTIFACT_TYPE,
  SHA256SUM_ANNOTATION,
  fileMediaType,
  pullArtifact,
  pushArtifact,
  type PullArtifactOptions,
  type PullArtifactResult,
  type PushArtifactOptions,
} from './artifact.js';
export { pushIsoImage, type PushIsoImageOptions } from './iso-image.js';
