// aead_ipsecmb.cpp — intel-ipsec-mb backend: AES-256-GCM and ChaCha20-Poly1305 through
// the burst job API (IMB_GET_NEXT_BURST / IMB_SUBMIT_BURST_NOCHECK / IMB_FLUSH_BURST),
// one IMB_MGR per thread (the Worker's). Each batch is flushed before returning, so no
// job outlives the call and the manager's queue is empty between batches.
//
// ipsec-mb computes tags but does not compare them: decrypt points each job's tag output
// at Worker scratch and compares with crypto_verify_16 (constant time).
#define NO_COMPAT_IMB_API_053 1
#include <intel-ipsec-mb.h>
#include <sodium.h>

#include <cstring>
#include <mutex>

#include "crypto/aead_internal.hpp"

namespace gl::crypto::detail {
namespace {

static_assert(sizeof(gcm_key_data) <= sizeof(AeadKey::bytes));
static_assert(kMaxBurst <= IMB_MAX_BURST_SIZE);

IMB_MGR* new_mgr() {
  IMB_MGR* m = alloc_mb_mgr(0);
  if (m == nullptr) return nullptr;
  IMB_ARCH arch = IMB_ARCH_NONE;
  init_mb_mgr_auto(m, &arch);
  // IMB_ARCH_NOAESNI is software AES: correct but slower than libsodium's ChaCha path;
  // treat it as "unavailable" so that auto selection prefers libsodium.
  if (imb_get_errno(m) != 0 || arch < IMB_ARCH_SSE) {
    free_mb_mgr(m);
    return nullptr;
  }
  return m;
}

// Manager for control-side key expansion (IMB_AES256_GCM_PRE only reads the manager's
// function pointers, so concurrent calls are safe).
IMB_MGR* control_mgr() {
  static IMB_MGR* const m = new_mgr();
  return m;
}

void gcm_expand(AeadKey& out, const uint8_t* key) {
  wipe(out);
  IMB_AES256_GCM_PRE(control_mgr(), key, reinterpret_cast<gcm_key_data*>(out.bytes));
}

void chacha_expand(AeadKey& out, const uint8_t* key) {
  wipe(out);
  std::memcpy(out.bytes, key, kKeyLen);
}

template <Cipher C>
void fill_job(IMB_JOB* job, AeadOp& op, bool encrypt, uint8_t* tag_out, uint32_t i) {
  job->enc_keys = op.key->bytes;
  job->dec_keys = op.key->bytes;
  job->key_len_in_bytes = IMB_KEY_256_BYTES;
  job->src = op.data;
  job->dst = op.data;
  job->cipher_start_src_offset_in_bytes = 0;
  job->msg_len_to_cipher_in_bytes = op.len;
  job->hash_start_src_offset_in_bytes = 0;
  job->msg_len_to_hash_in_bytes = op.len;
  job->iv = op.nonce;
  job->iv_len_in_bytes = kNonceLen;
  job->auth_tag_output = tag_out;
  job->auth_tag_output_len_in_bytes = kIcvLen;
  if constexpr (C == Cipher::aes256_gcm) {
    job->u.GCM.aad = op.aad;
    job->u.GCM.aad_len_in_bytes = op.aad_len;
    job->cipher_mode = IMB_CIPHER_GCM;
    job->hash_alg = IMB_AUTH_AES_GMAC;
  } else {
    job->u.CHACHA20_POLY1305.aad = op.aad;
    job->u.CHACHA20_POLY1305.aad_len_in_bytes = op.aad_len;
    job->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
    job->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
  }
  job->cipher_direction = encrypt ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
  job->chain_order = encrypt ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
  job->user_data = reinterpret_cast<void*>(static_cast<uintptr_t>(i));
}

// Runs ops[0, n) as one burst; ok[i] = job completed (and, for decrypt, tag matched).
template <Cipher C, bool kEncrypt>
uint32_t run(Worker& w, AeadOp* ops, uint32_t n, uint8_t* ok) {
  auto* mgr = static_cast<IMB_MGR*>(w.imb());
  IMB_JOB* jobs[kMaxBurst];
  uint32_t good = 0;
  for (uint32_t i = 0; i < n; ++i) ok[i] = 0;
  if (mgr == nullptr || n == 0) return 0;
  uint32_t got = IMB_GET_NEXT_BURST(mgr, n, jobs);
  if (got < n) {  // queue not empty: cannot happen as every call flushes; recover anyway
    IMB_JOB* drain[IMB_MAX_JOBS];
    IMB_FLUSH_BURST(mgr, IMB_MAX_JOBS, drain);
    got = IMB_GET_NEXT_BURST(mgr, n, jobs);
    if (got < n) return 0;
  }
  for (uint32_t i = 0; i < n; ++i) {
    fill_job<C>(jobs[i], ops[i], kEncrypt, kEncrypt ? ops[i].tag : w.s.tag[i], i);
  }
  uint32_t done = IMB_SUBMIT_BURST_NOCHECK(mgr, n, jobs);
  if (done < n) done += IMB_FLUSH_BURST(mgr, n - done, jobs + done);
  for (uint32_t j = 0; j < done; ++j) {
    const IMB_JOB* job = jobs[j];
    const auto i = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(job->user_data));
    if (i >= n || job->status != IMB_STATUS_COMPLETED) continue;
    if constexpr (kEncrypt) {
      ok[i] = 1;
    } else {
      ok[i] = crypto_verify_16(w.s.tag[i], ops[i].tag) == 0;
    }
    good += ok[i];
  }
  return good;
}

constexpr AeadImpl kGcm{Backend::ipsec_mb, Cipher::aes256_gcm, gcm_expand,
                        run<Cipher::aes256_gcm, true>, run<Cipher::aes256_gcm, false>};
constexpr AeadImpl kChacha{Backend::ipsec_mb, Cipher::chacha20_poly1305, chacha_expand,
                           run<Cipher::chacha20_poly1305, true>,
                           run<Cipher::chacha20_poly1305, false>};

}  // namespace

const AeadImpl* ipsecmb_impl(Cipher c) {
  if (control_mgr() == nullptr || !sodium_ready()) return nullptr;
  return c == Cipher::aes256_gcm ? &kGcm : &kChacha;
}

void* ipsecmb_new_mgr() {
  return new_mgr();
}

void ipsecmb_free_mgr(void* mgr) {
  if (mgr != nullptr) free_mb_mgr(static_cast<IMB_MGR*>(mgr));
}

std::string ipsecmb_arch_name() {
  IMB_MGR* m = control_mgr();
  if (m == nullptr) return "unavailable";
  switch (m->used_arch) {
    case IMB_ARCH_SSE:
      return "sse";
    case IMB_ARCH_AVX:
      return "avx";
    case IMB_ARCH_AVX2:
      return "avx2";
    case IMB_ARCH_AVX512:
      return "avx512";
    default:
      return "other";
  }
}

}  // namespace gl::crypto::detail
