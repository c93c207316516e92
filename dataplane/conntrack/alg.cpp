// alg.cpp — the FTP and TFTP helpers: the expectation table, FTP control message parsing
// (PORT, 227, EPRT, 229), expectations, and with NAT the payload address rewrite and the
// TCP sequence skew. Semantics are OVS 3.1's userspace conntrack (lib/conntrack.c
// handle_ftp_ctl, process_ftp_ctl_v4/v6, handle_tftp_ctl, expectation_*); DESIGN.md "ALGs".
#include "dataplane/conntrack/alg.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "dataplane/conntrack/conntrack.hpp"
#include "flowtables/bytes.hpp"
#include "flowtables/checksum.hpp"

namespace gl::ct {

// ---- the expectation table -------------------------------------------------------------

Expectations::Expectations()
    : pool_(std::make_unique<Expectation[]>(kCapacity)),
      parent_(std::make_unique<uint32_t[]>(kCapacity)),
      next_(std::make_unique<uint32_t[]>(kCapacity)),
      head_(std::make_unique<uint32_t[]>(kBuckets)) {
  for (uint32_t i = 0; i < kBuckets; ++i) head_[i] = kNil;
  for (uint32_t i = 0; i < kCapacity; ++i) {
    parent_[i] = 0;
    next_[i] = i + 1 < kCapacity ? i + 1 : kNil;
  }
  free_ = 0;
}

uint32_t Expectations::bucket(const ConnKey& k) {
  const uint64_t h = ConnTable::hash(k);
  return static_cast<uint32_t>(h ^ (h >> 32)) & (kBuckets - 1);
}

uint32_t Expectations::find_locked(const ConnKey& k, uint32_t b) const {
  for (uint32_t i = head_[b]; i != kNil; i = next_[i])
    if (pool_[i].key == k) return i;
  return kNil;
}

bool Expectations::add(const Expectation& e, const std::atomic<uint8_t>& parent_live) {
  const uint32_t b = bucket(e.key);
  lock();
  bool ok = true;
  if (parent_live.load(std::memory_order_acquire) == 0) {
    ok = false;
  } else if (find_locked(e.key, b) == kNil) {
    uint32_t mine = 0;
    if (free_ != kNil)
      for (uint32_t i = 0; i < kCapacity && mine < kPerParent; ++i) mine += parent_[i] == e.parent;
    if (free_ == kNil || mine >= kPerParent) {
      ok = false;
      refused_.fetch_add(1, std::memory_order_relaxed);
    } else {
      const uint32_t i = free_;
      free_ = next_[i];
      pool_[i] = e;
      parent_[i] = e.parent;
      next_[i] = head_[b];
      head_[b] = i;
      live_.fetch_add(1, std::memory_order_relaxed);
      created_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  unlock();
  return ok;
}

bool Expectations::find(const ConnKey& k, Expectation& out) const {
  ConnKey w = k;
  w.sport = 0;
  const uint32_t b = bucket(w);
  lock();
  const uint32_t i = find_locked(w, b);
  if (i != kNil) out = pool_[i];
  unlock();
  return i != kNil;
}

uint32_t Expectations::remove_parent(uint32_t parent) {
  uint32_t n = 0;
  lock();
  for (uint32_t i = 0; i < kCapacity; ++i) {
    if (parent_[i] != parent) continue;
    const uint32_t b = bucket(pool_[i].key);
    for (uint32_t* at = &head_[b]; *at != kNil; at = &next_[*at]) {
      if (*at == i) {
        *at = next_[i];
        break;
      }
    }
    parent_[i] = 0;
    next_[i] = free_;
    free_ = i;
    ++n;
  }
  live_.fetch_sub(n, std::memory_order_relaxed);
  unlock();
  return n;
}

// ---- FTP control messages --------------------------------------------------------------

namespace {

constexpr size_t kLargestMsg = 128;  // OVS LARGEST_FTP_MSG_OF_INTEREST

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_xdigit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
bool starts_with_ci(std::string_view s, std::string_view p) {
  if (s.size() < p.size()) return false;
  for (size_t i = 0; i < p.size(); ++i)
    if (lower(s[i]) != lower(p[i])) return false;
  return true;
}
bool contains_ci(std::string_view s, std::string_view p) {
  for (size_t i = 0; i + p.size() <= s.size(); ++i)
    if (starts_with_ci(s.substr(i), p)) return true;
  return false;
}

// The message as OVS reads it: the payload's first min(len, 128) - 1 bytes, up to a NUL
// (its strlcpy into a 128-byte buffer).
std::string_view ftp_msg(const uint8_t* payload, uint32_t len) {
  const size_t n = len == 0 ? 0 : std::min<size_t>(len, kLargestMsg) - 1;
  const char* s = reinterpret_cast<const char*>(payload);
  return std::string_view(s, strnlen(s, n));
}

bool is_interest(std::string_view msg, uint8_t family) {
  if (family == 6) return starts_with_ci(msg, "EPRT") || contains_ci(msg, "EXTENDED PASSIVE");
  return starts_with_ci(msg, "PORT") || starts_with_ci(msg, "227");
}

// A decimal number of at most `max_digits` digits at s[i] (i advanced), at most `max`.
bool number(std::string_view s, size_t& i, size_t max_digits, uint32_t max, uint32_t& v) {
  size_t n = 0;
  v = 0;
  while (i < s.size() && is_digit(s[i])) {
    if (++n > max_digits) return false;
    v = v * 10 + static_cast<uint32_t>(s[i] - '0');
    ++i;
  }
  return n != 0 && v <= max;
}

enum class Mode : uint8_t { kActive, kPassive };

// What a PORT / 227 / EPRT / 229 message announces. addr_ofs/addr_len: where the address
// sits in the payload (for the NAT rewrite; 0 length: nothing to rewrite).
struct Announce {
  Mode mode;
  uint16_t port;  // host order
  uint32_t addr[4];
  size_t addr_ofs, addr_len;
};

// IPv4: "PORT h1,h2,h3,h4,p1,p2" / "227 ... (h1,h2,h3,h4,p1,p2)". As OVS: after the
// command, the first space, then the first digit; four dotted-decimal octets (no leading
// zeros, as inet_pton), then two numbers of at most 255.
bool parse_v4(std::string_view m, Announce& an) {
  size_t i;
  if (starts_with_ci(m, "PORT")) {
    an.mode = Mode::kActive;
    i = 4;
  } else {
    an.mode = Mode::kPassive;
    i = 3;
  }
  i = m.find(' ', i);
  if (i == std::string_view::npos) return false;
  while (i < m.size() && !is_digit(m[i])) ++i;
  if (i == m.size()) return false;
  an.addr_ofs = i;
  uint8_t b[4];
  for (int k = 0; k < 4; ++k) {
    const size_t start = i;
    uint32_t v;
    if (!number(m, i, 3, 255, v) || (i - start > 1 && m[start] == '0')) return false;
    if (i >= m.size() || m[i] != ',') return false;
    b[k] = static_cast<uint8_t>(v);
    if (k == 3) an.addr_len = i - an.addr_ofs;
    ++i;
  }
  uint32_t hi, lo;
  if (!number(m, i, 4, 255, hi)) return false;
  if (i >= m.size() || m[i] != ',') return false;
  ++i;
  if (!number(m, i, 10, 255, lo)) return false;
  std::memset(an.addr, 0, sizeof an.addr);
  std::memcpy(&an.addr[0], b, 4);
  an.port = static_cast<uint16_t>(hi << 8 | lo);
  return true;
}

// IPv6: "EPRT |2|addr|port|" (active) / "229 ... (|||port|)" (passive; no address).
bool parse_v6(std::string_view m, Announce& an) {
  size_t i;
  std::memset(an.addr, 0, sizeof an.addr);
  an.addr_ofs = an.addr_len = 0;
  if (starts_with_ci(m, "EPRT")) {
    an.mode = Mode::kActive;
    i = 4;
    while (i < m.size() && !is_digit(m[i])) ++i;
    if (i >= m.size() || m[i] != '2' || (i + 1 < m.size() && is_digit(m[i + 1]))) return false;
    i += 2;  // "2" and the delimiter
    if (i > m.size()) return false;
    const size_t start = i;
    while (i < m.size() && (is_xdigit(m[i]) || m[i] == ':' || m[i] == '.')) ++i;
    if (i - start >= INET6_ADDRSTRLEN) return false;
    char text[INET6_ADDRSTRLEN] = {};
    std::memcpy(text, m.data() + start, i - start);
    if (inet_pton(AF_INET6, text, an.addr) != 1) return false;
    an.addr_ofs = start;
    an.addr_len = i - start;
    ++i;  // the delimiter
  } else {
    an.mode = Mode::kPassive;
    i = m.find('(');
    if (i == std::string_view::npos) i = m.size();
    while (i < m.size() && !is_digit(m[i])) ++i;
    if (i >= m.size()) return false;
  }
  uint32_t v;
  if (!number(m, i, 6, 65535, v)) return false;
  an.port = static_cast<uint16_t>(v);
  return true;
}

// Moves the TCP sequence (off 4) or acknowledgement (off 8) number of the segment at l4
// by `delta`, updating the checksum incrementally.
void adjust(uint8_t* l4, int off, int32_t delta) {
  uint32_t old_be, new_be;
  std::memcpy(&old_be, l4 + off, 4);
  flow::store_be32(l4 + off, flow::load_be32(l4 + off) + static_cast<uint32_t>(delta));
  std::memcpy(&new_be, l4 + off, 4);
  uint16_t c;
  std::memcpy(&c, l4 + 16, 2);
  c = flow::csum_replace32(c, old_be, new_be);
  std::memcpy(l4 + 16, &c, 2);
}

}  // namespace

// ---- Conntrack's ALG hooks --------------------------------------------------------------

bool Conntrack::parent_key(const Conn& c, ConnKey& out) const {
  const Conn& pc = table_.conn(c.master);
  if (c.master == 0 || pc.live.load(std::memory_order_acquire) == 0) return false;
  out = pc.key[0];
  return parent_check(out) == c.seq_adj;
}

void Conntrack::alg_pre(Conn& c, bool reply, Packet& p, uint32_t& ack) {
  const flow::PacketLayout& lay = *p.lay;
  if (c.key[0].proto != flow::kIpProtoTcp || lay.l4_ofs == flow::kNoOffset) return;
  c.acquire();
  const auto skew = static_cast<int32_t>(c.seq_adj);
  const bool skew_reply = (c.flags_now() & kConnSkewReply) != 0;
  c.release();
  if (skew == 0 || reply == skew_reply) return;
  uint8_t* l4 = p.frame + lay.l4_ofs;
  const uint32_t thl = (l4[12] >> 4) * 4u;
  if (thl > lay.l4_len) return;
  // Control messages of interest are adjusted after the state machine (OVS: their
  // handle_ftp_ctl runs from handle_alg_ctl only).
  const uint8_t family = c.key[0].family;
  if (is_interest(ftp_msg(l4 + thl, lay.l4_len - thl), family)) return;
  adjust(l4, 8, -skew);
  ack -= static_cast<uint32_t>(skew);
  p.rewritten = true;
}

void Conntrack::alg_ctl(Conn& c, bool reply, bool nat, Packet& p) {
  const flow::PacketLayout& lay = *p.lay;
  if (lay.l4_ofs == flow::kNoOffset || lay.l3_ofs == flow::kNoOffset) return;
  uint8_t* l3 = p.frame + lay.l3_ofs;
  uint8_t* l4 = p.frame + lay.l4_ofs;
  const ConnKey& k0 = c.key[0];
  const ConnKey& k1 = c.key[1];
  const bool dnat = (c.flags_now() & kConnDnat) != 0;
  // OVS expectation_create: the data connection's originator and where its NAT goes,
  // from the direction of the packet that announced it.
  auto expect = [&](uint16_t dst_port_be) {
    Expectation e;
    std::memset(&e.key, 0, sizeof e.key);
    e.key.family = k0.family;
    e.key.proto = k0.proto;
    e.key.zone = k0.zone;
    e.key.dport = dst_port_be;
    if (reply) {
      std::memcpy(e.key.src, k0.src, 16);
      std::memcpy(e.key.dst, k0.dst, 16);
      e.nat_rpl_dst = !dnat;
      std::memcpy(e.nat_addr, dnat ? k1.src : k1.dst, 16);
    } else {
      std::memcpy(e.key.src, k1.src, 16);
      std::memcpy(e.key.dst, k1.dst, 16);
      e.nat_rpl_dst = dnat;
      std::memcpy(e.nat_addr, dnat ? k0.dst : k0.src, 16);
    }
    e.parent_key = k0;
    e.parent = static_cast<uint32_t>(&c - &table_.conn(0));
    e.mark = c.mark;
    std::memcpy(e.label, c.label, 16);
    expect_.add(e, c.live);
  };
  c.acquire();  // as OVS: the control connection's lock around its helper
  if ((c.flags_now() & kConnAlgTftp) != 0) {
    // Every request to port 69: the server answers from a new port to the client's.
    if (k0.proto == 17 && flow::load_be16(l4 + 2) == 69) expect(k0.sport);
    c.release();
    return;
  }
  if (k0.proto != flow::kIpProtoTcp ||
      !(flow::load_be16(l4) == 21 || flow::load_be16(l4 + 2) == 21)) {  // FTP control packets only
    c.release();
    return;
  }
  uint32_t l4_len = lay.l4_len;
  const uint32_t thl = (l4[12] >> 4) * 4u;
  if (thl < 20 || thl > l4_len) {
    c.release();
    return;
  }
  uint8_t* payload = l4 + thl;
  const uint8_t family = k0.family;
  const std::string_view msg = ftp_msg(payload, l4_len - thl);
  const auto old_skew = static_cast<int32_t>(c.seq_adj);
  const bool skew_reply = (c.flags_now() & kConnSkewReply) != 0;
  int32_t delta = 0;
  bool changed = false;
  if (is_interest(msg, family)) {
    Announce an{};
    const bool ok = family == 4 ? parse_v4(msg, an) : parse_v6(msg, an);
    // The replacement address, and the address the message may carry (OVS refuses any
    // third address: "most servers will block this exploit").
    uint32_t rep[4], other[4];
    if (an.mode == Mode::kActive) {
      std::memcpy(rep, k1.dst, 16);
      std::memcpy(other, k0.src, 16);
    } else {
      std::memcpy(rep, k0.dst, 16);
      std::memcpy(other, k1.src, 16);
    }
    const bool addr_ok = !ok || an.addr_len == 0 || std::memcmp(an.addr, rep, 16) == 0 ||
                         std::memcmp(an.addr, other, 16) == 0;
    if (!ok || !addr_ok) {
      p.md->state |= flow::kCsTracked | flow::kCsInvalid;  // OVS: "Invalid FTP control"
      c.release();
      return;
    }
    expect(flow::hton16(an.port));
    if (nat && an.addr_len != 0) {
      // The address as the other side must see it: IPv4 dotted with commas, IPv6 text.
      char text[INET6_ADDRSTRLEN] = {};
      inet_ntop(family == 4 ? AF_INET : AF_INET6, rep, text, sizeof text);
      if (family == 4)
        for (char* t = text; *t != 0; ++t)
          if (*t == '.') *t = ',';
      const size_t rep_len = strlen(text);
      delta = static_cast<int32_t>(rep_len) - static_cast<int32_t>(an.addr_len);
      uint8_t* at = payload + an.addr_ofs;
      const uint8_t* end = p.frame + p.len;
      if (delta > 0 && static_cast<uint32_t>(delta) > p.room) {
        delta = 0;  // no room to grow: left as it is (OVS: "Unsupported effective MTU")
      } else {
        std::memmove(at + rep_len, at + an.addr_len, static_cast<size_t>(end - at) - an.addr_len);
        std::memcpy(at, text, rep_len);
        p.len = static_cast<uint32_t>(static_cast<int32_t>(p.len) + delta);
        l4_len = static_cast<uint32_t>(static_cast<int32_t>(l4_len) + delta);
        changed = true;
        if (family == 4) {
          const uint16_t tot = static_cast<uint16_t>(flow::load_be16(l3 + 2) + delta);
          const uint16_t old_be = flow::hton16(flow::load_be16(l3 + 2));
          const uint16_t new_be = flow::hton16(tot);
          uint16_t ipc;
          std::memcpy(&ipc, l3 + 10, 2);
          ipc = flow::csum_replace16(ipc, old_be, new_be);
          std::memcpy(l3 + 10, &ipc, 2);
          std::memcpy(l3 + 2, &new_be, 2);
        } else {
          const uint16_t plen =
              flow::hton16(static_cast<uint16_t>(flow::load_be16(l3 + 4) + delta));
          std::memcpy(l3 + 4, &plen, 2);
        }
      }
    }
    // The skew so far, on this message too (OVS: after the state machine for both
    // directions of an interesting message).
    if (nat && old_skew != 0) {
      if (reply != skew_reply) {
        flow::store_be32(l4 + 8, flow::load_be32(l4 + 8) - static_cast<uint32_t>(old_skew));
      } else {
        flow::store_be32(l4 + 4, flow::load_be32(l4 + 4) + static_cast<uint32_t>(old_skew));
      }
      changed = true;
    }
    if (changed) {  // the payload moved: the checksum again, in full
      l4[16] = l4[17] = 0;
      const uint32_t sum =
          family == 4 ? flow::ipv4_pseudo_sum(flow::load_raw32(l3 + 12), flow::load_raw32(l3 + 16),
                                              flow::kIpProtoTcp, static_cast<uint16_t>(l4_len))
                      : flow::ipv6_pseudo_sum(l3 + 8, l3 + 24, flow::kIpProtoTcp, l4_len);
      const uint16_t cs = flow::l4_checksum(sum, l4, l4_len);
      std::memcpy(l4 + 16, &cs, 2);
      p.rewritten = true;
    }
    if (delta != 0) {
      c.seq_adj = static_cast<uint32_t>(old_skew + delta);
      c.flags_store(static_cast<uint8_t>(reply ? (c.flags_now() | kConnSkewReply)
                                               : (c.flags_now() & ~kConnSkewReply)));
    }
  } else if (nat && old_skew != 0 && reply == skew_reply) {
    // Later segments of the skewed direction: seq moves by the skew (after the state
    // machine saw the sender's numbers). The other direction's ack moved in alg_pre().
    adjust(l4, 4, old_skew);
    p.rewritten = true;
  }
  c.release();
}

}  // namespace gl::ct
