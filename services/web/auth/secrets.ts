// Moved to kit (ingest checks statsd tokens with the same hashes); kept so web's imports stay put.
export { hmac, randomSecret, sameSecret, sha256Hex } from '../../kit/secrets.js';
