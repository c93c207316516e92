// error.hpp — the error type of the OVSDB client library (gl_ovsdb) and its Result alias.
//
// Purpose: every fallible call in gl::ovsdb returns Result<T> = std::expected<T, Error>.
// An Error carries a code (what kind of failure), a complete human-readable message, and
// for server-side failures the server's own "error" / "details" strings (RFC 7047 3.1)
// and, for a failed transaction, the index of the operation that failed.
// Thread-safety: plain values. Complexity: O(1).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace gl::ovsdb {

enum class Errc : uint8_t {
  kInvalidArgument,  // bad input from the caller (remote string, schema, value shape)
  kNotConnected,     // request made while no session is open
  kDisconnected,     // the session dropped before the reply arrived
  kCancelled,        // the client was stopped before the reply arrived
  kRpcError,         // the server answered the request with a JSON-RPC error
  kTxnFailed,        // a transact operation (or the commit) failed
  kBadReply,         // the reply does not have the shape RFC 7047 gives it
  kCount,
};

inline constexpr std::array<std::string_view, static_cast<size_t>(Errc::kCount)> kErrcNames = {
    "invalid argument", "not connected", "disconnected", "cancelled",
    "rpc error",        "txn failed",    "bad reply",
};

constexpr std::string_view errc_name(Errc e) {
  const auto i = static_cast<size_t>(e);
  return i < kErrcNames.size() ? kErrcNames[i] : std::string_view{"?"};
}

struct Error {
  Errc code = Errc::kInvalidArgument;
  std::string message;             // complete, names what failed
  std::string server_error;        // RFC 7047 <error>.error, e.g. "constraint violation"
  std::string details;             // RFC 7047 <error>.details (may be empty)
  std::optional<size_t> op_index;  // kTxnFailed: 0-based index of the failing operation
};

template <typename T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> make_error(Errc code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message), {}, {}, std::nullopt});
}

}  // namespace gl::ovsdb
