// Throughput of seal/unseal (and of signing) for 1 MiB messages. Not a test; run with
//   npx tsx test/crypto/bench-sealing.ts
import { randomBytes } from 'node:crypto';
import { CipherId, cipherKeyLength, nonceLength, seal, unseal } from '../../src/crypto/sealing.js';
import { computeSignature, SigningAlgorithm } from '../../src/crypto/signing.js';

const MIB = 1024 * 1024;
const message = randomBytes(MIB);
const parts = [message.subarray(0, 64), message.subarray(64)]; // header + payload, as a WRITE/READ
const aad = randomBytes(32);

function rate(label: string, fn: () => void): void {
  for (let i = 0; i < 20; i++) fn(); // warm-up
  const iterations = 200;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`${label.padEnd(28)} ${((iterations * MIB) / seconds / MIB).toFixed(0).padStart(6)} MiB/s`);
}

for (const [name, cipherId] of [
  ['AES-128-GCM', CipherId.AES_128_GCM],
  ['AES-256-GCM', CipherId.AES_256_GCM],
  ['AES-128-CCM', CipherId.AES_128_CCM],
  ['AES-256-CCM', CipherId.AES_256_CCM],
] as const) {
  const key = randomBytes(cipherKeyLength(cipherId));
  const nonce = randomBytes(nonceLength(cipherId));
  const sealed = seal(cipherId, key, nonce, aad, parts);
  const ciphertext = Array.isArray(sealed.ciphertext) ? Buffer.concat(sealed.ciphertext) : sealed.ciphertext;
  rate(`seal   ${name}`, () => seal(cipherId, key, nonce, aad, parts));
  rate(`unseal ${name}`, () => {
    if (unseal(cipherId, key, nonce, aad, ciphertext, sealed.tag) === null) throw new Error('unseal failed');
  });
}
const signingKey = randomBytes(16);
rate('sign   AES-128-CMAC', () => computeSignature(SigningAlgorithm.AES_CMAC, signingKey, parts));
rate('sign   AES-128-GMAC', () =>
  computeSignature(SigningAlgorithm.AES_GMAC, signingKey, parts, { messageId: 1n, isServer: true, isCancel: false }),
);
rate('sign   HMAC-SHA256', () => computeSignature(SigningAlgorithm.HMAC_SHA256, signingKey, parts));
