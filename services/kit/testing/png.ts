/** PNG signature, then IHDR: width and height as big-endian uint32 at bytes 16 and 20. */
export function pngSize(png: Buffer): { width: number; height: number } | undefined {
  if (!png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return undefined;
  if (png.toString('ascii', 12, 16) !== 'IHDR') return undefined;
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}
