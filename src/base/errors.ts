// Stable error codes (never reused). Each code names one kind of failure; messages may change.

export type ErrorCode =
  | 'TESSERA_CONFIG_INVALID'
  | 'TESSERA_MALFORMED'
  | 'TESSERA_LIMIT_EXCEEDED'
  | 'TESSERA_LISTEN_FAILED'
  | 'TESSERA_USER_STORE'
  | 'TESSERA_INTERNAL';

export class TesseraError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'TesseraError';
  }
}

/**
 * Thrown by decoders on bytes that do not form a valid message. The pipeline answers it with
 * STATUS_INVALID_PARAMETER (or closes the connection when the header itself is unusable).
 */
export class MalformedError extends TesseraError {
  constructor(message: string) {
    super('TESSERA_MALFORMED', message);
    this.name = 'MalformedError';
  }
}
