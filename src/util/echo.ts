/**
 * User values quoted in messages, cut short. Its own module (re-exported by text-input.ts) so that code which only
 * quotes values (CLI flags, transport names: every copy) does not load the YAML parser with text-input.ts.
 */

/** Longest value echoed in a message; longer ones are cut with "…". */
export const ECHO_LIMIT = 40;

/** `value` quoted for a message, cut to {@link ECHO_LIMIT} characters. */
export function echo(value: string, limit = ECHO_LIMIT): string {
  return JSON.stringify(value.length > limit ? `${value.slice(0, limit)}…` : value);
}
