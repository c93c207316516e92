// port.hpp — a datapath port: one DPDK ethdev created from devargs, or an ESP port.
//
// Purpose: probing a device from its devargs (any PMD: af_packet, tap, pcap, null, ring,
// memif, virtio_user, vhost, PCI), configuring rx/tx queues, starting, reporting, and
// removing it again at runtime. Each PMD thread owns one tx queue of every port; when a
// device has fewer tx queues than users, the queue is shared under a spinlock (the only
// lock a PMD ever takes, and only for such devices — documented in dataplane/DESIGN.md).
// An ESP port ("gl_esp,underlay=NAME,group=N,local=IP,remote=IP") has no device: what is
// output to it is encrypted with its group's outbound SA and sent out of the underlay
// port; ESP packets that arrive on the underlay from `remote` to `local` are decrypted and
// enter the pipeline on it (dataplane/DESIGN.md, "ESP ports").
// Thread-safety: open/close and info on the control thread; tx()/rx() on the thread
// owning the queue; the ESP children of an underlay are an RCU-published list.
// Complexity: tx/rx are one DPDK burst; esp_port_for is linear in the ESP ports of the
// underlay (a handful).
#pragma once

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crypto/sa.hpp"
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

// What "gl_esp,..." devargs say (parse_esp_devargs checks every field).
struct EspPortArgs {
  std::string underlay;                     // name or number of the underlay port
  uint32_t group = 0;                       // outbound SA group (>= 1)
  uint8_t family = 4;                       // 4 or 6
  uint8_t local[16] = {}, remote[16] = {};  // IPv4 in the first 4 bytes, network order
};
inline constexpr const char* kEspDriver = "gl_esp";
bool is_esp_devargs(const std::string& devargs);
std::expected<EspPortArgs, std::string> parse_esp_devargs(const std::string& devargs);

// A net_tap port's kernel interface (its iface= argument) when one of that name exists
// already and net_tap cannot take it: anything but a multi-queue tap (net_tap opens its
// queues with IFF_MULTI_QUEUE, and the kernel refuses that on another kind of interface
// with EINVAL, which DPDK passes on as "cannot create device"). The reason, naming the
// interface, or nothing when the port may be created.
std::optional<std::string> tap_name_conflict(const std::string& devargs);

// The ESP ports riding on an underlay port: immutable once published.
struct EspChild {
  uint32_t port_no;
  uint8_t family;
  uint8_t local[16], remote[16];
};
struct EspChildren {
  std::vector<EspChild> v;
};

class Port {
 public:
  // Probes and starts the device. `n_tx_users` = PMD threads + the control thread.
  static std::expected<std::unique_ptr<Port>, std::string> open(const PortConfig& cfg,
                                                                uint32_t port_no, rte_mempool* pool,
                                                                uint16_t n_tx_users);
  // An ESP port over `underlay_no` (api::kPortAny: not there yet). `n_users` as for open.
  static std::unique_ptr<Port> open_esp(const PortConfig& cfg, uint32_t port_no,
                                        const EspPortArgs& args, uint32_t underlay_no,
                                        uint16_t n_users);
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

  // ---- ESP ports ----
  bool is_esp() const { return esp_; }
  // The underlay's port number; api::kPortAny while the underlay does not exist (an ESP
  // port may be added before it, and outlives its removal: it waits for it).
  uint32_t esp_underlay() const { return esp_underlay_.load(std::memory_order_acquire); }
  void set_esp_underlay(uint32_t no) { esp_underlay_.store(no, std::memory_order_release); }
  uint32_t esp_group() const { return esp_args_.group; }
  const EspPortArgs& esp_args() const { return esp_args_; }
  // Per-context counters of an ESP port (single writer each).
  void count_rx(uint16_t user, uint64_t bytes) {
    vctr_[user].rx_packets.add();
    vctr_[user].rx_bytes.add(bytes);
  }
  void count_tx(uint16_t user, uint64_t n, uint64_t bytes) {
    vctr_[user].tx_packets.add(n);
    vctr_[user].tx_bytes.add(bytes);
  }

  // ---- underlay side ----
  // The ESP port for an ESP packet from `src` to `dst` arriving here; kPortAny if none.
  uint32_t esp_port_for(uint8_t family, const uint8_t* src, const uint8_t* dst) const {
    const EspChildren* c = esp_children_.load(std::memory_order_acquire);
    if (c == nullptr) return api::kPortAny;
    const size_t n = family == 4 ? 4 : 16;
    for (const EspChild& e : c->v)
      if (e.family == family && std::memcmp(e.local, dst, n) == 0 &&
          std::memcmp(e.remote, src, n) == 0)
        return e.port_no;
    return api::kPortAny;
  }
  // Whether an SA's tunnel addresses are this ESP port's (remote = its remote, local =
  // its local): only such an SA's packets may enter on it.
  bool esp_peer_is(const crypto::SaConfig& c) const {
    const size_t n = esp_args_.family == 4 ? 4 : 16;
    return c.local.v6 == (esp_args_.family == 6) && c.remote.v6 == c.local.v6 &&
           std::memcmp(c.local.bytes.data(), esp_args_.local, n) == 0 &&
           std::memcmp(c.remote.bytes.data(), esp_args_.remote, n) == 0;
  }
  bool has_esp_children() const { return esp_children_.load(std::memory_order_relaxed) != nullptr; }
  // Control thread: publishes a new list (nullptr = none); returns the old one to free
  // after a grace period.
  const EspChildren* set_esp_children(const EspChildren* c) {
    return esp_children_.exchange(c, std::memory_order_acq_rel);
  }
  const EspChildren* esp_children() const { return esp_children_.load(std::memory_order_acquire); }

 private:
  Port() = default;
  PortConfig cfg_;
  uint32_t port_no_ = 0;
  uint16_t dpdk_id_ = 0;
  uint16_t n_rxq_ = 1, n_txq_ = 1;
  bool tx_shared_ = false;  // fewer tx queues than users: lock per queue
  bool started_ = false;
  bool rx_checksum_ = false;  // the device verifies IPv4/UDP/TCP checksums (RX offload)
  std::string driver_;
  rte_device* device_ = nullptr;
  std::unique_ptr<rte_spinlock_t[]> tx_locks_;
  bool opened_ = false;                  // dpdk_id_ refers to our device
  std::atomic<uint64_t> tx_dropped_{0};  // written by several PMDs (rare path): fetch_add
  std::atomic<uint64_t> rx_dropped_{0};
  // ESP ports.
  struct alignas(64) VirtCounters {
    Counter rx_packets, rx_bytes, tx_packets, tx_bytes;
  };
  bool esp_ = false;
  std::atomic<uint32_t> esp_underlay_{api::kPortAny};
  EspPortArgs esp_args_;
  std::unique_ptr<VirtCounters[]> vctr_;
  uint16_t n_users_ = 0;
  // Underlays.
  std::atomic<const EspChildren*> esp_children_{nullptr};
};

}  // namespace gl::dp
