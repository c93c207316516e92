// message.hpp — building and decoding dpapi datagrams.
//
// Purpose: MessageBuilder appends a header, fixed structs and padded variable parts;
// MessageReader walks a received datagram with a bounds check on every step and checks
// the header (magic, version, length, reserved bits). Used by gldp's server and by the
// client library alike, so both sides validate the same way.
// Thread-safety: an object per thread. Complexity: linear in the message size.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/api/wire.hpp"

namespace gl::api {

class MessageBuilder {
 public:
  MessageBuilder(MsgType type, uint32_t xid, uint16_t flags = 0, int32_t error = 0) {
    buf_.reserve(256);
    MsgHeader h{};
    h.magic = kMagic;
    h.version = kVersion;
    h.type = static_cast<uint16_t>(type);
    h.xid = xid;
    h.error = error;
    h.flags = flags;
    append(h);
  }

  template <typename T>
  T* append(const T& v) {
    static_assert(kWireSafe<T>);
    size_t at = buf_.size();
    buf_.resize(at + sizeof(T));
    std::memcpy(buf_.data() + at, &v, sizeof(T));
    return reinterpret_cast<T*>(buf_.data() + at);  // valid until the next append
  }

  // Raw bytes followed by zero padding to a multiple of 8.
  void append_padded(std::span<const uint8_t> bytes) {
    size_t at = buf_.size();
    buf_.resize(at + pad8(static_cast<uint32_t>(bytes.size())), 0);
    if (!bytes.empty()) std::memcpy(buf_.data() + at, bytes.data(), bytes.size());
  }

  // A NUL-terminated string (error replies).
  void append_text(std::string_view s) {
    std::vector<uint8_t> b(s.begin(), s.end());
    b.push_back(0);
    append_padded(b);
  }

  size_t size() const { return buf_.size(); }

  // Finalise the length field and return the datagram.
  std::span<const uint8_t> finish() {
    auto* h = reinterpret_cast<MsgHeader*>(buf_.data());
    h->length = static_cast<uint32_t>(buf_.size());
    return buf_;
  }

  // Count field of a batch header appended earlier (offset from append()).
  uint8_t* data() { return buf_.data(); }

 private:
  std::vector<uint8_t> buf_;
};

// Why a datagram was refused before any payload was looked at.
enum class HeaderError { kOk, kShort, kBadMagic, kBadVersion, kBadLength, kBadReserved };

class MessageReader {
 public:
  explicit MessageReader(std::span<const uint8_t> msg) : msg_(msg) {}

  HeaderError check_header() {
    if (msg_.size() < sizeof(MsgHeader)) return HeaderError::kShort;
    std::memcpy(&hdr_, msg_.data(), sizeof hdr_);
    if (hdr_.magic != kMagic) return HeaderError::kBadMagic;
    if (hdr_.version != kVersion) return HeaderError::kBadVersion;
    if (hdr_.length != msg_.size() || hdr_.length > kMaxMessage) return HeaderError::kBadLength;
    if (hdr_.reserved != 0 || (hdr_.flags & ~kFlagReply) != 0) return HeaderError::kBadReserved;
    pos_ = sizeof(MsgHeader);
    return HeaderError::kOk;
  }

  const MsgHeader& header() const { return hdr_; }
  MsgType type() const { return static_cast<MsgType>(hdr_.type); }
  size_t remaining() const { return msg_.size() - pos_; }

  // Copy the next fixed struct out; false when the datagram is too short.
  template <typename T>
  bool read(T& out) {
    static_assert(kWireSafe<T>);
    if (remaining() < sizeof(T)) return false;
    std::memcpy(&out, msg_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  // The next `len` bytes (and their padding) as a view; false when too short.
  bool read_padded(uint32_t len, std::span<const uint8_t>& out) {
    uint64_t padded = pad8(len);
    if (len > kMaxMessage || remaining() < padded) return false;
    out = msg_.subspan(pos_, len);
    pos_ += padded;
    return true;
  }

  // The next NUL-terminated string (append_text's form: padded to 8), at most `max` bytes
  // with its NUL; false when it is not terminated within that or the datagram is short.
  bool read_text(size_t max, std::string_view& out) {
    const size_t avail = std::min(remaining(), max);
    const auto* p = reinterpret_cast<const char*>(msg_.data() + pos_);
    const void* nul = std::memchr(p, 0, avail);
    if (nul == nullptr) return false;
    const size_t len = static_cast<size_t>(static_cast<const char*>(nul) - p);
    const size_t padded = pad8(static_cast<uint32_t>(len + 1));
    if (remaining() < padded) return false;
    out = std::string_view(p, len);
    pos_ += padded;
    return true;
  }

  // The error text of an error reply (empty when absent or not terminated).
  std::string error_text() const {
    if (pos_ >= msg_.size()) return {};
    std::string_view rest(reinterpret_cast<const char*>(msg_.data() + pos_), msg_.size() - pos_);
    size_t nul = rest.find('\0');
    return nul == std::string_view::npos ? std::string() : std::string(rest.substr(0, nul));
  }

 private:
  std::span<const uint8_t> msg_;
  MsgHeader hdr_{};
  size_t pos_ = 0;
};

std::string_view header_error_name(HeaderError e);

}  // namespace gl::api
