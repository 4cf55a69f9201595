/**
 * The cluster-profile snippet earthly.sh prints after building provider images (`print_os_pack`, canvos.md §2.4),
 * reproduced byte for byte with two deliberate fixes: `system.peVersion` is the PE_VERSION the images were really
 * tagged with (earthly.sh prints `git describe`), and without CUSTOM_TAG the `system.uri` template does not end in
 * `-{{ …customTag }}` (CanvOS's template then names a tag that was never pushed).
 */
import type { BuildConfig } from './resolve.js';

const RULE =
  '##########################################################################################################';
const OPT = '.spectro.pack.edge-native-byoi.options.system';

/** The `system.uri` template Palette expands per Kubernetes version. */
export function systemUriTemplate(customTag: string): string {
  const base = `{{ ${OPT}.registry }}/{{ ${OPT}.repo }}:{{ ${OPT}.k8sDistribution }}-{{ .spectro.system.kubernetes.version }}-{{ ${OPT}.peVersion }}`;
  return customTag ? `${base}-{{ ${OPT}.customTag }}` : base;
}

/** The snippet text, ending with a newline, exactly as earthly.sh's `echo -e` lines produce it. */
export function packSnippet(
  c: Pick<
    BuildConfig,
    'imageRegistry' | 'imageRepo' | 'k8sDistribution' | 'osDistribution' | 'peVersion' | 'customTag' | 'osVersion'
  >,
): string {
  const lines = [
    RULE,
    '',
    'PASTE THE CONTENT BELOW INTO YOUR CLUSTER PROFILE IN PALETTE REPLACING ALL THE CONTENTS IN THE PROFILE',
    '',
    RULE,
    '',
    '',
    'pack:',
    '  content:',
    '    images:',
    '      - image: "{{.spectro.pack.edge-native-byoi.options.system.uri}}"',
    '  # Below config is default value, please uncomment if you want to modify default values',
    '  #drain:',
    '    #cordon: true',
    '    #timeout: 60 # The length of time to wait before giving up, zero means infinite',
    '    #gracePeriod: 60 # Period of time in seconds given to each pod to terminate gracefully. If negative, the default value specified in the pod will be used',
    '    #ignoreDaemonSets: true',
    '    #deleteLocalData: true # Continue even if there are pods using emptyDir (local data that will be deleted when the node is drained)',
    '    #force: true # Continue even if there are pods that do not declare a controller',
    '    #disableEviction: false # Force drain to use delete, even if eviction is supported. This will bypass checking PodDisruptionBudgets, use with caution',
    '    #skipWaitForDeleteTimeout: 60 # If pod DeletionTimestamp older than N seconds, skip waiting for the pod. Seconds must be greater than 0 to skip.',
    'options:',
    `  system.uri: "${systemUriTemplate(c.customTag)}"`,
    '',
    '',
    `  system.registry: ${c.imageRegistry}`,
    `  system.repo: ${c.imageRepo}`,
    `  system.k8sDistribution: ${c.k8sDistribution}`,
    `  system.osName: ${c.osDistribution}`,
    `  system.peVersion: ${c.peVersion}`,
    `  system.customTag: ${c.customTag}`,
    `  system.osVersion: ${c.osVersion}`,
  ];
  return `${lines.join('\n')}\n`;
}
