// What dawn.node (the `webgpu` npm package) does differently from a browser's WebGPU, patched for
// ORT-web running on it in Node (dawn-page.mjs, webgpu-mlp-fusion.test.ts). Plain JS: the Dawn child
// process imports it without a TypeScript loader.

/**
 * dawn.node's `GPUQueue.writeBuffer` refuses typed arrays over a SharedArrayBuffer (ORT-web's wasm
 * memory is shared; Chromium accepts them): such writes are copied into a plain buffer first.
 */
export function copySharedWrites(GPUQueue) {
  const queue = GPUQueue.prototype;
  const writeBuffer = queue.writeBuffer;
  queue.writeBuffer = function (buffer, offset, data, dataOffset = 0, size) {
    if (ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer) {
      const el = data.BYTES_PER_ELEMENT ?? 1;
      const n = size ?? data.byteLength / el - dataOffset;
      const copy = new Uint8Array(n * el);
      copy.set(new Uint8Array(data.buffer, data.byteOffset + dataOffset * el, n * el));
      return writeBuffer.call(this, buffer, offset, copy, 0, n * el);
    }
    return writeBuffer.call(this, buffer, offset, data, dataOffset, size);
  };
}
