/**
 * Datagrams the kernel dropped for one UDP socket of this process (its receive buffer was
 * full): the `drops` column of /proc/net/udp and /proc/net/udp6, found by the socket's inode.
 * These never reach the reader thread, so no counter of ours sees them otherwise. Linux only;
 * elsewhere (or without /proc) the socket is not found and nothing is reported.
 */
import fs from 'node:fs';

interface UdpRow {
  port: number;
  inode: number;
  drops: number;
}

function rows(): UdpRow[] {
  const out: UdpRow[] = [];
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    const lines = text.split('\n');
    // "sl local_address rem_address st tx_queue rx_queue tr tm->when retrnsmt uid timeout inode ref pointer drops"
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i].trim().split(/\s+/);
      if (f.length < 13) continue;
      const local = f[1];
      out.push({ port: parseInt(local.slice(local.lastIndexOf(':') + 1), 16), inode: Number(f[9]), drops: Number(f[f.length - 1]) });
    }
  }
  return out;
}

/** Inodes of this process's sockets (its /proc/self/fd links "socket:[N]"). */
function ownSocketInodes(): Set<number> {
  const out = new Set<number>();
  let fds: string[];
  try {
    fds = fs.readdirSync('/proc/self/fd');
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
      if (m) out.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** The inode of this process's UDP socket bound to `port`, or null. */
export function udpSocketInode(port: number): number | null {
  const own = ownSocketInodes();
  for (const r of rows()) if (r.port === port && own.has(r.inode)) return r.inode;
  return null;
}

/** The kernel's drop count of the UDP socket with this inode, or null when it is gone. */
export function udpSocketDrops(inode: number): number | null {
  for (const r of rows()) if (r.inode === inode) return r.drops;
  return null;
}
