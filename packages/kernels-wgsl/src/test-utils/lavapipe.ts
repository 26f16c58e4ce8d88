/**
 * A WebGPU backend on Mesa's lavapipe (Vulkan on the CPU, via LLVM), in Node through Dawn — the one
 * driver here that offers `shader-f16` without a GPU (SwiftShader does not), so the native float16
 * kernel runs somewhere in CI. lavapipe must be Mesa ≥ 23 (Debian 12: bookworm-backports' Mesa 25;
 * bookworm's own 22.3 is too old for Dawn); tooling/ensure-system-deps.sh installs it.
 *
 * Choosing the driver. `.ci/run` exports VK_ICD_FILENAMES=SwiftShader for the whole suite, and the
 * Vulkan loader reads VK_ICD_FILENAMES / VK_DRIVER_FILES (the newer name, which wins when both are
 * set) each time Dawn creates its Vulkan instance, i.e. on `requestAdapter` of a new `create()`
 * instance. So both variables are pointed at lavapipe's ICD alone just for the adapter and device
 * requests, and restored afterwards; on top of that Dawn is asked for the `llvmpipe` adapter by name
 * (`adapter=` option of dawn.node's `create`), and the adapter actually obtained is checked. This
 * needs a real process environment: vitest's default `forks` pool gives each test file one (under
 * `--pool=threads` a worker's process.env is a private copy the loader never sees — the test then
 * fails on the adapter check, it does not silently run on SwiftShader).
 */
import { existsSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { WebGpuBackend, type WebGpuBackendOptions } from '../backend.js';

export const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';

export const LAVAPIPE_INSTALL =
  "install Mesa's lavapipe >= 23 (it has shader-f16): run tooling/ensure-system-deps.sh as root, or on Debian 12 " +
  "add bookworm-backports and run 'apt-get install -y -t bookworm-backports mesa-vulkan-drivers' (plus libvulkan1); " +
  `its Vulkan ICD must be ${LAVAPIPE_ICD}`;

export interface LavapipeBackend {
  backend: WebGpuBackend;
  /** Dawn's instance: keep it referenced while the backend lives, drop it after (see AcquiredDevice.instance). */
  instance: GPU | undefined;
}

export async function makeLavapipeBackend(opts: WebGpuBackendOptions = {}): Promise<LavapipeBackend> {
  if (!existsSync(LAVAPIPE_ICD)) throw new Error(`lavapipe's Vulkan ICD is missing: ${LAVAPIPE_INSTALL}`);
  const { create } = (await import('webgpu')) as { create: (flags: string[]) => GPU };
  const saved = { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES, VK_DRIVER_FILES: process.env.VK_DRIVER_FILES };
  process.env.VK_ICD_FILENAMES = LAVAPIPE_ICD;
  process.env.VK_DRIVER_FILES = LAVAPIPE_ICD;
  let instance: GPU | undefined = create(['backend=vulkan', 'adapter=llvmpipe']);
  let backend: WebGpuBackend;
  try {
    backend = await WebGpuBackend.create({ ...opts, gpu: instance, swiftshaderFallback: false });
  } catch (e) {
    instance = undefined;
    // In a worker thread the variables above never reached the Vulkan loader: say so, not "install".
    if (!isMainThread) throw new Error(`no WebGPU device on lavapipe: this must run in a process's main thread (vitest's default 'forks' pool), not a worker thread, whose process.env the Vulkan loader does not see (${(e as Error).message})`);
    throw new Error(`no WebGPU device on lavapipe (${(e as Error).message}): ${LAVAPIPE_INSTALL}`);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  if (!/llvmpipe/i.test(backend.adapterDescription)) {
    backend.destroy();
    throw new Error(`expected Dawn on lavapipe (llvmpipe), got "${backend.adapterDescription}": ${LAVAPIPE_INSTALL}`);
  }
  return { backend, instance };
}
