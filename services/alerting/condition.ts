// Whether a rule's condition holds, from the window figures alone (pure: the evaluator
// fetches the figures, this decides).
import type { RuleSpec } from './rules.js';

/** What the rollups say about a window. */
export interface WindowFigures {
  /** Sum for counters, mean for values; undefined when no point arrived (values only). */
  value: number | undefined;
  /** Samples in the window. */
  count: number;
}

export interface Verdict {
  /** true: firing; false: ok; undefined: cannot tell, keep the current state. */
  firing: boolean | undefined;
  /** The figure shown in notifications: the value, the change in percent, or the count. */
  value: number | undefined;
}

/** Percent change from `before` to `now`; ±Infinity when `before` is 0 and `now` is not. */
export function percentChange(before: number, now: number): number {
  if (before === 0) return now === 0 ? 0 : now > 0 ? Infinity : -Infinity;
  return ((now - before) / Math.abs(before)) * 100;
}

export function judge(spec: RuleSpec, current: WindowFigures, previous?: WindowFigures): Verdict {
  switch (spec.kind) {
    case 'data':
      return { firing: current.count === 0, value: current.count };
    case 'value': {
      const v = current.value;
      if (v === undefined) return { firing: undefined, value: undefined };
      return { firing: spec.operator === 'greater' ? v > spec.threshold : v < spec.threshold, value: v };
    }
    case 'delta': {
      const now = current.value;
      const before = previous?.value;
      if (now === undefined || before === undefined) return { firing: undefined, value: undefined };
      const change = percentChange(before, now);
      const firing = spec.operator === 'greater' ? change > spec.percentage : spec.operator === 'less' ? change < -spec.percentage : Math.abs(change) > spec.percentage;
      return { firing, value: change };
    }
  }
}
