import type { Point, PointError, RecordRequest, RecordResponse } from '../../../gen/osprey/v1/ingest_pb.js';
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

/** Length of one Point's body (its fields, without the field-1 tag and length in front). */
export function pointBodyLength(accountId: number, statLength: number, kind: number, number: number, unixTime: number): number {
  let n = 0;
  if (accountId !== 0) n += 1 + varintSize(accountId >>> 0);
  if (statLength !== 0) n += 1 + varintSize(statLength) + statLength;
  if (kind !== 0) n += 1 + (kind < 0 ? 10 : varintSize(kind));
  if (number !== 0 || 1 / number < 0) n += 9; // -0 is written, as protobuf-es does
  if (unixTime !== 0) n += 1 + varintSize(unixTime >>> 0);
  return n;
}

/** Bytes one Point takes in a RecordRequest: tag, length and body. */
export const pointEntryLength = (bodyLength: number) => 1 + varintSize(bodyLength) + bodyLength;

/**
 * Writes one RecordRequest entry (field 1: a Point) at `pos` and returns the position after
 * it. The stat's UTF-8 bytes are `src[start, end)`, so a name can be copied straight out
 * of a request body. `bodyLength` is pointBodyLength() of the same fields.
 */
export function writePoint(buf: Buffer, pos: number, bodyLength: number, accountId: number, src: Buffer, start: number, end: number, kind: number, number: number, unixTime: number): number {
  buf[pos++] = 0x0a; // field 1, length-delimited
  pos = writeVarint(buf, pos, bodyLength);
  if (accountId !== 0) {
    buf[pos++] = 0x08;
    pos = writeVarint(buf, pos, accountId >>> 0);
  }
  const statLength = end - start;
  if (statLength !== 0) {
    buf[pos++] = 0x12;
    pos = writeVarint(buf, pos, statLength);
    // Names are short: a loop beats Buffer#copy's call into C++.
    if (statLength <= 48) for (let i = start; i < end; i++) buf[pos++] = src[i];
    else pos += src.copy(buf, pos, start, end);
  }
  if (kind !== 0) {
    buf[pos++] = 0x18;
    if (kind < 0) {
      // int32 enums below zero are ten-byte varints.
      let lo = kind >>> 0;
      for (let k = 0; k < 4; k++) {
        buf[pos++] = (lo & 0x7f) | 0x80;
        lo >>>= 7;
      }
      buf[pos++] = (lo & 0x0f) | 0x70 | 0x80;
      for (let k = 0; k < 4; k++) buf[pos++] = 0xff;
      buf[pos++] = 0x01;
    } else pos = writeVarint(buf, pos, kind);
  }
  if (number !== 0 || 1 / number < 0) {
    buf[pos++] = 0x21;
    buf.writeDoubleLE(number, pos);
    pos += 8;
  }
  if (unixTime !== 0) {
    buf[pos++] = 0x28;
    pos = writeVarint(buf, pos, unixTime >>> 0);
  }
  return pos;
}

const ENCODED = Symbol('osprey.recordRequestBytes');

export function encodeRecordRequest(req: Pick<RecordRequest, 'points'>): Uint8Array {
  const encoded = (req as { [ENCODED]?: Buffer })[ENCODED];
  if (encoded !== undefined) return encoded;
  const points = req.points;
  const stats = new Array<Buffer>(points.length);
  const sizes = new Array<number>(points.length);
  let total = 0;
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    stats[i] = utf8(p.stat);
    sizes[i] = pointBodyLength(p.accountId, stats[i].length, p.kind, p.number, p.unixTime);
    total += pointEntryLength(sizes[i]);
  }
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    pos = writePoint(buf, pos, sizes[i], p.accountId, stats[i], 0, stats[i].length, p.kind, p.number, p.unixTime);
  }
  return buf;
}


/**
 * A RecordRequest given as its wire bytes (entries of field 1, e.g. several requests'
 * encoded points one after another: repeated fields concatenate). encodeRecordRequest
 * sends the bytes as they are; anything else that reads `points` gets them decoded.
 */
export function encodedRecordRequest(bytes: Buffer): RecordRequest {
  return new EncodedRecordRequest(bytes) as unknown as RecordRequest;
}

// A class, not an object literal with a getter and a symbol key: one shape, made cheaply per call.
class EncodedRecordRequest {
  readonly $typeName = 'osprey.v1.RecordRequest';
  private decoded: Point[] | undefined;
  readonly [ENCODED]: Buffer;

  constructor(bytes: Buffer) {
    this[ENCODED] = bytes;
  }

  get points(): Point[] {
    return (this.decoded ??= decodeRecordRequest(this[ENCODED]).points);
  }
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

// The names decoded last, by a hash of their bytes: a batch names few stats many times,
// and a name met again is then one hash and one compare instead of a UTF-8 decode and a
// new string (whose own hash the ingest's stat maps would compute again).
const NAME_SLOTS = 1024;
const NAME_MAX = 64;
const nameBytes = Buffer.alloc(NAME_SLOTS * NAME_MAX);
const nameLengths = new Int32Array(NAME_SLOTS).fill(-1);
const names: string[] = new Array<string>(NAME_SLOTS).fill('');

function statName(buf: Buffer, start: number, end: number): string {
  const len = end - start;
  if (len > NAME_MAX) return buf.toString('utf8', start, end);
  let h = 0x811c9dc5 ^ len;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  const slot = (h ^ (h >>> 15)) & (NAME_SLOTS - 1);
  const at = slot * NAME_MAX;
  if (nameLengths[slot] === len) {
    let i = 0;
    while (i < len && nameBytes[at + i] === buf[start + i]) i++;
    if (i === len) return names[slot];
  }
  const name = buf.toString('utf8', start, end);
  for (let i = 0; i < len; i++) nameBytes[at + i] = buf[start + i];
  nameLengths[slot] = len;
  names[slot] = name;
  return name;
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
        p.stat = statName(buf, r.pos, r.pos + len);
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

/** osprey.v1.RecordResponse, by hand like the request: the answer to every Record call. */
export const recordResponseCodec: MessageCodec<RecordResponse> = {
  typeName: 'osprey.v1.RecordResponse',
  encode: encodeRecordResponse,
  decode: decodeRecordResponse,
};

const NO_ERRORS: PointError[] = [];

export function encodeRecordResponse(res: Pick<RecordResponse, 'accepted' | 'errors'>): Uint8Array {
  const errors = res.errors;
  const accepted = res.accepted >>> 0;
  let total = accepted !== 0 ? 1 + varintSize(accepted) : 0;
  const messages = errors.length === 0 ? NO_BUFFERS : errors.map((e) => Buffer.from(e.message, 'utf8'));
  const sizes = errors.length === 0 ? NO_SIZES : new Array<number>(errors.length);
  for (let i = 0; i < errors.length; i++) {
    const index = errors[i].index >>> 0;
    sizes[i] = (index !== 0 ? 1 + varintSize(index) : 0) + (messages[i].length !== 0 ? 1 + varintSize(messages[i].length) + messages[i].length : 0);
    total += 1 + varintSize(sizes[i]) + sizes[i];
  }
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  if (accepted !== 0) {
    buf[pos++] = 0x08;
    pos = writeVarint(buf, pos, accepted);
  }
  for (let i = 0; i < errors.length; i++) {
    buf[pos++] = 0x12;
    pos = writeVarint(buf, pos, sizes[i]);
    const index = errors[i].index >>> 0;
    if (index !== 0) {
      buf[pos++] = 0x08;
      pos = writeVarint(buf, pos, index);
    }
    if (messages[i].length !== 0) {
      buf[pos++] = 0x12;
      pos = writeVarint(buf, pos, messages[i].length);
      pos += messages[i].copy(buf, pos);
    }
  }
  return buf;
}
const NO_BUFFERS: Buffer[] = [];
const NO_SIZES: number[] = [];

export function decodeRecordResponse(bytes: Uint8Array): RecordResponse {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(buf);
  let accepted = 0;
  let errors = NO_ERRORS;
  while (r.pos < buf.length) {
    const tag = r.varint32() >>> 0;
    if (tag === 0x08) accepted = r.varint32() >>> 0;
    else if (tag === 0x12) {
      const len = r.varint32() >>> 0;
      const end = r.pos + len;
      if (end > buf.length) throw new Error('truncated error');
      const e: PointError = { $typeName: 'osprey.v1.PointError', index: 0, message: '' };
      while (r.pos < end) {
        const t = r.varint32() >>> 0;
        if (t === 0x08) e.index = r.varint32() >>> 0;
        else if (t === 0x12) {
          const n = r.varint32() >>> 0;
          if (r.pos + n > end) throw new Error('truncated message');
          e.message = buf.toString('utf8', r.pos, r.pos + n);
          r.pos += n;
        } else r.skip(t & 7);
      }
      if (r.pos !== end) throw new Error('error overran its length');
      if (errors === NO_ERRORS) errors = [];
      errors.push(e);
    } else r.skip(tag & 7);
  }
  // A fresh array when empty too: callers may push to it.
  return { $typeName: 'osprey.v1.RecordResponse', accepted, errors: errors === NO_ERRORS ? [] : errors };
}
