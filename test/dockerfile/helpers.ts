/** Shared by the Dockerfile unit tests. */
import { CanvosError } from '../../src/errors.js';

/** The CanvosError `f` throws (fails the test when it throws nothing or something else). */
export function thrown(f: () => unknown): CanvosError {
  try {
    f();
  } catch (e) {
    if (CanvosError.is(e)) return e;
    throw e;
  }
  throw new Error('expected a CanvosError');
}
