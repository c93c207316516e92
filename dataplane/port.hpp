// port.hpp — a datapath port: one DPDK ethdev created from devargs.
//
// Purpose: probing a device from its devargs (any PMD: af_packet, tap, pcap, null, ring,
// memif, virtio_user, vhost, PCI), configuring rx/tx queues, starting, reporting, and
// removing it again at runtime. Each PMD thread owns one tx queue of every port; when a
// device has fewer tx queues than users, the queue is shared under a spinlock (the only
// lock a PMD ever takes, and only for such devices — documented in dataplane/DESIGN.md).
// Thread-safety: open/close and info on the control thread; tx()/rx() on the thread
// owning the queue. Complexity: tx/rx are one DPDK burst.
#pragma once

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/api/wire.hpp"
#include "dataplane/counters.hpp"

namespace gl::dp {

inline constexpr uint32_t kMaxPorts = 256;  // datapath port numbers 0..255
inline constexpr uint16_t kRxDesc = 1024;
inline constexpr uint16_t kTxDesc = 1024;

struct PortConfig {
  std::string name;
  std::string devargs;
  uint32_t port_no = api::kPortAny;
  uint16_t n_rxq = 1;
  uint16_t mtu = 0;  // 0 = the device's default
};

class Port {
 public:
  // Probes and starts the device. `n_tx_users` = PMD threads + the control thread.
  static std::expected<std::unique_ptr<Port>, std::string> open(const PortConfig& cfg,
                                                                uint32_t port_no, rte_mempool* pool,
                                                                uint16_t n_tx_users);
  ~Port();  // stops, closes and removes the device
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;

  uint32_t port_no() const { return port_no_; }
  uint16_t dpdk_id() const { return dpdk_id_; }
  const std::string& name() const { return cfg_.name; }
  const std::string& devargs() const { return cfg_.devargs; }
  uint16_t n_rxq() const { return n_rxq_; }
  uint16_t n_txq() const { return n_txq_; }
  // Receiving costs a system call per burst (net_tap): PMDs poll such queues less often.
  bool slow_rx() const { return driver_ == "net_tap"; }

  uint16_t rx(uint16_t q, rte_mbuf** pkts, uint16_t n) {
    return rte_eth_rx_burst(dpdk_id_, q, pkts, n);
  }

  // Sends up to n packets from `user`'s tx queue; frees and counts what the queue refused.
  void tx(uint16_t user, rte_mbuf** pkts, uint16_t n, Counter& tx_full);

  api::PortInfo info() const;
  void count_rx_drop(uint64_t n = 1) { rx_dropped_.fetch_add(n, std::memory_order_relaxed); }

 private:
  Port() = default;
  PortConfig cfg_;
  uint32_t port_no_ = 0;
  uint16_t dpdk_id_ = 0;
  uint16_t n_rxq_ = 1, n_txq_ = 1;
  bool tx_shared_ = false;  // fewer tx queues than users: lock per queue
  bool started_ = false;
  std::string driver_;
  rte_device* device_ = nullptr;
  std::unique_ptr<rte_spinlock_t[]> tx_locks_;
  bool opened_ = false;                  // dpdk_id_ refers to our device
  std::atomic<uint64_t> tx_dropped_{0};  // written by several PMDs (rare path): fetch_add
  std::atomic<uint64_t> rx_dropped_{0};
};

}  // namespace gl::dp
