// alert_rules rows <-> domain specs.
import { ALERT_KIND, ALERT_OPERATOR } from '../kit/db/schema.js';
import type { AlertKindName, OperatorName, RuleSpec } from './rules.js';

export interface RuleRow {
  id: number;
  account_id: number;
  stat_id: number;
  kind: number;
  window_sec: number;
  operator: number;
  threshold: number;
  percentage: number;
  delta_sec: number;
  muted: number | boolean;
  state: number;
  state_since_ms: number;
  transition_seq: number;
  evaluated_minute: number;
  evaluations: number;
  last_value: number | null;
  last_evaluated_ms: number | null;
  created_ms: number;
  updated_ms: number;
}

const KIND_OF = Object.fromEntries(Object.entries(ALERT_KIND).map(([k, v]) => [v, k])) as Record<number, AlertKindName>;
const OPERATOR_OF = Object.fromEntries(Object.entries(ALERT_OPERATOR).map(([k, v]) => [v, k])) as Record<number, OperatorName>;

export function ruleSpecOfRow(r: RuleRow): RuleSpec {
  return {
    statId: Number(r.stat_id),
    kind: KIND_OF[Number(r.kind)],
    windowSec: Number(r.window_sec),
    operator: OPERATOR_OF[Number(r.operator)],
    threshold: Number(r.threshold),
    percentage: Number(r.percentage),
    deltaSec: Number(r.delta_sec),
  };
}

/** Column values for INSERT/UPDATE from a validated spec. */
export function ruleColumnsOfSpec(s: RuleSpec) {
  return {
    stat_id: s.statId,
    kind: ALERT_KIND[s.kind],
    window_sec: s.windowSec,
    operator: s.operator ? ALERT_OPERATOR[s.operator] : 0,
    threshold: s.threshold,
    percentage: s.percentage,
    delta_sec: s.deltaSec,
  };
}
