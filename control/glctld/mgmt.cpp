#include "control/glctld/mgmt.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <utility>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

namespace gl::glctld {

namespace asio = boost::asio;
using Json = nlohmann::json;
using Local = asio::local::stream_protocol;

namespace {

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// True when something accepts connections on the socket at `path`.
bool socket_alive(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const bool alive = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return alive;
}

// Only root (or glctld's own user) may talk to glctld: the socket is 0600 in a 0700
// directory, and the peer's credentials are checked as well, in case those modes were
// loosened or the socket passed on.
bool peer_trusted(int fd) {
  ucred cr{};
  socklen_t len = sizeof cr;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) return false;
  return cr.uid == 0 || cr.uid == ::geteuid();
}

}  // namespace

class MgmtServer::Impl : public std::enable_shared_from_this<MgmtServer::Impl> {
 public:
  struct Session {
    explicit Session(asio::any_io_executor ex) : socket(ex), in(kMaxRequest) {}
    Local::socket socket;
    asio::streambuf in;
    std::string out;
  };

  Impl(asio::any_io_executor ex, std::string path, AsyncHandler handler)
      : ex_(ex), acceptor_(ex), path_(std::move(path)), handler_(std::move(handler)) {}

  std::expected<void, std::string> listen() {
    if (path_.empty() || path_.size() >= sizeof(sockaddr_un{}.sun_path))
      return std::unexpected("management socket path \"" + path_ + "\": empty or too long");
    if (const size_t slash = path_.rfind('/'); slash != std::string::npos && slash > 0)
      ::mkdir(path_.substr(0, slash).c_str(), 0700);  // e.g. /run/goldilocks; EEXIST is fine
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        return std::unexpected("management socket " + path_ + ": exists and is not a socket");
      if (socket_alive(path_))
        return std::unexpected("management socket " + path_ +
                               ": another process is listening on it (is glctld running?)");
      ::unlink(path_.c_str());  // stale, from a process that died
    }
    boost::system::error_code ec;
    acceptor_.open(Local(), ec);
    if (!ec) {
      const mode_t old = ::umask(0077);  // created 0600
      acceptor_.bind(Local::endpoint(path_), ec);
      ::umask(old);
    }
    if (!ec) ::chmod(path_.c_str(), 0600);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return std::unexpected("management socket " + path_ + ": " + ec.message());
    bound_ = true;
    return {};
  }

  void accept() {
    auto self = shared_from_this();
    acceptor_.async_accept([self](boost::system::error_code ec, Local::socket s) {
      if (self->closed_) return;
      if (!ec) {
        if (!peer_trusted(s.native_handle())) {
          ++self->refused_;
          boost::system::error_code ignored;
          s.close(ignored);
        } else if (self->sessions_.size() >= kMaxMgmtSessions) {
          boost::system::error_code ignored;
          s.close(ignored);
        } else {
          self->sessions_.emplace_back(s.get_executor());
          auto it = std::prev(self->sessions_.end());
          it->socket = std::move(s);
          self->read(it);
        }
      }
      self->accept();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (Session& s : sessions_) s.socket.close(ignored);
    if (bound_) ::unlink(path_.c_str());
  }

  const std::string& path() const { return path_; }

 private:
  using Iter = std::list<Session>::iterator;

  void end(Iter it) {
    boost::system::error_code ignored;
    it->socket.close(ignored);
    if (!closed_) sessions_.erase(it);
  }

  void read(Iter it) {
    auto self = shared_from_this();
    asio::async_read_until(
        it->socket, it->in, '\n', [self, it](boost::system::error_code ec, size_t n) {
          if (self->closed_) return;
          if (ec == asio::error::not_found) {
            // The line is longer than the buffer allows.
            self->reply(
                it,
                Json{{"error", "request longer than " + std::to_string(kMaxRequest) + " bytes"}},
                true);
            return;
          }
          if (ec) return self->end(it);
          std::string line(asio::buffers_begin(it->in.data()),
                           asio::buffers_begin(it->in.data()) + n);
          it->in.consume(n);
          self->answer(it, line);
        });
  }

  void answer(Iter it, const std::string& line) {
    std::string_view text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    if (text.find_first_not_of(" \t") == std::string_view::npos) return read(it);  // blank
    Json request = Json::parse(text, nullptr, false);
    if (request.is_discarded()) return reply(it, Json{{"error", "request is not JSON"}}, false);
    if (!request.is_object())
      return reply(it, Json{{"error", "request is not a JSON object"}}, false);
    auto self = shared_from_this();
    auto once = std::make_shared<bool>(false);
    try {
      handler_(request, [self, it, once](Json response) {
        if (*once || self->closed_) return;
        *once = true;
        self->reply(it, response, false);
      });
    } catch (const std::exception& e) {  // a bug in a handler must not end the daemon
      if (!*once) {
        *once = true;
        reply(it, Json{{"error", std::string("internal error: ") + e.what()}}, false);
      }
    }
  }

  void reply(Iter it, const Json& response, bool close_after) {
    it->out = response.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    auto self = shared_from_this();
    asio::async_write(it->socket, asio::buffer(it->out),
                      [self, it, close_after](boost::system::error_code ec, size_t) {
                        if (self->closed_) return;
                        if (ec || close_after) return self->end(it);
                        self->read(it);
                      });
  }

  asio::any_io_executor ex_;
  Local::acceptor acceptor_;
  std::string path_;
  AsyncHandler handler_;
  std::list<Session> sessions_;
  bool closed_ = false;
  bool bound_ = false;

 public:
  uint64_t refused_ = 0;  // connections from a peer neither root nor glctld's user
};

std::expected<std::unique_ptr<MgmtServer>, std::string> MgmtServer::create(asio::any_io_executor ex,
                                                                           const std::string& path,
                                                                           Handler handler) {
  return create_async(
      ex, path, [h = std::move(handler)](const Json& request, Reply reply) { reply(h(request)); });
}

std::expected<std::unique_ptr<MgmtServer>, std::string> MgmtServer::create_async(
    asio::any_io_executor ex, const std::string& path, AsyncHandler handler) {
  auto impl = std::make_shared<Impl>(ex, path, std::move(handler));
  if (auto ok = impl->listen(); !ok) return std::unexpected(ok.error());
  impl->accept();
  return std::unique_ptr<MgmtServer>(new MgmtServer(std::move(impl)));
}

MgmtServer::~MgmtServer() {
  close();
}

void MgmtServer::close() {
  if (impl_) impl_->close();
}

const std::string& MgmtServer::path() const {
  return impl_->path();
}

uint64_t MgmtServer::refused_peers() const {
  return impl_->refused_;
}

// ---- the client -----------------------------------------------------------------------------

std::expected<nlohmann::json, std::string> mgmt_call(const std::string& path,
                                                     const nlohmann::json& request,
                                                     std::chrono::milliseconds timeout) {
  const std::string where = "glctld at " + path;
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return std::unexpected("management socket path \"" + path + "\": empty or too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected(errno_text("socket"));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return std::unexpected(errno_text("cannot reach " + where));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto wait = [&](short events) -> std::expected<void, std::string> {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::unexpected("no answer from " + where);
      pollfd p{fd, events, 0};
      const int rc = ::poll(&p, 1, static_cast<int>(left.count()));
      if (rc > 0) return {};
      if (rc < 0 && errno != EINTR) return std::unexpected(errno_text("poll"));
    }
  };
  const std::string out = request.dump() + "\n";
  for (size_t sent = 0; sent < out.size();) {
    if (auto ok = wait(POLLOUT); !ok) return std::unexpected(ok.error());
    const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(errno_text("send to " + where));
    sent += static_cast<size_t>(n);
  }
  std::string in;
  char buf[16384];
  while (in.find('\n') == std::string::npos) {
    if (auto ok = wait(POLLIN); !ok) return std::unexpected(ok.error());
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(errno_text("receive from " + where));
    if (n == 0) return std::unexpected(where + " closed the connection without an answer");
    in.append(buf, static_cast<size_t>(n));
    if (in.size() > (64u << 20)) return std::unexpected(where + ": answer too long");
  }
  in.resize(in.find('\n'));
  Json reply = Json::parse(in, nullptr, false);
  if (reply.is_discarded() || !reply.is_object())
    return std::unexpected(where + " answered something that is not a JSON object");
  return reply;
}

}  // namespace gl::glctld
