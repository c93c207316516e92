// daemon.hpp — glctld: the OVSDB desired state compiled into gldp's firewall, and the
// management API that tells how that goes.
//
// Purpose: the loop of the security control plane on one host.
//   OVSDB (ovsdb::Client, the five Goldilocks tables monitored)
//     -> any change or resync, debounced (~20 ms)
//     -> desired_state() + policy::compile() for this host (with the running identity
//        allocator, so identities stay stable)
//     -> rejected: the running policy stays in force; the problems are logged and kept
//        for the management API ("status")
//     -> accepted: to_fw_version(); if it differs from the running version, handed to the
//        gldp sync thread (DpSyncThread), which installs it, re-resolves port names,
//        re-installs after a gldp restart and retries with back-off while gldp is away.
//   An OVSDB outage changes nothing in gldp (it keeps enforcing the last version); the
//   client resyncs on return and the daemon recompiles.
// The management API (mgmt.hpp) answers {"cmd":"status"}, {"cmd":"compiled"} and
// {"cmd":"identities"}; control/DESIGN.md "glctld" gives the replies.
//
// Thread-safety: the Daemon lives on one io_context run by one thread; create(), start(),
// stop() and handle() are called on that thread (or before it runs). The gldp sync thread
// talks to it only by posting its reports to the io_context. Destroy the Daemon after
// io_context::run() returned (or after stop() with the io_context no longer run).
// Complexity: a recompile is policy::compile()'s cost (control/DESIGN.md); the rest is
// O(size of the state).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "control/glctld/dp_query.hpp"
#include "control/glctld/dp_sync.hpp"
#include "control/glctld/flow_export.hpp"
#include "control/glctld/keys.hpp"
#include "control/glctld/log.hpp"
#include "control/glctld/mgmt.hpp"
#include "control/glctld/state.hpp"
#include "control/ovsdb/client.hpp"
#include "control/policy/compiler.hpp"

namespace gl::glctld {

inline constexpr const char* kDefaultDbRemote = "unix:/run/goldilocks/db.sock";
inline constexpr const char* kDefaultGldpSocket = "/run/gldp/gldp.sock";
inline constexpr const char* kDefaultMgmtSocket = "/run/goldilocks/glctld.sock";

struct DaemonOptions {
  std::vector<std::string> db_remotes{kDefaultDbRemote};
  std::string host;  // this hypervisor's name, as Workload.host says it
  std::string gldp_socket = kDefaultGldpSocket;
  std::string mgmt_socket = kDefaultMgmtSocket;
  std::chrono::milliseconds debounce{20};
  DpSyncThread::Options dp;
  // OVSDB session timers (ovsdb::ClientOptions).
  std::chrono::milliseconds db_probe_interval{5000};
  std::chrono::milliseconds db_backoff_min{100};
  std::chrono::milliseconds db_backoff_max{8000};
  // Makes the link to gldp; empty: ApiLink on gldp_socket. Tests pass a fake.
  std::function<std::unique_ptr<DataplaneLink>()> make_link;
  // Flow records: how often gldp's events are fetched while anything wants them (an
  // exporter configured, a rule with `log`), and the exporters' options.
  std::chrono::milliseconds event_poll{200};
  FlowLogOptions flow_log;
  IpfixOptions ipfix;
  // The key manager (keys.hpp); off without keys.key_file.
  KeyOptions keys;
};

class Daemon {
 public:
  // Checks the options, creates the OVSDB client and listens on the management socket
  // (the error says what is wrong). Connects to nothing yet.
  static std::expected<std::unique_ptr<Daemon>, std::string> create(boost::asio::io_context& io,
                                                                    DaemonOptions options,
                                                                    Logger& log);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Connects to OVSDB and starts the gldp sync thread.
  void start();
  // Closes the OVSDB session and the management socket, ends the sync thread (gldp keeps
  // the last version). Idempotent; io_context::run() returns once pending handlers ran.
  void stop();

  // One management API request (a JSON object) -> its reply. Commands that ask gldp
  // (rule-stats, conntrack, flush-conntrack, trace) need handle_async.
  nlohmann::json handle(const nlohmann::json& request);
  // Any request; `reply` runs once, on the io_context.
  void handle_async(const nlohmann::json& request, MgmtServer::Reply reply);
  // SIGHUP: the flow log's file is opened again (after logrotate moved it).
  void reopen_logs();

 private:
  Daemon(boost::asio::io_context& io, DaemonOptions options, Logger& log);

  void on_db_state(ovsdb::State state, std::string_view reason);
  void schedule_compile();
  void compile();
  void reject(const policy::Error& error);
  void on_report(const SyncReport& report);

  nlohmann::json status_json() const;
  nlohmann::json identities_json() const;

  // Runtime state from gldp and flow records (daemon_runtime.cpp).
  void apply_export(const ExportSettings& s);
  void index_names(const policy::DesiredState& state);
  void arm_poll();
  void poll_events();
  void on_events(std::vector<api::FwEventWire> events, uint32_t pending, uint64_t lost,
                 const std::string& error);
  FlowRecord to_record(const api::FwEventWire& e) const;
  uint32_t identity_of(uint8_t family, const uint8_t* addr) const;
  std::string name_of(uint8_t family, const uint8_t* addr, uint32_t identity) const;
  std::string workload_of_port(uint32_t port_no) const;
  const policy::LocalWorkload* local_workload(const std::string& name) const;
  uint32_t port_of(const std::string& workload) const;  // 0: not in gldp
  // Runs `job` on the query thread; its result (or gldp's error) is handed to `done` on
  // the io_context.
  void ask_gldp(std::function<nlohmann::json(api::Client&, bool& link_ok)> job,
                MgmtServer::Reply done);
  void cmd_rule_stats(MgmtServer::Reply reply);
  void cmd_conntrack(const nlohmann::json& request, MgmtServer::Reply reply, bool flush);
  void cmd_trace(const nlohmann::json& request, MgmtServer::Reply reply);
  nlohmann::json export_json() const;

  boost::asio::io_context& io_;
  DaemonOptions opt_;
  Logger& log_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::optional<ovsdb::Client> db_;
  std::unique_ptr<MgmtServer> mgmt_;
  std::unique_ptr<DpSyncThread> dp_;
  std::unique_ptr<KeyManager> keys_;
  boost::asio::steady_timer debounce_;
  bool compile_armed_ = false;
  bool loaded_ = false;  // the replica had its first full load
  bool stopped_ = false;

  // OVSDB session.
  ovsdb::State db_state_ = ovsdb::State::kIdle;
  std::string db_reason_;
  bool db_was_connected_ = false;
  bool db_failure_logged_ = false;

  // The policy.
  std::optional<policy::CompiledPolicy> running_;  // the last accepted compilation
  size_t n_workloads_ = 0;                         // of the accepted desired state
  size_t n_groups_ = 0;
  size_t n_rules_ = 0;
  std::vector<std::string> errors_;  // the last rejected desired state's problems
  std::chrono::system_clock::time_point rejected_at_{};
  std::chrono::system_clock::time_point accepted_at_{};
  uint64_t compiles_ = 0;
  uint64_t rejections_ = 0;
  std::shared_ptr<const FwVersion> desired_;
  uint64_t desired_id_ = 0;

  // gldp, as the sync thread last reported.
  SyncReport dp_report_;
  std::vector<std::pair<std::string, uint32_t>> port_nos_;  // workload -> port in gldp
  bool have_report_ = false;
  uint64_t pushes_ = 0;
  nlohmann::json last_install_ = nullptr;  // how the last install went (status "last_install")
  std::string dp_error_logged_;
  std::vector<MissingPort> missing_logged_;

  // Runtime questions and events (daemon_runtime.cpp).
  std::unique_ptr<DpQueryThread> query_;
  boost::asio::steady_timer poll_timer_;
  bool poll_armed_ = false;
  bool poll_busy_ = false;
  bool log_rules_ = false;  // the compiled policy has a rule with `log`
  ExportSettings export_;
  std::string flow_log_error_, ipfix_error_;
  std::unique_ptr<FlowLogWriter> flow_log_;
  std::unique_ptr<IpfixExporter> ipfix_;
  TokenBucket log_bucket_{20, 100};  // `log` events into glctld's log without an exporter
  uint64_t log_lines_suppressed_ = 0;
  uint64_t events_ = 0;       // received from gldp
  uint64_t event_polls_ = 0;  // event requests answered
  uint64_t dp_events_lost_ = 0;
  uint32_t dp_events_pending_ = 0;
  std::string events_error_;
  std::chrono::steady_clock::time_point last_tick_{};
  std::vector<policy::Rule> rules_;            // of the accepted desired state
  StateCache state_cache_;                     // the replica as a desired state
  std::map<uint32_t, std::string> rule_text_;  // rule id -> its text, made when first asked
  const std::string* rule_text(uint32_t rule_id);
  // Address -> workload name (every workload of the cluster), identity lookup.
  std::map<std::pair<uint8_t, std::array<uint8_t, 16>>, std::string> addr_name_;
  std::map<std::pair<uint8_t, std::array<uint8_t, 16>>, uint32_t> host_identity_;
  std::vector<policy::IpcacheEntry> cidr_identity_;  // longest first
  std::map<uint32_t, std::string> identity_name_;    // CIDR identities: the prefix
};

}  // namespace gl::glctld
