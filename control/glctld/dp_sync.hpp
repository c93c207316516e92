// dp_sync.hpp — glctld's compiled policy in gldp: the dpapi firewall version it makes, the
// port numbers it resolves, and the engine that keeps gldp enforcing it.
//
// Purpose:
//   * to_fw_version(): a policy::CompiledPolicy as fw_install's arguments — ipcache entries
//     as FwPrefixWire, each local workload as an FwPortSpec (identity, MAC and addresses for
//     the spoof guard, connection limit, both directions' entries in evaluation order and
//     default actions) named by its port *name*; port numbers are gldp's business.
//   * DpSync: one step of keeping gldp in line with the desired version — (re)connect,
//     notice a restarted gldp (another boot id), resolve every workload's port name through
//     gldp (port_get), leave out (and report) the workloads whose port gldp does not have,
//     and install a new version when anything differs from what gldp enforces: a new
//     desired version, another port resolution (a port appeared, went away, was re-added
//     with another number), a restarted gldp, or a generation in gldp that is not ours.
//     Generations are strictly increasing for the DpSync's life and start above whatever
//     gldp has in force when first seen (connections remember their generation: reusing
//     a number would let old connections skip the re-check).
//   * DpSyncThread: runs DpSync on a thread of its own, because the dpapi client is
//     blocking (up to 30 s per reply from a hung gldp) and the daemon's io_context must
//     keep serving OVSDB and the management API: a sync when the desired version changes,
//     every `interval` to pick up ports that appear and gldp restarts, and with
//     every backoff_min while gldp is unreachable, exponential back-off while it refuses.
// DataplaneLink is what DpSync needs from gldp; ApiLink is the real one (api::Client on the
// gldp socket); the tests use a fake.
//
// Thread-safety: to_fw_version() is pure. A DpSync and its link belong to one thread.
// DpSyncThread's public methods may be called from any thread; its report handler runs on
// its own thread. Complexity: to_fw_version O(ipcache + entries); a sync does one
// round trip per local workload (port_get) plus the install when one is due.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "control/policy/compiler.hpp"
#include "dataplane/api/client.hpp"

namespace gl::glctld {

// policy::Action -> the dpapi's fw::Action code (allow 0, deny 1, reject 2,
// allow-encrypted 3).
uint8_t fw_action(policy::Action a);
api::FwEntryWire to_fw_entry(const policy::PolicyEntry& e);
api::FwPrefixWire to_fw_prefix(const policy::IpcacheEntry& e);

// One local workload's port in a version, before its number is known.
struct PortPlan {
  std::string workload;
  std::string port;      // the port's name in gldp (Workload.port)
  api::FwPortSpec spec;  // everything but port_no
};

struct FwVersion {
  std::vector<api::FwPrefixWire> ipcache;
  // The hosts ipcache entries of workloads name (FwPrefixWire::host - 1 indexes it): their
  // underlay addresses from the Host table, family 0 for a host without a usable row.
  std::vector<api::FwHostWire> hosts;
  std::vector<PortPlan> ports;  // sorted by workload name (the compiler's order)
  uint32_t record = 0;          // api::kFwRecord*: which events gldp reports (flow export)
};

// host_ips: host name -> underlay address (the Host table); workloads' hosts missing
// from it get an unknown address (nothing arriving by an ESP port may claim them).
FwVersion to_fw_version(const policy::CompiledPolicy& policy,
                        const std::map<std::string, std::string>& host_ips = {});
// Same prefixes and ports with the same contents (what makes a new install worth it).
bool same_version(const FwVersion& a, const FwVersion& b);

// A local workload left out of the version in gldp.
struct MissingPort {
  std::string workload;
  std::string port;
  std::string reason;  // gldp's answer, e.g. "no port named 'vnet3'"
  bool operator==(const MissingPort&) const = default;
};

// What DpSync needs from gldp. Errors carry errno codes (api::Error).
class DataplaneLink {
 public:
  virtual ~DataplaneLink() = default;
  virtual bool connected() const = 0;
  virtual std::expected<void, api::Error> connect() = 0;
  virtual void disconnect() = 0;
  // gldp's boot id (random per start).
  virtual std::expected<uint64_t, api::Error> boot_id() = 0;
  // The number of the port called `name`; ENOENT when gldp has no such port.
  virtual std::expected<uint32_t, api::Error> port_no(const std::string& name) = 0;
  virtual std::expected<api::FwStatusReply, api::Error> fw_status() = 0;
  virtual std::expected<void, api::Error> fw_install(
      uint64_t generation, std::span<const api::FwPrefixWire> ipcache,
      std::span<const api::FwPortSpec> ports, uint32_t record,
      std::span<const std::string> quarantine = {},
      std::span<const api::FwHostWire> hosts = {}) = 0;
  // A version as its changes to the one in force (api::Client::fw_update): ESTALE when
  // delta.base is not in force; a gldp that cannot take deltas refuses (EINVAL).
  virtual std::expected<void, api::Error> fw_update(uint64_t generation,
                                                    const api::Client::FwDelta& delta) = 0;
};

// The real link: an api::Client on gldp's socket.
class ApiLink : public DataplaneLink {
 public:
  explicit ApiLink(std::string socket_path) : path_(std::move(socket_path)) {}
  bool connected() const override { return client_.has_value(); }
  std::expected<void, api::Error> connect() override;
  void disconnect() override { client_.reset(); }
  std::expected<uint64_t, api::Error> boot_id() override;
  std::expected<uint32_t, api::Error> port_no(const std::string& name) override;
  std::expected<api::FwStatusReply, api::Error> fw_status() override;
  std::expected<void, api::Error> fw_install(uint64_t generation,
                                             std::span<const api::FwPrefixWire> ipcache,
                                             std::span<const api::FwPortSpec> ports,
                                             uint32_t record,
                                             std::span<const std::string> quarantine = {},
                                             std::span<const api::FwHostWire> hosts = {}) override;
  std::expected<void, api::Error> fw_update(uint64_t generation,
                                            const api::Client::FwDelta& delta) override;

 private:
  std::string path_;
  std::optional<api::Client> client_;
};

// An error of the connection itself (gldp gone, hung, or speaking nonsense), after which
// the link is dropped and reconnected; other errors are gldp refusing a request.
bool is_transport_error(const api::Error& e);

// The outcome of one DpSync::sync().
struct SyncReport {
  bool reachable = false;
  uint64_t boot_id = 0;
  bool restarted = false;         // another boot id than the one seen before ...
  uint64_t previous_boot_id = 0;  // ... which was this one
  uint64_t generation = 0;        // the version gldp enforces (0: none), as last read or pushed
  uint64_t pushed_desired = 0;    // the desired version id gldp enforces (0: none of ours)
  uint64_t pushed = 0;            // this sync installed this generation (0: no install)
  size_t ports = 0;               // in the version of ours that gldp enforces
  size_t prefixes = 0;
  std::vector<MissingPort> missing;  // of the desired version, at this sync
  // The port number of each workload in the version of ours that gldp enforces.
  std::vector<std::pair<std::string, uint32_t>> port_nos;
  // How this sync's install went (pushed != 0): as a delta of the version in force, with
  // the ports it sent (changed or added) and removed; or whole (delta false: all ports
  // sent). delta_refused: gldp refused the delta (why), and the whole version went in.
  bool delta = false;
  size_t ports_sent = 0;
  size_t ports_removed = 0;
  bool delta_ipcache = false;  // the delta replaced the ipcache and hosts
  std::string delta_refused;
  std::string error;                                  // what failed ("" when nothing did)
  std::chrono::system_clock::time_point pushed_at{};  // when pushed_desired was installed
};

class DpSync {
 public:
  explicit DpSync(DataplaneLink& link) : link_(link) {}

  // The version to enforce, with an id that changes whenever the version does (> 0).
  // nullptr: nothing to enforce yet (gldp's firewall is left as it is).
  void set_desired(std::shared_ptr<const FwVersion> version, uint64_t id);
  // One round of the protocol above. Never throws.
  SyncReport sync();
  // The last generation used (0: none yet).
  uint64_t generation() const { return generation_; }

 private:
  SyncReport fail(SyncReport r, const api::Error& e, const char* what);

  DataplaneLink& link_;
  std::shared_ptr<const FwVersion> desired_;
  uint64_t desired_id_ = 0;
  uint64_t generation_ = 0;  // the last generation used
  // What gldp enforces from us.
  uint64_t last_boot_ = 0;
  bool seen_boot_ = false;
  uint64_t pushed_generation_ = 0;
  uint64_t pushed_id_ = 0;
  std::vector<uint32_t> pushed_port_nos_;  // per PortPlan, 0 = left out (port 0 is OVS's local)
  std::vector<char> pushed_present_;
  size_t pushed_ports_ = 0;
  size_t pushed_prefixes_ = 0;
  std::vector<std::pair<std::string, uint32_t>> pushed_names_;
  std::chrono::system_clock::time_point pushed_at_{};
  // The version in gldp as we sent it, for the next delta: its ipcache, hosts and record
  // (the FwVersion) and its ports with their numbers, sorted by port number.
  std::shared_ptr<const FwVersion> pushed_version_;
  std::vector<api::FwPortSpec> pushed_specs_;
};

class DpSyncThread {
 public:
  struct Options {
    std::chrono::milliseconds interval{1000};  // re-check while all is well
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{5000};
  };
  using ReportHandler = std::function<void(const SyncReport&)>;

  // Starts the thread; `on_report` runs on it after every sync.
  DpSyncThread(std::unique_ptr<DataplaneLink> link, Options options, ReportHandler on_report);
  ~DpSyncThread();  // stop()
  DpSyncThread(const DpSyncThread&) = delete;
  DpSyncThread& operator=(const DpSyncThread&) = delete;

  void set_desired(std::shared_ptr<const FwVersion> version, uint64_t id);
  void kick();  // sync now
  // Ends the thread (after the gldp call in progress, if any); idempotent.
  void stop();

 private:
  void run();

  std::unique_ptr<DataplaneLink> link_;
  Options options_;
  ReportHandler on_report_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool kicked_ = true;  // sync at once when started
  bool have_desired_ = false;
  std::shared_ptr<const FwVersion> desired_;
  uint64_t desired_id_ = 0;
  std::thread thread_;
};

}  // namespace gl::glctld
