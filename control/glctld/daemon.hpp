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

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "control/glctld/dp_sync.hpp"
#include "control/glctld/log.hpp"
#include "control/glctld/mgmt.hpp"
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

  // One management API request (a JSON object) -> its reply.
  nlohmann::json handle(const nlohmann::json& request);

 private:
  Daemon(boost::asio::io_context& io, DaemonOptions options, Logger& log);

  void on_db_state(ovsdb::State state, std::string_view reason);
  void schedule_compile();
  void compile();
  void reject(const policy::Error& error);
  void on_report(const SyncReport& report);

  nlohmann::json status_json() const;
  nlohmann::json identities_json() const;

  boost::asio::io_context& io_;
  DaemonOptions opt_;
  Logger& log_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::optional<ovsdb::Client> db_;
  std::unique_ptr<MgmtServer> mgmt_;
  std::unique_ptr<DpSyncThread> dp_;
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
  bool have_report_ = false;
  uint64_t pushes_ = 0;
  std::string dp_error_logged_;
  std::vector<MissingPort> missing_logged_;
};

}  // namespace gl::glctld
