// proto <-> row mapping for AlertService.
import type { MessageInitShape } from '@bufbuild/protobuf';
import {
  AlertChannelKind,
  AlertDeliveryStatus,
  AlertKind,
  AlertOperator,
  AlertState,
  type AlertChannelSchema,
  type AlertEventSchema,
  type AlertRuleSchema,
  type AlertRuleSpec,
  type AlertDeliverySchema,
} from '../../../../gen/osprey/v1/alerting_pb.js';
import { ALERT_STATE, KIND } from '../../../kit/db/schema.js';
import { OspreyError } from '../../../kit/errors.js';
import { ruleSpecOfRow, type RuleRow } from '../../rule-rows.js';
import { describeRule, parseStatHatAlertForm, validateSpec, windowName, WINDOWS, type RuleSpec } from '../../rules.js';

const KIND_TO_PROTO = { value: AlertKind.VALUE, delta: AlertKind.DELTA, data: AlertKind.DATA } as const;
const OPERATOR_TO_PROTO = { greater: AlertOperator.GREATER_THAN, less: AlertOperator.LESS_THAN, different: AlertOperator.DIFFERENT_THAN } as const;

type SpecInput = { case: 'spec'; value: AlertRuleSpec } | { case: 'stathatForm'; value: { fields: Record<string, string> } } | { case: undefined; value?: undefined };

/** The rule a request asks for, from either a proto spec or StatHat's form fields. */
export function specOfInput(input: SpecInput): RuleSpec {
  switch (input.case) {
    case 'stathatForm':
      return parseStatHatAlertForm(input.value.fields);
    case 'spec': {
      const p = input.value;
      const kind = p.kind === AlertKind.VALUE ? 'value' : p.kind === AlertKind.DELTA ? 'delta' : p.kind === AlertKind.DATA ? 'data' : undefined;
      if (!kind) throw new OspreyError('invalid', 'kind is required');
      const windowSec = WINDOWS[p.timeWindow];
      if (windowSec === undefined) throw new OspreyError('invalid', `time_window must be one of ${Object.keys(WINDOWS).join(', ')}; got "${p.timeWindow}"`);
      const operator = p.operator === AlertOperator.GREATER_THAN ? 'greater' : p.operator === AlertOperator.LESS_THAN ? 'less' : p.operator === AlertOperator.DIFFERENT_THAN ? 'different' : undefined;
      const deltaSec = kind === 'delta' ? WINDOWS[p.timeDelta] : 0;
      if (deltaSec === undefined) throw new OspreyError('invalid', `time_delta must be one of ${Object.keys(WINDOWS).join(', ')}; got "${p.timeDelta}"`);
      return validateSpec({ statId: p.statId, kind, windowSec, operator, threshold: p.threshold, percentage: p.percentage, deltaSec });
    }
    default:
      throw new OspreyError('invalid', 'give the rule as spec or as stathat_form');
  }
}

export function ruleToProto(r: RuleRow, stat: { name: string; kind: number } | undefined): MessageInitShape<typeof AlertRuleSchema> {
  const s = ruleSpecOfRow(r);
  return {
    id: Number(r.id),
    accountId: Number(r.account_id),
    spec: {
      statId: s.statId,
      kind: KIND_TO_PROTO[s.kind],
      timeWindow: windowName(s.windowSec),
      operator: s.operator ? OPERATOR_TO_PROTO[s.operator] : AlertOperator.UNSPECIFIED,
      threshold: s.threshold,
      percentage: s.percentage,
      timeDelta: s.deltaSec ? windowName(s.deltaSec) : '',
    },
    statName: stat?.name ?? '',
    muted: Boolean(r.muted),
    state: stateToProto(Number(r.state)),
    stateSinceMs: Number(r.state_since_ms),
    lastValue: r.last_value === null ? 0 : Number(r.last_value),
    hasLastValue: r.last_value !== null,
    lastEvaluatedMs: r.last_evaluated_ms === null ? 0 : Number(r.last_evaluated_ms),
    evaluations: Number(r.evaluations),
    createdMs: Number(r.created_ms),
    updatedMs: Number(r.updated_ms),
    description: describeRule(s, stat?.name ?? `stat ${s.statId}`, stat?.kind === KIND.counter),
  };
}

export function stateToProto(state: number): AlertState {
  return state === ALERT_STATE.firing ? AlertState.FIRING : AlertState.OK;
}

const CHANNEL_KIND_TO_PROTO: Record<string, AlertChannelKind> = { email: AlertChannelKind.EMAIL, webhook: AlertChannelKind.WEBHOOK, slack: AlertChannelKind.SLACK };

export function channelKindOfProto(k: AlertChannelKind): 'email' | 'webhook' | 'slack' {
  if (k === AlertChannelKind.EMAIL) return 'email';
  if (k === AlertChannelKind.WEBHOOK) return 'webhook';
  if (k === AlertChannelKind.SLACK) return 'slack';
  throw new OspreyError('invalid', 'kind must be email, webhook or slack');
}

export function channelToProto(c: { id: number; account_id: number; rule_id: number | null; kind: string; target: string; secret: string | null; created_ms: number }): MessageInitShape<typeof AlertChannelSchema> {
  return {
    id: Number(c.id),
    accountId: Number(c.account_id),
    ruleId: c.rule_id === null ? 0 : Number(c.rule_id),
    kind: CHANNEL_KIND_TO_PROTO[c.kind] ?? AlertChannelKind.UNSPECIFIED,
    target: String(c.target),
    hasSecret: Boolean(c.secret),
    createdMs: Number(c.created_ms),
  };
}

const DELIVERY_STATUS: Record<string, AlertDeliveryStatus> = { pending: AlertDeliveryStatus.PENDING, sent: AlertDeliveryStatus.SENT, failed: AlertDeliveryStatus.FAILED };

export function deliveryToProto(d: Record<string, unknown>): MessageInitShape<typeof AlertDeliverySchema> {
  return {
    id: Number(d.id),
    kind: CHANNEL_KIND_TO_PROTO[String(d.kind)] ?? AlertChannelKind.UNSPECIFIED,
    target: String(d.target),
    status: DELIVERY_STATUS[String(d.status)] ?? AlertDeliveryStatus.UNSPECIFIED,
    attempts: Number(d.attempts),
    lastError: d.last_error === null ? '' : String(d.last_error),
    sentMs: d.sent_ms === null ? 0 : Number(d.sent_ms),
    nextAttemptMs: Number(d.next_attempt_ms),
    idempotencyKey: String(d.idempotency_key),
  };
}

export function eventToProto(e: Record<string, unknown>, deliveries: Record<string, unknown>[]): MessageInitShape<typeof AlertEventSchema> {
  return {
    id: Number(e.id),
    ruleId: Number(e.rule_id),
    fromState: stateToProto(Number(e.from_state)),
    toState: stateToProto(Number(e.to_state)),
    value: e.value === null ? 0 : Number(e.value),
    hasValue: e.value !== null,
    createdMs: Number(e.created_ms),
    deliveries: deliveries.map(deliveryToProto),
  };
}
