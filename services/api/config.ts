import { z } from 'zod';
import { baseConfigSchema, envBool } from '../kit/config.js';

export const apiConfigSchema = baseConfigSchema
  .extend({
    /** The public StatHat-compatible port, shared by every api worker on a host. */
    PORT: z.coerce.number().int().min(0).max(65535).default(8088),
    HOST: z.string().default('0.0.0.0'),
    /** Worker processes (replicas) behind PORT on this host. */
    API_WORKERS: z.coerce.number().int().min(1).max(64).default(2),
    /** How long an ezkey → account answer (and a classic ukey + key → stat) is reused (rotation takes effect within this). */
    EZKEY_CACHE_MS: z.coerce.number().int().min(0).default(30_000),
    /**
     * StatHat's legacy rule: the account's email address works as its ezkey. Anyone who
     * knows the address can then post into the account; false turns it off.
     */
    EZ_EMAIL_AS_KEY: envBool.default(true),
    /**
     * How Record calls reach ingest: Connect over HTTP/1.1 keep-alive connections (the
     * default: a fraction of node's HTTP/2 cost per call, see docs/perf.md) or over one
     * HTTP/2 session per replica.
     */
    INGEST_TRANSPORT: z.enum(['http1', 'http2']).default('http1'),
    /** Record calls in flight to ingest at once, at most (see INGEST_EAGER_BATCH). */
    INGEST_MAX_IN_FLIGHT: z.coerce.number().int().min(1).default(8),
    /**
     * While a Record call runs, new points queue behind it and leave together when it
     * returns; a further call starts alongside only once this many points are queued.
     */
    INGEST_EAGER_BATCH: z.coerce.number().int().min(1).default(500),
    /** Most points in one Record call. */
    INGEST_MAX_BATCH: z.coerce.number().int().min(1).default(5000),
    /** Request bodies larger than this are answered 413 (1 MiB holds 1,000 JSON points with long names). */
    API_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1 << 20),
    /** Points per second an account may send to one api replica, sustained; 0 turns the limit off. */
    RATE_LIMIT_POINTS_PER_SEC: z.coerce.number().min(0).default(50_000),
    /** Points an idle account may send to one api replica at once. */
    RATE_LIMIT_BURST: z.coerce.number().int().min(1).default(100_000),
    /** A client must send a request's headers within this (slowloris), else 408 and closed. */
    HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(1).default(10_000),
    /** A client must send a whole request (headers and body) within this, else 408 and closed. */
    HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1).default(30_000),
    /** An idle keep-alive connection is closed after this. */
    HTTP_KEEPALIVE_TIMEOUT_MS: z.coerce.number().int().min(1).default(65_000),
  })
  .refine((c) => c.HTTP_HEADERS_TIMEOUT_MS <= c.HTTP_REQUEST_TIMEOUT_MS, {
    path: ['HTTP_HEADERS_TIMEOUT_MS'],
    message: 'must not be longer than HTTP_REQUEST_TIMEOUT_MS',
  });
export type ApiConfig = z.infer<typeof apiConfigSchema>;
