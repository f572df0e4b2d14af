// What an alert rule is, independent of transport: StatHat's form fields and the proto
// spec both become a RuleSpec here, validated in one place.
import { OspreyError } from '../kit/errors.js';

export type AlertKindName = 'value' | 'delta' | 'data';
export type OperatorName = 'greater' | 'less' | 'different';

export interface RuleSpec {
  statId: number;
  kind: AlertKindName;
  windowSec: number;
  operator: OperatorName | undefined;
  threshold: number;
  percentage: number;
  deltaSec: number;
}

/** StatHat's windows. 1M is 30 days and 1y 365 days: fixed lengths, so windows compare. */
export const WINDOWS: Record<string, number> = {
  '5m': 300,
  '1h': 3600,
  '3h': 3 * 3600,
  '1d': 86400,
  '1w': 7 * 86400,
  '1M': 30 * 86400,
  '1y': 365 * 86400,
};

const WINDOW_NAME = new Map(Object.entries(WINDOWS).map(([k, v]) => [v, k]));

export function windowName(sec: number): string {
  return WINDOW_NAME.get(sec) ?? `${sec}s`;
}

export function parseWindow(s: string, field: string): number {
  const sec = WINDOWS[s.trim()];
  if (sec === undefined) throw new OspreyError('invalid', `${field} must be one of ${Object.keys(WINDOWS).join(', ')}; got "${s}"`);
  return sec;
}

const OPERATORS: Record<string, OperatorName> = {
  'greater than': 'greater',
  'less than': 'less',
  'different than': 'different',
  // Spellings forms and clients send too.
  gt: 'greater',
  '>': 'greater',
  lt: 'less',
  '<': 'less',
  ne: 'different',
  '!=': 'different',
};

export const OPERATOR_TEXT: Record<OperatorName, string> = { greater: 'greater than', less: 'less than', different: 'different than' };

function parseOperator(s: string): OperatorName {
  const op = OPERATORS[s.trim().toLowerCase().replace(/[+_]/g, ' ').replace(/\s+/g, ' ')];
  if (!op) throw new OspreyError('invalid', `operator must be "greater than", "less than" or "different than"; got "${s}"`);
  return op;
}

function parseNumber(s: string | undefined, field: string): number {
  if (s === undefined || s.trim() === '') throw new OspreyError('invalid', `${field} is required`);
  const n = Number(s.trim().replace(/%$/, ''));
  if (!Number.isFinite(n)) throw new OspreyError('invalid', `${field} must be a number; got "${s}"`);
  return n;
}

/**
 * StatHat's alert form (`/x/:token/alerts`): stat_id, kind=value|delta|data,
 * time_window, operator, threshold (value), percentage and time_delta (delta).
 */
export function parseStatHatAlertForm(fields: Record<string, string | undefined>): RuleSpec {
  const statId = Number(fields.stat_id);
  if (!Number.isInteger(statId) || statId <= 0) throw new OspreyError('invalid', `stat_id must be a stat id; got "${fields.stat_id ?? ''}"`);
  const kind = (fields.kind ?? '').trim().toLowerCase();
  if (kind !== 'value' && kind !== 'delta' && kind !== 'data') throw new OspreyError('invalid', `kind must be value, delta or data; got "${fields.kind ?? ''}"`);
  if (!fields.time_window) throw new OspreyError('invalid', 'time_window is required');
  const windowSec = parseWindow(fields.time_window, 'time_window');
  const spec: RuleSpec = { statId, kind, windowSec, operator: undefined, threshold: 0, percentage: 0, deltaSec: 0 };
  if (kind === 'value') {
    spec.operator = parseOperator(fields.operator ?? '');
    spec.threshold = parseNumber(fields.threshold, 'threshold');
  } else if (kind === 'delta') {
    spec.operator = parseOperator(fields.operator ?? '');
    spec.percentage = parseNumber(fields.percentage, 'percentage');
    if (!fields.time_delta) throw new OspreyError('invalid', 'time_delta is required for a delta alert');
    spec.deltaSec = parseWindow(fields.time_delta, 'time_delta');
  }
  return validateSpec(spec);
}

/** Checks a spec however it arrived; throws OspreyError('invalid') naming the field. */
export function validateSpec(spec: RuleSpec): RuleSpec {
  if (!Number.isInteger(spec.statId) || spec.statId <= 0) throw new OspreyError('invalid', 'stat_id is required');
  if (!WINDOW_NAME.has(spec.windowSec)) throw new OspreyError('invalid', `time_window must be one of ${Object.keys(WINDOWS).join(', ')}`);
  switch (spec.kind) {
    case 'value':
      if (spec.operator !== 'greater' && spec.operator !== 'less') throw new OspreyError('invalid', 'a value alert takes operator "greater than" or "less than"');
      if (!Number.isFinite(spec.threshold)) throw new OspreyError('invalid', 'threshold must be a number');
      return { ...spec, percentage: 0, deltaSec: 0 };
    case 'delta':
      if (!spec.operator) throw new OspreyError('invalid', 'a delta alert takes an operator');
      if (!Number.isFinite(spec.percentage) || spec.percentage < 0) throw new OspreyError('invalid', 'percentage must be a number of at least 0');
      if (!WINDOW_NAME.has(spec.deltaSec)) throw new OspreyError('invalid', `time_delta must be one of ${Object.keys(WINDOWS).join(', ')}`);
      return { ...spec, threshold: 0 };
    case 'data':
      return { ...spec, operator: undefined, threshold: 0, percentage: 0, deltaSec: 0 };
    default:
      throw new OspreyError('invalid', 'kind must be value, delta or data');
  }
}

/** "api.requests: 1h sum greater than 500" and the like, for mails and lists. */
export function describeRule(spec: RuleSpec, statName: string, statIsCounter: boolean): string {
  const w = windowName(spec.windowSec);
  switch (spec.kind) {
    case 'value':
      return `${statName}: ${w} ${statIsCounter ? 'sum' : 'mean'} ${OPERATOR_TEXT[spec.operator!]} ${spec.threshold}`;
    case 'delta': {
      const dir = spec.operator === 'greater' ? 'rises by more than' : spec.operator === 'less' ? 'falls by more than' : 'changes by more than';
      return `${statName}: ${w} ${statIsCounter ? 'sum' : 'mean'} ${dir} ${spec.percentage}% against ${windowName(spec.deltaSec)} earlier`;
    }
    case 'data':
      return `${statName}: no data for ${w}`;
  }
}
