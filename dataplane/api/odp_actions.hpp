// odp_actions.hpp — datapath actions in the OVS datapath (ODP) netlink encoding.
//
// Purpose: actions travel between ovs-vswitchd/dpif-gl, gl-dpctl and gldp as one byte
// blob in exactly the Linux OVS datapath encoding (<linux/openvswitch.h>): a sequence
// of attributes {u16 len incl. the 4-byte header, u16 type} + payload, each padded to
// 4 bytes. dpif-gl therefore passes OVS's own action buffers through unchanged.
// This header offers the writer (ActionWriter), the validator every flow put runs
// (validate_actions), and the allocation-free reader the executor uses per packet
// (ActionList + decode_* helpers).
//
// Supported: OUTPUT, USERSPACE (pid, userdata, actions flag), SET / SET_MASKED of
// ETHERNET, IPV4, IPV6, TCP, UDP, SCTP, SKB_MARK, PRIORITY, PUSH_VLAN, POP_VLAN,
// SAMPLE, RECIRC, HASH, CLONE, CT (commit, force_commit, zone, mark, labels, helper
// ftp/tftp, nat, eventmask, timeout; decoded once per flow put by decode_ct), CT_CLEAR,
// and Goldilocks' ESP_ENCRYPT / ESP_DECRYPT (see below). Everything else (MPLS, TRUNC,
// METER, ...) is rejected by validate_actions with a message naming the action.
//
// Thread-safety: everything here is reentrant; ActionWriter is a plain value type.
// Complexity: validate_actions is O(blob size); ActionList iteration is O(1) per
// attribute, allocation-free, and assumes a blob that passed validate_actions (it still
// stops, rather than overruns, on a malformed header).
#pragma once

#include <linux/openvswitch.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gl::odp {

// Goldilocks' own datapath actions (ESP), outside every range OVS uses: the kernel's
// OVS_ACTION_ATTR_* end below 32, OVS's userspace-only ones (tunnel_push, tunnel_pop,
// lb_output, ...) follow right after them, and netlink reserves the top two bits of the
// type (NLA_F_NESTED 0x8000, NLA_F_NET_BYTEORDER 0x4000, masked off by nl_attr_type()),
// so 0x3f00.. stays below both flags and far above anything OVS will number.
//   esp_encrypt(group=N): u32 group id. Tunnel-mode ESP of the whole Ethernet frame
//     (next header 143) with this context's SA of group N, then the group's underlay
//     Ethernet header in front. Must be the first action, followed by outputs only.
//   esp_decrypt: no payload. Strips the Ethernet header, decrypts with the inbound SA of
//     the SPI; the inner Ethernet frame continues. Must be the first action, followed by
//     exactly one recirc(N) (the decrypted frame is recirculated with recirc_id N).
inline constexpr uint16_t kActionEspEncrypt = 0x3f00;
inline constexpr uint16_t kActionEspDecrypt = 0x3f01;

// OVS_HASH_ALG_SYM_L4 is newer than some UAPI headers; the value is fixed by the ABI.
inline constexpr uint32_t kHashAlgL4 = 0;     // OVS_HASH_ALG_L4
inline constexpr uint32_t kHashAlgSymL4 = 1;  // OVS_HASH_ALG_SYM_L4

// Probability value meaning "always" for SAMPLE.
inline constexpr uint32_t kSampleAlways = UINT32_MAX;

// OVS_CT_ATTR_EVENTMASK (Linux 4.12) and OVS_CT_ATTR_TIMEOUT (Linux 5.3) are newer than
// some UAPI headers; the numbers are fixed by the ABI (OVS's include/linux/openvswitch.h
// and current kernels agree), so they are spelled out here.
inline constexpr uint16_t kCtAttrEventmask = 8;  // OVS_CT_ATTR_EVENTMASK: u32
inline constexpr uint16_t kCtAttrTimeout = 9;    // OVS_CT_ATTR_TIMEOUT: NUL-terminated name
// Largest OVS_CT_ATTR_HELPER / OVS_CT_ATTR_TIMEOUT payloads, NUL included (the kernel's
// NF_CT_HELPER_NAME_LEN and CTNL_TIMEOUT_NAME_MAX; OVS's odp-util uses the same limits).
inline constexpr size_t kCtHelperSize = 16;
inline constexpr size_t kCtTimeoutSize = 32;

// CtAction::helper. OVS_CT_ATTR_HELPER carries the name; gldp knows "ftp" and "tftp",
// the only helpers OVS's ofproto and userspace datapath implement.
inline constexpr uint8_t kCtHelperNone = 0;
inline constexpr uint8_t kCtHelperFtp = 1;
inline constexpr uint8_t kCtHelperTftp = 2;

// "ftp" / "tftp" for kCtHelperFtp / kCtHelperTftp, "" otherwise.
constexpr std::string_view ct_helper_name(uint8_t helper) {
  return helper == kCtHelperFtp ? "ftp" : helper == kCtHelperTftp ? "tftp" : "";
}

// The header of one netlink attribute (struct nlattr).
inline constexpr size_t kAttrHeader = 4;
inline constexpr size_t attr_align(size_t n) {
  return (n + 3) & ~size_t{3};
}

// One action with a u32 argument (output, recirc, esp_encrypt), encoded in place: what
// the datapath writes on the fast path (no allocation, unlike ActionWriter).
struct U32Action {
  alignas(4) uint8_t bytes[8];
  constexpr std::span<const uint8_t> span() const { return {bytes, 8}; }
};
constexpr U32Action u32_action(uint16_t type, uint32_t arg) {
  return U32Action{{8, 0, static_cast<uint8_t>(type), static_cast<uint8_t>(type >> 8),
                    static_cast<uint8_t>(arg), static_cast<uint8_t>(arg >> 8),
                    static_cast<uint8_t>(arg >> 16), static_cast<uint8_t>(arg >> 24)}};
}
// Whether `list` is exactly one action of `type` with a u32 argument (then in `arg`).
inline bool single_u32_action(std::span<const uint8_t> list, uint16_t type, uint32_t& arg) {
  if (list.size() != 8 || list[0] != 8 || list[1] != 0 || (list[2] | list[3] << 8) != type)
    return false;
  arg = static_cast<uint32_t>(list[4] | list[5] << 8 | list[6] << 16 | list[7] << 24);
  return true;
}

// Name of an OVS_ACTION_ATTR_* type as OVS prints it ("output", "set", "ct", ...), or
// "unknown" for types past the UAPI enum.
constexpr std::string_view action_name(uint16_t type) {
  switch (type) {
    case OVS_ACTION_ATTR_UNSPEC:
      return "unspec";
    case OVS_ACTION_ATTR_OUTPUT:
      return "output";
    case OVS_ACTION_ATTR_USERSPACE:
      return "userspace";
    case OVS_ACTION_ATTR_SET:
      return "set";
    case OVS_ACTION_ATTR_PUSH_VLAN:
      return "push_vlan";
    case OVS_ACTION_ATTR_POP_VLAN:
      return "pop_vlan";
    case OVS_ACTION_ATTR_SAMPLE:
      return "sample";
    case OVS_ACTION_ATTR_RECIRC:
      return "recirc";
    case OVS_ACTION_ATTR_HASH:
      return "hash";
    case OVS_ACTION_ATTR_PUSH_MPLS:
      return "push_mpls";
    case OVS_ACTION_ATTR_POP_MPLS:
      return "pop_mpls";
    case OVS_ACTION_ATTR_SET_MASKED:
      return "set_masked";
    case OVS_ACTION_ATTR_CT:
      return "ct";
    case OVS_ACTION_ATTR_TRUNC:
      return "trunc";
    case OVS_ACTION_ATTR_PUSH_ETH:
      return "push_eth";
    case OVS_ACTION_ATTR_POP_ETH:
      return "pop_eth";
    case OVS_ACTION_ATTR_CT_CLEAR:
      return "ct_clear";
    case OVS_ACTION_ATTR_PUSH_NSH:
      return "push_nsh";
    case OVS_ACTION_ATTR_POP_NSH:
      return "pop_nsh";
    case OVS_ACTION_ATTR_METER:
      return "meter";
    case OVS_ACTION_ATTR_CLONE:
      return "clone";
    case OVS_ACTION_ATTR_CHECK_PKT_LEN:
      return "check_pkt_len";
    case OVS_ACTION_ATTR_ADD_MPLS:
      return "add_mpls";
    case OVS_ACTION_ATTR_DEC_TTL:
      return "dec_ttl";
    case kActionEspEncrypt:
      return "esp_encrypt";
    case kActionEspDecrypt:
      return "esp_decrypt";
    default:
      return "unknown";
  }
}

// Name of an OVS_KEY_ATTR_* type as OVS prints it ("eth", "ipv4", "skb_mark", ...).
constexpr std::string_view key_attr_name(uint16_t type) {
  switch (type) {
    case OVS_KEY_ATTR_ENCAP:
      return "encap";
    case OVS_KEY_ATTR_PRIORITY:
      return "skb_priority";
    case OVS_KEY_ATTR_IN_PORT:
      return "in_port";
    case OVS_KEY_ATTR_ETHERNET:
      return "eth";
    case OVS_KEY_ATTR_VLAN:
      return "vlan";
    case OVS_KEY_ATTR_ETHERTYPE:
      return "eth_type";
    case OVS_KEY_ATTR_IPV4:
      return "ipv4";
    case OVS_KEY_ATTR_IPV6:
      return "ipv6";
    case OVS_KEY_ATTR_TCP:
      return "tcp";
    case OVS_KEY_ATTR_UDP:
      return "udp";
    case OVS_KEY_ATTR_ICMP:
      return "icmp";
    case OVS_KEY_ATTR_ICMPV6:
      return "icmpv6";
    case OVS_KEY_ATTR_ARP:
      return "arp";
    case OVS_KEY_ATTR_ND:
      return "nd";
    case OVS_KEY_ATTR_SKB_MARK:
      return "skb_mark";
    case OVS_KEY_ATTR_TUNNEL:
      return "tunnel";
    case OVS_KEY_ATTR_SCTP:
      return "sctp";
    case OVS_KEY_ATTR_TCP_FLAGS:
      return "tcp_flags";
    case OVS_KEY_ATTR_DP_HASH:
      return "dp_hash";
    case OVS_KEY_ATTR_RECIRC_ID:
      return "recirc_id";
    case OVS_KEY_ATTR_MPLS:
      return "mpls";
    case OVS_KEY_ATTR_CT_STATE:
      return "ct_state";
    case OVS_KEY_ATTR_CT_ZONE:
      return "ct_zone";
    case OVS_KEY_ATTR_CT_MARK:
      return "ct_mark";
    case OVS_KEY_ATTR_CT_LABELS:
      return "ct_label";
    case OVS_KEY_ATTR_CT_ORIG_TUPLE_IPV4:
      return "ct_tuple4";
    case OVS_KEY_ATTR_CT_ORIG_TUPLE_IPV6:
      return "ct_tuple6";
    case OVS_KEY_ATTR_NSH:
      return "nsh";
    default:
      return "unknown";
  }
}

// Payload size of a key attribute that SET / SET_MASKED may carry (SET_MASKED carries
// twice this: value then mask), or 0 when the key cannot be set.
constexpr size_t settable_key_size(uint16_t key_type) {
  switch (key_type) {
    case OVS_KEY_ATTR_ETHERNET:
      return sizeof(ovs_key_ethernet);
    case OVS_KEY_ATTR_IPV4:
      return sizeof(ovs_key_ipv4);
    case OVS_KEY_ATTR_IPV6:
      return sizeof(ovs_key_ipv6);
    case OVS_KEY_ATTR_TCP:
      return sizeof(ovs_key_tcp);
    case OVS_KEY_ATTR_UDP:
      return sizeof(ovs_key_udp);
    case OVS_KEY_ATTR_SCTP:
      return sizeof(ovs_key_sctp);
    case OVS_KEY_ATTR_SKB_MARK:
      return sizeof(uint32_t);
    case OVS_KEY_ATTR_PRIORITY:
      return sizeof(uint32_t);
    default:
      return 0;
  }
}

// One attribute of a validated blob. For nested actions (SAMPLE, USERSPACE, SET,
// CLONE, CT) the payload is itself an attribute list that ActionList can walk.
struct ActionView {
  uint16_t type;
  std::span<const uint8_t> payload;

  // The payload as a host-order u32 (OUTPUT port, RECIRC id, ...); 0 when too short.
  uint32_t u32() const {
    uint32_t v = 0;
    if (payload.size() >= sizeof v) std::memcpy(&v, payload.data(), sizeof v);
    return v;
  }
};

// Allocation-free forward range over the attributes of a blob (top-level action list or
// any nested attribute list):  for (ActionView a : ActionList(blob)) { ... }
// Assumes the blob passed validate_actions; on a malformed header it simply ends.
class ActionList {
 public:
  class iterator {
   public:
    using value_type = ActionView;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    iterator(const uint8_t* p, const uint8_t* end) : p_(p), end_(end) { settle(); }

    ActionView operator*() const {
      return ActionView{type_, std::span<const uint8_t>(p_ + kAttrHeader, len_ - kAttrHeader)};
    }
    iterator& operator++() {
      const size_t step = attr_align(len_);
      p_ = step < static_cast<size_t>(end_ - p_) ? p_ + step : end_;
      settle();
      return *this;
    }
    iterator operator++(int) {
      iterator t = *this;
      ++*this;
      return t;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.p_ == b.p_; }

   private:
    // Reads the header at p_; ends the walk when it does not fit.
    void settle() {
      if (static_cast<size_t>(end_ - p_) < kAttrHeader) {
        p_ = end_;
        return;
      }
      std::memcpy(&len_, p_, 2);
      std::memcpy(&type_, p_ + 2, 2);
      if (len_ < kAttrHeader || len_ > static_cast<size_t>(end_ - p_)) p_ = end_;
    }

    const uint8_t* p_ = nullptr;
    const uint8_t* end_ = nullptr;
    uint16_t len_ = 0;
    uint16_t type_ = 0;
  };

  explicit ActionList(std::span<const uint8_t> blob) : blob_(blob) {}
  iterator begin() const { return iterator(blob_.data(), blob_.data() + blob_.size()); }
  iterator end() const {
    return iterator(blob_.data() + blob_.size(), blob_.data() + blob_.size());
  }
  bool empty() const { return blob_.size() < kAttrHeader; }

 private:
  std::span<const uint8_t> blob_;
};

// Decoded forms of the structured actions (all views into the blob; validated input).
struct SetAction {
  uint16_t key_type;               // OVS_KEY_ATTR_*
  std::span<const uint8_t> value;  // the ovs_key_* struct (or u32)
  std::span<const uint8_t> mask;   // same size for SET_MASKED; empty for SET
};

struct UserspaceAction {
  uint32_t pid = 0;
  std::span<const uint8_t> userdata;  // empty when absent
  bool send_actions = false;          // OVS_USERSPACE_ATTR_ACTIONS present
};

struct SampleAction {
  uint32_t probability = 0;          // kSampleAlways = always
  std::span<const uint8_t> actions;  // nested action list
};

// `a` must be SET or SET_MASKED from a validated blob.
inline SetAction decode_set(const ActionView& a) {
  SetAction s{};
  for (ActionView k : ActionList(a.payload)) {
    s.key_type = k.type;
    if (a.type == OVS_ACTION_ATTR_SET_MASKED) {
      const size_t half = k.payload.size() / 2;
      s.value = k.payload.first(half);
      s.mask = k.payload.subspan(half, half);
    } else {
      s.value = k.payload;
    }
    break;
  }
  return s;
}

// `payload` is the payload of a validated USERSPACE action.
inline UserspaceAction decode_userspace(std::span<const uint8_t> payload) {
  UserspaceAction u;
  for (ActionView a : ActionList(payload)) {
    if (a.type == OVS_USERSPACE_ATTR_PID) u.pid = a.u32();
    if (a.type == OVS_USERSPACE_ATTR_USERDATA) u.userdata = a.payload;
    if (a.type == OVS_USERSPACE_ATTR_ACTIONS) u.send_actions = true;
  }
  return u;
}

// `payload` is the payload of a validated SAMPLE action.
inline SampleAction decode_sample(std::span<const uint8_t> payload) {
  SampleAction s;
  for (ActionView a : ActionList(payload)) {
    if (a.type == OVS_SAMPLE_ATTR_PROBABILITY) s.probability = a.u32();
    if (a.type == OVS_SAMPLE_ATTR_ACTIONS) s.actions = a.payload;
  }
  return s;
}

// OVS_CT_ATTR_NAT, decoded. An absent IP_MAX / PROTO_MAX is filled in as the minimum.
struct CtNat {
  bool src = false;  // SNAT
  bool dst = false;  // DNAT. Never both; neither = plain "nat": only reverses / applies the
                     // NAT an existing connection already has, and nothing below is set.
  bool persistent = false, proto_hash = false, proto_random = false;  // hash, random exclusive
  uint8_t family = 0;                        // 0 = no address range, 4 or 6
  uint8_t ip_min[16] = {}, ip_max[16] = {};  // network order; IPv4 in the first 4 bytes
  uint16_t port_min = 0, port_max = 0;       // host order; 0 = no port range
};

// OVS_ACTION_ATTR_CT, decoded (a plain value: the executor keeps it per flow).
struct CtAction {
  uint16_t zone = 0;  // OVS_CT_ATTR_ZONE; absent = 0
  bool commit = false;
  bool force_commit = false;  // implies commit; never set together with `commit`
  bool has_mark = false;
  uint32_t mark = 0, mark_mask = 0;  // host order, OVS_CT_ATTR_MARK {value, mask}
  bool has_labels = false;
  uint8_t labels[16] = {}, labels_mask[16] = {};  // OVS_CT_ATTR_LABELS bytes as encoded
                                                  // (host-order 128-bit: [0] is the LSB
                                                  // on little-endian machines)
  bool has_nat = false;
  CtNat nat;
  uint8_t helper = kCtHelperNone;  // kCtHelperNone / kCtHelperFtp / kCtHelperTftp
  bool has_eventmask = false;
  uint32_t eventmask = 0;             // OVS_CT_ATTR_EVENTMASK (IPCT_* bits; no effect in gldp)
  char timeout[kCtTimeoutSize] = {};  // OVS_CT_ATTR_TIMEOUT policy name; "" when absent
};

// Checks and decodes the payload of a CT action (the nested OVS_CT_ATTR_* list). This is
// the check validate_actions runs for CT, so a payload from a validated blob always
// decodes. Errors start with "ct: " and name the attribute, e.g. "ct: unknown attribute
// 12", "ct: helper 'sip' is not supported (ftp, tftp)", "ct: nat: ip_min > ip_max".
// O(payload), no allocation unless it fails.
std::expected<CtAction, std::string> decode_ct(std::span<const uint8_t> payload);

// Limits validate_actions enforces.
struct ValidateLimits {
  size_t max_size = 4096;     // whole blob, bytes
  unsigned max_depth = 4;     // nested action lists (clone / sample) inside the top level
  size_t max_userdata = 256;  // USERSPACE userdata bytes
};

// Checks a blob completely: every header and length, 4-byte padding, nesting depth,
// known and supported action types, exact payload sizes (SET/SET_MASKED key structs,
// push_vlan, hash, ...), value bits outside a set_masked mask, fields that cannot be
// set (ipv4/ipv6 proto and frag), push_vlan TPID and CFI bit, hash algorithm, the
// mandatory attributes of USERSPACE and SAMPLE, every rule of decode_ct for CT (its
// message then starts "ct at offset N: " instead of "ct: "). The error names the offset,
// the action and what is wrong, e.g. "action 13 (trunc) is not supported".
// Never reads outside `blob`, whatever its content.
std::expected<void, std::string> validate_actions(std::span<const uint8_t> blob,
                                                  const ValidateLimits& lim = {});

// Builds an action blob. Methods append one action and return *this. Multi-byte
// arguments are host order unless the type says otherwise (the ovs_key_* structs hold
// packet fields in network order, as on the wire). A blob or nested list that would
// exceed 65535 bytes, or an end() without a begin, makes ok() false instead of writing
// a corrupt blob.
class ActionWriter {
 public:
  ActionWriter& output(uint32_t port);
  ActionWriter& userspace(uint32_t pid, std::span<const uint8_t> userdata = {},
                          bool send_actions = false);

  ActionWriter& set_ethernet(const ovs_key_ethernet& v);
  ActionWriter& set_ipv4(const ovs_key_ipv4& v);
  ActionWriter& set_ipv6(const ovs_key_ipv6& v);
  ActionWriter& set_tcp(const ovs_key_tcp& v);
  ActionWriter& set_udp(const ovs_key_udp& v);
  ActionWriter& set_sctp(const ovs_key_sctp& v);
  ActionWriter& set_skb_mark(uint32_t mark);
  ActionWriter& set_priority(uint32_t priority);

  // Value bits outside the mask are cleared (validate_actions rejects them).
  ActionWriter& set_masked_ethernet(const ovs_key_ethernet& v, const ovs_key_ethernet& m);
  ActionWriter& set_masked_ipv4(const ovs_key_ipv4& v, const ovs_key_ipv4& m);
  ActionWriter& set_masked_ipv6(const ovs_key_ipv6& v, const ovs_key_ipv6& m);
  ActionWriter& set_masked_tcp(const ovs_key_tcp& v, const ovs_key_tcp& m);
  ActionWriter& set_masked_udp(const ovs_key_udp& v, const ovs_key_udp& m);
  ActionWriter& set_masked_sctp(const ovs_key_sctp& v, const ovs_key_sctp& m);
  ActionWriter& set_masked_skb_mark(uint32_t v, uint32_t m);
  ActionWriter& set_masked_priority(uint32_t v, uint32_t m);

  // Generic forms: one nested OVS_KEY_ATTR_* with `value` (and `mask`, same size).
  ActionWriter& set_key(uint16_t key_type, std::span<const uint8_t> value);
  ActionWriter& set_masked_key(uint16_t key_type, std::span<const uint8_t> value,
                               std::span<const uint8_t> mask);

  // Pushes a tag with TCI = vid | pcp << 13 | CFI (host-order arguments).
  ActionWriter& push_vlan(uint16_t vid, uint8_t pcp, uint16_t tpid = 0x8100);
  ActionWriter& pop_vlan();
  ActionWriter& recirc(uint32_t recirc_id);
  ActionWriter& hash(uint32_t alg, uint32_t basis);
  ActionWriter& esp_encrypt(uint32_t group);
  ActionWriter& esp_decrypt();

  // CT from `c`, in the attribute order of OVS's parse_conntrack_action: COMMIT or
  // FORCE_COMMIT (each when set), ZONE when non-zero, MARK, LABELS, HELPER ("ftp" /
  // "tftp"), TIMEOUT (when non-empty), EVENTMASK, then NAT { SRC, DST, IP_MIN and IP_MAX
  // (when family is 4 or 6; IP_MAX when non-zero and != ip_min), PROTO_MIN (when
  // non-zero), PROTO_MAX (when non-zero and != port_min), PERSISTENT, PROTO_HASH,
  // PROTO_RANDOM }. Writes what `c` says without judging it (decode_ct does), so tests
  // can build refused forms too.
  ActionWriter& ct(const CtAction& c);
  ActionWriter& ct_clear();

  // Nested lists: begin_*() opens, attributes appended until the matching end() go
  // inside. begin_nested() opens any attribute (e.g. USERSPACE built by hand).
  ActionWriter& begin_nested(uint16_t type);
  ActionWriter& begin_clone();
  ActionWriter& begin_sample(uint32_t probability);
  ActionWriter& end();

  // Any attribute, payload copied verbatim (tests use it to build odd blobs).
  ActionWriter& attr(uint16_t type, std::span<const uint8_t> payload);

  // True when every length fit in 16 bits and every begin_*() was closed by end().
  bool ok() const { return !error_ && open_.empty(); }
  const std::vector<uint8_t>& data() const { return buf_; }
  std::vector<uint8_t> take() { return std::move(buf_); }

 private:
  size_t begin_attr(uint16_t type);
  void end_attr(size_t start);
  void put(const void* p, size_t n);
  void pad();

  struct Open {
    size_t start;
    unsigned levels;  // attributes to close: 1 for clone, 2 for sample
    size_t inner;     // start of the inner attribute when levels == 2
  };
  std::vector<uint8_t> buf_;
  std::vector<Open> open_;
  bool error_ = false;
};

}  // namespace gl::odp
