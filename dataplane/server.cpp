#include "dataplane/server.hpp"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <sodium.h>

#include "dataplane/api/message.hpp"
#include "dataplane/conntrack/conntrack.hpp"

namespace gl::dp {

using api::MessageBuilder;
using api::MessageReader;
using api::MsgType;

namespace {

constexpr int kSndBuf = 4 * 1024 * 1024;

// Entries a batch may have: as many results as fit one reply.
constexpr size_t kMaxBatch = (api::kMaxMessage - sizeof(api::MsgHeader) - sizeof(api::BatchReply)) /
                             sizeof(api::EntryResult);

std::string batch_count_error(const char* what, uint32_t n) {
  return std::string(what) + " batch of " + std::to_string(n) + " entries (1.." +
         std::to_string(kMaxBatch) + " allowed)";
}

// Builds an error reply for request `h`.
std::vector<uint8_t> error_reply(const api::MsgHeader& h, int code, const std::string& text) {
  MessageBuilder b(static_cast<MsgType>(h.type), h.xid, api::kFlagReply, code);
  b.append_text(text);
  auto s = b.finish();
  return {s.begin(), s.end()};
}

}  // namespace

Server::Server(Datapath& dp, std::string path) : dp_(dp), path_(std::move(path)) {
  rxbuf_.resize(api::kMaxMessage + 1);
}

Server::~Server() {
  for (auto& c : clients_)
    if (c.fd >= 0) ::close(c.fd);
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }
}

bool Server::listen(std::string& err) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) {
    err = "socket path too long: " + path_;
    return false;
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) {
    err = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  // A stale socket from a crashed gldp is replaced; a live one is not.
  int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (probe >= 0) {
    if (::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      ::close(probe);
      err = "another gldp is serving " + path_;
      return false;
    }
    ::close(probe);
  }
  ::unlink(path_.c_str());
  if (size_t slash = path_.rfind('/'); slash != std::string::npos && slash > 0)
    ::mkdir(path_.substr(0, slash).c_str(), 0700);  // e.g. /run/gldp; EEXIST is fine
  mode_t old = ::umask(0077);  // the socket is created 0600: only root programs the datapath
  int rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc < 0) {
    err = "bind " + path_ + ": " + std::strerror(errno);
    return false;
  }
  ::chmod(path_.c_str(), 0600);
  if (::listen(listen_fd_, 64) < 0) {
    err = std::string("listen: ") + std::strerror(errno);
    return false;
  }
  return true;
}

void Server::accept_clients() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    // Only root (or gldp's own user) programs the datapath. The socket file is 0600 in a
    // 0700 directory; the peer's credentials are checked too, in case someone loosened
    // those modes (or passed the socket on).
    ucred cr{};
    socklen_t crlen = sizeof cr;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0 ||
        (cr.uid != 0 && cr.uid != ::geteuid())) {
      if (ctr_.refused_peer++ % 1000 == 0)  // a hostile user cannot flood the log
        std::fprintf(stderr, "gldp: refused an API client (pid %d, uid %u): not root\n",
                     static_cast<int>(cr.pid), static_cast<unsigned>(cr.uid));
      ::close(fd);
      continue;
    }
    // As root, the size asked for, whatever net.core.wmem_max says (as OVS asks for its
    // netlink sockets' buffers with SO_RCVBUFFORCE).
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kSndBuf, sizeof kSndBuf) != 0)
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSndBuf, sizeof kSndBuf);
    clients_.push_back(ClientConn{fd});
    clients_.back().peer_pid = cr.pid;
  }
}

void Server::close_client(size_t i) {
  // Queued replies may hold key material (an SA dump with keys): wiped, not just freed.
  for (auto& m : clients_[i].out) sodium_memzero(m.data(), m.size());
  ::close(clients_[i].fd);
  clients_.erase(clients_.begin() + static_cast<long>(i));
}

namespace {

// Bytes the kernel holds for the socket's peer: memory of the datagrams it has not read yet.
size_t socket_outq(int fd) {
  int n = 0;
  return ::ioctl(fd, SIOCOUTQ, &n) == 0 && n > 0 ? static_cast<size_t>(n) : 0;
}

}  // namespace

void Server::account_reads(ClientConn& c) {
  if (c.subscribed || c.unread == 0) return;
  const size_t q = socket_outq(c.fd);
  if (q == 0 || q < c.outq) c.unread = 0;  // it has read something: it is alive
  c.outq = q;
}

void Server::account_sent(ClientConn& c, size_t bytes) {
  if (c.subscribed) return;
  const size_t q = socket_outq(c.fd);
  c.unread = q == 0 ? 0 : q < c.outq ? bytes : c.unread + bytes;
  c.outq = q;
}

void Server::send_reply(ClientConn& c, std::span<const uint8_t> msg) {
  if (c.overflow) return;
  account_reads(c);
  if (c.unread + c.out_bytes + msg.size() > kMaxBacklog) {
    c.overflow = true;  // the caller closes the client
    return;
  }
  if (c.out.empty()) {
    for (;;) {
      const ssize_t n = ::send(c.fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) {
        account_sent(c, msg.size());
        return;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return;  // the client is gone: poll reports it
      break;
    }
  }
  // The client does not read: the reply waits in its queue, and gldp goes on.
  c.out.emplace_back(msg.begin(), msg.end());
  c.out_bytes += msg.size();
  ++ctr_.replies_queued;
}

bool Server::flush_replies(ClientConn& c) {
  account_reads(c);
  while (!c.out.empty()) {
    std::vector<uint8_t>& m = c.out.front();
    const ssize_t n = ::send(c.fd, m.data(), m.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN;
    }
    c.out_bytes -= m.size();
    account_sent(c, m.size());
    sodium_memzero(m.data(), m.size());
    c.out.pop_front();
  }
  return true;
}

void Server::run(const std::atomic<bool>& stop) {
  // The short ppoll timeouts below mean what they say only without the default 50 us
  // timer slack.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  std::vector<pollfd> pfds;
  bool upcalls_flowing = false;
  unsigned quiet_turns = ~0u;  // turns since upcalls last flowed
  while (!stop.load(std::memory_order_relaxed)) {
    pfds.clear();
    pfds.push_back({listen_fd_, POLLIN, 0});
    // A client with replies waiting is polled for room to send them, not for requests
    // (it is not read until it has read its replies).
    for (auto& c : clients_)
      pfds.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
    // Upcalls are polled from the PMD rings (a PMD never makes a syscall to wake us): wake
    // often while anyone subscribes: every 20 us while upcalls flow (not 0: spinning here
    // takes half of the core from a handler that shares it, which is the bottleneck of a
    // burst of new flows), 50 us for a while after, then 1 ms (20 ms without subscribers).
    bool any_sub = false;
    for (auto& c : clients_) any_sub |= c.subscribed;
    quiet_turns = upcalls_flowing ? 0 : (quiet_turns == ~0u ? quiet_turns : quiet_turns + 1);
    timespec wait{};
    if (!any_sub)
      wait.tv_nsec = 20'000'000;
    else if (upcalls_flowing)
      wait.tv_nsec = 20'000;
    else if (quiet_turns < 400)
      wait.tv_nsec = 50'000;
    else
      wait.tv_nsec = 1'000'000;
    int rc = ::ppoll(pfds.data(), pfds.size(), &wait, nullptr);
    if (rc < 0 && errno != EINTR) {
      std::perror("gldp: poll");
      break;
    }
    if (rc > 0) {
      if (pfds[0].revents & POLLIN) accept_clients();
      // Iterate backwards so closing a client does not shift the ones still to visit.
      for (size_t k = pfds.size() - 1; k >= 1; --k) {
        size_t i = k - 1;
        if (i >= clients_.size() || pfds[k].revents == 0) continue;
        bool keep = true;
        if (pfds[k].revents & (POLLERR | POLLHUP | POLLNVAL)) keep = false;
        if (keep && !clients_[i].out.empty()) keep = flush_replies(clients_[i]);
        while (keep && clients_[i].out.empty()) {
          ssize_t n = ::recv(clients_[i].fd, rxbuf_.data(), rxbuf_.size(), MSG_TRUNC);
          if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) keep = false;
            break;
          }
          if (n == 0) {
            keep = false;
            break;
          }
          if (static_cast<size_t>(n) > api::kMaxMessage) {
            ++ctr_.closed_protocol;
            api::MsgHeader h{};
            std::memcpy(&h, rxbuf_.data(), sizeof h);
            auto e = error_reply(
                h, EMSGSIZE,
                "message of " + std::to_string(n) + " bytes exceeds the 65536-byte limit");
            send_reply(clients_[i], e);
            keep = false;
            break;
          }
          keep = handle(clients_[i], std::span<const uint8_t>(rxbuf_.data(), n));
          if (clients_[i].overflow) {
            ++ctr_.closed_backlog;
            std::fprintf(stderr,
                         "gldp: closing a client (pid %d) that left over %zu bytes of replies "
                         "unread (%zu sent since it last read, %zu queued, and one more due)\n",
                         static_cast<int>(clients_[i].peer_pid), kMaxBacklog, clients_[i].unread,
                         clients_[i].out_bytes);
            keep = false;
          }
        }
        if (!keep) close_client(i);
      }
    }
    upcalls_flowing = deliver_upcalls() > 0;
    dp_.housekeeping();
  }
}

size_t Server::deliver_upcalls() {
  std::vector<size_t> miss_subs;
  for (size_t i = 0; i < clients_.size(); ++i)
    if (clients_[i].subscribed && clients_[i].misses) miss_subs.push_back(i);
  // Batching connections collect everything this drain finds for them into kUpcallBatch
  // datagrams (flushed when full and at the end): one send and one wakeup of the handler
  // per batch instead of per upcall.
  struct Pending {
    std::optional<MessageBuilder> b;
    uint32_t n = 0;
  };
  std::vector<Pending> pend(clients_.size());
  auto flush = [&](size_t ci) {
    Pending& p = pend[ci];
    if (p.n == 0) return;
    reinterpret_cast<api::UpcallBatchHeader*>(p.b->data() + sizeof(api::MsgHeader))->n = p.n;
    auto msg = p.b->finish();
    ssize_t n = ::send(clients_[ci].fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    (n < 0 ? upcall_lost_ : upcall_delivered_) += p.n;
    p.b.reset();
    p.n = 0;
  };
  size_t taken = dp_.drain_upcalls(4096, [&](const UpcallSlot& s) {
    size_t ti = clients_.size();
    if (s.kind == static_cast<uint8_t>(api::UpcallKind::kAction)) {
      for (size_t i = 0; i < clients_.size(); ++i)
        if (clients_[i].subscribed && clients_[i].pid == s.pid) ti = i;
    }
    if (ti == clients_.size() && !miss_subs.empty()) {
      // Misses of one flow go to the same handler (so it sees them in order).
      uint32_t h = flow::hash_key(s.key);
      ti = miss_subs[h % miss_subs.size()];
    }
    if (ti == clients_.size()) {
      ++upcall_lost_;
      return;
    }
    const rte_mbuf* m = s.mbuf;
    uint32_t len = rte_pktmbuf_pkt_len(m);
    if (len > api::kMaxPacket) len = api::kMaxPacket;
    upcall_pkt_.resize(len);
    const auto* d = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, upcall_pkt_.data()));
    api::UpcallMsg um{};
    um.kind = s.kind;
    um.pid = s.pid;
    um.packet_len = len;
    um.userdata_len = s.userdata_len;
    um.key = s.key;
    std::span<const uint8_t> ud{s.userdata, s.userdata_len}, pkt{d, len};
    if (!clients_[ti].batch) {
      MessageBuilder b(MsgType::kUpcall, 0);
      b.append(um);
      b.append_padded(ud);
      b.append_padded(pkt);
      auto msg = b.finish();
      ssize_t n = ::send(clients_[ti].fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ++(n < 0 ? upcall_lost_ : upcall_delivered_);
      return;
    }
    size_t need = sizeof um + api::pad8(s.userdata_len) + api::pad8(len);
    if (pend[ti].b && pend[ti].b->size() + need > api::kMaxMessage) flush(ti);
    Pending& p = pend[ti];
    if (!p.b) {
      p.b.emplace(MsgType::kUpcallBatch, 0);
      p.b->append(api::UpcallBatchHeader{});
    }
    p.b->append(um);
    p.b->append_padded(ud);
    p.b->append_padded(pkt);
    ++p.n;
  });
  for (size_t i = 0; i < pend.size(); ++i) flush(i);
  return taken;
}

std::expected<uint32_t, api::Error> Server::resolve_port(uint32_t port_no,
                                                         const char (&name)[api::kNameLen]) {
  if (port_no != api::kPortAny) return port_no;
  std::string_view n;
  if (!api::get_fixed(name, sizeof name, n))
    return std::unexpected(api::Error{EINVAL, "port name is not NUL-terminated"});
  return dp_.port_by_name(std::string(n));
}

bool Server::handle(ClientConn& c, std::span<const uint8_t> msg) {
  ++ctr_.requests;
  MessageReader r(msg);
  api::HeaderError he = r.check_header();
  if (he == api::HeaderError::kShort || he == api::HeaderError::kBadMagic) {
    ++ctr_.closed_protocol;  // not our protocol at all: nothing sensible to reply to
    return false;
  }
  const api::MsgHeader& h = r.header();
  auto fail = [&](int code, const std::string& text) {
    ++ctr_.bad_requests;
    send_reply(c, error_reply(h, code, text));
    return true;
  };
  if (he != api::HeaderError::kOk)
    return fail(he == api::HeaderError::kBadVersion ? EPROTONOSUPPORT : EINVAL,
                std::string(api::header_error_name(he)));
  if (h.flags & api::kFlagReply) return fail(EINVAL, "a request must not carry the reply flag");
  if (h.error != 0) return fail(EINVAL, "a request must have error = 0");

  const MsgType type = r.type();
  MessageBuilder out(type, h.xid, api::kFlagReply);
  auto need = [&](auto& s) { return r.read(s); };
  auto trailing = [&]() { return r.remaining() != 0; };
  const char* kShortMsg = "message too short for its type";
  const char* kTrailing = "unexpected bytes after the message";

  switch (type) {
    case MsgType::kInfo: {
      if (trailing()) return fail(EINVAL, kTrailing);
      api::InfoReply info{};
      api::set_fixed(info.version, sizeof info.version, "gldp 0.1.0");
      info.api_version = api::kVersion;
      info.n_pmds = static_cast<uint32_t>(dp_.options().pmd_lcores.size());
      info.n_ports = static_cast<uint32_t>(dp_.n_ports());
      info.max_ports = kMaxPorts;
      info.n_flows = dp_.n_flows();
      info.features = api::kFeatureRecirc | api::kFeatureClone | api::kFeatureSample |
                      api::kFeatureHash | api::kFeatureSetMasked | api::kFeatureUfid |
                      api::kFeatureEsp | api::kFeatureConntrack;
      std::string cores;
      for (unsigned lc : dp_.options().pmd_lcores)
        cores += (cores.empty() ? "" : ",") + std::to_string(lc);
      api::set_fixed(info.pmd_cores, sizeof info.pmd_cores, cores.substr(0, 63));
      info.boot_id = dp_.boot_id();
      out.append(info);
      break;
    }
    case MsgType::kPortAdd: {
      api::PortAddRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (trailing()) return fail(EINVAL, kTrailing);
      std::string_view name, devargs;
      if (!api::get_fixed(req.name, sizeof req.name, name))
        return fail(EINVAL, "port name is not NUL-terminated");
      if (!api::get_fixed(req.devargs, sizeof req.devargs, devargs))
        return fail(EINVAL, "devargs are not NUL-terminated");
      PortConfig cfg;
      cfg.name = name;
      cfg.devargs = devargs;
      cfg.port_no = req.port_no;
      cfg.n_rxq = req.n_rxq == 0 ? 1 : req.n_rxq;
      cfg.mtu = req.mtu;
      auto res = dp_.port_add(cfg);
      if (!res) return fail(res.error().code, res.error().message);
      out.append(*res);
      break;
    }
    case MsgType::kPortDel:
    case MsgType::kPortGet: {
      api::PortDelRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (trailing()) return fail(EINVAL, kTrailing);
      auto port = resolve_port(req.port_no, req.name);
      if (!port) return fail(port.error().code, port.error().message);
      const uint32_t no = *port;
      if (type == MsgType::kPortDel) {
        auto res = dp_.port_del(no);
        if (!res) return fail(res.error().code, res.error().message);
      } else {
        auto res = dp_.port_info(no);
        if (!res) return fail(res.error().code, res.error().message);
        out.append(*res);
      }
      break;
    }
    case MsgType::kPortSet: {
      api::PortSetRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (trailing()) return fail(EINVAL, kTrailing);
      if (req.flags == 0 || (req.flags & ~api::kPortSetMtu) != 0)
        return fail(EINVAL, "port set: unknown or no flags");
      if (req.pad[0] || req.pad[1] || req.pad[2]) return fail(EINVAL, "port set: padding not zero");
      auto port = resolve_port(req.port_no, req.name);
      if (!port) return fail(port.error().code, port.error().message);
      auto res = dp_.port_set_mtu(*port, req.mtu);
      if (!res) return fail(res.error().code, res.error().message);
      out.append(*res);
      break;
    }
    case MsgType::kPortList: {
      if (trailing()) return fail(EINVAL, kTrailing);
      auto ports = dp_.port_list();
      out.append(api::PortListReply{static_cast<uint32_t>(ports.size()), 0});
      for (auto& p : ports) out.append(p);
      break;
    }
    case MsgType::kFlowPut: {
      api::FlowPutRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (req.n == 0 || req.n > kMaxBatch)
        return fail(EINVAL, batch_count_error("flow put", req.n));
      // Decode the whole batch before changing anything: a malformed message changes nothing.
      struct Item {
        api::FlowPutEntry e;
        std::span<const uint8_t> actions;
      };
      std::vector<Item> items(req.n);
      for (auto& it : items) {
        if (!r.read(it.e)) return fail(EINVAL, "flow put batch shorter than its count");
        if (it.e.actions_len > api::kMaxActions)
          return fail(EINVAL, "actions of " + std::to_string(it.e.actions_len) +
                                  " bytes exceed the 4096-byte limit");
        if (!r.read_padded(it.e.actions_len, it.actions))
          return fail(EINVAL, "flow put entry actions run past the message");
      }
      if (trailing()) return fail(EINVAL, kTrailing);
      out.append(api::BatchReply{req.n, 0});
      for (auto& it : items) out.append(dp_.flow_put(it.e, it.actions));
      break;
    }
    case MsgType::kFlowDel: {
      api::FlowDelRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (req.n == 0 || req.n > kMaxBatch || r.remaining() != req.n * sizeof(api::Ufid))
        return fail(EINVAL, "flow del count does not match the message");
      out.append(api::BatchReply{req.n, 0});
      for (uint32_t i = 0; i < req.n; ++i) {
        api::Ufid u;
        r.read(u);
        out.append(dp_.flow_del(u));
      }
      break;
    }
    case MsgType::kFlowGet: {
      api::FlowGetRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (trailing()) return fail(EINVAL, kTrailing);
      const Flow* f = dp_.flow_find(req.ufid);
      if (f == nullptr) return fail(ENOENT, "no such flow");
      api::FlowEntry e{};
      e.ufid = f->ufid;
      e.key = f->key;
      e.mask = f->mask;
      e.stats = dp_.flow_stats(*f);
      const ActionsBlob* a = f->actions.load(std::memory_order_acquire);
      e.actions_len = a->len;
      out.append(e);
      out.append_padded(a->span());
      break;
    }
    case MsgType::kFlowDump: {
      api::FlowDumpRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (trailing()) return fail(EINVAL, kTrailing);
      if (req.flags & ~api::kDumpNoActions) return fail(EINVAL, "unknown dump flags");
      size_t hdr_at = out.size();
      out.append(api::FlowDumpReply{});
      uint32_t n = 0;
      const bool acts = (req.flags & api::kDumpNoActions) == 0;
      uint64_t next = dp_.flow_dump(req.cursor, [&](const Flow& f) {
        const ActionsBlob* a = f.actions.load(std::memory_order_acquire);
        uint32_t alen = acts ? a->len : 0;
        if ((req.max_entries != 0 && n >= req.max_entries) ||
            out.size() + sizeof(api::FlowEntry) + api::pad8(alen) > api::kMaxMessage)
          return false;
        api::FlowEntry e{};
        e.ufid = f.ufid;
        e.key = f.key;
        e.mask = f.mask;
        e.stats = dp_.flow_stats(f);
        e.actions_len = alen;
        out.append(e);
        if (acts) out.append_padded(a->span());
        ++n;
        return true;
      });
      auto* dr = reinterpret_cast<api::FlowDumpReply*>(out.data() + hdr_at);
      dr->n = n;
      dr->next_cursor = next;
      break;
    }
    case MsgType::kFlowFlush:
      if (trailing()) return fail(EINVAL, kTrailing);
      dp_.flow_flush();
      break;
    case MsgType::kExecute: {
      api::ExecuteRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (req.actions_len > api::kMaxActions) return fail(EINVAL, "actions exceed 4096 bytes");
      if (req.packet_len > api::kMaxPacket) return fail(EMSGSIZE, "packet exceeds 9216 bytes");
      std::span<const uint8_t> acts, pkt;
      if (!r.read_padded(req.actions_len, acts) || !r.read_padded(req.packet_len, pkt))
        return fail(EINVAL, "execute lengths run past the message");
      if (trailing()) return fail(EINVAL, kTrailing);
      auto res = dp_.execute(req.metadata, acts, pkt);
      if (!res) return fail(res.error().code, res.error().message);
      break;
    }
    case MsgType::kExecuteBatch: {
      api::ExecuteBatchRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (req.n == 0 || req.n > kMaxBatch) return fail(EINVAL, batch_count_error("execute", req.n));
      // Decode the whole batch first: a malformed message executes nothing.
      struct Item {
        api::ExecuteRequest e;
        std::span<const uint8_t> actions, packet;
      };
      std::vector<Item> items(req.n);
      for (auto& it : items) {
        if (!r.read(it.e)) return fail(EINVAL, "execute batch shorter than its count");
        if (it.e.actions_len > api::kMaxActions) return fail(EINVAL, "actions exceed 4096 bytes");
        if (!r.read_padded(it.e.actions_len, it.actions) ||
            !r.read_padded(it.e.packet_len, it.packet))
          return fail(EINVAL, "execute batch lengths run past the message");
      }
      if (trailing()) return fail(EINVAL, kTrailing);
      out.append(api::BatchReply{req.n, 0});
      for (auto& it : items) {
        api::EntryResult er{};
        if (it.e.packet_len > api::kMaxPacket) {
          er.error = EMSGSIZE;
          std::snprintf(er.message, sizeof er.message, "packet exceeds 9216 bytes");
        } else if (auto res = dp_.execute(it.e.metadata, it.actions, it.packet); !res) {
          er.error = res.error().code;
          std::snprintf(er.message, sizeof er.message, "%s", res.error().message.c_str());
        }
        out.append(er);
      }
      break;
    }
    case MsgType::kUpcallSubscribe: {
      api::UpcallSubscribeRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (trailing()) return fail(EINVAL, kTrailing);
      if (req.flags & ~(api::kSubscribeMiss | api::kSubscribeBatch))
        return fail(EINVAL, "unknown subscribe flags");
      c.subscribed = true;
      c.pid = req.pid;
      c.misses = (req.flags & api::kSubscribeMiss) != 0;
      c.batch = (req.flags & api::kSubscribeBatch) != 0;
      break;
    }
    case MsgType::kStats: {
      if (trailing()) return fail(EINVAL, kTrailing);
      api::StatsReply t{};
      std::vector<api::PmdStats> pmds;
      std::vector<api::DropCounter> drops;
      dp_.fill_stats(t, pmds, drops);
      // Upcalls lost on the control side (no subscriber, client socket full) are drops.
      for (auto& d : drops)
        if (std::string_view(d.name) == drop_name(Drop::kUpcallUndelivered))
          d.count += upcall_lost_;
      // The API's own: clients closed for leaving too many replies unread.
      api::DropCounter backlog{};
      api::set_fixed(backlog.name, sizeof backlog.name, "api_closed_backlog");
      backlog.count = ctr_.closed_backlog;
      drops.push_back(backlog);
      t.n_drops = static_cast<uint32_t>(drops.size());
      t.upcalls_delivered = upcall_delivered_;
      t.upcalls_lost = upcall_lost_;
      for (auto& p : pmds) t.upcalls_lost += p.upcalls_lost;
      out.append(t);
      for (auto& p : pmds) out.append(p);
      for (auto& d : drops) out.append(d);
      break;
    }
    case MsgType::kStatsClear:
      if (trailing()) return fail(EINVAL, kTrailing);
      dp_.clear_stats();
      upcall_delivered_ = upcall_lost_ = 0;
      break;
    case MsgType::kSetConfig: {
      api::SetConfigRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (trailing()) return fail(EINVAL, kTrailing);
      std::string_view k, v;
      if (!api::get_fixed(req.key, sizeof req.key, k) ||
          !api::get_fixed(req.value, sizeof req.value, v))
        return fail(EINVAL, "config key/value not NUL-terminated");
      auto res = dp_.set_config(std::string(k), std::string(v));
      if (!res) return fail(res.error().code, res.error().message);
      break;
    }
    case MsgType::kSaAdd: {
      api::SaAddRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (trailing()) return fail(EINVAL, kTrailing);
      auto res = dp_.sa_add(req);
      sodium_memzero(&req, sizeof req);  // the SA holds its own copy
      if (!res) return fail(res.error().code, res.error().message);
      break;
    }
    case MsgType::kSaDel: {
      api::SaDelRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (trailing()) return fail(EINVAL, kTrailing);
      if (req.dir > 1) return fail(EINVAL, "direction must be out (0) or in (1)");
      if (req.pad[0] || req.pad[1] || req.pad[2] || req.pad2)
        return fail(EINVAL, "padding must be zero");
      if (req.grace_ms > api::kSaMaxGraceMs)
        return fail(EINVAL, "grace of " + std::to_string(req.grace_ms) +
                                " ms exceeds the limit of one hour");
      auto res = dp_.sa_del(req.spi, static_cast<api::SaDir>(req.dir), req.grace_ms);
      if (!res) return fail(res.error().code, res.error().message);
      break;
    }
    case MsgType::kSaDump: {
      api::SaDumpRequest req;
      if (!need(req)) return fail(EINVAL, kShortMsg);
      if (trailing()) return fail(EINVAL, kTrailing);
      if (req.flags & ~api::kSaDumpKeys) return fail(EINVAL, "unknown sa dump flags");
      size_t hdr_at = out.size();
      out.append(api::SaDumpReply{});
      uint32_t n = 0;
      uint64_t next = dp_.sa_dump(req.cursor, (req.flags & api::kSaDumpKeys) != 0,
                                  [&](const api::SaInfo& info) {
                                    if (out.size() + sizeof info > api::kMaxMessage) return false;
                                    out.append(info);
                                    ++n;
                                    return true;
                                  });
      auto* dr = reinterpret_cast<api::SaDumpReply*>(out.data() + hdr_at);
      dr->n = n;
      dr->next_cursor = next;
      auto reply = out.finish();
      send_reply(c, reply);
      // Key material (when asked for) does not stay in our buffer.
      sodium_memzero(const_cast<uint8_t*>(reply.data()), reply.size());
      return true;
    }
    case MsgType::kCtDump:
    case MsgType::kCtFlush:
    case MsgType::kCtGetConfig:
    case MsgType::kCtSetMaxConns:
    case MsgType::kCtSetTcpSeqCheck:
    case MsgType::kCtSetLimits:
    case MsgType::kCtDelLimits:
    case MsgType::kCtGetLimits:
    case MsgType::kCtStats:
    case MsgType::kCtSetTimeoutPolicy:
    case MsgType::kCtGetTimeoutPolicy:
    case MsgType::kCtDelTimeoutPolicy:
    case MsgType::kCtDumpTimeoutPolicies:
    case MsgType::kIpfSetEnabled:
    case MsgType::kIpfSetMinFrag:
    case MsgType::kIpfSetMaxNfrags:
    case MsgType::kIpfGetStatus:
    case MsgType::kIpfDump:
      if (auto res = handle_ct(type, r, out); !res)
        return fail(res.error().code, res.error().message);
      break;
    case MsgType::kFwCtDump:
    case MsgType::kFwCtFlush:
      if (auto res = handle_ct(type == MsgType::kFwCtDump ? MsgType::kCtDump : MsgType::kCtFlush, r,
                               out, true);
          !res)
        return fail(res.error().code, res.error().message);
      break;
    case MsgType::kFwEvents:
    case MsgType::kFwRuleStats:
    case MsgType::kFwTrace:
    case MsgType::kFwQuarantine:
    case MsgType::kFwHosts:
    case MsgType::kFwBegin:
    case MsgType::kFwIpcache:
    case MsgType::kFwPort:
    case MsgType::kFwRules:
    case MsgType::kFwCommit:
    case MsgType::kFwClear:
    case MsgType::kFwStatus:
      if (auto res = handle_fw(c, type, r, out); !res) {
        // A refused part of a transaction ends it: what was staged is gone, and a commit
        // that follows is refused (outside a transaction), so a client that missed the
        // error cannot install half a version.
        if (c.fw != nullptr && type != MsgType::kFwEvents && type != MsgType::kFwRuleStats &&
            type != MsgType::kFwTrace && type != MsgType::kFwStatus) {
          c.fw.reset();
          return fail(res.error().code, res.error().message + " (the transaction is abandoned)");
        }
        return fail(res.error().code, res.error().message);
      }
      break;
    case MsgType::kUpcall:
    default:
      return fail(EOPNOTSUPP, "unknown request type " + std::to_string(h.type));
  }
  send_reply(c, out.finish());
  return true;
}

}  // namespace gl::dp

// ---- connection tracking ----------------------------------------------------------------

namespace gl::dp {

namespace {

static_assert(ct::kConnSnat == api::kCtEntrySnat && ct::kConnDnat == api::kCtEntryDnat &&
              ct::kConnAlgFtp == api::kCtEntryHelperFtp &&
              ct::kConnAlgTftp == api::kCtEntryHelperTftp &&
              ct::kConnRelated == api::kCtEntryRelated &&
              ct::kConnReplySeen == api::kCtEntryReplySeen);

constexpr uint8_t kIpprotoIcmp = 1, kIpprotoTcp = 6, kIpprotoUdp = 17, kIpprotoIcmp6 = 58,
                  kIpprotoSctp = 132, kIpprotoUdpLite = 136;

bool is_icmp(uint8_t proto) {
  return proto == kIpprotoIcmp || proto == kIpprotoIcmp6;
}
// Protocols whose connections the tracker keys by ports (conntrack.cpp l4_key: TCP and
// UDP; every other protocol by addresses alone, as OVS).
bool has_ports(uint8_t proto) {
  return proto == kIpprotoTcp || proto == kIpprotoUdp;
}

api::Error ct_error(int code, std::string text) {
  return api::Error{code, std::move(text)};
}

std::string zone_range_error(const std::string& what, uint32_t zone) {
  return what + " " + std::to_string(zone) + ": zone must be 0.." + std::to_string(api::kCtMaxZone);
}

// The tracker's key (conn_table.hpp: ICMP queries keep the identifier in sport and
// type << 8 | code in dport) as the API's tuple.
api::CtTuple tuple_to_wire(const ct::ConnKey& k) {
  api::CtTuple t{};
  std::memcpy(t.src, k.src, sizeof t.src);
  std::memcpy(t.dst, k.dst, sizeof t.dst);
  t.family = k.family;
  t.proto = k.proto;
  if (is_icmp(k.proto)) {
    t.icmp_id = k.sport;
    t.icmp_type = static_cast<uint8_t>(k.dport >> 8);
    t.icmp_code = static_cast<uint8_t>(k.dport & 0xff);
  } else {
    t.sport = k.sport;
    t.dport = k.dport;
  }
  return t;
}

api::CtEntry entry_to_wire(const ct::Entry& e) {
  api::CtEntry w{};
  w.orig = tuple_to_wire(e.orig);
  w.reply = tuple_to_wire(e.reply);
  for (int d = 0; d < 2; ++d) {
    w.packets[d] = e.packets[d];
    w.bytes[d] = e.bytes[d];
  }
  std::memcpy(w.label, e.label, sizeof w.label);
  w.mark = e.mark;
  w.timeout_s = e.timeout_s;
  w.zone = e.orig.zone;
  if (e.orig.proto == kIpprotoTcp) {
    w.tcp_state_orig = e.tcp_state_orig;
    w.tcp_state_reply = e.tcp_state_reply;
  }
  // The wire's flags (the tracker's own bits above them stay inside).
  w.flags = e.flags & (api::kCtEntrySnat | api::kCtEntryDnat | api::kCtEntryHelperFtp |
                       api::kCtEntryHelperTftp | api::kCtEntryRelated | api::kCtEntryReplySeen);
  return w;
}

// "udp,src=10.0.0.1,dst=10.0.0.2,sport=5000,dport=53" (OVS's dump syntax) for messages.
std::string tuple_text(const api::CtTuple& t) {
  char src[INET6_ADDRSTRLEN] = "?", dst[INET6_ADDRSTRLEN] = "?";
  const int af = t.family == 6 ? AF_INET6 : AF_INET;
  inet_ntop(af, t.src, src, sizeof src);
  inet_ntop(af, t.dst, dst, sizeof dst);
  const char* names[] = {"icmp", "tcp", "udp", "icmpv6", "sctp", "udplite"};
  const uint8_t protos[] = {kIpprotoIcmp,  kIpprotoTcp,  kIpprotoUdp,
                            kIpprotoIcmp6, kIpprotoSctp, kIpprotoUdpLite};
  std::string s = "proto " + std::to_string(t.proto);
  for (size_t i = 0; i < std::size(protos); ++i)
    if (t.proto == protos[i]) s = names[i];
  s += std::string(",src=") + src + ",dst=" + dst;
  if (is_icmp(t.proto))
    s += ",id=" + std::to_string(ntohs(t.icmp_id)) + ",type=" + std::to_string(t.icmp_type) +
         ",code=" + std::to_string(t.icmp_code);
  else if (has_ports(t.proto))
    s += ",sport=" + std::to_string(ntohs(t.sport)) + ",dport=" + std::to_string(ntohs(t.dport));
  return s;
}

// Checks a tuple field by field and makes the tracker's key of it in `zone`.
std::expected<ct::ConnKey, std::string> tuple_from_wire(const api::CtTuple& t, uint16_t zone) {
  if (t.family != 4 && t.family != 6)
    return std::unexpected("tuple: family " + std::to_string(t.family) + " (want 4 or 6)");
  for (uint8_t b : t.pad)
    if (b != 0) return std::unexpected("tuple: padding must be zero");
  if (t.family == 4) {
    for (size_t i = 4; i < 16; ++i)
      if (t.src[i] != 0 || t.dst[i] != 0)
        return std::unexpected(
            "tuple: an IPv4 address takes the first 4 bytes of src/dst, the rest must be zero");
  }
  if ((t.proto == kIpprotoIcmp && t.family != 4) || (t.proto == kIpprotoIcmp6 && t.family != 6))
    return std::unexpected("tuple: protocol " + std::to_string(t.proto) + " needs family " +
                           (t.proto == kIpprotoIcmp ? "4" : "6"));
  if (is_icmp(t.proto)) {
    if (t.sport != 0 || t.dport != 0)
      return std::unexpected(
          "tuple: an ICMP tuple has icmp_id, icmp_type and icmp_code; sport and dport must be 0");
  } else {
    if (t.icmp_id != 0 || t.icmp_type != 0 || t.icmp_code != 0)
      return std::unexpected("tuple: icmp_id/icmp_type/icmp_code are for ICMP; protocol " +
                             std::to_string(t.proto) + " must leave them 0");
    if (!has_ports(t.proto) && (t.sport != 0 || t.dport != 0))
      return std::unexpected("tuple: protocol " + std::to_string(t.proto) +
                             " is tracked without ports; sport and dport must be 0");
  }
  ct::ConnKey k{};
  std::memcpy(k.src, t.src, sizeof k.src);
  std::memcpy(k.dst, t.dst, sizeof k.dst);
  k.family = t.family;
  k.proto = t.proto;
  k.zone = zone;
  if (is_icmp(t.proto)) {
    k.sport = t.icmp_id;
    k.dport = static_cast<uint16_t>(t.icmp_type << 8 | t.icmp_code);
  } else {
    k.sport = t.sport;
    k.dport = t.dport;
  }
  return k;
}

bool all_zero(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i)
    if (b[i] != 0) return false;
  return true;
}

std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%x", v);
  return b;
}

// Reads n zones (uint32_t each, padded to 8) and checks their range.
std::expected<std::vector<uint16_t>, std::string> read_zones(MessageReader& r, uint32_t n,
                                                             const char* what) {
  std::span<const uint8_t> raw;
  if (!r.read_padded(n * 4, raw))
    return std::unexpected(std::string(what) + ": shorter than its count of " + std::to_string(n) +
                           " zones");
  std::vector<uint16_t> zones(n);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t z;
    std::memcpy(&z, raw.data() + i * 4, 4);
    if (z > api::kCtMaxZone)
      return std::unexpected(zone_range_error(std::string(what) + ": zone", z));
    zones[i] = static_cast<uint16_t>(z);
  }
  return zones;
}

// The API's timeout classes and ipf bounds are the tracker's.
static_assert(api::kCtTpCount == ct::kTimeoutCount && api::kCtTpCount <= api::kCtTpSlots);
static_assert(api::kCtMaxTimeoutPolicies == ct::kMaxTimeoutPolicies);
static_assert(api::kIpfMinFragLowerBound == ct::kIpfMinFragLowerBound &&
              api::kIpfMaxNfragsUpperBound == ct::kIpfMaxNfragsUpperBound);
constexpr bool same_tp_names() {
  for (size_t i = 0; i < ct::kTimeoutCount; ++i)
    if (api::kCtTpNames[i] != ct::kTimeoutNames[i]) return false;
  return true;
}
static_assert(same_tp_names(), "kCtTpNames must list the tracker's timeout classes in order");
// ipf: IpfCounter's per-reason arrays come from IpfFamilyStatus.
static_assert(ct::kIpfDropCount <= 64 && ct::kIpfPassCount <= 64);

api::CtTimeoutPolicy tp_to_wire(uint32_t id, const std::array<uint32_t, ct::kTimeoutCount>& sec) {
  api::CtTimeoutPolicy w{};
  w.id = id;
  w.present = api::kCtTpAllClasses;
  for (size_t i = 0; i < ct::kTimeoutCount; ++i) w.sec[i] = sec[i];
  return w;
}

api::IpfFamilyStatusWire ipf_family_to_wire(const ct::IpfFamilyStatus& f) {
  api::IpfFamilyStatusWire w{};
  w.enabled = f.enabled ? 1 : 0;
  w.min_frag_size = f.min_frag_size;
  w.accepted = f.accepted;
  w.completed_sent = f.completed_sent;
  w.expired_sent = f.expired_sent;
  w.too_small = f.too_small;
  w.overlap = f.overlap;
  w.purged = f.purged;
  return w;
}

// "4" / "6" → the tracker's family; an error naming the field otherwise.
std::expected<ct::IpfFamily, std::string> ipf_family(uint8_t family, const char* what) {
  if (family == 4) return ct::IpfFamily::kV4;
  if (family == 6) return ct::IpfFamily::kV6;
  return std::unexpected(std::string(what) + ": family " + std::to_string(family) +
                         " (want 4 or 6)");
}

}  // namespace

std::expected<void, api::Error> Server::handle_ct(MsgType type, MessageReader& r,
                                                  MessageBuilder& out, bool fw) {
  const char* kShortMsg = "message too short for its type";
  const char* kTrailing = "unexpected bytes after the message";
  auto bad = [](std::string text) { return std::unexpected(ct_error(EINVAL, std::move(text))); };
  switch (type) {
    case MsgType::kCtDump: {
      api::CtDumpRequest req;
      if (!r.read(req)) return bad(kShortMsg);
      if (r.remaining() != 0) return bad(kTrailing);
      if (req.flags & ~api::kCtDumpZone) return bad("unknown ct dump flags " + hex32(req.flags));
      if (req.pad != 0) return bad("ct dump: padding must be zero");
      const bool by_zone = (req.flags & api::kCtDumpZone) != 0;
      if (by_zone && req.zone > api::kCtMaxZone)
        return bad(zone_range_error("ct dump: zone", req.zone));
      if (!by_zone && req.zone != 0)
        return bad("ct dump: zone " + std::to_string(req.zone) + " given without the zone flag");
      if (req.cursor > UINT32_MAX)
        return bad("ct dump: cursor " + std::to_string(req.cursor) + " is not one gldp returned");
      size_t hdr_at = out.size();
      out.append(api::CtDumpReply{});
      uint32_t n = 0;
      const uint64_t now = dp_.ct_now_ms(rte_rdtsc());
      const fw::FwTables* fwt = fw ? dp_.firewall() : nullptr;  // this thread publishes it
      const uint32_t next = dp_.with_tracker(fw, [&](ct::Conntrack& ct) {
        return ct.dump(
            static_cast<uint32_t>(req.cursor), by_zone ? static_cast<int>(req.zone) : -1, now,
            [&](const ct::Entry& e) {
              if ((req.max_entries != 0 && n >= req.max_entries) ||
                  out.size() + sizeof(api::CtEntry) > api::kMaxMessage)
                return false;
              api::CtEntry w = entry_to_wire(e);
              if (const fw::PortFirewall* pf = fwt != nullptr ? fwt->port(e.orig.zone) : nullptr;
                  pf != nullptr && fw::ConnVerdict::is_ours(e.label))
                w.fw_current = fw::ConnVerdict::from_label(e.label).generation ==
                                       static_cast<uint32_t>(pf->generation)
                                   ? 1
                                   : 0;
              out.append(w);
              ++n;
              return true;
            });
      });
      auto* dr = reinterpret_cast<api::CtDumpReply*>(out.data() + hdr_at);
      dr->n = n;
      dr->next_cursor = next;
      return {};
    }
    case MsgType::kCtFlush: {
      api::CtFlushRequest req;
      if (!r.read(req)) return bad(kShortMsg);
      if (r.remaining() != 0) return bad(kTrailing);
      if (req.flags & ~(api::kCtFlushZone | api::kCtFlushTuple))
        return bad("unknown ct flush flags " + hex32(req.flags));
      const bool by_zone = (req.flags & api::kCtFlushZone) != 0;
      if (by_zone && req.zone > api::kCtMaxZone)
        return bad(zone_range_error("ct flush: zone", req.zone));
      if (!by_zone && req.zone != 0)
        return bad("ct flush: zone " + std::to_string(req.zone) + " given without the zone flag");
      uint32_t n = 0;
      if (req.flags & api::kCtFlushTuple) {
        auto k = tuple_from_wire(req.tuple, static_cast<uint16_t>(req.zone));
        if (!k) return bad("ct flush: " + k.error());
        const bool found =
            dp_.with_tracker(fw, [&](ct::Conntrack& ct) { return ct.flush_tuple(*k); });
        if (!found)
          return std::unexpected(ct_error(ENOENT, "ct flush: no connection " +
                                                      tuple_text(req.tuple) + " in zone " +
                                                      std::to_string(req.zone)));
        n = 1;
      } else {
        if (!all_zero(&req.tuple, sizeof req.tuple))
          return bad("ct flush: a tuple given without the tuple flag");
        n = dp_.with_tracker(fw, [&](ct::Conntrack& ct) {
          return ct.flush(by_zone ? static_cast<int>(req.zone) : -1);
        });
      }
      out.append(api::CtFlushReply{n, 0});
      return {};
    }
    case MsgType::kCtGetConfig: {
      if (r.remaining() != 0) return bad(kTrailing);
      api::CtConfigReply rep{};
      dp_.with_conntrack([&](ct::Conntrack& ct) {
        rep.n_conns = ct.n_conns();
        rep.max_conns = ct.max_conns();
        rep.capacity = ct.capacity();
        rep.default_zone_limit = ct.default_zone_limit();
        rep.tcp_seq_check = ct.tcp_seq_check() ? 1 : 0;
      });
      out.append(rep);
      return {};
    }
    case MsgType::kCtSetMaxConns: {
      api::CtSetMaxConnsRequest req;
      if (!r.read(req)) return bad(kShortMsg);
      if (r.remaining() != 0) return bad(kTrailing);
      if (req.pad != 0) return bad("ct set maxconns: padding must be zero");
      auto res =
          dp_.with_conntrack([&](ct::Conntrack& ct) { return ct.set_max_conns(req.max_conns); });
      if (!res) return bad(res.error());
      return {};
    }
    case MsgType::kCtSetTcpSeqCheck: {
      api::CtSetTcpSeqCheckRequest req;
      if (!r.read(req)) return bad(kShortMsg);
      if (r.remaining() != 0) return bad(kTrailing);
      if (req.enabled > 1)
        return bad("ct tcp sequence check: enabled must be 0 or 1, not " +
                   std::to_string(req.enabled));
      if (!all_zero(req.pad, sizeof req.pad))
        return bad("ct tcp sequence check: padding must be zero");
      dp_.with_conntrack([&](ct::Conntrack& ct) { ct.set_tcp_seq_check(req.enabled != 0); });
      return {};
    }
    case MsgType::kCtSetLimits: {
      api::CtSetLimitsRequest req;
      if (!r.read(req)) return bad(kShortMsg);
      if (req.flags & ~api::kCtLimitsDefault)
        return bad("unknown ct set limits flags " + hex32(req.flags));
      if (!(req.flags & api::kCtLimitsDefault) && req.default_limit != 0)
        return bad("ct set limits: default limit " + std::to_string(req.default_limit) +
                   " given without the default flag");
      if (req.pad != 0) return bad("ct set limits: padding must be zero");
      if (req.n > api::kCtMaxZonesPerMsg)
        return bad("ct set limits: " + std::to_string(req.n) + " zones (0.." +
                   std::to_string(api::kCtMaxZonesPerMsg) + " per message)");
      if (req.n == 0 && !(req.flags & api::kCtLimitsDefault))
        return bad("ct set limits: neither a default limit nor zones");
      // Check every entry before changing anything.
      std::vector<api::CtZoneLimit> zl(req.n);
      for (auto& z : zl) {
        if (!r.read(z))
          return bad("ct set limits: shorter than its count of " + std::to_string(req.n) +
                     " zones");
        if (z.zone > api::kCtMaxZone) return bad(zone_range_error("zone limit for zone", z.zone));
        if (z.count != 0 || z.pad != 0)
          return bad("zone limit for zone " + std::to_string(z.zone) +
                     ": count and padding must be 0 in a set request");
      }
      if (r.remaining() != 0) return bad(kTrailing);
      dp_.with_conntrack([&](ct::Conntrack& ct) {
        if (req.flags & api::kCtLimitsDefault) ct.set_default_zone_limit(req.default_limit);
        for (const auto& z : zl) ct.set_zone_limit(static_cast<uint16_t>(z.zone), z.limit);
      });
      return {};
    }
    case MsgType::kCtDelLimits:
    case MsgType::kCtGetLimits: {
      const bool del = type == MsgType::kCtDelLimits;
      const char* what = del ? "ct del limits" : "ct get limits";
      api::CtZonesRequest req;
      if (!r.read(req)) return bad(kShortMsg);
      if (req.n > api::kCtMaxZonesPerMsg || (del && req.n == 0))
        return bad(std::string(what) + ": " + std::to_string(req.n) + " zones (" +
                   (del ? "1.." : "0..") + std::to_string(api::kCtMaxZonesPerMsg) +
                   " per message)");
      if ((del || req.n != 0) && req.cursor != 0)
        return bad(std::string(what) + ": a cursor is only for listing every zone (n = 0)");
      if (req.cursor > api::kCtMaxZone + 1)
        return bad(std::string(what) + ": cursor " + std::to_string(req.cursor) +
                   " is past the last zone");
      auto zones = read_zones(r, req.n, what);
      if (!zones) return bad(zones.error());
      if (r.remaining() != 0) return bad(kTrailing);
      if (del) {
        dp_.with_conntrack([&](ct::Conntrack& ct) {
          for (uint16_t z : *zones) ct.del_zone_limit(z);
        });
        return {};
      }
      size_t hdr_at = out.size();
      out.append(api::CtGetLimitsReply{});
      uint32_t n = 0, next = 0, dflt = 0;
      dp_.with_conntrack([&](ct::Conntrack& ct) {
        dflt = ct.default_zone_limit();
        auto put = [&](uint16_t z) {
          out.append(api::CtZoneLimit{z, ct.zone_limit(z), ct.zone_count(z), 0});
          ++n;
        };
        if (!zones->empty()) {
          for (uint16_t z : *zones) put(z);
          return;
        }
        for (uint32_t z = req.cursor; z <= api::kCtMaxZone; ++z) {
          if (!ct.zone_has_own_limit(static_cast<uint16_t>(z))) continue;
          if (n == api::kCtMaxZonesPerMsg) {
            next = z;
            return;
          }
          put(static_cast<uint16_t>(z));
        }
      });
      auto* gr = reinterpret_cast<api::CtGetLimitsReply*>(out.data() + hdr_at);
      gr->default_limit = dflt;
      gr->n = n;
      gr->next_cursor = next;
      return {};
    }
    case MsgType::kCtStats: {
      api::CtStatsRequest req;
      if (!r.read(req)) return bad(kShortMsg);
      if (r.remaining() != 0) return bad(kTrailing);
      if (req.flags & ~api::kCtStatsClear) return bad("unknown ct stats flags " + hex32(req.flags));
      if (req.pad != 0) return bad("ct stats: padding must be zero");
      const ct::Stats s = dp_.with_conntrack([&](ct::Conntrack& ct) {
        ct::Stats st = ct.stats();
        if (req.flags & api::kCtStatsClear) ct.clear_stats();
        return st;
      });
      api::CtStatsReply rep{};
      rep.packets = s.packets;
      rep.found = s.found;
      rep.created = s.created;
      rep.expired = s.expired;
      rep.limit_global = s.limit_global;
      rep.limit_zone = s.limit_zone;
      rep.table_full = s.table_full;
      rep.nat_exhausted = s.nat_exhausted;
      rep.n_conns = s.n_conns;
      rep.max_conns = s.max_conns;
      rep.capacity = s.capacity;
      rep.pending_free = s.pending_free;
      rep.index_bytes = s.index_bytes;
      rep.index_grows = s.index_grows;
      rep.n_invalid = static_cast<uint32_t>(s.invalid.size());
      for (uint32_t p = 0; p < s.by_proto.size(); ++p) rep.n_protos += s.by_proto[p] != 0;
      out.append(rep);
      for (size_t i = 0; i < s.invalid.size(); ++i) {
        api::CtCounter c{};
        api::set_fixed(c.name, sizeof c.name, ct::kInvalidNames[i]);
        c.count = s.invalid[i];
        out.append(c);
      }
      for (uint32_t p = 0; p < s.by_proto.size(); ++p)
        if (s.by_proto[p] != 0) out.append(api::CtProtoCount{p, s.by_proto[p]});
      return {};
    }
    case MsgType::kCtSetTimeoutPolicy: {
      api::CtTimeoutPolicy req;
      if (!r.read(req)) return bad(kShortMsg);
      if (r.remaining() != 0) return bad(kTrailing);
      const std::string what = "timeout policy " + std::to_string(req.id);
      if (req.present & ~api::kCtTpAllClasses)
        return bad(what + ": unknown classes in the present mask " +
                   hex32(req.present & ~api::kCtTpAllClasses) + " (bits 0.." +
                   std::to_string(api::kCtTpCount - 1) + " are classes)");
      if (req.id >= api::kCtMaxTimeoutPolicies)
        return bad(what + ": id must be below " + std::to_string(api::kCtMaxTimeoutPolicies));
      std::array<uint32_t, ct::kTimeoutCount> sec{};
      for (size_t i = 0; i < api::kCtTpSlots; ++i) {
        const bool given = i < api::kCtTpCount && ((req.present >> i) & 1);
        if (!given && req.sec[i] != 0)
          return bad(what + ": " +
                     (i < api::kCtTpCount ? std::string(api::kCtTpNames[i])
                                          : "slot " + std::to_string(i)) +
                     " has " + std::to_string(req.sec[i]) + " s but is not in the present mask");
        if (given && req.sec[i] > api::kCtTpMaxSec)
          return bad(what + ": " + std::string(api::kCtTpNames[i]) + " " +
                     std::to_string(req.sec[i]) + " s is more than " +
                     std::to_string(api::kCtTpMaxSec) + " s");
        if (i < api::kCtTpCount) sec[i] = req.sec[i];
      }
      auto res = dp_.with_conntrack(
          [&](ct::Conntrack& ct) { return ct.set_timeout_policy(req.id, sec, req.present); });
      if (!res) return bad(res.error());
      return {};
    }
    case MsgType::kCtGetTimeoutPolicy:
    case MsgType::kCtDelTimeoutPolicy: {
      const bool del = type == MsgType::kCtDelTimeoutPolicy;
      api::CtTimeoutPolicyId req;
      if (!r.read(req)) return bad(kShortMsg);
      if (r.remaining() != 0) return bad(kTrailing);
      if (req.pad != 0)
        return bad(std::string(del ? "ct del" : "ct get") +
                   " timeout policy: padding must be zero");
      if (del && req.id == 0) return bad("the default timeout policy (0) cannot be deleted");
      std::array<uint32_t, ct::kTimeoutCount> sec{};
      const bool found = dp_.with_conntrack([&](ct::Conntrack& ct) {
        if (!ct.timeout_policy(req.id, sec)) return false;
        return !del || ct.del_timeout_policy(req.id).has_value();
      });
      if (!found)
        return std::unexpected(ct_error(ENOENT, "no timeout policy " + std::to_string(req.id)));
      if (!del) out.append(tp_to_wire(req.id, sec));
      return {};
    }
    case MsgType::kCtDumpTimeoutPolicies: {
      api::CtTpDumpRequest req;
      if (!r.read(req)) return bad(kShortMsg);
      if (r.remaining() != 0) return bad(kTrailing);
      if (req.pad != 0) return bad("ct dump timeout policies: padding must be zero");
      if (req.cursor >= api::kCtMaxTimeoutPolicies)
        return bad("ct dump timeout policies: cursor " + std::to_string(req.cursor) +
                   " is past the last policy id " + std::to_string(api::kCtMaxTimeoutPolicies - 1));
      size_t hdr_at = out.size();
      out.append(api::CtTpDumpReply{});
      uint32_t n = 0, next = 0;
      dp_.with_conntrack([&](ct::Conntrack& ct) {
        for (uint32_t id : ct.timeout_policy_ids()) {
          if (id < req.cursor) continue;
          if (n == api::kCtTpPerPage) {
            next = id;
            return;
          }
          std::array<uint32_t, ct::kTimeoutCount> sec{};
          if (!ct.timeout_policy(id, sec)) continue;  // deleted meanwhile: cannot happen here
          out.append(tp_to_wire(id, sec));
          ++n;
        }
      });
      auto* dr = reinterpret_cast<api::CtTpDumpReply*>(out.data() + hdr_at);
      dr->n = n;
      dr->next_cursor = next;
      return {};
    }
    case MsgType::kIpfSetEnabled: {
      api::IpfSetEnabledRequest req;
      if (!r.read(req)) return bad(kShortMsg);
      if (r.remaining() != 0) return bad(kTrailing);
      auto fam = ipf_family(req.family, "ipf set enabled");
      if (!fam) return bad(fam.error());
      if (req.enabled > 1)
        return bad("ipf set enabled: enabled must be 0 or 1, not " + std::to_string(req.enabled));
      if (!all_zero(req.pad, sizeof req.pad)) return bad("ipf set enabled: padding must be zero");
      auto res = dp_.conntrack().ipf().set_enabled(*fam, req.enabled != 0);
      if (!res) return bad(res.error());
      return {};
    }
    case MsgType::kIpfSetMinFrag: {
      api::IpfSetMinFragRequest req;
      if (!r.read(req)) return bad(kShortMsg);
      if (r.remaining() != 0) return bad(kTrailing);
      auto fam = ipf_family(req.family, "ipf set min frag");
      if (!fam) return bad(fam.error());
      if (!all_zero(req.pad, sizeof req.pad)) return bad("ipf set min frag: padding must be zero");
      auto res = dp_.conntrack().ipf().set_min_frag(*fam, req.min_frag);
      if (!res) return bad(res.error());
      return {};
    }
    case MsgType::kIpfSetMaxNfrags: {
      api::IpfSetMaxNfragsRequest req;
      if (!r.read(req)) return bad(kShortMsg);
      if (r.remaining() != 0) return bad(kTrailing);
      if (req.pad != 0) return bad("ipf set max nfrags: padding must be zero");
      auto res = dp_.conntrack().ipf().set_max_nfrags(req.max_nfrags);
      if (!res) return bad(res.error());
      return {};
    }
    case MsgType::kIpfGetStatus: {
      if (r.remaining() != 0) return bad(kTrailing);
      const ct::Ipf& ipf = dp_.conntrack().ipf();
      const ct::IpfStatus st = ipf.status();
      api::IpfStatusReply rep{};
      rep.v4 = ipf_family_to_wire(st.v4);
      rep.v6 = ipf_family_to_wire(st.v6);
      rep.nfrag = st.nfrag;
      rep.nfrag_max = st.nfrag_max;
      rep.nlists = st.nlists;
      rep.timeout_ms = ipf.config().timeout_ms;
      rep.n_invalid = static_cast<uint32_t>(ct::kIpfDropCount);
      rep.n_passed = static_cast<uint32_t>(ct::kIpfPassCount);
      out.append(rep);
      for (size_t i = 0; i < ct::kIpfDropCount; ++i) {
        api::IpfCounter c{};
        api::set_fixed(c.name, sizeof c.name, ct::kIpfDropNames[i]);
        c.v4 = st.v4.invalid[i];
        c.v6 = st.v6.invalid[i];
        out.append(c);
      }
      for (size_t i = 0; i < ct::kIpfPassCount; ++i) {
        api::IpfCounter c{};
        api::set_fixed(c.name, sizeof c.name, ct::kIpfPassNames[i]);
        c.v4 = st.v4.passed[i];
        c.v6 = st.v6.passed[i];
        out.append(c);
      }
      return {};
    }
    case MsgType::kIpfDump: {
      api::IpfDumpRequest req;
      if (!r.read(req)) return bad(kShortMsg);
      if (r.remaining() != 0) return bad(kTrailing);
      if (req.pad != 0) return bad("ipf dump: padding must be zero");
      const std::vector<ct::IpfListInfo> lists = dp_.conntrack().ipf().dump();
      // Lists held are at most max_nfrags (one fragment each at least); a cursor past the
      // lists now held (some completed or expired since the last page) ends the dump.
      if (req.cursor > api::kIpfMaxNfragsUpperBound)
        return bad("ipf dump: cursor " + std::to_string(req.cursor) + " is past the most lists (" +
                   std::to_string(api::kIpfMaxNfragsUpperBound) + ") gldp holds");
      size_t hdr_at = out.size();
      out.append(api::IpfDumpReply{});
      uint32_t n = 0, next = 0;
      for (size_t i = req.cursor; i < lists.size(); ++i) {
        std::string line = ct::format_ipf_list(lists[i]);
        if (line.size() >= api::kIpfLineMax) line.resize(api::kIpfLineMax - 1);
        if (out.size() + api::pad8(static_cast<uint32_t>(line.size() + 1)) > api::kMaxMessage) {
          next = static_cast<uint32_t>(i);
          break;
        }
        out.append_text(line);
        ++n;
      }
      auto* dr = reinterpret_cast<api::IpfDumpReply*>(out.data() + hdr_at);
      dr->n = n;
      dr->next_cursor = next;
      return {};
    }
    default:
      return std::unexpected(ct_error(EOPNOTSUPP, "not a conntrack request"));
  }
}

}  // namespace gl::dp

// ---- the distributed firewall -----------------------------------------------------------

namespace gl::dp {

namespace {

// A firewall's limits: what one version may hold (memory on the control side).
constexpr size_t kFwMaxPrefixes = 1u << 20;
constexpr size_t kFwMaxEntries = 1u << 21;

bool valid_action(uint8_t a) {
  return a <= static_cast<uint8_t>(fw::Action::kAllowEncrypted);
}

}  // namespace

std::expected<void, api::Error> Server::fw_delta_base(uint64_t base) const {
  const fw::FwTables* cur = dp_.firewall();
  if (cur == nullptr)
    return std::unexpected(api::Error{ESTALE, "fw delta: based on version " + std::to_string(base) +
                                                  ", but no firewall is in force"});
  if (cur->generation != base)
    return std::unexpected(
        api::Error{ESTALE, "fw delta: based on version " + std::to_string(base) + ", but version " +
                               std::to_string(cur->generation) + " is in force"});
  return {};
}

std::expected<void, api::Error> Server::handle_fw(ClientConn& c, api::MsgType type,
                                                  api::MessageReader& r, api::MessageBuilder& out) {
  auto bad = [](std::string m) { return std::unexpected(api::Error{EINVAL, std::move(m)}); };
  auto staging = [&]() -> std::expected<FwStaging*, api::Error> {
    if (c.fw == nullptr)
      return std::unexpected(api::Error{EPROTO, std::string(api::msg_type_name(type)) +
                                                    " outside a firewall transaction "
                                                    "(fw-begin first)"});
    return c.fw.get();
  };
  switch (type) {
    case api::MsgType::kFwBegin: {
      api::FwBeginRequest req;
      if (!r.read(req) || r.remaining() != 0)
        return bad("fw begin: wants a generation and the record flags only");
      if (req.generation == 0) return bad("fw begin: generation 0 (versions count from 1)");
      if (req.record & ~(api::kFwRecordAll | api::kFwRecordDefaultRefusals))
        return bad("fw begin: unknown record flags " + std::to_string(req.record));
      if (req.flags & ~(api::kFwBeginDelta | api::kFwBeginNewIpcache))
        return bad("fw begin: unknown flags " + std::to_string(req.flags));
      const bool delta = (req.flags & api::kFwBeginDelta) != 0;
      if (!delta && (req.flags != 0 || req.base != 0))
        return bad("fw begin: a base and the new-ipcache flag belong to a delta only");
      if (delta) {
        if (auto st = fw_delta_base(req.base); !st) return std::unexpected(st.error());
      }
      c.fw = std::make_shared<FwStaging>();
      c.fw->generation = req.generation;
      c.fw->record = req.record;
      c.fw->delta = delta;
      c.fw->new_ipcache = (req.flags & api::kFwBeginNewIpcache) != 0;
      c.fw->base = req.base;
      return {};
    }
    case api::MsgType::kFwIpcache: {
      auto st = staging();
      if (!st) return std::unexpected(st.error());
      if ((*st)->delta && !(*st)->new_ipcache)
        return bad("fw ipcache: this delta keeps the ipcache (no new-ipcache flag at fw begin)");
      api::FwIpcacheRequest req;
      if (!r.read(req)) return bad("fw ipcache: short message");
      if (req.n == 0 || req.n > api::kFwMaxPrefixesPerMsg || req.pad != 0)
        return bad("fw ipcache: " + std::to_string(req.n) + " prefixes (1.." +
                   std::to_string(api::kFwMaxPrefixesPerMsg) + " per message, padding 0)");
      if ((*st)->prefixes.size() + req.n > kFwMaxPrefixes)
        return bad("fw ipcache: more than " + std::to_string(kFwMaxPrefixes) + " prefixes");
      for (uint32_t i = 0; i < req.n; ++i) {
        api::FwPrefixWire w;
        if (!r.read(w))
          return bad("fw ipcache: shorter than its count of " + std::to_string(req.n));
        const std::string what = "fw ipcache prefix " + std::to_string((*st)->prefixes.size());
        if (w.family != 4 && w.family != 6)
          return bad(what + ": family " + std::to_string(w.family) + " (4 or 6)");
        if (w.len > (w.family == 4 ? 32 : 128))
          return bad(what + ": length " + std::to_string(w.len) + " too long");
        if (w.identity < 2)
          return bad(what + ": identity " + std::to_string(w.identity) + " (0 and 1 are reserved)");
        fw::Prefix p;
        p.family = w.family;
        p.len = w.len;
        std::memcpy(p.addr, w.addr, 16);
        p.identity = w.identity;
        p.host = w.host;  // checked against the hosts at commit
        (*st)->prefixes.push_back(p);
      }
      if (r.remaining() != 0) return bad("fw ipcache: trailing bytes");
      return {};
    }
    case api::MsgType::kFwPort: {
      auto st = staging();
      if (!st) return std::unexpected(st.error());
      api::FwPortWire w;
      if (!r.read(w)) return bad("fw port: short message");
      const std::string what = "fw port " + std::to_string(w.port_no);
      if (w.flags & ~api::kFwPortRemove) return bad(what + ": unknown flags");
      for (const auto& p : (*st)->ports)
        if (p.port_no == w.port_no) return bad(what + ": sent twice in one version");
      if (std::find((*st)->removed.begin(), (*st)->removed.end(), w.port_no) !=
          (*st)->removed.end())
        return bad(what + ": sent twice in one version");
      if (w.flags & api::kFwPortRemove) {
        // Leaves the firewall (it may be gone from gldp already).
        if (!(*st)->delta) return bad(what + ": remove is for a delta (a version lists its ports)");
        static constexpr uint8_t kZero7[sizeof w.pad] = {};
        static constexpr uint8_t kZeroMac[sizeof w.mac] = {};
        if (w.identity != 0 || w.conn_limit != 0 || w.n_ipv4 != 0 || w.n_ipv6 != 0 ||
            w.default_from_vm != 0 || w.default_to_vm != 0 ||
            std::memcmp(w.mac, kZeroMac, sizeof w.mac) != 0 ||
            std::memcmp(w.pad, kZero7, sizeof w.pad) != 0 || r.remaining() != 0)
          return bad(what + ": a removed port carries nothing but its number");
        (*st)->removed.push_back(w.port_no);
        return {};
      }
      if (w.port_no >= kMaxPorts || dp_.port(w.port_no) == nullptr)
        return std::unexpected(api::Error{ENODEV, what + ": no such port"});
      if (!valid_action(w.default_from_vm) || !valid_action(w.default_to_vm))
        return bad(what + ": unknown default action");
      if (w.n_ipv4 > api::kFwMaxAddrsPerPort || w.n_ipv6 > api::kFwMaxAddrsPerPort)
        return bad(what + ": more than " + std::to_string(api::kFwMaxAddrsPerPort) +
                   " addresses of a family");
      static constexpr uint8_t kZero[sizeof w.pad] = {};
      if (std::memcmp(w.pad, kZero, sizeof w.pad) != 0) return bad(what + ": padding must be zero");
      fw::PortFirewall pf;
      pf.port_no = w.port_no;
      pf.identity = w.identity;
      pf.conn_limit = w.conn_limit;
      std::memcpy(pf.mac, w.mac, 6);
      std::span<const uint8_t> v4;
      if (!r.read_padded(w.n_ipv4 * 4u, v4)) return bad(what + ": short address list");
      pf.ipv4.resize(w.n_ipv4);
      if (w.n_ipv4 != 0) std::memcpy(pf.ipv4.data(), v4.data(), v4.size());
      for (uint16_t i = 0; i < w.n_ipv6; ++i) {
        std::array<uint8_t, 16> a;
        if (!r.read(a)) return bad(what + ": short address list");
        pf.ipv6.push_back(a);
      }
      if (r.remaining() != 0) return bad(what + ": trailing bytes");
      (*st)->ports.push_back(std::move(pf));
      (*st)->defaults.push_back(static_cast<fw::Action>(w.default_from_vm));
      (*st)->defaults.push_back(static_cast<fw::Action>(w.default_to_vm));
      (*st)->entries.resize((*st)->entries.size() + 2);
      return {};
    }
    case api::MsgType::kFwRules: {
      auto st = staging();
      if (!st) return std::unexpected(st.error());
      api::FwRulesRequest req;
      if (!r.read(req)) return bad("fw rules: short message");
      const std::string what = "fw rules of port " + std::to_string(req.port_no);
      if (req.to_vm > 1 || req.pad[0] || req.pad[1] || req.pad[2] || req.pad2)
        return bad(what + ": direction must be 0 or 1, padding zero");
      if (req.n == 0 || req.n > api::kFwMaxEntriesPerMsg)
        return bad(what + ": " + std::to_string(req.n) + " entries (1.." +
                   std::to_string(api::kFwMaxEntriesPerMsg) + " per message)");
      size_t at = (*st)->ports.size();
      for (size_t i = 0; i < (*st)->ports.size(); ++i)
        if ((*st)->ports[i].port_no == req.port_no) at = i;
      if (at == (*st)->ports.size()) return bad(what + ": the port was not sent (fw-port first)");
      if ((*st)->total_entries + req.n > kFwMaxEntries)
        return bad(what + ": more than " + std::to_string(kFwMaxEntries) + " entries in a version");
      std::vector<fw::Entry>& list = (*st)->entries[2 * at + req.to_vm];
      for (uint32_t i = 0; i < req.n; ++i) {
        api::FwEntryWire w;
        if (!r.read(w)) return bad(what + ": shorter than its count of " + std::to_string(req.n));
        const std::string ew = what + ", entry " + std::to_string(list.size());
        if (!valid_action(w.action))
          return bad(ew + ": unknown action " + std::to_string(w.action));
        if (w.log > 1 || w.pad != 0) return bad(ew + ": log must be 0 or 1, padding zero");
        if (w.port_lo > w.port_hi)
          return bad(ew + ": port range " + std::to_string(w.port_lo) + "-" +
                     std::to_string(w.port_hi) + " reversed");
        if (w.remote == fw::kWorldIdentity || w.remote >= 2 || w.remote == fw::kAnyIdentity)
          list.push_back(fw::Entry{w.remote, w.proto, w.port_lo, w.port_hi,
                                   static_cast<fw::Action>(w.action), w.log != 0, w.rule_id});
      }
      if (r.remaining() != 0) return bad(what + ": trailing bytes");
      (*st)->total_entries += req.n;
      return {};
    }
    case api::MsgType::kFwHosts: {
      auto st = staging();
      if (!st) return std::unexpected(st.error());
      if ((*st)->delta && !(*st)->new_ipcache)
        return bad("fw hosts: this delta keeps the hosts (no new-ipcache flag at fw begin)");
      api::FwHostsRequest req;
      if (!r.read(req) || req.pad != 0) return bad("fw hosts: short message");
      if (req.n == 0 || req.n > api::kFwMaxHostsPerMsg)
        return bad("fw hosts: " + std::to_string(req.n) + " hosts (1.." +
                   std::to_string(api::kFwMaxHostsPerMsg) + " per message)");
      if ((*st)->hosts.size() + req.n > api::kFwMaxHosts)
        return bad("fw hosts: more than " + std::to_string(api::kFwMaxHosts) + " in a version");
      for (uint32_t i = 0; i < req.n; ++i) {
        api::FwHostWire w;
        if (!r.read(w)) return bad("fw hosts: shorter than its count of " + std::to_string(req.n));
        const std::string what = "fw host " + std::to_string((*st)->hosts.size() + 1);
        if (w.family != 0 && w.family != 4 && w.family != 6)
          return bad(what + ": family " + std::to_string(w.family) + " (4, 6, or 0: unknown)");
        if (w.pad[0] || w.pad[1] || w.pad[2]) return bad(what + ": padding must be zero");
        fw::HostAddr h;
        h.family = w.family;
        std::memcpy(h.addr, w.addr, 16);
        (*st)->hosts.push_back(h);
      }
      if (r.remaining() != 0) return bad("fw hosts: trailing bytes");
      return {};
    }
    case api::MsgType::kFwQuarantine: {
      auto st = staging();
      if (!st) return std::unexpected(st.error());
      api::FwQuarantineRequest req;
      if (!r.read(req) || req.pad != 0) return bad("fw quarantine: short message");
      if (req.n == 0 || req.n > api::kFwMaxQuarantinePerMsg)
        return bad("fw quarantine: " + std::to_string(req.n) + " names (1.." +
                   std::to_string(api::kFwMaxQuarantinePerMsg) + " per message)");
      if ((*st)->quarantine.size() + req.n > api::kFwMaxQuarantine)
        return bad("fw quarantine: more than " + std::to_string(api::kFwMaxQuarantine) +
                   " names in a version");
      for (uint32_t i = 0; i < req.n; ++i) {
        char name[api::kNameLen];
        if (!r.read(name)) return bad("fw quarantine: short message");
        const size_t len = ::strnlen(name, sizeof name);
        if (len == 0 || len == sizeof name)
          return bad("fw quarantine: name " + std::to_string(i) + " is empty or not terminated");
        (*st)->quarantine.emplace_back(name, len);
      }
      if (r.remaining() != 0) return bad("fw quarantine: trailing bytes");
      return {};
    }
    case api::MsgType::kFwCommit: {
      auto st = staging();
      if (!st) return std::unexpected(st.error());
      api::FwCommitRequest req;
      if (!r.read(req) || r.remaining() != 0) return bad("fw commit: wants a generation only");
      std::shared_ptr<FwStaging> s = std::move(c.fw);  // the transaction ends here either way
      if (req.generation != s->generation)
        return bad("fw commit: generation " + std::to_string(req.generation) +
                   " but the transaction began " + std::to_string(s->generation));
      // Connections remember the generation that allowed them: a number not above the one
      // in force would let them skip the re-check (and their counter slots point into
      // another version's table).
      const fw::FwTables* cur = dp_.firewall();
      if (cur != nullptr && s->generation <= cur->generation)
        return bad("fw commit: generation " + std::to_string(s->generation) +
                   " is not above the one in force (" + std::to_string(cur->generation) + ")");
      if (s->delta) {  // another client may have installed a version since fw begin
        if (auto based = fw_delta_base(s->base); !based) return std::unexpected(based.error());
        for (uint32_t no : s->removed)
          if (cur->port(no) == nullptr)
            return bad("fw commit: port " + std::to_string(no) +
                       " is removed but has no firewall in version " + std::to_string(s->base));
        if (!s->new_ipcache) {
          s->prefixes = cur->ipcache.prefixes();
          if (!cur->hosts.empty())  // [0] is "none"
            s->hosts.assign(cur->hosts.begin() + 1, cur->hosts.end());
        }
      }
      for (size_t i = 0; i < s->prefixes.size(); ++i)
        if (s->prefixes[i].host > s->hosts.size())
          return bad("fw commit: ipcache prefix " + std::to_string(i) + ": host " +
                     std::to_string(s->prefixes[i].host) + " but " +
                     std::to_string(s->hosts.size()) + " hosts given");
      auto ipc = fw::IpCache::build(s->prefixes);
      if (!ipc) return bad("fw commit: ipcache " + ipc.error());
      auto t = std::make_unique<fw::FwTables>();
      t->generation = s->generation;
      t->record = s->record;
      t->ipcache = std::move(*ipc);
      t->hosts.assign(1, fw::HostAddr{});  // host 0: none
      t->hosts.insert(t->hosts.end(), s->hosts.begin(), s->hosts.end());
      t->quarantine = std::move(s->quarantine);
      for (size_t i = 0; i < s->ports.size(); ++i) {
        fw::PortFirewall& p = s->ports[i];
        if (dp_.port(p.port_no) == nullptr)
          return std::unexpected(
              api::Error{ENODEV, "fw commit: port " + std::to_string(p.port_no) + " went away"});
        p.from_vm = fw::PolicyTable(s->defaults[2 * i], std::move(s->entries[2 * i]));
        p.to_vm = fw::PolicyTable(s->defaults[2 * i + 1], std::move(s->entries[2 * i + 1]));
        t->ports.push_back(std::move(p));
      }
      if (s->delta) {
        // The ports the delta neither sent nor removed keep their tables.
        size_t total = s->total_entries;
        std::vector<uint32_t> sent;
        for (const fw::PortFirewall& p : t->ports) sent.push_back(p.port_no);
        for (const fw::PortFirewall& p : cur->ports) {
          if (std::find(sent.begin(), sent.end(), p.port_no) != sent.end() ||
              std::find(s->removed.begin(), s->removed.end(), p.port_no) != s->removed.end())
            continue;
          total += p.from_vm.entries().size() + p.to_vm.entries().size();
          t->ports.push_back(p);
        }
        if (total > kFwMaxEntries)
          return bad("fw commit: more than " + std::to_string(kFwMaxEntries) +
                     " entries in the version the delta makes");
      }
      if (auto res = dp_.set_firewall(std::move(t)); !res) return bad("fw commit: " + res.error());
      return {};
    }
    case api::MsgType::kFwClear: {
      if (r.remaining() != 0) return bad("fw clear: no payload expected");
      c.fw.reset();
      (void)dp_.set_firewall(nullptr);
      // The firewall's connections go with it: a later version may reuse generations.
      dp_.with_tracker(true, [](ct::Conntrack& ct) { return ct.flush(-1); });
      return {};
    }
    case api::MsgType::kFwStatus: {
      if (r.remaining() != 0) return bad("fw status: no payload expected");
      api::FwStatusReply rep{};
      if (const fw::FwTables* t = dp_.firewall(); t != nullptr) {
        rep.generation = t->generation;
        rep.n_ports = static_cast<uint32_t>(t->ports.size());
        rep.n_prefixes = static_cast<uint32_t>(t->ipcache.size());
      }
      rep.n_conns = dp_.fw_conntrack().n_conns();
      rep.capacity = dp_.fw_conntrack().capacity();
      out.append(rep);
      return {};
    }
    case api::MsgType::kFwEvents: {
      api::FwEventsRequest req;
      if (!r.read(req) || r.remaining() != 0) return bad("fw events: wants a count only");
      if (req.max == 0 || req.max > api::kFwMaxEventsPerMsg || req.pad != 0)
        return bad("fw events: max " + std::to_string(req.max) + " (1.." +
                   std::to_string(api::kFwMaxEventsPerMsg) + ", padding 0)");
      std::vector<fw::FwEvent> evs;
      uint64_t lost = 0;
      dp_.fw_events(req.max, evs, lost);
      api::FwEventsReply rep{};
      rep.n = static_cast<uint32_t>(evs.size());
      rep.pending = static_cast<uint32_t>(dp_.fw_events_pending());
      rep.lost = lost;
      out.append(rep);
      for (const fw::FwEvent& e : evs) {
        api::FwEventWire w{};
        w.time_ms = dp_.unix_ms(e.time_ms);
        w.start_ms = dp_.unix_ms(e.start_ms);
        for (int d = 0; d < 2; ++d) {
          w.packets[d] = e.packets[d];
          w.bytes[d] = e.bytes[d];
        }
        std::memcpy(w.src, e.src, 16);
        std::memcpy(w.dst, e.dst, 16);
        w.sport = e.sport;
        w.dport = e.dport;
        w.proto = e.proto;
        w.family = e.family;
        w.icmp_type = e.icmp_type;
        w.icmp_code = e.icmp_code;
        w.port_no = e.port_no;
        w.rule_id = e.rule_id;
        w.generation = e.generation;
        w.suppressed = e.suppressed;
        w.kind = static_cast<uint8_t>(e.kind);
        w.action = e.action;
        w.to_vm = e.to_vm;
        w.reason = static_cast<uint8_t>(e.reason);
        out.append(w);
      }
      return {};
    }
    case api::MsgType::kFwRuleStats: {
      api::FwRuleStatsRequest req;
      if (!r.read(req) || r.remaining() != 0 || req.pad != 0)
        return bad("fw rule stats: wants a cursor only (padding 0)");
      // The cursor is a rule id (the first one of the page), not an index: a version
      // published or folded between pages neither skips nor repeats a rule.
      const auto all = dp_.fw_rule_stats();
      size_t begin = 0;
      while (begin < all.size() && all[begin].first < req.cursor) ++begin;
      const size_t end = std::min<size_t>(all.size(), begin + size_t{api::kFwRuleStatsPerPage});
      api::FwRuleStatsReply rep{};
      rep.n = static_cast<uint32_t>(end - begin);
      rep.next_cursor = end < all.size() ? all[end].first : 0;
      out.append(rep);
      for (size_t i = begin; i < end; ++i) {
        api::FwRuleStat st{};
        st.rule_id = all[i].first;
        st.packets = all[i].second[0];
        st.bytes = all[i].second[1];
        st.conns = all[i].second[2];
        out.append(st);
      }
      return {};
    }
    case api::MsgType::kFwTrace: {
      api::FwTraceRequest req;
      if (!r.read(req) || r.remaining() != 0) return bad("fw trace: short or long message");
      if (req.to_vm > 1 || req.has_mac > 1 || req.pad != 0)
        return bad("fw trace: to_vm and has_mac are 0 or 1, padding 0");
      auto k = tuple_from_wire(req.tuple, 0);
      if (!k) return bad("fw trace: " + k.error());
      api::FwTraceReply rep{};
      rep.source_ok = 1;
      rep.remote_identity = fw::kWorldIdentity;
      uint64_t port_generation = 0;  // what a connection's verdict must carry to be current
      if (const fw::FwTables* t = dp_.firewall(); t != nullptr) {
        rep.generation = t->generation;
        if (const fw::PortFirewall* pf = t->port(req.port_no); pf != nullptr) {
          rep.has_fw = 1;
          port_generation = pf->generation;
          rep.local_identity = pf->identity;
          const bool v4 = req.tuple.family == 4;
          const uint8_t* remote = req.to_vm ? req.tuple.src : req.tuple.dst;
          uint32_t a4;
          std::memcpy(&a4, remote, 4);
          rep.remote_identity = v4 ? t->ipcache.lookup4(a4) : t->ipcache.lookup6(remote);
          const fw::PolicyTable& p = req.to_vm ? pf->to_vm : pf->from_vm;
          const bool icmp = req.tuple.proto == 1 || req.tuple.proto == 58;
          const fw::Verdict v =
              p.lookup(rep.remote_identity, req.tuple.proto, icmp ? 0 : ntohs(req.tuple.dport));
          rep.action = static_cast<uint8_t>(v.action);
          rep.rule_id = v.rule_id;
          rep.log = v.log ? 1 : 0;
          if (!req.to_vm) {  // the stage's spoof guard (fw_stage.cpp source_ok)
            uint32_t s4;
            std::memcpy(&s4, req.tuple.src, 4);
            bool ok =
                v4 ? pf->source_addr_ok4(s4, req.tuple.proto, req.tuple.sport, req.tuple.dport)
                   : pf->source_addr_ok6(req.tuple.src);
            if (req.has_mac && !pf->mac_ok(req.src_mac)) ok = false;
            rep.source_ok = ok ? 1 : 0;
          }
          if (!v4 && req.tuple.proto == 58 && fw::untracked_icmp6(req.tuple.icmp_type))
            rep.untracked = !req.to_vm && req.tuple.icmp_type == fw::kIcmp6RouterAdvert
                                ? api::kFwTraceRaGuard
                                : api::kFwTraceNdPass;
        }
      }
      k->zone = static_cast<uint16_t>(req.port_no);
      ct::Entry e{};
      bool reply = false;
      const uint64_t now = dp_.ct_now_ms(rte_rdtsc());
      const bool found =
          req.port_no <= api::kCtMaxZone &&
          dp_.with_tracker(true, [&](ct::Conntrack& ct) { return ct.lookup(*k, now, e, reply); });
      if (found) {
        rep.conn_found = 1;
        rep.conn_reply = reply ? 1 : 0;
        rep.conn = entry_to_wire(e);
        const fw::ConnVerdict cv = fw::ConnVerdict::from_label(e.label);
        rep.conn_action = static_cast<uint8_t>(cv.action);
        rep.conn_current = fw::ConnVerdict::is_ours(e.label) && port_generation != 0 &&
                                   cv.generation == static_cast<uint32_t>(port_generation)
                               ? 1
                               : 0;
      }
      out.append(rep);
      return {};
    }
    default:
      break;
  }
  return std::unexpected(api::Error{EOPNOTSUPP, "not a firewall request"});
}

}  // namespace gl::dp
