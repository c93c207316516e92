#include "dataplane/pmd.hpp"

#include <linux/openvswitch.h>
#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_prefetch.h>

#include <cstring>

#include "crypto/esp.hpp"
#include "dataplane/api/odp_actions.hpp"
#include "dataplane/pmd_internal.hpp"

namespace gl::dp {

using detail::after_first;
using detail::kIpProtoEsp;
using detail::kRecircZero;

Pmd::Pmd(Datapath& dp, unsigned lcore, uint16_t index, bool is_control)
    : dp_(dp), lcore_(lcore), index_(index), is_control_(is_control) {
  emc_ = std::make_unique<flow::Emc>();
  emc_->set_insert_inverse_prob(is_control ? 0 : dp.options().emc_insert_inv_prob);
  emc_prob_req_.store(emc_->insert_inverse_prob(), std::memory_order_relaxed);
  rng_ ^= (uint64_t(lcore) + 1) * 0xbf58476d1ce4e5b9ULL;
  recent_ = std::make_unique<RecentMisses[]>(kRecentSets);
  set_upcall_rate(dp.options().upcall_rate);
}

Pmd::~Pmd() {
  stop();
  if (upcall_full_ != nullptr) {
    UpcallSlot* s;
    while (upcall_full_->pop(s)) rte_pktmbuf_free(s->mbuf);
  }
  if (handoff_ != nullptr) {
    EspHandoff h;
    while (handoff_->pop(h)) rte_pktmbuf_free(h.m);
  }
  delete rx_cfg_.load();
  if (is_control_ && ct_slot_ >= 0) dp_.conntrack().unregister_context(ct_slot_);
  if (is_control_ && fw_ct_slot_ >= 0) dp_.fw_conntrack().unregister_context(fw_ct_slot_);
}

bool Pmd::init(std::string& err) {
  upcall_free_ = std::make_unique<UpcallQueue>();
  upcall_full_ = std::make_unique<UpcallQueue>();
  handoff_ = std::make_unique<HandoffQueue>();  // any context pushes, this one pops
  slots_ = std::make_unique<UpcallSlot[]>(kUpcallSlots);
  for (uint32_t i = 0; i < kUpcallSlots; ++i) upcall_free_->push(&slots_[i]);
  rx_cfg_.store(new PmdRxConfig{}, std::memory_order_release);
  auto w = crypto::Worker::create();
  if (!w) {
    err = "cannot create the crypto worker: " + w.error();
    return false;
  }
  worker_ = std::move(*w);
  no_key_ = flow::zero_key();
  ipf_scratch_ = std::make_unique<uint8_t[]>(ct::kIpfScratchBytes);
  ipf_done_ = std::make_unique<ct::Completed>();
  ipf_done_->scratch = std::span<uint8_t>(ipf_scratch_.get(), ct::kIpfScratchBytes);
  if (is_control_) {  // online only while it runs packets (receive, rerun, execute)
    ct_slot_ = dp_.conntrack().register_context();
    fw_ct_slot_ = dp_.fw_conntrack().register_context();
    if (ct_slot_ < 0 || fw_ct_slot_ < 0) {
      err = "no conntrack reader slot for the control thread";
      return false;
    }
    trackers_offline();
  }
  return true;
}

void Pmd::set_upcall_rate(uint32_t per_sec) {
  uint64_t hz = rte_get_tsc_hz();
  tb_.cost = per_sec == 0 ? 0 : hz / per_sec;  // TSC ticks per upcall; 0 = unlimited
  tb_.burst = tb_.cost * 1024;                 // bursts of up to 1024 upcalls
  tb_.tokens = tb_.burst;
  tb_.last = rte_rdtsc();
  // Repeats: an eighth of the rate, plus the main bucket's while it is more than half
  // full (upcall_allowed): in a burst they are held, not sent up, and only spare their
  // packets the rate limit's drop; they must not fill the hold past its limits.
  tb_repeat_.cost = tb_.cost * 8;
  tb_repeat_.burst = tb_.burst;
  tb_repeat_.tokens = tb_repeat_.burst;
  tb_repeat_.last = tb_.last;
}

bool Pmd::launch(std::string& err) {
  if (is_control_) return true;
  stop_.store(false);
  int rc = rte_eal_remote_launch(&Pmd::thread_main, this, lcore_);
  if (rc != 0) {
    err = "cannot start PMD on lcore " + std::to_string(lcore_) + ": " + rte_strerror(-rc);
    return false;
  }
  running_.store(true);
  return true;
}

void Pmd::stop() {
  if (!running_.load()) return;
  stop_.store(true, std::memory_order_release);
  rte_eal_wait_lcore(lcore_);
  running_.store(false);
}

size_t Pmd::n_rxq() const {
  const PmdRxConfig* c = rx_cfg_.load(std::memory_order_acquire);
  return c ? c->rxqs.size() : 0;
}

int Pmd::thread_main(void* arg) {
  static_cast<Pmd*>(arg)->run();
  return 0;
}

void Pmd::run() {
  flow::Qsbr& rcu = dp_.rcu();
  rcu_slot_ = rcu.register_reader();
  ct::Conntrack& ct = dp_.conntrack();
  ct_slot_ = ct.register_context();
  ct::Conntrack& fw_ct = dp_.fw_conntrack();
  fw_ct_slot_ = fw_ct.register_context();
  rte_mbuf* pkts[kBatch];
  uint64_t prev = rte_rdtsc();
  while (!stop_.load(std::memory_order_relaxed)) {
    const PmdRxConfig* cfg = rx_cfg_.load(std::memory_order_acquire);
    uint64_t got = 0;
    const bool poll_slow = (++loops_ % kSlowPollEvery) == 0;
    for (const RxqRef& q : cfg->rxqs) {
      if (q.slow && !poll_slow) continue;
      uint16_t n = q.port->rx(q.queue, pkts, kBatch);
      if (n == 0) continue;
      got += n;
      ctr_.batches.add();
      receive_at(pkts, n, q.port->port_no(), prev);  // prev: the loop's last timestamp
    }
    if (handoff_->ready()) [[unlikely]] {
      now_tsc_ = prev;
      esp_handoff_drain();
      got += 1;  // busy: the time counts as work
    }
    uint64_t now = rte_rdtsc();
    if (got) {
      ctr_.busy_cycles.add(now - prev);
    } else {
      ctr_.idle_cycles.add(now - prev);
    }
    prev = now;
    uint32_t prob = emc_prob_req_.load(std::memory_order_acquire);
    if (prob != emc_->insert_inverse_prob()) emc_->set_insert_inverse_prob(prob);
    // Conntrack upkeep: this PMD's connections expire and are reclaimed here, a slice at a
    // time (no global sweep), before the quiescent point that lets reclamation progress.
    if ((loops_ & 15) == 0) ct_sweep(now);
    // Quiescent point: no references held, except the EMC's entries: after flows died, the
    // pass that swept them out ends in the quiescent state (flow::EmcSweeper).
    emc_sweep_.end_batch(*emc_, rcu, rcu_slot_, dp_.dead_epoch_counter(), now);
    ct.quiescent(ct_slot_);
    fw_ct.quiescent(fw_ct_slot_);
  }
  flush_tx();
  rte_pktmbuf_free_bulk(fw_answers_, n_fw_answers_);  // answers of the last burst, if any
  n_fw_answers_ = 0;
  rcu.unregister_reader(rcu_slot_);
  rcu_slot_ = -1;
  ct.unregister_context(ct_slot_);
  ct_slot_ = -1;
  fw_ct.unregister_context(fw_ct_slot_);
  fw_ct_slot_ = -1;
}

void Pmd::process(rte_mbuf** pkts, uint16_t n, const PacketMd* md, int depth) {
  flow::FlowKey keys[kBatch];
  flow::PacketLayout lay[kBatch];
  rte_mbuf* good[kBatch];
  RecircQueue recirc;
  RecircQueue* saved_recirc = recirc_;
  recirc_ = &recirc;
  EspPending esp_in;  // ESP packets for ESP ports

  // Phase 1: parse every packet; metadata words come from md.
  uint16_t ng = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
    md_to_key(md[i], keys[ng]);
    flow::ParseResult r = flow::parse_packet(rte_pktmbuf_mtod(m, const uint8_t*),
                                             rte_pktmbuf_data_len(m), keys[ng], lay[ng]);
    if (r != flow::ParseResult::kOk) {
      ctr_.parse[static_cast<size_t>(r)].add();
      if (flow::parse_is_drop(r)) {
        drop(m, Drop::kParse);
        continue;
      }
    } else if (keys[ng].nw_proto == kIpProtoEsp && keys[ng].recirc_id == 0 &&
               (keys[ng].nw_frag & flow::kFragAny) == 0 && esp_divert(m, keys[ng], esp_in)) {
      continue;  // ESP for an ESP port: decrypted below
    }
    good[ng++] = m;
  }
  // ESP packets for ESP ports: decrypt as one burst; the inner frames enter the pipeline
  // on their ESP port (recirculated with recirc_id 0, processed after this batch).
  if (esp_in.n > 0) {
    const uint16_t en = esp_in.n;
    esp_in.n = 0;
    esp_decrypt(esp_in.pkts, esp_in.md, en, kRecircZero);
  }
  // The firewall of a workload port, on what its VM sent, before anything switches it.
  if (depth == 0 && ng > 0) {
    if (const fw::FwTables* t = dp_.firewall(); t != nullptr) [[unlikely]] {
      if (const fw::PortFirewall* pf = t->port(keys[0].in_port); pf != nullptr) {
        if (!rerunning_) ng = fw_from_vm(*t, *pf, good, keys, lay, ng);
      } else if (dp_.fw_quarantined(keys[0].in_port)) {
        for (uint16_t i = 0; i < ng; ++i) drop(good[i], Drop::kFwQuarantine);
        ng = 0;
      }
    }
  }
  classify_and_act(good, keys, lay, ng, depth);
  recirc_ = saved_recirc;
  drain_recirc(recirc, depth);
}

void Pmd::drain_recirc(RecircQueue& recirc, int depth) {
  if (recirc.n == 0) return;
  if (depth + 1 > kMaxRecircDepth) {
    for (uint16_t i = 0; i < recirc.n; ++i) drop(recirc.pkts[i], Drop::kRecircDepth);
    return;
  }
  ctr_.recirculations.add(recirc.n);
  for (uint16_t off = 0; off < recirc.n; off += kBatch) {
    uint16_t cnt = std::min<uint16_t>(kBatch, recirc.n - off);
    process(recirc.pkts + off, cnt, recirc.md + off, depth + 1);
  }
}

void Pmd::classify_and_act(rte_mbuf** good, flow::FlowKey* keys, flow::PacketLayout* lay,
                           uint16_t ng, int depth) {
  uint32_t hashes[kBatch];
  const flow::ClsRule* rules[kBatch];

  // Phase 2: exact-match cache: hash and prefetch the whole batch, then look up. (Not
  // hashed in phase 1: a word read right after the parser's narrower stores to it misses
  // store forwarding, which cost ~10% of the whole PMD.)
  const flow::FlowKey* miss_keys[kBatch];
  uint16_t miss_idx[kBatch];
  uint16_t nmiss = 0;
  // EMC off (insert probability 0), or stepped aside (emc_bypass_, pmd.hpp) in a batch
  // that is not a sample: the classifier alone, no hash or probe of the cache.
  const bool use_emc =
      emc_->insert_inverse_prob() != 0 && (!emc_bypass_ || ++emc_batches_ % kEmcSample == 0);
  // The hint of this input port and pass (Emc::hint): the rule the last batch there
  // matched, tried on each packet before its hash (a batch comes from one port).
  const uint32_t hint_slot = ng > 0 ? keys[0].in_port * 2 + (depth > 0 ? 1 : 0) : 0;
  if (use_emc) {
    uint8_t& skip = hint_skip_[hint_slot % flow::Emc::kHints];
    const flow::ClsRule* hint = nullptr;
    if (skip != 0)
      --skip;
    else if ((hint = emc_->hint(hint_slot)) != nullptr &&
             hint->dead.load(std::memory_order_relaxed))
      hint = nullptr;
    // Without a hint every packet is hashed; with one, those it does not match (todo).
    uint16_t todo[kBatch];
    uint16_t nt = 0;
    if (hint == nullptr) {
      for (uint16_t i = 0; i < ng; ++i) {
        hashes[i] = flow::hash_microflow(keys[i]);
        emc_->prefetch(hashes[i]);
      }
      nt = ng;
    } else {
      for (uint16_t i = 0; i < ng; ++i) {
        if (hint->matches(keys[i])) {
          rules[i] = hint;
          continue;
        }
        hashes[i] = flow::hash_microflow(keys[i]);
        emc_->prefetch(hashes[i]);
        todo[nt++] = i;
      }
      if ((ng - nt) * 4 < ng) skip = kHintBackoff;
    }
    for (uint16_t t = 0; t < nt; ++t) {
      const uint16_t i = hint == nullptr ? t : todo[t];
      rules[i] = emc_->find(keys[i], hashes[i]);
      if (rules[i] == nullptr) {
        miss_keys[nmiss] = &keys[i];
        miss_idx[nmiss++] = i;
      }
    }
    emc_->count(ng - nmiss, nmiss);
    ctr_.emc_hits.add(ng - nmiss);
    emc_win_lookups_ += ng;
    emc_win_hits_ += ng - nmiss;
    if (emc_win_lookups_ >= kEmcWindow) {
      emc_bypass_ = emc_bypass_ ? emc_win_hits_ * 5 < emc_win_lookups_
                                : emc_win_hits_ * 10 < emc_win_lookups_;
      emc_win_lookups_ = emc_win_hits_ = 0;
    }
  } else {
    for (uint16_t i = 0; i < ng; ++i) {
      miss_keys[i] = &keys[i];
      miss_idx[i] = i;
    }
    nmiss = ng;
  }

  // Phase 3: megaflow classifier for the EMC misses, as one batch.
  if (nmiss > 0) {
    const flow::ClsRule* found[kBatch];
    dp_.classifier().lookup_batch(miss_keys, nmiss, found);
    uint16_t hits = 0;
    for (uint16_t j = 0; j < nmiss; ++j) {
      uint16_t i = miss_idx[j];
      if (found[j] != nullptr) {
        rules[i] = found[j];
        if (use_emc) emc_->insert(keys[i], hashes[i], found[j]);
        ++hits;
      } else {
        ctr_.misses.add();
        upcall(good[i], keys[i], api::UpcallKind::kMiss, 0, {});
        good[i] = nullptr;
      }
    }
    ctr_.megaflow_hits.add(hits);
  }
  // The next batch's hint: the last packet's rule (a run of one megaflow continues).
  if (use_emc)
    for (uint16_t i = ng; i-- > 0;)
      if (good[i] != nullptr) {
        emc_->set_hint(hint_slot, rules[i]);
        break;
      }

  // Phase 4: actions, per run of consecutive packets of one flow: flow stats once per run;
  // a run whose flow only outputs to a (non-ESP) port is appended to that port's tx
  // buffer as a block (the buffer's count stays in a register, not reloaded per packet).
  for (uint16_t i = 0; i < ng;) {
    if (good[i] == nullptr) {
      ++i;
      continue;
    }
    const Flow* f = static_cast<const Flow*>(rules[i]);
    uint16_t end = i + 1;
    uint64_t bytes = rte_pktmbuf_pkt_len(good[i]);
    uint16_t flags = keys[i].tcp_flags;
    while (end < ng && good[end] != nullptr && rules[end] == f) {
      bytes += rte_pktmbuf_pkt_len(good[end]);
      flags |= keys[end].tcp_flags;
      ++end;
    }
    FlowPmdStats& st = f->pmd_stats[index_];
    st.packets.add(end - i);
    st.bytes.add(bytes);
    st.used_tsc.store_max(now_tsc_);
    if (flags) st.tcp_flags.or_bits(flags);

    const ActionsBlob* a = f->actions.load(std::memory_order_acquire);
    if (a->ct_first) {
      // ct() first (OVS's ct(...),recirc(N)): the run goes through the tracker as one
      // batch, its results written into the keys' metadata words, then each packet runs
      // the rest of the actions.
      bool natted[kBatch];
      const std::span<const uint8_t> rest = after_first(a->span());
      const uint16_t cnt = end - i;
      ct_run(a->ct.act[0], good + i, keys + i, lay + i, cnt, natted, rest, &a->ct, 0);
      if (a->ct_recirc >= 0) {
        // The usual rest, one recirc(N): the recirculation runs here and now on the keys
        // in hand (no copy to the queue, no second parse; NAT's rewrites parsed again),
        // as a pipeline level of its own.
        uint16_t m = 0;
        for (uint16_t j = i; j < end; ++j) {
          if (good[j] == nullptr) continue;  // a fragment the reassembly holds
          if (natted[j - i])
            flow::parse_packet(rte_pktmbuf_mtod(good[j], const uint8_t*),
                               rte_pktmbuf_data_len(good[j]), keys[j], lay[j]);
          keys[j].recirc_id = static_cast<uint32_t>(a->ct_recirc);
          if (m != j - i) {  // close the gaps the reassembly left
            good[i + m] = good[j];
            keys[i + m] = keys[j];
            lay[i + m] = lay[j];
          }
          ++m;
        }
        i = end;
        if (m == 0) continue;
        if (depth + 1 > kMaxRecircDepth) [[unlikely]] {
          for (uint16_t j = 0; j < m; ++j) drop(good[end - cnt + j], Drop::kRecircDepth);
          continue;
        }
        ctr_.recirculations.add(m);
        RecircQueue sub;
        RecircQueue* saved = recirc_;
        recirc_ = &sub;
        classify_and_act(good + (end - cnt), keys + (end - cnt), lay + (end - cnt), m, depth + 1);
        recirc_ = saved;
        drain_recirc(sub, depth + 1);
        continue;
      }
      for (uint16_t j = i; j < end; ++j) {
        if (good[j] == nullptr) continue;  // a fragment the reassembly holds
        // NAT rewrote the packet: a later ct() in the list must see the new headers.
        if (natted[j - i] && a->ct.n > 1)
          flow::parse_packet(rte_pktmbuf_mtod(good[j], const uint8_t*),
                             rte_pktmbuf_data_len(good[j]), keys[j], lay[j]);
        PacketMd md;
        key_to_md(keys[j], md);
        exec_actions(good[j], md, keys[j], lay[j], rest, true, 0, &a->ct);
      }
      i = end;
      continue;
    }
    if (a->only_output >= 0) {
      const uint32_t port_no = static_cast<uint32_t>(a->only_output);
      Port* port = port_no < kMaxPorts ? dp_.port(port_no) : nullptr;
      if (port != nullptr && !port->is_esp() && mark_dirty(port_no)) {
        TxBuf& b = tx_[port_no];
        uint16_t tn = b.n;
        for (; i < end; ++i) {
          good[i]->hash.usr = keys[i].in_port;  // as output() does
          b.pkts[tn++] = good[i];
          if (tn == kBatch) {
            b.n = tn;
            send(*port, b);
            tn = 0;
          }
        }
        b.n = tn;
        continue;
      }
      for (; i < end; ++i) output(good[i], port_no, keys[i].in_port);
      continue;
    }
    for (; i < end; ++i) {
      rte_mbuf* m = good[i];
      PacketMd pmd;
      key_to_md(keys[i], pmd);
      if (a->esp != 0) {
        // ESP: collect the run of this flow and process it as one burst.
        if (esp_.n > 0 && esp_.actions != a) esp_flush_pending();
        esp_.actions = a;
        esp_.pkts[esp_.n] = m;
        esp_.md[esp_.n++] = pmd;
        continue;
      }
      exec_actions(m, pmd, keys[i], lay[i], a->span(), true, 0, &a->ct);
    }
  }
  esp_flush_pending();
}

void Pmd::output(rte_mbuf* m, uint32_t port_no, uint32_t in_port) {
  Port* port = port_no < kMaxPorts ? dp_.port(port_no) : nullptr;
  if (port == nullptr) {
    drop(m, Drop::kNoPort);
    return;
  }
  TxBuf& b = tx_[port_no];
  // Where the packet came from: an ESP port's ICMP "too big" goes back there, and a
  // workload's firewall checks that allow-encrypted traffic arrived by an ESP port.
  m->hash.usr = in_port;
  b.pkts[b.n++] = m;
  if (!mark_dirty(port_no)) [[unlikely]] {
    send(*port, b);  // the list is full (cannot happen in practice): send at once
    return;
  }
  if (b.n == kBatch) {
    send(*port, b);
    // the port stays in dirty_: flush_tx() skips empty buffers
  }
}

bool Pmd::mark_dirty(uint32_t port_no) {
  TxBuf& b = tx_[port_no];
  if (b.dirty) return true;
  if (n_dirty_ == std::size(dirty_)) [[unlikely]]
    return false;
  b.dirty = true;
  dirty_[n_dirty_++] = static_cast<uint16_t>(port_no);
  return true;
}

void Pmd::send(Port& port, TxBuf& b) {
  uint16_t n = b.n;
  b.n = 0;
  if (const fw::FwTables* t = dp_.firewall(); t != nullptr) [[unlikely]] {
    if (const fw::PortFirewall* pf = t->port(port.port_no()); pf != nullptr) {
      n = fw_to_vm(*t, *pf, b.pkts, n);  // what is sent to a workload: its firewall first
      if (n == 0) return;
    } else if (dp_.fw_quarantined(port.port_no())) {
      for (uint16_t i = 0; i < n; ++i) drop(b.pkts[i], Drop::kFwQuarantine);
      return;
    } else if (t->has_encrypted && !port.is_esp()) {
      // Neither a workload's port nor an ESP port (an uplink, the underlay): what the
      // policy says must be encrypted does not leave here (fail closed).
      const uint64_t flag = dp_.must_encrypt_flag();
      uint16_t m = 0;
      for (uint16_t i = 0; i < n; ++i) {
        if (b.pkts[i]->ol_flags & flag) [[unlikely]]
          drop(b.pkts[i], Drop::kFwNotEncrypted);
        else
          b.pkts[m++] = b.pkts[i];
      }
      n = m;
      if (n == 0) return;
    }
  }
  if (port.is_esp()) {
    esp_port_tx(port, b.pkts, n);
  } else {
    port.tx(index_, b.pkts, n, ctr_.drops[static_cast<size_t>(Drop::kTxFull)]);
  }
}

void Pmd::flush_tx() {
  // Flushing an ESP port outputs to its underlay: the loop also takes what it adds.
  for (uint16_t i = 0; i < n_dirty_; ++i) {
    uint16_t p = dirty_[i];
    TxBuf& b = tx_[p];
    b.dirty = false;
    if (b.n == 0) continue;
    Port* port = dp_.port(p);
    if (port == nullptr) {
      rte_pktmbuf_free_bulk(b.pkts, b.n);
      ctr_.drops[static_cast<size_t>(Drop::kNoPort)].add(b.n);
      b.n = 0;
    } else {
      send(*port, b);
    }
  }
  n_dirty_ = 0;
}

bool Pmd::TokenBucket::take(uint64_t now, uint64_t reserve) {
  if (cost == 0) return true;
  tokens = std::min(burst, tokens + (now - last));
  last = now;
  if (tokens < cost + reserve) return false;
  tokens -= cost;
  return true;
}

bool Pmd::upcall_allowed(const flow::FlowKey& key, api::UpcallKind kind, RecentRef& rec) {
  const uint64_t now = rte_rdtsc();
  const uint64_t window = repeat_window_.load(std::memory_order_relaxed);
  if (kind != api::UpcallKind::kMiss || window == 0) return tb_.take(now);
  const uint32_t h = flow::hash_microflow(key);
  RecentMisses& set = recent_[h & (kRecentSets - 1)];
  int victim = 0;
  for (int w = 0; w < 4; ++w) {
    if (set.tsc[w] != 0 && set.hash[w] == h && now - set.tsc[w] < window)
      // A repeat: its own bucket, else the main one while that is more than half full
      // (no burst of new flows is spending it: a flow that gets no megaflow, whose
      // misses the hold sends up, keeps the whole rate).
      return tb_repeat_.take(now) || tb_.take(now, tb_.burst / 2);
    if (set.tsc[w] < set.tsc[victim]) victim = w;  // the oldest (or an empty) way
  }
  if (!tb_.take(now)) return false;
  rec = {&set, victim, h, now};  // recorded once the miss is queued
  return true;
}

void Pmd::upcall(rte_mbuf* m, const flow::FlowKey& key, api::UpcallKind kind, uint32_t pid,
                 std::span<const uint8_t> userdata) {
  RecentRef rec;
  if (!upcall_allowed(key, kind, rec)) {
    ctr_.upcalls_lost.add();
    drop(m, Drop::kUpcallRateLimit);
    return;
  }
  UpcallSlot* s;
  if (!upcall_free_->pop(s)) {
    ctr_.upcalls_lost.add();
    drop(m, Drop::kUpcallQueueFull);  // not recorded: the next miss is a first one again
    return;
  }
  if (rec.set != nullptr) {
    rec.set->hash[rec.way] = rec.hash;
    rec.set->tsc[rec.way] = rec.now;
  }
  s->mbuf = m;
  s->key = key;
  s->key.pad1 = 0;  // PacketMd::ct_conn: meaningless outside this pass
  s->kind = static_cast<uint8_t>(kind);
  s->pid = pid;
  s->userdata_len = static_cast<uint16_t>(std::min<size_t>(userdata.size(), api::kMaxUserdata));
  if (s->userdata_len) std::memcpy(s->userdata, userdata.data(), s->userdata_len);
  upcall_full_->push(s);  // cannot fail: as many slots as queue entries
  ctr_.upcalls.add();
}

void Pmd::receive(rte_mbuf** pkts, uint16_t n, uint32_t in_port) {
  receive_at(pkts, n, in_port, rte_rdtsc());
}

void Pmd::receive_at(rte_mbuf** pkts, uint16_t n, uint32_t in_port, uint64_t now) {
  now_tsc_ = now;
  if (is_control_) trackers_online();
  if (rx_md_port_ != in_port) {
    for (PacketMd& md : rx_md_) md.in_port = in_port;
    rx_md_port_ = in_port;
  }
  for (uint16_t off = 0; off < n; off += kBatch) {
    uint16_t cnt = std::min<uint16_t>(kBatch, n - off);
    ctr_.packets.add(cnt);
    process(pkts + off, cnt, rx_md_, 0);
  }
  flush_tx();
  drain_fw_answers();
  if (is_control_) trackers_offline();
}

void Pmd::rerun(rte_mbuf** pkts, uint16_t n, const PacketMd& md) {
  now_tsc_ = rte_rdtsc();
  PacketMd mds[kBatch];
  for (uint16_t i = 0; i < kBatch; ++i) {
    mds[i] = md;
    mds[i].ct_conn = 0;
  }
  trackers_online();
  // Held misses passed their port's firewall when they arrived (it committed or counted
  // them there): not again, or a rule's counters and the connection's would count them
  // twice.
  rerunning_ = true;
  for (uint16_t off = 0; off < n; off += kBatch) {
    uint16_t cnt = std::min<uint16_t>(kBatch, n - off);
    process(pkts + off, cnt, mds, md.recirc_id != 0 ? 1 : 0);
  }
  rerunning_ = false;
  flush_tx();
  drain_fw_answers();
  trackers_offline();
}

void Pmd::execute(rte_mbuf* m, const PacketMd& md, std::span<const uint8_t> actions,
                  const CtActions& cts) {
  now_tsc_ = rte_rdtsc();
  flow::FlowKey key;
  flow::PacketLayout lay;
  md_to_key(md, key);
  flow::ParseResult r =
      flow::parse_packet(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), key, lay);
  if (flow::parse_is_drop(r)) {
    ctr_.parse[static_cast<size_t>(r)].add();
    drop(m, Drop::kParse);
    return;
  }
  RecircQueue recirc;
  recirc_ = &recirc;
  PacketMd md2 = md;
  md2.ct_conn = 0;
  trackers_online();
  uint16_t first = 0;
  uint32_t group = 0;
  for (const odp::ActionView& v : odp::ActionList(actions)) {
    first = v.type;
    group = v.u32();
    break;
  }
  // A packet from a workload executed for OVS (the first of a flow, after the upcall):
  // its firewall ran when it arrived, but the mark "may leave only encrypted" does not
  // travel through the upcall: set it again here.
  if (const fw::FwTables* t = dp_.firewall(); t != nullptr && t->has_encrypted && md.recirc_id == 0)
      [[unlikely]] {
    if (const fw::PortFirewall* pf = t->port(md.in_port); pf != nullptr)
      fw_mark_executed(*t, *pf, m, key, lay);
  }
  if (first == odp::kActionEspEncrypt || first == odp::kActionEspDecrypt)
    esp_run(first, group, &m, &md2, 1, after_first(actions));
  else
    exec_actions(m, md2, key, lay, actions, true, 0, &cts);
  recirc_ = nullptr;
  if (recirc.n > 0) {
    ctr_.recirculations.add(recirc.n);
    for (uint16_t off = 0; off < recirc.n; off += kBatch)
      process(recirc.pkts + off, std::min<uint16_t>(kBatch, recirc.n - off), recirc.md + off, 1);
  }
  flush_tx();
  drain_fw_answers();
  trackers_offline();
}

}  // namespace gl::dp
