#include "dataplane/port.hpp"

#include <rte_bus.h>
#include <rte_dev.h>

#include <algorithm>
#include <cstring>

namespace gl::dp {

namespace {

std::string rte_err(int rc) {
  return rte_strerror(rc < 0 ? -rc : rc);
}

}  // namespace

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
  if (!opened_) return;
  if (started_) rte_eth_dev_stop(dpdk_id_);
  rte_eth_dev_close(dpdk_id_);
  if (device_ != nullptr) {
    rte_dev_remove(device_);
  } else {
    std::string devname = cfg_.devargs.substr(0, cfg_.devargs.find(','));
    rte_eal_hotplug_remove("vdev", devname.c_str());
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
