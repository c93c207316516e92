// remote.hpp — where the client connects ("unix:PATH", "tcp:IP:PORT") and in which order,
// and how long it waits between attempts.
//
// Purpose: RemoteSet is the one place that decides which server the next connection
// attempt goes to. Today it cycles through the configured remotes round-robin (each
// attempt, failed or after a lost session, moves to the next), which is what a client of
// a Raft cluster of ovsdb-servers needs as a start; leader preference or a random start
// would be added here. Backoff is the exponential reconnect delay (min doubling to max,
// reset once a session is established).
// Thread-safety: plain values, used on the client's executor. Complexity: O(1) per call;
// parse O(length).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "control/ovsdb/error.hpp"

namespace gl::ovsdb {

struct Remote {
  enum class Kind : uint8_t { kUnix, kTcp };
  Kind kind = Kind::kUnix;
  std::string path;  // kUnix
  std::string host;  // kTcp: an IPv4 or IPv6 address literal (no name resolution)
  uint16_t port = 0;

  // "unix:/run/gl/db.sock", "tcp:127.0.0.1:6641", "tcp:[::1]:6641".
  static Result<Remote> parse(std::string_view s);
  std::string to_string() const;
};

class RemoteSet {
 public:
  // Parses every remote; an error names the first bad one. An empty list is an error.
  static Result<RemoteSet> parse(const std::vector<std::string>& remotes);

  // The remote for the next connection attempt; advances the cursor.
  const Remote& next();
  // The remote of the current (last started) attempt.
  const Remote& current() const { return remotes_[current_]; }
  size_t size() const { return remotes_.size(); }
  const std::vector<Remote>& remotes() const { return remotes_; }

 private:
  std::vector<Remote> remotes_;
  size_t current_ = 0;
  size_t next_ = 0;
};

class Backoff {
 public:
  using Ms = std::chrono::milliseconds;
  Backoff(Ms min, Ms max) : min_(min), max_(max), next_(min) {}

  // The delay before the next attempt; doubles the one after, up to max.
  Ms next_delay() {
    const Ms d = next_;
    next_ = std::min(max_, next_ * 2);
    return d;
  }
  void reset() { next_ = min_; }
  Ms peek() const { return next_; }

 private:
  Ms min_;
  Ms max_;
  Ms next_;
};

}  // namespace gl::ovsdb
