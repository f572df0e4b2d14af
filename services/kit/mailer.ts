import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import type { Logger } from './log.js';

export interface MailAttachment {
  filename: string;
  content: Buffer;
  contentType: string;
  /** Set to reference the attachment inline from HTML as `cid:<cid>`. */
  cid?: string;
}

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
  attachments?: MailAttachment[];
  /** A stable Message-ID (without <>): a resent mail carries the same one, so clients can drop repeats. */
  messageId?: string;
  headers?: Record<string, string>;
}

export interface Mailer {
  send(msg: MailMessage): Promise<{ messageId: string }>;
  /** Where mail goes, for the start-up log line ("smtp://host:25" or "files in .data/outbox"). */
  readonly destination: string;
  close(): void;
}

/**
 * Mail over SMTP (SMTP_URL) or, without one, as .eml files in `outboxDir`, so `npm start`
 * works on a laptop with no mail server and the mails can still be opened.
 */
export function createMailer(opts: { smtpUrl?: string; outboxDir: string; from: string; log: Logger }): Mailer {
  if (opts.smtpUrl) {
    const transport = nodemailer.createTransport(opts.smtpUrl);
    const u = new URL(opts.smtpUrl);
    return {
      destination: `${u.protocol}//${u.host}`,
      async send(msg) {
        const info = await transport.sendMail(toNodemailer(msg, opts.from));
        return { messageId: String(info.messageId) };
      },
      close: () => transport.close(),
    };
  }
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    destination: `files in ${opts.outboxDir}`,
    async send(msg) {
      const info = await transport.sendMail(toNodemailer(msg, opts.from));
      await mkdir(opts.outboxDir, { recursive: true });
      const id = String(info.messageId).replace(/[<>]/g, '');
      const file = path.join(opts.outboxDir, `${id.replace(/[^A-Za-z0-9._-]/g, '_')}.eml`);
      await writeFile(file, info.message as Buffer);
      opts.log.info({ file, to: msg.to, subject: msg.subject }, 'mail written to the outbox directory');
      return { messageId: String(info.messageId) };
    },
    close: () => transport.close(),
  };
}

function toNodemailer(msg: MailMessage, from: string): SendMailOptions {
  return {
    from,
    to: msg.to,
    subject: msg.subject,
    text: msg.text,
    html: msg.html,
    messageId: msg.messageId ? `<${msg.messageId}>` : undefined,
    headers: msg.headers,
    attachments: msg.attachments?.map((a) => ({ filename: a.filename, content: a.content, contentType: a.contentType, cid: a.cid })),
  };
}
