#include "dataplane/pmd.hpp"

#include <linux/openvswitch.h>
#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_prefetch.h>

#include <cstring>

#include "crypto/esp.hpp"
#include "dataplane/api/odp_actions.hpp"
#include "dataplane/set_field.hpp"
#include "flowtables/checksum.hpp"

namespace gl::dp {

namespace {

// Calls fn(type, payload, last) for each action of a validated list (odp::ActionList,
// plus whether it is the last one: the action that may consume the packet itself).
template <typename Fn>
inline void for_each_action(std::span<const uint8_t> blob, Fn&& fn) {
  const odp::ActionList list(blob);
  for (auto it = list.begin(), end = list.end(); it != end;) {
    const odp::ActionView a = *it;
    ++it;
    fn(a.type, a.payload, it == end);
  }
}

inline uint32_t read_u32(std::span<const uint8_t> p) {
  uint32_t v = 0;
  if (p.size() >= 4) std::memcpy(&v, p.data(), 4);
  return v;
}

// The L4 hash of OVS_HASH_ALG_L4 / _SYM_L4 over the packet's key.
inline uint32_t l4_hash(const flow::FlowKey& k, uint32_t basis, bool symmetric) {
  uint64_t a = k.ipv4_src, b = k.ipv4_dst;
  uint64_t pa = k.tp_src, pb = k.tp_dst;
  uint64_t a6[2], b6[2];
  std::memcpy(a6, k.ipv6_src, 16);
  std::memcpy(b6, k.ipv6_dst, 16);
  a ^= a6[0] ^ a6[1];
  b ^= b6[0] ^ b6[1];
  if (symmetric && (a > b || (a == b && pa > pb))) {
    std::swap(a, b);
    std::swap(pa, pb);
  }
  uint32_t h = flow::hash_add64(basis, a);
  h = flow::hash_add64(h, b);
  h = flow::hash_add64(h, (pa << 16) | pb | (uint64_t(k.nw_proto) << 32));
  h = flow::hash_finish(h);
  return h != 0 ? h : 1;  // 0 means "no hash computed"
}

// crypto::Result -> drop reason (index by the Result value).
constexpr Drop kEspDrop[crypto::kResultCount] = {
    Drop::kActionDrop,  // ok: never used
    Drop::kEspBadLength, Drop::kEspNoRoom,     Drop::kEspUnknownSpi,  Drop::kEspTooOld,
    Drop::kEspReplay,    Drop::kEspAuthFailed, Drop::kEspBadPadding,  Drop::kEspBadNextHeader,
    Drop::kEspDummy,     Drop::kEspSaExpired,  Drop::kEspUnsupported, Drop::kEspCryptoError,
};
static_assert(static_cast<size_t>(crypto::Result::crypto_error) == crypto::kResultCount - 1);

// The action list after its first action.
inline std::span<const uint8_t> after_first(std::span<const uint8_t> blob) {
  uint16_t len = 0;
  std::memcpy(&len, blob.data(), 2);
  size_t step = std::min<size_t>(odp::attr_align(len), blob.size());
  return blob.subspan(step);
}

constexpr uint16_t kEthLen = 14;
constexpr uint8_t kIpProtoEsp = 50;
constexpr uint16_t kEthTypeIpv4Be = 0x0008;  // 0x0800 in network order, read little-endian
constexpr uint16_t kEthTypeIpv6Be = 0xdd86;
// recirc(0): what follows the decryption of an ESP port's packet.
alignas(4) constexpr uint8_t kRecircZeroBytes[8] = {8, 0, OVS_ACTION_ATTR_RECIRC, 0, 0, 0, 0, 0};
constexpr std::span<const uint8_t> kRecircZero{kRecircZeroBytes, 8};

// The packets of one ESP burst: crypto buffers, the mbufs they live in and their index in
// the caller's batch (for their metadata).
struct EspStage {
  crypto::PktBuf bufs[kBatch];
  crypto::PktBuf* ptrs[kBatch];
  rte_mbuf* ms[kBatch];
  uint16_t idx[kBatch];
  uint16_t k = 0;
  void add(rte_mbuf* m, uint16_t i, const crypto::PktBuf& b) {
    bufs[k] = b;
    ptrs[k] = &bufs[k];
    ms[k] = m;
    idx[k++] = i;
  }
};

// TCP SYNs of encrypted flows: lowers the MSS option to what fits the tunnel (inner IP MTU
// minus 40 / 60 bytes), so TCP never sends segments that would be too big. Untagged
// IPv4 (no fragment) / IPv6 (TCP right after the fixed header) only; the TCP checksum is
// updated incrementally (RFC 1624).
inline void clamp_mss(uint8_t* d, uint32_t len, uint32_t max_frame) {
  if (len < kEthLen + 40) return;
  uint32_t l4 = 0, limit = 0;
  const uint32_t inner_mtu = max_frame - kEthLen;
  if (d[12] == 0x08 && d[13] == 0x00 && (d[14] >> 4) == 4 && d[14 + 9] == 6 &&
      (d[14 + 6] & 0x3f) == 0 && d[14 + 7] == 0) {
    l4 = kEthLen + (d[14] & 0x0fu) * 4u;
    limit = inner_mtu - 40;
  } else if (d[12] == 0x86 && d[13] == 0xdd && (d[14] >> 4) == 6 && d[14 + 6] == 6) {
    l4 = kEthLen + 40;
    limit = inner_mtu - 60;
  } else {
    return;
  }
  if (l4 + 20 > len || (d[l4 + 13] & 0x02) == 0) return;  // not a SYN
  const uint32_t end = l4 + (d[l4 + 12] >> 4) * 4u;
  if (end > len) return;
  for (uint32_t o = l4 + 20; o + 1 < end;) {
    const uint8_t kind = d[o];
    if (kind == 0) return;
    if (kind == 1) {
      ++o;
      continue;
    }
    const uint8_t olen = d[o + 1];
    if (olen < 2 || o + olen > end) return;
    if (kind == 2 && olen == 4) {
      const uint32_t mss = uint32_t(d[o + 2]) << 8 | d[o + 3];
      if (mss <= limit) return;
      uint16_t old_v, new_v, csum;
      std::memcpy(&old_v, d + o + 2, 2);
      d[o + 2] = static_cast<uint8_t>(limit >> 8);
      d[o + 3] = static_cast<uint8_t>(limit);
      std::memcpy(&new_v, d + o + 2, 2);
      if (((o + 2 - l4) & 1) != 0) {  // not 16-bit aligned in the TCP header
        old_v = static_cast<uint16_t>(old_v << 8 | old_v >> 8);
        new_v = static_cast<uint16_t>(new_v << 8 | new_v >> 8);
      }
      std::memcpy(&csum, d + l4 + 16, 2);
      csum = flow::csum_replace16(csum, old_v, new_v);
      std::memcpy(d + l4 + 16, &csum, 2);
      return;
    }
    o += olen;
  }
}

}  // namespace

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
    void* p;
    while (rte_ring_dequeue(upcall_full_, &p) == 0)
      rte_pktmbuf_free(static_cast<UpcallSlot*>(p)->mbuf);
    rte_ring_free(upcall_full_);
  }
  if (upcall_free_ != nullptr) rte_ring_free(upcall_free_);
  delete rx_cfg_.load();
}

bool Pmd::init(std::string& err) {
  char name[RTE_RING_NAMESIZE];
  std::snprintf(name, sizeof name, "gl_upf_%u", index_);
  upcall_free_ = rte_ring_create(name, kUpcallSlots, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  std::snprintf(name, sizeof name, "gl_upq_%u", index_);
  upcall_full_ = rte_ring_create(name, kUpcallSlots, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (upcall_free_ == nullptr || upcall_full_ == nullptr) {
    err = std::string("cannot create upcall rings: ") + rte_strerror(rte_errno);
    return false;
  }
  slots_ = std::make_unique<UpcallSlot[]>(kUpcallSlots - 1);
  for (uint32_t i = 0; i < kUpcallSlots - 1; ++i) rte_ring_enqueue(upcall_free_, &slots_[i]);
  rx_cfg_.store(new PmdRxConfig{}, std::memory_order_release);
  auto w = crypto::Worker::create();
  if (!w) {
    err = "cannot create the crypto worker: " + w.error();
    return false;
  }
  worker_ = std::move(*w);
  no_key_ = flow::zero_key();
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
    uint64_t now = rte_rdtsc();
    if (got) {
      ctr_.busy_cycles.add(now - prev);
    } else {
      ctr_.idle_cycles.add(now - prev);
    }
    prev = now;
    // Quiescent point: no references held. Sweep the EMC first if flows died, so that no
    // EMC entry points at a flow freed after this grace period.
    uint64_t de = dp_.dead_epoch();
    if (de != seen_dead_epoch_) {
      emc_->sweep_dead();
      seen_dead_epoch_ = de;
    }
    uint32_t prob = emc_prob_req_.load(std::memory_order_acquire);
    if (prob != emc_->insert_inverse_prob()) emc_->set_insert_inverse_prob(prob);
    rcu.quiescent(rcu_slot_);
  }
  flush_tx();
  rcu.unregister_reader(rcu_slot_);
  rcu_slot_ = -1;
}

void Pmd::process(rte_mbuf** pkts, uint16_t n, const PacketMd* md, int depth) {
  flow::FlowKey keys[kBatch];
  flow::PacketLayout lay[kBatch];
  rte_mbuf* good[kBatch];
  uint32_t hashes[kBatch];
  const flow::ClsRule* rules[kBatch];
  RecircQueue recirc;
  RecircQueue* saved_recirc = recirc_;
  recirc_ = &recirc;
  EspPending esp_in;  // ESP packets for ESP ports

  // Phase 1: parse every packet; metadata words come from md.
  uint16_t ng = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
    std::memcpy(&keys[ng], &md[i], sizeof(PacketMd));
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

  // Phase 2: exact-match cache: hash and prefetch the whole batch, then look up. (Not
  // hashed in phase 1: a word read right after the parser's narrower stores to it misses
  // store forwarding, which cost ~10% of the whole PMD.)
  const flow::FlowKey* miss_keys[kBatch];
  uint16_t miss_idx[kBatch];
  uint16_t nmiss = 0;
  for (uint16_t i = 0; i < ng; ++i) {
    hashes[i] = flow::hash_microflow(keys[i]);
    emc_->prefetch(hashes[i]);
  }
  for (uint16_t i = 0; i < ng; ++i) {
    rules[i] = emc_->find(keys[i], hashes[i]);
    if (rules[i] == nullptr) {
      miss_keys[nmiss] = &keys[i];
      miss_idx[nmiss++] = i;
    }
  }
  emc_->count(ng - nmiss, nmiss);
  ctr_.emc_hits.add(ng - nmiss);

  // Phase 3: megaflow classifier for the EMC misses, as one batch.
  if (nmiss > 0) {
    const flow::ClsRule* found[kBatch];
    dp_.classifier().lookup_batch(miss_keys, nmiss, found);
    uint16_t hits = 0;
    for (uint16_t j = 0; j < nmiss; ++j) {
      uint16_t i = miss_idx[j];
      if (found[j] != nullptr) {
        rules[i] = found[j];
        emc_->insert(keys[i], hashes[i], found[j]);
        ++hits;
      } else {
        ctr_.misses.add();
        upcall(good[i], keys[i], api::UpcallKind::kMiss, 0, {});
        good[i] = nullptr;
      }
    }
    ctr_.megaflow_hits.add(hits);
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
    if (a->only_output >= 0) {
      const uint32_t port_no = static_cast<uint32_t>(a->only_output);
      Port* port = port_no < kMaxPorts ? dp_.port(port_no) : nullptr;
      if (port != nullptr && !port->is_esp() && mark_dirty(port_no)) {
        TxBuf& b = tx_[port_no];
        uint16_t tn = b.n;
        for (; i < end; ++i) {
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
      std::memcpy(&pmd, &keys[i], sizeof pmd);
      if (a->esp != 0) {
        // ESP: collect the run of this flow and process it as one burst.
        if (esp_.n > 0 && esp_.actions != a) esp_flush_pending();
        esp_.actions = a;
        esp_.pkts[esp_.n] = m;
        esp_.md[esp_.n++] = pmd;
        continue;
      }
      exec_actions(m, pmd, keys[i], lay[i], a->span(), true, 0);
    }
  }
  esp_flush_pending();

  recirc_ = saved_recirc;
  if (recirc.n > 0) {
    if (depth + 1 > kMaxRecircDepth) {
      for (uint16_t i = 0; i < recirc.n; ++i) drop(recirc.pkts[i], Drop::kRecircDepth);
    } else {
      ctr_.recirculations.add(recirc.n);
      for (uint16_t off = 0; off < recirc.n; off += kBatch) {
        uint16_t cnt = std::min<uint16_t>(kBatch, recirc.n - off);
        process(recirc.pkts + off, cnt, recirc.md + off, depth + 1);
      }
    }
  }
}

void Pmd::exec_actions(rte_mbuf* m, PacketMd& md, const flow::FlowKey& key, flow::PacketLayout& lay,
                       std::span<const uint8_t> actions, bool steal, int depth) {
  bool consumed = false;  // m was handed on (output, recirc, upcall) or freed
  for_each_action(actions, [&](uint16_t type, std::span<const uint8_t> p, bool last) {
    if (consumed) return;
    const bool take = steal && last;  // this action may use m itself
    switch (type) {
      case OVS_ACTION_ATTR_OUTPUT: {
        uint32_t port_no = read_u32(p);
        if (take) {
          output(m, port_no, md.in_port);
          consumed = true;
        } else if (rte_mbuf* c = rte_pktmbuf_copy(m, dp_.pool(), 0, UINT32_MAX)) {
          output(c, port_no, md.in_port);
        } else {
          ctr_.drops[static_cast<size_t>(Drop::kNoMbuf)].add();
        }
        break;
      }
      case OVS_ACTION_ATTR_USERSPACE: {
        const odp::UserspaceAction u = odp::decode_userspace(p);
        const uint32_t pid = u.pid;
        const std::span<const uint8_t> userdata = u.userdata;
        flow::FlowKey k = key;
        std::memcpy(&k, &md, sizeof md);
        if (take) {
          upcall(m, k, api::UpcallKind::kAction, pid, userdata);
          consumed = true;
        } else if (rte_mbuf* c = rte_pktmbuf_copy(m, dp_.pool(), 0, UINT32_MAX)) {
          upcall(c, k, api::UpcallKind::kAction, pid, userdata);
        } else {
          ctr_.drops[static_cast<size_t>(Drop::kNoMbuf)].add();
        }
        break;
      }
      case OVS_ACTION_ATTR_SET:
        apply_set(m, md, lay, p, false);
        break;
      case OVS_ACTION_ATTR_SET_MASKED:
        apply_set(m, md, lay, p, true);
        break;
      case OVS_ACTION_ATTR_PUSH_VLAN: {
        ovs_action_push_vlan pv;
        std::memcpy(&pv, p.data(), sizeof pv);
        if (!push_vlan(m, lay, pv.vlan_tpid, pv.vlan_tci)) {
          drop(m, Drop::kPushVlanNoRoom);
          consumed = true;
        }
        break;
      }
      case OVS_ACTION_ATTR_POP_VLAN:
        pop_vlan(m, lay);
        break;
      case OVS_ACTION_ATTR_RECIRC: {
        md.recirc_id = read_u32(p);
        rte_mbuf* r = take ? m : rte_pktmbuf_copy(m, dp_.pool(), 0, UINT32_MAX);
        if (take) consumed = true;
        if (r == nullptr) {
          ctr_.drops[static_cast<size_t>(Drop::kNoMbuf)].add();
        } else if (recirc_ == nullptr || recirc_->n == 2 * kBatch) {
          drop(r, Drop::kRecircOverflow);
        } else {
          recirc_->pkts[recirc_->n] = r;
          recirc_->md[recirc_->n++] = md;
        }
        break;
      }
      case OVS_ACTION_ATTR_HASH: {
        ovs_action_hash h;
        std::memcpy(&h, p.data(), sizeof h);
        md.dp_hash = l4_hash(key, h.hash_basis, h.hash_alg == 1 /* OVS_HASH_ALG_SYM_L4 */);
        break;
      }
      case OVS_ACTION_ATTR_SAMPLE:
      case OVS_ACTION_ATTR_CLONE: {
        std::span<const uint8_t> nested = p;
        if (type == OVS_ACTION_ATTR_SAMPLE) {
          const odp::SampleAction sa = odp::decode_sample(p);
          const uint32_t prob = sa.probability;
          nested = sa.actions;
          if (prob == 0 || (prob != UINT32_MAX && random32() >= prob)) break;
        }
        if (depth >= 4) break;  // validation bounds nesting; belt and braces
        if (take) {
          exec_actions(m, md, key, lay, nested, true, depth + 1);
          consumed = true;
        } else if (rte_mbuf* c = rte_pktmbuf_copy(m, dp_.pool(), 0, UINT32_MAX)) {
          PacketMd md2 = md;
          flow::PacketLayout lay2 = lay;
          exec_actions(c, md2, key, lay2, nested, true, depth + 1);
        } else {
          ctr_.drops[static_cast<size_t>(Drop::kNoMbuf)].add();
        }
        break;
      }
      default:
        break;  // validation refuses anything else
    }
  });
  if (!consumed && steal) drop(m, Drop::kActionDrop);
}

// ---- ESP --------------------------------------------------------------------------

void Pmd::esp_flush_pending() {
  if (esp_.n == 0) return;
  const ActionsBlob* a = esp_.actions;
  const uint16_t n = esp_.n;
  esp_.n = 0;
  esp_run(a->esp, a->esp_group, esp_.pkts, esp_.md, n, after_first(a->span()));
}

void Pmd::esp_run(uint16_t type, uint32_t group, rte_mbuf** pkts, PacketMd* md, uint16_t n,
                  std::span<const uint8_t> rest) {
  if (type == odp::kActionEspEncrypt)
    esp_encrypt(group, pkts, md, n, rest);
  else
    esp_decrypt(pkts, md, n, rest);
}

void Pmd::esp_encrypt(uint32_t group, rte_mbuf** pkts, PacketMd* md, uint16_t n,
                      std::span<const uint8_t> rest) {
  const SaTables* t = dp_.sa_tables();
  const EspGroup* g = t != nullptr ? t->group(group) : nullptr;
  const EspOutSlot* slot = g != nullptr ? &g->slots[index_] : nullptr;
  crypto::Sa* sa = slot != nullptr ? slot->sa : nullptr;
  // Fail closed: without a usable SA nothing leaves, in clear or otherwise.
  if (sa == nullptr || sa->expired()) {
    const Drop why = sa == nullptr ? Drop::kEspNoSa : Drop::kEspSaExpired;
    rte_pktmbuf_free_bulk(pkts, n);
    ctr_.drops[static_cast<size_t>(why)].add(n);
    return;
  }
  EspStage st;
  // The usual rest is one output (an ESP port's underlay, or esp_encrypt(..),N): send
  // directly instead of walking the action list per packet.
  const bool only_output = rest.size() == 8 && rest[0] == 8 && rest[1] == 0 &&
                           rest[2] == OVS_ACTION_ATTR_OUTPUT && rest[3] == 0;
  uint32_t out_port = 0;
  if (only_output) std::memcpy(&out_port, rest.data() + 4, 4);
  // Encrypts and sends what st holds (one SA burst), in order.
  auto run_stage = [&] {
    if (st.k == 0) return;
    crypto::Result res[kBatch];
    sa->burst(*worker_, st.ptrs, st.k, res);
    for (uint16_t j = 0; j < st.k; ++j) {
      rte_mbuf* m = st.ms[j];
      if (res[j] != crypto::Result::ok) {
        drop(m, kEspDrop[static_cast<size_t>(res[j])]);
        continue;
      }
      uint8_t* start = st.bufs[j].data - kEthLen;
      m->data_off = static_cast<uint16_t>(start - static_cast<uint8_t*>(m->buf_addr));
      m->data_len = static_cast<uint16_t>(st.bufs[j].len + kEthLen);
      m->pkt_len = m->data_len;
      std::memcpy(start, slot->eth, kEthLen);
      if (only_output) {
        output(m, out_port, md[st.idx[j]].in_port);
        continue;
      }
      flow::PacketLayout lay{};
      exec_actions(m, md[st.idx[j]], no_key_, lay, rest, true, 0);
    }
    st.k = 0;
  };
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    if (m->nb_segs != 1) {
      drop(m, Drop::kEspMultiSeg);
      continue;
    }
    if (rte_pktmbuf_data_len(m) > slot->max_frame) {
      // IPv4 without DF: fragmented before encryption (the receiving VM reassembles).
      // What came before goes first, then the fragments as a burst of their own: the
      // order of the packets is kept.
      constexpr uint16_t kMaxFrags = 2 * kBatch;
      rte_mbuf* frags[kMaxFrags];
      const uint16_t nf = fragment_ipv4(m, slot->max_frame, frags, kMaxFrags);
      if (nf == 0) {
        esp_too_big(m, md[i], slot->max_frame);
        continue;
      }
      ctr_.esp_fragmented.add();
      rte_pktmbuf_free(m);
      run_stage();
      PacketMd fmd[kBatch];
      for (uint16_t k = 0; k < kBatch; ++k) fmd[k] = md[i];
      for (uint16_t off = 0; off < nf; off += kBatch)  // they fit: no further fragmenting
        esp_encrypt(group, frags + off, fmd, std::min<uint16_t>(kBatch, nf - off), rest);
      continue;
    }
    if (slot->max_frame != UINT32_MAX)
      clamp_mss(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m), slot->max_frame);
    const uint16_t head = rte_pktmbuf_headroom(m);
    if (head < kEthLen) {
      drop(m, Drop::kEspNoRoom);
      continue;
    }
    // The inner packet is the whole Ethernet frame; keep room for the underlay header.
    st.add(m, i,
           crypto::PktBuf{rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m),
                          static_cast<uint32_t>(head - kEthLen), rte_pktmbuf_tailroom(m),
                          crypto::kProtoEthernet});
  }
  run_stage();
}

uint16_t Pmd::fragment_ipv4(const rte_mbuf* m, uint32_t max_frame, rte_mbuf** out, uint16_t cap) {
  // Untagged or one 802.1Q tag, IPv4 without options and without DF: RFC 791 fragments
  // of at most max_frame bytes each (payload in multiples of 8), same ID, offsets and MF
  // continuing those of m (m may itself be a fragment). Anything else: 0.
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  uint32_t l2 = kEthLen;
  if (len >= kEthLen + 4 && d[12] == 0x81 && d[13] == 0x00) l2 += 4;
  if (len < l2 + 20 || d[l2 - 2] != 0x08 || d[l2 - 1] != 0x00 || d[l2] != 0x45) return 0;
  const uint8_t* ip = d + l2;
  const uint16_t frag = static_cast<uint16_t>(ip[6] << 8 | ip[7]);
  if (frag & 0x4000) return 0;  // DF: the sender gets ICMP "fragmentation needed"
  const uint32_t tot = static_cast<uint32_t>(ip[2] << 8 | ip[3]);
  if (tot < 20 || l2 + tot > len || max_frame < l2 + 20 + 8) return 0;
  const uint32_t chunk = (max_frame - l2 - 20) & ~7u;
  const uint32_t payload = tot - 20;
  const uint32_t nf = (payload + chunk - 1) / chunk;
  if (nf == 0 || nf > cap) return 0;
  const uint32_t off0 = frag & 0x1fffu;
  const bool more0 = (frag & 0x2000) != 0;
  for (uint32_t k = 0; k < nf; ++k) {
    const uint32_t plen = std::min(chunk, payload - k * chunk);
    rte_mbuf* f = rte_pktmbuf_alloc(dp_.pool());
    uint8_t* p = f == nullptr ? nullptr
                              : reinterpret_cast<uint8_t*>(
                                    rte_pktmbuf_append(f, static_cast<uint16_t>(l2 + 20 + plen)));
    if (p == nullptr) {
      if (f != nullptr) rte_pktmbuf_free(f);
      rte_pktmbuf_free_bulk(out, k);
      ctr_.drops[static_cast<size_t>(Drop::kNoMbuf)].add();
      return 0;
    }
    std::memcpy(p, d, l2 + 20);
    std::memcpy(p + l2 + 20, ip + 20 + k * chunk, plen);
    uint8_t* fip = p + l2;
    const uint32_t t = 20 + plen;
    fip[2] = static_cast<uint8_t>(t >> 8);
    fip[3] = static_cast<uint8_t>(t);
    const uint32_t fo = off0 + k * chunk / 8;
    const bool more = k + 1 < nf || more0;
    fip[6] = static_cast<uint8_t>((more ? 0x20 : 0) | ((fo >> 8) & 0x1f));
    fip[7] = static_cast<uint8_t>(fo);
    fip[10] = fip[11] = 0;
    const uint16_t cs = flow::inet_checksum(fip, 20);
    std::memcpy(fip + 10, &cs, 2);
    out[k] = f;
  }
  return static_cast<uint16_t>(nf);
}

void Pmd::esp_too_big(rte_mbuf* m, const PacketMd& md, uint32_t max_frame) {
  // Untagged IPv4 with DF (first fragment) gets ICMP "fragmentation needed" (RFC 1191),
  // IPv6 gets ICMPv6 "packet too big" (RFC 8201), with the inner MTU, sent back out of the
  // port the packet came in on, from the address it was sent to. Everything else is only
  // dropped and counted. Rare path.
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  const uint32_t mtu = max_frame > kEthLen ? max_frame - kEthLen : 0;
  const bool v4 = len >= kEthLen + 20 && d[12] == 0x08 && d[13] == 0x00 && (d[kEthLen] >> 4) == 4;
  const bool v6 = len >= kEthLen + 40 && d[12] == 0x86 && d[13] == 0xdd && (d[kEthLen] >> 4) == 6;
  const uint32_t ihl = v4 ? (d[kEthLen] & 0x0fu) * 4u : 0;
  bool reply = false;
  uint32_t quote = 0, ip_len = 0;
  if (v4 && ihl >= 20 && len >= kEthLen + ihl && (d[kEthLen + 6] & 0x40) != 0 &&
      (d[kEthLen + 6] & 0x1f) == 0 && d[kEthLen + 7] == 0 && mtu >= 68) {
    reply = true;
    quote = std::min(len - kEthLen, ihl + 8);
    ip_len = 20;
  } else if (v6 && mtu >= 1280 &&
             (d[kEthLen + 6] != 58 || d[kEthLen + 40] >= 128)) {  // not about an ICMPv6 error
    reply = true;
    quote = std::min(len - kEthLen, 1280u - 40 - 8);  // the reply fits the minimum MTU
    ip_len = 40;
  }
  if (reply) {
    rte_mbuf* r = rte_pktmbuf_alloc(dp_.pool());
    uint8_t* p = r == nullptr ? nullptr
                              : reinterpret_cast<uint8_t*>(rte_pktmbuf_append(
                                    r, static_cast<uint16_t>(kEthLen + ip_len + 8 + quote)));
    if (p == nullptr) {
      if (r != nullptr) rte_pktmbuf_free(r);
      ctr_.drops[static_cast<size_t>(Drop::kNoMbuf)].add();
      drop(m, Drop::kEspTooBig);
      return;
    }
    std::memcpy(p, d + 6, 6);
    std::memcpy(p + 6, d, 6);
    p[12] = d[12];
    p[13] = d[13];
    uint8_t* ip = p + kEthLen;
    uint8_t* icmp = ip + ip_len;
    std::memset(ip, 0, ip_len + 8);
    std::memcpy(icmp + 8, d + kEthLen, quote);
    if (v4) {
      const uint16_t tot = static_cast<uint16_t>(28 + quote);
      ip[0] = 0x45;
      ip[1] = 0xc0;  // internetwork control
      ip[2] = static_cast<uint8_t>(tot >> 8);
      ip[3] = static_cast<uint8_t>(tot);
      ip[8] = 64;
      ip[9] = 1;  // ICMP
      std::memcpy(ip + 12, d + kEthLen + 16, 4);
      std::memcpy(ip + 16, d + kEthLen + 12, 4);
      uint16_t cs = flow::inet_checksum(ip, 20);
      std::memcpy(ip + 10, &cs, 2);
      icmp[0] = 3;  // destination unreachable
      icmp[1] = 4;  // fragmentation needed and DF set
      icmp[6] = static_cast<uint8_t>(mtu >> 8);
      icmp[7] = static_cast<uint8_t>(mtu);
      cs = flow::inet_checksum(icmp, 8 + quote);
      std::memcpy(icmp + 2, &cs, 2);
    } else {
      const uint16_t plen = static_cast<uint16_t>(8 + quote);
      ip[0] = 0x60;
      ip[4] = static_cast<uint8_t>(plen >> 8);
      ip[5] = static_cast<uint8_t>(plen);
      ip[6] = 58;  // ICMPv6
      ip[7] = 255;
      std::memcpy(ip + 8, d + kEthLen + 24, 16);
      std::memcpy(ip + 24, d + kEthLen + 8, 16);
      icmp[0] = 2;  // packet too big
      icmp[4] = static_cast<uint8_t>(mtu >> 24);
      icmp[5] = static_cast<uint8_t>(mtu >> 16);
      icmp[6] = static_cast<uint8_t>(mtu >> 8);
      icmp[7] = static_cast<uint8_t>(mtu);
      const uint16_t cs =
          flow::l4_checksum(flow::ipv6_pseudo_sum(ip + 8, ip + 24, 58, plen), icmp, plen);
      std::memcpy(icmp + 2, &cs, 2);
    }
    output(r, md.in_port, md.in_port);
  }
  drop(m, Drop::kEspTooBig);
}

void Pmd::esp_decrypt(rte_mbuf** pkts, PacketMd* md, uint16_t n, std::span<const uint8_t> rest) {
  const SaTables* t = dp_.sa_tables();
  if (t == nullptr) {
    rte_pktmbuf_free_bulk(pkts, n);
    ctr_.drops[static_cast<size_t>(Drop::kEspUnknownSpi)].add(n);
    return;
  }
  EspStage st;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    if (m->nb_segs != 1) {
      drop(m, Drop::kEspMultiSeg);
      continue;
    }
    uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
    const uint32_t len = rte_pktmbuf_data_len(m);
    uint32_t l2 = kEthLen;
    uint16_t et = len >= kEthLen ? static_cast<uint16_t>(d[12] << 8 | d[13]) : 0;
    if (et == 0x8100 && len >= kEthLen + 4) {
      l2 += 4;
      et = static_cast<uint16_t>(d[16] << 8 | d[17]);
    }
    bool good = false;
    if (et == 0x0800 && len >= l2 + 20) {
      // The outer header is not authenticated: check its checksum here.
      const uint32_t ihl = (d[l2] & 0x0fu) * 4u;
      good = ihl >= 20 && len >= l2 + ihl &&
             flow::csum_fold(flow::csum_partial(d + l2, ihl)) == 0xffff;
    } else if (et == 0x86dd && len >= l2 + 40) {
      good = true;
    }
    if (!good) {
      drop(m, Drop::kEspBadOuter);
      continue;
    }
    st.add(
        m, i,
        crypto::PktBuf{d + l2, len - l2, rte_pktmbuf_headroom(m) + l2, rte_pktmbuf_tailroom(m), 0});
  }
  if (st.k == 0) return;
  crypto::Result res[kBatch];
  crypto::Sa* sas[kBatch];
  crypto::esp_decap_burst(*worker_, t->inbound[index_], st.ptrs, st.k, res, sas);
  for (uint16_t j = 0; j < st.k; ++j) {
    rte_mbuf* m = st.ms[j];
    if (res[j] != crypto::Result::ok) {
      Drop why = kEspDrop[static_cast<size_t>(res[j])];
      // Error path only: an SPI another context owns is a steering problem, not an attack.
      if (res[j] == crypto::Result::unknown_spi &&
          t->inbound_all.find(crypto::esp_peek_spi(st.bufs[j])) != nullptr)
        why = Drop::kEspWrongPmd;
      drop(m, why);
      continue;
    }
    if (st.bufs[j].proto != crypto::kProtoEthernet || st.bufs[j].len < kEthLen) {
      drop(m, Drop::kEspInnerNotEthernet);
      continue;
    }
    m->data_off = static_cast<uint16_t>(st.bufs[j].data - static_cast<uint8_t*>(m->buf_addr));
    m->data_len = static_cast<uint16_t>(st.bufs[j].len);
    m->pkt_len = m->data_len;
    m->ol_flags = 0;  // the underlay's offload flags do not describe the inner frame
    m->packet_type = 0;
    if (Port* vp = dp_.port(md[st.idx[j]].in_port); vp != nullptr && vp->is_esp()) {
      // The outer addresses that chose the ESP port are not authenticated: the SA that
      // authenticated the packet must be one between the port's local and remote.
      if (!vp->esp_peer_is(sas[j]->config())) {
        drop(m, Drop::kEspPeerMismatch);
        continue;
      }
      vp->count_rx(index_, m->pkt_len);
    }
    flow::PacketLayout lay{};
    exec_actions(m, md[st.idx[j]], no_key_, lay, rest, true, 0);
  }
}

bool Pmd::esp_divert(rte_mbuf* m, const flow::FlowKey& key, EspPending& to) {
  const Port* rp = dp_.port(key.in_port);
  if (rp == nullptr || !rp->has_esp_children()) return false;
  uint32_t vp = api::kPortAny;
  if (key.eth_type == kEthTypeIpv4Be) {
    vp = rp->esp_port_for(4, reinterpret_cast<const uint8_t*>(&key.ipv4_src),
                          reinterpret_cast<const uint8_t*>(&key.ipv4_dst));
  } else if (key.eth_type == kEthTypeIpv6Be) {
    vp = rp->esp_port_for(6, key.ipv6_src, key.ipv6_dst);
  }
  if (vp == api::kPortAny) return false;
  to.pkts[to.n] = m;
  std::memcpy(&to.md[to.n], &key, sizeof(PacketMd));
  to.md[to.n++].in_port = vp;
  return true;
}

void Pmd::output(rte_mbuf* m, uint32_t port_no, uint32_t in_port) {
  Port* port = port_no < kMaxPorts ? dp_.port(port_no) : nullptr;
  if (port == nullptr) {
    drop(m, Drop::kNoPort);
    return;
  }
  TxBuf& b = tx_[port_no];
  // An ESP port encrypts at flush; remember where the packet came from (ICMP "too big").
  if (port->is_esp()) m->hash.usr = in_port;
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
  const uint16_t n = b.n;
  b.n = 0;
  if (port.is_esp()) {
    esp_port_tx(port, b.pkts, n);
  } else {
    port.tx(index_, b.pkts, n, ctr_.drops[static_cast<size_t>(Drop::kTxFull)]);
  }
}

void Pmd::esp_port_tx(Port& port, rte_mbuf** in, uint16_t n) {
  // Copy out: encryption outputs to the underlay, whose buffer may be flushed meanwhile.
  rte_mbuf* pkts[kBatch];
  PacketMd md[kBatch];
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) {
    pkts[i] = in[i];
    md[i] = PacketMd{};
    md[i].in_port = pkts[i]->hash.usr;
    bytes += rte_pktmbuf_pkt_len(pkts[i]);
  }
  port.count_tx(index_, n, bytes);
  // OUTPUT(underlay); an underlay that is gone (kPortAny) makes that a no_port drop.
  alignas(4) uint8_t out[8] = {8, 0, OVS_ACTION_ATTR_OUTPUT, 0};
  const uint32_t ul = port.esp_underlay();
  std::memcpy(out + 4, &ul, 4);
  esp_encrypt(port.esp_group(), pkts, md, n, std::span<const uint8_t>(out, 8));
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
  void* p;
  if (rte_ring_sc_dequeue(upcall_free_, &p) != 0) {
    ctr_.upcalls_lost.add();
    drop(m, Drop::kUpcallQueueFull);  // not recorded: the next miss is a first one again
    return;
  }
  if (rec.set != nullptr) {
    rec.set->hash[rec.way] = rec.hash;
    rec.set->tsc[rec.way] = rec.now;
  }
  auto* s = static_cast<UpcallSlot*>(p);
  s->mbuf = m;
  s->key = key;
  s->kind = static_cast<uint8_t>(kind);
  s->pid = pid;
  s->userdata_len = static_cast<uint16_t>(std::min<size_t>(userdata.size(), api::kMaxUserdata));
  if (s->userdata_len) std::memcpy(s->userdata, userdata.data(), s->userdata_len);
  rte_ring_sp_enqueue(upcall_full_, s);  // cannot fail: as many slots as ring entries
  ctr_.upcalls.add();
}

void Pmd::receive(rte_mbuf** pkts, uint16_t n, uint32_t in_port) {
  receive_at(pkts, n, in_port, rte_rdtsc());
}

void Pmd::receive_at(rte_mbuf** pkts, uint16_t n, uint32_t in_port, uint64_t now) {
  now_tsc_ = now;
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
}

void Pmd::rerun(rte_mbuf** pkts, uint16_t n, const PacketMd& md) {
  now_tsc_ = rte_rdtsc();
  PacketMd mds[kBatch];
  for (uint16_t i = 0; i < kBatch; ++i) mds[i] = md;
  for (uint16_t off = 0; off < n; off += kBatch) {
    uint16_t cnt = std::min<uint16_t>(kBatch, n - off);
    process(pkts + off, cnt, mds, md.recirc_id != 0 ? 1 : 0);
  }
  flush_tx();
}

void Pmd::execute(rte_mbuf* m, const PacketMd& md, std::span<const uint8_t> actions) {
  now_tsc_ = rte_rdtsc();
  flow::FlowKey key;
  flow::PacketLayout lay;
  std::memcpy(&key, &md, sizeof md);
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
  uint16_t first = 0;
  uint32_t group = 0;
  for (const odp::ActionView& v : odp::ActionList(actions)) {
    first = v.type;
    group = v.u32();
    break;
  }
  if (first == odp::kActionEspEncrypt || first == odp::kActionEspDecrypt)
    esp_run(first, group, &m, &md2, 1, after_first(actions));
  else
    exec_actions(m, md2, key, lay, actions, true, 0);
  recirc_ = nullptr;
  if (recirc.n > 0) {
    ctr_.recirculations.add(recirc.n);
    for (uint16_t off = 0; off < recirc.n; off += kBatch)
      process(recirc.pkts + off, std::min<uint16_t>(kBatch, recirc.n - off), recirc.md + off, 1);
  }
  flush_tx();
}

}  // namespace gl::dp
