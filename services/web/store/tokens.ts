// Moved to kit (the CLI and ingest's statsd listeners use them too); kept so web's imports stay put.
export { accountOfAccessToken, createToken, listTokens, revokeToken, type TokenRow, type TokenTable } from '../../kit/tokens.js';
