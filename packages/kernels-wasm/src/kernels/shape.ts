/** Shape checks shared by the kernels; the messages match the JS reference backend's. */
import { ShapeMismatchError } from '@tensorpeft/core';

export function fail(what: string, expected: unknown, found: unknown): never {
  throw new ShapeMismatchError(what, { expected, found });
}

export const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);
