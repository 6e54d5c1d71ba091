// Optional accelerator: AES-GCM sealing and opening in place, on the OpenSSL that Node itself links.
// Node's crypto API allocates a fresh output buffer for every update(); for SMB3 READ/WRITE
// payloads of megabytes that allocation (and the garbage it leaves) costs more than the cipher.
// src/crypto/sealing.ts uses this when it loads and falls back to node:crypto otherwise.
#include <node_api.h>
#include <openssl/evp.h>
#include <cstring>

namespace {

bool GetBuffer(napi_env env, napi_value v, unsigned char** data, size_t* len) {
  bool is = false;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return false;
  void* p = nullptr;
  if (napi_get_buffer_info(env, v, &p, len) != napi_ok) return false;
  *data = static_cast<unsigned char*>(p);
  return true;
}

const EVP_CIPHER* CipherFor(size_t key_len) {
  if (key_len == 16) return EVP_aes_128_gcm();
  if (key_len == 32) return EVP_aes_256_gcm();
  return nullptr;
}

// run(encrypt, key, nonce, aad, parts[], tag) -> boolean
// encrypt: parts are encrypted in place and the 16-byte tag written into `tag`;
// decrypt: parts are decrypted in place and `tag` verified (false when it does not authenticate).
napi_value Run(napi_env env, napi_callback_info info, bool encrypt) {
  size_t argc = 5;
  napi_value argv[5];
  napi_value result;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  napi_get_boolean(env, false, &result);
  if (argc != 5) return result;
  unsigned char *key, *nonce, *aad, *tag;
  size_t key_len, nonce_len, aad_len, tag_len;
  if (!GetBuffer(env, argv[0], &key, &key_len) || !GetBuffer(env, argv[1], &nonce, &nonce_len) ||
      !GetBuffer(env, argv[2], &aad, &aad_len) || !GetBuffer(env, argv[4], &tag, &tag_len) || tag_len != 16) {
    return result;
  }
  const EVP_CIPHER* cipher = CipherFor(key_len);
  if (cipher == nullptr || nonce_len != 12) return result;
  bool is_array = false;
  napi_is_array(env, argv[3], &is_array);
  if (!is_array) return result;
  uint32_t count = 0;
  napi_get_array_length(env, argv[3], &count);

  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  bool ok = ctx != nullptr &&
            EVP_CipherInit_ex(ctx, cipher, nullptr, nullptr, nullptr, encrypt ? 1 : 0) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) == 1 &&
            EVP_CipherInit_ex(ctx, nullptr, nullptr, key, nonce, encrypt ? 1 : 0) == 1;
  int outl = 0;
  if (ok && aad_len > 0) ok = EVP_CipherUpdate(ctx, nullptr, &outl, aad, static_cast<int>(aad_len)) == 1;
  for (uint32_t i = 0; ok && i < count; i++) {
    napi_value part;
    unsigned char* data;
    size_t len;
    if (napi_get_element(env, argv[3], i, &part) != napi_ok || !GetBuffer(env, part, &data, &len)) {
      ok = false;
      break;
    }
    // GCM is a stream mode: in-place operation is allowed and output length equals input length.
    size_t at = 0;
    while (ok && at < len) {
      int chunk = static_cast<int>(len - at > (1u << 30) ? (1u << 30) : len - at);
      ok = EVP_CipherUpdate(ctx, data + at, &outl, data + at, chunk) == 1 && outl == chunk;
      at += static_cast<size_t>(chunk);
    }
  }
  if (ok && !encrypt) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
  unsigned char tail[16];
  if (ok) ok = EVP_CipherFinal_ex(ctx, tail, &outl) == 1;
  if (ok && encrypt) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
  if (ctx != nullptr) EVP_CIPHER_CTX_free(ctx);
  napi_get_boolean(env, ok, &result);
  return result;
}

napi_value Seal(napi_env env, napi_callback_info info) { return Run(env, info, true); }
napi_value Open(napi_env env, napi_callback_info info) { return Run(env, info, false); }

napi_value Init(napi_env env, napi_value exports) {
  napi_value seal, open;
  napi_create_function(env, "sealInPlace", NAPI_AUTO_LENGTH, Seal, nullptr, &seal);
  napi_create_function(env, "openInPlace", NAPI_AUTO_LENGTH, Open, nullptr, &open);
  napi_set_named_property(env, exports, "sealInPlace", seal);
  napi_set_named_property(env, exports, "openInPlace", open);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
