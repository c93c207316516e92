// fw_stage.cpp — the distributed firewall at workload ports: the spoof guard and the
// stateful policy check on what a VM sends (fw_from_vm, before switching) and on what is
// sent to it (fw_to_vm, before its tx burst). Connections live in the firewall's own
// tracker, zone = the port number; a first packet is checked against the compiled policy
// (dataplane/firewall/fw_tables.hpp) and, when allowed, committed with its verdict, so
// that the rest of the connection never runs the rules. Design: dataplane/DESIGN.md, "The
// distributed firewall stage".
#include <algorithm>
#include <cstring>

#include "dataplane/pmd.hpp"
#include "dataplane/pmd_internal.hpp"
#include "flowtables/bytes.hpp"
#include "flowtables/checksum.hpp"

namespace gl::dp {

namespace {

constexpr uint16_t kEthIpv4Be = flow::hton16(0x0800);
constexpr uint16_t kEthIpv6Be = flow::hton16(0x86dd);
constexpr uint16_t kEthArpBe = flow::hton16(0x0806);

bool is_ip(const flow::FlowKey& k, const flow::PacketLayout& lay) {
  return (k.eth_type == kEthIpv4Be && lay.is_ipv4()) || (k.eth_type == kEthIpv6Be && lay.is_ipv6());
}

bool link_local6(const uint8_t* a) {
  return a[0] == 0xfe && (a[1] & 0xc0) == 0x80;  // fe80::/10
}

// Neighbour discovery and MLD (ICMPv6 130-136, 143): link-local signalling that a tracker
// cannot follow (Linux's conntrack leaves exactly these untracked). They pass the stage as
// ARP does, after the spoof guard (nd_ok); a redirect (137) is tracked (+inv).
bool is_nd(const flow::FlowKey& k, const flow::PacketLayout& lay) {
  if (k.eth_type != kEthIpv6Be || k.nw_proto != flow::kIpProtoIcmpv6 || !lay.has_l4() ||
      (k.nw_frag & flow::kFragAny) != 0)
    return false;
  const uint16_t t = flow::ntoh16(k.tp_src);
  return t <= 0xff && fw::untracked_icmp6(static_cast<uint8_t>(t));
}

// The spoof guard of a solicitation or advertisement the VM sends (as the ARP sender's
// addresses): its link-layer address options name the port's MAC, and an advertisement's
// target is one of its addresses or link-local. A malformed one is refused. A router
// advertisement from a workload is refused (RA guard, RFC 6105: a workload is not the
// segment's router; a rogue one would take its neighbours' traffic).
bool nd_ok(const fw::PortFirewall& pf, const flow::FlowKey& k, const flow::PacketLayout& lay,
           const rte_mbuf* pkt) {
  const uint16_t type = flow::ntoh16(k.tp_src);
  if (type == fw::kIcmp6RouterAdvert) return false;
  if (type != 135 && type != 136) return true;
  const uint8_t* l4 = rte_pktmbuf_mtod(pkt, const uint8_t*) + lay.l4_ofs;
  const uint32_t len = lay.l4_len;
  if (len < 24) return false;
  if (type == 136 && !pf.source_ok6(l4 + 8) && !link_local6(l4 + 8)) return false;
  for (uint32_t o = 24; o < len;) {  // options: type, length in 8-byte units, data
    const uint32_t olen = o + 2 <= len ? l4[o + 1] * 8u : 0;
    if (olen == 0 || o + olen > len) return false;
    if ((l4[o] == 1 || l4[o] == 2) && !pf.mac_ok(l4 + o + 2)) return false;
    o += olen;
  }
  return true;
}

// Whether a packet went from one host to one host, so that it may be answered (RFC 1812
// 4.3.2.7, RFC 4443 2.4 (e), as Linux's icmp_send): no group MAC, no multicast or
// broadcast address, no unspecified source (the answer would be sent from a group address
// or to nobody).
bool unicast_exchange(const flow::FlowKey& k) {
  if ((k.eth_dst[0] & 1) != 0 || (k.eth_src[0] & 1) != 0) return false;
  if (k.eth_type == kEthIpv4Be) {
    const uint32_t s = flow::ntoh32(k.ipv4_src), d = flow::ntoh32(k.ipv4_dst);
    return s != 0 && (s >> 28) < 14 && (d >> 28) < 14;  // 224/4 multicast, 240/4 and broadcast
  }
  static constexpr uint8_t kZero[16] = {};
  return k.ipv6_src[0] != 0xff && k.ipv6_dst[0] != 0xff && std::memcmp(k.ipv6_src, kZero, 16) != 0;
}

// The spoof guard for a packet the VM sent (fw::PortFirewall's rules).
bool source_ok(const fw::PortFirewall& pf, const flow::FlowKey& k) {
  if (!pf.mac_ok(k.eth_src)) return false;
  // DHCP discovery and requests before the workload has its address; IPv6 link-local and
  // DAD's ::.
  if (k.eth_type == kEthIpv4Be)
    return pf.source_addr_ok4(k.ipv4_src, k.nw_proto, k.tp_src, k.tp_dst);
  if (k.eth_type == kEthIpv6Be) return pf.source_addr_ok6(k.ipv6_src);
  if (k.eth_type == kEthArpBe) {  // the sender's hardware and protocol addresses
    if (!pf.mac_ok(k.arp_sha)) return false;
    return k.ipv4_src == 0 || pf.source_ok4(k.ipv4_src);  // 0: an ARP probe
  }
  return true;  // other EtherTypes: the MAC check only
}

// The remote's identity and the verdict of the direction's policy for a packet's own
// tuple (a first packet).
fw::Verdict evaluate(const fw::FwTables& t, const fw::PortFirewall& pf, bool to_vm,
                     const flow::FlowKey& k) {
  uint32_t remote;
  if (k.eth_type == kEthIpv4Be)
    remote = t.ipcache.lookup4(to_vm ? k.ipv4_src : k.ipv4_dst);
  else
    remote = t.ipcache.lookup6(to_vm ? k.ipv6_src : k.ipv6_dst);
  const fw::PolicyTable& p = to_vm ? pf.to_vm : pf.from_vm;
  return p.lookup(remote, k.nw_proto, flow::ntoh16(k.tp_dst));
}

// The same for a connection committed under an older generation, from its original
// tuple (the tracker's metadata) and the direction it was created in.
fw::Verdict reevaluate(const fw::FwTables& t, const fw::PortFirewall& pf, const fw::ConnVerdict& v,
                       const ct::Md& md) {
  uint32_t remote;
  if (md.orig_family() == 4)
    remote = t.ipcache.lookup4(v.to_vm ? md.orig_v4_src : md.orig_v4_dst);
  else
    remote = t.ipcache.lookup6(v.to_vm ? md.orig_v6_src : md.orig_v6_dst);
  const fw::PolicyTable& p = v.to_vm ? pf.to_vm : pf.from_vm;
  return p.lookup(remote, md.orig_proto, flow::ntoh16(md.orig_dport));
}

// What a connection's label records of the verdict that let it in.
// Its generation is the port's (fw::PortFirewall::generation), not the version's.
fw::ConnVerdict verdict_label(const fw::PortFirewall& pf, bool to_vm, const fw::Verdict& v,
                              uint32_t start_ms, bool record, uint8_t via = 0) {
  fw::ConnVerdict cv;
  cv.via = via;
  cv.generation = static_cast<uint32_t>(pf.generation);
  cv.to_vm = to_vm;
  cv.action = v.action;
  cv.slot = v.slot;
  cv.record = record;
  cv.start_ms = start_ms;
  return cv;
}

bool allowed(fw::Action a) {
  return a == fw::Action::kAllow || a == fw::Action::kAllowEncrypted;
}

constexpr uint8_t kEncryptedAction = static_cast<uint8_t>(fw::Action::kAllowEncrypted);

// The tracker's key of a packet's tuple in `zone` (false: an ICMP query too short to key).
bool conn_key_of(const flow::FlowKey& key, const flow::PacketLayout& lay, const rte_mbuf* pkt,
                 uint16_t zone, ct::ConnKey& k) {
  const bool v4 = key.eth_type == kEthIpv4Be;
  k = ct::ConnKey{};
  k.zone = zone;
  k.family = v4 ? 4 : 6;
  k.proto = key.nw_proto;
  if (v4) {
    k.src[0] = key.ipv4_src;
    k.dst[0] = key.ipv4_dst;
  } else {
    std::memcpy(k.src, key.ipv6_src, 16);
    std::memcpy(k.dst, key.ipv6_dst, 16);
  }
  switch (key.nw_proto) {
    case flow::kIpProtoTcp:
    case flow::kIpProtoUdp:
      k.sport = key.tp_src;
      k.dport = key.tp_dst;
      break;
    case flow::kIpProtoIcmp:
    case flow::kIpProtoIcmpv6: {
      // A query: identifier and type << 8 | code (the tracker's ICMP key).
      if (!lay.has_l4() || lay.l4_len < 8) return false;
      const uint8_t* l4 = rte_pktmbuf_mtod(pkt, const uint8_t*) + lay.l4_ofs;
      k.sport = flow::load_raw16(l4 + 4);
      k.dport = static_cast<uint16_t>(l4[0] << 8 | l4[1]);
      break;
    }
    default:
      break;
  }
  return true;
}

}  // namespace

bool Pmd::fw_arrived_encrypted(const fw::FwTables& t, const rte_mbuf* m) const {
  const uint32_t from = m->hash.usr;  // output() keeps the packet's in_port there
  if (t.port(from) != nullptr) return true;
  const Port* p = from < kMaxPorts ? dp_.port(from) : nullptr;
  return p != nullptr && p->is_esp();
}

bool Pmd::fw_host_ok(const fw::FwTables& t, const flow::FlowKey& k, const rte_mbuf* m) const {
  const uint32_t from = m->hash.usr;
  const Port* p = from < kMaxPorts ? dp_.port(from) : nullptr;
  if (p == nullptr || !p->is_esp()) return true;  // not through a tunnel
  const fw::IpHit h =
      k.eth_type == kEthIpv4Be ? t.ipcache.hit4(k.ipv4_src) : t.ipcache.hit6(k.ipv6_src);
  if (h.host == 0 || h.host >= t.hosts.size()) return true;  // not a workload's address
  const EspPortArgs& a = p->esp_args();
  return t.hosts[h.host].same(a.family, a.remote);
}

uint8_t Pmd::fw_via(const fw::FwTables& t, bool to_vm, const flow::FlowKey& k,
                    const rte_mbuf* m) const {
  if (to_vm) {
    const uint32_t from = m->hash.usr;
    const Port* p = from < kMaxPorts ? dp_.port(from) : nullptr;
    return p != nullptr && p->is_esp() ? static_cast<uint8_t>(from) : 0;
  }
  if (t.hosts.size() <= 1) return 0;  // no workload of another host anywhere
  const bool v4 = k.eth_type == kEthIpv4Be;
  // A workload of this host (a binary search) has no ESP port to come back by.
  if (v4 ? t.local_port4(k.ipv4_dst) != 0 : t.local_port6(k.ipv6_dst) != 0) return 0;
  const fw::IpHit h = v4 ? t.ipcache.hit4(k.ipv4_dst) : t.ipcache.hit6(k.ipv6_dst);
  if (h.host == 0 || h.host >= t.hosts.size() || t.hosts[h.host].family == 0) return 0;
  const fw::HostAddr& host = t.hosts[h.host];
  for (uint32_t no = 1; no < kMaxPorts; ++no) {  // a new connection to a remote workload
    const Port* p = dp_.port(no);
    if (p != nullptr && p->is_esp() && host.same(p->esp_args().family, p->esp_args().remote))
      return static_cast<uint8_t>(no);
  }
  return 0;  // no ESP port towards its host (clear traffic, or this host's own workload)
}

void Pmd::fw_mark_executed(const fw::FwTables& t, const fw::PortFirewall& pf, rte_mbuf* m,
                           const flow::FlowKey& key, const flow::PacketLayout& lay) {
  if (!is_ip(key, lay) || is_nd(key, lay)) return;
  // The connection its arrival committed (either direction), else what the policy says of
  // its tuple as a first packet.
  ct::ConnKey k;
  ct::Entry e;
  bool reply = false;
  const uint64_t now_ms = dp_.ct_now_ms(now_tsc_);
  bool encrypted;
  if (conn_key_of(key, lay, m, static_cast<uint16_t>(pf.port_no), k) &&
      dp_.fw_conntrack().lookup(k, now_ms, e, reply) && fw::ConnVerdict::is_ours(e.label))
    encrypted = e.label[9] == kEncryptedAction;
  else
    encrypted = evaluate(t, pf, false, key).action == fw::Action::kAllowEncrypted;
  if (encrypted) m->ol_flags |= dp_.must_encrypt_flag();
}

uint16_t Pmd::fw_from_vm(const fw::FwTables& t, const fw::PortFirewall& pf, rte_mbuf** pkts,
                         flow::FlowKey* keys, flow::PacketLayout* lay, uint16_t n) {
  bool keep[kBatch];
  bool done[kBatch];
  for (uint16_t i = 0; i < n; ++i) {
    keep[i] =
        source_ok(pf, keys[i]) && (!is_nd(keys[i], lay[i]) || nd_ok(pf, keys[i], lay[i], pkts[i]));
    if (!keep[i]) drop(pkts[i], Drop::kFwSpoof);
  }
  fw_fast(t, pf, false, pkts, n, keep, done);
  fw_track(t, pf, false, pkts, keys, lay, n, keep, done);
  uint16_t m = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (!keep[i]) continue;
    if (m != i) {
      pkts[m] = pkts[i];
      keys[m] = keys[i];
      lay[m] = lay[i];
    }
    ++m;
  }
  return m;
}

uint16_t Pmd::fw_to_vm(const fw::FwTables& t, const fw::PortFirewall& pf, rte_mbuf** pkts,
                       uint16_t n) {
  flow::FlowKey keys[kBatch];
  flow::PacketLayout lay[kBatch];
  bool keep[kBatch];
  bool done[kBatch];
  for (uint16_t i = 0; i < n; ++i) keep[i] = true;
  // Established connections are looked up from the frames; only what is left is parsed.
  fw_fast(t, pf, true, pkts, n, keep, done);
  // parse_packet() writes the packet's words; the metadata words only need zeroing (two
  // 48-byte copies, not a whole-key memset per packet: that showed in profiles).
  PacketMd md{};
  md.in_port = pf.port_no;
  bool rest = false;
  for (uint16_t i = 0; i < n; ++i) {
    if (done[i]) continue;
    rest = true;
    md_to_key(md, keys[i]);
    const flow::ParseResult r = flow::parse_packet(rte_pktmbuf_mtod(pkts[i], const uint8_t*),
                                                   rte_pktmbuf_data_len(pkts[i]), keys[i], lay[i]);
    if (r != flow::ParseResult::kOk && flow::parse_is_drop(r)) {
      keep[i] = false;
      drop(pkts[i], Drop::kParse);
    }
  }
  // keys[i] and lay[i] are set for every i that is not done (GCC cannot see it).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
  if (rest) fw_track(t, pf, true, pkts, keys, lay, n, keep, done);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
  uint16_t m = 0;
  for (uint16_t i = 0; i < n; ++i)
    if (keep[i]) pkts[m++] = pkts[i];
  return m;
}

void Pmd::fw_fast(const fw::FwTables& t, const fw::PortFirewall& pf, bool to_vm, rte_mbuf** pkts,
                  uint16_t n, bool* keep, bool* done) {
  ct::Conntrack& ct = dp_.fw_conntrack();
  // Ours (the marker) and of the port's generation: the only connections whose packets
  // need nothing but counting. Label layout: fw::ConnVerdict::to_label().
  ct::Conntrack::LabelMatch want;
  want.mask[0] = 0xffffffffu;
  want.value[0] = static_cast<uint32_t>(pf.generation);
  want.mask[1] = uint64_t{0xff} << 56;
  want.value[1] = uint64_t{fw::ConnVerdict::kLabelMarker} << 56;
  ct::Conntrack::FastPacket fp[kBatch];
  uint16_t at[kBatch];
  uint16_t m = 0;
  for (uint16_t i = 0; i < n; ++i) {
    done[i] = false;
    if (!keep[i]) continue;
    fp[m].frame = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
    fp[m].len = rte_pktmbuf_data_len(pkts[i]);
    fp[m].csum_good = detail::csum_good(pkts[i]);  // as ct() does: what the port verified
    at[m++] = i;
  }
  if (m == 0) return;
  const uint64_t now_ms = dp_.ct_now_ms(now_tsc_);
  ct.execute_established(index_, static_cast<uint16_t>(pf.port_no), want, fp, m, now_ms);
  fw::RuleCounter* rc = t.counters(index_);
  const size_t n_slots = t.rule_ids.size();
  for (uint16_t j = 0; j < m; ++j) {
    const ct::Conntrack::FastPacket& p = fp[j];
    if (p.result == ct::Conntrack::FastPacket::kMiss) continue;
    const uint16_t i = at[j];
    done[i] = true;
    if (p.result == ct::Conntrack::FastPacket::kInvalid) {
      keep[i] = false;
      if (t.record & fw::kRecordAll) {  // the event names the tuple: parse it for that
        flow::FlowKey k{};
        flow::PacketLayout l;
        flow::parse_packet(p.frame, p.len, k, l);
        fw_refused(t, pf, to_vm, k, fw::Verdict{}, fw::EventReason::kInvalid, now_ms);
      }
      drop(pkts[i], Drop::kFwInvalid);
      continue;
    }
    if (to_vm && p.label[14] != 0 && pkts[i]->hash.usr != p.label[14]) [[unlikely]] {
      keep[i] = false;  // not by the ESP port of the remote workload's host
      drop(pkts[i], Drop::kFwHostMismatch);
      continue;
    }
    if (p.label[9] == kEncryptedAction) [[unlikely]] {
      if (!to_vm) {
        pkts[i]->ol_flags |= dp_.must_encrypt_flag();
      } else if (!fw_arrived_encrypted(t, pkts[i])) {
        keep[i] = false;
        drop(pkts[i], Drop::kFwNotEncrypted);
        continue;
      }
    }
    const uint32_t slot =
        uint32_t{p.label[10]} | uint32_t{p.label[11]} << 8 | uint32_t{p.label[12]} << 16;
    if (slot < n_slots) [[likely]] {
      fw::RuleCounter& c = rc[slot];
      c.add(c.packets, 1);
      c.add(c.bytes, p.bytes);
    }
  }
}

void Pmd::fw_track(const fw::FwTables& t, const fw::PortFirewall& pf, bool to_vm, rte_mbuf** pkts,
                   const flow::FlowKey* keys, const flow::PacketLayout* lay, uint16_t n, bool* keep,
                   const bool* done) {
  ct::Conntrack& ct = dp_.fw_conntrack();
  const uint64_t now_ms = dp_.ct_now_ms(now_tsc_);
  const uint32_t gen32 = static_cast<uint32_t>(pf.generation);
  fw::RuleCounter* rc = t.counters(index_);
  ct::Action look;
  look.zone = static_cast<uint16_t>(pf.port_no);
  ct::Md md[kBatch];
  ct::Packet cp[kBatch];
  uint16_t at[kBatch];
  uint16_t m = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (done[i] || !keep[i] || !is_ip(keys[i], lay[i]) || is_nd(keys[i], lay[i]))
      continue;  // non-IP, ND and MLD pass
    md[m] = ct::Md{};
    cp[m] = ct::Packet{rte_pktmbuf_mtod(pkts[i], uint8_t*), rte_pktmbuf_data_len(pkts[i]), &keys[i],
                       &lay[i], &md[m]};
    cp[m].csum_good = detail::csum_good(pkts[i]);
    at[m++] = i;
  }
  if (m == 0) return;
  ct.execute(index_, look, cp, m, now_ms);
  // First packets: the policy's verdicts, and for those it lets in, the index lines their
  // commits will lock, fetched for all of them before the first commit (a flood of new
  // connections: each commit otherwise waited for its own misses, one after another).
  fw::Verdict first[kBatch];
  for (uint16_t j = 0; j < m; ++j) {
    if ((md[j].state & flow::kCsInvalid) != 0 || md[j].conn != 0) continue;
    const uint16_t i = at[j];
    first[j] = evaluate(t, pf, to_vm, keys[i]);
    ct::ConnKey k;
    if (allowed(first[j].action) && conn_key_of(keys[i], lay[i], pkts[i], look.zone, k))
      ct.prefetch_commit(k);
  }
  for (uint16_t j = 0; j < m; ++j) {
    const uint16_t i = at[j];
    const ct::Md& r = md[j];
    const uint64_t bytes = lay[i].l3_len;
    if ((r.state & flow::kCsInvalid) != 0) {
      keep[i] = false;
      drop(pkts[i], Drop::kFwInvalid);
      if (t.record & fw::kRecordAll)
        fw_refused(t, pf, to_vm, keys[i], fw::Verdict{}, fw::EventReason::kInvalid, now_ms);
      continue;
    }
    if (r.conn != 0) {  // a connection the firewall committed (or one it relates to)
      const fw::ConnVerdict v = fw::ConnVerdict::from_label(r.label);
      if (fw::ConnVerdict::is_ours(r.label) && v.generation == gen32 && v.slot < t.rule_ids.size())
          [[likely]] {
        if (to_vm && v.via != 0 && pkts[i]->hash.usr != v.via) [[unlikely]] {
          keep[i] = false;
          drop(pkts[i], Drop::kFwHostMismatch);
          continue;
        }
        if (!fw_encryption_ok(t, v.action, to_vm, pkts[i])) [[unlikely]] {
          keep[i] = false;
          drop(pkts[i], Drop::kFwNotEncrypted);
          continue;
        }
        fw::RuleCounter& c = rc[v.slot];
        c.add(c.packets, 1);
        c.add(c.bytes, bytes);
        continue;
      }
      // Committed under an older policy: checked again with its original tuple.
      if (to_vm && !fw_host_ok(t, keys[i], pkts[i])) [[unlikely]] {
        keep[i] = false;
        drop(pkts[i], Drop::kFwHostMismatch);
        continue;
      }
      const fw::Verdict nv = reevaluate(t, pf, v, r);
      if (allowed(nv.action) && !fw_encryption_ok(t, nv.action, to_vm, pkts[i])) {
        keep[i] = false;  // kept: the connection may go on, encrypted
        drop(pkts[i], Drop::kFwNotEncrypted);
        continue;
      }
      if (allowed(nv.action)) {
        // Brought up to date, its start and record choice kept (a related connection
        // without our label starts a record now).
        // Relabelled in place (a second ct() pass would count the packet twice).
        const bool ours = fw::ConnVerdict::is_ours(r.label);
        uint8_t label[16];
        verdict_label(pf, v.to_vm, nv, ours ? v.start_ms : static_cast<uint32_t>(now_ms),
                      ours && v.record, ours ? v.via : 0)
            .to_label(label);
        ct.set_mark_label(r.conn, nv.rule_id, label);
        fw::RuleCounter& c = rc[nv.slot];
        c.add(c.packets, 1);
        c.add(c.bytes, bytes);
        continue;
      }
      ct.remove_conn(r.conn);
      keep[i] = false;
      drop(pkts[i], Drop::kFwRevoked);
      if (t.record & (fw::kRecordAll | fw::kRecordDefaultRefusals) || nv.log)
        fw_refused(t, pf, to_vm, keys[i], nv, fw::EventReason::kRevoked, now_ms);
      continue;
    }
    // A first packet: the policy decides, after the source's host is checked.
    if (to_vm && !fw_host_ok(t, keys[i], pkts[i])) [[unlikely]] {
      keep[i] = false;
      drop(pkts[i], Drop::kFwHostMismatch);
      if (t.record & (fw::kRecordAll | fw::kRecordDefaultRefusals))
        fw_refused(t, pf, to_vm, keys[i], fw::Verdict{}, fw::EventReason::kHostMismatch, now_ms);
      continue;
    }
    const fw::Verdict& v = first[j];
    fw::RuleCounter& c = rc[v.slot];
    c.add(c.packets, 1);
    c.add(c.bytes, bytes);
    if (allowed(v.action) && !fw_encryption_ok(t, v.action, to_vm, pkts[i])) {
      // allow-encrypted, but it came in clear: refused, nothing committed.
      keep[i] = false;
      drop(pkts[i], Drop::kFwNotEncrypted);
      if (t.record & (fw::kRecordAll | fw::kRecordDefaultRefusals) || v.log)
        fw_refused(t, pf, to_vm, keys[i], v, fw::EventReason::kNotEncrypted, now_ms);
      continue;
    }
    if (allowed(v.action)) {
      const bool record = v.log || (t.record & fw::kRecordAll) != 0;
      // A connection between two workloads of this host counts against the limit of the
      // one that started it only: to the destination's zone it is uncounted, so that a
      // flood stays within its sender's limit instead of filling its target's.
      const bool uncounted = to_vm && fw_local_origin(t, pf, pkts[i], keys[i], lay[i], now_ms);
      if (fw_commit(pf, to_vm, v, pkts[i], keys[i], lay[i], now_ms, static_cast<uint32_t>(now_ms),
                    record, uncounted, fw_via(t, to_vm, keys[i], pkts[i]))) {
        c.add(c.conns, 1);
        if (record) fw_started(t, pf, to_vm, keys[i], v, now_ms);
        continue;
      }
      keep[i] = false;
      drop(pkts[i], Drop::kFwConnLimit);
      if (t.record & (fw::kRecordAll | fw::kRecordDefaultRefusals) || v.log)
        fw_refused(t, pf, to_vm, keys[i], v, fw::EventReason::kConnLimit, now_ms);
      continue;
    }
    c.add(c.conns, 1);
    keep[i] = false;
    const bool record = v.log || (t.record & fw::kRecordAll) ||
                        (v.rule_id == 0 && (t.record & fw::kRecordDefaultRefusals));
    if (v.action == fw::Action::kReject) {
      fw_reject(pf, pkts[i], keys[i], lay[i], to_vm);
      drop(pkts[i], Drop::kFwReject);
      if (record) fw_refused(t, pf, to_vm, keys[i], v, fw::EventReason::kReject, now_ms);
    } else {
      drop(pkts[i], Drop::kFwDeny);
      if (record) fw_refused(t, pf, to_vm, keys[i], v, fw::EventReason::kDeny, now_ms);
    }
  }
}

bool Pmd::fw_commit(const fw::PortFirewall& pf, bool to_vm, const fw::Verdict& v, rte_mbuf* pkt,
                    const flow::FlowKey& key, const flow::PacketLayout& lay, uint64_t now_ms,
                    uint32_t start_ms, bool record, bool uncounted, uint8_t via) {
  ct::Action c;
  c.zone = static_cast<uint16_t>(pf.port_no);
  c.commit = true;
  c.uncounted = uncounted;
  c.set_mark = true;
  c.mark = v.rule_id;
  c.mark_mask = ~0u;
  c.set_label = true;
  verdict_label(pf, to_vm, v, start_ms, record, via).to_label(c.label);
  std::memset(c.label_mask, 0xff, sizeof c.label_mask);
  ct::Md md;
  ct::Packet p{rte_pktmbuf_mtod(pkt, uint8_t*), rte_pktmbuf_data_len(pkt), &key, &lay, &md};
  p.csum_good = detail::csum_good(pkt);
  dp_.fw_conntrack().execute(index_, c, &p, 1, now_ms);
  return md.conn != 0;  // 0: not committed (the zone's limit, or the table is full)
}

bool Pmd::fw_local_origin(const fw::FwTables& t, const fw::PortFirewall& pf, const rte_mbuf* pkt,
                          const flow::FlowKey& key, const flow::PacketLayout& lay,
                          uint64_t now_ms) const {
  const bool v4 = key.eth_type == kEthIpv4Be;
  const uint32_t src_port = v4 ? t.local_port4(key.ipv4_src) : t.local_port6(key.ipv6_src);
  if (src_port == 0 || src_port == pf.port_no || t.port(src_port) == nullptr) return false;
  // The packet's tuple in the source workload's zone, as the tracker keys it.
  ct::ConnKey k;
  if (!conn_key_of(key, lay, pkt, static_cast<uint16_t>(src_port), k)) return false;
  return dp_.fw_conntrack().has_origin(k, now_ms);
}

namespace {

// An event's tuple from a packet's key.
void event_tuple(fw::FwEvent& e, const flow::FlowKey& k) {
  if (k.eth_type == kEthIpv4Be) {
    e.family = 4;
    e.src[0] = k.ipv4_src;
    e.dst[0] = k.ipv4_dst;
  } else {
    e.family = 6;
    std::memcpy(e.src, k.ipv6_src, 16);
    std::memcpy(e.dst, k.ipv6_dst, 16);
  }
  e.proto = k.nw_proto;
  if (k.nw_proto == flow::kIpProtoIcmp || k.nw_proto == flow::kIpProtoIcmpv6) {
    e.icmp_type = static_cast<uint8_t>(flow::ntoh16(k.tp_src));
    e.icmp_code = static_cast<uint8_t>(flow::ntoh16(k.tp_dst));
  } else {
    e.sport = k.tp_src;
    e.dport = k.tp_dst;
  }
}

// An event about a packet's own tuple at a port, decided by v.
fw::FwEvent packet_event(fw::EventKind kind, const fw::FwTables& t, const fw::PortFirewall& pf,
                         bool to_vm, const flow::FlowKey& k, const fw::Verdict& v,
                         uint64_t now_ms) {
  fw::FwEvent e{};
  e.kind = kind;
  e.time_ms = e.start_ms = now_ms;
  event_tuple(e, k);
  e.port_no = pf.port_no;
  e.rule_id = v.rule_id;
  e.generation = static_cast<uint32_t>(t.generation);
  e.action = static_cast<uint8_t>(v.action);
  e.to_vm = to_vm ? 1 : 0;
  return e;
}

}  // namespace

void Pmd::fw_started(const fw::FwTables& t, const fw::PortFirewall& pf, bool to_vm,
                     const flow::FlowKey& k, const fw::Verdict& v, uint64_t now_ms) {
  dp_.fw_event(index_, packet_event(fw::EventKind::kStart, t, pf, to_vm, k, v, now_ms));
}

void Pmd::fw_refused(const fw::FwTables& t, const fw::PortFirewall& pf, bool to_vm,
                     const flow::FlowKey& k, const fw::Verdict& v, fw::EventReason why,
                     uint64_t now_ms) {
  uint32_t suppressed = 0;
  if (!fw_rate_.allow(now_ms, suppressed)) return;
  fw::FwEvent e = packet_event(fw::EventKind::kRefused, t, pf, to_vm, k, v, now_ms);
  e.reason = why;
  e.packets[0] = 1;
  e.suppressed = suppressed;
  dp_.fw_event(index_, e);
}

void Pmd::fw_reject(const fw::PortFirewall& pf, rte_mbuf* pkt, const flow::FlowKey& k,
                    const flow::PacketLayout& lay, bool to_vm) {
  // The answer goes back to the sender, as if from the destination: a TCP RST for TCP,
  // else an ICMP / ICMPv6 "administratively prohibited" quoting the packet.
  if (lay.l3_ofs == flow::kNoOffset || lay.l4_ofs == flow::kNoOffset) return;
  // Never an answer to an answer: not to a RST, not to an ICMP error (two ports rejecting
  // each other's answers would ping-pong forever), nor while answers are being run.
  const uint8_t* l4in = rte_pktmbuf_mtod(pkt, const uint8_t*) + lay.l4_ofs;
  if (k.nw_proto == flow::kIpProtoTcp && lay.l4_len >= 14 && (l4in[13] & 0x04) != 0) return;
  if ((k.nw_proto == flow::kIpProtoIcmp && lay.l4_len >= 1 &&
       (l4in[0] == 3 || l4in[0] == 4 || l4in[0] == 5 || l4in[0] == 11 || l4in[0] == 12)) ||
      (k.nw_proto == flow::kIpProtoIcmpv6 && lay.l4_len >= 1 && l4in[0] < 128))
    return;
  if (!unicast_exchange(k)) return;  // nor to a broadcast or multicast
  if (to_vm && (fw_draining_ || n_fw_answers_ == kBatch)) return;  // the rest: unanswered
  Port* port = dp_.port(pf.port_no);
  rte_mbuf* r = port != nullptr ? rte_pktmbuf_alloc(dp_.pool()) : nullptr;
  if (r == nullptr) return;
  const uint8_t* in = rte_pktmbuf_mtod(pkt, const uint8_t*);
  const bool v4 = k.eth_type == kEthIpv4Be;
  const bool tcp = k.nw_proto == flow::kIpProtoTcp && lay.l4_len >= 20;
  const uint32_t ip_len = v4 ? 20 : 40;
  // ICMP quotes the offending IP packet: as much as fits in the minimum MTU.
  const uint32_t quote =
      tcp ? 0 : std::min<uint32_t>(lay.l3_len, v4 ? 576 - 20 - 8 : 1280 - 40 - 8);
  const uint32_t l4_len = tcp ? 20 : 8 + quote;
  const uint32_t total = 14 + ip_len + l4_len;
  auto* o = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(r, static_cast<uint16_t>(total)));
  if (o == nullptr) {
    rte_pktmbuf_free(r);
    return;
  }
  std::memset(o, 0, total);
  std::memcpy(o, k.eth_src, 6);      // to the VM
  std::memcpy(o + 6, k.eth_dst, 6);  // from where it sent the packet
  std::memcpy(o + 12, &k.eth_type, 2);
  uint8_t* ip = o + 14;
  uint8_t* l4 = ip + ip_len;
  const uint8_t proto = tcp ? flow::kIpProtoTcp : (v4 ? flow::kIpProtoIcmp : flow::kIpProtoIcmpv6);
  if (v4) {
    ip[0] = 0x45;
    flow::store_be16(ip + 2, static_cast<uint16_t>(ip_len + l4_len));
    ip[8] = 64;
    ip[9] = proto;
    std::memcpy(ip + 12, &k.ipv4_dst, 4);
    std::memcpy(ip + 16, &k.ipv4_src, 4);
  } else {
    ip[0] = 0x60;
    flow::store_be16(ip + 4, static_cast<uint16_t>(l4_len));
    ip[6] = proto;
    ip[7] = 64;
    std::memcpy(ip + 8, k.ipv6_dst, 16);
    std::memcpy(ip + 24, k.ipv6_src, 16);
  }
  if (tcp) {
    const uint8_t* th = in + lay.l4_ofs;
    std::memcpy(l4, th + 2, 2);  // ports swapped
    std::memcpy(l4 + 2, th, 2);
    const uint8_t flags = th[13];
    const uint32_t seq = flow::load_be32(th + 4), ack = flow::load_be32(th + 8);
    const uint32_t doff = (th[12] >> 4) * 4u;
    const uint32_t payload = lay.l4_len > doff ? lay.l4_len - doff : 0;
    if (flags & 0x10) {  // ACK set: RST with its acknowledgement as our sequence number
      flow::store_be32(l4 + 4, ack);
      l4[13] = 0x04;
    } else {  // RST|ACK acknowledging everything the segment carried
      flow::store_be32(l4 + 8, seq + payload + ((flags & 0x02) ? 1 : 0) + ((flags & 0x01) ? 1 : 0));
      l4[13] = 0x14;
    }
    l4[12] = 5 << 4;
  } else {
    l4[0] = v4 ? 3 : 1;   // destination unreachable
    l4[1] = v4 ? 13 : 1;  // administratively prohibited
    std::memcpy(l4 + 8, in + lay.l3_ofs, quote);
  }
  uint32_t pseudo = 0;
  if (v4) {
    const uint16_t hc = flow::ipv4_header_checksum(ip, 20);
    std::memcpy(ip + 10, &hc, 2);
    if (tcp)
      pseudo = flow::ipv4_pseudo_sum(k.ipv4_dst, k.ipv4_src, proto, static_cast<uint16_t>(l4_len));
  } else {
    pseudo = flow::ipv6_pseudo_sum(ip + 8, ip + 24, proto, l4_len);
  }
  const uint16_t sum = flow::l4_checksum(pseudo, l4, l4_len);
  std::memcpy(l4 + (tcp ? 16 : 2), &sum, 2);
  if (to_vm) {
    fw_answers_[n_fw_answers_] = r;
    fw_answer_port_[n_fw_answers_++] = pf.port_no;
    return;
  }
  rte_mbuf* one[1] = {r};
  port->tx(index_, one, 1, ctr_.drops[static_cast<size_t>(Drop::kTxFull)]);
}

void Pmd::drain_fw_answers() {
  // Each answer enters the pipeline on the VM's port, past its from-VM stage (depth 1):
  // OVS's rules or the flows switch it back to the sender. One round: an answer that is
  // rejected on its way is not answered again (fw_reject while fw_draining_).
  if (n_fw_answers_ == 0) return;
  fw_draining_ = true;
  {
    rte_mbuf* pkts[kBatch];
    uint32_t ports[kBatch];
    const uint16_t n = n_fw_answers_;
    std::copy_n(fw_answers_, n, pkts);
    std::copy_n(fw_answer_port_, n, ports);
    n_fw_answers_ = 0;
    PacketMd md[kBatch] = {};
    for (uint16_t i = 0; i < n; ++i) md[i].in_port = ports[i];
    ctr_.packets.add(n);
    process(pkts, n, md, 1);
    flush_tx();
  }
  fw_draining_ = false;
}

}  // namespace gl::dp
