/**
 * Micro-benchmark of the statsd parser alone: lines per second for 1-line and 20-line
 * packets of mixed counters, timers, gauges and sets, into a sink that only counts.
 *
 *   npx tsx scripts/bench/parse.ts [seconds-per-case]
 */
import { LineSplitter, StatsdParser, type StatsdKind, type StatsdSink } from '../../services/ingest/statsd/parse.js';

const seconds = Number(process.argv[2] ?? 2);

class CountingSink implements StatsdSink {
  samples = 0;
  bads = 0;
  checksum = 0;
  sample(name: string, _kind: StatsdKind, value: number, rate: number): void {
    this.samples++;
    this.checksum += value * rate + name.length;
  }
  bad(): void {
    this.bads++;
  }
}

/** 1,000 distinct stats, a realistic mix of kinds, a few with rates and tags. */
function makeLines(count: number, tagged: boolean): string[] {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `app.server${i % 50}.endpoint_${i % 1000}.requests`;
    const tags = tagged ? `|#env:prod,host:web-${i % 7},route:/api/v${i % 3}` : '';
    switch (i % 10) {
      case 0:
      case 1:
      case 2:
      case 3:
        lines.push(`${name}:${1 + (i % 5)}|c${tags}`);
        break;
      case 4:
        lines.push(`${name}:1|c|@0.1${tags}`);
        break;
      case 5:
      case 6:
      case 7:
        lines.push(`${name}.time:${(i * 7.31) % 900}|ms${tags}`);
        break;
      case 8:
        lines.push(`${name}.gauge:${i % 2 ? '+' : ''}${i % 333}|g${tags}`);
        break;
      default:
        lines.push(`${name}.users:user${i % 5000}|s${tags}`);
    }
  }
  return lines;
}

function packets(lines: string[], perPacket: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i + perPacket <= lines.length; i += perPacket) {
    out.push(Buffer.from(lines.slice(i, i + perPacket).join('\n')));
  }
  return out;
}

function run(label: string, bufs: Buffer[], perPacket: number): void {
  const parser = new StatsdParser({ maxLineLength: 8192, tokenMode: false });
  const sink = new CountingSink();
  // warm up
  for (let r = 0; r < 200; r++) for (const b of bufs) parser.parse(b, 0, b.length, sink);
  let lines = 0;
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));
  let now = t0;
  while (now < deadline) {
    for (let r = 0; r < 20; r++) {
      for (const b of bufs) lines += parser.parse(b, 0, b.length, sink);
    }
    now = process.hrtime.bigint();
  }
  const secs = Number(now - t0) / 1e9;
  const rate = lines / secs;
  console.log(
    `${label.padEnd(34)} ${(rate / 1e6).toFixed(2).padStart(6)} M lines/s  ${((rate / perPacket) / 1e6).toFixed(2).padStart(6)} M packets/s  (bad ${sink.bads})`,
  );
}

function runStream(label: string, lines: string[], chunkSize: number): void {
  const whole = Buffer.from(lines.join('\n') + '\n');
  const chunks: Buffer[] = [];
  for (let i = 0; i < whole.length; i += chunkSize) chunks.push(whole.subarray(i, i + chunkSize));
  const parser = new StatsdParser({ maxLineLength: 8192, tokenMode: false });
  const sink = new CountingSink();
  const splitter = new LineSplitter(parser);
  for (let r = 0; r < 20; r++) for (const c of chunks) splitter.push(c, sink);
  let count = 0;
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));
  let now = t0;
  while (now < deadline) {
    for (let r = 0; r < 5; r++) for (const c of chunks) count += splitter.push(c, sink);
    now = process.hrtime.bigint();
  }
  const secs = Number(now - t0) / 1e9;
  console.log(`${label.padEnd(34)} ${(count / secs / 1e6).toFixed(2).padStart(6)} M lines/s`);
}

const plain = makeLines(20_000, false);
const tagged = makeLines(20_000, true);
console.log(`node ${process.version}, ${seconds}s per case`);
run('UDP, 1 line per packet', packets(plain, 1), 1);
run('UDP, 20 lines per packet', packets(plain, 20), 20);
run('UDP, 20 lines per packet, tagged', packets(tagged, 20), 20);
runStream('TCP stream, 64 KiB reads', plain, 65536);
runStream('TCP stream, 1,500-byte reads', plain, 1500);
