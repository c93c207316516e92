// aead.cpp — backend selection and the per-thread Worker.
#include "crypto/aead.hpp"

#include <new>

#include "crypto/aead_internal.hpp"

namespace gl::crypto {

const AeadImpl* aead_impl(Backend b, Cipher c) {
  switch (b) {
    case Backend::sodium:
      return detail::sodium_impl(c);
    case Backend::ipsec_mb:
      return detail::ipsecmb_impl(c);
  }
  return nullptr;
}

std::expected<Backend, std::string> choose_backend(std::string_view config, Cipher c) {
  if (config == "auto" || config.empty()) {
    if (aead_impl(Backend::ipsec_mb, c) != nullptr) return Backend::ipsec_mb;
    if (aead_impl(Backend::sodium, c) != nullptr) return Backend::sodium;
    return std::unexpected("no AEAD backend can do " + std::string(name(c)) + " on this CPU");
  }
  for (size_t i = 0; i < kBackendCount; ++i) {
    if (config != kBackendNames[i]) continue;
    const auto b = static_cast<Backend>(i);
    if (aead_impl(b, c) == nullptr) {
      return std::unexpected("backend " + std::string(config) + " cannot do " +
                             std::string(name(c)) + " on this CPU");
    }
    return b;
  }
  return std::unexpected("unknown AEAD backend '" + std::string(config) +
                         "' (auto, sodium, ipsec-mb)");
}

std::string backend_description(Backend b) {
  if (b == Backend::ipsec_mb) return "ipsec-mb " + detail::ipsecmb_arch_name();
  return detail::sodium_ready() ? "libsodium" : "libsodium (init failed)";
}

std::expected<std::unique_ptr<Worker>, std::string> Worker::create() {
  if (!detail::sodium_ready()) return std::unexpected("sodium_init failed");
  std::unique_ptr<Worker> w(new (std::nothrow) Worker());
  if (!w) return std::unexpected("out of memory");
  w->imb_ = detail::ipsecmb_new_mgr();  // nullptr: ipsec-mb SAs cannot run on it
  return w;
}

Worker::~Worker() {
  detail::ipsecmb_free_mgr(imb_);
}

}  // namespace gl::crypto
