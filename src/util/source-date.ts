/** SOURCE_DATE_EPOCH, read strictly: every command and library function that pins dates reads it here. */
import { CanvosError } from '../errors.js';

/** SOURCE_DATE_EPOCH from the environment, or 0 when unset. Throws ERR_CONFIG when malformed. */
export function sourceDateEpochFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return 0;
  if (!/^\d+$/.test(v)) {
    throw new CanvosError('ERR_CONFIG', `SOURCE_DATE_EPOCH=${JSON.stringify(v)} is not a whole number of seconds`, {
      hint: 'set it to e.g. $(git log -1 --format=%ct)',
    });
  }
  return Number(v);
}
