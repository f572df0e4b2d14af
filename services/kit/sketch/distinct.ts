/**
 * Mergeable distinct-count sketch for statsd sets: the exact set of member hashes while it
 * holds at most DISTINCT_EXACT_LIMIT members, then a HyperLogLog with 2^14 registers
 * (standard error 1.04/sqrt(16384) ≈ 0.81%).
 *
 * The state is a function of the set of member hashes only (exact set if small, else the
 * registers, which are a max over members), so add and merge are commutative and associative
 * bit for bit, and an exact+exact merge that grows past the limit becomes the same HLL as if
 * every member had been added to one sketch.
 *
 * Why not bloom-filters' HyperLogLog (evaluated first): it hashes each element with xxhashjs'
 * h64 and then formats the 64-bit result as a binary *string* to pick the register (slow:
 * a few µs and several allocations per member), keeps registers in a plain number[] and
 * serializes only to JSON (tens of KB for 16,384 registers), has no exact small mode, and
 * stores "position of the first 1" instead of the rank, which it compensates with a factor
 * of 2 in the estimate. A 2^14-register HLL is ~60 lines, so we keep our own.
 *
 * Hash: cyrb53 (bryc, public domain), 53 bits over the member's UTF-16 code units — fast in
 * JS (two Math.imul per code unit, no allocation) and well mixed. The hash is part of the
 * stored format: changing it would split every stored set in two. 53 bits rather than 64 so
 * a hash is an exact JS number; collisions among 256 exact members are ~2^-37 likely, and the
 * HLL uses 14 bits for the register and 39 for the rank (good far beyond 10^12 members).
 * Measured here: ~65 ns per 20-character member, against ~1,300 ns for node:crypto md5
 * (createHash per member); a whole HLL add is ~120-200 ns.
 *
 * Estimator: Ertl, "New cardinality estimation algorithms for HyperLogLog sketches" (2017),
 * the improved raw estimator, which needs no bias tables or linear-counting switch-over and is
 * unbiased from 0 to far beyond 10^9.
 *
 * Serialized format, version 1:
 *   u8 version = 1, u8 mode
 *   mode 0, exact:      varint n, then n hashes ascending, each 7 bytes little endian
 *   mode 1, HLL sparse: u8 precision (14), varint k, then k times
 *                       (varint index delta from the previous non-zero register, u8 rank)
 *   mode 2, HLL dense:  u8 precision (14), 2^14 ranks packed 6 bits each, little endian
 *                       (12,288 bytes)
 *   An HLL is written sparse when that is shorter, else dense: one form per state.
 */
import { Reader, Writer } from './bytes.js';

export const DISTINCT_EXACT_LIMIT = 256;
export const HLL_PRECISION = 14;
const M = 1 << HLL_PRECISION;
/** Bits of the hash left for the rank. */
const Q = 53 - HLL_PRECISION;
const FORMAT_VERSION = 1;
const MODE_EXACT = 0;
const MODE_SPARSE = 1;
const MODE_DENSE = 2;
const DENSE_BYTES = (M * 6) / 8;
const TWO32 = 4294967296;

/** cyrb53: a 53-bit hash of `member`, an integer in [0, 2^53). */
export function hashMember(member: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < member.length; i++) {
    const ch = member.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return TWO32 * (0x1fffff & h2) + (h1 >>> 0);
}

export class DistinctSketch {
  /** Member hashes while exact; null once the sketch is a HyperLogLog. */
  private exact: Set<number> | null = new Set();
  private registers: Uint8Array | null = null;

  add(member: string): void {
    this.addHash(hashMember(member));
  }

  /** Adds a member by its `hashMember` hash. */
  addHash(hash: number): void {
    if (this.exact !== null) {
      this.exact.add(hash);
      if (this.exact.size > DISTINCT_EXACT_LIMIT) this.toHll();
    } else {
      hllAdd(this.registers!, hash);
    }
  }

  /** Adds everything in `other` to this sketch (`other` is unchanged). */
  merge(other: DistinctSketch): void {
    if (other.exact !== null) {
      for (const h of [...other.exact]) this.addHash(h);
      return;
    }
    if (this.exact !== null) {
      const mine = this.exact;
      this.exact = null;
      this.registers = new Uint8Array(other.registers!);
      for (const h of mine) hllAdd(this.registers, h);
      return;
    }
    const r = this.registers!;
    const o = other.registers!;
    for (let i = 0; i < M; i++) if (o[i] > r[i]) r[i] = o[i];
  }

  /** True while the count is exact. */
  get isExact(): boolean {
    return this.exact !== null;
  }

  /** The number of distinct members: exact while small, else the HLL estimate, rounded. */
  get count(): number {
    if (this.exact !== null) return this.exact.size;
    return Math.round(estimate(this.registers!));
  }

  private toHll(): void {
    const r = new Uint8Array(M);
    for (const h of this.exact!) hllAdd(r, h);
    this.registers = r;
    this.exact = null;
  }

  serialize(): Buffer {
    if (this.exact !== null) {
      const hashes = [...this.exact].sort((a, b) => a - b);
      const w = new Writer(3 + 3 + hashes.length * 7);
      w.u8(FORMAT_VERSION);
      w.u8(MODE_EXACT);
      w.varint(hashes.length);
      for (const h of hashes) {
        let lo = h % TWO32;
        let hi = (h - lo) / TWO32;
        for (let b = 0; b < 4; b++) {
          w.u8(lo & 0xff);
          lo >>>= 8;
        }
        for (let b = 0; b < 3; b++) {
          w.u8(hi & 0xff);
          hi >>>= 8;
        }
      }
      return w.done();
    }
    const r = this.registers!;
    let nonZero = 0;
    let sparseBytes = 0;
    let prev = 0;
    for (let i = 0; i < M; i++) {
      if (r[i] === 0) continue;
      const d = i - prev;
      sparseBytes += (d < 0x80 ? 1 : d < 0x4000 ? 2 : 3) + 1;
      prev = i;
      nonZero++;
    }
    if (sparseBytes + 3 < DENSE_BYTES) {
      const w = new Writer(3 + 3 + sparseBytes);
      w.u8(FORMAT_VERSION);
      w.u8(MODE_SPARSE);
      w.u8(HLL_PRECISION);
      w.varint(nonZero);
      prev = 0;
      for (let i = 0; i < M; i++) {
        if (r[i] === 0) continue;
        w.varint(i - prev);
        w.u8(r[i]);
        prev = i;
      }
      return w.done();
    }
    const out = Buffer.alloc(3 + DENSE_BYTES);
    out[0] = FORMAT_VERSION;
    out[1] = MODE_DENSE;
    out[2] = HLL_PRECISION;
    // 4 ranks of 6 bits in 3 bytes
    for (let i = 0, o = 3; i < M; i += 4, o += 3) {
      const v = r[i] | (r[i + 1] << 6) | (r[i + 2] << 12) | (r[i + 3] << 18);
      out[o] = v & 0xff;
      out[o + 1] = (v >>> 8) & 0xff;
      out[o + 2] = (v >>> 16) & 0xff;
    }
    return out;
  }

  static deserialize(buf: Uint8Array): DistinctSketch {
    const rd = new Reader(buf);
    const version = rd.u8();
    if (version !== FORMAT_VERSION) throw new Error(`distinct sketch: unknown format version ${version}`);
    const mode = rd.u8();
    const s = new DistinctSketch();
    if (mode === MODE_EXACT) {
      const n = rd.varint();
      if (n > DISTINCT_EXACT_LIMIT) throw new Error('distinct sketch: exact set too large');
      let prev = -1;
      for (let i = 0; i < n; i++) {
        const b = rd.bytes(7);
        const lo = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
        const hi = b[4] | (b[5] << 8) | (b[6] << 16);
        if (hi > 0x1fffff) throw new Error('distinct sketch: hash out of range');
        const h = hi * TWO32 + lo;
        if (h <= prev) throw new Error('distinct sketch: hashes out of order');
        prev = h;
        s.exact!.add(h);
      }
    } else if (mode === MODE_SPARSE || mode === MODE_DENSE) {
      if (rd.u8() !== HLL_PRECISION) throw new Error('distinct sketch: unsupported precision');
      const r = new Uint8Array(M);
      if (mode === MODE_SPARSE) {
        const k = rd.varint();
        let i = 0;
        for (let j = 0; j < k; j++) {
          const d = rd.varint();
          if (j > 0 && d === 0) throw new Error('distinct sketch: registers out of order');
          i += d;
          if (i >= M) throw new Error('distinct sketch: register out of range');
          r[i] = rd.u8();
          if (r[i] === 0) throw new Error('distinct sketch: empty register in sparse form');
        }
      } else {
        const b = rd.bytes(DENSE_BYTES);
        for (let i = 0, o = 0; i < M; i += 4, o += 3) {
          const v = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16);
          r[i] = v & 63;
          r[i + 1] = (v >>> 6) & 63;
          r[i + 2] = (v >>> 12) & 63;
          r[i + 3] = (v >>> 18) & 63;
        }
      }
      for (let i = 0; i < M; i++) if (r[i] > Q + 1) throw new Error('distinct sketch: rank out of range');
      s.exact = null;
      s.registers = r;
    } else {
      throw new Error(`distinct sketch: unknown mode ${mode}`);
    }
    if (!rd.atEnd()) throw new Error('distinct sketch: trailing bytes');
    return s;
  }
}

/** Register = low 14 bits of the hash; rank = 1 + leading zeros of the other 39 bits. */
function hllAdd(r: Uint8Array, hash: number): void {
  const lo = hash % TWO32;
  const hi = (hash - lo) / TWO32; // 21 bits
  const idx = lo & (M - 1);
  let rank: number;
  if (hi !== 0) {
    rank = Math.clz32(hi) - 11 + 1;
  } else {
    const mid = lo >>> HLL_PRECISION; // 18 bits
    rank = mid !== 0 ? 21 + (Math.clz32(mid) - HLL_PRECISION) + 1 : Q + 1;
  }
  if (rank > r[idx]) r[idx] = rank;
}

/** Ertl's improved raw estimator. */
function estimate(r: Uint8Array): number {
  const c = new Float64Array(Q + 2);
  for (let i = 0; i < M; i++) c[r[i]]++;
  let z = M * tau(1 - c[Q + 1] / M);
  for (let k = Q; k >= 1; k--) z = 0.5 * (z + c[k]);
  z += M * sigma(c[0] / M);
  return ((0.5 / Math.LN2) * M * M) / z;
}

function sigma(x: number): number {
  if (x === 1) return Infinity;
  let y = 1;
  let z = x;
  for (;;) {
    x *= x;
    const prev = z;
    z += x * y;
    y += y;
    if (z === prev) return z;
  }
}

function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let y = 1;
  let z = 1 - x;
  for (;;) {
    x = Math.sqrt(x);
    const prev = z;
    y *= 0.5;
    z -= (1 - x) * (1 - x) * y;
    if (z === prev) return z / 3;
  }
}
