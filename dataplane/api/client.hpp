// client.hpp — the C++ client of the datapath API.
//
// Purpose: what gl-dpctl, the OVS provider (through the C ABI in gl_dpapi.h) and glctld
// use to program gldp: ports, flows (batched), execute, upcalls, stats, ESP SAs, the
// connection tracker. Every call is a request/reply over one SOCK_SEQPACKET connection;
// upcalls that arrive while waiting for a reply are queued and handed out by
// recv_upcall().
// Thread-safety: one Client per thread (or external locking). Complexity: each call is
// one round trip per message; batches are split into as few messages as fit.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dataplane/api/wire.hpp"

namespace gl::api {

class MessageBuilder;

template <typename T>
using Result = std::expected<T, Error>;

struct FlowPut {
  Ufid ufid{};
  uint32_t flags = kPutCreate;
  flow::FlowMatch match{};
  std::vector<uint8_t> actions;
};

struct Flow {
  Ufid ufid{};
  flow::FlowMatch match{};
  FlowStats stats{};
  std::vector<uint8_t> actions;
};

// One packet of a batched execute; the spans must stay valid for the call.
struct ExecuteOp {
  flow::FlowKey metadata{};
  std::span<const uint8_t> actions;
  std::span<const uint8_t> packet;
};

struct Upcall {
  UpcallKind kind = UpcallKind::kMiss;
  uint32_t pid = 0;
  flow::FlowKey key{};
  std::vector<uint8_t> userdata;
  std::vector<uint8_t> packet;
};

struct Stats {
  StatsReply totals{};
  std::vector<PmdStats> pmds;
  std::vector<DropCounter> drops;
};

// Connection tracking (wire.hpp CtEntry and the kCt* messages).
// One workload port of a firewall version (fw_install).
struct FwPortSpec {
  uint32_t port_no = 0;
  uint32_t identity = 0;
  uint32_t conn_limit = 0;
  uint8_t mac[6] = {};
  uint8_t default_from_vm = 1;  // fw::Action (deny)
  uint8_t default_to_vm = 1;
  std::vector<uint32_t> ipv4;  // network order
  std::vector<std::array<uint8_t, 16>> ipv6;
  std::vector<FwEntryWire> from_vm, to_vm;  // in evaluation order
};

struct CtLimits {
  uint32_t default_limit = 0;      // 0 = unlimited
  std::vector<CtZoneLimit> zones;  // zone, limit, connections now
};

struct CtStats {
  CtStatsReply totals{};
  std::vector<CtCounter> invalid;    // +inv packets per reason, every reason
  std::vector<CtProtoCount> protos;  // live connections per IP protocol (non-zero only)
};

// Fragment reassembly status (wire.hpp IpfStatusReply and its per-reason counters).
struct IpfStatus {
  IpfStatusReply totals{};
  std::vector<IpfCounter> invalid;  // fragments refused, per reason (IPv4, IPv6)
  std::vector<IpfCounter> passed;   // fragments sent on un-reassembled, per reason
};

// A UFID derived from a match, for flows installed without one (gl-dpctl add-flow):
// the same match always gives the same UFID, so del-flow FLOW finds it.
Ufid ufid_from_match(const flow::FlowMatch& m);
std::string format_ufid(const Ufid& u);
std::optional<Ufid> parse_ufid(std::string_view s);

class Client {
 public:
  static Result<Client> connect(const std::string& path);
  Client(Client&& o) noexcept;
  Client& operator=(Client&& o) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  int fd() const { return fd_; }

  Result<InfoReply> info();

  Result<PortInfo> port_add(const std::string& name, const std::string& devargs,
                            uint32_t port_no = kPortAny, uint16_t n_rxq = 0, uint16_t mtu = 0);
  Result<void> port_del(uint32_t port_no);
  Result<void> port_del(const std::string& name);
  Result<std::vector<PortInfo>> port_list();
  Result<PortInfo> port_get(uint32_t port_no);
  Result<PortInfo> port_get(const std::string& name);
  // Sets a port's MTU (by number, or by name with port_no = kPortAny).
  Result<PortInfo> port_set_mtu(uint32_t port_no, const std::string& name, uint16_t mtu);

  // One result per entry, in order; the call itself fails only on transport errors.
  Result<std::vector<EntryResult>> flow_put(std::span<const FlowPut> flows);
  Result<std::vector<EntryResult>> flow_del(std::span<const Ufid> ufids);
  Result<Flow> flow_get(const Ufid& ufid);
  // Calls `fn` for every flow; returns when the dump is complete or `fn` returns false.
  Result<void> flow_dump(const std::function<bool(const Flow&)>& fn, bool with_actions = true);
  Result<void> flow_flush();

  Result<void> execute(const flow::FlowKey& metadata, std::span<const uint8_t> actions,
                       std::span<const uint8_t> packet);
  // Several executes, as few messages as fit (several in flight); one result per op, in
  // order (error 0 or errno + message). Fails as a whole only on transport errors.
  Result<std::vector<EntryResult>> execute_batch(std::span<const ExecuteOp> ops);

  Result<void> subscribe_upcalls(uint32_t pid, bool misses);
  // Next upcall; std::nullopt when none arrived within `timeout` (0 = do not wait).
  Result<std::optional<Upcall>> recv_upcall(std::chrono::milliseconds timeout);
  // Upcalls already received and queued in the client (the socket does not show them).
  size_t upcalls_queued() const { return upcalls_.size(); }

  Result<Stats> stats();
  Result<void> stats_clear();
  Result<void> set_config(const std::string& key, const std::string& value);

  // ESP security associations (wire.hpp SaAddRequest / SaInfo). Keys are returned by
  // sa_dump only with keys = true.
  Result<void> sa_add(const SaAddRequest& req);
  Result<void> sa_del(uint32_t spi, SaDir dir, uint32_t grace_ms = 0);
  Result<std::vector<SaInfo>> sa_dump(bool keys = false);

  // Connection tracking. A zone outside 0..65535 is sent as is and refused by gldp.
  // ct_dump calls fn for every connection (of `zone` when given) until the dump is
  // complete or fn returns false; pages are fetched as fn consumes them.
  // firewall = true: the firewall's tracker (kFwCtDump), zone = a workload's port number.
  Result<void> ct_dump(std::optional<uint32_t> zone, const std::function<bool(const CtEntry&)>& fn,
                       bool firewall = false);
  // Removes every connection, a zone's (zone), or the one with `tuple` in `zone` (0 when
  // not given): returns how many were removed; ENOENT when the tuple names none.
  // firewall = true: in the firewall's tracker (kFwCtFlush).
  Result<uint32_t> ct_flush(std::optional<uint32_t> zone = std::nullopt,
                            const CtTuple* tuple = nullptr, bool firewall = false);
  Result<CtConfigReply> ct_get_config();  // connections, max, capacity, seq check
  Result<void> ct_set_max_conns(uint32_t max_conns);
  Result<void> ct_set_tcp_seq_check(bool enabled);
  // Sets the default (when given) and per-zone limits (count ignored). More zones than one
  // message holds go in several messages, each applied as a whole.
  Result<void> ct_set_limits(std::optional<uint32_t> default_limit,
                             std::span<const CtZoneLimit> zones);
  Result<void> ct_del_limits(std::span<const uint32_t> zones);
  // The default limit and, for each zone asked for, its limit (its own or the default) and
  // connections; with no zones, every zone that has its own limit.
  Result<CtLimits> ct_get_limits(std::span<const uint32_t> zones = {});

  // ---- the distributed firewall ----
  // Installs one firewall version as a transaction (kFwBegin, ipcache pages, each port and
  // its entry pages, kFwCommit): in force for every port at once when it returns, or not
  // at all (the error names the problem). generation > 0.
  // record: kFwRecord* (events besides those of entries with log). quarantine: names of
  // workload ports gldp does not have yet, closed when they are added (kFwQuarantine).
  Result<void> fw_install(uint64_t generation, std::span<const FwPrefixWire> ipcache,
                          std::span<const FwPortSpec> ports, uint32_t record = 0,
                          std::span<const std::string> quarantine = {},
                          std::span<const FwHostWire> hosts = {});
  Result<void> fw_clear();  // no firewall on any port
  // A version written as its changes to version `base`, which must be in force
  // (wire.hpp kFwBeginDelta; ESTALE when another is): ports replace theirs or are added,
  // `removed` leave the firewall, the others keep their tables; the ipcache and hosts are
  // kept unless new_ipcache (then these replace both); the quarantine is the whole list.
  struct FwDelta {
    uint64_t base = 0;
    uint32_t record = 0;
    bool new_ipcache = false;
    std::span<const FwPrefixWire> ipcache;
    std::span<const FwHostWire> hosts;
    std::span<const FwPortSpec> ports;
    std::span<const uint32_t> removed;
    std::span<const std::string> quarantine;
  };
  Result<void> fw_update(uint64_t generation, const FwDelta& delta);
  Result<FwStatusReply> fw_status();
  // Up to max (1..kFwMaxEventsPerMsg) of the oldest events not handed out yet.
  struct FwEvents {
    std::vector<FwEventWire> events;
    uint32_t pending = 0;  // still waiting
    uint64_t lost = 0;     // dropped since gldp started
  };
  Result<FwEvents> fw_events(uint32_t max = kFwMaxEventsPerMsg);
  // Every rule's counters (all pages), sorted by rule id.
  Result<std::vector<FwRuleStat>> fw_rule_stats();
  Result<FwTraceReply> fw_trace(const FwTraceRequest& req);
  // The tracker's counters; clear = zero them after reading.
  Result<CtStats> ct_stats(bool clear = false);
  // Timeout policies (wire.hpp CtTimeoutPolicy): set creates or replaces one; get and dump
  // report every class's seconds (present = kCtTpAllClasses); get and del of an id without
  // a policy are ENOENT. The dump lists every policy, the default one (id 0) included.
  Result<void> ct_set_timeout_policy(const CtTimeoutPolicy& tp);
  Result<CtTimeoutPolicy> ct_get_timeout_policy(uint32_t id);
  Result<void> ct_del_timeout_policy(uint32_t id);
  Result<std::vector<CtTimeoutPolicy>> ct_dump_timeout_policies();
  // Fragment reassembly (OVS's dpctl/ipf-*). gldp refuses a min_frag below 400 and a
  // max_nfrags above 5000 (EINVAL, naming the bound).
  Result<void> ipf_set_enabled(bool v6, bool enabled);
  Result<void> ipf_set_min_frag(bool v6, uint32_t min_frag);
  Result<void> ipf_set_max_nfrags(uint32_t max_nfrags);
  Result<IpfStatus> ipf_get_status();
  // The reassembly lists now, one line each in OVS's ipf-get-status -m form.
  Result<std::vector<std::string>> ipf_dump();

  // Low level: send one request datagram and wait for its reply (queuing upcalls).
  Result<std::vector<uint8_t>> transact(std::span<const uint8_t> request, uint32_t xid);
  uint32_t next_xid() { return ++xid_; }

 private:
  explicit Client(int fd) : fd_(fd) {}
  Result<std::vector<uint8_t>> recv_one(int timeout_ms);
  Result<void> send_request(std::span<const uint8_t> request);
  Result<std::vector<uint8_t>> await_reply(uint32_t xid);
  // Sends batches built by `fill` (which appends entries from index i on and returns how
  // many it took) with several requests in flight; collects per-entry results in order.
  Result<std::vector<EntryResult>> batch_pipeline(
      MsgType type, size_t total, const std::function<uint32_t(MessageBuilder&, size_t)>& fill);
  bool queue_if_upcall(const std::vector<uint8_t>& msg);
  // fw_install and fw_update: kFwBegin, hosts, ipcache, removed ports, ports with their
  // rules, quarantine, kFwCommit.
  Result<void> fw_transaction(const FwBeginRequest& begin, std::span<const FwPrefixWire> ipcache,
                              std::span<const FwHostWire> hosts, std::span<const FwPortSpec> ports,
                              std::span<const uint32_t> removed,
                              std::span<const std::string> quarantine);

  int fd_ = -1;
  uint32_t xid_ = 0;
  std::deque<Upcall> upcalls_;
  std::vector<uint8_t> rxbuf_;
};

}  // namespace gl::api
