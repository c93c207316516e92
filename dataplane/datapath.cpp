#include "dataplane/datapath.hpp"

#include <fcntl.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>

#include <sodium.h>

#include <algorithm>
#include <chrono>

#include "crypto/aead.hpp"
#include "dataplane/api/client.hpp"
#include "dataplane/api/odp_actions.hpp"
#include "dataplane/pmd.hpp"

namespace gl::dp {

namespace {

api::Error err(int code, std::string msg) {
  return api::Error{code, std::move(msg)};
}

api::EntryResult entry_error(int code, const std::string& msg) {
  api::EntryResult r{};
  r.error = code;
  api::set_fixed(r.message, sizeof r.message, msg.substr(0, sizeof r.message - 1));
  return r;
}

uint64_t tsc_to_ms_ago_base(uint64_t tsc) {
  // CLOCK_MONOTONIC ms of a TSC reading: now_ms - (now_tsc - tsc) / hz.
  if (tsc == 0) return 0;
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t now_ms = uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
  uint64_t now_tsc = rte_rdtsc();
  uint64_t ago_ms = now_tsc > tsc ? (now_tsc - tsc) * 1000 / rte_get_tsc_hz() : 0;
  return now_ms > ago_ms ? now_ms - ago_ms : 1;
}

}  // namespace

std::expected<void, std::string> decode_ct_actions(std::span<const uint8_t> actions,
                                                   CtActions& out) {
  for (const odp::ActionView& v : odp::ActionList(actions)) {
    if (v.type == OVS_ACTION_ATTR_CLONE) {
      if (auto r = decode_ct_actions(v.payload, out); !r) return r;
    } else if (v.type == OVS_ACTION_ATTR_SAMPLE) {
      if (auto r = decode_ct_actions(odp::decode_sample(v.payload).actions, out); !r) return r;
    }
    if (v.type != OVS_ACTION_ATTR_CT) continue;
    auto c = odp::decode_ct(v.payload);
    if (!c) return std::unexpected(c.error());
    if (out.n == kMaxCtPerActions)
      return std::unexpected("ct: more than " + std::to_string(kMaxCtPerActions) +
                             " ct actions in one action list");
    // OVS's userspace datapath accepts an eventmask and ignores it; gldp sends no
    // conntrack events, so it refuses one (OVS's probe then stops asking for it).
    if (c->has_eventmask)
      return std::unexpected(
          std::string("ct: eventmask is not supported (gldp generates no conntrack events)"));
    ct::Action& a = out.act[out.n];
    a = ct::Action{};
    a.zone = c->zone;
    a.commit = c->commit || c->force_commit;
    a.force = c->force_commit;
    a.helper = c->helper == odp::kCtHelperFtp    ? ct::kHelperFtp
               : c->helper == odp::kCtHelperTftp ? ct::kHelperTftp
                                                 : ct::kHelperNone;
    a.set_mark = c->has_mark && c->mark_mask != 0;
    a.mark = c->mark;
    a.mark_mask = c->mark_mask;
    a.set_label = c->has_labels;
    std::memcpy(a.label, c->labels, 16);
    std::memcpy(a.label_mask, c->labels_mask, 16);
    // The timeout policy: a decimal id, as OVS's userspace datapath reads it (anything
    // else, e.g. OVS's probe name, is the default policy 0).
    if (c->timeout[0] != 0) {
      char* end = nullptr;
      const unsigned long id = std::strtoul(c->timeout, &end, 10);
      if (end != nullptr && *end == 0 && id < ct::kMaxTimeoutPolicies)
        a.policy = static_cast<uint16_t>(id);
      else if (end != nullptr && *end == 0)
        return std::unexpected(std::string("ct: timeout policy id ") + c->timeout +
                               " is out of range (0.." +
                               std::to_string(ct::kMaxTimeoutPolicies - 1) + ")");
    }
    if (c->has_nat) {
      a.nat = true;
      a.nat_src = c->nat.src;
      a.nat_dst = c->nat.dst;
      a.nat_family = c->nat.family;
      std::memcpy(a.ip_min, c->nat.ip_min, 16);
      std::memcpy(a.ip_max, c->nat.ip_max, 16);
      a.port_min = c->nat.port_min;
      a.port_max = c->nat.port_max;
      a.nat_persistent = c->nat.persistent;
      a.nat_port = c->nat.proto_random ? ct::kNatPortRandom
                   : c->nat.proto_hash ? ct::kNatPortHash
                                       : ct::kNatPortDefault;
    }
    out.payload[out.n++] = v.payload.data();
  }
  return {};
}

ActionsBlob* ActionsBlob::create(std::span<const uint8_t> bytes) {
  void* mem = ::operator new(sizeof(ActionsBlob) + bytes.size(), std::align_val_t(8));
  auto* a = static_cast<ActionsBlob*>(mem);
  a->len = static_cast<uint32_t>(bytes.size());
  if (!bytes.empty()) std::memcpy(a->data, bytes.data(), bytes.size());
  // The most common flow sends to one port: the PMD skips the action walk for it.
  a->only_output = -1;
  a->esp = 0;
  a->esp_group = 0;
  a->ct_first = false;
  a->ct_recirc = -1;
  new (&a->ct) CtActions();
  (void)decode_ct_actions(a->span(), a->ct);  // checked by the caller before
  int n = 0;
  for (const odp::ActionView& v : odp::ActionList(a->span())) {
    if (n == 0 && (v.type == odp::kActionEspEncrypt || v.type == odp::kActionEspDecrypt)) {
      a->esp = v.type;
      a->esp_group = v.type == odp::kActionEspEncrypt ? v.u32() : 0;
    }
    if (n == 0 && v.type == OVS_ACTION_ATTR_CT) a->ct_first = true;
    if (n == 1 && a->ct_first && v.type == OVS_ACTION_ATTR_RECIRC) a->ct_recirc = v.u32();
    ++n;
    if (v.type == OVS_ACTION_ATTR_OUTPUT) a->only_output = v.u32();
  }
  if (n != 1) a->only_output = -1;
  if (n != 2) a->ct_recirc = -1;
  return a;
}

void ActionsBlob::destroy(const ActionsBlob* a) {
  ::operator delete(const_cast<ActionsBlob*>(a), std::align_val_t(8));
}

namespace {

// The names a firewall state file holds (Datapath::fw_state_save's format: a comment
// line, then one port name a line). A missing file holds none. One that is not a regular
// file of ours, writable by us alone, or that does not parse, is refused: gldp does not
// start rather than start open.
std::expected<std::vector<std::string>, std::string> fw_state_load(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::vector<std::string>{};
    return std::unexpected("firewall state " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  std::string text;
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            (st.st_mode & 022) == 0 && st.st_size <= (1 << 22);
  if (ok) {
    text.resize(static_cast<size_t>(st.st_size));
    ok = read(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  }
  close(fd);
  if (!ok)
    return std::unexpected("firewall state " + path +
                           ": not a regular file of this user that only it can write, or "
                           "unreadable (remove it to start with no workload port closed)");
  std::vector<std::string> names;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const bool printable =
        std::all_of(line.begin(), line.end(), [](char c) { return c > ' ' && c < 127; });
    if (line.size() >= api::kNameLen || !printable || names.size() >= api::kFwMaxQuarantine)
      return std::unexpected("firewall state " + path + " line " + std::to_string(line_no) +
                             ": not a port name (remove the file to start with no workload "
                             "port closed)");
    names.push_back(line);
  }
  return names;
}

}  // namespace

void Datapath::fw_state_save(const fw::FwTables* t) {
  const std::string& path = opts_.fw_state_file;
  if (path.empty()) return;
  std::vector<std::string> names;
  if (t != nullptr) {
    for (const fw::PortFirewall& p : t->ports)
      if (const Port* q = port(p.port_no)) names.push_back(q->name());
    names.insert(names.end(), t->quarantine.begin(), t->quarantine.end());
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
  }
  if (fw_state_names_ == names) return;
  if (names.empty()) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT)
      std::fprintf(stderr, "gldp: cannot remove the firewall state %s: %s\n", path.c_str(),
                   std::strerror(errno));
  } else {
    std::string text =
        "# gldp: the firewall's workload ports; a gldp started again drops their "
        "traffic until a firewall version binds them\n";
    for (const std::string& n : names) text += n + "\n";
    const std::string tmp = path + ".tmp";
    const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (fd >= 0) ok = close(fd) == 0 && ok;
    if (ok) ok = rename(tmp.c_str(), path.c_str()) == 0;
    if (!ok) {
      std::fprintf(stderr, "gldp: cannot write the firewall state %s: %s\n", path.c_str(),
                   std::strerror(errno));
      unlink(tmp.c_str());
      return;  // tried again at the next version
    }
  }
  fw_state_names_ = std::move(names);
}

std::expected<std::unique_ptr<Datapath>, std::string> Datapath::create(const DatapathOptions& o) {
  if (o.pmd_lcores.empty()) return std::unexpected("no PMD cores given");
  if (o.pmd_lcores.size() > kMaxPmds)
    return std::unexpected("at most " + std::to_string(kMaxPmds) + " PMD cores");
  std::unique_ptr<Datapath> dp(new Datapath());
  dp->opts_ = o;
  for (unsigned lc : o.pmd_lcores) {
    if (!rte_lcore_is_enabled(lc))
      return std::unexpected("PMD core " + std::to_string(lc) + " is not an EAL lcore");
    if (lc == rte_get_main_lcore())
      return std::unexpected("PMD core " + std::to_string(lc) +
                             " is the main (control) lcore; give the control thread its own core");
  }
  dp->pool_ = rte_pktmbuf_pool_create("gl_mbufs", o.n_mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                      static_cast<int>(rte_socket_id()));
  if (dp->pool_ == nullptr)
    return std::unexpected(std::string("cannot create the mbuf pool: ") + rte_strerror(rte_errno));
  // The firewall marks allow-encrypted packets from a VM with this flag (fw_stage.cpp).
  static const rte_mbuf_dynflag kMustEncrypt = {"gl_dynflag_must_encrypt", 0};
  const int bit = rte_mbuf_dynflag_register(&kMustEncrypt);
  if (bit < 0)
    return std::unexpected(std::string("cannot register an mbuf flag: ") + rte_strerror(rte_errno));
  dp->must_encrypt_ = uint64_t{1} << bit;
  std::string e;
  uint16_t idx = 0;
  for (unsigned lc : o.pmd_lcores) {
    auto p = std::make_unique<Pmd>(*dp, lc, idx++, false);
    if (!p->init(e)) return std::unexpected(e);
    dp->pmds_.push_back(std::move(p));
  }
  ct::Options co;
  co.capacity = o.ct_capacity;
  co.populate_index = o.ct_populate_index;
  co.contexts = idx + 1;  // the PMDs, then the control thread
  dp->ct_ = std::make_unique<ct::Conntrack>(co);
  ct::Options fo = co;
  fo.capacity = o.fw_ct_capacity;
  dp->fw_ct_ = std::make_unique<ct::Conntrack>(fo);
  dp->n_contexts_ = idx + 1;
  dp->fw_rings_.reset(new fw::EventRing[dp->n_contexts_]);
  Datapath* raw = dp.get();
  dp->fw_ct_->set_end_hook([raw](unsigned ctx, const ct::Entry& conn, bool expired, uint64_t now) {
    raw->fw_on_end(ctx, conn, expired, now);
  });
  dp->tsc_per_ms_ = std::max<uint64_t>(1, rte_get_tsc_hz() / 1000);
  {  // the tracker's clock is the TSC's; records carry Unix time
    const auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
    dp->unix_offset_ms_ = static_cast<uint64_t>(wall) - dp->ct_now_ms(rte_rdtsc());
  }
  dp->control_ = std::make_unique<Pmd>(*dp, rte_get_main_lcore(), idx, true);
  if (!dp->control_->init(e)) return std::unexpected(e);
  dp->configure_miss_hold(o.miss_hold_ms);
  std::random_device rd;
  dp->boot_id_ = (uint64_t(rd()) << 32) | rd();
  if (!o.fw_state_file.empty()) {
    // The workload ports of the firewall the last gldp had: closed until glctld binds them.
    auto names = fw_state_load(o.fw_state_file);
    if (!names) return std::unexpected(names.error());
    if (!names->empty()) {
      auto t = std::make_unique<fw::FwTables>();  // generation 0: no version of glctld's
      t->quarantine = *names;
      dp->fw_state_loaded_ = names->size();
      if (auto r = dp->set_firewall(std::move(t)); !r) return std::unexpected(r.error());
    }
  }
  return dp;
}

Datapath::Datapath() : cls_(rcu_) {}

Datapath::~Datapath() {
  stop_pmds();
  if (ct_ != nullptr)  // fragments still held for reassembly
    ct_->ipf().drain([](void* h, ct::IpfRelease) { rte_pktmbuf_free(static_cast<rte_mbuf*>(h)); });
  hold_.release_all([](const flow::FlowKey&, MissHold::Packets pkts) {
    for (rte_mbuf* m : pkts) rte_pktmbuf_free(m);
  });
  for (auto& p : ports_) delete p.exchange(nullptr);
  flow_flush();
  rcu_.synchronize();
  rcu_.reclaim();
  delete sa_tables_.exchange(nullptr);
  delete fw_tables_.exchange(nullptr);
  for (SaEntry* e : sas_) delete e;
  sas_.clear();
  pmds_.clear();
  control_.reset();
  if (pool_ != nullptr) rte_mempool_free(pool_);
}

void Datapath::start_pmds() {
  for (auto& p : pmds_) {
    std::string e;
    if (!p->launch(e)) std::fprintf(stderr, "gldp: %s\n", e.c_str());
  }
}

void Datapath::stop_pmds() {
  for (auto& p : pmds_) p->stop();
}

// ---- ports ---------------------------------------------------------------------------

void Datapath::rebalance_rxqs() {
  // Round-robin every rx queue of every port over the PMDs, in port order.
  std::vector<PmdRxConfig*> cfgs;
  for (size_t i = 0; i < pmds_.size(); ++i) cfgs.push_back(new PmdRxConfig{});
  size_t next = 0;
  for (auto& slot : ports_) {
    Port* p = slot.load(std::memory_order_relaxed);
    if (p == nullptr) continue;
    for (uint16_t q = 0; q < p->n_rxq(); ++q) {
      cfgs[next % cfgs.size()]->rxqs.push_back(RxqRef{p, q, p->slow_rx()});
      ++next;
    }
  }
  for (size_t i = 0; i < pmds_.size(); ++i) {
    const PmdRxConfig* old = pmds_[i]->set_rx_config(cfgs[i]);
    rcu_.defer([old] { delete old; });
  }
}

std::expected<api::PortInfo, api::Error> Datapath::port_add(const PortConfig& cfg) {
  if (cfg.name.empty()) return std::unexpected(err(EINVAL, "port name is empty"));
  if (cfg.mtu != 0 && (cfg.mtu < 68 || cfg.mtu > api::kMaxPortMtu))
    return std::unexpected(err(EINVAL, "MTU " + std::to_string(cfg.mtu) + " is outside 68.." +
                                           std::to_string(api::kMaxPortMtu) +
                                           " (gldp receives frames of up to 2048 bytes)"));
  if (port_by_name(cfg.name)) return std::unexpected(err(EEXIST, "port '" + cfg.name + "' exists"));
  uint32_t no = cfg.port_no;
  if (no == api::kPortAny) {
    // OVS reserves 0 for the bridge's local port; number others from 1.
    for (no = 1; no < kMaxPorts && ports_[no].load(std::memory_order_relaxed); ++no) {
    }
    if (no == kMaxPorts) return std::unexpected(err(EFBIG, "all 255 port numbers are in use"));
  } else if (no >= kMaxPorts) {
    return std::unexpected(err(EINVAL, "port number " + std::to_string(no) + " out of range 0.." +
                                           std::to_string(kMaxPorts - 1)));
  } else if (ports_[no].load(std::memory_order_relaxed) != nullptr) {
    return std::unexpected(err(EBUSY, "port number " + std::to_string(no) + " is in use by '" +
                                          ports_[no].load()->name() + "'"));
  }
  if (is_esp_devargs(cfg.devargs)) return esp_port_add(cfg, no);
  // An interface in the way of a tap port: a clear error (EEXIST), not DPDK's EINVAL
  // (#13: OVS's add-br reported "Invalid argument" when a tap of the bridge's name was
  // left over).
  if (auto conflict = tap_name_conflict(cfg.devargs))
    return std::unexpected(err(EEXIST, *conflict));
  auto port = Port::open(cfg, no, pool_, static_cast<uint16_t>(pmds_.size() + 1));
  if (!port) return std::unexpected(err(EINVAL, port.error()));
  Port* raw = port->release();
  // A workload's port the firewall in force names but has no policy for: closed before
  // it can receive (glctld installs its policy at its next check).
  fw_quarantine_[no].store(fw_quarantines(firewall(), no, cfg.name) ? 1 : 0,
                           std::memory_order_relaxed);
  ports_[no].store(raw, std::memory_order_release);
  // ESP ports waiting for this underlay.
  for (auto& slot : ports_) {
    Port* vp = slot.load(std::memory_order_relaxed);
    if (vp != nullptr && vp->is_esp() && vp->esp_underlay() == api::kPortAny &&
        esp_underlay_is(*vp, *raw))
      esp_attach(*vp, *raw);
  }
  rebalance_rxqs();
  return port_info(no).value();
}

namespace {

bool same_tunnel(const EspPortArgs& a, const EspPortArgs& b) {
  const size_t n = a.family == 4 ? 4 : 16;
  return a.family == b.family && std::memcmp(a.local, b.local, n) == 0 &&
         std::memcmp(a.remote, b.remote, n) == 0;
}

}  // namespace

bool Datapath::esp_underlay_is(const Port& vp, const Port& up) const {
  const std::string& u = vp.esp_args().underlay;
  if (u == up.name()) return true;
  return u.find_first_not_of("0123456789") == std::string::npos && u.size() < 4 &&
         std::stoul(u) == up.port_no();
}

void Datapath::esp_attach(Port& vp, Port& up) {
  const EspChildren* old = up.esp_children();
  auto* next = new EspChildren{old != nullptr ? old->v : std::vector<EspChild>{}};
  EspChild c{};
  c.port_no = vp.port_no();
  c.family = vp.esp_args().family;
  std::memcpy(c.local, vp.esp_args().local, 16);
  std::memcpy(c.remote, vp.esp_args().remote, 16);
  next->v.push_back(c);
  vp.set_esp_underlay(up.port_no());
  up.set_esp_children(next);
  rcu_.defer([old] { delete old; });
}

std::expected<api::PortInfo, api::Error> Datapath::esp_port_add(const PortConfig& cfg,
                                                                uint32_t no) {
  auto a = parse_esp_devargs(cfg.devargs);
  if (!a) return std::unexpected(err(EINVAL, a.error()));
  if (cfg.mtu != 0) return std::unexpected(err(EINVAL, "an ESP port's MTU follows its underlay's"));
  std::unique_ptr<Port> vp =
      Port::open_esp(cfg, no, *a, api::kPortAny, static_cast<uint16_t>(pmds_.size() + 1));
  // The underlay, if it exists yet; and no other ESP port for the same underlay and
  // addresses (attached or waiting).
  Port* up = nullptr;
  for (auto& slot : ports_) {
    Port* p = slot.load(std::memory_order_relaxed);
    if (p == nullptr || !esp_underlay_is(*vp, *p)) continue;
    if (p->is_esp())
      return std::unexpected(
          err(EINVAL, "gl_esp: underlay '" + a->underlay + "' is itself an ESP port"));
    up = p;
  }
  for (auto& slot : ports_) {
    Port* p = slot.load(std::memory_order_relaxed);
    if (p == nullptr || !p->is_esp() || !same_tunnel(p->esp_args(), *a)) continue;
    const bool same_underlay = p->esp_args().underlay == a->underlay ||
                               (up != nullptr && p->esp_underlay() == up->port_no());
    if (same_underlay)
      return std::unexpected(err(EEXIST, "gl_esp: port " + p->name() +
                                             " already carries these addresses on '" + a->underlay +
                                             "'"));
  }
  Port* raw = vp.release();
  ports_[no].store(raw, std::memory_order_release);
  // Without its underlay (yet) the port waits for it: port_add attaches it.
  if (up != nullptr) esp_attach(*raw, *up);
  return port_info(no).value();
}

std::expected<void, api::Error> Datapath::port_del(uint32_t port_no) {
  Port* p = port(port_no);
  if (p == nullptr) return std::unexpected(err(ENOENT, "no port " + std::to_string(port_no)));
  if (const EspChildren* kids = p->esp_children(); kids != nullptr) {
    // The ESP ports riding it wait for it to come back (their packets: no_port).
    for (const EspChild& c : kids->v)
      if (Port* k = port(c.port_no)) k->set_esp_underlay(api::kPortAny);
    p->set_esp_children(nullptr);
    rcu_.defer([kids] { delete kids; });
  }
  if (p->is_esp() && p->esp_underlay() != api::kPortAny) {
    if (Port* up = port(p->esp_underlay())) {
      const EspChildren* old = up->esp_children();
      EspChildren* next = nullptr;
      if (old != nullptr && old->v.size() > 1) {
        next = new EspChildren{};
        for (const EspChild& c : old->v)
          if (c.port_no != port_no) next->v.push_back(c);
      }
      up->set_esp_children(next);
      rcu_.defer([old] { delete old; });
    }
  }
  ports_[port_no].store(nullptr, std::memory_order_release);
  rebalance_rxqs();
  // Every PMD must stop polling and sending on the port before the device goes away.
  rcu_.synchronize();
  rcu_.reclaim();
  fw_quarantine_[port_no].store(0, std::memory_order_relaxed);  // no PMD uses the port now
  delete p;
  return {};
}

std::expected<uint32_t, api::Error> Datapath::port_by_name(const std::string& name) const {
  for (uint32_t i = 0; i < kMaxPorts; ++i) {
    Port* p = ports_[i].load(std::memory_order_relaxed);
    if (p != nullptr && p->name() == name) return i;
  }
  return std::unexpected(err(ENOENT, "no port named '" + name + "'"));
}

std::expected<api::PortInfo, api::Error> Datapath::port_info(uint32_t port_no) const {
  Port* p = port(port_no);
  if (p == nullptr) return std::unexpected(err(ENOENT, "no port " + std::to_string(port_no)));
  return info_of(*p);
}

api::PortInfo Datapath::info_of(const Port& p) const {
  api::PortInfo pi = p.info();
  if (!p.is_esp()) return pi;
  // An ESP port: link as the underlay's, MTU the largest inner one its ESP packets leave
  // room for in the underlay's (tunnel mode, AEAD: outer IP + SPI/seq 8 + IV 8, padding
  // to 4 with 2 trailer bytes, ICV 16; the inner frame's Ethernet header).
  pi.link_up = 0;  // until its underlay exists
  if (Port* u = p.esp_underlay() < kMaxPorts ? port(p.esp_underlay()) : nullptr) {
    uint16_t umtu = 0;
    rte_eth_link link{};
    if (rte_eth_dev_get_mtu(u->dpdk_id(), &umtu) == 0) {
      const uint32_t hdr = (p.esp_args().family == 4 ? 20u : 40u) + 16u;
      if (umtu > hdr + 16 + 4 + kEthLenForMtu)
        pi.mtu = static_cast<uint16_t>(((umtu - hdr - 16) & ~3u) - 2 - kEthLenForMtu);
    }
    if (rte_eth_link_get_nowait(u->dpdk_id(), &link) == 0) pi.link_up = link.link_status ? 1 : 0;
  }
  return pi;
}

std::expected<api::PortInfo, api::Error> Datapath::port_set_mtu(uint32_t port_no, uint16_t mtu) {
  Port* p = port(port_no);
  if (p == nullptr) return std::unexpected(err(ENOENT, "no port " + std::to_string(port_no)));
  if (p->is_esp())
    return std::unexpected(err(ENOTSUP, "an ESP port's MTU follows its underlay's: set that"));
  if (mtu < 68 || mtu > api::kMaxPortMtu)
    return std::unexpected(err(EINVAL, "MTU " + std::to_string(mtu) + " is outside 68.." +
                                           std::to_string(api::kMaxPortMtu) +
                                           " (gldp receives frames of up to 2048 bytes)"));
  int rc = rte_eth_dev_set_mtu(p->dpdk_id(), mtu);
  if (rc == -ENOTSUP)
    return std::unexpected(
        err(ENOTSUP, "the " + std::string(p->info().driver) + " device cannot change its MTU"));
  if (rc != 0) {
    std::string why = rte_strerror(-rc);
    rte_eth_dev_info di{};
    if (rc == -EINVAL && rte_eth_dev_info_get(p->dpdk_id(), &di) == 0) {
      // ethdev also bounds the frame (MTU + Ethernet header + CRC) by max_rx_pktlen.
      uint32_t hi = di.max_mtu;
      if (di.max_rx_pktlen > RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN)
        hi = std::min<uint32_t>(hi, di.max_rx_pktlen - RTE_ETHER_HDR_LEN - RTE_ETHER_CRC_LEN);
      why = "the " + std::string(p->info().driver) + " device takes " + std::to_string(di.min_mtu) +
            ".." + std::to_string(hi);
    }
    return std::unexpected(err(-rc, "cannot set MTU " + std::to_string(mtu) + ": " + why));
  }
  return info_of(*p);
}

std::vector<api::PortInfo> Datapath::port_list() const {
  std::vector<api::PortInfo> out;
  for (auto& slot : ports_)
    if (Port* p = slot.load(std::memory_order_relaxed)) out.push_back(info_of(*p));
  return out;
}

size_t Datapath::n_ports() const {
  size_t n = 0;
  for (auto& slot : ports_) n += slot.load(std::memory_order_relaxed) != nullptr;
  return n;
}

// ---- flows ---------------------------------------------------------------------------

namespace {

// Whether every packet that matches (key2, mask2) also matches (key1, mask1): mask1's bits
// are a subset of mask2's and the keys agree on them.
bool match_contains(const flow::FlowKey& key1, const flow::FlowMask& mask1,
                    const flow::FlowKey& key2, const flow::FlowMask& mask2) {
  const auto* k1 = reinterpret_cast<const uint64_t*>(&key1);
  const auto* m1 = reinterpret_cast<const uint64_t*>(&mask1);
  const auto* k2 = reinterpret_cast<const uint64_t*>(&key2);
  const auto* m2 = reinterpret_cast<const uint64_t*>(&mask2);
  static_assert(sizeof(flow::FlowKey) % 8 == 0);
  for (size_t i = 0; i < sizeof(flow::FlowKey) / 8; ++i) {
    if ((m1[i] & ~m2[i]) != 0) return false;
    if (((k1[i] ^ k2[i]) & m1[i]) != 0) return false;
  }
  return true;
}

}  // namespace

api::EntryResult Datapath::flow_put(const api::FlowPutEntry& e, std::span<const uint8_t> actions) {
  if ((e.flags & ~(api::kPutCreate | api::kPutModify | api::kPutZeroStats)) != 0)
    return entry_error(EINVAL, "unknown flow put flags");
  if ((e.flags & (api::kPutCreate | api::kPutModify)) == 0)
    return entry_error(EINVAL, "flow put needs create and/or modify");
  if (auto v = odp::validate_actions(actions); !v) return entry_error(EINVAL, v.error());
  CtActions cts;
  if (auto v = decode_ct_actions(actions, cts); !v) return entry_error(EINVAL, v.error());
  flow::FlowMask zero = flow::zero_key();
  // Padding words must not be masked in: they never carry packet data.
  if (e.mask.pad0 || e.mask.pad1 || e.mask.pad2 || e.mask.pad3 || e.mask.pad4[0] ||
      e.mask.pad4[1] || e.mask.pad4[2] || zero.pad0)
    return entry_error(EINVAL, "mask covers padding bytes of the flow key");
  if (e.mask.in_port != 0 && e.mask.in_port != 0xffffffffu)
    return entry_error(EINVAL, "in_port must be matched exactly or not at all");

  if (Flow** found = by_ufid_.find(e.ufid)) {
    Flow* f = *found;
    if ((e.flags & api::kPutModify) == 0) return entry_error(EEXIST, "flow exists");
    // Like the kernel datapath (OVS_FLOW_CMD_SET finds the flow by UFID and swaps its
    // actions), a modify keeps the installed match. It may come with a wider one: OVS's
    // revalidator repeats its ukey's megaflow, while gldp may hold a narrower flow for
    // that UFID (the exact-match drop flow OVS puts for a packet from a port it had not
    // associated yet). The new actions are right for every packet of the wider match, so
    // for the flow's too. A match that does not contain the flow's is refused.
    if (!match_contains(e.key, e.mask, f->key, f->mask))
      return entry_error(EINVAL,
                         "modify must keep the flow's match (same UFID, a match that "
                         "does not contain the installed one)");
    api::EntryResult r{};
    r.stats = flow_stats(*f);
    const ActionsBlob* old =
        f->actions.exchange(ActionsBlob::create(actions), std::memory_order_acq_rel);
    rcu_.defer([old] { ActionsBlob::destroy(old); });
    if (e.flags & api::kPutZeroStats) f->base = r.stats;
    return r;
  }
  if ((e.flags & api::kPutCreate) == 0) return entry_error(ENOENT, "no such flow");
  // Megaflows must not overlap (as in OVS's userspace datapath): a new flow whose key an
  // existing flow already matches is refused. OVS's handlers then leave it alone — the
  // usual case is several upcalls of one megaflow racing to install it.
  if (const flow::ClsRule* r = cls_.lookup(e.key)) {
    const Flow* other = static_cast<const Flow*>(r);
    return entry_error(EEXIST,
                       "flow " + api::format_ufid(other->ufid) + " already matches this key");
  }

  auto* f = new Flow();
  f->ufid = e.ufid;
  f->mask = e.mask;
  flow::apply_mask(e.key, e.mask, f->key);
  f->priority = 0;
  f->pmd_stats = std::make_unique<FlowPmdStats[]>(pmds_.size() + 1);
  f->actions.store(ActionsBlob::create(actions), std::memory_order_relaxed);
  if (!free_slots_.empty()) {
    f->slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[f->slot] = f;
  } else {
    f->slot = static_cast<uint32_t>(slots_.size());
    slots_.push_back(f);
  }
  by_ufid_.insert(e.ufid, f);
  cls_.insert(f);  // publishes: PMDs may match it from now on
  ++flows_added_;  // the miss hold looks for flows of held keys again
  return api::EntryResult{};
}

void Datapath::retire_flow(Flow* f) {
  cls_.remove(f);  // marks dead; PMDs sweep their EMCs before their next quiescent point
  dead_epoch_.fetch_add(1, std::memory_order_release);
  by_ufid_.erase(f->ufid);
  slots_[f->slot] = nullptr;
  free_slots_.push_back(f->slot);
  rcu_.defer([f] {
    ActionsBlob::destroy(f->actions.load(std::memory_order_relaxed));
    delete f;
  });
}

api::EntryResult Datapath::flow_del(const api::Ufid& ufid) {
  Flow** found = by_ufid_.find(ufid);
  if (found == nullptr) return entry_error(ENOENT, "no such flow");
  Flow* f = *found;
  api::EntryResult r{};
  r.stats = flow_stats(*f);
  retire_flow(f);
  return r;
}

const Flow* Datapath::flow_find(const api::Ufid& ufid) const {
  Flow* const* found = by_ufid_.find(ufid);
  return found == nullptr ? nullptr : *found;
}

api::FlowStats Datapath::flow_stats(const Flow& f) const {
  api::FlowStats s{};
  uint64_t used = 0;
  for (size_t i = 0; i <= pmds_.size(); ++i) {
    const FlowPmdStats& p = f.pmd_stats[i];
    s.packets += p.packets.get();
    s.bytes += p.bytes.get();
    used = std::max(used, p.used_tsc.get());
    s.tcp_flags |= static_cast<uint16_t>(p.tcp_flags.get());
  }
  s.packets -= std::min(s.packets, f.base.packets);
  s.bytes -= std::min(s.bytes, f.base.bytes);
  s.used_ms = tsc_to_ms_ago_base(used);
  return s;
}

uint64_t Datapath::flow_dump(uint64_t cursor, const std::function<bool(const Flow&)>& fn) const {
  uint64_t i = cursor;
  for (; i < slots_.size(); ++i) {
    const Flow* f = slots_[i];
    if (f == nullptr) continue;
    if (!fn(*f)) return i;  // this one did not fit: resume here
  }
  return 0;
}

void Datapath::flow_flush() {
  std::vector<Flow*> all;
  all.reserve(by_ufid_.size());
  by_ufid_.for_each([&](const api::Ufid&, Flow* f) { all.push_back(f); });
  for (Flow* f : all) retire_flow(f);
  slots_.clear();
  free_slots_.clear();
}

// ---- execute ---------------------------------------------------------------------------

std::expected<void, api::Error> Datapath::execute(const flow::FlowKey& mdkey,
                                                  std::span<const uint8_t> acts,
                                                  std::span<const uint8_t> packet) {
  if (auto v = odp::validate_actions(acts); !v) return std::unexpected(err(EINVAL, v.error()));
  CtActions cts;
  if (auto v = decode_ct_actions(acts, cts); !v) return std::unexpected(err(EINVAL, v.error()));
  if (packet.size() < 14) return std::unexpected(err(EINVAL, "packet shorter than 14 bytes"));
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (m == nullptr) return std::unexpected(err(ENOBUFS, "no mbuf available"));
  if (packet.size() > rte_pktmbuf_tailroom(m)) {
    rte_pktmbuf_free(m);
    return std::unexpected(err(
        EMSGSIZE, "packet of " + std::to_string(packet.size()) + " bytes does not fit one mbuf"));
  }
  std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(packet.size())), packet.data(),
              packet.size());
  PacketMd md;
  key_to_md(mdkey, md);
  control_->execute(m, md, acts, cts);
  return {};
}

void Datapath::inject(uint32_t in_port, rte_mbuf** pkts, uint16_t n) {
  control_->receive(pkts, n, in_port);
}

// ---- ESP security associations -------------------------------------------------------

SaEntry::~SaEntry() {
  sodium_memzero(keymat, sizeof keymat);
  // sa's destructor wipes the expanded key and salt.
}

namespace {

bool sa_less(const api::SaConfigWire& a, uint8_t dir, uint32_t spi) {
  return a.dir != dir ? a.dir < dir : a.spi < spi;
}

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

std::string spi_str(uint32_t spi) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%x", spi);
  return b;
}

}  // namespace

std::expected<void, api::Error> Datapath::sa_add(const api::SaAddRequest& req) {
  const api::SaConfigWire& c = req.cfg;
  const uint32_t n_ctx = static_cast<uint32_t>(pmds_.size() + 1);
  auto bad = [](std::string m) { return std::unexpected(err(EINVAL, std::move(m))); };
  if (c.spi < 256) return bad("spi " + spi_str(c.spi) + " is reserved (must be >= 0x100)");
  if (c.dir > 1) return bad("direction must be out (0) or in (1)");
  if (c.mode > 1) return bad("mode must be tunnel (0) or transport (1)");
  if (c.mode == static_cast<uint8_t>(api::SaMode::kTransport))
    return std::unexpected(err(ENOTSUP,
                               "transport mode is not used by the datapath: esp_encrypt/"
                               "esp_decrypt carry whole Ethernet frames in tunnel mode"));
  if (c.cipher > 1) return bad("cipher must be aes256-gcm (0) or chacha20-poly1305 (1)");
  if (c.backend > 2) return bad("backend must be auto (0), sodium (1) or ipsec-mb (2)");
  if (c.esn > 1 || c.df > 1 || c.addr_v6 > 1) return bad("esn, df and addr_v6 are 0 or 1");
  if (c.ttl == 0) return bad("ttl must be 1..255");
  if (c.pad1 != 0) return bad("padding fields must be zero");
  if (req.flags & ~api::kSaAddReplace) return bad("unknown sa add flags");
  const bool replace = (req.flags & api::kSaAddReplace) != 0;
  const bool out = c.dir == static_cast<uint8_t>(api::SaDir::kOut);
  if (out) {
    if (c.group == 0) return bad("an outbound SA needs a group id >= 1");
    if (c.pmd >= n_ctx)
      return bad("pmd " + std::to_string(c.pmd) + " out of range 0.." + std::to_string(n_ctx - 1) +
                 " (" + std::to_string(n_ctx - 1) + " = the control thread)");
    if (all_zero(c.dst_mac, 6)) return bad("an outbound SA needs the underlay dst_mac");
    if (c.dst_mac[0] & 1) return bad("dst_mac must be a unicast address");
    if (c.src_mac[0] & 1 || all_zero(c.src_mac, 6)) return bad("src_mac must be unicast, non-zero");
    if (c.replay_window != 0) return bad("replay_window applies to inbound SAs only");
    if (c.mtu != 0 && (c.mtu < (c.addr_v6 ? 1280 : 576)))
      return bad("mtu " + std::to_string(c.mtu) + " below the minimum (576 IPv4, 1280 IPv6)");
  } else {
    if (c.group != 0) return bad("group applies to outbound SAs only");
    if (c.pmd >= n_ctx && c.pmd != api::kSaPmdAny)
      return bad("pmd " + std::to_string(c.pmd) + " out of range 0.." + std::to_string(n_ctx - 1) +
                 " or any");
    if (!all_zero(c.src_mac, 6) || !all_zero(c.dst_mac, 6) || c.mtu != 0)
      return bad("src_mac/dst_mac/mtu apply to outbound SAs only");
  }
  const size_t alen = c.addr_v6 ? 16 : 4;
  if (!c.addr_v6 && (!all_zero(c.local + 4, 12) || !all_zero(c.remote + 4, 12)))
    return bad("IPv4 addresses use the first 4 bytes only");
  if (all_zero(c.local, alen) || all_zero(c.remote, alen))
    return bad("tunnel mode needs local and remote underlay addresses");
  if (all_zero(req.keymat, crypto::kKeyLen)) return bad("the key is all zeros");
  auto pos = std::lower_bound(
      sas_.begin(), sas_.end(), c,
      [](const SaEntry* e, const api::SaConfigWire& k) { return sa_less(e->cfg, k.dir, k.spi); });
  if (pos != sas_.end() && (*pos)->cfg.dir == c.dir && (*pos)->cfg.spi == c.spi)
    return std::unexpected(err(EEXIST, std::string(out ? "outbound" : "inbound") + " SA spi " +
                                           spi_str(c.spi) + " exists"));
  if (replace && !out) return bad("replace applies to outbound SAs only");
  SaEntry* replaced = nullptr;
  if (out) {
    for (SaEntry* e : sas_)
      if (e->cfg.dir == c.dir && e->cfg.group == c.group && e->cfg.pmd == c.pmd) {
        if (!replace)
          return std::unexpected(err(EEXIST, "group " + std::to_string(c.group) +
                                                 " already has SA spi " + spi_str(e->cfg.spi) +
                                                 " for pmd " + std::to_string(c.pmd) +
                                                 " (del-sa it first, or add with replace)"));
        replaced = e;
      }
  }

  const crypto::Cipher cipher = static_cast<crypto::Cipher>(c.cipher);
  auto be = crypto::choose_backend(api::kSaBackendNames[c.backend], cipher);
  if (!be) return std::unexpected(err(ENOTSUP, be.error()));
  crypto::SaConfig sc;
  sc.spi = c.spi;
  sc.dir = out ? crypto::Direction::outbound : crypto::Direction::inbound;
  sc.mode = crypto::Mode::tunnel;
  sc.cipher = cipher;
  sc.backend = *be;
  sc.esn = c.esn != 0;
  sc.local.v6 = sc.remote.v6 = c.addr_v6 != 0;
  std::memcpy(sc.local.bytes.data(), c.local, 16);
  std::memcpy(sc.remote.bytes.data(), c.remote, 16);
  sc.ttl = c.ttl;
  sc.df = c.df != 0;
  if (!out && c.replay_window != 0) sc.replay_window = c.replay_window;
  sc.seq_start = c.seq_start;
  auto sa = crypto::make_sa(sc, std::span<const uint8_t>(req.keymat, crypto::kKeyMatLen));
  if (!sa) return std::unexpected(err(EINVAL, sa.error()));

  auto* e = new SaEntry();
  e->sa = std::move(*sa);
  e->cfg = c;
  e->cfg.backend = *be == crypto::Backend::sodium ? static_cast<uint8_t>(api::SaBackend::kSodium)
                                                  : static_cast<uint8_t>(api::SaBackend::kIpsecMb);
  if (!out) e->cfg.replay_window = sc.replay_window;
  std::memcpy(e->keymat, req.keymat, sizeof e->keymat);
  sas_.insert(pos, e);
  if (out) std::erase(retired_out_, uint64_t{c.group} << 32 | c.pmd);
  if (!out) std::erase(retired_in_, c.spi);
  if (replaced != nullptr) {
    if (replaced->retire_tsc != 0) --n_retiring_;  // it was retiring: it goes now
    sas_.erase(std::find(sas_.begin(), sas_.end(), replaced));
  }
  // One version switches the slot: every packet uses either the old or the new SA.
  publish_sa_tables();
  if (replaced != nullptr) rcu_.defer([replaced] { delete replaced; });
  return {};
}

std::expected<void, api::Error> Datapath::sa_del(uint32_t spi, api::SaDir dir, uint32_t grace_ms) {
  const uint8_t d = static_cast<uint8_t>(dir);
  auto it = std::find_if(sas_.begin(), sas_.end(),
                         [&](const SaEntry* e) { return e->cfg.dir == d && e->cfg.spi == spi; });
  if (it == sas_.end())
    return std::unexpected(err(ENOENT, std::string("no ") + (d == 0 ? "outbound" : "inbound") +
                                           " SA with spi " + spi_str(spi)));
  SaEntry* e = *it;
  if (e->retire_tsc != 0) --n_retiring_;
  e->retire_tsc = 0;
  if (grace_ms != 0) {
    // Make-before-break: keep it working until the grace runs out (housekeeping).
    e->retire_tsc = rte_rdtsc() + rte_get_tsc_hz() / 1000 * grace_ms;
    ++n_retiring_;
    return {};
  }
  sas_.erase(it);
  publish_sa_tables();
  // No PMD can hold it after the grace period of the version that no longer has it.
  rcu_.defer([e] { delete e; });
  return {};
}

void Datapath::retire_due_sas(uint64_t now) {
  std::vector<SaEntry*> gone;
  for (auto it = sas_.begin(); it != sas_.end();) {
    if ((*it)->retire_tsc != 0 && (*it)->retire_tsc <= now) {
      gone.push_back(*it);
      it = sas_.erase(it);
    } else {
      ++it;
    }
  }
  if (gone.empty()) return;
  n_retiring_ -= gone.size();
  // Their traffic from now on is esp_sa_retired (unless an SA replaces them).
  for (const SaEntry* e : gone) {
    const api::SaConfigWire& c = e->cfg;
    if (c.dir == static_cast<uint8_t>(api::SaDir::kOut)) {
      const uint64_t k = uint64_t{c.group} << 32 | c.pmd;
      retired_out_.reserve(kMaxRetiredOut + 1);  // once: no reallocation as it grows
      if (std::find(retired_out_.begin(), retired_out_.end(), k) == retired_out_.end())
        retired_out_.push_back(k);
      if (retired_out_.size() > kMaxRetiredOut) retired_out_.erase(retired_out_.begin());
    } else {
      retired_in_.reserve(kMaxRetiredIn + 1);
      retired_in_.push_back(c.spi);
      if (retired_in_.size() > kMaxRetiredIn) retired_in_.erase(retired_in_.begin());
    }
  }
  publish_sa_tables();
  for (SaEntry* e : gone) rcu_.defer([e] { delete e; });
}

void Datapath::publish_sa_tables() {
  const size_t n_ctx = pmds_.size() + 1;
  SaTables* t = nullptr;
  if (!sas_.empty() || !retired_out_.empty() || !retired_in_.empty()) {
    t = new SaTables();
    // Copies of one size whatever the lists hold (their caps): copies a few bytes longer
    // at every rotation left the allocator's earlier chunks of each size behind, and
    // resident memory crept up by ~20 KiB a minute under rekeys every 5 s (bench/soak.py).
    if (!retired_out_.empty()) {
      t->retired_out.reserve(kMaxRetiredOut + 1);
      t->retired_out.assign(retired_out_.begin(), retired_out_.end());
      std::sort(t->retired_out.begin(), t->retired_out.end());
    }
    if (!retired_in_.empty()) {
      t->retired_in.reserve(kMaxRetiredIn + 1);
      t->retired_in.assign(retired_in_.begin(), retired_in_.end());
      std::sort(t->retired_in.begin(), t->retired_in.end());
    }
    std::vector<std::vector<crypto::Sa*>> in(n_ctx);
    std::vector<crypto::Sa*> in_all;
    for (SaEntry* e : sas_) {
      const api::SaConfigWire& c = e->cfg;
      if (c.dir == static_cast<uint8_t>(api::SaDir::kIn)) {
        in_all.push_back(e->sa.get());
        if (c.pmd != api::kSaPmdAny) t->inbound_owner.push_back(uint64_t{c.spi} << 32 | c.pmd);
        for (size_t i = 0; i < n_ctx; ++i)
          if (c.pmd == api::kSaPmdAny || c.pmd == i) in[i].push_back(e->sa.get());
        continue;
      }
      auto g = std::lower_bound(t->groups.begin(), t->groups.end(), c.group,
                                [](const EspGroup& x, uint32_t id) { return x.id < id; });
      if (g == t->groups.end() || g->id != c.group) {
        g = t->groups.insert(g, EspGroup{c.group, std::vector<EspOutSlot>(n_ctx)});
      }
      EspOutSlot& s = g->slots[c.pmd];
      s.sa = e->sa.get();
      s.max_frame = c.mtu != 0 ? e->sa->max_inner(c.mtu) : UINT32_MAX;
      std::memcpy(s.eth, c.dst_mac, 6);
      std::memcpy(s.eth + 6, c.src_mac, 6);
      s.eth[12] = c.addr_v6 ? 0x86 : 0x08;
      s.eth[13] = c.addr_v6 ? 0xdd : 0x00;
    }
    // Duplicates were refused by sa_add, so build() cannot fail.
    for (size_t i = 0; i < n_ctx; ++i) t->inbound.push_back(*crypto::SaTable::build(in[i]));
    t->inbound_all = *crypto::SaTable::build(in_all);
    std::sort(t->inbound_owner.begin(), t->inbound_owner.end());
  }
  const SaTables* old = sa_tables_.exchange(t, std::memory_order_acq_rel);
  if (old != nullptr) rcu_.defer([old] { delete old; });
}

uint64_t Datapath::sa_dump(uint64_t cursor, bool keys,
                           const std::function<bool(const api::SaInfo&)>& fn) const {
  for (uint64_t i = cursor; i < sas_.size(); ++i) {
    const SaEntry* e = sas_[i];
    api::SaInfo info{};
    info.cfg = e->cfg;
    const crypto::SaStats st = e->sa->stats();
    info.seq = e->sa->seq();
    info.bytes = st.bytes;
    for (size_t r = 0; r < crypto::kResultCount && r < api::kSaResults; ++r)
      info.results[r] = st.by_result[r];
    info.expired = e->sa->expired();
    if (e->retire_tsc != 0) {
      const uint64_t now = rte_rdtsc();
      const uint64_t left = e->retire_tsc > now ? e->retire_tsc - now : 0;
      info.retire_ms = static_cast<uint32_t>(
          std::max<uint64_t>(1, left / std::max<uint64_t>(1, rte_get_tsc_hz() / 1000)));
    }
    if (keys) {
      info.has_keys = 1;
      std::memcpy(info.keymat, e->keymat, sizeof info.keymat);
    }
    const bool fit = fn(info);
    sodium_memzero(info.keymat, sizeof info.keymat);
    if (!fit) return i;
  }
  return 0;
}

// ---- upcalls -------------------------------------------------------------------------

size_t Datapath::drain_upcalls(size_t max, const std::function<void(const UpcallSlot&)>& fn) {
  size_t done = 0;
  const uint64_t now = rte_rdtsc();
  auto drain = [&](Pmd& p) {
    UpcallSlot* slot;
    while (done < max && p.upcall_queue().pop(slot)) {
      if (slot->kind != static_cast<uint8_t>(api::UpcallKind::kMiss) ||
          !hold_.on_miss(slot->key, slot->mbuf, now)) {
        fn(*slot);
        rte_pktmbuf_free(slot->mbuf);
      }
      slot->mbuf = nullptr;
      p.upcall_free_queue().push(slot);  // cannot fail: the slot came from it
      ++done;
    }
  };
  for (auto& p : pmds_) drain(*p);
  drain(*control_);
  // Sweep the hold when flows were added since the last sweep (held keys may have their
  // flow now) or, for windows running out, once a millisecond: not on every turn of a
  // busy control loop, whose core the handler needs.
  if (hold_.n_keys() != 0 &&
      (flows_added_ != flows_added_swept_ || now - last_sweep_tsc_ >= rte_get_tsc_hz() / 1000)) {
    if (flows_added_ != flows_added_swept_) hold_.note_progress(now);
    flows_added_swept_ = flows_added_;
    last_sweep_tsc_ = now;
    // Held misses whose flow has appeared run through it (on the control context);
    // those whose window ran out go up as ordinary upcalls.
    UpcallSlot up{};
    up.kind = static_cast<uint8_t>(api::UpcallKind::kMiss);
    hold_.sweep(
        now, 256, [&](const flow::FlowKey& k) { return cls_.lookup(k) != nullptr; },
        [&](const flow::FlowKey& k, MissHold::Packets pkts) {
          PacketMd md;
          key_to_md(k, md);
          control_->rerun(const_cast<rte_mbuf**>(pkts.data()), static_cast<uint16_t>(pkts.size()),
                          md);
        },
        [&](const flow::FlowKey& k, MissHold::Packets pkts) {
          up.key = k;
          for (rte_mbuf* m : pkts) {
            up.mbuf = m;
            fn(up);
            rte_pktmbuf_free(m);
          }
        });
  }
  return done;
}

void Datapath::configure_miss_hold(uint32_t ms) {
  // What is held stays: the next sweeps run it through its flow or send it up (at once
  // when holding is switched off: a window of 0 has run out).
  MissHold::Config c;
  c.window = rte_get_tsc_hz() / 1000 * ms;
  // While the handler keeps installing flows, up to 10 windows (at most a second, at
  // least the window itself).
  c.max_window = std::max<uint64_t>(c.window, std::min<uint64_t>(10 * c.window, rte_get_tsc_hz()));
  c.uncached_for = rte_get_tsc_hz();   // one second
  c.settle = rte_get_tsc_hz() / 1000;  // a millisecond after the flow appeared
  // Never hold more than a quarter of the packet buffers.
  c.max_held = std::min<uint32_t>(8192, opts_.n_mbufs / 4);
  hold_.configure(c);
  // The PMDs charge repeats of a miss sent up within the longest window to a bucket of
  // their own (pmd.hpp, RecentMisses).
  for (auto& p : pmds_) p->set_repeat_window(ms == 0 ? 0 : c.max_window);
  control_->set_repeat_window(ms == 0 ? 0 : c.max_window);
  opts_.miss_hold_ms = ms;
}

// ---- stats, config, housekeeping ---------------------------------------------------

void Datapath::fill_stats(api::StatsReply& t, std::vector<api::PmdStats>& pmds,
                          std::vector<api::DropCounter>& drops) const {
  t.n_flows = by_ufid_.size();
  t.n_pmds = static_cast<uint32_t>(pmds_.size());
  t.tsc_hz = rte_get_tsc_hz();
  const MissHold::Counters& h = hold_.counters();
  t.misses_held = h.held;
  t.misses_held_run = h.run;
  t.misses_held_sent_up = h.sent_up;
  t.misses_hold_full = h.overflow;
  std::array<uint64_t, static_cast<size_t>(Drop::kCount)> d{};
  std::array<uint64_t, flow::kParseResultCount> parse{};
  auto add = [&](const Pmd& p) {
    const PmdCounters& c = p.counters();
    for (size_t i = 0; i < d.size(); ++i) d[i] += c.drops[i].get();
    for (size_t i = 0; i < parse.size(); ++i) parse[i] += c.parse[i].get();
  };
  for (auto& p : pmds_) {
    const PmdCounters& c = p->counters();
    api::PmdStats s{};
    s.core = p->lcore();
    s.n_rxq = static_cast<uint32_t>(p->n_rxq());
    s.packets = c.packets.get();
    s.batches = c.batches.get();
    s.busy_cycles = c.busy_cycles.get();
    s.idle_cycles = c.idle_cycles.get();
    s.emc_hits = c.emc_hits.get();
    s.megaflow_hits = c.megaflow_hits.get();
    s.misses = c.misses.get();
    s.upcalls = c.upcalls.get();
    s.upcalls_lost = c.upcalls_lost.get();
    s.recirculations = c.recirculations.get();
    s.esp_fragmented = c.esp_fragmented.get();
    s.esp_handoffs = c.esp_handoffs.get();
    pmds.push_back(s);
    add(*p);
  }
  add(*control_);
  for (size_t i = 0; i < d.size(); ++i) {
    api::DropCounter dc{};
    api::set_fixed(dc.name, sizeof dc.name, kDropNames[i]);
    dc.count = d[i];
    drops.push_back(dc);
  }
  for (size_t i = 1; i < parse.size(); ++i) {  // [0] is "ok"
    api::DropCounter dc{};
    std::string name = "parse_" + std::string(flow::kParseResultNames[i]);
    api::set_fixed(dc.name, sizeof dc.name, name.substr(0, sizeof dc.name - 1));
    dc.count = parse[i];
    drops.push_back(dc);
  }
  t.n_drops = static_cast<uint32_t>(drops.size());
}

void Datapath::clear_stats() {
  auto clear = [](PmdCounters& c) {
    for (Counter* x : {&c.packets, &c.batches, &c.busy_cycles, &c.idle_cycles, &c.emc_hits,
                       &c.megaflow_hits, &c.misses, &c.upcalls, &c.upcalls_lost, &c.recirculations,
                       &c.esp_fragmented, &c.esp_handoffs})
      x->reset();
    for (auto& x : c.drops) x.reset();
    for (auto& x : c.parse) x.reset();
  };
  // Counters are single-writer: a reset races with the PMD's next add and may lose it;
  // that is acceptable for "clear" (the same holds for OVS's pmd-stats-clear).
  for (auto& p : pmds_) clear(p->counters());
  clear(control_->counters());
  hold_.clear_counters();
}

std::expected<void, api::Error> Datapath::set_config(const std::string& key,
                                                     const std::string& value) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || v > UINT32_MAX)
    return std::unexpected(err(EINVAL, "value of " + key + " must be a number: '" + value + "'"));
  if (key == "emc-insert-inv-prob") {
    for (auto& p : pmds_) p->request_emc_insert_inv_prob(static_cast<uint32_t>(v));
    opts_.emc_insert_inv_prob = static_cast<uint32_t>(v);
    return {};
  }
  if (key == "miss-hold-ms") {
    if (v > 10000) return std::unexpected(err(EINVAL, "miss-hold-ms must be 0..10000"));
    configure_miss_hold(static_cast<uint32_t>(v));
    return {};
  }
  if (key == "upcall-rate") {
    return std::unexpected(err(ENOTSUP, "upcall-rate is set at start (gldp --upcall-rate)"));
  }
  return std::unexpected(
      err(EINVAL, "unknown config key '" + key + "' (known: emc-insert-inv-prob, miss-hold-ms)"));
}

void Datapath::ct_set_online(bool on, bool fw) {
  ct::Conntrack& t = fw ? *fw_ct_ : *ct_;
  const int slot = fw ? control_->fw_ct_slot() : control_->ct_slot();
  if (on)
    t.online(slot);
  else
    t.offline(slot);
}

std::expected<void, std::string> Datapath::set_firewall(std::unique_ptr<fw::FwTables> t) {
  if (t != nullptr) {
    // Slots and generations continue from the version in force (this thread publishes).
    if (auto r = t->index(firewall()); !r) return std::unexpected(r.error());
    // Each workload's connections are limited in its own zone of the firewall's tracker.
    const fw::FwTables* old = firewall();
    if (old != nullptr)
      for (const fw::PortFirewall& p : old->ports)
        if (t->port(p.port_no) == nullptr) fw_ct_->del_zone_limit(static_cast<uint16_t>(p.port_no));
    for (const fw::PortFirewall& p : t->ports) {
      if (p.conn_limit != 0)
        fw_ct_->set_zone_limit(static_cast<uint16_t>(p.port_no), p.conn_limit);
      else
        fw_ct_->del_zone_limit(static_cast<uint16_t>(p.port_no));
    }
  }
  if (t != nullptr) t->alloc_counters(n_contexts_);
  // Quarantine: set for the new version's named ports before it is published (a port it
  // binds is checked by its policy first), cleared for the others after.
  for (uint32_t no = 0; no < kMaxPorts; ++no)
    if (Port* p = port(no); p != nullptr && fw_quarantines(t.get(), no, p->name()))
      fw_quarantine_[no].store(1, std::memory_order_relaxed);
  const fw::FwTables* old = fw_tables_.exchange(t.release(), std::memory_order_acq_rel);
  fw_state_save(firewall());
  // Cleared only once no PMD can still hold the old version (which may not bind a port
  // the new one does), against whatever version is in force by then.
  rcu_.defer([this] {
    const fw::FwTables* now = firewall();
    for (uint32_t no = 0; no < kMaxPorts; ++no)
      if (Port* p = port(no); p == nullptr || !fw_quarantines(now, no, p->name()))
        fw_quarantine_[no].store(0, std::memory_order_relaxed);
  });
  if (old != nullptr) {
    fw_retired_.push_back(old);  // still counted by fw_rule_stats() until folded
    rcu_.defer([this, old] {     // no PMD counts into it any more: its counts become totals
      fw_fold_counters(*old);
      std::erase(fw_retired_, old);
      delete old;
    });
  }
  return {};
}

bool Datapath::fw_quarantines(const fw::FwTables* t, uint32_t no, const std::string& name) {
  if (t == nullptr || t->port(no) != nullptr) return false;
  return std::find(t->quarantine.begin(), t->quarantine.end(), name) != t->quarantine.end();
}

void Datapath::fw_fold_counters(const fw::FwTables& t) {
  for (uint32_t slot = 0; slot < t.rule_ids.size(); ++slot) {
    const std::array<uint64_t, 3> c = t.counted(slot);
    if (c[0] == 0 && c[1] == 0 && c[2] == 0) continue;
    std::array<uint64_t, 3>& tot = fw_rule_totals_[t.rule_ids[slot]];
    for (int i = 0; i < 3; ++i) tot[i] += c[i];
  }
}

std::vector<std::pair<uint32_t, std::array<uint64_t, 3>>> Datapath::fw_rule_stats() const {
  std::unordered_map<uint32_t, std::array<uint64_t, 3>> sum = fw_rule_totals_;
  auto add = [&](const fw::FwTables& t) {
    for (uint32_t slot = 0; slot < t.rule_ids.size(); ++slot) {
      const std::array<uint64_t, 3> c = t.counted(slot);
      std::array<uint64_t, 3>& tot = sum[t.rule_ids[slot]];
      for (int i = 0; i < 3; ++i) tot[i] += c[i];
    }
  };
  for (const fw::FwTables* t : fw_retired_) add(*t);
  if (const fw::FwTables* t = firewall(); t != nullptr) add(*t);
  std::vector<std::pair<uint32_t, std::array<uint64_t, 3>>> out(sum.begin(), sum.end());
  std::sort(out.begin(), out.end());
  return out;
}

void Datapath::fw_events(size_t max, std::vector<fw::FwEvent>& out, uint64_t& lost) {
  for (unsigned c = 0; c < n_contexts_; ++c)
    fw_rings_[c].drain([this](const fw::FwEvent& e) {
      if (fw_backlog_.size() >= kFwBacklog) {
        ++fw_backlog_lost_;
        return;
      }
      fw_backlog_.push_back(e);
    });
  lost = fw_backlog_lost_;
  for (unsigned c = 0; c < n_contexts_; ++c) lost += fw_rings_[c].lost();
  out.clear();
  while (!fw_backlog_.empty() && out.size() < max) {
    out.push_back(fw_backlog_.front());
    fw_backlog_.pop_front();
  }
}

void Datapath::fw_on_end(unsigned ctx, const ct::Entry& e, bool expired, uint64_t now_ms) {
  if (!fw::ConnVerdict::is_ours(e.label)) return;
  const fw::ConnVerdict v = fw::ConnVerdict::from_label(e.label);
  if (!v.record) return;
  fw::FwEvent ev{};
  ev.kind = fw::EventKind::kEnd;
  ev.reason = expired ? fw::EventReason::kExpired : fw::EventReason::kRemoved;
  ev.time_ms = now_ms;
  ev.start_ms = now_ms - static_cast<uint32_t>(static_cast<uint32_t>(now_ms) - v.start_ms);
  for (int d = 0; d < 2; ++d) {
    ev.packets[d] = e.packets[d];
    ev.bytes[d] = e.bytes[d];
  }
  std::memcpy(ev.src, e.orig.src, 16);
  std::memcpy(ev.dst, e.orig.dst, 16);
  ev.proto = e.orig.proto;
  ev.family = e.orig.family;
  if (ev.proto == flow::kIpProtoIcmp || ev.proto == flow::kIpProtoIcmpv6) {
    ev.icmp_type = static_cast<uint8_t>(e.orig.dport >> 8);
    ev.icmp_code = static_cast<uint8_t>(e.orig.dport);
  } else {
    ev.sport = e.orig.sport;
    ev.dport = e.orig.dport;
  }
  ev.port_no = e.orig.zone;
  ev.rule_id = e.mark;
  ev.generation = v.generation;
  ev.action = static_cast<uint8_t>(v.action);
  ev.to_vm = v.to_vm ? 1 : 0;
  fw_event(ctx, ev);
}

void Datapath::housekeeping() {
  rcu_.reclaim();
  uint64_t now = rte_rdtsc();
  control_->ct_sweep(now);
  control_->esp_handoff_drain();  // ESP packets of the control context's inbound SAs
  // Memory for the next 64k connections (12 MiB) backed here, on the control core: a
  // burst of new connections does not take its page faults on a PMD.
  if (ct_ != nullptr) ct_->prefault(65536);
  if (fw_ct_ != nullptr) fw_ct_->prefault(65536);
  // The lookup indexes grow with the connections (small ones are faster to look up in).
  if (ct_ != nullptr) ct_->grow_index();
  if (fw_ct_ != nullptr) fw_ct_->grow_index();
  if (n_retiring_ != 0) retire_due_sas(now);
  if (now - last_rerank_tsc_ > rte_get_tsc_hz()) {
    cls_.rerank();
    last_rerank_tsc_ = now;
  }
}

}  // namespace gl::dp
