/**
 * A program for `tp_run` (csrc/materialize.c): int32 words of op codes and arguments, plus the
 * memory layout it runs on. Kernels (src/kernels/<kernel>.ts) append steps; pointers are
 * allocated in regions laid out at the end in this order from the heap base:
 *
 *   inputs   — every distinct input array once (shared TT cores, factors, … are deduplicated)
 *   outputs  — the results the caller reads back
 *   temps    — intermediates, one region per lane; reused from offset 0 by every expression
 *              (`resetTemps`), so a region is as large as the largest expression of its lane
 *   programs — the words of each lane
 *
 * A lane is an independent op list: lanes share inputs and write disjoint outputs, so they can
 * run at the same time on threads sharing one memory (src/threads.ts), or one after another.
 * Pointer words are region-relative while building and relocated in `layout()`.
 */
import { WasmKernelError } from './errors.js';
import { align16, type Heap } from './heap.js';

export const OP = { GEMM: 1, GATE: 2, DENSE: 3, CP: 4, MODEPROD: 5, PERMUTE: 6 } as const;

const IN = 0;
const OUT = 1;
/** Temp region of lane l is TMP + l. */
const TMP = 2;

/** A region-relative byte offset; `null` is the null pointer. */
export interface Ptr {
  readonly region: number;
  readonly offset: number;
}
export type Arg = number | Ptr | null | { f32: number };

const bits = new DataView(new ArrayBuffer(4));
function f32Bits(v: number): number {
  bits.setFloat32(0, v, true);
  return bits.getInt32(0, true);
}

interface Lane {
  words: number[];
  relocs: Array<[index: number, region: number]>;
  tmpTop: number;
  tmpMax: number;
}

export interface Mark {
  lanes: Array<[words: number, relocs: number]>;
  inBytes: number;
  outBytes: number;
  inputs: number;
  outputs: number;
}

export interface Layout {
  inBase: number;
  outBase: number;
  /** Per lane. */
  tmpBase: number[];
  progBase: number[];
  end: number;
}

/** A program written into memory, ready to run lane by lane. */
export interface Prepared {
  /** [byte offset, word count] of each lane's program. */
  lanes: Array<[number, number]>;
  /** [byte offset, float count] of each lane's outputs, in allocation order. */
  outputs: Array<Array<[number, number]>>;
  /** Fresh copies of the outputs, in allocation order. */
  read(): Float32Array[];
  /** Fresh copies of one lane's outputs. */
  readLane(lane: number): Float32Array[];
  /** All outputs in allocation order, from per-lane lists. */
  assemble(perLane: Float32Array[][]): Float32Array[];
}

export class Program {
  private readonly lanes: Lane[];
  private lane: Lane;
  private laneIndex = 0;
  private inBytes = 0;
  private outBytes = 0;
  private readonly inputIndex = new Map<Float32Array, Ptr>();
  private readonly inputList: Array<{ data: Float32Array; ptr: Ptr }> = [];
  readonly outputs: Array<{ ptr: Ptr; length: number; lane: number }> = [];

  constructor(laneCount = 1) {
    this.lanes = Array.from({ length: Math.max(1, laneCount) }, () => ({ words: [], relocs: [], tmpTop: 0, tmpMax: 0 }));
    this.lane = this.lanes[0]!;
  }

  get laneCount(): number {
    return this.lanes.length;
  }

  /** Subsequent steps and temps go to lane `i`. */
  useLane(i: number): void {
    this.lane = this.lanes[i]!;
    this.laneIndex = i;
  }

  /** Bytes this program needs above the heap base. */
  get bytes(): number {
    return this.inBytes + this.outBytes + this.lanes.reduce((a, l) => a + l.tmpMax + l.words.length * 4, 0);
  }

  /** An input array, copied once however often it is used. */
  input(data: Float32Array): Ptr {
    let p = this.inputIndex.get(data);
    if (!p) {
      p = { region: IN, offset: this.inBytes };
      this.inBytes += align16(data.length * 4);
      this.inputIndex.set(data, p);
      this.inputList.push({ data, ptr: p });
    }
    return p;
  }

  /** An output of `length` floats, read back after the run (in allocation order). */
  output(length: number): Ptr {
    const ptr: Ptr = { region: OUT, offset: this.outBytes };
    this.outBytes += align16(length * 4);
    this.outputs.push({ ptr, length, lane: this.laneIndex });
    return ptr;
  }

  /** Scratch of the current lane, valid until its next `resetTemps()`. */
  temp(length: number): Ptr {
    const l = this.lane;
    const ptr: Ptr = { region: TMP + this.laneIndex, offset: l.tmpTop };
    l.tmpTop += align16(length * 4);
    l.tmpMax = Math.max(l.tmpMax, l.tmpTop);
    return ptr;
  }

  resetTemps(): void {
    this.lane.tmpTop = 0;
  }

  op(code: number, ...args: Arg[]): void {
    const { words, relocs } = this.lane;
    words.push(code);
    for (const a of args) {
      if (a === null) words.push(0);
      else if (typeof a === 'number') words.push(a | 0);
      else if ('f32' in a) words.push(f32Bits(a.f32));
      else {
        relocs.push([words.length, a.region]);
        words.push(a.offset);
      }
    }
  }

  mark(): Mark {
    return {
      lanes: this.lanes.map((l) => [l.words.length, l.relocs.length]),
      inBytes: this.inBytes,
      outBytes: this.outBytes,
      inputs: this.inputList.length,
      outputs: this.outputs.length,
    };
  }

  /** Forget everything appended after `m` (temps keep their high-water marks: harmless). */
  rollback(m: Mark): void {
    this.lanes.forEach((l, i) => {
      l.words.length = m.lanes[i]![0];
      l.relocs.length = m.lanes[i]![1];
    });
    this.inBytes = m.inBytes;
    this.outBytes = m.outBytes;
    for (const { data } of this.inputList.splice(m.inputs)) this.inputIndex.delete(data);
    this.outputs.length = m.outputs;
  }

  layout(base: number): Layout {
    const inBase = base;
    const outBase = inBase + this.inBytes;
    let at = outBase + this.outBytes;
    const tmpBase = this.lanes.map((l) => {
      const b = at;
      at += l.tmpMax;
      return b;
    });
    const progBase = this.lanes.map((l) => {
      const b = at;
      at += l.words.length * 4;
      return b;
    });
    return { inBase, outBase, tmpBase, progBase, end: at };
  }

  static address(l: Layout, p: Ptr): number {
    return (p.region === IN ? l.inBase : p.region === OUT ? l.outBase : l.tmpBase[p.region - TMP]!) + p.offset;
  }

  /** Copy inputs and every lane's program into memory. */
  prepare(heap: Heap): Prepared {
    const l = this.layout(heap.base);
    heap.ensure(l.end);
    for (const { data, ptr } of this.inputList) heap.write(Program.address(l, ptr), data);
    const lanes = this.lanes.map((lane, i): [number, number] => {
      const words = Int32Array.from(lane.words);
      for (const [at, region] of lane.relocs) words[at] = (words[at]! + Program.address(l, { region, offset: 0 })) | 0;
      heap.i32.set(words, l.progBase[i]! / 4);
      return [l.progBase[i]!, words.length];
    });
    const outputs = this.lanes.map(() => [] as Array<[number, number]>);
    for (const o of this.outputs) outputs[o.lane]!.push([Program.address(l, o.ptr), o.length]);
    const order = this.outputs.map((o) => o.lane);
    return {
      lanes,
      outputs,
      read: () => this.outputs.map((o) => heap.read(Program.address(l, o.ptr), o.length)),
      readLane: (lane) => outputs[lane]!.map(([at, len]) => heap.read(at, len)),
      assemble: (perLane) => {
        const next = perLane.map(() => 0);
        return order.map((lane) => perLane[lane]![next[lane]!++]!);
      },
    };
  }

  /** Run every lane on this thread, one after another, and return the outputs. */
  run(heap: Heap): Float32Array[] {
    const prepared = this.prepare(heap);
    for (const [at, len] of prepared.lanes) checkStatus(runLane(heap, at, len));
    return prepared.read();
  }
}

export function runLane(heap: Heap, at: number, len: number): number | string {
  if (len === 0) return 0;
  try {
    return heap.k.tp_run(at, len);
  } catch (e) {
    return (e as Error).message;
  }
}

/** Turn a lane's result (0, a negative word index, or a trap message) into an error. */
export function checkStatus(status: number | string): void {
  if (status === 0) return;
  if (typeof status === 'string') throw new WasmKernelError('wasm kernel trapped', { found: status });
  throw new WasmKernelError('wasm kernels rejected the program', { expected: 0, found: `status ${status}` });
}
