// fake_gldp.hpp — a scripted gldp behind glctld's DataplaneLink, for the glctld tests.
//
// Purpose: the tests decide what gldp has (ports by name, boot id, the generation in force),
// make it go away, restart or refuse installs, and read back every install it received —
// without DPDK, root or a real gldp (test/integration/test_glctld.py runs the real one).
// A FakeGldp is shared by any number of FakeLinks; a link's "connection" breaks (EPIPE)
// when the gldp it connected to went down or restarted, as a real socket would.
// Thread-safety: FakeGldp is locked (the daemon's sync thread and the test thread both use
// it); a FakeLink belongs to one thread. Complexity: trivial.
#pragma once

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "control/glctld/dp_sync.hpp"

namespace gl::glctld::test {

struct FakeGldp {
  struct Install {
    uint64_t generation = 0;
    std::vector<api::FwPrefixWire> ipcache;
    std::vector<api::FwPortSpec> ports;
    uint32_t record = 0;
    std::vector<std::string> quarantine;
    // Sent as a delta (ports: the resulting version's, in gldp's order: kept ports first,
    // then the sent ones); what the delta carried.
    bool delta = false;
    std::vector<uint32_t> sent;  // port numbers
    std::vector<uint32_t> removed;
    bool new_ipcache = false;
  };

  mutable std::mutex mu;
  bool up = true;
  uint64_t boot_id = 0x1000;
  uint64_t generation = 0;
  std::map<std::string, uint32_t> ports;
  std::optional<api::Error> refuse;  // the next installs fail with this
  bool no_deltas = false;            // a gldp that refuses deltas (EINVAL)
  std::vector<Install> installs;
  int connects = 0;

  void restart() {
    std::lock_guard lock(mu);
    ++boot_id;
    generation = 0;
    up = true;
  }
  void set_up(bool u) {
    std::lock_guard lock(mu);
    up = u;
  }
  void add_port(const std::string& name, uint32_t no) {
    std::lock_guard lock(mu);
    ports[name] = no;
  }
  void del_port(const std::string& name) {
    std::lock_guard lock(mu);
    ports.erase(name);
  }
  size_t install_count() const {
    std::lock_guard lock(mu);
    return installs.size();
  }
  std::optional<Install> last_install() const {
    std::lock_guard lock(mu);
    if (installs.empty()) return std::nullopt;
    return installs.back();
  }
  uint64_t current_generation() const {
    std::lock_guard lock(mu);
    return generation;
  }
};

class FakeLink : public DataplaneLink {
 public:
  explicit FakeLink(std::shared_ptr<FakeGldp> g) : g_(std::move(g)) {}

  bool connected() const override { return connected_; }
  std::expected<void, api::Error> connect() override {
    std::lock_guard lock(g_->mu);
    if (!g_->up)
      return std::unexpected(
          api::Error{ECONNREFUSED, "cannot connect to gldp: Connection refused"});
    ++g_->connects;
    connected_ = true;
    boot_ = g_->boot_id;
    return {};
  }
  void disconnect() override { connected_ = false; }
  std::expected<uint64_t, api::Error> boot_id() override {
    std::lock_guard lock(g_->mu);
    if (auto e = broken()) return std::unexpected(*e);
    return g_->boot_id;
  }
  std::expected<uint32_t, api::Error> port_no(const std::string& name) override {
    std::lock_guard lock(g_->mu);
    if (auto e = broken()) return std::unexpected(*e);
    auto it = g_->ports.find(name);
    if (it == g_->ports.end())
      return std::unexpected(api::Error{ENOENT, "no port named '" + name + "'"});
    return it->second;
  }
  std::expected<api::FwStatusReply, api::Error> fw_status() override {
    std::lock_guard lock(g_->mu);
    if (auto e = broken()) return std::unexpected(*e);
    api::FwStatusReply r{};
    r.generation = g_->generation;
    if (!g_->installs.empty() && g_->generation != 0) {
      r.n_ports = static_cast<uint32_t>(g_->installs.back().ports.size());
      r.n_prefixes = static_cast<uint32_t>(g_->installs.back().ipcache.size());
    }
    return r;
  }
  std::expected<void, api::Error> fw_install(uint64_t generation,
                                             std::span<const api::FwPrefixWire> ipcache,
                                             std::span<const api::FwPortSpec> ports,
                                             uint32_t record,
                                             std::span<const std::string> quarantine,
                                             std::span<const api::FwHostWire> = {}) override {
    std::lock_guard lock(g_->mu);
    if (auto e = broken()) return std::unexpected(*e);
    if (g_->refuse) return std::unexpected(*g_->refuse);
    for (const api::FwPortSpec& p : ports) {
      bool known = false;
      for (const auto& [name, no] : g_->ports) known |= no == p.port_no;
      if (!known)
        return std::unexpected(
            api::Error{ENODEV, "fw port " + std::to_string(p.port_no) + ": no such port"});
    }
    g_->generation = generation;
    g_->installs.push_back({generation,
                            {ipcache.begin(), ipcache.end()},
                            {ports.begin(), ports.end()},
                            record,
                            {quarantine.begin(), quarantine.end()}});
    return {};
  }
  // gldp's rules for a delta (dataplane/server.cpp): the base in force, removed ports with
  // a firewall, sent ports that exist.
  std::expected<void, api::Error> fw_update(uint64_t generation,
                                            const api::Client::FwDelta& d) override {
    std::lock_guard lock(g_->mu);
    if (auto e = broken()) return std::unexpected(*e);
    if (g_->refuse) return std::unexpected(*g_->refuse);
    if (g_->no_deltas) return std::unexpected(api::Error{EINVAL, "fw begin: unknown flags 1"});
    if (g_->installs.empty() || g_->generation != d.base)
      return std::unexpected(api::Error{
          ESTALE, "fw delta: based on version " + std::to_string(d.base) + ", but version " +
                      std::to_string(g_->generation) + " is in force"});
    if (generation <= g_->generation)
      return std::unexpected(api::Error{EINVAL, "fw commit: generation not above"});
    FakeGldp::Install next = g_->installs.back();
    next.generation = generation;
    next.record = d.record;
    next.quarantine.assign(d.quarantine.begin(), d.quarantine.end());
    if (d.new_ipcache) next.ipcache.assign(d.ipcache.begin(), d.ipcache.end());
    for (uint32_t no : d.removed) {
      auto it = std::find_if(next.ports.begin(), next.ports.end(),
                             [&](const api::FwPortSpec& p) { return p.port_no == no; });
      if (it == next.ports.end())
        return std::unexpected(api::Error{
            EINVAL, "fw commit: port " + std::to_string(no) + " is removed but has no firewall"});
      next.ports.erase(it);
    }
    next.sent.clear();
    for (const api::FwPortSpec& p : d.ports) {
      bool known = false;
      for (const auto& [name, no] : g_->ports) known |= no == p.port_no;
      if (!known)
        return std::unexpected(
            api::Error{ENODEV, "fw port " + std::to_string(p.port_no) + ": no such port"});
      std::erase_if(next.ports, [&](const api::FwPortSpec& q) { return q.port_no == p.port_no; });
      next.ports.push_back(p);
      next.sent.push_back(p.port_no);
    }
    next.delta = true;
    next.removed.assign(d.removed.begin(), d.removed.end());
    next.new_ipcache = d.new_ipcache;
    g_->generation = generation;
    g_->installs.push_back(std::move(next));
    return {};
  }

 private:
  // The connection broke: gldp is down or is another process now.
  std::optional<api::Error> broken() const {
    if (!connected_) return api::Error{ENOTCONN, "not connected"};
    if (!g_->up || g_->boot_id != boot_) return api::Error{EPIPE, "send to gldp: Broken pipe"};
    return std::nullopt;
  }

  std::shared_ptr<FakeGldp> g_;
  bool connected_ = false;
  uint64_t boot_ = 0;
};

}  // namespace gl::glctld::test
