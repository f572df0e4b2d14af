import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { RecordRequestSchema, RecordResponseSchema } from '../../../gen/osprey/v1/ingest_pb.js';
import { decodeRecordRequest, decodeRecordResponse, encodeRecordRequest, encodeRecordResponse, encodedRecordRequest, pointBodyLength, pointEntryLength, writePoint } from './record-codec.js';

const point = fc.record({
  accountId: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })),
  stat: fc.oneof(fc.constant(''), fc.string({ unit: 'grapheme', maxLength: 40 })),
  kind: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: -5, max: 1000 })),
  number: fc.oneof(fc.constant(0), fc.double({ noNaN: true }), fc.integer()),
  unixTime: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })),
});

describe('RecordRequest codec', () => {
  it('writes the bytes protobuf-es writes', () => {
    fc.assert(
      fc.property(fc.array(point, { maxLength: 30 }), (points) => {
        const req = create(RecordRequestSchema, { points });
        expect(Buffer.from(encodeRecordRequest(req)).toString('hex')).toBe(Buffer.from(toBinary(RecordRequestSchema, req)).toString('hex'));
      }),
    );
  });

  it('reads what protobuf-es writes, to the same messages', () => {
    fc.assert(
      fc.property(fc.array(point, { maxLength: 30 }), (points) => {
        const bytes = toBinary(RecordRequestSchema, create(RecordRequestSchema, { points }));
        expect(decodeRecordRequest(bytes)).toEqual(fromBinary(RecordRequestSchema, bytes));
      }),
    );
  });

  it('skips unknown fields and takes fields in any order', () => {
    // point { unix_time=7 (5), unknown field 9 = "zz", stat="a" (2), account_id=3 (1) }
    const inner = Buffer.from([0x28, 0x07, 0x4a, 0x02, 0x7a, 0x7a, 0x12, 0x01, 0x61, 0x08, 0x03]);
    const bytes = Buffer.concat([Buffer.from([0x0a, inner.length]), inner, Buffer.from([0x10, 0x05])]);
    expect(decodeRecordRequest(bytes).points).toEqual([{ $typeName: 'osprey.v1.Point', accountId: 3, stat: 'a', kind: 0, number: 0, unixTime: 7 }]);
    expect(fromBinary(RecordRequestSchema, bytes).points[0]).toMatchObject({ accountId: 3, stat: 'a', unixTime: 7 });
  });

  it('refuses truncated input', () => {
    const bytes = encodeRecordRequest(create(RecordRequestSchema, { points: [{ accountId: 1, stat: 'hits', number: 2 }] }));
    expect(() => decodeRecordRequest(bytes.subarray(0, bytes.length - 3))).toThrow();
  });
});

describe('RecordRequest codec, more', () => {
  it('decodes the right name whatever the name cache holds (many names, long and short, sharing slots)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 80 }), { minLength: 1, maxLength: 300 }), (stats) => {
        const req = create(RecordRequestSchema, { points: stats.map((stat, i) => ({ accountId: i + 1, stat, number: 1 })) });
        const bytes = encodeRecordRequest(req);
        expect(decodeRecordRequest(bytes).points.map((p) => p.stat)).toEqual(stats);
        expect(decodeRecordRequest(bytes).points.map((p) => p.stat)).toEqual(stats);
      }),
      { numRuns: 50 },
    );
    // 5,000 distinct names through 1,024 slots, then again in another order.
    const many = Array.from({ length: 5000 }, (_, i) => `stat ${i} ${'x'.repeat(i % 50)}`);
    for (const order of [many, [...many].reverse()]) {
      const req = create(RecordRequestSchema, { points: order.map((stat) => ({ accountId: 1, stat, number: 1 })) });
      expect(decodeRecordRequest(encodeRecordRequest(req)).points.map((p) => p.stat)).toEqual(order);
    }
  });

  it('writePoint writes what encodeRecordRequest writes, from any range of a buffer', () => {
    fc.assert(
      fc.property(point, fc.string({ maxLength: 10 }), (p, pad) => {
        const src = Buffer.from(pad + p.stat + pad);
        const start = Buffer.byteLength(pad);
        const end = start + Buffer.byteLength(p.stat);
        const body = pointBodyLength(p.accountId, end - start, p.kind, p.number, p.unixTime);
        const out = Buffer.alloc(pointEntryLength(body));
        expect(writePoint(out, 0, body, p.accountId, src, start, end, p.kind, p.number, p.unixTime)).toBe(out.length);
        expect(out.toString('hex')).toBe(Buffer.from(encodeRecordRequest(create(RecordRequestSchema, { points: [p] }))).toString('hex'));
      }),
    );
  });

  it('sends pre-encoded bytes as they are and decodes them for anyone who reads points', () => {
    const a = encodeRecordRequest(create(RecordRequestSchema, { points: [{ accountId: 1, stat: 'a', number: 1 }] }));
    const b = encodeRecordRequest(create(RecordRequestSchema, { points: [{ accountId: 2, stat: 'b', kind: 2, number: 2.5, unixTime: 9 }] }));
    const both = Buffer.concat([a, b]);
    const req = encodedRecordRequest(both);
    expect(encodeRecordRequest(req)).toBe(both);
    expect(toBinary(RecordRequestSchema, req)).toEqual(new Uint8Array(both));
    expect(req.points.map((p) => [p.accountId, p.stat, p.number])).toEqual([[1, 'a', 1], [2, 'b', 2.5]]);
  });
});

describe('RecordResponse codec', () => {
  const response = fc.record({
    accepted: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })),
    errors: fc.array(fc.record({ index: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })), message: fc.oneof(fc.constant(''), fc.string({ unit: 'grapheme', maxLength: 60 })) }), { maxLength: 5 }),
  });

  it('writes the bytes protobuf-es writes and reads them back to the same message', () => {
    fc.assert(
      fc.property(response, (r) => {
        const msg = create(RecordResponseSchema, r);
        const bytes = Buffer.from(toBinary(RecordResponseSchema, msg));
        expect(Buffer.from(encodeRecordResponse(msg)).toString('hex')).toBe(bytes.toString('hex'));
        expect(decodeRecordResponse(bytes)).toEqual(fromBinary(RecordResponseSchema, bytes));
      }),
    );
  });

  it('refuses truncated input', () => {
    const bytes = encodeRecordResponse(create(RecordResponseSchema, { accepted: 1, errors: [{ index: 3, message: 'nope' }] }));
    expect(() => decodeRecordResponse(bytes.subarray(0, bytes.length - 2))).toThrow();
  });
});
