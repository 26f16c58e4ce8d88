/** See dawn-shims.mjs. */
export function copySharedWrites(GPUQueue: unknown): void;
