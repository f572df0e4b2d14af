/** Who is asking: set by the session middleware (pages) or the bearer/session check (/api/v1). */
export interface Viewer {
  userId: number;
  accountId: number;
  email: string;
  /** This session's CSRF token; forms carry it in `_csrf`, scripts in `x-csrf-token`. */
  csrf: string;
}

export type WebEnv = {
  Variables: {
    viewer: Viewer | undefined;
    /** The token forms must carry: the session's, or the pre-login cookie's. */
    csrf: string;
    /** The account a bearer token or /x token belongs to. */
    accountId: number;
  };
};
