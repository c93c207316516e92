// aead_internal.hpp — glue between aead.cpp and the two backend files. Not installed,
// not for callers.
//
// Thread-safety: see aead.hpp. Complexity: O(1).
#pragma once

#include <string>

#include "crypto/aead.hpp"

namespace gl::crypto::detail {

const AeadImpl* sodium_impl(Cipher c);   // nullptr when unavailable
const AeadImpl* ipsecmb_impl(Cipher c);  // nullptr when unavailable
bool sodium_ready();                     // sodium_init() done (idempotent, thread-safe)
void* ipsecmb_new_mgr();                 // IMB_MGR* for one thread, nullptr on failure
void ipsecmb_free_mgr(void* mgr);
std::string ipsecmb_arch_name();  // "avx512", ... or "unavailable"

}  // namespace gl::crypto::detail
