/**
 * WGSL compute shaders. Every kernel addresses one float32 "heap" storage buffer (binding 0,
 * read_write) by element offsets, like wasm linear memory: inputs, intermediates and outputs of a
 * whole program (e.g. every module of an adapter) live in disjoint regions of it, so one bind
 * group layout serves every kernel and a program never binds the same buffer twice. Binding 1 is
 * the dispatch's parameter slot (`array<u32>`, floats bit-cast), a 256-byte window into one
 * parameter buffer per program.
 *
 * Kernels:
 * - `gemm`: batched, strided `C = α·A·B` or `C += α·A·B`, 16×16 output tiles with A and B tiles
 *   staged in workgroup shared memory (K in steps of 16). Strides make one kernel serve the merge
 *   GEMM in both weight layouts, both branch-apply GEMMs, every TT chain step (batched over the
 *   core's mode index) and every Tucker mode product (batched over the leading modes).
 * - `gather`: a strided 2-D view with optional row/column scale vectors and a scalar (dense
 *   blocks, transposes, copies, folding s into B′).
 * - `cp`: the Khatri–Rao expansion of CP.
 * - `gate`: TRAC's controller gating of a TT core, `rank[a]·mode[i]·G[a, i, j]`.
 * - `permute`: an N-d transpose (≤ 8 modes; the Tucker output order).
 */

export const TILE = 16;
/** Threads per workgroup of the element-wise kernels. */
export const EW = 256;
/** u32 words per parameter slot (the slot is 256 bytes, the usual minStorageBufferOffsetAlignment). */
export const SLOT_WORDS = 64;
export const MAX_PERMUTE_DIMS = 8;

const header = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> heap: array<f32>;
@group(0) @binding(1) var<storage, read> p: array<u32>;
`;

/** Element-wise kernels run 1-D over `total` elements on a 2-D grid (x ≤ 65535 groups). */
const ewIndex = /* wgsl */ `
  let idx = (wg.y * nwg.x + wg.x) * ${EW}u + li;
`;

export const GEMM = /* wgsl */ `${header}
// p: 0 M, 1 N, 2 K,
//    3 aOff, 4 aRs, 5 aCs, 6 aBs,   A(i, k) = heap[aOff + b·aBs + i·aRs + k·aCs]
//    7 bOff, 8 bRs, 9 bCs, 10 bBs,  B(k, j) = heap[bOff + b·bBs + k·bRs + j·bCs]
//   11 cOff, 12 cRs, 13 cCs, 14 cBs, C(i, j) = heap[cOff + b·cBs + i·cRs + j·cCs]
//   15 accumulate (0: C = α·AB, 1: C += α·AB), 16 α (f32 bits),
//   17 thread order (0: local x runs along j, 1: along i — pick the contiguous one of C)
var<workgroup> As: array<array<f32, ${TILE + 1}>, ${TILE}>;
var<workgroup> Bs: array<array<f32, ${TILE + 1}>, ${TILE}>;

@compute @workgroup_size(${TILE}, ${TILE}, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let M = p[0]; let N = p[1]; let K = p[2];
  let b = wg.z;
  let i0 = wg.y * ${TILE}u;
  let j0 = wg.x * ${TILE}u;
  let aBase = p[3] + b * p[6];
  let bBase = p[7] + b * p[10];
  var ti = l.y; var tj = l.x;
  if (p[17] == 1u) { ti = l.x; tj = l.y; }
  // Tile loads: A rows along y, k along x unless A is column-contiguous (then transposed).
  let aColMajor = p[4] == 1u && p[5] != 1u;
  let bColMajor = p[9] != 1u && p[8] == 1u;
  var acc = 0.0;
  for (var k0 = 0u; k0 < K; k0 = k0 + ${TILE}u) {
    var ar = l.y; var ak = l.x;
    if (aColMajor) { ar = l.x; ak = l.y; }
    let ai = i0 + ar; let akk = k0 + ak;
    var av = 0.0;
    if (ai < M && akk < K) { av = heap[aBase + ai * p[4] + akk * p[5]]; }
    As[ar][ak] = av;
    var bk = l.y; var bj = l.x;
    if (bColMajor) { bk = l.x; bj = l.y; }
    let bkk = k0 + bk; let bjj = j0 + bj;
    var bv = 0.0;
    if (bkk < K && bjj < N) { bv = heap[bBase + bkk * p[8] + bjj * p[9]]; }
    Bs[bk][bj] = bv;
    workgroupBarrier();
    let kn = min(${TILE}u, K - k0);
    for (var kk = 0u; kk < kn; kk = kk + 1u) {
      acc = acc + As[ti][kk] * Bs[kk][tj];
    }
    workgroupBarrier();
  }
  let i = i0 + ti; let j = j0 + tj;
  if (i < M && j < N) {
    let c = p[11] + b * p[14] + i * p[12] + j * p[13];
    let alpha = bitcast<f32>(p[16]);
    if (p[15] == 1u) { heap[c] = heap[c] + alpha * acc; } else { heap[c] = alpha * acc; }
  }
}
`;

/**
 * The simple path of `gemm` (same parameters): one invocation per output, K read straight from
 * the heap, no shared memory and no barriers. Used on software adapters (SwiftShader runs
 * workgroup barriers by switching between emulated invocations, which makes the tiled kernel
 * several times slower there) or on request (`gemm: 'simple'`).
 */
export const GEMM_SIMPLE = /* wgsl */ `${header}
@compute @workgroup_size(${TILE}, ${TILE}, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let M = p[0]; let N = p[1]; let K = p[2];
  let b = wg.z;
  var ti = l.y; var tj = l.x;
  if (p[17] == 1u) { ti = l.x; tj = l.y; }
  let i = wg.y * ${TILE}u + ti; let j = wg.x * ${TILE}u + tj;
  if (i >= M || j >= N) { return; }
  var a = p[3] + b * p[6] + i * p[4];
  var bb = p[7] + b * p[10] + j * p[9];
  let aCs = p[5]; let bRs = p[8];
  var acc = 0.0;
  for (var k = 0u; k < K; k = k + 1u) {
    acc = acc + heap[a] * heap[bb];
    a = a + aCs;
    bb = bb + bRs;
  }
  let c = p[11] + b * p[14] + i * p[12] + j * p[13];
  let alpha = bitcast<f32>(p[16]);
  if (p[15] == 1u) { heap[c] = heap[c] + alpha * acc; } else { heap[c] = alpha * acc; }
}
`;

export const GATHER = /* wgsl */ `${header}
// p: 0 R, 1 C, 2 srcOff, 3 sRow, 4 sCol, 5 dstOff, 6 rsOff, 7 csOff, 8 flags (1 rs, 2 cs, 4 α), 9 α
@compute @workgroup_size(${EW})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${ewIndex}
  let R = p[0]; let C = p[1];
  if (idx >= R * C) { return; }
  let i = idx / C; let j = idx % C;
  var v = heap[p[2] + i * p[3] + j * p[4]];
  let f = p[8];
  if ((f & 1u) != 0u) { v = v * heap[p[6] + i]; }
  if ((f & 2u) != 0u) { v = v * heap[p[7] + j]; }
  if ((f & 4u) != 0u) { v = v * bitcast<f32>(p[9]); }
  heap[p[5] + idx] = v;
}
`;

export const CP = /* wgsl */ `${header}
// p: 0 p, 1 q, 2 r, 3 innerOff, 4 outerOff, 5 scaleOff, 6 hasScale, 7 dstOff
@compute @workgroup_size(${EW})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${ewIndex}
  let P = p[0]; let Q = p[1]; let r = p[2];
  if (idx >= Q * P * r) { return; }
  let k = idx % r; let t = idx / r; let j = t % P; let h = t / P;
  var v = heap[p[4] + h * r + k] * heap[p[3] + j * r + k];
  if (p[6] == 1u) { v = v * heap[p[5] + k]; }
  heap[p[7] + idx] = v;
}
`;

export const GATE = /* wgsl */ `${header}
// p: 0 rLeft, 1 size, 2 rRight, 3 coreOff, 4 rankOff, 5 modeOff, 6 dstOff
@compute @workgroup_size(${EW})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${ewIndex}
  let size = p[1]; let rR = p[2];
  if (idx >= p[0] * size * rR) { return; }
  let t = idx / rR; let i = t % size; let a = t / size;
  heap[p[6] + idx] = (heap[p[4] + a] * heap[p[5] + i]) * heap[p[3] + idx];
}
`;

export const PERMUTE = /* wgsl */ `${header}
// p: 0 ndim, 1 total, 2 srcOff, 3 dstOff, 4.. outDims[8], 12.. srcStrides[8]
@compute @workgroup_size(${EW})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${ewIndex}
  if (idx >= p[1]) { return; }
  var rem = idx;
  var src = 0u;
  for (var d = i32(p[0]) - 1; d >= 0; d = d - 1) {
    let dim = p[4u + u32(d)];
    src = src + (rem % dim) * p[12u + u32(d)];
    rem = rem / dim;
  }
  heap[p[3] + idx] = heap[p[2] + src];
}
`;

export const SHADERS = { gemm: GEMM, gemm_simple: GEMM_SIMPLE, gather: GATHER, cp: CP, gate: GATE, permute: PERMUTE } as const;
export type KernelName = keyof typeof SHADERS;
