// remote.cpp — see remote.hpp.
#include "control/ovsdb/remote.hpp"

#include <sys/un.h>

#include <charconv>

#include <boost/asio/ip/address.hpp>

namespace gl::ovsdb {

Result<Remote> Remote::parse(std::string_view s) {
  Remote r;
  if (s.starts_with("unix:")) {
    r.kind = Kind::kUnix;
    r.path = std::string(s.substr(5));
    if (r.path.empty()) {
      return make_error(Errc::kInvalidArgument, "remote \"" + std::string(s) + "\": empty path");
    }
    if (r.path.size() >= sizeof(sockaddr_un::sun_path)) {
      return make_error(Errc::kInvalidArgument,
                        "remote \"" + std::string(s) + "\": path longer than " +
                            std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
    }
    return r;
  }
  if (!s.starts_with("tcp:")) {
    return make_error(Errc::kInvalidArgument,
                      "remote \"" + std::string(s) + "\": expected unix:PATH or tcp:IP:PORT");
  }
  r.kind = Kind::kTcp;
  std::string_view rest = s.substr(4);
  std::string_view host;
  std::string_view port;
  if (rest.starts_with("[")) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return make_error(Errc::kInvalidArgument,
                        "remote \"" + std::string(s) + "\": expected tcp:[IPv6]:PORT");
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return make_error(Errc::kInvalidArgument, "remote \"" + std::string(s) + "\": no port");
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  boost::system::error_code ec;
  boost::asio::ip::make_address(std::string(host), ec);
  if (ec) {
    return make_error(Errc::kInvalidArgument,
                      "remote \"" + std::string(s) + "\": \"" + std::string(host) +
                          "\" is not an IP address (names are not resolved)");
  }
  unsigned p = 0;
  auto [ptr, err] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (err != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
    return make_error(Errc::kInvalidArgument,
                      "remote \"" + std::string(s) + "\": bad port \"" + std::string(port) + "\"");
  }
  r.host = std::string(host);
  r.port = static_cast<uint16_t>(p);
  return r;
}

std::string Remote::to_string() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "tcp:[" + host + "]:" + std::to_string(port);
  return "tcp:" + host + ":" + std::to_string(port);
}

Result<RemoteSet> RemoteSet::parse(const std::vector<std::string>& remotes) {
  if (remotes.empty()) return make_error(Errc::kInvalidArgument, "no remote given");
  RemoteSet set;
  for (const std::string& s : remotes) {
    auto r = Remote::parse(s);
    if (!r) return std::unexpected(r.error());
    set.remotes_.push_back(std::move(*r));
  }
  return set;
}

const Remote& RemoteSet::next() {
  current_ = next_;
  next_ = (next_ + 1) % remotes_.size();
  return remotes_[current_];
}

}  // namespace gl::ovsdb
