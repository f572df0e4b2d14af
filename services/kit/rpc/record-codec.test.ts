import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { RecordRequestSchema } from '../../../gen/osprey/v1/ingest_pb.js';
import { decodeRecordRequest, encodeRecordRequest } from './record-codec.js';

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
