// daemon_runtime.cpp — the Daemon's runtime side: flow records from gldp's firewall events
// (JSON lines, IPFIX, `log` rules into glctld's log) and the management commands that ask
// gldp (rule-stats, conntrack, flush-conntrack, trace). control/DESIGN.md, "glctld".
#include <arpa/inet.h>

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <memory>
#include <utility>

#include <boost/asio/post.hpp>

#include "control/glctld/daemon.hpp"
#include "control/policy/rule_text.hpp"
#include "dataplane/conntrack/tcp.hpp"
#include "dataplane/firewall/fw_events.hpp"
#include "dataplane/firewall/fw_tables.hpp"

namespace gl::glctld {

namespace asio = boost::asio;
using Json = nlohmann::json;

namespace {

// The firewall's name tables (views of string literals: data() is null-terminated).
const char* action_name(uint8_t a) {
  return fw::action_name(a).data();
}

bool allows(uint8_t a) {
  return a == 0 || a == 3;
}

const char* reason_name(uint8_t r) {
  return fw::event_reason_name(r).data();
}

// OVS's CT_DPIF_TCPS_* numbering (api::CtEntry): the tracker's own names.
const char* tcp_state_name(uint8_t s) {
  return ct::tcp_state_name(static_cast<ct::TcpState>(s)).data();  // literals: NUL-terminated
}

bool is_icmp(uint8_t family, uint8_t proto) {
  return (family == 4 && proto == 1) || (family == 6 && proto == 58);
}

std::array<uint8_t, 16> addr16(const uint8_t* a) {
  std::array<uint8_t, 16> out{};
  std::memcpy(out.data(), a, 16);
  return out;
}

std::string addr_text(uint8_t family, const uint8_t* a) {
  return flow_address_text(family, addr16(a));
}

Json tuple_json(const api::CtTuple& t) {
  Json j{{"src", addr_text(t.family, t.src)}, {"dst", addr_text(t.family, t.dst)}};
  if (is_icmp(t.family, t.proto)) {
    j["icmp_id"] = ntohs(t.icmp_id);
    j["icmp_type"] = t.icmp_type;
    j["icmp_code"] = t.icmp_code;
  } else if (t.sport != 0 || t.dport != 0) {
    j["sport"] = ntohs(t.sport);
    j["dport"] = ntohs(t.dport);
  }
  return j;
}

// The firewall's label (dataplane/firewall/fw_tables.hpp ConnVerdict): generation (low 32
// bits), direction and action; false when the label is not the firewall's.
struct LabelVerdict {
  uint32_t generation = 0;
  bool to_vm = false;
  uint8_t action = 0;
};
bool read_label(const uint8_t label[16], LabelVerdict& v) {
  if (label[15] != 0x47) return false;
  std::memcpy(&v.generation, label, 4);
  v.to_vm = label[8] != 0;
  v.action = label[9] & 3;
  return true;
}

// One trace packet: "tcp,src=10.0.0.1,dst=10.0.0.2,tp_src=40000,tp_dst=5432" (fields in any
// order; ovs-ofctl's nw_src/nw_dst/ipv6_src/ipv6_dst spellings too).
struct TracePacket {
  uint8_t proto = 0;
  bool has_proto = false;
  std::optional<policy::IpAddress> src, dst;
  std::optional<uint16_t> sport, dport, icmp_id;
  std::optional<uint8_t> icmp_type, icmp_code;
  std::optional<policy::Mac> mac;
};

std::expected<uint64_t, std::string> number(std::string_view key, std::string_view v,
                                            uint64_t max) {
  uint64_t n = 0;
  if (v.empty() || v.size() > 10) return std::unexpected(std::string(key) + ": a number");
  for (char c : v) {
    if (c < '0' || c > '9')
      return std::unexpected(std::string(key) + ": \"" + std::string(v) + "\" is not a number");
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n > max)
    return std::unexpected(std::string(key) + ": " + std::string(v) + " is over " +
                           std::to_string(max));
  return n;
}

std::expected<TracePacket, std::string> parse_trace_packet(std::string_view text) {
  TracePacket p;
  auto set_proto = [&](uint8_t proto) -> std::expected<void, std::string> {
    if (p.has_proto && p.proto != proto) return std::unexpected("two protocols");
    p.proto = proto;
    p.has_proto = true;
    return {};
  };
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view f = text.substr(start, comma - start);
    start = comma + 1;
    while (!f.empty() && f.front() == ' ') f.remove_prefix(1);
    while (!f.empty() && f.back() == ' ') f.remove_suffix(1);
    if (f.empty()) {
      if (comma == text.size()) break;
      continue;
    }
    const size_t eq = f.find('=');
    const std::string_view key = f.substr(0, eq);
    const std::string_view val = eq == std::string_view::npos ? "" : f.substr(eq + 1);
    std::expected<void, std::string> ok;
    if (eq == std::string_view::npos) {
      if (key == "tcp" || key == "tcp6") {
        ok = set_proto(6);
      } else if (key == "udp" || key == "udp6") {
        ok = set_proto(17);
      } else if (key == "icmp") {
        ok = set_proto(1);
      } else if (key == "icmp6") {
        ok = set_proto(58);
      } else if (key == "sctp" || key == "sctp6") {
        ok = set_proto(132);
      } else {
        return std::unexpected("\"" + std::string(key) +
                               "\": not a field (tcp, udp, icmp, icmp6, sctp, proto=N, src=, "
                               "dst=, tp_src=, tp_dst=, icmp_type=, icmp_code=, icmp_id=, "
                               "dl_src=)");
      }
    } else if (key == "proto" || key == "nw_proto") {
      auto n = number(key, val, 255);
      if (!n) return std::unexpected(n.error());
      ok = set_proto(static_cast<uint8_t>(*n));
    } else if (key == "src" || key == "nw_src" || key == "ipv6_src" || key == "dst" ||
               key == "nw_dst" || key == "ipv6_dst") {
      auto a = policy::IpAddress::parse(val);
      if (!a) return std::unexpected(std::string(key) + ": " + a.error());
      (key.find("src") != std::string_view::npos ? p.src : p.dst) = *a;
    } else if (key == "tp_src" || key == "tp_dst" || key == "icmp_id") {
      auto n = number(key, val, 65535);
      if (!n) return std::unexpected(n.error());
      (key == "tp_src"   ? p.sport
       : key == "tp_dst" ? p.dport
                         : p.icmp_id) = static_cast<uint16_t>(*n);
    } else if (key == "icmp_type" || key == "icmp_code") {
      auto n = number(key, val, 255);
      if (!n) return std::unexpected(n.error());
      (key == "icmp_type" ? p.icmp_type : p.icmp_code) = static_cast<uint8_t>(*n);
    } else if (key == "dl_src") {
      auto m = policy::parse_mac(val);
      if (!m) return std::unexpected("dl_src: \"" + std::string(val) + "\" is not a MAC address");
      p.mac = *m;
    } else {
      return std::unexpected("\"" + std::string(key) + "\": unknown field");
    }
    if (!ok) return std::unexpected(ok.error());
    if (comma == text.size()) break;
  }
  if (!p.has_proto) return std::unexpected("no protocol (tcp, udp, icmp, icmp6, sctp, proto=N)");
  return p;
}

// What one hop of a trace means for the packet, in words, and whether it passes.
std::pair<bool, std::string> hop_verdict(const api::FwTraceReply& r, bool to_vm) {
  const std::string rule =
      r.rule_id == 0 ? "the default action" : "rule " + std::to_string(r.rule_id);
  if (!r.has_fw) return {true, "passes unchecked: the port has no firewall"};
  if (!to_vm && !r.source_ok)
    return {false, "dropped by the spoof guard: the source is not the workload's (fw_spoof)"};
  if (r.untracked == api::kFwTraceRaGuard)
    return {false,
            "dropped by the RA guard: a workload may not send router advertisements "
            "(fw_spoof)"};
  if (r.untracked == api::kFwTraceNdPass)
    return {true, std::string("passes untracked: neighbour discovery or MLD, not subject to "
                              "the policy") +
                      (to_vm ? "" : " (its link-layer address options must name the port's MAC)")};
  if (r.conn_found && r.conn_current)
    return {true, std::string("passes: ") + (r.conn_reply ? "a reply of" : "a packet of") +
                      " an established connection allowed by this policy version"};
  if (r.conn_found) {
    if (allows(r.action))
      return {true, "passes: a connection of an older policy version, checked again and kept (" +
                        rule + ")"};
    return {false, "dropped: a connection the current policy no longer allows is cut (" + rule +
                       ", fw_revoked)"};
  }
  switch (r.action) {
    case 0:
    case 3:
      return {true, "passes: a new connection, allowed by " + rule + " and committed"};
    case 2:
      return {false, "rejected by " + rule +
                         (to_vm ? " (dropped; the sender gets a TCP RST or ICMP unreachable)"
                                : " (answered with a TCP RST or ICMP unreachable)")};
    default:
      return {false, "dropped by " + rule + " (deny)"};
  }
}

}  // namespace

// ---- flow export --------------------------------------------------------------------------

void Daemon::apply_export(const ExportSettings& s) {
  const ExportSettings old = export_;
  export_ = s;
  if (s.flow_log != old.flow_log) {
    flow_log_.reset();
    flow_log_error_.clear();
    if (!s.flow_log.empty()) {
      auto w = std::make_unique<FlowLogWriter>(opt_.flow_log);
      if (auto ok = w->open(s.flow_log); !ok) {
        flow_log_error_ = ok.error();
        log_.error("flow log: " + ok.error() + "; flow records are not written to a file");
      } else {
        flow_log_ = std::move(w);
        log_.info("flow log: writing flow records to " + s.flow_log);
      }
    } else if (!old.flow_log.empty()) {
      log_.info("flow log: off");
    }
  }
  if (s.ipfix_collector != old.ipfix_collector || s.ipfix_export_start != old.ipfix_export_start) {
    if (ipfix_) ipfix_->flush();
    ipfix_.reset();
    ipfix_error_.clear();
    if (!s.ipfix_collector.empty()) {
      IpfixOptions o = opt_.ipfix;
      o.export_start = s.ipfix_export_start;
      auto e = IpfixExporter::create(io_.get_executor(), s.ipfix_collector, o);
      if (!e) {
        ipfix_error_ = e.error();
        log_.error("ipfix: " + e.error() + "; no IPFIX export");
      } else {
        ipfix_ = std::move(*e);
        log_.info("ipfix: exporting flow records to " + ipfix_->target());
      }
    } else if (!old.ipfix_collector.empty()) {
      log_.info("ipfix: off");
    }
  }
  arm_poll();
}

void Daemon::reopen_logs() {
  if (!flow_log_) return;
  if (auto ok = flow_log_->reopen(); !ok)
    log_.error("flow log: reopen: " + ok.error() + "; still writing to the old file");
  else
    log_.info("flow log: reopened " + flow_log_->path());
}

void Daemon::arm_poll() {
  if (poll_armed_ || poll_busy_ || stopped_ || !query_) return;
  if (!export_.any() && !log_rules_) return;
  poll_armed_ = true;
  poll_timer_.expires_after(opt_.event_poll);
  std::weak_ptr<bool> alive = alive_;
  poll_timer_.async_wait([this, alive](boost::system::error_code ec) {
    auto a = alive.lock();
    if (ec || !a || !*a) return;
    poll_armed_ = false;
    poll_events();
  });
}

void Daemon::poll_events() {
  if (poll_busy_ || stopped_) return;
  poll_busy_ = true;
  std::weak_ptr<bool> alive = alive_;
  auto deliver = [this, alive](std::vector<api::FwEventWire> ev, uint32_t pending, uint64_t lost,
                               std::string error) {
    asio::post(
        io_, [this, alive, ev = std::move(ev), pending, lost, error = std::move(error)]() mutable {
          if (auto a = alive.lock(); a && *a) on_events(std::move(ev), pending, lost, error);
        });
  };
  query_->submit(
      [deliver](api::Client& c) {
        // A bounded batch per poll (the next poll follows at once while gldp has more).
        std::vector<api::FwEventWire> all;
        uint32_t pending = 0;
        uint64_t lost = 0;
        for (int i = 0; i < 20; ++i) {
          auto r = c.fw_events(api::kFwMaxEventsPerMsg);
          if (!r) {
            const bool broken = is_transport_error(r.error());
            deliver(std::move(all), 0, lost, "fw events: " + r.error().message);
            return !broken;
          }
          all.insert(all.end(), r->events.begin(), r->events.end());
          pending = r->pending;
          lost = r->lost;
          if (pending == 0 || r->events.empty()) break;
        }
        deliver(std::move(all), pending, lost, "");
        return true;
      },
      [deliver](const std::string& error) { deliver({}, 0, 0, error); });
}

void Daemon::on_events(std::vector<api::FwEventWire> events, uint32_t pending, uint64_t lost,
                       const std::string& error) {
  poll_busy_ = false;
  if (!error.empty()) {
    if (error != events_error_) log_.warn("flow records: " + error + "; retrying");
    events_error_ = error;
  } else {
    if (!events_error_.empty()) log_.info("flow records: gldp answers again");
    events_error_.clear();
    ++event_polls_;
    if (lost > dp_events_lost_)
      log_.warn("flow records: gldp dropped " + std::to_string(lost - dp_events_lost_) +
                " events (its rings or backlog were full)");
    dp_events_lost_ = lost;
    dp_events_pending_ = pending;
  }
  events_ += events.size();
  const bool exporting = flow_log_ || ipfix_;
  for (const api::FwEventWire& e : events) {
    const FlowRecord r = to_record(e);
    if (flow_log_) flow_log_->write(r);
    if (ipfix_) ipfix_->add(r);
    if (!exporting) {
      // A rule with `log` and no exporter: glctld's own log, rate-limited.
      if (!log_bucket_.take(std::chrono::steady_clock::now())) {
        ++log_lines_suppressed_;
        continue;
      }
      std::string line = "flow: " + flow_record_json(r).dump();
      if (log_lines_suppressed_ > 0)
        line += " (" + std::to_string(log_lines_suppressed_) + " earlier lines suppressed)";
      log_lines_suppressed_ = 0;
      log_.info(line);
    }
  }
  if (ipfix_) ipfix_->flush();
  const auto now = std::chrono::steady_clock::now();
  if (flow_log_ && now - last_tick_ >= std::chrono::seconds(1)) {
    flow_log_->tick();
    last_tick_ = now;
  }
  if (pending > 0 && error.empty()) {
    poll_events();  // more waiting: at once
    return;
  }
  arm_poll();
}

FlowRecord Daemon::to_record(const api::FwEventWire& e) const {
  FlowRecord r;
  switch (e.kind) {
    case api::kFwEventStart:
      r.kind = FlowRecord::Kind::kStart;
      r.start_ms = e.start_ms;
      break;
    case api::kFwEventEnd:
      r.kind = FlowRecord::Kind::kEnd;
      r.start_ms = e.start_ms;
      r.end_ms = e.time_ms;
      break;
    default:
      r.kind = FlowRecord::Kind::kDeny;
      r.start_ms = r.end_ms = e.time_ms;
      break;
  }
  r.family = e.family;
  r.proto = e.proto;
  std::memcpy(r.src.data(), e.src, 16);
  std::memcpy(r.dst.data(), e.dst, 16);
  if (is_icmp(e.family, e.proto)) {
    r.icmp_type = e.icmp_type;
    r.icmp_code = e.icmp_code;
  } else {
    r.sport = ntohs(e.sport);
    r.dport = ntohs(e.dport);
  }
  r.packets[0] = e.packets[0];
  r.packets[1] = e.packets[1];
  r.bytes[0] = e.bytes[0];
  r.bytes[1] = e.bytes[1];
  r.rule_id = e.rule_id;
  r.src_identity = identity_of(e.family, e.src);
  r.dst_identity = identity_of(e.family, e.dst);
  r.src_name = name_of(e.family, e.src, r.src_identity);
  r.dst_name = name_of(e.family, e.dst, r.dst_identity);
  r.workload = workload_of_port(e.port_no);
  r.to_vm = e.to_vm != 0;
  r.action = action_name(e.action);
  r.reason = e.kind == api::kFwEventStart ? "" : reason_name(e.reason);
  r.suppressed = e.suppressed;
  return r;
}

void Daemon::index_names(const policy::DesiredState& state) {
  addr_name_.clear();
  host_identity_.clear();
  cidr_identity_.clear();
  identity_name_.clear();
  for (const policy::Workload& w : state.workloads)
    for (const std::string& ip : w.ips)
      if (auto a = policy::IpAddress::parse(ip))
        addr_name_[{static_cast<uint8_t>(a->family), a->bytes}] = w.name;
  if (!running_) return;
  for (const policy::IpcacheEntry& e : running_->ipcache) {
    if (e.prefix.is_host())
      host_identity_[{static_cast<uint8_t>(e.prefix.address.family), e.prefix.address.bytes}] =
          e.identity;
    else
      cidr_identity_.push_back(e);
  }
  std::stable_sort(cidr_identity_.begin(), cidr_identity_.end(),
                   [](const auto& a, const auto& b) { return a.prefix.length > b.prefix.length; });
  for (const policy::IdentityInfo& i : running_->identities) {
    if (i.kind == policy::IdentityKind::kCidr)
      identity_name_[i.identity] = i.prefix.to_short_string();
    else if (i.kind == policy::IdentityKind::kWorld)
      identity_name_[i.identity] = "world";
  }
}

uint32_t Daemon::identity_of(uint8_t family, const uint8_t* addr) const {
  policy::IpAddress a;
  a.family = family == 6 ? policy::Family::kIpv6 : policy::Family::kIpv4;
  std::memcpy(a.bytes.data(), addr, family == 6 ? 16 : 4);
  if (auto it = host_identity_.find({family, a.bytes}); it != host_identity_.end())
    return it->second;
  for (const policy::IpcacheEntry& e : cidr_identity_)
    if (e.prefix.contains(a)) return e.identity;
  return policy::kWorldIdentity;
}

std::string Daemon::name_of(uint8_t family, const uint8_t* addr, uint32_t identity) const {
  std::array<uint8_t, 16> b{};
  std::memcpy(b.data(), addr, family == 6 ? 16 : 4);
  if (auto it = addr_name_.find({family, b}); it != addr_name_.end()) return it->second;
  if (auto it = identity_name_.find(identity); it != identity_name_.end()) return it->second;
  return "";
}

std::string Daemon::workload_of_port(uint32_t port_no) const {
  for (const auto& [name, no] : port_nos_)
    if (no == port_no) return name;
  return "";
}

uint32_t Daemon::port_of(const std::string& workload) const {
  for (const auto& [name, no] : port_nos_)
    if (name == workload) return no;
  return 0;
}

const policy::LocalWorkload* Daemon::local_workload(const std::string& name) const {
  if (!running_) return nullptr;
  for (const policy::LocalWorkload& w : running_->workloads)
    if (w.name == name) return &w;
  return nullptr;
}

Json Daemon::export_json() const {
  Json j{{"flow_log", export_.flow_log.empty() ? Json(nullptr) : Json(export_.flow_log)},
         {"ipfix_collector",
          export_.ipfix_collector.empty() ? Json(nullptr) : Json(export_.ipfix_collector)},
         {"polling", export_.any() || log_rules_},
         {"events", events_},
         {"event_polls", event_polls_},
         {"gldp_events_lost", dp_events_lost_},
         {"gldp_events_pending", dp_events_pending_},
         {"error", events_error_}};
  if (flow_log_ || !flow_log_error_.empty()) {
    Json f{{"error", flow_log_error_}};
    if (flow_log_) {
      const FlowLogCounters c = flow_log_->counters();
      f["written"] = c.written;
      f["suppressed"] = c.suppressed;
      f["summaries"] = c.summaries;
      f["errors"] = c.errors;
      if (!flow_log_->last_error().empty()) f["error"] = flow_log_->last_error();
    }
    j["flow_log_state"] = f;
  }
  if (ipfix_ || !ipfix_error_.empty()) {
    Json x{{"error", ipfix_error_}};
    if (ipfix_) {
      const IpfixCounters c = ipfix_->counters();
      x["target"] = ipfix_->target();
      x["messages"] = c.messages;
      x["records"] = c.records;
      x["bytes"] = c.bytes;
      x["send_errors"] = c.send_errors;
      x["lost_records"] = c.lost_records;
      if (!ipfix_->last_error().empty()) x["error"] = ipfix_->last_error();
    }
    j["ipfix_state"] = x;
  }
  return j;
}

// ---- management commands that ask gldp -----------------------------------------------------

const std::string* Daemon::rule_text(uint32_t rule_id) {
  // Formatting every rule at each compile cost ~13 ms at 10k rules: done once when asked.
  if (rule_text_.empty() && !rules_.empty())
    for (const policy::Rule& r : rules_) rule_text_[r.rule_id] = policy::format_rule(r);
  auto it = rule_text_.find(rule_id);
  return it != rule_text_.end() ? &it->second : nullptr;
}

void Daemon::handle_async(const Json& request, MgmtServer::Reply reply) {
  auto cmd = request.find("cmd");
  const std::string name = cmd != request.end() && cmd->is_string() ? cmd->get<std::string>() : "";
  if (name == "rule-stats") return cmd_rule_stats(std::move(reply));
  if (name == "conntrack") return cmd_conntrack(request, std::move(reply), false);
  if (name == "flush-conntrack") return cmd_conntrack(request, std::move(reply), true);
  if (name == "trace") return cmd_trace(request, std::move(reply));
  reply(handle(request));
}

void Daemon::ask_gldp(std::function<Json(api::Client&, bool& link_ok)> job,
                      MgmtServer::Reply done) {
  if (!query_ || stopped_) return done(Json{{"error", "glctld is not running"}});
  std::weak_ptr<bool> alive = alive_;
  auto deliver = [this, alive, done](Json j) {
    asio::post(io_, [alive, done, j = std::move(j)] {
      if (auto a = alive.lock(); a && *a) done(j);
    });
  };
  query_->submit(
      [job = std::move(job), deliver](api::Client& c) {
        bool ok = true;
        Json j;
        try {
          j = job(c, ok);
        } catch (const std::exception& e) {
          j = Json{{"error", std::string("internal error: ") + e.what()}};
        }
        deliver(std::move(j));
        return ok;
      },
      [deliver](const std::string& error) {
        deliver(Json{{"error", error}});
      });
}

void Daemon::cmd_rule_stats(MgmtServer::Reply reply) {
  ask_gldp(
      [](api::Client& c, bool& ok) -> Json {
        auto r = c.fw_rule_stats();
        if (!r) {
          ok = !is_transport_error(r.error());
          return Json{{"error", "gldp: fw rule stats: " + r.error().message}};
        }
        Json rules = Json::array();
        for (const api::FwRuleStat& s : *r)
          rules.push_back({{"rule_id", s.rule_id},
                           {"packets", s.packets},
                           {"bytes", s.bytes},
                           {"connections", s.conns}});
        return Json{{"rules", rules}};
      },
      [this, reply](Json j) {
        if (j.contains("rules"))
          for (Json& r : j["rules"]) {
            const uint32_t id = r["rule_id"].get<uint32_t>();
            if (id == 0)
              r["text"] = "(default action)";
            else if (const std::string* text = rule_text(id))
              r["text"] = *text;
          }
        j["generation"] = dp_report_.generation;
        reply(std::move(j));
      });
}

void Daemon::cmd_conntrack(const Json& request, MgmtServer::Reply reply, bool flush) {
  std::optional<uint32_t> zone;
  std::string workload;
  if (auto w = request.find("workload"); w != request.end() && !w->is_null()) {
    if (!w->is_string()) return reply(Json{{"error", "workload: a name (string)"}});
    workload = w->get<std::string>();
    if (local_workload(workload) == nullptr)
      return reply(Json{{"error", "workload \"" + workload + "\" is not on this host (" +
                                      opt_.host + ") in the policy in force"}});
    const uint32_t port = port_of(workload);
    if (port == 0)
      return reply(Json{{"error", "workload \"" + workload + "\": its port is not in gldp"}});
    zone = port;
  }
  // zone=N: a conntrack zone of the firewall's tracker (a workload's is its port number).
  if (auto z = request.find("zone"); z != request.end() && !z->is_null()) {
    if (!workload.empty())
      return reply(Json{{"error", "zone: give a workload or a zone, not both"}});
    if (!z->is_number_unsigned() || z->get<uint64_t>() > UINT16_MAX)
      return reply(Json{{"error", "zone: a conntrack zone, 0..65535"}});
    zone = z->get<uint32_t>();
  }
  if (flush) {
    ask_gldp(
        [zone](api::Client& c, bool& ok) -> Json {
          auto r = c.ct_flush(zone, nullptr, true);
          if (!r) {
            ok = !is_transport_error(r.error());
            return Json{{"error", "gldp: fw flush conntrack: " + r.error().message}};
          }
          return Json{{"flushed", *r}};
        },
        [reply, workload, zone](Json j) {
          if (!workload.empty()) j["workload"] = workload;
          if (zone && !j.contains("error")) j["zone"] = *zone;
          reply(std::move(j));
        });
    return;
  }
  uint64_t max = 10000;
  if (auto m = request.find("max"); m != request.end()) {
    if (!m->is_number_unsigned() || m->get<uint64_t>() == 0 || m->get<uint64_t>() > 1000000)
      return reply(Json{{"error", "max: a number of connections, 1..1000000"}});
    max = m->get<uint64_t>();
  }
  auto entries = std::make_shared<std::vector<api::CtEntry>>();
  auto truncated = std::make_shared<bool>(false);
  ask_gldp(
      [zone, max, entries, truncated](api::Client& c, bool& ok) -> Json {
        auto r = c.ct_dump(
            zone,
            [&](const api::CtEntry& e) {
              if (entries->size() >= max) {
                *truncated = true;
                return false;
              }
              entries->push_back(e);
              return true;
            },
            true);
        if (!r) {
          ok = !is_transport_error(r.error());
          return Json{{"error", "gldp: fw dump conntrack: " + r.error().message}};
        }
        return Json::object();
      },
      [this, reply, entries, truncated, zone](Json j) {
        if (j.contains("error")) return reply(std::move(j));
        Json list = Json::array();
        for (const api::CtEntry& e : *entries) {
          Json c{{"workload", workload_of_port(e.zone)},
                 {"zone", e.zone},
                 {"family", e.orig.family},
                 {"proto", e.orig.proto},
                 {"orig", tuple_json(e.orig)},
                 {"reply", tuple_json(e.reply)},
                 {"packets", {e.packets[0], e.packets[1]}},
                 {"bytes", {e.bytes[0], e.bytes[1]}},
                 {"timeout_s", e.timeout_s},
                 {"rule_id", e.mark}};
          c["src_name"] =
              name_of(e.orig.family, e.orig.src, identity_of(e.orig.family, e.orig.src));
          c["dst_name"] =
              name_of(e.orig.family, e.orig.dst, identity_of(e.orig.family, e.orig.dst));
          if (e.orig.proto == 6)
            c["tcp_state"] = {tcp_state_name(e.tcp_state_orig), tcp_state_name(e.tcp_state_reply)};
          LabelVerdict v;
          if (read_label(e.label, v)) {
            c["direction"] = v.to_vm ? "ingress" : "egress";
            c["action"] = action_name(v.action);
            c["current"] = e.fw_current != 0;  // of its port's policy in force (gldp says)
          }
          list.push_back(std::move(c));
        }
        Json out{{"generation", dp_report_.generation},
                 {"connections", list},
                 {"truncated", *truncated}};
        if (zone) out["zone"] = *zone;
        reply(std::move(out));
      });
}

void Daemon::cmd_trace(const Json& request, MgmtServer::Reply reply) {
  auto str = [&](const char* key) -> std::string {
    auto it = request.find(key);
    return it != request.end() && it->is_string() ? it->get<std::string>() : "";
  };
  const std::string workload = str("workload"), direction = str("direction"),
                    packet = str("packet");
  if (workload.empty()) return reply(Json{{"error", "workload: required (a name)"}});
  if (direction != "from-vm" && direction != "to-vm")
    return reply(Json{{"error", "direction: from-vm or to-vm"}});
  const policy::LocalWorkload* w = local_workload(workload);
  if (w == nullptr)
    return reply(Json{{"error", "workload \"" + workload + "\" is not on this host (" + opt_.host +
                                    ") in the policy in force"}});
  const uint32_t port = port_of(workload);
  if (port == 0)
    return reply(Json{{"error", "workload \"" + workload + "\": its port is not in gldp"}});
  auto p = parse_trace_packet(packet);
  if (!p) return reply(Json{{"error", "packet: " + p.error()}});
  const bool to_vm = direction == "to-vm";
  // The workload's own end defaults to its first address (of the other end's family).
  auto own =
      [&](const std::optional<policy::IpAddress>& other) -> std::optional<policy::IpAddress> {
    for (const policy::IpAddress& a : w->ips)
      if (!other || a.family == other->family) return a;
    return std::nullopt;
  };
  if (!to_vm && !p->src) p->src = own(p->dst);
  if (to_vm && !p->dst) p->dst = own(p->src);
  if (!p->src || !p->dst) return reply(Json{{"error", "packet: src= and dst= are needed"}});
  if (p->src->family != p->dst->family)
    return reply(Json{{"error", "packet: src and dst are of different families"}});
  const uint8_t family = p->src->family == policy::Family::kIpv6 ? 6 : 4;
  api::FwTraceRequest req{};
  req.port_no = port;
  req.to_vm = to_vm ? 1 : 0;
  const policy::Mac mac = p->mac.value_or(w->mac);
  if (!to_vm) {
    req.has_mac = 1;
    std::memcpy(req.src_mac, mac.data(), 6);
  }
  api::CtTuple& t = req.tuple;
  t.family = family;
  t.proto = p->proto;
  std::memcpy(t.src, p->src->bytes.data(), 16);
  std::memcpy(t.dst, p->dst->bytes.data(), 16);
  if (is_icmp(family, p->proto)) {
    t.icmp_id = htons(p->icmp_id.value_or(0));
    t.icmp_type = p->icmp_type.value_or(family == 4 ? 8 : 128);
    t.icmp_code = p->icmp_code.value_or(0);
  } else if (p->proto == 6 || p->proto == 17 || p->proto == 132 || p->proto == 33 ||
             p->proto == 136) {
    if (!p->dport) return reply(Json{{"error", "packet: tp_dst= is needed"}});
    t.sport = htons(p->sport.value_or(49152));
    t.dport = htons(*p->dport);
  }
  // From a VM to another workload of this host: its ingress is the next hop.
  std::vector<std::pair<std::string, api::FwTraceRequest>> hops{{workload, req}};
  if (!to_vm) {
    if (auto it = addr_name_.find({family, p->dst->bytes}); it != addr_name_.end()) {
      if (local_workload(it->second) != nullptr && port_of(it->second) != 0 &&
          it->second != workload) {
        api::FwTraceRequest next = req;
        next.port_no = port_of(it->second);
        next.to_vm = 1;
        next.has_mac = 0;
        std::memset(next.src_mac, 0, 6);
        hops.emplace_back(it->second, next);
      }
    }
  }
  auto replies = std::make_shared<std::vector<api::FwTraceReply>>();
  ask_gldp(
      [hops, replies](api::Client& c, bool& ok) -> Json {
        for (const auto& [name, r] : hops) {
          auto tr = c.fw_trace(r);
          if (!tr) {
            ok = !is_transport_error(tr.error());
            return Json{{"error", "gldp: fw trace: " + tr.error().message}};
          }
          replies->push_back(*tr);
        }
        return Json::object();
      },
      [this, reply, hops, replies, family](Json j) {
        if (j.contains("error")) return reply(std::move(j));
        Json list = Json::array();
        bool passes = true;
        std::string verdict;
        for (size_t i = 0; i < replies->size(); ++i) {
          const api::FwTraceReply& r = (*replies)[i];
          const api::FwTraceRequest& q = hops[i].second;
          const bool in = q.to_vm != 0;
          const uint8_t* remote = in ? q.tuple.src : q.tuple.dst;
          auto [ok, text] = hop_verdict(r, in);
          Json h{{"workload", hops[i].first},
                 {"direction", in ? "to-vm" : "from-vm"},
                 {"port", q.port_no},
                 {"has_firewall", r.has_fw != 0},
                 {"identity", r.local_identity},
                 {"remote", addr_text(family, remote)},
                 {"remote_identity", r.remote_identity},
                 {"remote_name", name_of(family, remote, r.remote_identity)},
                 {"rule_id", r.rule_id},
                 {"action", action_name(r.action)},
                 {"log", r.log != 0},
                 {"passes", ok},
                 {"untracked", r.untracked != 0},
                 {"verdict", text}};
          if (r.rule_id == 0)
            h["rule"] = "(default action)";
          else if (const std::string* rt = rule_text(r.rule_id))
            h["rule"] = *rt;
          if (!in) h["source_ok"] = r.source_ok != 0;
          if (r.conn_found) {
            Json c{{"orig", tuple_json(r.conn.orig)},
                   {"reply_direction", r.conn_reply != 0},
                   {"current", r.conn_current != 0},
                   {"action", action_name(r.conn_action)},
                   {"rule_id", r.conn.mark},
                   {"packets", {r.conn.packets[0], r.conn.packets[1]}},
                   {"timeout_s", r.conn.timeout_s}};
            if (r.conn.orig.proto == 6)
              c["tcp_state"] = {tcp_state_name(r.conn.tcp_state_orig),
                                tcp_state_name(r.conn.tcp_state_reply)};
            h["connection"] = c;
          } else {
            h["connection"] = nullptr;
          }
          list.push_back(std::move(h));
          if (passes && !ok) {
            passes = false;
            verdict = hops[i].first + " " + (in ? "ingress" : "egress") + ": " + text;
          }
          if (!ok) break;  // nothing reaches the next hop
        }
        if (passes) verdict = "delivered";
        reply(Json{{"generation", replies->empty() ? 0 : replies->front().generation},
                   {"hops", list},
                   {"passes", passes},
                   {"verdict", verdict}});
      });
}

}  // namespace gl::glctld
