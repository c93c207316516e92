// generator.hpp — gl-pktgen's worker: the TX/RX loop on one lcore.
//
// Purpose: sends UDP/ICMP datagrams with a signature (rate, count or duration, fault
// injection) and accounts for what comes back (loss, duplicates, reordering, latency),
// or plays both ends of TCP connections (client on the tx port, server on the rx port:
// handshake, FIN teardown, set-up latency, timeouts).
// Fast path: bursts of 32, mbufs from a pool whose data rooms were zeroed once, a
// prebuilt L2 template, per-flow tuples computed at start-up; no allocation besides mbuf
// allocation, no syscall, no lock. Counters live in the worker; the display reads
// relaxed atomic copies published once per loop iteration.
// Thread-safety: run() on exactly one lcore; live() may be read from any thread;
// results() after run() returned (rte_eal_wait_lcore orders it).
#pragma once

#include <rte_mbuf.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "tools/pktgen/frame.hpp"
#include "tools/pktgen/options.hpp"
#include "tools/pktgen/stats.hpp"

namespace gl::pktgen {

inline constexpr unsigned kBurst = 32;
inline constexpr unsigned kMaxStreams = 4;  // one per TX worker; one worker today

// Published by the worker, read by the display.
struct alignas(64) LiveCounters {
  std::atomic<uint64_t> tx_pkts{0};
  std::atomic<uint64_t> tx_bytes{0};
  std::atomic<uint64_t> rx_pkts{0};  // ours (matching signature / TCP segments)
  std::atomic<uint64_t> rx_bytes{0};
  std::atomic<uint64_t> lost{0};  // sequence gaps below the highest seen
  std::atomic<uint64_t> conn_opened{0};
  std::atomic<uint64_t> conn_established{0};
  std::atomic<uint64_t> conn_closed{0};
  std::atomic<uint64_t> conn_failed{0};
  std::atomic<bool> tx_done{false};
};

struct Results {
  double elapsed_s = 0;  // first TX to end of drain
  double tx_s = 0;       // first to last TX
  uint64_t tx_pkts = 0;
  uint64_t tx_bytes = 0;      // frame bytes including FCS
  uint64_t tx_full = 0;       // bursts the port did not take completely (back-pressure)
  uint64_t tx_abandoned = 0;  // built but never taken by the port (at the end)
  uint64_t seq_used = 0;      // sequence numbers consumed (sent + injected drops)
  uint64_t inj_drop = 0;
  uint64_t inj_reorder = 0;
  uint64_t inj_dup = 0;

  uint64_t rx_pkts = 0;  // ours
  uint64_t rx_bytes = 0;
  uint64_t rx_other = 0;  // received but not ours (other traffic, other runs)
  uint64_t rx_on_tx = 0;  // udp/icmp: received on the tx port (discarded)
  uint64_t rx_unique = 0;
  uint64_t lost = 0;
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  uint64_t too_old = 0;  // arrived more than SeqTracker::kWindow behind
  LatencyHistogram latency;

  // TCP
  uint64_t conn_attempted = 0;
  uint64_t conn_established = 0;     // client got a valid SYN-ACK and completed the handshake
  uint64_t conn_closed = 0;          // client completed the FIN exchange
  uint64_t conn_failed = 0;          // timed out
  uint64_t conn_reset = 0;           // client got a RST
  uint64_t srv_established = 0;      // server got the handshake's last ACK
  uint64_t srv_closed = 0;           // server got the last ACK of the teardown
  uint64_t tcp_unexpected = 0;       // segments of our flows that fit no state
  uint64_t tx_dropped = 0;           // tcp: segments dropped because the port was full
  LatencyHistogram connect_latency;  // SYN sent → SYN-ACK received
};

struct PortSetup {
  uint16_t tx_port = 0;
  uint16_t rx_port = 0;
  bool has_rx = false;
  rte_mempool* tx_pool = nullptr;
};

class Generator {
 public:
  // `stop`: 0 run, 1 stop sending and drain, 2 stop now.
  Generator(const Options& o, const FlowSet& flows, const FrameWriter& writer,
            const PortSetup& ports, const std::atomic<int>& stop, uint16_t run_id);

  // The worker loop. `tick` (may be empty) is called about once a second from the loop,
  // for the display when the worker runs on the main lcore.
  void run(const std::function<void()>& tick);

  LiveCounters& live() { return live_; }
  const Results& results() const { return res_; }

 private:
  struct Plan {
    uint64_t seq;
    uint32_t flow;
    uint16_t len;  // frame bytes without FCS
    bool copy;     // injected duplicate of the previous entry
  };
  struct Conn {
    uint64_t start_tsc = 0;
    uint32_t cli_isn = 0;
    uint32_t srv_isn = 0;
    uint32_t srv_peer_isn = 0;  // the client's ISN as the server saw it
    uint32_t gen = 0;
    uint8_t cli = 0;
    uint8_t srv = 0;
  };
  struct OutQueue {
    uint16_t port = 0;
    unsigned n = 0;
    rte_mbuf* m[4 * kBurst];
  };

  void run_datagrams(const std::function<void()>& tick);
  void run_tcp(const std::function<void()>& tick);
  unsigned budget(uint64_t now, uint64_t done) const;
  unsigned plan_burst(unsigned budget);
  void build_burst(uint64_t now);
  void send_pending();
  void rx_datagrams(uint16_t port);
  void tcp_open(uint64_t now, unsigned budget);
  void tcp_rx(uint16_t port, bool to_client, bool to_server, uint64_t now);
  void tcp_client(uint64_t f, const uint8_t* t, uint8_t flags, uint64_t now, OutQueue& q);
  void tcp_server(uint64_t f, const uint8_t* t, uint8_t flags, OutQueue& q);
  void tcp_expire(uint64_t now);
  void emit(OutQueue& q, bool reverse, uint64_t f, uint8_t flags, uint32_t seq, uint32_t ack);
  void flush(OutQueue& q);
  void publish();
  uint32_t now_ns32(uint64_t tsc) const {
    return static_cast<uint32_t>(static_cast<uint64_t>((tsc - epoch_) * ns_per_tsc_));
  }

  const Options& o_;
  const FlowSet& flows_;
  const FrameWriter& writer_;
  PortSetup ports_;
  const std::atomic<int>& stop_;
  uint16_t run_id_;
  uint64_t hz_;
  double ns_per_tsc_;
  uint64_t epoch_ = 0;

  // datagram TX state
  uint64_t seq_next_ = 0;
  uint64_t flow_next_ = 0;
  uint64_t size_next_ = 0;
  uint64_t built_ = 0;  // packets built (rate accounting)
  uint64_t distinct_sent_ = 0;
  Plan plan_[2 * kBurst + 2];
  unsigned plan_n_ = 0;
  rte_mbuf* pend_[2 * kBurst + 2];
  uint16_t pend_len_[2 * kBurst + 2];
  bool pend_copy_[2 * kBurst + 2];
  unsigned pend_off_ = 0;
  unsigned pend_n_ = 0;
  SeqTracker seq_[kMaxStreams];

  // TCP state
  std::vector<Conn> conns_;
  std::vector<uint64_t> active_;  // (flow << 32 | gen), FIFO in open order
  uint64_t active_head_ = 0;
  uint64_t active_tail_ = 0;
  uint64_t timeout_tsc_ = 0;
  uint64_t open_now_ = 0;  // client connections between SYN and close/failure
  OutQueue out_tx_;
  OutQueue out_rx_;

  Results res_;
  LiveCounters live_;
};

}  // namespace gl::pktgen
