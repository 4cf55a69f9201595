/**
 * On/off environment switches (`CANVOS_NO_NATIVE`, `CANVOS_BLOB_LOCATIONS`, `CANVOS_EXEC_DISABLE_USERNS`), read the
 * same way everywhere: `1`/`true`/`on`/`yes` is on, `0`/`false`/`off`/`no` is off (any case, spaces trimmed), unset or
 * empty is the switch's default; any other value is refused with ERR_CONFIG naming the variable, never guessed.
 */
import { CanvosError } from '../errors.js';
import { sourceDateEpochFromEnv } from './source-date.js';

const ON = ['1', 'true', 'on', 'yes'];
const OFF = ['0', 'false', 'off', 'no'];

/** The environment switches the CLI checks before a command runs, with their defaults and what they do. */
export const ENV_SWITCHES = {
  CANVOS_NO_NATIVE: { default: false, what: 'uses the pure-JS compressor instead of the native addon' },
  CANVOS_BLOB_LOCATIONS: { default: true, what: 'uses the blob-location cache (cross-repository mounts)' },
  CANVOS_EXEC_DISABLE_USERNS: { default: false, what: 'treats user namespaces as unavailable' },
} as const;

export type EnvSwitch = keyof typeof ENV_SWITCHES;

/** The value of switch `name` in `env`; throws ERR_CONFIG (exit 3) with a hint for a value that is not on or off. */
export function envSwitch(name: EnvSwitch, env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env[name];
  const v = (raw ?? '').trim().toLowerCase();
  if (v === '') return ENV_SWITCHES[name].default;
  if (ON.includes(v)) return true;
  if (OFF.includes(v)) return false;
  throw new CanvosError('ERR_CONFIG', `${name}=${JSON.stringify(raw)} is not on or off`, {
    hint: `set ${name} to 1 (or true, on, yes: it ${ENV_SWITCHES[name].what}) or 0 (or false, off, no), or unset it`,
  });
}

/**
 * Checks every switch in `env`, and SOURCE_DATE_EPOCH: the CLI does before a command runs, so a typo fails with exit
 * 3 before any work (and not only in the commands that happen to read the variable).
 */
export function checkEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of Object.keys(ENV_SWITCHES) as EnvSwitch[]) envSwitch(name, env);
  sourceDateEpochFromEnv(env);
}
