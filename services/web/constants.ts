/** /x/:token/data without `t`: a week at 3-hour points, StatHat's documented example. */
export const DEFAULT_STATHAT_T = '1w3h';
