// mgmt.hpp — glctld's management API: JSON lines over a Unix stream socket.
//
// Purpose: glctl (and tests, and operators with socat) ask the running glctld for its
// runtime state. A client sends one JSON object per line, e.g. {"cmd":"status"}, and gets
// one JSON object per line back, in order; the connection stays open for more requests. A
// reply with an "error" member (a string) is a refusal: a line that is not a JSON object,
// a missing or unknown "cmd" (the error names it), a line over kMaxRequest bytes (the
// connection is then closed). Commands and their replies: control/DESIGN.md, "glctld".
//
// The socket is created with mode 0600 in a directory created 0700 when missing: only root
// talks to glctld, as only root programs gldp. A stale socket file (nobody accepting on it)
// is replaced; a live one is refused (another glctld runs).
//
// MgmtServer lives on the daemon's io_context (one thread); mgmt_call() is the blocking
// client for glctl and tests.
// Thread-safety: MgmtServer and its handler run on its executor; create() and close() are
// called there. mgmt_call() is reentrant. Complexity: O(request + reply) per request.
#pragma once

#include <chrono>
#include <cstddef>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>

namespace gl::glctld {

inline constexpr size_t kMaxRequest = 64 * 1024;
inline constexpr size_t kMaxMgmtSessions = 64;

class MgmtServer {
 public:
  // Answers one request (a JSON object); the reply must be a JSON object.
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
  // Answers one request later: calls `reply` once, on the server's executor (a request
  // that waits on gldp must not hold up the daemon). The session reads its next request
  // after the reply, so replies stay in order.
  using Reply = std::function<void(nlohmann::json)>;
  using AsyncHandler = std::function<void(const nlohmann::json& request, Reply reply)>;

  // Binds and listens on `path`; the error names the path and the reason.
  static std::expected<std::unique_ptr<MgmtServer>, std::string> create(
      boost::asio::any_io_executor ex, const std::string& path, Handler handler);
  static std::expected<std::unique_ptr<MgmtServer>, std::string> create_async(
      boost::asio::any_io_executor ex, const std::string& path, AsyncHandler handler);
  ~MgmtServer();
  MgmtServer(const MgmtServer&) = delete;
  MgmtServer& operator=(const MgmtServer&) = delete;

  // Stops accepting, closes every session and removes the socket file.
  void close();
  const std::string& path() const;
  // Connections refused because the peer is neither root nor this process's user.
  uint64_t refused_peers() const;

  class Impl;

 private:
  explicit MgmtServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// Sends one request to the glctld listening on `path` and returns its reply (which may be
// an {"error": ...} object). Fails (with a message naming the socket) when glctld cannot
// be reached, does not answer within `timeout`, or answers something that is not JSON.
std::expected<nlohmann::json, std::string> mgmt_call(const std::string& path,
                                                     const nlohmann::json& request,
                                                     std::chrono::milliseconds timeout);

}  // namespace gl::glctld
