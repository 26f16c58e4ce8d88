/**
 * Test helpers: one WebGPU backend per test file (Node: Dawn on SwiftShader when there is no GPU;
 * VK_ICD_FILENAMES defaults to Debian chromium's SwiftShader ICD when it is there and unset).
 */
import { existsSync } from 'node:fs';
import { WebGpuBackend, type WebGpuBackendOptions } from '../backend.js';
import { SWIFTSHADER_ICD } from '../device.js';

export async function makeBackend(opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  return WebGpuBackend.create(opts);
}
