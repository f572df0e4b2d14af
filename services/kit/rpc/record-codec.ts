import type { Point, RecordRequest } from '../../../gen/osprey/v1/ingest_pb.js';
import type { MessageCodec } from './codecs.js';

/**
 * osprey.v1.RecordRequest on the wire, written by hand. protobuf-es encodes and decodes
 * by reflection at 1–3 µs per Point, which made protobuf the largest cost of a
 * point through api → ingest; this does the same bytes in a tenth of that. The output
 * is the protobuf encoding protobuf-es writes (fields in number order, zero values
 * left out), and the decoder reads any valid encoding (any order, unknown fields
 * skipped). record-codec.test.ts checks both against protobuf-es.
 */
export const recordRequestCodec: MessageCodec<RecordRequest> = {
  typeName: 'osprey.v1.RecordRequest',
  encode: encodeRecordRequest,
  decode: decodeRecordRequest,
};

const utf8Cache = new Map<string, Buffer>();

function utf8(s: string): Buffer {
  let b = utf8Cache.get(s);
  if (!b) {
    if (utf8Cache.size > 10_000) utf8Cache.clear();
    b = Buffer.from(s, 'utf8');
    utf8Cache.set(s, b);
  }
  return b;
}

const varintSize = (n: number) => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

function pointBodySize(p: Point, stat: Buffer): number {
  let n = 0;
  if (p.accountId !== 0) n += 1 + varintSize(p.accountId >>> 0);
  if (stat.length !== 0) n += 1 + varintSize(stat.length) + stat.length;
  if (p.kind !== 0) n += 1 + (p.kind < 0 ? 10 : varintSize(p.kind));
  if (p.number !== 0 || 1 / p.number < 0) n += 9; // -0 is written, as protobuf-es does
  if (p.unixTime !== 0) n += 1 + varintSize(p.unixTime >>> 0);
  return n;
}

export function encodeRecordRequest(req: Pick<RecordRequest, 'points'>): Uint8Array {
  const points = req.points;
  const stats = new Array<Buffer>(points.length);
  const sizes = new Array<number>(points.length);
  let total = 0;
  for (let i = 0; i < points.length; i++) {
    stats[i] = utf8(points[i].stat);
    sizes[i] = pointBodySize(points[i], stats[i]);
    total += 1 + varintSize(sizes[i]) + sizes[i];
  }
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    buf[pos++] = 0x0a; // field 1, length-delimited
    pos = writeVarint(buf, pos, sizes[i]);
    if (p.accountId !== 0) {
      buf[pos++] = 0x08;
      pos = writeVarint(buf, pos, p.accountId >>> 0);
    }
    const stat = stats[i];
    if (stat.length !== 0) {
      buf[pos++] = 0x12;
      pos = writeVarint(buf, pos, stat.length);
      pos += stat.copy(buf, pos);
    }
    if (p.kind !== 0) {
      buf[pos++] = 0x18;
      if (p.kind < 0) {
        // int32 enums below zero are ten-byte varints.
        let lo = p.kind >>> 0;
        for (let k = 0; k < 4; k++) {
          buf[pos++] = (lo & 0x7f) | 0x80;
          lo >>>= 7;
        }
        buf[pos++] = (lo & 0x0f) | 0x70 | 0x80;
        for (let k = 0; k < 4; k++) buf[pos++] = 0xff;
        buf[pos++] = 0x01;
      } else pos = writeVarint(buf, pos, p.kind);
    }
    if (p.number !== 0 || 1 / p.number < 0) {
      buf[pos++] = 0x21;
      buf.writeDoubleLE(p.number, pos);
      pos += 8;
    }
    if (p.unixTime !== 0) {
      buf[pos++] = 0x28;
      pos = writeVarint(buf, pos, p.unixTime >>> 0);
    }
  }
  return buf;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  /** A varint's low 32 bits (all uint32/int32/enum fields need). */
  varint32(): number {
    const buf = this.buf;
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= buf.length) throw new Error('truncated varint');
      const b = buf[this.pos++];
      if (shift < 32) result |= (b & 0x7f) << shift;
      shift += 7;
      if ((b & 0x80) === 0) return result;
    }
    throw new Error('varint longer than 10 bytes');
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint32();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2: {
        const len = this.varint32() >>> 0; // read before pos is used: `pos += varint()` would lose the length's bytes
        this.pos += len;
        break;
      }
      case 5:
        this.pos += 4;
        break;
      default:
        throw new Error(`cannot skip wire type ${wireType}`);
    }
    if (this.pos > this.buf.length) throw new Error('truncated field');
  }
}

export function decodeRecordRequest(bytes: Uint8Array): RecordRequest {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(buf);
  const points: Point[] = [];
  while (r.pos < buf.length) {
    const tag = r.varint32() >>> 0;
    if (tag === 0x0a) {
      const len = r.varint32() >>> 0;
      const end = r.pos + len;
      if (end > buf.length) throw new Error('truncated point');
      points.push(decodePoint(r, end));
    } else r.skip(tag & 7);
  }
  return { $typeName: 'osprey.v1.RecordRequest', points };
}

function decodePoint(r: Reader, end: number): Point {
  const p: Point = { $typeName: 'osprey.v1.Point', accountId: 0, stat: '', kind: 0, number: 0, unixTime: 0 };
  const buf = r.buf;
  while (r.pos < end) {
    const tag = r.varint32() >>> 0;
    switch (tag) {
      case 0x08:
        p.accountId = r.varint32() >>> 0;
        break;
      case 0x12: {
        const len = r.varint32() >>> 0;
        if (r.pos + len > end) throw new Error('truncated stat');
        p.stat = buf.toString('utf8', r.pos, r.pos + len);
        r.pos += len;
        break;
      }
      case 0x18:
        p.kind = r.varint32() | 0;
        break;
      case 0x21:
        if (r.pos + 8 > end) throw new Error('truncated number');
        p.number = buf.readDoubleLE(r.pos);
        r.pos += 8;
        break;
      case 0x28:
        p.unixTime = r.varint32() >>> 0;
        break;
      default:
        r.skip(tag & 7);
    }
  }
  if (r.pos !== end) throw new Error('point overran its length');
  return p;
}
