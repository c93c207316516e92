#include "tools/pktgen/generator.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <cmath>

namespace gl::pktgen {

namespace {

enum ClientState : uint8_t { kCliIdle, kCliSynSent, kCliFinWait };
enum ServerState : uint8_t { kSrvListen, kSrvSynRcvd, kSrvEstablished, kSrvLastAck };

constexpr unsigned kStream = 0;  // the one TX worker's stream id

uint32_t mix32(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return static_cast<uint32_t>(x ^ (x >> 31));
}

template <typename T>
void relaxed_set(std::atomic<T>& a, T v) {
  a.store(v, std::memory_order_relaxed);
}

}  // namespace

Generator::Generator(const Options& o, const FlowSet& flows, const FrameWriter& writer,
                     const PortSetup& ports, const std::atomic<int>& stop, uint16_t run_id)
    : o_(o),
      flows_(flows),
      writer_(writer),
      ports_(ports),
      stop_(stop),
      run_id_(run_id),
      hz_(rte_get_tsc_hz()),
      ns_per_tsc_(1e9 / static_cast<double>(rte_get_tsc_hz())) {
  if (o_.proto == Proto::kTcp) {
    conns_.resize(flows_.size());
    active_.resize(std::bit_ceil(flows_.size() * 2));
    timeout_tsc_ = static_cast<uint64_t>(o_.tcp_timeout * static_cast<double>(hz_));
  }
  out_tx_.port = ports_.tx_port;
  out_rx_.port = ports_.rx_port;
}

void Generator::run(const std::function<void()>& tick) {
  epoch_ = rte_rdtsc();
  if (o_.proto == Proto::kTcp) {
    run_tcp(tick);
  } else {
    run_datagrams(tick);
  }
  res_.elapsed_s = static_cast<double>(rte_rdtsc() - epoch_) / static_cast<double>(hz_);
  publish();
}

// How many packets (TCP: connections) may go now: the rate's allowance, at most a burst.
unsigned Generator::budget(uint64_t now, uint64_t done) const {
  if (o_.rate <= 0) return kBurst;
  const double allowed =
      std::floor(static_cast<double>(now - epoch_) * o_.rate / static_cast<double>(hz_)) + 1;
  const double left = allowed - static_cast<double>(done);
  if (left <= 0) return 0;
  return left >= kBurst ? kBurst : static_cast<unsigned>(left);
}

void Generator::publish() {
  relaxed_set(live_.tx_pkts, res_.tx_pkts);
  relaxed_set(live_.tx_bytes, res_.tx_bytes);
  relaxed_set(live_.rx_pkts, res_.rx_pkts);
  relaxed_set(live_.rx_bytes, res_.rx_bytes);
  // Live loss: sequence numbers missing below the highest one seen (in-flight packets
  // are not counted; late ones are until they arrive).
  const SeqTracker& s = seq_[kStream];
  const uint64_t below_top = s.any() ? s.top() + 1 : 0;
  relaxed_set(live_.lost, below_top > s.unique() ? below_top - s.unique() : 0);
  relaxed_set(live_.conn_opened, res_.conn_attempted);
  relaxed_set(live_.conn_established, res_.conn_established);
  relaxed_set(live_.conn_closed, res_.conn_closed);
  relaxed_set(live_.conn_failed, res_.conn_failed + res_.conn_reset);
}

// ---- UDP / ICMP ------------------------------------------------------------------

// Chooses sequence numbers, flows and sizes for up to `want` packets, applying the
// injected faults. Returns the number of plan entries.
unsigned Generator::plan_burst(unsigned want) {
  unsigned n = 0;
  const uint64_t limit = o_.count ? o_.count : UINT64_MAX;
  const auto next_shape = [&](Plan& p) {
    p.flow = static_cast<uint32_t>(flow_next_);
    if (++flow_next_ == flows_.size()) flow_next_ = 0;
    p.len = static_cast<uint16_t>(o_.sizes[size_next_] - kFcs);
    if (++size_next_ == o_.sizes.size()) size_next_ = 0;
  };
  while (n < want && seq_next_ < limit) {
    const uint64_t s = seq_next_++;
    if (o_.inject_drop && (s + 1) % o_.inject_drop == 0) {
      ++res_.inj_drop;
      continue;
    }
    Plan& p = plan_[n++];
    p.seq = s;
    p.copy = false;
    next_shape(p);
    if (o_.inject_dup && (s + 1) % o_.inject_dup == 0) {
      plan_[n] = p;
      plan_[n++].copy = true;
      ++res_.inj_dup;
    }
    // Keep a pair that will be swapped inside one burst.
    if (n == want && o_.inject_reorder && s % 2 == 0 && (s / 2 + 1) % o_.inject_reorder == 0 &&
        s + 1 < limit) {
      ++want;
    }
  }
  if (o_.inject_reorder) {
    for (unsigned i = 0; i + 1 < n; ++i) {
      const uint64_t s = plan_[i].seq;
      // (Not the copy of a duplicated packet: its original already went first.)
      if (s % 2 == 0 && !plan_[i].copy && plan_[i + 1].seq == s + 1 &&
          (s / 2 + 1) % o_.inject_reorder == 0) {
        std::swap(plan_[i], plan_[i + 1]);
        ++res_.inj_reorder;
        ++i;
      }
    }
  }
  return n;
}

void Generator::build_burst(uint64_t now) {
  if (rte_pktmbuf_alloc_bulk(ports_.tx_pool, pend_, plan_n_) != 0) return;  // retry later
  const uint32_t ts = now_ns32(now);
  for (unsigned i = 0; i < plan_n_; ++i) {
    const Plan& p = plan_[i];
    rte_mbuf* m = pend_[i];
    Signature sig{kMagic, run_id_, static_cast<uint16_t>(kStream), static_cast<uint32_t>(p.seq),
                  ts};
    writer_.write_datagram(rte_pktmbuf_mtod(m, uint8_t*), o_.proto, p.len, flows_[p.flow], sig);
    m->data_len = p.len;
    m->pkt_len = p.len;
    pend_len_[i] = p.len;
    pend_copy_[i] = p.copy;
  }
  built_ += plan_n_;
  pend_off_ = 0;
  pend_n_ = plan_n_;
  plan_n_ = 0;
}

void Generator::send_pending() {
  const unsigned left = pend_n_ - pend_off_;
  const uint16_t nb = rte_eth_tx_burst(ports_.tx_port, 0, pend_ + pend_off_, left);
  for (unsigned i = pend_off_; i < pend_off_ + nb; ++i) {
    res_.tx_bytes += pend_len_[i] + kFcs;
    distinct_sent_ += pend_copy_[i] ? 0 : 1;
  }
  res_.tx_pkts += nb;
  pend_off_ += nb;
  if (nb < left) ++res_.tx_full;
  if (pend_off_ == pend_n_) pend_off_ = pend_n_ = 0;
}

void Generator::rx_datagrams(uint16_t port) {
  rte_mbuf* pkts[kBurst];
  const uint16_t nb = rte_eth_rx_burst(port, 0, pkts, kBurst);
  if (nb == 0) return;
  const uint32_t rx_ns = now_ns32(rte_rdtsc());
  const uint8_t want_proto = o_.proto == Proto::kIcmp ? kProtoIcmp : kProtoUdp;
  for (uint16_t i = 0; i < nb; ++i) {
    if (i + 1 < nb) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
    const rte_mbuf* m = pkts[i];
    const Parsed pr = parse_frame(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len);
    Signature sig;
    if (!pr.ok || pr.proto != want_proto || pr.l4_avail < kL4Hdr + sizeof sig) {
      ++res_.rx_other;
      continue;
    }
    std::memcpy(&sig, pr.l4 + kL4Hdr, sizeof sig);
    if (sig.magic != kMagic || sig.run != run_id_ || sig.stream >= kMaxStreams) {
      ++res_.rx_other;
      continue;
    }
    ++res_.rx_pkts;
    res_.rx_bytes += m->pkt_len + kFcs;
    seq_[sig.stream].on_seq(sig.seq);
    const uint32_t lat = rx_ns - sig.tx_ns;
    if (lat < 0x80000000u) res_.latency.add(lat);
  }
  rte_pktmbuf_free_bulk(pkts, nb);
}

void Generator::run_datagrams(const std::function<void()>& tick) {
  const uint64_t end_tsc =
      o_.duration > 0 ? epoch_ + static_cast<uint64_t>(o_.duration * static_cast<double>(hz_))
                      : UINT64_MAX;
  const uint64_t drain_tsc = static_cast<uint64_t>(o_.drain * static_cast<double>(hz_));
  const uint64_t idle_tsc = hz_ / 10;
  const bool same = ports_.has_rx && ports_.rx_port == ports_.tx_port;
  uint64_t next_tick = epoch_ + hz_;
  uint64_t tx_end = 0;
  uint64_t last_rx = epoch_;
  uint64_t no_more = 0;  // when the profile ran out (or stop was asked)
  bool sending = true;
  for (;;) {
    const uint64_t now = rte_rdtsc();
    const int stop = stop_.load(std::memory_order_relaxed);
    if (stop >= 2) break;
    if (sending) {
      const bool more = stop == 0 && now < end_tsc && (o_.count == 0 || seq_next_ < o_.count);
      if (!more && no_more == 0) no_more = now;
      if (pend_n_ == 0 && plan_n_ == 0 && more) {
        const unsigned want = budget(now, built_);
        if (want) plan_n_ = plan_burst(want);
      }
      if (pend_n_ == 0 && plan_n_ > 0) build_burst(now);
      if (pend_n_ > 0) send_pending();
      // Done when everything built went out, or the port refused it for too long.
      if (!more && ((pend_n_ == 0 && plan_n_ == 0) || now - no_more >= drain_tsc)) {
        sending = false;
        tx_end = now;
        res_.tx_s = static_cast<double>(now - epoch_) / static_cast<double>(hz_);
        relaxed_set(live_.tx_done, true);
      }
    }
    if (ports_.has_rx) {
      const uint64_t before = res_.rx_pkts + res_.rx_other;
      rx_datagrams(ports_.rx_port);
      if (res_.rx_pkts + res_.rx_other != before) last_rx = now;
    }
    if (!same) {
      // Keep loopback devices (net_ring) from filling up: whatever comes back on the
      // tx port is counted and dropped.
      rte_mbuf* pkts[kBurst];
      const uint16_t nb = rte_eth_rx_burst(ports_.tx_port, 0, pkts, kBurst);
      res_.rx_on_tx += nb;
      if (nb) rte_pktmbuf_free_bulk(pkts, nb);
    }
    if (!sending) {
      if (!ports_.has_rx) break;
      if (res_.rx_pkts >= res_.tx_pkts) break;
      if (now - tx_end >= drain_tsc) break;
      if (now - tx_end >= idle_tsc && now - last_rx >= idle_tsc) break;
    }
    publish();
    if (now >= next_tick) {
      if (tick) tick();
      next_tick += hz_;
    }
  }
  plan_n_ = 0;
  // Packets the port never took.
  if (pend_n_ > pend_off_) {
    res_.tx_abandoned = pend_n_ - pend_off_;
    rte_pktmbuf_free_bulk(pend_ + pend_off_, pend_n_ - pend_off_);
    pend_n_ = pend_off_ = 0;
  }
  if (res_.tx_s == 0) {
    res_.tx_s = static_cast<double>(rte_rdtsc() - epoch_) / static_cast<double>(hz_);
  }
  const SeqTracker& s = seq_[kStream];
  res_.seq_used = distinct_sent_ + res_.inj_drop;
  res_.rx_unique = s.unique();
  res_.duplicates = s.duplicates();
  res_.reordered = s.late();
  res_.too_old = s.too_old();
  res_.lost = ports_.has_rx && res_.seq_used > s.unique() ? res_.seq_used - s.unique() : 0;
}

// ---- TCP -------------------------------------------------------------------------

void Generator::flush(OutQueue& q) {
  if (q.n == 0) return;
  const uint16_t nb = rte_eth_tx_burst(q.port, 0, q.m, static_cast<uint16_t>(q.n));
  for (uint16_t i = 0; i < nb; ++i) res_.tx_bytes += kMinFrameData + kFcs;
  res_.tx_pkts += nb;
  if (nb < q.n) {
    ++res_.tx_full;
    std::memmove(q.m, q.m + nb, (q.n - nb) * sizeof(rte_mbuf*));
  }
  q.n -= nb;
}

void Generator::emit(OutQueue& q, bool reverse, uint64_t f, uint8_t flags, uint32_t seq,
                     uint32_t ack) {
  if (q.n == std::size(q.m)) flush(q);
  rte_mbuf* m = q.n < std::size(q.m) ? rte_pktmbuf_alloc(ports_.tx_pool) : nullptr;
  if (m == nullptr) {
    ++res_.tx_dropped;
    return;
  }
  const uint16_t len =
      writer_.write_tcp(rte_pktmbuf_mtod(m, uint8_t*), reverse, flows_[f], flags, seq, ack);
  m->data_len = len;
  m->pkt_len = len;
  q.m[q.n++] = m;
}

void Generator::tcp_open(uint64_t now, unsigned want) {
  const uint64_t mask = active_.size() - 1;
  while (want-- > 0) {
    const uint64_t f = flow_next_;
    Conn& c = conns_[f];
    // Flows are used round robin: a busy next flow means the oldest connection is
    // still open; wait for it (or its timeout).
    if (c.cli != kCliIdle || active_tail_ - active_head_ > mask ||
        open_now_ >= o_.tcp_concurrency) {
      break;
    }
    ++open_now_;
    ++c.gen;
    c.cli = kCliSynSent;
    c.cli_isn = mix32((f << 32) ^ c.gen ^ (uint64_t{run_id_} << 52));
    c.start_tsc = now;
    active_[active_tail_++ & mask] = (f << 32) | c.gen;
    if (++flow_next_ == flows_.size()) flow_next_ = 0;
    ++res_.conn_attempted;
    emit(out_tx_, false, f, kTcpSyn, c.cli_isn, 0);
    if (o_.count && res_.conn_attempted >= o_.count) break;
  }
}

// A segment from the server to the client of flow f.
void Generator::tcp_client(uint64_t f, const uint8_t* t, uint8_t flags, uint64_t now, OutQueue& q) {
  Conn& c = conns_[f];
  const uint32_t seq = flow::load_be32(t + 4);
  const uint32_t ack = flow::load_be32(t + 8);
  if (flags & kTcpRst) {
    if (c.cli != kCliIdle) {
      ++res_.conn_reset;
      c.cli = kCliIdle;
      --open_now_;
    } else {
      ++res_.tcp_unexpected;
    }
    return;
  }
  if ((flags & (kTcpSyn | kTcpAck)) == (kTcpSyn | kTcpAck) && c.cli == kCliSynSent &&
      ack == c.cli_isn + 1) {
    c.srv_isn = seq;
    ++res_.conn_established;
    res_.connect_latency.add(
        static_cast<uint64_t>(static_cast<double>(now - c.start_tsc) * ns_per_tsc_));
    // Complete the handshake and start the teardown at once.
    emit(q, false, f, kTcpAck, c.cli_isn + 1, seq + 1);
    emit(q, false, f, kTcpFin | kTcpAck, c.cli_isn + 1, seq + 1);
    c.cli = kCliFinWait;
    return;
  }
  if ((flags & (kTcpFin | kTcpAck)) == (kTcpFin | kTcpAck) && !(flags & kTcpSyn) &&
      c.cli == kCliFinWait && ack == c.cli_isn + 2 && seq == c.srv_isn + 1) {
    emit(q, false, f, kTcpAck, c.cli_isn + 2, seq + 1);
    c.cli = kCliIdle;
    --open_now_;
    ++res_.conn_closed;
    return;
  }
  ++res_.tcp_unexpected;
}

// A segment from the client to the server of flow f.
void Generator::tcp_server(uint64_t f, const uint8_t* t, uint8_t flags, OutQueue& q) {
  Conn& c = conns_[f];
  const uint32_t seq = flow::load_be32(t + 4);
  const uint32_t ack = flow::load_be32(t + 8);
  if (flags & kTcpRst) {
    c.srv = kSrvListen;
    return;
  }
  if ((flags & (kTcpSyn | kTcpAck)) == kTcpSyn) {
    c.srv_peer_isn = seq;
    c.srv_isn = mix32((f << 32) ^ seq ^ 0x5bd1e995u);
    c.srv = kSrvSynRcvd;
    emit(q, true, f, kTcpSyn | kTcpAck, c.srv_isn, seq + 1);
    return;
  }
  if (!(flags & kTcpAck) || (flags & kTcpSyn)) {
    ++res_.tcp_unexpected;
    return;
  }
  if (c.srv == kSrvSynRcvd && ack == c.srv_isn + 1 && seq == c.srv_peer_isn + 1) {
    c.srv = kSrvEstablished;
    ++res_.srv_established;
  }
  if (flags & kTcpFin) {
    if (c.srv == kSrvEstablished && seq == c.srv_peer_isn + 1) {
      emit(q, true, f, kTcpFin | kTcpAck, c.srv_isn + 1, seq + 1);
      c.srv = kSrvLastAck;
    } else {
      ++res_.tcp_unexpected;
    }
    return;
  }
  if (c.srv == kSrvLastAck && ack == c.srv_isn + 2) {
    c.srv = kSrvListen;
    ++res_.srv_closed;
    return;
  }
  if (c.srv != kSrvEstablished) ++res_.tcp_unexpected;
}

void Generator::tcp_rx(uint16_t port, bool to_client, bool to_server, uint64_t now) {
  rte_mbuf* pkts[kBurst];
  const uint16_t nb = rte_eth_rx_burst(port, 0, pkts, kBurst);
  for (uint16_t i = 0; i < nb; ++i) {
    const rte_mbuf* m = pkts[i];
    const Parsed pr = parse_frame(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len);
    if (!pr.ok || pr.proto != kProtoTcp || pr.l4_avail < kTcpHdr) {
      ++res_.rx_other;
      continue;
    }
    uint32_t sip, dip;
    uint16_t sp, dp;
    std::memcpy(&sip, pr.ip + 12, 4);
    std::memcpy(&dip, pr.ip + 16, 4);
    std::memcpy(&sp, pr.l4, 2);
    std::memcpy(&dp, pr.l4 + 2, 2);
    const uint8_t flags = pr.l4[13];
    // The reply goes out of the port it came in on.
    OutQueue& q = port == ports_.tx_port ? out_tx_ : out_rx_;
    std::optional<uint64_t> f;
    if (to_client && (f = flows_.index(dip, sip, dp, sp))) {
      ++res_.rx_pkts;
      res_.rx_bytes += m->pkt_len + kFcs;
      tcp_client(*f, pr.l4, flags, now, q);
    } else if (to_server && (f = flows_.index(sip, dip, sp, dp))) {
      ++res_.rx_pkts;
      res_.rx_bytes += m->pkt_len + kFcs;
      tcp_server(*f, pr.l4, flags, q);
    } else {
      ++res_.rx_other;
    }
  }
  if (nb) rte_pktmbuf_free_bulk(pkts, nb);
}

void Generator::tcp_expire(uint64_t now) {
  const uint64_t mask = active_.size() - 1;
  while (active_head_ != active_tail_) {
    const uint64_t e = active_[active_head_ & mask];
    Conn& c = conns_[e >> 32];
    if (c.gen != static_cast<uint32_t>(e) || c.cli == kCliIdle) {
      ++active_head_;
      continue;
    }
    if (now - c.start_tsc < timeout_tsc_) break;
    c.cli = kCliIdle;
    --open_now_;
    ++res_.conn_failed;
    ++active_head_;
  }
}

void Generator::run_tcp(const std::function<void()>& tick) {
  const uint64_t end_tsc =
      o_.duration > 0 ? epoch_ + static_cast<uint64_t>(o_.duration * static_cast<double>(hz_))
                      : UINT64_MAX;
  const uint64_t drain_tsc = static_cast<uint64_t>(o_.drain * static_cast<double>(hz_));
  const uint64_t idle_tsc = hz_ / 10;
  const bool same = ports_.rx_port == ports_.tx_port;
  uint64_t next_tick = epoch_ + hz_;
  uint64_t open_end = 0;
  uint64_t last_rx = epoch_;
  bool opening = true;
  for (;;) {
    const uint64_t now = rte_rdtsc();
    const int stop = stop_.load(std::memory_order_relaxed);
    if (stop >= 2) break;
    if (opening) {
      const bool more =
          stop == 0 && now < end_tsc && (o_.count == 0 || res_.conn_attempted < o_.count);
      if (more) {
        const unsigned want = budget(now, res_.conn_attempted);
        if (want) tcp_open(now, want);
      } else {
        opening = false;
        open_end = now;
        res_.tx_s = static_cast<double>(now - epoch_) / static_cast<double>(hz_);
        relaxed_set(live_.tx_done, true);
      }
    }
    const uint64_t before = res_.rx_pkts + res_.rx_other;
    if (same) {
      tcp_rx(ports_.tx_port, true, true, now);
    } else {
      tcp_rx(ports_.tx_port, true, false, now);
      tcp_rx(ports_.rx_port, false, true, now);
    }
    if (res_.rx_pkts + res_.rx_other != before) last_rx = now;
    flush(out_tx_);
    if (!same) flush(out_rx_);
    tcp_expire(now);
    if (!opening && active_head_ == active_tail_) {
      // Every client side is done; let the servers see the last ACKs.
      if (out_tx_.n == 0 && out_rx_.n == 0 &&
          (res_.srv_closed >= res_.conn_closed || now - last_rx >= idle_tsc ||
           now - open_end >= drain_tsc + timeout_tsc_)) {
        break;
      }
    }
    if (!opening && now - open_end >= drain_tsc + timeout_tsc_ + hz_) break;  // port stuck
    publish();
    if (now >= next_tick) {
      if (tick) tick();
      next_tick += hz_;
    }
  }
  rte_pktmbuf_free_bulk(out_tx_.m, out_tx_.n);
  rte_pktmbuf_free_bulk(out_rx_.m, out_rx_.n);
  res_.tx_abandoned = out_tx_.n + out_rx_.n;
  out_tx_.n = out_rx_.n = 0;
  if (res_.tx_s == 0) {
    res_.tx_s = static_cast<double>(rte_rdtsc() - epoch_) / static_cast<double>(hz_);
  }
}

}  // namespace gl::pktgen
