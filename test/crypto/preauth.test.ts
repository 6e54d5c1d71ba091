import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PREAUTH_HASH_SIZE, preauthInitial, preauthUpdate } from '../../src/crypto/preauth.js';
import { ANATOMY_311, ANATOMY_311_CHANNEL } from './vectors.js';

const hx = (b: Buffer): string => b.toString('hex');

describe('preauth integrity hash (MS-SMB2 3.3.5.4, SHA-512)', () => {
  it('starts at 64 zero bytes', () => {
    expect(PREAUTH_HASH_SIZE).toBe(64);
    expect(preauthInitial().equals(Buffer.alloc(64))).toBe(true);
  });

  for (const [name, v] of [
    ['master session', ANATOMY_311],
    ['second channel', ANATOMY_311_CHANNEL],
  ] as const) {
    it(`reproduces the published chain of the ${name} (NEGOTIATE, then the SESSION_SETUP exchange)`, () => {
      let connection = preauthUpdate(preauthInitial(), [v.negotiateRequest]);
      expect(hx(connection)).toBe(hx(v.hashAfterNegotiateRequest));
      connection = preauthUpdate(connection, [v.negotiateResponse]);
      expect(hx(connection)).toBe(hx(v.hashAfterNegotiateResponse));
      let session = preauthUpdate(connection, [v.sessionSetupRequest1]);
      expect(hx(session)).toBe(hx(v.hashAfterSessionSetupRequest1));
      session = preauthUpdate(session, [v.sessionSetupResponse1]);
      expect(hx(session)).toBe(hx(v.hashAfterSessionSetupResponse1));
      session = preauthUpdate(session, [v.sessionSetupRequest2]);
      expect(hx(session)).toBe(hx(v.preauthHash));
    });
  }

  it('gives the same value however the message is split into parts', () => {
    const msg = ANATOMY_311.negotiateResponse;
    const expected = hx(ANATOMY_311.hashAfterNegotiateResponse);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: msg.length }), { maxLength: 8 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), msg.length];
        const parts = points.slice(1).map((end, i) => msg.subarray(points[i], end));
        expect(hx(preauthUpdate(ANATOMY_311.hashAfterNegotiateRequest, parts))).toBe(expected);
      }),
    );
  });

  it('changes with a single flipped bit', () => {
    const msg = Buffer.from(ANATOMY_311.sessionSetupRequest1);
    msg[70] = msg[70]! ^ 0x01;
    expect(hx(preauthUpdate(ANATOMY_311.hashAfterNegotiateResponse, [msg]))).not.toBe(
      hx(ANATOMY_311.hashAfterSessionSetupRequest1),
    );
  });

  it('refuses a previous value that is not 64 bytes', () => {
    expect(() => preauthUpdate(Buffer.alloc(63), [])).toThrow(/assertion/);
  });
});
