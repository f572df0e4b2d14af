import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeInstance {
  id: string;
  privateIp: string;
  state: 'running' | 'stopped';
  tags: Record<string, string>;
}

/**
 * A tiny EC2 Query API server answering DescribeInstances (the only call the deploy script
 * makes), applying the filters it uses (instance-state-name, tag-key, tag:<key>) and paging
 * one reservation per page, so the SDK's request and the script's paging are both real.
 */
export async function startFakeEc2(instances: FakeInstance[]): Promise<{ url: string; requests: URLSearchParams[]; close(): Promise<void> }> {
  const requests: URLSearchParams[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const p = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      requests.push(p);
      if (p.get('Action') !== 'DescribeInstances') {
        res.writeHead(400, { 'content-type': 'text/xml' }).end('<Response><Errors><Error><Code>InvalidAction</Code><Message>only DescribeInstances</Message></Error></Errors></Response>');
        return;
      }
      const filters: Array<{ name: string; values: string[] }> = [];
      for (let i = 1; p.has(`Filter.${i}.Name`); i++) {
        const values: string[] = [];
        for (let j = 1; p.has(`Filter.${i}.Value.${j}`); j++) values.push(p.get(`Filter.${i}.Value.${j}`)!);
        filters.push({ name: p.get(`Filter.${i}.Name`)!, values });
      }
      const match = (inst: FakeInstance) =>
        filters.every((f) => {
          if (f.name === 'instance-state-name') return f.values.includes(inst.state);
          if (f.name === 'tag-key') return f.values.some((k) => k in inst.tags);
          if (f.name.startsWith('tag:')) return f.values.includes(inst.tags[f.name.slice(4)]);
          return true;
        });
      const matching = instances.filter(match);
      const page = Number(p.get('NextToken') ?? 0);
      const item = matching[page];
      const next = page + 1 < matching.length ? `<nextToken>${page + 1}</nextToken>` : '';
      const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
      const reservation = item
        ? `<item><reservationId>r-${item.id}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet><item>
<instanceId>${item.id}</instanceId><privateIpAddress>${item.privateIp}</privateIpAddress>
<instanceState><code>${item.state === 'running' ? 16 : 80}</code><name>${item.state}</name></instanceState>
<tagSet>${Object.entries(item.tags)
            .map(([k, v]) => `<item><key>${esc(k)}</key><value>${esc(v)}</value></item>`)
            .join('')}</tagSet></item></instancesSet></item>`
        : '';
      res
        .writeHead(200, { 'content-type': 'text/xml;charset=UTF-8' })
        .end(
          `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fake-${requests.length}</requestId><reservationSet>${reservation}</reservationSet>${next}</DescribeInstancesResponse>`,
        );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
