import type { Pool } from 'mysql2/promise';
import type { Logger } from '../kit/log.js';
import type { GraphClient } from './graph.js';

/** What the web app is built from; tests pass real pieces on a test database. */
export interface WebAppDeps {
  pool: Pool;
  graph: GraphClient;
  log: Logger;
  /** Signs embed URLs of private stats. */
  secret: string;
  sessionTtlHours: number;
  secureCookies: boolean;
  /** Where points are sent (the api service), for the curl line shown to new users. */
  apiPublicUrl: string;
  /** Unix milliseconds. */
  now: () => number;
}
