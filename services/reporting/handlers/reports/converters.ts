import type { MessageInitShape } from '@bufbuild/protobuf';
import { ReportPeriod, type ReportSubscriptionSchema } from '../../../../gen/osprey/v1/reporting_pb.js';
import { OspreyError } from '../../../kit/errors.js';
import type { PeriodName } from '../../periods.js';

export function periodOfProto(p: ReportPeriod): PeriodName {
  if (p === ReportPeriod.DAILY) return 'daily';
  if (p === ReportPeriod.WEEKLY) return 'weekly';
  throw new OspreyError('invalid', 'period must be daily or weekly');
}

export function subscriptionToProto(r: Record<string, unknown>): MessageInitShape<typeof ReportSubscriptionSchema> {
  return {
    id: Number(r.id),
    accountId: Number(r.account_id),
    email: String(r.email),
    period: r.period === 'weekly' ? ReportPeriod.WEEKLY : ReportPeriod.DAILY,
    active: r.unsubscribed_ms === null,
    createdMs: Number(r.created_ms),
    unsubscribedMs: r.unsubscribed_ms === null ? 0 : Number(r.unsubscribed_ms),
  };
}
