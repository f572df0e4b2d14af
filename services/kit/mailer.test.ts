import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { createMailer } from './mailer.js';

it('writes .eml files to the outbox directory when no SMTP_URL is set', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'osprey-outbox-'));
  try {
    const mailer = createMailer({ outboxDir: path.join(dir, 'outbox'), from: 'Osprey <a@osprey.localhost>', log: pino({ level: 'silent' }) });
    expect(mailer.destination).toBe(`files in ${path.join(dir, 'outbox')}`);
    await mailer.send({ to: 'x@example.com', subject: 'hello', text: 'body', messageId: 'key-1@osprey', attachments: [{ filename: 'a.png', content: Buffer.from([1, 2, 3]), contentType: 'image/png', cid: 'a@osprey' }] });
    const files = await readdir(path.join(dir, 'outbox'));
    expect(files).toEqual(['key-1_osprey.eml']);
    const mail = await simpleParser(await readFile(path.join(dir, 'outbox', files[0])));
    expect([mail.subject, mail.text?.trim(), mail.messageId, mail.attachments[0].cid]).toEqual(['hello', 'body', '<key-1@osprey>', 'a@osprey']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
