#include "control/glctld/flow_export.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <boost/asio/ip/udp.hpp>

#include "control/glctld/log.hpp"
#include "dataplane/firewall/fw_events.hpp"
#include "dataplane/firewall/fw_tables.hpp"
#include "flowtables/bytes.hpp"

namespace gl::glctld {

namespace asio = boost::asio;
using OJson = nlohmann::ordered_json;

namespace {

std::string iso_ms(uint64_t ms) {
  return iso8601_utc(std::chrono::system_clock::time_point(std::chrono::milliseconds(ms)));
}

uint64_t epoch_ms(std::chrono::system_clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

// A JSON line; invalid UTF-8 in names becomes U+FFFD instead of an exception.
std::string dump_line(const OJson& j) {
  std::string line = j.dump(-1, ' ', false, OJson::error_handler_t::replace);
  line += '\n';
  return line;
}

}  // namespace

std::string_view flow_kind_name(FlowRecord::Kind kind) {
  switch (kind) {
    case FlowRecord::Kind::kStart:
      return "start";
    case FlowRecord::Kind::kEnd:
      return "end";
    case FlowRecord::Kind::kDeny:
      return "deny";
  }
  return "?";
}

std::string flow_address_text(uint8_t family, const std::array<uint8_t, 16>& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (::inet_ntop(family == 6 ? AF_INET6 : AF_INET, a.data(), buf, sizeof buf) == nullptr)
    return "?";
  return buf;
}

bool flow_is_icmp(const FlowRecord& r) {
  return (r.family == 4 && r.proto == 1) || (r.family == 6 && r.proto == 58);
}

OJson flow_record_json(const FlowRecord& r) {
  OJson j;
  j["event"] = flow_kind_name(r.kind);
  const uint64_t t = r.kind == FlowRecord::Kind::kStart ? r.start_ms
                     : r.end_ms != 0                    ? r.end_ms
                                                        : r.start_ms;
  j["time"] = iso_ms(t);
  j["time_ms"] = t;
  if (r.kind != FlowRecord::Kind::kDeny) {
    j["start"] = iso_ms(r.start_ms);
    j["start_ms"] = r.start_ms;
  }
  if (r.kind == FlowRecord::Kind::kEnd) {
    j["end"] = iso_ms(r.end_ms);
    j["end_ms"] = r.end_ms;
    j["duration_ms"] = r.end_ms >= r.start_ms ? r.end_ms - r.start_ms : 0;
  }
  j["workload"] = r.workload;
  j["direction"] = r.to_vm ? "ingress" : "egress";
  j["family"] = r.family;
  j["proto"] = r.proto;
  j["src"] = flow_address_text(r.family, r.src);
  j["dst"] = flow_address_text(r.family, r.dst);
  if (flow_is_icmp(r)) {
    j["icmp_type"] = r.icmp_type;
    j["icmp_code"] = r.icmp_code;
  } else {
    j["sport"] = r.sport;
    j["dport"] = r.dport;
  }
  j["src_identity"] = r.src_identity;
  j["dst_identity"] = r.dst_identity;
  if (!r.src_name.empty()) j["src_name"] = r.src_name;
  if (!r.dst_name.empty()) j["dst_name"] = r.dst_name;
  j["rule_id"] = r.rule_id;
  j["action"] = r.action;
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (r.kind == FlowRecord::Kind::kEnd) {
    j["initiator_packets"] = r.packets[0];
    j["responder_packets"] = r.packets[1];
    j["initiator_bytes"] = r.bytes[0];
    j["responder_bytes"] = r.bytes[1];
  }
  if (r.kind == FlowRecord::Kind::kDeny && r.suppressed != 0)
    j["dataplane_suppressed"] = r.suppressed;
  return j;
}

// ---- rate limit ------------------------------------------------------------------------

bool TokenBucket::take(std::chrono::steady_clock::time_point now) {
  if (!started_) {
    started_ = true;
    last_ = now;
  } else if (now > last_) {
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    last_ = now;
  }
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

// ---- JSON lines ------------------------------------------------------------------------

namespace {

// Opens `path` for appending; a file it creates gets mode 0640 whatever the umask.
std::expected<int, std::string> open_append(const std::string& path) {
  if (path.empty()) return std::unexpected(std::string("flow log: empty path"));
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd >= 0)
      (void)::fchmod(fd, 0640);
    else if (errno == EEXIST)  // created meanwhile by someone else
      fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
  }
  if (fd < 0) return std::unexpected("cannot open flow log " + path + ": " + std::strerror(errno));
  return fd;
}

}  // namespace

FlowLogWriter::FlowLogWriter(FlowLogOptions options)
    : options_(std::move(options)),
      bucket_(options_.rate > 0 ? options_.rate : 1, std::max(options_.burst, 1.0)) {}

FlowLogWriter::~FlowLogWriter() {
  close();
}

std::expected<void, std::string> FlowLogWriter::open(const std::string& path) {
  auto fd = open_append(path);
  if (!fd) {
    last_error_ = fd.error();
    return std::unexpected(fd.error());
  }
  close();
  fd_ = *fd;
  path_ = path;
  return {};
}

std::expected<void, std::string> FlowLogWriter::reopen() {
  if (path_.empty()) return std::unexpected(std::string("flow log: nothing to reopen"));
  auto fd = open_append(path_);
  if (!fd) {
    ++counters_.errors;
    last_error_ = fd.error();
    return std::unexpected(fd.error());
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = *fd;
  return {};
}

void FlowLogWriter::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool FlowLogWriter::write_line(const std::string& line) {
  if (fd_ < 0) {
    ++counters_.errors;
    last_error_ = "flow log not open";
    return false;
  }
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ++counters_.errors;
      last_error_ = "cannot write flow log " + path_ + ": " +
                    (n < 0 ? std::strerror(errno) : "nothing written");
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

bool FlowLogWriter::write(const FlowRecord& r) {
  try {
    const auto now = options_.steady_now ? options_.steady_now() : std::chrono::steady_clock::now();
    if (fd_ >= 0 && !bucket_.take(now)) {
      ++counters_.suppressed;
      ++unreported_;
      return false;
    }
    OJson j = flow_record_json(r);
    if (unreported_ != 0) j["log_suppressed"] = unreported_;
    if (!write_line(dump_line(j))) return false;
    ++counters_.written;
    unreported_ = 0;
    return true;
  } catch (const std::exception& e) {
    ++counters_.errors;
    last_error_ = std::string("flow log: ") + e.what();
    return false;
  }
}

bool FlowLogWriter::tick() {
  if (unreported_ == 0 || fd_ < 0) return false;
  try {
    const auto now = options_.wall_now ? options_.wall_now() : std::chrono::system_clock::now();
    OJson j;
    j["event"] = "suppressed";
    j["time"] = iso8601_utc(now);
    j["time_ms"] = epoch_ms(now);
    j["count"] = unreported_;
    if (!write_line(dump_line(j))) return false;
    ++counters_.summaries;
    unreported_ = 0;
    return true;
  } catch (const std::exception& e) {
    ++counters_.errors;
    last_error_ = std::string("flow log: ") + e.what();
    return false;
  }
}

// ---- IPFIX -------------------------------------------------------------------------------

namespace ipfix {
namespace {

// The two templates: the same elements but for the addresses and the ICMP type/code.
constexpr std::array<Field, 24> make_template(uint16_t src, uint16_t dst, uint16_t addr_len,
                                              uint16_t icmp) {
  return {{{src, addr_len, false},
           {dst, addr_len, false},
           {kSourceTransportPort, 2, false},
           {kDestinationTransportPort, 2, false},
           {kProtocolIdentifier, 1, false},
           {icmp, 2, false},
           {kFlowStartMilliseconds, 8, false},
           {kFlowEndMilliseconds, 8, false},
           {kInitiatorPackets, 8, false},
           {kResponderPackets, 8, false},
           {kInitiatorOctets, 8, false},
           {kResponderOctets, 8, false},
           {kFlowEndReason, 1, false},
           {kFirewallEvent, 1, false},
           {kFlowDirection, 1, false},
           {kVirtualStationName, kVarLength, false},
           {kGlRuleId, 4, true},
           {kGlSourceIdentity, 4, true},
           {kGlDestinationIdentity, 4, true},
           {kGlAction, 1, true},
           {kGlReason, 1, true},
           {kGlSuppressed, 8, true},
           {kGlSourceName, kVarLength, true},
           {kGlDestinationName, kVarLength, true}}};
}
constexpr auto kFieldsV4 =
    make_template(kSourceIPv4Address, kDestinationIPv4Address, 4, kIcmpTypeCodeIPv4);
constexpr auto kFieldsV6 =
    make_template(kSourceIPv6Address, kDestinationIPv6Address, 16, kIcmpTypeCodeIPv6);

constexpr size_t fixed_size(std::span<const Field> fields) {
  size_t n = 0;
  for (const Field& f : fields) n += f.length == kVarLength ? 0 : f.length;
  return n;
}
constexpr size_t kVarFields = 3;
static_assert(fixed_size(kFieldsV6) == 112 && fixed_size(kFieldsV4) == 88);

}  // namespace

std::span<const Field> template_fields(uint8_t family) {
  if (family == 6) return kFieldsV6;
  return kFieldsV4;
}

uint8_t action_code(std::string_view action) {
  for (size_t i = 0; i < fw::kActionNames.size(); ++i)
    if (action == fw::kActionNames[i]) return static_cast<uint8_t>(i);
  return 255;
}

uint8_t reason_code(std::string_view reason) {
  if (reason.empty()) return 0;  // fw::event_reason_name(): "" for none
  // From 1: "none" is not a name an event shows.
  for (size_t i = 1; i < fw::kEventReasonNames.size(); ++i)
    if (reason == fw::kEventReasonNames[i]) return static_cast<uint8_t>(i);
  return 255;
}

}  // namespace ipfix

namespace {

void put8(std::vector<uint8_t>& b, uint8_t v) {
  b.push_back(v);
}
void put16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put32(std::vector<uint8_t>& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
void put64(std::vector<uint8_t>& b, uint64_t v) {
  put32(b, static_cast<uint32_t>(v >> 32));
  put32(b, static_cast<uint32_t>(v));
}

// The longest prefix of `s` of at most `max` bytes that does not cut a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<uint8_t>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

uint8_t end_reason(const FlowRecord& r) {
  if (r.kind != FlowRecord::Kind::kEnd) return 0;
  if (r.reason == "expired") return ipfix::kEndIdleTimeout;
  if (r.reason == "removed") return ipfix::kEndForced;
  return 0;
}

uint8_t firewall_event(FlowRecord::Kind kind) {
  switch (kind) {
    case FlowRecord::Kind::kStart:
      return ipfix::kFwEventCreated;
    case FlowRecord::Kind::kEnd:
      return ipfix::kFwEventDeleted;
    case FlowRecord::Kind::kDeny:
      return ipfix::kFwEventDenied;
  }
  return 0;
}

std::string target_error(std::string_view text, const std::string& what) {
  return "IPFIX collector \"" + std::string(text) + "\": " + what;
}

}  // namespace

std::string IpfixTarget::text() const {
  const std::string a = address.to_string();
  return (address.is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(port);
}

std::expected<IpfixTarget, std::string> parse_ipfix_target(std::string_view text) {
  std::string_view rest = text;
  if (rest.starts_with("udp:")) {
    rest.remove_prefix(4);
  } else {
    for (std::string_view other : {"tcp:", "sctp:", "tls:", "unix:"})
      if (rest.starts_with(other))
        return std::unexpected(
            target_error(text, "transport \"" + std::string(other.substr(0, other.size() - 1)) +
                                   "\" not supported (udp only)"));
  }
  if (rest.empty()) return std::unexpected(target_error(text, "no address"));
  std::string_view addr, port;
  bool bracketed = false;
  if (rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos)
      return std::unexpected(target_error(text, "missing \"]\" after the IPv6 address"));
    addr = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return std::unexpected(
            target_error(text, "unexpected \"" + std::string(after) + "\" after \"]\""));
      port = after.substr(1);
      if (port.empty()) return std::unexpected(target_error(text, "empty port"));
    }
    bracketed = true;
  } else if (std::count(rest.begin(), rest.end(), ':') > 1) {
    addr = rest;  // a bare IPv6 address, no port
  } else if (const size_t colon = rest.find(':'); colon != std::string_view::npos) {
    addr = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (port.empty()) return std::unexpected(target_error(text, "empty port"));
  } else {
    addr = rest;
  }
  boost::system::error_code ec;
  IpfixTarget t;
  t.address = asio::ip::make_address(std::string(addr), ec);
  if (ec || addr.empty())
    return std::unexpected(target_error(text, "bad address \"" + std::string(addr) + "\""));
  if (bracketed && !t.address.is_v6())
    return std::unexpected(
        target_error(text, "\"" + std::string(addr) + "\" in brackets is not an IPv6 address"));
  if (!port.empty()) {
    uint32_t p = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || p > 65535) {
        p = 0;
        break;
      }
      p = p * 10 + static_cast<uint32_t>(c - '0');
    }
    if (p == 0 || p > 65535 || port.size() > 5)
      return std::unexpected(target_error(text, "bad port \"" + std::string(port) + "\""));
    t.port = static_cast<uint16_t>(p);
  }
  return t;
}

namespace {

std::expected<void, std::string> check_options(const IpfixOptions& o) {
  if (o.mtu < 512 || o.mtu > 65507)
    return std::unexpected("IPFIX mtu " + std::to_string(o.mtu) + ": must be 512 .. 65507");
  if (o.enterprise_number == 0)
    return std::unexpected(std::string("IPFIX enterprise number 0: reserved"));
  return {};
}

}  // namespace

std::expected<std::unique_ptr<IpfixExporter>, std::string> IpfixExporter::create(
    asio::any_io_executor ex, std::string_view target, IpfixOptions options) {
  auto t = parse_ipfix_target(target);
  if (!t) return std::unexpected(t.error());
  if (auto ok = check_options(options); !ok) return std::unexpected(ok.error());
  const std::string name = t->text();
  auto socket = std::make_shared<asio::ip::udp::socket>(ex);
  const asio::ip::udp::endpoint ep(t->address, t->port);
  boost::system::error_code ec;
  socket->open(ep.protocol(), ec);
  if (!ec) socket->non_blocking(true, ec);  // never stall the io_context: a full buffer fails
  if (ec) return std::unexpected("IPFIX to " + name + ": socket: " + ec.message());
  socket->connect(ep, ec);
  if (ec) return std::unexpected("IPFIX to " + name + ": connect: " + ec.message());
  Send send = [socket](std::span<const uint8_t> msg) -> std::error_code {
    boost::system::error_code e;
    // On a connected UDP socket, ECONNREFUSED reports an ICMP port unreachable for an earlier
    // datagram (the collector was down): this one did not go yet, so once more.
    for (int attempt = 0; attempt < 2; ++attempt) {
      socket->send(asio::buffer(msg.data(), msg.size()), 0, e);
      if (e != asio::error::connection_refused) break;
    }
    return e;
  };
  std::unique_ptr<IpfixExporter> e(new IpfixExporter(std::move(send), name, std::move(options)));
  e->start();
  return e;
}

std::expected<std::unique_ptr<IpfixExporter>, std::string> IpfixExporter::create(
    Send send, std::string target, IpfixOptions options) {
  if (auto ok = check_options(options); !ok) return std::unexpected(ok.error());
  std::unique_ptr<IpfixExporter> e(
      new IpfixExporter(std::move(send), std::move(target), std::move(options)));
  e->start();
  return e;
}

void IpfixExporter::start() {
  try {
    send_templates(options_.wall_now ? options_.wall_now() : std::chrono::system_clock::now());
  } catch (const std::exception& e) {
    last_error_ = std::string("IPFIX: ") + e.what();
  }
}

IpfixExporter::IpfixExporter(Send send, std::string target, IpfixOptions options)
    : send_(std::move(send)), target_(std::move(target)), options_(std::move(options)) {
  // The largest record (IPv6, three names) must fit in a message of its own.
  const size_t avail = options_.mtu - ipfix::kHeaderSize - ipfix::kSetHeaderSize -
                       ipfix::fixed_size(ipfix::template_fields(6));
  const size_t per_name = avail / ipfix::kVarFields;
  max_name_ = per_name >= 255 + 3 ? 255 : per_name - 1;  // under 255: one length byte
  msg_.reserve(options_.mtu);
  scratch_.reserve(options_.mtu);
}

void IpfixExporter::encode_record(const FlowRecord& r, std::vector<uint8_t>& out) {
  auto put_name = [&](const std::string& s) {
    const std::string_view v = utf8_prefix(s, max_name_);
    if (v.size() < s.size()) ++counters_.truncated_names;
    if (v.size() < 255) {
      put8(out, static_cast<uint8_t>(v.size()));
    } else {
      put8(out, 255);
      put16(out, static_cast<uint16_t>(v.size()));
    }
    out.insert(out.end(), v.begin(), v.end());
  };
  const bool icmp = flow_is_icmp(r);
  const size_t addr_len = r.family == 6 ? 16 : 4;
  for (const ipfix::Field& f : ipfix::template_fields(r.family)) {
    if (f.enterprise) {
      switch (f.id) {
        case ipfix::kGlRuleId:
          put32(out, r.rule_id);
          break;
        case ipfix::kGlSourceIdentity:
          put32(out, r.src_identity);
          break;
        case ipfix::kGlDestinationIdentity:
          put32(out, r.dst_identity);
          break;
        case ipfix::kGlAction:
          put8(out, ipfix::action_code(r.action));
          break;
        case ipfix::kGlReason:
          put8(out, ipfix::reason_code(r.reason));
          break;
        case ipfix::kGlSuppressed:
          put64(out, r.suppressed);
          break;
        case ipfix::kGlSourceName:
          put_name(r.src_name);
          break;
        case ipfix::kGlDestinationName:
          put_name(r.dst_name);
          break;
      }
      continue;
    }
    switch (f.id) {
      case ipfix::kSourceIPv4Address:
      case ipfix::kSourceIPv6Address:
        out.insert(out.end(), r.src.begin(), r.src.begin() + addr_len);
        break;
      case ipfix::kDestinationIPv4Address:
      case ipfix::kDestinationIPv6Address:
        out.insert(out.end(), r.dst.begin(), r.dst.begin() + addr_len);
        break;
      case ipfix::kSourceTransportPort:
        put16(out, icmp ? 0 : r.sport);
        break;
      case ipfix::kDestinationTransportPort:
        put16(out, icmp ? 0 : r.dport);
        break;
      case ipfix::kProtocolIdentifier:
        put8(out, r.proto);
        break;
      case ipfix::kIcmpTypeCodeIPv4:
      case ipfix::kIcmpTypeCodeIPv6:
        put16(out, icmp ? static_cast<uint16_t>(r.icmp_type << 8 | r.icmp_code) : 0);
        break;
      case ipfix::kFlowStartMilliseconds:
        put64(out, r.start_ms);
        break;
      case ipfix::kFlowEndMilliseconds:
        put64(out, r.end_ms);
        break;
      case ipfix::kInitiatorPackets:
        put64(out, r.packets[0]);
        break;
      case ipfix::kResponderPackets:
        put64(out, r.packets[1]);
        break;
      case ipfix::kInitiatorOctets:
        put64(out, r.bytes[0]);
        break;
      case ipfix::kResponderOctets:
        put64(out, r.bytes[1]);
        break;
      case ipfix::kFlowEndReason:
        put8(out, end_reason(r));
        break;
      case ipfix::kFirewallEvent:
        put8(out, firewall_event(r.kind));
        break;
      case ipfix::kFlowDirection:
        put8(out, r.to_vm ? 0 : 1);
        break;
      case ipfix::kVirtualStationName:
        put_name(r.workload);
        break;
    }
  }
}

bool IpfixExporter::add(const FlowRecord& r) {
  try {
    if (r.kind == FlowRecord::Kind::kStart && !options_.export_start) return false;
    if (r.family != 4 && r.family != 6) {
      ++counters_.invalid_records;
      last_error_ = "IPFIX: a record of address family " + std::to_string(r.family);
      return false;
    }
    scratch_.clear();
    encode_record(r, scratch_);
    const size_t set_header = set_family_ == r.family ? 0 : ipfix::kSetHeaderSize;
    if (pending_ > 0 && msg_.size() + set_header + scratch_.size() > options_.mtu) send_pending();
    if (msg_.empty()) msg_.resize(ipfix::kHeaderSize);
    if (set_family_ != r.family) {
      close_set();
      set_offset_ = msg_.size();
      set_family_ = r.family;
      put16(msg_, r.family == 6 ? ipfix::kTemplateV6 : ipfix::kTemplateV4);
      put16(msg_, 0);  // the length, when the set is closed
    }
    msg_.insert(msg_.end(), scratch_.begin(), scratch_.end());
    ++pending_;
    return true;
  } catch (const std::exception& e) {
    last_error_ = std::string("IPFIX: ") + e.what();
    return false;
  }
}

void IpfixExporter::flush() {
  try {
    send_pending();
  } catch (const std::exception& e) {
    last_error_ = std::string("IPFIX: ") + e.what();
  }
}

void IpfixExporter::close_set() {
  if (set_offset_ == 0) return;
  flow::store_be16(&msg_[set_offset_ + 2], static_cast<uint16_t>(msg_.size() - set_offset_));
  set_offset_ = 0;
  set_family_ = 0;
}

bool IpfixExporter::templates_due(std::chrono::system_clock::time_point now) const {
  if (!templates_sent_) return true;
  if (options_.template_refresh.count() > 0 &&
      (now < templates_at_ || now - templates_at_ >= options_.template_refresh))
    return true;
  return options_.template_refresh_messages > 0 &&
         messages_since_templates_ >= options_.template_refresh_messages;
}

void IpfixExporter::send_templates(std::chrono::system_clock::time_point now) {
  std::vector<uint8_t> m(ipfix::kHeaderSize);
  put16(m, ipfix::kTemplateSetId);
  put16(m, 0);
  for (uint8_t family : {uint8_t{4}, uint8_t{6}}) {
    const auto fields = ipfix::template_fields(family);
    put16(m, family == 6 ? ipfix::kTemplateV6 : ipfix::kTemplateV4);
    put16(m, static_cast<uint16_t>(fields.size()));
    for (const ipfix::Field& f : fields) {
      put16(m, static_cast<uint16_t>(f.id | (f.enterprise ? 0x8000 : 0)));
      put16(m, f.length);
      if (f.enterprise) put32(m, options_.enterprise_number);
    }
  }
  flow::store_be16(&m[ipfix::kHeaderSize + 2],
                   static_cast<uint16_t>(m.size() - ipfix::kHeaderSize));
  templates_sent_ = send_message(m, now);
  if (templates_sent_) {
    ++counters_.template_messages;
    templates_at_ = now;
    messages_since_templates_ = 0;
  }
}

bool IpfixExporter::send_message(std::vector<uint8_t>& msg,
                                 std::chrono::system_clock::time_point now) {
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
  flow::store_be16(&msg[0], ipfix::kVersion);
  flow::store_be16(&msg[2], static_cast<uint16_t>(msg.size()));
  flow::store_be32(&msg[4], static_cast<uint32_t>(secs.count()));
  flow::store_be32(&msg[8], sequence_);
  flow::store_be32(&msg[12], options_.observation_domain_id);
  if (const std::error_code ec = send_(msg); ec) {
    ++counters_.send_errors;
    last_error_ = "IPFIX to " + target_ + ": " + ec.message();
    return false;
  }
  ++counters_.messages;
  counters_.bytes += msg.size();
  return true;
}

void IpfixExporter::send_pending() {
  if (pending_ == 0) return;
  close_set();
  const auto now = options_.wall_now ? options_.wall_now() : std::chrono::system_clock::now();
  if (templates_due(now)) send_templates(now);
  if (send_message(msg_, now)) {
    counters_.records += pending_;
    ++messages_since_templates_;
  } else {
    counters_.lost_records += pending_;
  }
  // Counted as sent either way: a collector sees the loss as a gap in the sequence.
  sequence_ += static_cast<uint32_t>(pending_);
  msg_.clear();
  pending_ = 0;
}

}  // namespace gl::glctld
