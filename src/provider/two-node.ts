/**
 * CanvOS's TWO_NODE steps (provider-image, canvos.md §1.5 step 11) as RUN steps for the rootless executor:
 * PostgreSQL 16 from the PGDG repository (ubuntu/amd64: apt with the PGDG key; opensuse-leap/amd64: zypper),
 * kine v$KINE_VERSION at /opt/spectrocloud/bin/kine, the postgres user's PERL5LIB, postgresql@.service ordered after
 * network-online.target, and postgresql disabled (Stylus enables it). They run after the project Dockerfile's steps,
 * so they are shared by every K8S_VERSION image and cached like any RUN. The download locations can be pointed at a
 * mirror (air-gapped sites, tests) with {@link TwoNodeSources}.
 */
import { CanvosError } from '../errors.js';
import type { RunStep } from '../dockerfile/evaluate.js';
import { canvosRunStep } from './run-step.js';
import { formatLoc, type BuildConfig } from './resolve.js';

/** Where TWO_NODE downloads from. Every field defaults to what CanvOS uses. */
export interface TwoNodeSources {
  /** PGDG apt repository (ubuntu). Default: `https://apt.postgresql.org/pub/repos/apt`. */
  pgdgAptUrl?: string | undefined;
  /** PGDG signing key, ASCII-armoured (ubuntu). Default: `https://www.postgresql.org/media/keys/ACCC4CF8.asc`. */
  pgdgKeyUrl?: string | undefined;
  /** PostgreSQL zypper repository (opensuse-leap). Default: the openSUSE server:database:postgresql repository. */
  zypperRepoUrl?: string | undefined;
  /** The kine binary. Default: `https://github.com/k3s-io/kine/releases/download/v$KINE_VERSION/kine-amd64` (CanvOS fetches the amd64 build). */
  kineUrl?: string | undefined;
}

/** TwoNodeSources from `CANVOS_PGDG_APT_URL`, `CANVOS_PGDG_KEY_URL`, `CANVOS_PG_ZYPPER_URL`, `CANVOS_KINE_URL`. */
export function twoNodeSourcesFromEnv(env: NodeJS.ProcessEnv): TwoNodeSources {
  return {
    pgdgAptUrl: env.CANVOS_PGDG_APT_URL || undefined,
    pgdgKeyUrl: env.CANVOS_PGDG_KEY_URL || undefined,
    zypperRepoUrl: env.CANVOS_PG_ZYPPER_URL || undefined,
    kineUrl: env.CANVOS_KINE_URL || undefined,
  };
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The shell scripts of the TWO_NODE steps, in order. Throws ERR_CONFIG where CanvOS would build a broken image. */
export function twoNodeScripts(c: BuildConfig, src: TwoNodeSources = {}): string[] {
  const at = formatLoc(c.origins.TWO_NODE);
  const where = at ? `${at}: ` : '';
  if (c.arch !== 'amd64' || (c.osDistribution !== 'ubuntu' && c.osDistribution !== 'opensuse-leap')) {
    // CanvOS installs postgresql only for these two, and always fetches an amd64 kine: elsewhere its image is broken.
    throw new CanvosError(
      'ERR_CONFIG',
      `${where}TWO_NODE=true needs OS_DISTRIBUTION=ubuntu or opensuse-leap with ARCH=amd64 (found ${c.osDistribution}/${c.arch})`,
      {
        hint: 'CanvOS installs PostgreSQL and kine for two-node only there; pre-install them in BASE_IMAGE and set TWO_NODE=false',
      },
    );
  }
  const aptUrl = src.pgdgAptUrl ?? 'https://apt.postgresql.org/pub/repos/apt';
  const keyUrl = src.pgdgKeyUrl ?? 'https://www.postgresql.org/media/keys/ACCC4CF8.asc';
  const zypperUrl =
    src.zypperRepoUrl ?? 'http://download.opensuse.org/repositories/server:database:postgresql/openSUSE_Tumbleweed/';
  const kineUrl = src.kineUrl ?? `https://github.com/k3s-io/kine/releases/download/v${c.kineVersion}/kine-amd64`;
  const key = '/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc';
  const postgres =
    c.osDistribution === 'ubuntu'
      ? [
          'apt-get update',
          `echo 'tzdata tzdata/Areas select Etc' | debconf-set-selections`,
          `echo 'tzdata tzdata/Zones/Etc select UTC' | debconf-set-selections`,
          'DEBIAN_FRONTEND=noninteractive apt-get install -y ca-certificates curl lsb-release',
          'install -d /usr/share/postgresql-common/pgdg',
          `curl -fsSL -o ${key} ${q(keyUrl)}`,
          `echo "deb [signed-by=${key}] ${aptUrl} $(lsb_release -cs)-pgdg main" > /etc/apt/sources.list.d/pgdg.list`,
          'apt-get update',
          'DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-16 postgresql-contrib-16 iputils-ping',
        ].join(' && ')
      : [
          `zypper --non-interactive --quiet addrepo --refresh -p 90 ${q(zypperUrl)} PostgreSQL`,
          'zypper --gpg-auto-import-keys ref',
          'zypper install -y postgresql-16 postgresql-server-16 postgresql-contrib iputils',
        ].join(' && ');
  return [
    postgres,
    `mkdir -p /opt/spectrocloud/bin && curl -fL ${q(kineUrl)} | install -m 755 /dev/stdin /opt/spectrocloud/bin/kine`,
    `su postgres -c 'echo "export PERL5LIB=/usr/share/perl/5.34:/etc/perl:/usr/lib/x86_64-linux-gnu/perl5/5.34:/usr/share/perl5:/usr/lib/x86_64-linux-gnu/perl/5.34:/usr/lib/x86_64-linux-gnu/perl-base" > ~/.bash_profile'`,
    `sed -i 's/After=network.target/After=network-online.target/' /lib/systemd/system/postgresql@.service`,
    'systemctl disable postgresql',
  ];
}

/** The TWO_NODE steps as executor RUN steps (`/bin/sh -c`, the build's proxies in the environment). */
export function twoNodeRunSteps(c: BuildConfig, src: TwoNodeSources = {}): RunStep[] {
  return twoNodeScripts(c, src).map((script, i) => canvosRunStep(c, script, `TWO_NODE step ${i + 1}`, 'TWO_NODE'));
}
