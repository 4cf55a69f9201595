/** Trusted Boot: Secure Boot keys, EFI signature lists, authenticated variables, UKIs and the UKI ISO. */
export { genkey, type GenkeyOptions, type GenkeyResult } from './genkey.js';
export { encodeEsl, decodeEsl, EFI_CERT_X509, EFI_CERT_SHA256, MICROSOFT_OWNER, type EfiSignature } from './esl.js';
export { signVariable, efiTime, vendorGuid, AUTH_ATTRS, type SignVariableOptions, type SecureBootVar } from './auth.js';
export { selfSignedCert, type CertOptions } from './x509.js';
export { buildUki, DEFAULT_STUB, type BuildUkiOptions } from './uki.js';
export { signEfi, type SignEfiOptions } from './sign.js';
export {
  buildUkiIso,
  DEFAULT_SYSTEMD_BOOT,
  UKI_ISO_LABEL,
  type BuildUkiIsoOptions,
  type BuildUkiIsoResult,
} from './uki-iso.js';
export {
  buildUkiIsoFromRootfs,
  ENKI_UKI_CMDLINE,
  MIN_UKI_SYSTEMD,
  checkUkiSystemd,
  type UkiIsoFromRootfsOptions,
  type UkiIsoFromRootfsResult,
} from './uki-iso-image.js';
export { buildUkiProviderImage, type UkiProviderOptions, type UkiProviderResult } from './provider.js';
export {
  buildUkiProviderImages,
  buildConfiguredProviderImages,
  projectKeysDir,
  ukiCarrierImage,
  UKI_KEY_FILES,
} from './config-provider.js';
export { buildConfiguredIso, type ConfiguredIsoResult } from './config-iso.js';
export {
  pcrSignatureJson,
  policyPcrDigest,
  measuredSections,
  DEFAULT_PHASES,
  MEASURED_SECTIONS,
  type PcrSignatureOptions,
} from './pcrsig.js';
