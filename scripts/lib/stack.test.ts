import { describe, expect, it } from 'vitest';
import { startStack } from './stack.js';

// A 'pipe' stack keeps what its processes print, for a failing test's message (the soak's).
describe('startStack with stdio pipe', () => {
  it("keeps a replica's output and says how it ended", async () => {
    // A configuration error: ingest prints it and exits 2 before it touches the database.
    const st = await startStack({
      databaseUrl: 'mysql://root@127.0.0.1:3306/unused',
      stdio: 'pipe',
      env: { STATSD_UDP_PORT: 'not-a-port' },
      services: [{ name: 'ingest', kind: 'rpc', replicas: 1 }],
    });
    const p = st.processes[0]!;
    expect(await p.exited).toBe(2);
    expect(p.output()).toContain('STATSD_UDP_PORT="not-a-port"');
    expect(st.tail()).toMatch(/^--- ingest-0 \(pid \d+, exited 2\) ---\nosprey ingest: invalid configuration:/);
    await st.stop(2_000);
  });
});
