// What a transition says, in each channel's format.
import type { MailMessage } from '../../kit/mailer.js';

export interface Notice {
  idempotencyKey: string;
  eventId: number;
  ruleId: number;
  statId: number;
  statName: string;
  description: string;
  firing: boolean;
  value: number | undefined;
  atMs: number;
  /** Link to the rule in the web app. */
  url: string;
}

function formatValue(v: number | undefined): string {
  if (v === undefined) return 'no value';
  if (!Number.isFinite(v)) return v > 0 ? '+∞' : '-∞';
  return Number.isInteger(v) ? String(v) : v.toFixed(3).replace(/0+$/, '');
}

export function headline(n: Notice): string {
  return `${n.firing ? 'FIRING' : 'RESOLVED'}: ${n.description}`;
}

export function alertMail(n: Notice, to: string): MailMessage {
  const at = new Date(n.atMs).toISOString();
  const text = [
    headline(n),
    '',
    `Value: ${formatValue(n.value)}`,
    `At: ${at}`,
    n.firing ? 'The rule is firing.' : 'The rule is back to ok.',
    '',
    `Rule: ${n.url}`,
  ].join('\n');
  return {
    to,
    subject: `[osprey] ${headline(n)}`,
    text,
    messageId: `${n.idempotencyKey}@osprey`,
    headers: { 'X-Osprey-Idempotency-Key': n.idempotencyKey, 'X-Osprey-Alert-Rule': String(n.ruleId) },
  };
}

export function webhookBody(n: Notice): string {
  return JSON.stringify({
    id: n.idempotencyKey,
    type: n.firing ? 'alert.firing' : 'alert.resolved',
    event_id: n.eventId,
    rule: { id: n.ruleId, description: n.description, url: n.url },
    stat: { id: n.statId, name: n.statName },
    state: n.firing ? 'firing' : 'ok',
    value: n.value === undefined || !Number.isFinite(n.value) ? null : n.value,
    at: new Date(n.atMs).toISOString(),
  });
}

export function slackBody(n: Notice): string {
  const icon = n.firing ? ':rotating_light:' : ':white_check_mark:';
  return JSON.stringify({ text: `${icon} ${headline(n)} (value ${formatValue(n.value)}) <${n.url}|rule>` });
}
