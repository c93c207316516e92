#include "dataplane/port.hpp"

#include <arpa/inet.h>
#include <linux/openvswitch.h>
#include <net/if.h>
#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_ring.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace gl::dp {

namespace {

std::string rte_err(int rc) {
  return rte_strerror(rc < 0 ? -rc : rc);
}

}  // namespace

bool is_esp_devargs(const std::string& devargs) {
  return devargs == kEspDriver || devargs.rfind(std::string(kEspDriver) + ",", 0) == 0;
}

std::expected<EspPortArgs, std::string> parse_esp_devargs(const std::string& devargs) {
  EspPortArgs a;
  bool has_local = false, has_remote = false, has_group = false;
  uint8_t local_family = 0, remote_family = 0;
  size_t pos = devargs.find(',');
  while (pos != std::string::npos) {
    size_t next = devargs.find(',', pos + 1);
    std::string kv =
        devargs.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
    pos = next;
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return std::unexpected("gl_esp: '" + kv + "' is not KEY=VALUE");
    std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "underlay") {
      if (v.empty()) return std::unexpected("gl_esp: underlay needs a port name or number");
      a.underlay = v;
    } else if (k == "group") {
      char* end = nullptr;
      errno = 0;
      unsigned long g = std::strtoul(v.c_str(), &end, 0);
      if (v.empty() || *end != '\0' || errno != 0 || g == 0 || g > UINT32_MAX)
        return std::unexpected("gl_esp: group must be a number from 1 to 4294967295, not '" + v +
                               "'");
      a.group = static_cast<uint32_t>(g);
      has_group = true;
    } else if (k == "local" || k == "remote") {
      uint8_t* out = k == "local" ? a.local : a.remote;
      uint8_t fam = 0;
      if (inet_pton(AF_INET, v.c_str(), out) == 1)
        fam = 4;
      else if (inet_pton(AF_INET6, v.c_str(), out) == 1)
        fam = 6;
      else
        return std::unexpected("gl_esp: " + k + " '" + v + "' is not an IPv4 or IPv6 address");
      (k == "local" ? local_family : remote_family) = fam;
      (k == "local" ? has_local : has_remote) = true;
    } else {
      return std::unexpected("gl_esp: unknown option '" + k + "' (underlay, group, local, remote)");
    }
  }
  if (a.underlay.empty() || !has_group || !has_local || !has_remote)
    return std::unexpected(
        "gl_esp needs underlay=PORT, group=N, local=IP and remote=IP, e.g. "
        "gl_esp,underlay=p2,group=1,local=192.0.2.1,remote=192.0.2.2");
  if (local_family != remote_family)
    return std::unexpected("gl_esp: local and remote are not of the same address family");
  a.family = local_family;
  return a;
}

std::unique_ptr<Port> Port::open_esp(const PortConfig& cfg, uint32_t port_no,
                                     const EspPortArgs& args, uint32_t underlay_no,
                                     uint16_t n_users) {
  std::unique_ptr<Port> p(new Port());
  p->cfg_ = cfg;
  p->port_no_ = port_no;
  p->dpdk_id_ = UINT16_MAX;
  p->n_rxq_ = 0;  // nothing to poll: ESP ports receive through their underlay
  p->n_txq_ = 0;
  p->driver_ = kEspDriver;
  p->esp_ = true;
  p->esp_underlay_.store(underlay_no, std::memory_order_relaxed);
  p->esp_args_ = args;
  p->n_users_ = n_users;
  p->vctr_ = std::make_unique<VirtCounters[]>(n_users);
  return p;
}

namespace {

// The first line of a sysfs attribute ("" when it cannot be read).
std::string sysfs_line(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return "";
  char buf[256];
  std::string out;
  if (std::fgets(buf, sizeof buf, f) != nullptr) out = buf;
  std::fclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

std::optional<std::string> tap_name_conflict(const std::string& devargs) {
  if (devargs.rfind("net_tap", 0) != 0) return std::nullopt;
  // iface=NAME among the arguments (without it net_tap names the interface itself).
  std::string iface;
  for (size_t pos = devargs.find(','); pos != std::string::npos;) {
    const size_t next = devargs.find(',', pos + 1);
    const std::string kv =
        devargs.substr(pos + 1, next == std::string::npos ? next : next - pos - 1);
    if (kv.rfind("iface=", 0) == 0) iface = kv.substr(6);
    pos = next;
  }
  if (iface.empty() || iface.size() >= IFNAMSIZ || iface.find('/') != std::string::npos ||
      iface == "." || iface == "..")
    return std::nullopt;  // net_tap's own checks
  const std::string dir = "/sys/class/net/" + iface;
  constexpr unsigned kIffTap = 0x0002, kIffMultiQueue = 0x0100;  // linux/if_tun.h
  if (access(dir.c_str(), F_OK) != 0) return std::nullopt;
  std::string why;
  const std::string flags = sysfs_line(dir + "/tun_flags");
  if (!flags.empty()) {
    const unsigned long f = std::strtoul(flags.c_str(), nullptr, 16);
    if ((f & kIffTap) != 0 && (f & kIffMultiQueue) != 0) return std::nullopt;
    why = (f & kIffTap) != 0 ? "a tap without multi-queue" : "a tun (layer 3) device";
  } else {
    const std::string uevent = sysfs_line(dir + "/uevent");
    why = uevent.rfind("DEVTYPE=", 0) == 0 ? "a " + uevent.substr(8) + " interface, not a tap"
                                           : "not a tap";
  }
  return "interface '" + iface + "' already exists in the kernel (" + why +
         ", which net_tap cannot open as its multi-queue tap): remove it (ip link del " + iface +
         ") or name the port otherwise";
}

std::expected<std::unique_ptr<Port>, std::string> Port::open(const PortConfig& cfg,
                                                             uint32_t port_no, rte_mempool* pool,
                                                             uint16_t n_tx_users) {
  if (cfg.devargs.empty()) return std::unexpected("empty devargs");
  // The device name is the devargs up to the first comma ("net_af_packet0,iface=x").
  std::string devname = cfg.devargs.substr(0, cfg.devargs.find(','));
  uint16_t existing;
  if (rte_eth_dev_get_port_by_name(devname.c_str(), &existing) == 0)
    return std::unexpected("device '" + devname + "' is already in use by another port");

  int rc = rte_dev_probe(cfg.devargs.c_str());
  if (rc < 0)
    return std::unexpected("cannot create device from devargs '" + cfg.devargs +
                           "': " + rte_err(rc) +
                           " (check the driver name and its arguments; see the DPDK log above)");

  std::unique_ptr<Port> p(new Port());
  p->cfg_ = cfg;
  p->port_no_ = port_no;
  uint16_t id;
  if (rte_eth_dev_get_port_by_name(devname.c_str(), &id) != 0) {
    // PCI devices are named by their address; devargs may carry extra options.
    RTE_ETH_FOREACH_DEV(id) {
      char n[RTE_ETH_NAME_MAX_LEN];
      if (rte_eth_dev_get_name_by_port(id, n) == 0 && devname == n) break;
    }
    if (id >= RTE_MAX_ETHPORTS) {
      rte_eal_hotplug_remove("vdev", devname.c_str());
      return std::unexpected("devargs '" + cfg.devargs + "' did not create an ethernet port");
    }
  }
  p->dpdk_id_ = id;
  p->opened_ = true;  // from here on the destructor closes and removes the device

  rte_eth_dev_info dev_info{};
  if ((rc = rte_eth_dev_info_get(id, &dev_info)) != 0) {
    return std::unexpected("cannot query device " + devname + ": " + rte_err(rc));
  }
  p->device_ = dev_info.device;
  p->driver_ = dev_info.driver_name ? dev_info.driver_name : "";

  uint16_t want_rxq = std::max<uint16_t>(1, cfg.n_rxq);
  if (want_rxq > dev_info.max_rx_queues)
    return std::unexpected("device " + devname + " has at most " +
                           std::to_string(dev_info.max_rx_queues) + " rx queues, " +
                           std::to_string(want_rxq) + " requested");
  p->n_rxq_ = want_rxq;
  p->n_txq_ = std::min<uint16_t>(n_tx_users, std::max<uint16_t>(1, dev_info.max_tx_queues));
  p->tx_shared_ = p->n_txq_ < n_tx_users;
  p->tx_locks_ = std::make_unique<rte_spinlock_t[]>(p->n_txq_);
  for (uint16_t q = 0; q < p->n_txq_; ++q) rte_spinlock_init(&p->tx_locks_[q]);
  // net_tap refuses rx and tx queue counts that differ (one fd per queue pair): give it
  // as many rx queues as tx queues; the extra ones are polled like any other.
  if (p->driver_ == "net_tap" && p->n_rxq_ < p->n_txq_) p->n_rxq_ = p->n_txq_;

  rte_eth_conf conf{};
  if (want_rxq > 1) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & dev_info.flow_type_rss_offloads;
  }
  // Checksums verified by the device where it offers IPv4, UDP and TCP (as OVS-DPDK asks
  // for them): the trackers then skip their own computation for what it marks good (a
  // NIC's is free; a vhost port's spares the computation for a guest's offloaded
  // checksum; net_tap verifies in software, on a path that costs a syscall anyway).
  if ((dev_info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_CHECKSUM) == RTE_ETH_RX_OFFLOAD_CHECKSUM) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_CHECKSUM;
    p->rx_checksum_ = true;
  }
  if ((rc = rte_eth_dev_configure(id, p->n_rxq_, p->n_txq_, &conf)) != 0)
    return std::unexpected("cannot configure " + devname + ": " + rte_err(rc));
  uint16_t nrx = kRxDesc, ntx = kTxDesc;
  rte_eth_dev_adjust_nb_rx_tx_desc(id, &nrx, &ntx);
  int socket = rte_eth_dev_socket_id(id);
  if (socket < 0) socket = 0;
  for (uint16_t q = 0; q < p->n_rxq_; ++q)
    if ((rc = rte_eth_rx_queue_setup(id, q, nrx, socket, nullptr, pool)) != 0)
      return std::unexpected("cannot set up rx queue " + std::to_string(q) + " of " + devname +
                             ": " + rte_err(rc));
  for (uint16_t q = 0; q < p->n_txq_; ++q)
    if ((rc = rte_eth_tx_queue_setup(id, q, ntx, socket, nullptr)) != 0)
      return std::unexpected("cannot set up tx queue " + std::to_string(q) + " of " + devname +
                             ": " + rte_err(rc));
  if (cfg.mtu != 0 && (rc = rte_eth_dev_set_mtu(id, cfg.mtu)) != 0)
    return std::unexpected("cannot set MTU " + std::to_string(cfg.mtu) + " on " + devname + ": " +
                           rte_err(rc));
  if ((rc = rte_eth_dev_start(id)) != 0)
    return std::unexpected("cannot start " + devname + ": " + rte_err(rc));
  p->started_ = true;
  rte_eth_promiscuous_enable(id);  // a switch port sees every frame; not all PMDs can
  return p;
}

Port::~Port() {
  delete esp_children_.exchange(nullptr);
  if (!opened_) return;
  if (started_) rte_eth_dev_stop(dpdk_id_);
  rte_eth_dev_close(dpdk_id_);
  const std::string devname = cfg_.devargs.substr(0, cfg_.devargs.find(','));
  if (device_ != nullptr) {
    rte_dev_remove(device_);
  } else {
    rte_eal_hotplug_remove("vdev", devname.c_str());
  }
  // DPDK 22.11's net_ring creates 16 rings for a device given by name alone but frees only
  // those of its configured queues when closed: a memzone leak per port that ran a test
  // binary out of memzones (RTE_MAX_MEMZONE) after ~60 rigs. The rest are freed here
  // (only then: with node actions the rings are someone else's).
  if (devname.starts_with("net_ring") && devname == cfg_.devargs) {
    for (unsigned i = 0; i < 16; ++i) {
      const std::string ring = "ETH_RXTX" + std::to_string(i) + "_" + devname;
      if (rte_ring* r = rte_ring_lookup(ring.c_str()); r != nullptr) rte_ring_free(r);
    }
  }
}

void Port::tx(uint16_t user, rte_mbuf** pkts, uint16_t n, Counter& tx_full) {
  uint16_t q = user;
  uint16_t sent;
  if (tx_shared_) {
    q = user % n_txq_;
    rte_spinlock_lock(&tx_locks_[q]);
    sent = rte_eth_tx_burst(dpdk_id_, q, pkts, n);
    rte_spinlock_unlock(&tx_locks_[q]);
  } else {
    sent = rte_eth_tx_burst(dpdk_id_, q, pkts, n);
  }
  if (sent < n) {
    uint16_t lost = n - sent;
    rte_pktmbuf_free_bulk(pkts + sent, lost);
    tx_full.add(lost);
    tx_dropped_.fetch_add(lost, std::memory_order_relaxed);
  }
}

api::PortInfo Port::info() const {
  api::PortInfo pi{};
  pi.port_no = port_no_;
  pi.dpdk_port_id = dpdk_id_;
  api::set_fixed(pi.name, sizeof pi.name, cfg_.name);
  api::set_fixed(pi.devargs, sizeof pi.devargs, cfg_.devargs);
  api::set_fixed(pi.driver, sizeof pi.driver, driver_.substr(0, sizeof pi.driver - 1));
  pi.offloads = rx_checksum_ ? api::kPortRxChecksum : 0;
  if (esp_) {
    // MTU and link follow the underlay (Datapath::port_info fills them in).
    for (uint16_t u = 0; u < n_users_; ++u) {
      pi.stats.rx_packets += vctr_[u].rx_packets.get();
      pi.stats.rx_bytes += vctr_[u].rx_bytes.get();
      pi.stats.tx_packets += vctr_[u].tx_packets.get();
      pi.stats.tx_bytes += vctr_[u].tx_bytes.get();
    }
    return pi;
  }
  rte_ether_addr mac{};
  if (rte_eth_macaddr_get(dpdk_id_, &mac) == 0) std::memcpy(pi.mac, mac.addr_bytes, 6);
  uint16_t mtu = 0;
  if (rte_eth_dev_get_mtu(dpdk_id_, &mtu) == 0) pi.mtu = mtu;
  rte_eth_link link{};
  if (rte_eth_link_get_nowait(dpdk_id_, &link) == 0) {
    pi.link_up = link.link_status ? 1 : 0;
    pi.link_speed_mbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
  }
  pi.n_rxq = n_rxq_;
  pi.n_txq = n_txq_;
  rte_eth_stats st{};
  if (rte_eth_stats_get(dpdk_id_, &st) == 0) {
    pi.stats.rx_packets = st.ipackets;
    pi.stats.rx_bytes = st.ibytes;
    pi.stats.tx_packets = st.opackets;
    pi.stats.tx_bytes = st.obytes;
    pi.stats.rx_dropped = st.imissed + st.rx_nombuf;
    pi.stats.rx_errors = st.ierrors;
    pi.stats.tx_errors = st.oerrors;
  }
  pi.stats.rx_dropped += rx_dropped_.load(std::memory_order_relaxed);
  pi.stats.tx_dropped = tx_dropped_.load(std::memory_order_relaxed);
  return pi;
}

}  // namespace gl::dp
