/**
 * The ceiling for `npm run bench:ingest`: a bare node:dgram socket (and a net server) that
 * only counts the lines it receives. Listens on UDP and TCP port argv[2] (0: any) on
 * 127.0.0.1, prints the port on stdout, answers "count" over IPC with the lines so far.
 */
import dgram from 'node:dgram';
import net from 'node:net';

let lines = 0;

function countLines(buf: Buffer): number {
  let n = 0;
  let i = -1;
  while ((i = buf.indexOf(10, i + 1)) >= 0) n++;
  return n;
}

const udp = dgram.createSocket('udp4');
udp.on('message', (msg: Buffer) => {
  // a datagram's last line needs no newline
  lines += countLines(msg) + (msg.length > 0 && msg[msg.length - 1] !== 10 ? 1 : 0);
});
const tcp = net.createServer((s) => {
  s.on('data', (d: Buffer) => (lines += countLines(d)));
  s.on('error', () => {});
});
udp.bind(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const port = udp.address().port;
  tcp.listen(port, '127.0.0.1', () => process.stdout.write(`${port}\n`));
});
process.on('message', (m) => {
  if (m === 'count') process.send!(lines);
});
process.on('SIGTERM', () => process.exit(0));
