/**
 * Structure-first checks on untrusted JSON text, before `JSON.parse` allocates anything: one pass
 * over the characters (iterative, O(1) memory) that measures nesting depth and top-level members
 * and stops at the first limit crossed. A safetensors header is at most 3 levels deep, a config
 * a few; a 10 MB text nested 10⁶ deep would otherwise become 10⁶ live arrays inside JSON.parse
 * (hundreds of MiB) and later overflow the stack of any recursive consumer.
 *
 * The scan does not validate JSON (JSON.parse does that afterwards); it only needs to get string
 * boundaries right, which it does for any input: outside a string, `[`/`{` open, `]`/`}` close.
 */

export interface JsonLimits {
  /** Deepest nesting accepted: 1 = a flat object or array, 2 = containers inside it, … */
  maxDepth: number;
  /** Most members of the top-level object or array (counted as its `:` or `,` separators). */
  maxTopLevelMembers?: number;
}

export type JsonScanResult =
  | { ok: true; depth: number; members: number }
  | { ok: false; limit: 'depth' | 'members'; found: number; at: number };

/** Check `text` against `limits` without parsing it. */
export function scanJson(text: string, limits: JsonLimits): JsonScanResult {
  let depth = 0;
  let deepest = 0;
  let members = 0;
  let sawTopValue = false;
  const maxMembers = limits.maxTopLevelMembers ?? Infinity;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string; a backslash escapes the next character.
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      if (depth === 1) sawTopValue = true;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (depth === 1) sawTopValue = true;
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limits.maxDepth) return { ok: false, limit: 'depth', found: deepest, at: i };
      }
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      if (depth > 0) depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      members++;
      if (members + 1 > maxMembers) return { ok: false, limit: 'members', found: members + 1, at: i };
    } else if (depth === 1 && c > 0x20) {
      sawTopValue = true;
    }
  }
  return { ok: true, depth: deepest, members: sawTopValue ? members + 1 : 0 };
}

/**
 * True when an already-parsed value is nested deeper than `limit` or contains a cycle (infinite
 * depth). Iterative, linear in the number of distinct objects (shared sub-objects are measured
 * once). For config objects handed over by callers rather than read from text.
 */
export function valueDepthExceeds(value: unknown, limit: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  // Height of each finished object; ACTIVE marks objects on the current path (a cycle if met again).
  const ACTIVE = -1;
  const height = new Map<object, number>();
  type Frame = { obj: object; children: unknown[]; next: number; h: number };
  const open = (obj: object): Frame => ({ obj, children: Array.isArray(obj) ? obj : Object.values(obj), next: 0, h: 1 });
  const stack: Frame[] = [open(value)];
  height.set(value, ACTIVE);
  while (stack.length > 0) {
    if (stack.length > limit) return true;
    const f = stack[stack.length - 1]!;
    if (f.next < f.children.length) {
      const c = f.children[f.next++];
      if (c === null || typeof c !== 'object') continue;
      const h = height.get(c);
      if (h === ACTIVE) return true;
      if (h !== undefined) {
        f.h = Math.max(f.h, h + 1);
        if (f.h > limit) return true;
        continue;
      }
      height.set(c, ACTIVE);
      stack.push(open(c));
    } else {
      stack.pop();
      height.set(f.obj, f.h);
      const parent = stack[stack.length - 1];
      if (parent) parent.h = Math.max(parent.h, f.h + 1);
      if (f.h > limit || (parent && parent.h > limit)) return true;
    }
  }
  return false;
}
