#include "dataplane/api/client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "dataplane/api/message.hpp"

namespace gl::api {

namespace {

Error sys_error(const std::string& what) {
  int e = errno;
  return Error{e, what + ": " + std::strerror(e)};
}

Error proto_error(const std::string& what) {
  return Error{EPROTO, "protocol error: " + what};
}

// Checks a reply datagram's header and error field; on success the reader is positioned
// at the payload.
Result<void> check_reply(MessageReader& r, MsgType expect) {
  HeaderError he = r.check_header();
  if (he != HeaderError::kOk)
    return std::unexpected(proto_error(std::string(header_error_name(he))));
  if (r.type() != expect || (r.header().flags & kFlagReply) == 0)
    return std::unexpected(
        proto_error("unexpected reply type " + std::string(msg_type_name(r.type()))));
  if (r.header().error != 0) {
    std::string text = r.error_text();
    if (text.empty()) text = std::strerror(r.header().error);
    return std::unexpected(Error{r.header().error, text});
  }
  return {};
}

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

Ufid ufid_from_match(const flow::FlowMatch& m) {
  uint64_t a = 0x243f6a8885a308d3ULL, b = 0x13198a2e03707344ULL;
  const flow::AliasU64* k = m.key.words();
  const flow::AliasU64* mk = m.mask.words();
  for (size_t i = 0; i < flow::FlowKey::kWords; ++i) {
    a = mix64(a ^ (k[i] & mk[i]));
    b = mix64(b ^ mk[i] ^ (a >> 7));
  }
  return Ufid{a, b};
}

std::string format_ufid(const Ufid& u) {
  // The same text form as OVS: 8-4-4-4-12 hex digits.
  char buf[40];
  std::snprintf(buf, sizeof buf,
                "%08" PRIx32 "-%04" PRIx32 "-%04" PRIx32 "-%04" PRIx32 "-%04" PRIx32 "%08" PRIx32,
                static_cast<uint32_t>(u.hi >> 32), static_cast<uint32_t>(u.hi >> 16) & 0xffff,
                static_cast<uint32_t>(u.hi) & 0xffff, static_cast<uint32_t>(u.lo >> 48),
                static_cast<uint32_t>(u.lo >> 32) & 0xffff, static_cast<uint32_t>(u.lo));
  return buf;
}

std::optional<Ufid> parse_ufid(std::string_view s) {
  if (s.starts_with("ufid:")) s.remove_prefix(5);
  std::string hex;
  for (char c : s) {
    if (c == '-') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    hex.push_back(c);
  }
  if (hex.size() != 32) return std::nullopt;
  Ufid u{};
  u.hi = std::stoull(hex.substr(0, 16), nullptr, 16);
  u.lo = std::stoull(hex.substr(16), nullptr, 16);
  return u;
}

Result<Client> Client::connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return std::unexpected(Error{ENAMETOOLONG, "socket path too long: " + path});
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected(sys_error("socket"));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    Error e = sys_error("cannot connect to gldp at " + path);
    ::close(fd);
    return std::unexpected(e);
  }
  Client c(fd);
  c.rxbuf_.resize(kMaxMessage + 1);
  return c;
}

Client::Client(Client&& o) noexcept
    : fd_(o.fd_), xid_(o.xid_), upcalls_(std::move(o.upcalls_)), rxbuf_(std::move(o.rxbuf_)) {
  o.fd_ = -1;
}

Client& Client::operator=(Client&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    xid_ = o.xid_;
    upcalls_ = std::move(o.upcalls_);
    rxbuf_ = std::move(o.rxbuf_);
    o.fd_ = -1;
  }
  return *this;
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::vector<uint8_t>> Client::recv_one(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, timeout_ms);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return std::unexpected(sys_error("poll"));
  if (rc == 0) return std::vector<uint8_t>{};
  ssize_t n;
  do {
    n = ::recv(fd_, rxbuf_.data(), rxbuf_.size(), MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return std::unexpected(sys_error("recv"));
  if (n == 0) return std::unexpected(Error{ECONNRESET, "gldp closed the connection"});
  if (static_cast<size_t>(n) > kMaxMessage) return std::unexpected(proto_error("oversized reply"));
  return std::vector<uint8_t>(rxbuf_.begin(), rxbuf_.begin() + n);
}

bool Client::queue_if_upcall(const std::vector<uint8_t>& msg) {
  MessageReader r(msg);
  if (r.check_header() != HeaderError::kOk) return false;
  uint32_t n = 1;
  if (r.type() == MsgType::kUpcallBatch) {
    UpcallBatchHeader bh;
    if (!r.read(bh)) return true;  // a malformed upcall is dropped, not mistaken for a reply
    n = bh.n;
  } else if (r.type() != MsgType::kUpcall) {
    return false;
  }
  for (uint32_t i = 0; i < n; ++i) {
    UpcallMsg um;
    std::span<const uint8_t> ud, pkt;
    if (!r.read(um) || !r.read_padded(um.userdata_len, ud) || !r.read_padded(um.packet_len, pkt))
      return true;  // the rest of a malformed batch is dropped
    Upcall u;
    u.kind = static_cast<UpcallKind>(um.kind);
    u.pid = um.pid;
    u.key = um.key;
    u.userdata.assign(ud.begin(), ud.end());
    u.packet.assign(pkt.begin(), pkt.end());
    upcalls_.push_back(std::move(u));
  }
  return true;
}

Result<void> Client::send_request(std::span<const uint8_t> request) {
  if (fd_ < 0) return std::unexpected(Error{ENOTCONN, "not connected"});
  ssize_t n;
  do {
    n = ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return std::unexpected(sys_error("send to gldp"));
  return {};
}

Result<std::vector<uint8_t>> Client::await_reply(uint32_t xid) {
  for (;;) {
    auto msg = recv_one(30000);
    if (!msg) return msg;
    if (msg->empty()) return std::unexpected(Error{ETIMEDOUT, "no reply from gldp in 30 s"});
    if (queue_if_upcall(*msg)) continue;
    MsgHeader h;
    if (msg->size() < sizeof h) return std::unexpected(proto_error("short reply"));
    std::memcpy(&h, msg->data(), sizeof h);
    if (h.xid != xid) continue;  // a late reply to an abandoned request
    return msg;
  }
}

Result<std::vector<uint8_t>> Client::transact(std::span<const uint8_t> request, uint32_t xid) {
  if (auto s = send_request(request); !s) return std::unexpected(s.error());
  return await_reply(xid);
}

namespace {

// Sends a request with a single fixed payload (or none) and checks the reply header.
template <typename Req>
Result<std::vector<uint8_t>> simple(Client& c, MsgType t, const Req* req) {
  uint32_t xid = c.next_xid();
  MessageBuilder b(t, xid);
  if (req != nullptr) b.append(*req);
  auto reply = c.transact(b.finish(), xid);
  if (!reply) return reply;
  MessageReader r(*reply);
  if (auto ok = check_reply(r, t); !ok) return std::unexpected(ok.error());
  return reply;
}

struct NoPayload {};

template <typename T>
Result<T> read_single(const std::vector<uint8_t>& reply, const char* what) {
  MessageReader r(reply);
  (void)r.check_header();
  T out;
  if (!r.read(out)) return std::unexpected(proto_error(std::string("short ") + what));
  return out;
}

}  // namespace

Result<InfoReply> Client::info() {
  auto rep = simple<uint8_t>(*this, MsgType::kInfo, nullptr);
  if (!rep) return std::unexpected(rep.error());
  return read_single<InfoReply>(*rep, "info reply");
}

Result<PortInfo> Client::port_add(const std::string& name, const std::string& devargs,
                                  uint32_t port_no, uint16_t n_rxq, uint16_t mtu) {
  PortAddRequest req{};
  if (!set_fixed(req.name, sizeof req.name, name))
    return std::unexpected(Error{ENAMETOOLONG, "port name longer than 31 bytes: " + name});
  if (!set_fixed(req.devargs, sizeof req.devargs, devargs))
    return std::unexpected(Error{ENAMETOOLONG, "devargs longer than 255 bytes"});
  req.port_no = port_no;
  req.n_rxq = n_rxq;
  req.mtu = mtu;
  auto rep = simple(*this, MsgType::kPortAdd, &req);
  if (!rep) return std::unexpected(rep.error());
  return read_single<PortInfo>(*rep, "port info");
}

Result<void> Client::port_del(uint32_t port_no) {
  PortDelRequest req{};
  req.port_no = port_no;
  auto rep = simple(*this, MsgType::kPortDel, &req);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<void> Client::port_del(const std::string& name) {
  PortDelRequest req{};
  req.port_no = kPortAny;
  if (!set_fixed(req.name, sizeof req.name, name))
    return std::unexpected(Error{ENAMETOOLONG, "port name too long: " + name});
  auto rep = simple(*this, MsgType::kPortDel, &req);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<std::vector<PortInfo>> Client::port_list() {
  auto rep = simple<uint8_t>(*this, MsgType::kPortList, nullptr);
  if (!rep) return std::unexpected(rep.error());
  MessageReader r(*rep);
  (void)r.check_header();
  PortListReply pl;
  if (!r.read(pl)) return std::unexpected(proto_error("short port list"));
  std::vector<PortInfo> out(pl.n);
  for (auto& p : out)
    if (!r.read(p)) return std::unexpected(proto_error("truncated port list"));
  return out;
}

Result<PortInfo> Client::port_get(uint32_t port_no) {
  PortGetRequest req{};
  req.port_no = port_no;
  auto rep = simple(*this, MsgType::kPortGet, &req);
  if (!rep) return std::unexpected(rep.error());
  return read_single<PortInfo>(*rep, "port info");
}

Result<PortInfo> Client::port_set_mtu(uint32_t port_no, const std::string& name, uint16_t mtu) {
  PortSetRequest req{};
  req.port_no = port_no;
  req.flags = kPortSetMtu;
  req.mtu = mtu;
  if (port_no == kPortAny && !set_fixed(req.name, sizeof req.name, name))
    return std::unexpected(Error{ENAMETOOLONG, "port name too long: " + name});
  auto rep = simple(*this, MsgType::kPortSet, &req);
  if (!rep) return std::unexpected(rep.error());
  return read_single<PortInfo>(*rep, "port info");
}

Result<PortInfo> Client::port_get(const std::string& name) {
  PortGetRequest req{};
  req.port_no = kPortAny;
  if (!set_fixed(req.name, sizeof req.name, name))
    return std::unexpected(Error{ENAMETOOLONG, "port name too long: " + name});
  auto rep = simple(*this, MsgType::kPortGet, &req);
  if (!rep) return std::unexpected(rep.error());
  return read_single<PortInfo>(*rep, "port info");
}

namespace {

Result<std::vector<EntryResult>> read_batch_reply(const std::vector<uint8_t>& reply,
                                                  uint32_t expect) {
  MessageReader r(reply);
  (void)r.check_header();
  BatchReply br;
  if (!r.read(br) || br.n != expect) return std::unexpected(proto_error("bad batch reply"));
  std::vector<EntryResult> out(br.n);
  for (auto& e : out)
    if (!r.read(e)) return std::unexpected(proto_error("truncated batch reply"));
  return out;
}

}  // namespace

Result<std::vector<EntryResult>> Client::batch_pipeline(
    MsgType type, size_t total, const std::function<uint32_t(MessageBuilder&, size_t)>& fill) {
  // Up to kWindow requests in flight: gldp works on one batch while we build the next.
  // Replies come back in order on one connection.
  constexpr size_t kWindow = 4;
  struct Pending {
    uint32_t xid, n;
  };
  std::deque<Pending> inflight;
  std::vector<EntryResult> results;
  results.reserve(total);
  auto collect = [&]() -> Result<void> {
    Pending p = inflight.front();
    inflight.pop_front();
    auto rep = await_reply(p.xid);
    if (!rep) return std::unexpected(rep.error());
    MessageReader r(*rep);
    if (auto ok = check_reply(r, type); !ok) return std::unexpected(ok.error());
    auto part = read_batch_reply(*rep, p.n);
    if (!part) return std::unexpected(part.error());
    results.insert(results.end(), part->begin(), part->end());
    return {};
  };
  size_t done = 0;
  while (done < total) {
    uint32_t xid = next_xid();
    MessageBuilder b(type, xid);
    uint32_t n = fill(b, done);
    if (n == 0) return std::unexpected(Error{EINVAL, "a batch entry does not fit a message"});
    if (auto s = send_request(b.finish()); !s) return std::unexpected(s.error());
    inflight.push_back({xid, n});
    done += n;
    if (inflight.size() == kWindow)
      if (auto c = collect(); !c) return std::unexpected(c.error());
  }
  while (!inflight.empty())
    if (auto c = collect(); !c) return std::unexpected(c.error());
  return results;
}

Result<std::vector<EntryResult>> Client::flow_put(std::span<const FlowPut> flows) {
  for (const FlowPut& f : flows)
    if (f.actions.size() > kMaxActions)
      return std::unexpected(Error{EINVAL, "actions longer than 4096 bytes"});
  return batch_pipeline(MsgType::kFlowPut, flows.size(), [&](MessageBuilder& b, size_t i) {
    b.append(FlowPutRequest{});
    uint32_t n = 0;
    // Reply entries are bigger than request entries for small actions: bound by both.
    size_t reply_size = sizeof(MsgHeader) + sizeof(BatchReply);
    for (; i < flows.size(); ++i, ++n) {
      const FlowPut& f = flows[i];
      size_t need = sizeof(FlowPutEntry) + pad8(static_cast<uint32_t>(f.actions.size()));
      if (b.size() + need > kMaxMessage || reply_size + sizeof(EntryResult) > kMaxMessage) break;
      FlowPutEntry e{};
      e.ufid = f.ufid;
      e.flags = f.flags;
      e.actions_len = static_cast<uint32_t>(f.actions.size());
      e.key = f.match.key;
      e.mask = f.match.mask;
      b.append(e);
      b.append_padded(f.actions);
      reply_size += sizeof(EntryResult);
    }
    reinterpret_cast<FlowPutRequest*>(b.data() + sizeof(MsgHeader))->n = n;
    return n;
  });
}

Result<std::vector<EntryResult>> Client::flow_del(std::span<const Ufid> ufids) {
  const size_t per_msg =
      (kMaxMessage - sizeof(MsgHeader) - sizeof(BatchReply)) / sizeof(EntryResult);
  return batch_pipeline(MsgType::kFlowDel, ufids.size(), [&](MessageBuilder& b, size_t i) {
    uint32_t n = static_cast<uint32_t>(std::min(per_msg, ufids.size() - i));
    b.append(FlowDelRequest{n, 0});
    for (uint32_t k = 0; k < n; ++k) b.append(ufids[i + k]);
    return n;
  });
}

namespace {

bool read_flow(MessageReader& r, Flow& f, bool with_actions) {
  FlowEntry e;
  std::span<const uint8_t> acts;
  if (!r.read(e) || !r.read_padded(e.actions_len, acts)) return false;
  f.ufid = e.ufid;
  f.match.key = e.key;
  f.match.mask = e.mask;
  f.stats = e.stats;
  if (with_actions) f.actions.assign(acts.begin(), acts.end());
  return true;
}

}  // namespace

Result<Flow> Client::flow_get(const Ufid& ufid) {
  FlowGetRequest req{ufid};
  auto rep = simple(*this, MsgType::kFlowGet, &req);
  if (!rep) return std::unexpected(rep.error());
  MessageReader r(*rep);
  (void)r.check_header();
  Flow f;
  if (!read_flow(r, f, true)) return std::unexpected(proto_error("short flow"));
  return f;
}

Result<void> Client::flow_dump(const std::function<bool(const Flow&)>& fn, bool with_actions) {
  FlowDumpRequest req{};
  req.flags = with_actions ? 0 : kDumpNoActions;
  for (;;) {
    auto rep = simple(*this, MsgType::kFlowDump, &req);
    if (!rep) return std::unexpected(rep.error());
    MessageReader r(*rep);
    (void)r.check_header();
    FlowDumpReply dr;
    if (!r.read(dr)) return std::unexpected(proto_error("short dump reply"));
    Flow f;
    for (uint32_t i = 0; i < dr.n; ++i) {
      if (!read_flow(r, f, with_actions)) return std::unexpected(proto_error("truncated dump"));
      if (!fn(f)) return {};
    }
    if (dr.next_cursor == 0) return {};
    req.cursor = dr.next_cursor;
  }
}

Result<void> Client::flow_flush() {
  auto rep = simple<uint8_t>(*this, MsgType::kFlowFlush, nullptr);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<void> Client::execute(const flow::FlowKey& metadata, std::span<const uint8_t> actions,
                             std::span<const uint8_t> packet) {
  if (packet.size() > kMaxPacket)
    return std::unexpected(Error{EMSGSIZE, "packet longer than " + std::to_string(kMaxPacket)});
  if (actions.size() > kMaxActions)
    return std::unexpected(Error{EINVAL, "actions longer than 4096 bytes"});
  uint32_t xid = next_xid();
  MessageBuilder b(MsgType::kExecute, xid);
  ExecuteRequest req{};
  req.metadata = metadata;
  req.packet_len = static_cast<uint32_t>(packet.size());
  req.actions_len = static_cast<uint32_t>(actions.size());
  b.append(req);
  b.append_padded(actions);
  b.append_padded(packet);
  auto rep = transact(b.finish(), xid);
  if (!rep) return std::unexpected(rep.error());
  MessageReader r(*rep);
  return check_reply(r, MsgType::kExecute);
}

Result<std::vector<EntryResult>> Client::execute_batch(std::span<const ExecuteOp> ops) {
  for (const ExecuteOp& op : ops) {
    if (op.packet.size() > kMaxPacket)
      return std::unexpected(Error{EMSGSIZE, "packet longer than " + std::to_string(kMaxPacket)});
    if (op.actions.size() > kMaxActions)
      return std::unexpected(Error{EINVAL, "actions longer than 4096 bytes"});
  }
  return batch_pipeline(MsgType::kExecuteBatch, ops.size(), [&](MessageBuilder& b, size_t i) {
    b.append(ExecuteBatchRequest{});
    uint32_t n = 0;
    size_t reply_size = sizeof(MsgHeader) + sizeof(BatchReply);
    for (; i < ops.size(); ++i, ++n) {
      const ExecuteOp& op = ops[i];
      size_t need = sizeof(ExecuteRequest) + pad8(static_cast<uint32_t>(op.actions.size())) +
                    pad8(static_cast<uint32_t>(op.packet.size()));
      if (b.size() + need > kMaxMessage || reply_size + sizeof(EntryResult) > kMaxMessage) break;
      ExecuteRequest req{};
      req.metadata = op.metadata;
      req.packet_len = static_cast<uint32_t>(op.packet.size());
      req.actions_len = static_cast<uint32_t>(op.actions.size());
      b.append(req);
      b.append_padded(op.actions);
      b.append_padded(op.packet);
      reply_size += sizeof(EntryResult);
    }
    reinterpret_cast<ExecuteBatchRequest*>(b.data() + sizeof(MsgHeader))->n = n;
    return n;
  });
}

Result<void> Client::subscribe_upcalls(uint32_t pid, bool misses) {
  UpcallSubscribeRequest req{pid, (misses ? kSubscribeMiss : 0u) | kSubscribeBatch};
  auto rep = simple(*this, MsgType::kUpcallSubscribe, &req);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<std::optional<Upcall>> Client::recv_upcall(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!upcalls_.empty()) {
      Upcall u = std::move(upcalls_.front());
      upcalls_.pop_front();
      return std::optional<Upcall>(std::move(u));
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    int wait = left.count() > 0 ? static_cast<int>(left.count()) : 0;
    auto msg = recv_one(wait);
    if (!msg) return std::unexpected(msg.error());
    if (msg->empty()) return std::optional<Upcall>();
    queue_if_upcall(*msg);  // anything else is a stray reply: ignore it
  }
}

Result<Stats> Client::stats() {
  auto rep = simple<uint8_t>(*this, MsgType::kStats, nullptr);
  if (!rep) return std::unexpected(rep.error());
  MessageReader r(*rep);
  (void)r.check_header();
  Stats s;
  if (!r.read(s.totals)) return std::unexpected(proto_error("short stats"));
  s.pmds.resize(s.totals.n_pmds);
  for (auto& p : s.pmds)
    if (!r.read(p)) return std::unexpected(proto_error("truncated stats"));
  s.drops.resize(s.totals.n_drops);
  for (auto& d : s.drops)
    if (!r.read(d)) return std::unexpected(proto_error("truncated stats"));
  return s;
}

Result<void> Client::stats_clear() {
  auto rep = simple<uint8_t>(*this, MsgType::kStatsClear, nullptr);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<void> Client::set_config(const std::string& key, const std::string& value) {
  SetConfigRequest req{};
  if (!set_fixed(req.key, sizeof req.key, key) || !set_fixed(req.value, sizeof req.value, value))
    return std::unexpected(Error{EINVAL, "config key or value too long"});
  auto rep = simple(*this, MsgType::kSetConfig, &req);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<void> Client::sa_add(const SaAddRequest& req) {
  uint32_t xid = next_xid();
  MessageBuilder b(MsgType::kSaAdd, xid);
  b.append(req);
  auto msg = b.finish();
  auto rep = transact(msg, xid);
  explicit_bzero(const_cast<uint8_t*>(msg.data()), msg.size());  // key material
  if (!rep) return std::unexpected(rep.error());
  MessageReader r(*rep);
  return check_reply(r, MsgType::kSaAdd);
}

Result<void> Client::sa_del(uint32_t spi, SaDir dir, uint32_t grace_ms) {
  SaDelRequest req{};
  req.spi = spi;
  req.dir = static_cast<uint8_t>(dir);
  req.grace_ms = grace_ms;
  auto rep = simple(*this, MsgType::kSaDel, &req);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<std::vector<SaInfo>> Client::sa_dump(bool keys) {
  SaDumpRequest req{};
  req.flags = keys ? kSaDumpKeys : 0;
  std::vector<SaInfo> out;
  for (;;) {
    auto rep = simple(*this, MsgType::kSaDump, &req);
    if (!rep) return std::unexpected(rep.error());
    MessageReader r(*rep);
    (void)r.check_header();
    SaDumpReply dr;
    if (!r.read(dr)) return std::unexpected(proto_error("short sa dump reply"));
    for (uint32_t i = 0; i < dr.n; ++i) {
      SaInfo info;
      if (!r.read(info)) return std::unexpected(proto_error("truncated sa dump"));
      out.push_back(info);
    }
    if (dr.next_cursor == 0 || dr.n == 0) return out;
    req.cursor = dr.next_cursor;
  }
}

// ---- connection tracking ----------------------------------------------------------------

Result<void> Client::ct_dump(std::optional<uint32_t> zone,
                             const std::function<bool(const CtEntry&)>& fn, bool firewall) {
  CtDumpRequest req{};
  if (zone) {
    req.flags = kCtDumpZone;
    req.zone = *zone;
  }
  for (;;) {
    auto rep = simple(*this, firewall ? MsgType::kFwCtDump : MsgType::kCtDump, &req);
    if (!rep) return std::unexpected(rep.error());
    MessageReader r(*rep);
    (void)r.check_header();
    CtDumpReply dr;
    if (!r.read(dr)) return std::unexpected(proto_error("short ct dump reply"));
    if (dr.next_cursor != 0 && dr.n == 0 && dr.next_cursor <= req.cursor)
      return std::unexpected(proto_error("ct dump made no progress"));
    for (uint32_t i = 0; i < dr.n; ++i) {
      CtEntry e;
      if (!r.read(e)) return std::unexpected(proto_error("truncated ct dump"));
      if (!fn(e)) return {};
    }
    if (dr.next_cursor == 0) return {};
    req.cursor = dr.next_cursor;
  }
}

Result<uint32_t> Client::ct_flush(std::optional<uint32_t> zone, const CtTuple* tuple,
                                  bool firewall) {
  CtFlushRequest req{};
  if (zone) {
    req.flags |= kCtFlushZone;
    req.zone = *zone;
  }
  if (tuple != nullptr) {
    req.flags |= kCtFlushTuple;
    req.tuple = *tuple;
  }
  auto rep = simple(*this, firewall ? MsgType::kFwCtFlush : MsgType::kCtFlush, &req);
  if (!rep) return std::unexpected(rep.error());
  auto fr = read_single<CtFlushReply>(*rep, "ct flush reply");
  if (!fr) return std::unexpected(fr.error());
  return fr->n_flushed;
}

Result<CtConfigReply> Client::ct_get_config() {
  auto rep = simple<uint8_t>(*this, MsgType::kCtGetConfig, nullptr);
  if (!rep) return std::unexpected(rep.error());
  return read_single<CtConfigReply>(*rep, "ct config reply");
}

Result<void> Client::ct_set_max_conns(uint32_t max_conns) {
  CtSetMaxConnsRequest req{max_conns, 0};
  auto rep = simple(*this, MsgType::kCtSetMaxConns, &req);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<void> Client::ct_set_tcp_seq_check(bool enabled) {
  CtSetTcpSeqCheckRequest req{};
  req.enabled = enabled ? 1 : 0;
  auto rep = simple(*this, MsgType::kCtSetTcpSeqCheck, &req);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<void> Client::fw_install(uint64_t generation, std::span<const FwPrefixWire> ipcache,
                                std::span<const FwPortSpec> ports, uint32_t record,
                                std::span<const std::string> quarantine,
                                std::span<const FwHostWire> hosts) {
  const FwBeginRequest begin{generation, record, 0, 0};
  return fw_transaction(begin, ipcache, hosts, ports, {}, quarantine);
}

Result<void> Client::fw_update(uint64_t generation, const FwDelta& d) {
  const FwBeginRequest begin{generation, d.record,
                             kFwBeginDelta | (d.new_ipcache ? kFwBeginNewIpcache : 0u), d.base};
  if (!d.new_ipcache && (!d.ipcache.empty() || !d.hosts.empty()))
    return std::unexpected(
        Error{EINVAL, "fw update: an ipcache or hosts given without new_ipcache"});
  return fw_transaction(begin, d.ipcache, d.hosts, d.ports, d.removed, d.quarantine);
}

Result<void> Client::fw_transaction(const FwBeginRequest& begin,
                                    std::span<const FwPrefixWire> ipcache,
                                    std::span<const FwHostWire> hosts,
                                    std::span<const FwPortSpec> ports,
                                    std::span<const uint32_t> removed,
                                    std::span<const std::string> quarantine) {
  const uint64_t generation = begin.generation;
  auto send = [&](MessageBuilder& b, uint32_t xid, MsgType t) -> Result<void> {
    auto rep = transact(b.finish(), xid);
    if (!rep) return std::unexpected(rep.error());
    MessageReader r(*rep);
    return check_reply(r, t);
  };
  if (auto rep = simple(*this, MsgType::kFwBegin, &begin); !rep)
    return std::unexpected(rep.error());
  for (uint32_t no : removed) {
    const uint32_t xid = next_xid();
    MessageBuilder b(MsgType::kFwPort, xid);
    FwPortWire w{};
    w.port_no = no;
    w.flags = kFwPortRemove;
    b.append(w);
    if (auto ok = send(b, xid, MsgType::kFwPort); !ok) return ok;
  }
  for (size_t done = 0; done < hosts.size();) {
    const size_t n = std::min<size_t>(kFwMaxHostsPerMsg, hosts.size() - done);
    const uint32_t xid = next_xid();
    MessageBuilder b(MsgType::kFwHosts, xid);
    b.append(FwHostsRequest{static_cast<uint32_t>(n), 0});
    for (size_t i = 0; i < n; ++i) b.append(hosts[done + i]);
    if (auto ok = send(b, xid, MsgType::kFwHosts); !ok) return ok;
    done += n;
  }
  for (size_t done = 0; done < ipcache.size();) {
    const size_t n = std::min<size_t>(kFwMaxPrefixesPerMsg, ipcache.size() - done);
    const uint32_t xid = next_xid();
    MessageBuilder b(MsgType::kFwIpcache, xid);
    b.append(FwIpcacheRequest{static_cast<uint32_t>(n), 0});
    for (size_t i = 0; i < n; ++i) b.append(ipcache[done + i]);
    if (auto ok = send(b, xid, MsgType::kFwIpcache); !ok) return ok;
    done += n;
  }
  for (const FwPortSpec& p : ports) {
    if (p.ipv4.size() > kFwMaxAddrsPerPort || p.ipv6.size() > kFwMaxAddrsPerPort)
      return std::unexpected(Error{EINVAL, "port " + std::to_string(p.port_no) + ": more than " +
                                               std::to_string(kFwMaxAddrsPerPort) +
                                               " addresses of a family"});
    uint32_t xid = next_xid();
    MessageBuilder b(MsgType::kFwPort, xid);
    FwPortWire w{};
    w.port_no = p.port_no;
    w.identity = p.identity;
    w.conn_limit = p.conn_limit;
    w.default_from_vm = p.default_from_vm;
    w.default_to_vm = p.default_to_vm;
    w.n_ipv4 = static_cast<uint16_t>(p.ipv4.size());
    w.n_ipv6 = static_cast<uint16_t>(p.ipv6.size());
    std::memcpy(w.mac, p.mac, 6);
    b.append(w);
    b.append_padded(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(p.ipv4.data()),
                                             p.ipv4.size() * 4));
    for (const auto& a : p.ipv6) b.append(a);
    if (auto ok = send(b, xid, MsgType::kFwPort); !ok) return ok;
    for (uint8_t dir = 0; dir < 2; ++dir) {
      const std::vector<FwEntryWire>& es = dir == 0 ? p.from_vm : p.to_vm;
      for (size_t done = 0; done < es.size();) {
        const size_t n = std::min<size_t>(kFwMaxEntriesPerMsg, es.size() - done);
        xid = next_xid();
        MessageBuilder rb(MsgType::kFwRules, xid);
        FwRulesRequest req{};
        req.port_no = p.port_no;
        req.to_vm = dir;
        req.n = static_cast<uint32_t>(n);
        rb.append(req);
        for (size_t i = 0; i < n; ++i) {
          FwEntryWire e = es[done + i];
          e.pad = 0;
          rb.append(e);
        }
        if (auto ok = send(rb, xid, MsgType::kFwRules); !ok) return ok;
        done += n;
      }
    }
  }
  for (size_t done = 0; done < quarantine.size();) {
    const size_t n = std::min<size_t>(kFwMaxQuarantinePerMsg, quarantine.size() - done);
    const uint32_t xid = next_xid();
    MessageBuilder b(MsgType::kFwQuarantine, xid);
    b.append(FwQuarantineRequest{static_cast<uint32_t>(n), 0});
    for (size_t i = 0; i < n; ++i) {
      char name[kNameLen] = {};
      if (!set_fixed(name, sizeof name, quarantine[done + i]) || quarantine[done + i].empty())
        return std::unexpected(Error{EINVAL, "quarantine: port name '" + quarantine[done + i] +
                                                 "' is empty or longer than " +
                                                 std::to_string(kNameLen - 1)});
      b.append(name);
    }
    if (auto ok = send(b, xid, MsgType::kFwQuarantine); !ok) return ok;
    done += n;
  }
  const FwCommitRequest req{generation};
  if (auto rep = simple(*this, MsgType::kFwCommit, &req); !rep) return std::unexpected(rep.error());
  return {};
}

Result<void> Client::fw_clear() {
  auto rep = simple<uint8_t>(*this, MsgType::kFwClear, nullptr);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<FwStatusReply> Client::fw_status() {
  auto rep = simple<uint8_t>(*this, MsgType::kFwStatus, nullptr);
  if (!rep) return std::unexpected(rep.error());
  return read_single<FwStatusReply>(*rep, "fw status reply");
}

Result<Client::FwEvents> Client::fw_events(uint32_t max) {
  const FwEventsRequest req{max, 0};
  auto rep = simple(*this, MsgType::kFwEvents, &req);
  if (!rep) return std::unexpected(rep.error());
  MessageReader r(*rep);
  (void)r.check_header();
  FwEventsReply er;
  if (!r.read(er)) return std::unexpected(proto_error("short fw events reply"));
  if (er.n > kFwMaxEventsPerMsg || er.n > max)
    return std::unexpected(proto_error("fw events reply with " + std::to_string(er.n) +
                                       " events (asked for at most " + std::to_string(max) + ")"));
  FwEvents out;
  out.pending = er.pending;
  out.lost = er.lost;
  out.events.resize(er.n);
  for (uint32_t i = 0; i < er.n; ++i)
    if (!r.read(out.events[i])) return std::unexpected(proto_error("truncated fw events reply"));
  return out;
}

Result<std::vector<FwRuleStat>> Client::fw_rule_stats() {
  std::vector<FwRuleStat> out;
  FwRuleStatsRequest req{};
  for (;;) {
    auto rep = simple(*this, MsgType::kFwRuleStats, &req);
    if (!rep) return std::unexpected(rep.error());
    MessageReader r(*rep);
    (void)r.check_header();
    FwRuleStatsReply sr;
    if (!r.read(sr)) return std::unexpected(proto_error("short fw rule stats reply"));
    for (uint32_t i = 0; i < sr.n; ++i) {
      FwRuleStat st;
      if (!r.read(st)) return std::unexpected(proto_error("truncated fw rule stats reply"));
      out.push_back(st);
    }
    if (sr.next_cursor == 0) return out;
    if (sr.next_cursor <= req.cursor)
      return std::unexpected(proto_error("fw rule stats made no progress"));
    req.cursor = sr.next_cursor;
  }
}

Result<FwTraceReply> Client::fw_trace(const FwTraceRequest& req) {
  auto rep = simple(*this, MsgType::kFwTrace, &req);
  if (!rep) return std::unexpected(rep.error());
  return read_single<FwTraceReply>(*rep, "fw trace reply");
}

Result<void> Client::ct_set_limits(std::optional<uint32_t> default_limit,
                                   std::span<const CtZoneLimit> zones) {
  size_t done = 0;
  bool first = true;
  while (first || done < zones.size()) {
    const size_t n = std::min<size_t>(kCtMaxZonesPerMsg, zones.size() - done);
    uint32_t xid = next_xid();
    MessageBuilder b(MsgType::kCtSetLimits, xid);
    CtSetLimitsRequest req{};
    if (first && default_limit) {
      req.flags = kCtLimitsDefault;
      req.default_limit = *default_limit;
    }
    req.n = static_cast<uint32_t>(n);
    b.append(req);
    for (size_t i = 0; i < n; ++i) {
      CtZoneLimit z = zones[done + i];
      z.count = 0;
      z.pad = 0;
      b.append(z);
    }
    auto rep = transact(b.finish(), xid);
    if (!rep) return std::unexpected(rep.error());
    MessageReader r(*rep);
    if (auto ok = check_reply(r, MsgType::kCtSetLimits); !ok) return ok;
    done += n;
    first = false;
  }
  return {};
}

namespace {

// Finishes a kCtDelLimits / kCtGetLimits request for `zones` in b.
std::span<const uint8_t> zones_request(MessageBuilder& b, std::span<const uint32_t> zones,
                                       uint32_t cursor) {
  b.append(CtZonesRequest{static_cast<uint32_t>(zones.size()), cursor});
  b.append_padded(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(zones.data()),
                                           zones.size() * sizeof(uint32_t)));
  return b.finish();
}

}  // namespace

Result<void> Client::ct_del_limits(std::span<const uint32_t> zones) {
  if (zones.empty()) return std::unexpected(Error{EINVAL, "ct del limits: no zones given"});
  for (size_t done = 0; done < zones.size();) {
    const size_t n = std::min<size_t>(kCtMaxZonesPerMsg, zones.size() - done);
    uint32_t xid = next_xid();
    MessageBuilder b(MsgType::kCtDelLimits, xid);
    auto rep = transact(zones_request(b, zones.subspan(done, n), 0), xid);
    if (!rep) return std::unexpected(rep.error());
    MessageReader r(*rep);
    if (auto ok = check_reply(r, MsgType::kCtDelLimits); !ok) return ok;
    done += n;
  }
  return {};
}

Result<CtLimits> Client::ct_get_limits(std::span<const uint32_t> zones) {
  CtLimits out;
  size_t done = 0;
  uint32_t cursor = 0;
  for (;;) {
    const size_t n = std::min<size_t>(kCtMaxZonesPerMsg, zones.size() - done);
    uint32_t xid = next_xid();
    MessageBuilder b(MsgType::kCtGetLimits, xid);
    auto rep = transact(zones_request(b, zones.subspan(done, n), cursor), xid);
    if (!rep) return std::unexpected(rep.error());
    MessageReader r(*rep);
    if (auto ok = check_reply(r, MsgType::kCtGetLimits); !ok) return std::unexpected(ok.error());
    CtGetLimitsReply gr;
    if (!r.read(gr)) return std::unexpected(proto_error("short ct limits reply"));
    out.default_limit = gr.default_limit;
    for (uint32_t i = 0; i < gr.n; ++i) {
      CtZoneLimit z;
      if (!r.read(z)) return std::unexpected(proto_error("truncated ct limits reply"));
      out.zones.push_back(z);
    }
    if (zones.empty()) {
      if (gr.next_cursor == 0) return out;
      if (gr.next_cursor <= cursor)
        return std::unexpected(proto_error("ct limits made no progress"));
      cursor = gr.next_cursor;
    } else {
      done += n;
      if (done == zones.size()) return out;
    }
  }
}

Result<CtStats> Client::ct_stats(bool clear) {
  CtStatsRequest req{clear ? kCtStatsClear : 0u, 0};
  auto rep = simple(*this, MsgType::kCtStats, &req);
  if (!rep) return std::unexpected(rep.error());
  MessageReader r(*rep);
  (void)r.check_header();
  CtStats s;
  if (!r.read(s.totals)) return std::unexpected(proto_error("short ct stats"));
  if (s.totals.n_invalid > 256 || s.totals.n_protos > 256)
    return std::unexpected(proto_error("ct stats with impossible counts"));
  s.invalid.resize(s.totals.n_invalid);
  for (auto& c : s.invalid)
    if (!r.read(c)) return std::unexpected(proto_error("truncated ct stats"));
  s.protos.resize(s.totals.n_protos);
  for (auto& p : s.protos)
    if (!r.read(p)) return std::unexpected(proto_error("truncated ct stats"));
  return s;
}

// ---- timeout policies and fragment reassembly ---------------------------------------------

Result<void> Client::ct_set_timeout_policy(const CtTimeoutPolicy& tp) {
  auto rep = simple(*this, MsgType::kCtSetTimeoutPolicy, &tp);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<CtTimeoutPolicy> Client::ct_get_timeout_policy(uint32_t id) {
  CtTimeoutPolicyId req{id, 0};
  auto rep = simple(*this, MsgType::kCtGetTimeoutPolicy, &req);
  if (!rep) return std::unexpected(rep.error());
  return read_single<CtTimeoutPolicy>(*rep, "ct timeout policy reply");
}

Result<void> Client::ct_del_timeout_policy(uint32_t id) {
  CtTimeoutPolicyId req{id, 0};
  auto rep = simple(*this, MsgType::kCtDelTimeoutPolicy, &req);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<std::vector<CtTimeoutPolicy>> Client::ct_dump_timeout_policies() {
  std::vector<CtTimeoutPolicy> out;
  CtTpDumpRequest req{};
  for (;;) {
    auto rep = simple(*this, MsgType::kCtDumpTimeoutPolicies, &req);
    if (!rep) return std::unexpected(rep.error());
    MessageReader r(*rep);
    (void)r.check_header();
    CtTpDumpReply dr;
    if (!r.read(dr)) return std::unexpected(proto_error("short timeout policy dump reply"));
    if (dr.n > kCtTpPerPage) return std::unexpected(proto_error("timeout policy dump too long"));
    for (uint32_t i = 0; i < dr.n; ++i) {
      CtTimeoutPolicy tp;
      if (!r.read(tp)) return std::unexpected(proto_error("truncated timeout policy dump"));
      out.push_back(tp);
    }
    if (dr.next_cursor == 0) return out;
    if (dr.next_cursor <= req.cursor)
      return std::unexpected(proto_error("timeout policy dump made no progress"));
    req.cursor = dr.next_cursor;
  }
}

Result<void> Client::ipf_set_enabled(bool v6, bool enabled) {
  IpfSetEnabledRequest req{};
  req.family = v6 ? 6 : 4;
  req.enabled = enabled ? 1 : 0;
  auto rep = simple(*this, MsgType::kIpfSetEnabled, &req);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<void> Client::ipf_set_min_frag(bool v6, uint32_t min_frag) {
  IpfSetMinFragRequest req{};
  req.family = v6 ? 6 : 4;
  req.min_frag = min_frag;
  auto rep = simple(*this, MsgType::kIpfSetMinFrag, &req);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<void> Client::ipf_set_max_nfrags(uint32_t max_nfrags) {
  IpfSetMaxNfragsRequest req{max_nfrags, 0};
  auto rep = simple(*this, MsgType::kIpfSetMaxNfrags, &req);
  if (!rep) return std::unexpected(rep.error());
  return {};
}

Result<IpfStatus> Client::ipf_get_status() {
  auto rep = simple<uint8_t>(*this, MsgType::kIpfGetStatus, nullptr);
  if (!rep) return std::unexpected(rep.error());
  MessageReader r(*rep);
  (void)r.check_header();
  IpfStatus s;
  if (!r.read(s.totals)) return std::unexpected(proto_error("short ipf status"));
  if (s.totals.n_invalid > 64 || s.totals.n_passed > 64)
    return std::unexpected(proto_error("ipf status with impossible counts"));
  s.invalid.resize(s.totals.n_invalid);
  for (auto& c : s.invalid)
    if (!r.read(c)) return std::unexpected(proto_error("truncated ipf status"));
  s.passed.resize(s.totals.n_passed);
  for (auto& c : s.passed)
    if (!r.read(c)) return std::unexpected(proto_error("truncated ipf status"));
  return s;
}

Result<std::vector<std::string>> Client::ipf_dump() {
  std::vector<std::string> out;
  IpfDumpRequest req{};
  for (;;) {
    auto rep = simple(*this, MsgType::kIpfDump, &req);
    if (!rep) return std::unexpected(rep.error());
    MessageReader r(*rep);
    (void)r.check_header();
    IpfDumpReply dr;
    if (!r.read(dr)) return std::unexpected(proto_error("short ipf dump reply"));
    for (uint32_t i = 0; i < dr.n; ++i) {
      std::string_view line;
      if (!r.read_text(kIpfLineMax, line))
        return std::unexpected(proto_error("truncated ipf dump"));
      out.emplace_back(line);
    }
    if (dr.next_cursor == 0) return out;
    if (dr.next_cursor <= req.cursor)
      return std::unexpected(proto_error("ipf dump made no progress"));
    req.cursor = dr.next_cursor;
  }
}

}  // namespace gl::api
