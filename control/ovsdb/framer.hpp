// framer.hpp — incremental splitting of a byte stream into JSON-RPC messages.
//
// Purpose: RFC 7047 runs JSON-RPC over a plain stream with no delimiter between messages;
// ovsdb-server writes objects back to back. JsonFramer takes bytes as they are read (any
// split: half an object, several objects, whitespace between them) and returns each
// complete top-level object, parsed. It tracks nesting depth outside strings, so braces
// inside strings ("a{b") and escaped quotes do not confuse it, and hands exactly one
// object at a time to nlohmann::json::parse. Anything that is not an object at top level,
// an object that does not parse, nesting deeper than kMaxDepth, or a message longer than
// the cap is an error; after an error the stream is unusable (the caller disconnects)
// until reset().
// Thread-safety: none (one framer per connection, used by the connection's strand).
// Complexity: feed() is O(bytes fed) for scanning plus O(message) to parse each message;
// the buffer holds at most one incomplete message (<= max_message bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace gl::ovsdb {

inline constexpr size_t kDefaultMaxMessage = size_t{64} << 20;  // 64 MiB
inline constexpr uint32_t kMaxDepth = 512;  // nlohmann parses recursively: bound the stack

class JsonFramer {
 public:
  enum class Status : uint8_t { kOk, kMalformed, kOverflow };

  explicit JsonFramer(size_t max_message = kDefaultMaxMessage) : max_message_(max_message) {}

  // Appends `data` and moves every message it completes, in order, to the end of `out`.
  // Returns kOk, or the first error (messages completed before it are still in `out`).
  // Once an error was returned, further calls return it again until reset().
  Status feed(std::string_view data, std::vector<nlohmann::json>& out);

  // Forgets buffered bytes and any error (a new connection).
  void reset();

  size_t buffered() const { return buf_.size(); }
  Status status() const { return status_; }
  // Human-readable reason for the last error ("" when kOk).
  const std::string& error() const { return error_; }

 private:
  Status fail(Status s, std::string why);

  size_t max_message_;
  std::string buf_;     // bytes not yet consumed; starts at the current message (or blank)
  size_t scan_ = 0;     // next byte of buf_ to scan
  uint32_t depth_ = 0;  // {} / [] nesting; 0 = between messages
  bool in_string_ = false;
  bool escape_ = false;  // previous byte inside a string was a backslash
  Status status_ = Status::kOk;
  std::string error_;
};

}  // namespace gl::ovsdb
