// ipf.cpp — see ipf.hpp. Storage is fixed at construction: kIpfMaxNfragsUpperBound
// fragment slots and as many lists (a list always holds at least one fragment, and at
// most max_nfrags <= kIpfMaxNfragsUpperBound fragments are held), a chained hash index of
// list indices, and the expiry FIFO of lists in creation order. A list's fragments form a
// chain sorted by offset; refusing every overlap keeps them disjoint, so the datagram is
// complete exactly when the last fragment has been seen and the data held adds up to its
// end.
#include "dataplane/conntrack/ipf.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "flowtables/bytes.hpp"
#include "flowtables/checksum.hpp"

namespace gl::ct {
namespace {

constexpr uint32_t kNil = UINT32_MAX;
constexpr uint32_t kNoEnd = UINT32_MAX;
constexpr uint32_t kMaxIpLen = 65535;  // IPv4 total length / IPv6 payload length
constexpr uint32_t kIpv6HeaderLen = 40;
constexpr uint32_t kIpv6FragHeaderLen = 8;
constexpr uint32_t kMaxExtHeaders = 8;  // as the packet parser
constexpr uint32_t kBuckets = 8192;     // >= kIpfMaxNfragsUpperBound lists
constexpr uint32_t kReleaseChunk = 64;  // handles collected per lock hold
static_assert(kBuckets >= kIpfMaxNfragsUpperBound && (kBuckets & (kBuckets - 1)) == 0);
// OVS's IPv4 list bound, ceil((65535 - 60) / (min_frag - 60)), at the lowest min_frag.
static_assert((65535 - 60 + (kIpfMinFragLowerBound - 60) - 1) / (kIpfMinFragLowerBound - 60) <=
              kIpfMaxFragsPerList);

constexpr uint8_t kHopByHop = 0, kRouting = 43, kFragment = 44, kAh = 51, kDestOpts = 60;

using flow::load_be16;
using flow::load_be32;
using flow::load_raw16;
using flow::load_raw32;
using flow::store_be16;

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "ipf: %s\n", what);
  std::abort();
}

std::string min_frag_error(bool v6, uint32_t bytes) {
  return "requested minimum fragment size too small; see documentation (" +
         std::string(v6 ? "v6" : "v4") + ": " + std::to_string(bytes) + " < " +
         std::to_string(kIpfMinFragLowerBound) + ")";
}
std::string max_nfrags_error(uint32_t n) {
  return "setting maximum fragments failed (" + std::to_string(n) + " > " +
         std::to_string(kIpfMaxNfragsUpperBound) + ")";
}
std::string timeout_error() {
  return "fragment list timeout must be at least 1 ms";
}

FragParse parse_v4(const uint8_t* p, uint32_t avail, uint32_t l3_ofs, FragInfo& fi) {
  if (avail < 20 || (p[0] >> 4) != 4) return FragParse::kBadHeader;
  const uint32_t ihl = (p[0] & 0x0fu) * 4;
  if (ihl < 20 || ihl > avail) return FragParse::kBadHeader;
  const uint32_t tot = load_be16(p + 2);
  if (tot < ihl || tot > avail) return FragParse::kBadHeader;
  const uint16_t frag = load_be16(p + 6);
  if ((frag & 0x3fff) == 0) return FragParse::kNotFragment;
  if (flow::csum_fold(flow::csum_partial(p, ihl)) != 0xffff) return FragParse::kBadChecksum;
  fi = FragInfo{};
  fi.version = 4;
  fi.proto = p[9];
  fi.more = (frag & 0x2000) != 0;
  fi.id = load_be16(p + 4);
  std::memcpy(fi.src, p + 12, 4);
  std::memcpy(fi.dst, p + 16, 4);
  fi.offset = (frag & 0x1fffu) * 8;
  fi.l3_len = tot;
  fi.unfrag_len = ihl;
  fi.nh_ofs = 9;
  fi.data_ofs = l3_ofs + ihl;
  fi.data_len = tot - ihl;
  return FragParse::kFragment;
}

FragParse parse_v6(const uint8_t* p, uint32_t avail, uint32_t l3_ofs, FragInfo& fi) {
  if (avail < kIpv6HeaderLen || (p[0] >> 4) != 6) return FragParse::kBadHeader;
  const uint32_t end = kIpv6HeaderLen + load_be16(p + 4);
  if (end > avail) return FragParse::kBadHeader;
  uint8_t nh = p[6];
  uint32_t nh_ofs = 6;
  uint32_t q = kIpv6HeaderLen;
  for (uint32_t n = 0;; ++n) {
    if (nh != kHopByHop && nh != kRouting && nh != kDestOpts && nh != kAh && nh != kFragment)
      return FragParse::kNotFragment;  // the upper layer, before any fragment header
    if (n == kMaxExtHeaders || end - q < 8) return FragParse::kBadHeader;
    if (nh == kFragment) break;
    const uint32_t hlen = nh == kAh ? (p[q + 1] + 2u) * 4 : (p[q + 1] + 1u) * 8;
    if (hlen > end - q) return FragParse::kBadHeader;
    nh_ofs = q;
    nh = p[q];
    q += hlen;
  }
  const uint16_t offlg = load_be16(p + q + 2);
  if ((offlg & 0xfff9) == 0) return FragParse::kNotFragment;  // atomic (RFC 6946)
  fi = FragInfo{};
  fi.version = 6;
  fi.proto = p[q];
  fi.more = (offlg & 1) != 0;
  fi.id = load_be32(p + q + 4);
  std::memcpy(fi.src, p + 8, 16);
  std::memcpy(fi.dst, p + 24, 16);
  fi.offset = offlg & 0xfff8u;
  fi.l3_len = end;
  fi.unfrag_len = q;
  fi.nh_ofs = nh_ofs;
  fi.data_ofs = l3_ofs + q + kIpv6FragHeaderLen;
  fi.data_len = end - q - kIpv6FragHeaderLen;
  return FragParse::kFragment;
}

}  // namespace

// ---- types --------------------------------------------------------------------------

struct Ipf::Key {
  uint8_t src[16], dst[16];
  uint32_t id, recirc_id;
  uint16_t zone;
  uint8_t proto;  // IPv4 only
  uint8_t version;
  uint32_t pad;  // zero: the key hashes as 6 whole words
  bool operator==(const Key&) const = default;
};

struct Ipf::Slot {
  void* handle;
  uint8_t* frame;
  uint32_t next;   // the list's next fragment by offset, or the free chain
  uint32_t start;  // data offset, bytes
  uint32_t l3_ofs, data_ofs, data_len, unfrag_len, nh_ofs;
};

struct Ipf::List {
  Key key;
  uint64_t expiration;
  uint32_t hash;
  uint32_t hnext;         // hash chain, or the free chain
  uint32_t eprev, enext;  // expiry FIFO
  uint32_t head;          // fragments sorted by offset
  uint32_t nfrags;
  uint32_t have;     // data bytes held
  uint32_t end;      // the last fragment's data end (kNoEnd until seen)
  uint32_t max_end;  // the highest data end held
  bool first_seen;   // the fragment at offset 0 is held
  bool failed;       // reassembled datagram too long: only expiry frees it (OVS REASS_FAIL)
  bool expiring;     // expire() has begun giving it back
};

struct Ipf::Counters {
  std::atomic<uint64_t> accepted{0}, completed{0}, expired{0}, purged{0};
  std::array<std::atomic<uint64_t>, kIpfDropCount> invalid{};
  std::array<std::atomic<uint64_t>, kIpfPassCount> passed{};
};

void Ipf::lock() const {
  while (lock_.exchange(1, std::memory_order_acquire) != 0)
    while (lock_.load(std::memory_order_relaxed) != 0) __builtin_ia32_pause();
}
void Ipf::unlock() const {
  lock_.store(0, std::memory_order_release);
}

class Ipf::Guard {
 public:
  explicit Guard(const Ipf& i) : ipf_(i) { ipf_.lock(); }
  ~Guard() { ipf_.unlock(); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

 private:
  const Ipf& ipf_;
};

// ---- parsing, config ----------------------------------------------------------------

FragParse parse_fragment(const uint8_t* frame, uint32_t len, uint16_t l3_ofs, FragInfo& fi) {
  if (frame == nullptr || l3_ofs >= len) return FragParse::kBadHeader;
  const uint8_t* p = frame + l3_ofs;
  const uint32_t avail = len - l3_ofs;
  switch (p[0] >> 4) {
    case 4:
      return parse_v4(p, avail, l3_ofs, fi);
    case 6:
      return parse_v6(p, avail, l3_ofs, fi);
    default:
      return FragParse::kBadHeader;
  }
}

std::expected<void, std::string> IpfConfig::validate() const {
  if (v4_min_frag < kIpfMinFragLowerBound)
    return std::unexpected(min_frag_error(false, v4_min_frag));
  if (v6_min_frag < kIpfMinFragLowerBound)
    return std::unexpected(min_frag_error(true, v6_min_frag));
  if (max_nfrags > kIpfMaxNfragsUpperBound) return std::unexpected(max_nfrags_error(max_nfrags));
  if (timeout_ms == 0) return std::unexpected(timeout_error());
  return {};
}

std::string format_ipf_list(const IpfListInfo& l) {
  char src[INET6_ADDRSTRLEN] = {}, dst[INET6_ADDRSTRLEN] = {};
  const int af = l.version == 6 ? AF_INET6 : AF_INET;
  inet_ntop(af, l.src, src, sizeof src);
  inet_ntop(af, l.dst, dst, sizeof dst);
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "(src=%s,dst=%s,recirc_id=%u,ip_id=%u,dl_type=0x%x,zone=%u,nw_proto=%u,"
                "num_fragments=%u,state=%.*s)",
                src, dst, l.recirc_id, l.id, l.version == 6 ? 0x86ddu : 0x0800u, unsigned{l.zone},
                unsigned{l.proto}, l.nfrags, static_cast<int>(l.state.size()), l.state.data());
  return buf;
}

// ---- construction -------------------------------------------------------------------

Ipf::Ipf(const IpfConfig& c, uint64_t seed)
    : seed_(seed != 0 ? seed : (uint64_t{std::random_device{}()} << 32 | std::random_device{}())),
      max_nfrags_(c.max_nfrags),
      timeout_ms_(c.timeout_ms),
      ctr_(std::make_unique<Counters[]>(2)),
      slots_(std::make_unique<Slot[]>(kIpfMaxNfragsUpperBound)),
      lists_(std::make_unique<List[]>(kIpfMaxNfragsUpperBound)),
      buckets_(std::make_unique<uint32_t[]>(kBuckets)),
      bucket_mask_(kBuckets - 1),
      free_slot_(0),
      free_list_(0),
      exp_head_(kNil),
      exp_tail_(kNil) {
  if (!c.validate()) fatal(c.validate().error().c_str());
  enabled_[0].store(c.v4_enabled);
  enabled_[1].store(c.v6_enabled);
  min_frag_[0].store(c.v4_min_frag);
  min_frag_[1].store(c.v6_min_frag);
  for (uint32_t i = 0; i < kIpfMaxNfragsUpperBound; ++i) {
    slots_[i].next = i + 1 < kIpfMaxNfragsUpperBound ? i + 1 : kNil;
    lists_[i].hnext = i + 1 < kIpfMaxNfragsUpperBound ? i + 1 : kNil;
  }
  std::fill_n(buckets_.get(), kBuckets, kNil);
}

Ipf::~Ipf() = default;

// ---- helpers (under the lock) -------------------------------------------------------

uint32_t Ipf::hash(const Key& k) const {
  static_assert(sizeof(Key) == 48);
  uint64_t w[sizeof(Key) / 8];
  std::memcpy(w, &k, sizeof w);
  uint64_t h = seed_;
  for (uint64_t x : w) {
    h = (h ^ x) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  h *= 0xbf58476d1ce4e5b9ull;
  return static_cast<uint32_t>(h >> 32);
}

uint32_t Ipf::find(const Key& k, uint32_t h) const {
  for (uint32_t li = buckets_[h & bucket_mask_]; li != kNil; li = lists_[li].hnext)
    if (lists_[li].hash == h && lists_[li].key == k) return li;
  return kNil;
}

void Ipf::unlink_list(uint32_t li) {
  List& l = lists_[li];
  uint32_t* pp = &buckets_[l.hash & bucket_mask_];
  while (*pp != li) pp = &lists_[*pp].hnext;
  *pp = l.hnext;
  (l.eprev != kNil ? lists_[l.eprev].enext : exp_head_) = l.enext;
  (l.enext != kNil ? lists_[l.enext].eprev : exp_tail_) = l.eprev;
  l.hnext = free_list_;
  free_list_ = li;
  nlists_.fetch_sub(1, std::memory_order_relaxed);
}

uint32_t Ipf::max_list_frags(bool v6) const {
  if (v6) return kIpfMaxFragsPerList;
  const uint32_t min = min_frag_[0].load(std::memory_order_relaxed);
  return std::min(kIpfMaxFragsPerList, (kMaxIpLen - 60 + (min - 60) - 1) / (min - 60));
}

Ipf::Counters& Ipf::ctr(bool v6) const {
  return ctr_[v6 ? 1 : 0];
}

// ---- packet path --------------------------------------------------------------------

AddResult Ipf::add(const FragIn& f, uint64_t now_ms, Completed& out, IpfDrop* why, IpfPass* pass) {
  if (out.scratch.size() < kIpfScratchBytes) fatal("add(): Completed::scratch too small");
  const bool v6 = f.frame != nullptr && f.l3_ofs < f.len && (f.frame[f.l3_ofs] >> 4) == 6;
  Counters& c = ctr(v6);
  const auto refuse = [&](IpfDrop d) {
    c.invalid[static_cast<size_t>(d)].fetch_add(1, std::memory_order_relaxed);
    if (why != nullptr) *why = d;
    return AddResult::kInvalid;
  };
  const auto let_pass = [&](IpfPass p) {
    if (p != IpfPass::kNotFragment)
      c.passed[static_cast<size_t>(p)].fetch_add(1, std::memory_order_relaxed);
    if (pass != nullptr) *pass = p;
    return AddResult::kPass;
  };

  // As OVS: nothing is looked at while both families are off; a family that is off still
  // has its fragments checked (and counted) while the other is on.
  const bool on = enabled_[v6 ? 1 : 0].load(std::memory_order_relaxed);
  if (!on && !enabled_[v6 ? 0 : 1].load(std::memory_order_relaxed))
    return let_pass(IpfPass::kDisabled);

  FragInfo fi;
  switch (parse_fragment(f.frame, f.len, f.l3_ofs, fi)) {
    case FragParse::kFragment:
      break;
    case FragParse::kNotFragment:
      return let_pass(IpfPass::kNotFragment);
    case FragParse::kBadHeader:
      return refuse(IpfDrop::kHeader);
    case FragParse::kBadChecksum:
      return refuse(IpfDrop::kL3Checksum);
  }
  if (f.l3_ofs > kIpfMaxL2Len) return refuse(IpfDrop::kHeader);
  if (fi.more && fi.l3_len < min_frag_[v6 ? 1 : 0].load(std::memory_order_relaxed))
    return refuse(IpfDrop::kTooSmall);
  if (!on) return let_pass(IpfPass::kDisabled);
  const uint32_t start = fi.offset;
  const uint32_t end = start + fi.data_len;
  const uint32_t base = v6 ? fi.unfrag_len - kIpv6HeaderLen : fi.unfrag_len;
  if (fi.data_len == 0 || (fi.more && fi.data_len % 8 != 0) || base + end > kMaxIpLen)
    return refuse(IpfDrop::kLength);

  Key k{};
  std::memcpy(k.src, fi.src, 16);
  std::memcpy(k.dst, fi.dst, 16);
  k.id = fi.id;
  k.recirc_id = f.recirc_id;
  k.zone = f.zone;
  k.proto = v6 ? 0 : fi.proto;
  k.version = fi.version;
  const uint32_t h = hash(k);

  lock();
  if (nfrag_.load(std::memory_order_relaxed) >= max_nfrags_.load(std::memory_order_relaxed)) {
    unlock();
    return let_pass(IpfPass::kFull);
  }
  uint32_t li = find(k, h);
  uint32_t prev = kNil;  // the fragment to link after (kNil: at the head)
  if (li != kNil) {
    const List& l = lists_[li];
    if (l.failed || l.expiring) {
      unlock();
      return let_pass(IpfPass::kListDone);
    }
    if (l.nfrags >= max_list_frags(v6)) {
      unlock();
      return let_pass(IpfPass::kListFull);
    }
    uint32_t cur = l.head;
    while (cur != kNil && slots_[cur].start < start) {
      prev = cur;
      cur = slots_[cur].next;
    }
    const bool overlap = (prev != kNil && slots_[prev].start + slots_[prev].data_len > start) ||
                         (cur != kNil && slots_[cur].start < end);
    const bool bad_end =
        (l.end != kNoEnd && (end > l.end || !fi.more)) || (!fi.more && end < l.max_end);
    if (overlap || bad_end) {
      unlock();
      return refuse(overlap ? IpfDrop::kOverlap : IpfDrop::kLength);
    }
  } else {
    li = free_list_;  // never empty: lists <= fragments held < max_nfrags <= the pool
    List& l = lists_[li];
    free_list_ = l.hnext;
    l.key = k;
    l.hash = h;
    l.hnext = buckets_[h & bucket_mask_];
    buckets_[h & bucket_mask_] = li;
    l.expiration = now_ms + timeout_ms_.load(std::memory_order_relaxed);
    l.eprev = exp_tail_;
    l.enext = kNil;
    (exp_tail_ != kNil ? lists_[exp_tail_].enext : exp_head_) = li;
    exp_tail_ = li;
    l.head = kNil;
    l.nfrags = l.have = l.max_end = 0;
    l.end = kNoEnd;
    l.first_seen = l.failed = l.expiring = false;
    nlists_.fetch_add(1, std::memory_order_relaxed);
  }

  List& l = lists_[li];
  const uint32_t si = free_slot_;
  Slot& s = slots_[si];
  free_slot_ = s.next;
  s = Slot{f.handle,    f.frame,     kNil,          start,    f.l3_ofs,
           fi.data_ofs, fi.data_len, fi.unfrag_len, fi.nh_ofs};
  uint32_t& link = prev != kNil ? slots_[prev].next : l.head;
  s.next = link;
  link = si;
  ++l.nfrags;
  l.have += fi.data_len;
  l.max_end = std::max(l.max_end, end);
  if (!fi.more) l.end = end;
  if (start == 0) l.first_seen = true;
  nfrag_.fetch_add(1, std::memory_order_relaxed);
  c.accepted.fetch_add(1, std::memory_order_relaxed);

  if (l.end == kNoEnd || l.have != l.end) {
    unlock();
    return AddResult::kHeld;
  }
  // Complete. The head is the fragment at offset 0 (its headers lead the datagram).
  const Slot& first = slots_[l.head];
  const uint32_t unfrag_len = first.unfrag_len;
  const uint32_t nh_ofs = first.nh_ofs;
  if ((v6 ? unfrag_len - kIpv6HeaderLen : unfrag_len) + l.end > kMaxIpLen) {
    l.failed = true;  // its headers are longer than the fragment that passed the check
    unlock();
    return AddResult::kHeld;
  }
  const uint32_t total = l.end;
  uint32_t n = 0;
  for (uint32_t cur = l.head; cur != kNil;) {
    Slot& x = slots_[cur];
    out.frags[n++] = CompletedFrag{x.handle, x.frame, x.l3_ofs, x.data_ofs, x.data_len};
    const uint32_t next = x.next;
    x.next = free_slot_;
    free_slot_ = cur;
    cur = next;
  }
  unlink_list(li);
  nfrag_.fetch_sub(n, std::memory_order_relaxed);
  c.completed.fetch_add(n, std::memory_order_relaxed);
  unlock();

  // The datagram: the first fragment's L2 and IP headers (IPv6: up to its fragment
  // header), then every fragment's data in order.
  const CompletedFrag& f0 = out.frags[0];
  uint8_t* b = out.scratch.data();
  const uint32_t hdr = f0.l3_ofs + unfrag_len;
  std::memcpy(b, f0.frame, hdr);
  uint32_t pos = hdr;
  for (uint32_t i = 0; i < n; ++i) {
    std::memcpy(b + pos, out.frags[i].frame + out.frags[i].data_ofs, out.frags[i].data_len);
    pos += out.frags[i].data_len;
  }
  uint8_t* ip = b + f0.l3_ofs;
  if (v6) {
    store_be16(ip + 4, unfrag_len - kIpv6HeaderLen + total);
    ip[nh_ofs] = f0.frame[f0.l3_ofs + unfrag_len];  // the fragment header's next header
  } else {
    store_be16(ip + 2, unfrag_len + total);
    store_be16(ip + 6, load_be16(ip + 6) & ~0x2000u);  // MF off; the offset is 0, DF kept
    ip[10] = ip[11] = 0;
    const uint16_t csum = flow::ipv4_header_checksum(ip, unfrag_len);
    std::memcpy(ip + 10, &csum, 2);
  }
  out.pkt = b;
  out.len = pos;
  out.l3_ofs = f0.l3_ofs;
  out.data_ofs = hdr;
  out.version = v6 ? 6 : 4;
  out.n = n;
  return AddResult::kComplete;
}

void Ipf::apply(const Completed& c, const uint8_t* reassembled) {
  const uint8_t* rip = reassembled + c.l3_ofs;
  for (uint32_t i = 0; i < c.n; ++i) {
    const CompletedFrag& f = c.frags[i];
    uint8_t* ip = f.frame + f.l3_ofs;
    if (c.version == 6) {
      std::memcpy(ip + 8, rip + 8, 32);  // source and destination
    } else {
      for (uint32_t ofs : {12u, 16u}) {
        const uint32_t old_addr = load_raw32(ip + ofs), new_addr = load_raw32(rip + ofs);
        if (old_addr == new_addr) continue;
        const uint16_t csum = flow::csum_replace32(load_raw16(ip + 10), old_addr, new_addr);
        std::memcpy(ip + 10, &csum, 2);
        std::memcpy(ip + ofs, &new_addr, 4);
      }
    }
  }
  // The first fragment's data is the head of the reassembled data: the L4 header as
  // conntrack left it (NAT'd ports, checksum; an ICMP error's quote), as OVS copies it.
  if (c.n != 0)
    std::memcpy(c.frags[0].frame + c.frags[0].data_ofs, reassembled + c.data_ofs,
                c.frags[0].data_len);
}

uint32_t Ipf::expire_impl(uint64_t now_ms, uint32_t max_handles, ReleaseFn fn, void* ctx) {
  uint32_t given = 0;
  while (given < max_handles) {
    void* handles[kReleaseChunk];
    IpfRelease whys[kReleaseChunk];
    uint32_t n = 0;
    {
      Guard g(*this);
      while (n < kReleaseChunk && given + n < max_handles && exp_head_ != kNil) {
        const uint32_t li = exp_head_;
        List& l = lists_[li];
        if (now_ms <= l.expiration) break;
        const bool purge = now_ms >= l.expiration + kIpfPurgeDelayMs;
        Counters& c = ctr(l.key.version == 6);
        l.expiring = true;
        while (n < kReleaseChunk && given + n < max_handles && l.head != kNil) {
          handles[n] = pop_frag(l);
          whys[n++] = purge ? IpfRelease::kPurged : IpfRelease::kExpired;
          (purge ? c.purged : c.expired).fetch_add(1, std::memory_order_relaxed);
        }
        if (l.head == kNil) unlink_list(li);
      }
    }
    for (uint32_t i = 0; i < n; ++i) fn(ctx, handles[i], whys[i]);
    given += n;
    if (n < kReleaseChunk) break;  // nothing more expired, or the budget is spent
  }
  return given;
}

void* Ipf::pop_frag(List& l) {
  Slot& s = slots_[l.head];
  void* h = s.handle;
  const uint32_t next = s.next;
  s.next = free_slot_;
  free_slot_ = l.head;
  l.head = next;
  --l.nfrags;
  nfrag_.fetch_sub(1, std::memory_order_relaxed);
  return h;
}

uint32_t Ipf::drain_impl(ReleaseFn fn, void* ctx) {
  uint32_t given = 0;
  for (;;) {
    void* handles[kReleaseChunk];
    uint32_t n = 0;
    {
      Guard g(*this);
      while (n < kReleaseChunk && exp_head_ != kNil) {
        const uint32_t li = exp_head_;
        List& l = lists_[li];
        l.expiring = true;
        while (n < kReleaseChunk && l.head != kNil) {
          handles[n++] = pop_frag(l);
        }
        if (l.head == kNil) unlink_list(li);
      }
    }
    for (uint32_t i = 0; i < n; ++i) fn(ctx, handles[i], IpfRelease::kPurged);
    given += n;
    if (n == 0) return given;
  }
}

// ---- operator -----------------------------------------------------------------------

std::expected<void, std::string> Ipf::set_enabled(IpfFamily fam, bool on) {
  enabled_[fam == IpfFamily::kV6 ? 1 : 0].store(on, std::memory_order_relaxed);
  return {};
}

std::expected<void, std::string> Ipf::set_min_frag(IpfFamily fam, uint32_t bytes) {
  const bool v6 = fam == IpfFamily::kV6;
  if (bytes < kIpfMinFragLowerBound) return std::unexpected(min_frag_error(v6, bytes));
  min_frag_[v6 ? 1 : 0].store(bytes, std::memory_order_relaxed);
  return {};
}

std::expected<void, std::string> Ipf::set_max_nfrags(uint32_t n) {
  if (n > kIpfMaxNfragsUpperBound) return std::unexpected(max_nfrags_error(n));
  max_nfrags_.store(n, std::memory_order_relaxed);
  return {};
}

std::expected<void, std::string> Ipf::set_timeout_ms(uint32_t ms) {
  if (ms == 0) return std::unexpected(timeout_error());
  timeout_ms_.store(ms, std::memory_order_relaxed);
  return {};
}

IpfConfig Ipf::config() const {
  IpfConfig c;
  c.v4_enabled = enabled_[0].load(std::memory_order_relaxed);
  c.v6_enabled = enabled_[1].load(std::memory_order_relaxed);
  c.v4_min_frag = min_frag_[0].load(std::memory_order_relaxed);
  c.v6_min_frag = min_frag_[1].load(std::memory_order_relaxed);
  c.max_nfrags = max_nfrags_.load(std::memory_order_relaxed);
  c.timeout_ms = timeout_ms_.load(std::memory_order_relaxed);
  return c;
}

IpfStatus Ipf::status() const {
  IpfStatus s;
  for (int v = 0; v < 2; ++v) {
    const Counters& c = ctr_[v];
    IpfFamilyStatus& o = v == 0 ? s.v4 : s.v6;
    o.enabled = enabled_[v].load(std::memory_order_relaxed);
    o.min_frag_size = min_frag_[v].load(std::memory_order_relaxed);
    o.accepted = c.accepted.load(std::memory_order_relaxed);
    o.completed_sent = c.completed.load(std::memory_order_relaxed);
    o.expired_sent = c.expired.load(std::memory_order_relaxed);
    o.purged = c.purged.load(std::memory_order_relaxed);
    for (size_t i = 0; i < kIpfDropCount; ++i)
      o.invalid[i] = c.invalid[i].load(std::memory_order_relaxed);
    for (size_t i = 0; i < kIpfPassCount; ++i)
      o.passed[i] = c.passed[i].load(std::memory_order_relaxed);
    o.too_small = o.invalid[static_cast<size_t>(IpfDrop::kTooSmall)];
    o.overlap = o.invalid[static_cast<size_t>(IpfDrop::kOverlap)];
  }
  s.nfrag = nfrag_.load(std::memory_order_relaxed);
  s.nfrag_max = max_nfrags_.load(std::memory_order_relaxed);
  s.nlists = nlists_.load(std::memory_order_relaxed);
  return s;
}

std::vector<IpfListInfo> Ipf::dump() const {
  std::vector<IpfListInfo> v;
  v.reserve(kIpfMaxNfragsUpperBound);  // never grows under the lock
  Guard g(*this);
  for (uint32_t li = exp_head_; li != kNil; li = lists_[li].enext) {
    const List& l = lists_[li];
    IpfListInfo x{};
    x.version = l.key.version;
    std::memcpy(x.src, l.key.src, 16);
    std::memcpy(x.dst, l.key.dst, 16);
    x.recirc_id = l.key.recirc_id;
    x.id = l.key.id;
    x.zone = l.key.zone;
    x.proto = l.key.proto;
    x.nfrags = l.nfrags;
    x.state = l.failed                          ? "reassemble fail"
              : l.first_seen && l.end != kNoEnd ? "first/last frag"
              : l.first_seen                    ? "first frag"
              : l.end != kNoEnd                 ? "last frag"
                                                : "other frag";
    v.push_back(x);
  }
  return v;
}

}  // namespace gl::ct
