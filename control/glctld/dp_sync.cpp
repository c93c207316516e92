#include "control/glctld/dp_sync.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "dataplane/firewall/fw_tables.hpp"

namespace gl::glctld {

// The policy compiler and the dataplane number identities and actions independently; the
// conversion below is explicit, and these keep the shared constants honest.
static_assert(policy::kAnyIdentity == fw::kAnyIdentity);
static_assert(policy::kWorldIdentity == fw::kWorldIdentity);

uint8_t fw_action(policy::Action a) {
  switch (a) {
    case policy::Action::kAllow:
      return static_cast<uint8_t>(fw::Action::kAllow);
    case policy::Action::kDeny:
      return static_cast<uint8_t>(fw::Action::kDeny);
    case policy::Action::kReject:
      return static_cast<uint8_t>(fw::Action::kReject);
    case policy::Action::kAllowEncrypted:
      return static_cast<uint8_t>(fw::Action::kAllowEncrypted);
  }
  return static_cast<uint8_t>(fw::Action::kDeny);  // fail closed
}

api::FwEntryWire to_fw_entry(const policy::PolicyEntry& e) {
  api::FwEntryWire w{};
  w.remote = e.remote_identity;
  w.rule_id = e.rule_id;
  w.port_lo = e.port_lo;
  w.port_hi = e.port_hi;
  w.proto = e.proto;
  w.action = fw_action(e.action);
  w.log = e.log ? 1 : 0;
  return w;
}

api::FwPrefixWire to_fw_prefix(const policy::IpcacheEntry& e) {
  api::FwPrefixWire w{};
  w.family = e.prefix.address.family == policy::Family::kIpv4 ? 4 : 6;
  w.len = e.prefix.length;
  w.identity = e.identity;
  std::memcpy(w.addr, e.prefix.address.bytes.data(), sizeof w.addr);
  return w;
}

FwVersion to_fw_version(const policy::CompiledPolicy& policy,
                        const std::map<std::string, std::string>& host_ips) {
  FwVersion v;
  v.ipcache.reserve(policy.ipcache.size());
  // Hosts numbered from 1 in name order, so that the same hosts give the same version.
  std::map<std::string, uint16_t> host_no;
  for (const policy::IpcacheEntry& e : policy.ipcache)
    if (!e.host.empty()) host_no.emplace(e.host, 0);
  uint16_t next = 0;
  for (auto& [name, no] : host_no) {
    no = ++next;
    api::FwHostWire h{};
    if (auto it = host_ips.find(name); it != host_ips.end()) {
      if (auto a = policy::IpAddress::parse(it->second)) {
        h.family = a->family == policy::Family::kIpv4 ? 4 : 6;
        std::memcpy(h.addr, a->bytes.data(), sizeof h.addr);
      }
    }
    v.hosts.push_back(h);
  }
  for (const policy::IpcacheEntry& e : policy.ipcache) {
    v.ipcache.push_back(to_fw_prefix(e));
    if (!e.host.empty()) v.ipcache.back().host = host_no[e.host];
  }
  v.ports.reserve(policy.workloads.size());
  for (const policy::LocalWorkload& w : policy.workloads) {
    PortPlan p;
    p.workload = w.name;
    p.port = w.port;
    api::FwPortSpec& s = p.spec;
    s.port_no = 0;
    s.identity = w.identity;
    s.conn_limit = w.conn_limit;
    std::memcpy(s.mac, w.mac.data(), sizeof s.mac);
    s.default_from_vm = fw_action(w.egress_from_vm.default_action);
    s.default_to_vm = fw_action(w.ingress_to_vm.default_action);
    for (const policy::IpAddress& a : w.ips) {
      if (a.family == policy::Family::kIpv4) {
        uint32_t be = 0;  // network order, as the bytes are
        std::memcpy(&be, a.bytes.data(), sizeof be);
        s.ipv4.push_back(be);
      } else {
        s.ipv6.push_back(a.bytes);
      }
    }
    s.from_vm.reserve(w.egress_from_vm.entries.size());
    for (const policy::PolicyEntry& e : w.egress_from_vm.entries)
      s.from_vm.push_back(to_fw_entry(e));
    s.to_vm.reserve(w.ingress_to_vm.entries.size());
    for (const policy::PolicyEntry& e : w.ingress_to_vm.entries) s.to_vm.push_back(to_fw_entry(e));
    v.ports.push_back(std::move(p));
  }
  return v;
}

namespace {

// Byte equality of vectors of wire structs (explicit padding, always zeroed).
template <typename T>
bool same_bytes(const std::vector<T>& a, const std::vector<T>& b) {
  static_assert(std::is_trivially_copyable_v<T>);
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool same_spec(const api::FwPortSpec& a, const api::FwPortSpec& b) {
  return a.port_no == b.port_no && a.identity == b.identity && a.conn_limit == b.conn_limit &&
         std::memcmp(a.mac, b.mac, sizeof a.mac) == 0 && a.default_from_vm == b.default_from_vm &&
         a.default_to_vm == b.default_to_vm && a.ipv4 == b.ipv4 && a.ipv6 == b.ipv6 &&
         same_bytes(a.from_vm, b.from_vm) && same_bytes(a.to_vm, b.to_vm);
}

}  // namespace

bool same_version(const FwVersion& a, const FwVersion& b) {
  if (a.record != b.record || !same_bytes(a.hosts, b.hosts)) return false;
  if (!same_bytes(a.ipcache, b.ipcache) || a.ports.size() != b.ports.size()) return false;
  for (size_t i = 0; i < a.ports.size(); ++i) {
    const PortPlan& x = a.ports[i];
    const PortPlan& y = b.ports[i];
    if (x.workload != y.workload || x.port != y.port || !same_spec(x.spec, y.spec)) return false;
  }
  return true;
}

// ---- ApiLink ------------------------------------------------------------------------------

std::expected<void, api::Error> ApiLink::connect() {
  auto c = api::Client::connect(path_);
  if (!c) return std::unexpected(c.error());
  client_.emplace(std::move(*c));
  return {};
}

std::expected<uint64_t, api::Error> ApiLink::boot_id() {
  if (!client_) return std::unexpected(api::Error{ENOTCONN, "not connected"});
  auto info = client_->info();
  if (!info) return std::unexpected(info.error());
  return info->boot_id;
}

std::expected<uint32_t, api::Error> ApiLink::port_no(const std::string& name) {
  if (!client_) return std::unexpected(api::Error{ENOTCONN, "not connected"});
  auto p = client_->port_get(name);
  if (!p) return std::unexpected(p.error());
  return p->port_no;
}

std::expected<api::FwStatusReply, api::Error> ApiLink::fw_status() {
  if (!client_) return std::unexpected(api::Error{ENOTCONN, "not connected"});
  return client_->fw_status();
}

std::expected<void, api::Error> ApiLink::fw_install(uint64_t generation,
                                                    std::span<const api::FwPrefixWire> ipcache,
                                                    std::span<const api::FwPortSpec> ports,
                                                    uint32_t record,
                                                    std::span<const std::string> quarantine,
                                                    std::span<const api::FwHostWire> hosts) {
  if (!client_) return std::unexpected(api::Error{ENOTCONN, "not connected"});
  return client_->fw_install(generation, ipcache, ports, record, quarantine, hosts);
}

std::expected<void, api::Error> ApiLink::fw_update(uint64_t generation,
                                                   const api::Client::FwDelta& delta) {
  if (!client_) return std::unexpected(api::Error{ENOTCONN, "not connected"});
  return client_->fw_update(generation, delta);
}

bool is_transport_error(const api::Error& e) {
  switch (e.code) {
    case ECONNRESET:
    case ECONNREFUSED:
    case ECONNABORTED:
    case EPIPE:
    case ENOTCONN:
    case ESHUTDOWN:
    case ETIMEDOUT:
    case EPROTO:
    case EBADF:
      return true;
    default:
      return false;
  }
}

// ---- DpSync -------------------------------------------------------------------------------

void DpSync::set_desired(std::shared_ptr<const FwVersion> version, uint64_t id) {
  desired_ = std::move(version);
  desired_id_ = desired_ ? id : 0;
}

SyncReport DpSync::fail(SyncReport r, const api::Error& e, const char* what) {
  r.error = std::string(what) + ": " + e.message;
  if (!link_.connected() || is_transport_error(e)) {
    link_.disconnect();
    r.reachable = false;
  }
  return r;
}

SyncReport DpSync::sync() {
  SyncReport r;
  auto fill = [&] {
    r.pushed_desired = pushed_id_;
    r.ports = pushed_ports_;
    r.prefixes = pushed_prefixes_;
    r.pushed_at = pushed_at_;
    r.port_nos = pushed_names_;
  };
  fill();
  r.generation = pushed_generation_;
  if (!link_.connected()) {
    if (auto c = link_.connect(); !c) {
      r.error = c.error().message;
      link_.disconnect();
      return r;
    }
  }
  auto boot = link_.boot_id();
  if (!boot) return fail(std::move(r), boot.error(), "info");
  r.reachable = true;
  r.boot_id = *boot;
  if (seen_boot_ && *boot != last_boot_) {
    // A new gldp: it enforces nothing of ours.
    r.restarted = true;
    r.previous_boot_id = last_boot_;
    pushed_id_ = 0;
    pushed_generation_ = 0;
    pushed_port_nos_.clear();
    pushed_present_.clear();
    pushed_ports_ = pushed_prefixes_ = 0;
    pushed_names_.clear();
    pushed_version_.reset();
    pushed_specs_.clear();
    fill();
  }
  seen_boot_ = true;
  last_boot_ = *boot;
  auto status = link_.fw_status();
  if (!status) return fail(std::move(r), status.error(), "fw status");
  r.generation = status->generation;
  if (status->generation != pushed_generation_) {
    // Not what we installed (a restart we could not tell, another writer, a fw-clear):
    // install ours again.
    pushed_id_ = 0;
    fill();
  }
  if (desired_ == nullptr) return r;

  const size_t n = desired_->ports.size();
  std::vector<uint32_t> nos(n, 0);
  std::vector<char> present(n, 0);
  std::vector<std::string> quarantine;  // missing ports gldp could add under their name
  for (size_t i = 0; i < n; ++i) {
    const PortPlan& plan = desired_->ports[i];
    auto no = link_.port_no(plan.port);
    if (no) {
      nos[i] = *no;
      present[i] = 1;
    } else if (is_transport_error(no.error())) {
      return fail(std::move(r), no.error(), "port get");
    } else {
      r.missing.push_back({plan.workload, plan.port, no.error().message});
      if (no.error().code == ENOENT && plan.port.size() < api::kNameLen)
        quarantine.push_back(plan.port);
    }
  }
  if (pushed_id_ == desired_id_ && nos == pushed_port_nos_ && present == pushed_present_) return r;

  std::vector<api::FwPortSpec> specs;
  std::vector<std::pair<std::string, uint32_t>> names;
  specs.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!present[i]) continue;
    specs.push_back(desired_->ports[i].spec);
    specs.back().port_no = nos[i];
    names.emplace_back(desired_->ports[i].workload, nos[i]);
  }
  generation_ = std::max(generation_, status->generation) + 1;
  // The workloads whose port gldp lacks are quarantined by name: should the port appear
  // before the next sync binds its policy, it passes nothing meanwhile. (A name gldp
  // cannot hold, e.g. too long, is missing but not quarantined: it can never be added.)
  // When gldp enforces the version we sent last, only what changed goes: the ports whose
  // tables differ, those that left, the ipcache and hosts if they changed.
  bool installed = false;
  if (pushed_version_ != nullptr && status->generation == pushed_generation_ &&
      pushed_generation_ != 0) {
    std::vector<api::FwPortSpec> changed;
    std::vector<uint32_t> removed;
    std::unordered_map<uint32_t, const api::FwPortSpec*> was;
    for (const api::FwPortSpec& sp : pushed_specs_) was.emplace(sp.port_no, &sp);
    for (const api::FwPortSpec& sp : specs) {
      auto it = was.find(sp.port_no);
      if (it == was.end() || !same_spec(*it->second, sp)) changed.push_back(sp);
      if (it != was.end()) was.erase(it);
    }
    for (const auto& [no, sp] : was) removed.push_back(no);
    std::sort(removed.begin(), removed.end());
    api::Client::FwDelta d;
    d.base = pushed_generation_;
    d.record = desired_->record;
    d.new_ipcache = !same_bytes(desired_->ipcache, pushed_version_->ipcache) ||
                    !same_bytes(desired_->hosts, pushed_version_->hosts);
    if (d.new_ipcache) {
      d.ipcache = desired_->ipcache;
      d.hosts = desired_->hosts;
    }
    d.ports = changed;
    d.removed = removed;
    d.quarantine = quarantine;
    if (auto ok = link_.fw_update(generation_, d); ok) {
      installed = true;
      r.delta = true;
      r.ports_sent = changed.size();
      r.ports_removed = removed.size();
      r.delta_ipcache = d.new_ipcache;
    } else if (!link_.connected() || is_transport_error(ok.error())) {
      return fail(std::move(r), ok.error(), "fw update");
    } else {
      // Refused (another version came in meanwhile, a gldp without deltas): whole.
      r.delta_refused = ok.error().message;  // nothing changed: the generation is unused
    }
  }
  if (!installed) {
    if (auto ok = link_.fw_install(generation_, desired_->ipcache, specs, desired_->record,
                                   quarantine, desired_->hosts);
        !ok)
      return fail(std::move(r), ok.error(), "fw install");
    r.ports_sent = specs.size();
  }
  pushed_generation_ = generation_;
  pushed_id_ = desired_id_;
  pushed_port_nos_ = std::move(nos);
  pushed_present_ = std::move(present);
  pushed_ports_ = specs.size();
  pushed_prefixes_ = desired_->ipcache.size();
  pushed_names_ = std::move(names);
  pushed_at_ = std::chrono::system_clock::now();
  pushed_version_ = desired_;
  pushed_specs_ = std::move(specs);
  fill();
  r.generation = generation_;
  r.pushed = generation_;
  return r;
}

// ---- DpSyncThread -------------------------------------------------------------------------

DpSyncThread::DpSyncThread(std::unique_ptr<DataplaneLink> link, Options options,
                           ReportHandler on_report)
    : link_(std::move(link)), options_(options), on_report_(std::move(on_report)) {
  thread_ = std::thread([this] { run(); });
}

DpSyncThread::~DpSyncThread() {
  stop();
}

void DpSyncThread::set_desired(std::shared_ptr<const FwVersion> version, uint64_t id) {
  {
    std::lock_guard lock(mu_);
    desired_ = std::move(version);
    desired_id_ = id;
    have_desired_ = true;
    kicked_ = true;
  }
  cv_.notify_one();
}

void DpSyncThread::kick() {
  {
    std::lock_guard lock(mu_);
    kicked_ = true;
  }
  cv_.notify_one();
}

void DpSyncThread::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void DpSyncThread::run() {
  DpSync sync(*link_);
  std::chrono::milliseconds backoff = options_.backoff_min;
  auto next = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_until(lock, next, [this] { return stop_ || kicked_; });
    if (stop_) break;
    kicked_ = false;
    if (have_desired_) {
      sync.set_desired(std::move(desired_), desired_id_);
      desired_.reset();
      have_desired_ = false;
    }
    lock.unlock();
    const SyncReport report = sync.sync();
    if (on_report_) on_report_(report);
    lock.lock();
    const auto now = std::chrono::steady_clock::now();
    if (report.reachable && report.error.empty()) {
      backoff = options_.backoff_min;
      next = now + options_.interval;
    } else if (!report.reachable) {
      // gldp away (restarting?): a refused connect on a Unix socket costs microseconds,
      // so look every backoff_min and install the policy as soon as it is back (with an
      // exponential back-off, a 1 s restart cost up to 800 ms more of outage).
      backoff = options_.backoff_min;
      next = now + options_.backoff_min;
    } else {
      next = now + backoff;  // reachable but refusing: back off
      backoff = std::min(options_.backoff_max, backoff * 2);
    }
  }
}

}  // namespace gl::glctld
