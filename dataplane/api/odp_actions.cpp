#include "dataplane/api/odp_actions.hpp"

#include <arpa/inet.h>

#include <string>

namespace gl::odp {

namespace {

using Result = std::expected<void, std::string>;

std::unexpected<std::string> fail(std::string msg) {
  return std::unexpected(std::move(msg));
}

std::string num(uint64_t v) {
  return std::to_string(v);
}

template <class T>
std::span<const uint8_t> bytes_of(const T& v) {
  return std::span(reinterpret_cast<const uint8_t*>(&v), sizeof v);
}

uint16_t load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// "output at offset 8" / "set(ipv4) at offset 8".
std::string where(std::string_view what, size_t off) {
  std::string s(what);
  s += " at offset ";
  s += num(off);
  return s;
}

// The action a nested list belongs to, for messages (built only on failure, so that a
// successful validation does not allocate). Empty `what`: the top-level list.
struct Ctx {
  std::string_view what;
  size_t off = 0;
  std::string prefix() const { return what.empty() ? std::string() : where(what, off) + ": "; }
};

// Walks one attribute list strictly: every header, length and padding must fit inside
// `list`. `base` is the absolute offset of `list` in the top-level blob (for messages).
// f(type, payload, absolute offset of the attribute) -> Result.
template <class F>
Result for_each_attr(std::span<const uint8_t> list, size_t base, const Ctx& ctx, F&& f) {
  size_t off = 0;
  while (off < list.size()) {
    const size_t left = list.size() - off;
    const size_t abs = base + off;
    if (left < kAttrHeader)
      return fail(ctx.prefix() + "truncated attribute header at offset " + num(abs) + " (" +
                  num(left) + " bytes left)");
    const uint16_t len = load16(list.data() + off);
    const uint16_t type = load16(list.data() + off + 2);
    if (len < kAttrHeader)
      return fail(ctx.prefix() + "attribute at offset " + num(abs) + " (type " + num(type) +
                  "): length " + num(len) + " < 4");
    if (len > left)
      return fail(ctx.prefix() + "attribute at offset " + num(abs) + " (type " + num(type) +
                  "): length " + num(len) + " runs past the end (" + num(left) + " bytes left)");
    if (attr_align(len) > left)
      return fail(ctx.prefix() + "attribute at offset " + num(abs) + " (type " + num(type) +
                  "): length " + num(len) + " is not padded to 4 bytes");
    if (Result r = f(type, list.subspan(off + kAttrHeader, len - kAttrHeader), abs); !r) return r;
    off += attr_align(len);
  }
  return {};
}

Result expect_size(std::string_view what, size_t off, size_t got, size_t want) {
  if (got == want) return {};
  return fail(where(what, off) + ": payload is " + num(got) + " bytes, expected " + num(want));
}

// Checks one SET or SET_MASKED payload (one nested key attribute).
Result check_set(uint16_t action, std::span<const uint8_t> payload, size_t off) {
  const bool masked = action == OVS_ACTION_ATTR_SET_MASKED;
  const std::string_view aname = masked ? "set_masked" : "set";
  unsigned count = 0;
  Result r = for_each_attr(
      payload, off + kAttrHeader, Ctx{aname, off},
      [&](uint16_t key, std::span<const uint8_t> v, size_t koff) -> Result {
        if (++count > 1)
          return fail(where(aname, off) + ": more than one key attribute (second at offset " +
                      num(koff) + ")");
        const size_t size = settable_key_size(key);
        auto what = [&] {
          return std::string(aname) + "(" + std::string(key_attr_name(key)) + ")";
        };
        if (size == 0) {
          if (key_attr_name(key) == "unknown")
            return fail(where(aname, off) + ": unknown key attribute type " + num(key));
          return fail(where(what(), off) + ": key '" + std::string(key_attr_name(key)) +
                      "' cannot be set");
        }
        const size_t want = masked ? 2 * size : size;
        if (v.size() != want)
          return fail(where(what(), off) + ": payload is " + num(v.size()) + " bytes, expected " +
                      num(want));
        const uint8_t* val = v.data();
        if (!masked) {
          if (key == OVS_KEY_ATTR_IPV4) {
            const uint8_t frag = val[offsetof(ovs_key_ipv4, ipv4_frag)];
            if (frag > OVS_FRAG_TYPE_MAX)
              return fail(where(what(), off) + ": bad frag value " + num(frag));
          }
          if (key == OVS_KEY_ATTR_IPV6) {
            const uint8_t frag = val[offsetof(ovs_key_ipv6, ipv6_frag)];
            if (frag > OVS_FRAG_TYPE_MAX)
              return fail(where(what(), off) + ": bad frag value " + num(frag));
            const uint32_t label = ntohl(load32(val + offsetof(ovs_key_ipv6, ipv6_label)));
            if (label > 0xfffff)
              return fail(where(what(), off) + ": label " + num(label) + " exceeds 20 bits");
          }
          return {};
        }
        const uint8_t* msk = val + size;
        for (size_t i = 0; i < size; ++i)
          if (val[i] & ~msk[i])
            return fail(where(what(), off) + ": value bits outside the mask (byte " + num(i) + ")");
        if (key == OVS_KEY_ATTR_IPV4 && (msk[offsetof(ovs_key_ipv4, ipv4_proto)] != 0 ||
                                         msk[offsetof(ovs_key_ipv4, ipv4_frag)] != 0))
          return fail(where(what(), off) + ": proto and frag cannot be set");
        if (key == OVS_KEY_ATTR_IPV6) {
          if (msk[offsetof(ovs_key_ipv6, ipv6_proto)] != 0 ||
              msk[offsetof(ovs_key_ipv6, ipv6_frag)] != 0)
            return fail(where(what(), off) + ": proto and frag cannot be set");
          const uint32_t lmask = ntohl(load32(msk + offsetof(ovs_key_ipv6, ipv6_label)));
          if (lmask & ~0xfffffu) return fail(where(what(), off) + ": label mask exceeds 20 bits");
        }
        return {};
      });
  if (!r) return r;
  if (count == 0) return fail(where(aname, off) + ": no key attribute");
  return {};
}

Result check_list(std::span<const uint8_t> list, size_t base, unsigned depth,
                  const ValidateLimits& lim, const Ctx& ctx);

Result check_userspace(std::span<const uint8_t> payload, size_t off, const ValidateLimits& lim) {
  bool pid = false, data = false, acts = false;
  auto w = [off] { return where("userspace", off); };
  Result r = for_each_attr(payload, off + kAttrHeader, Ctx{"userspace", off},
                           [&](uint16_t type, std::span<const uint8_t> v, size_t) -> Result {
                             switch (type) {
                               case OVS_USERSPACE_ATTR_PID:
                                 if (pid) return fail(w() + ": duplicate pid");
                                 pid = true;
                                 return expect_size("userspace(pid)", off, v.size(), 4);
                               case OVS_USERSPACE_ATTR_USERDATA:
                                 if (data) return fail(w() + ": duplicate userdata");
                                 data = true;
                                 if (v.size() > lim.max_userdata)
                                   return fail(w() + ": userdata is " + num(v.size()) +
                                               " bytes, limit " + num(lim.max_userdata));
                                 return {};
                               case OVS_USERSPACE_ATTR_ACTIONS:
                                 if (acts) return fail(w() + ": duplicate actions flag");
                                 acts = true;
                                 return expect_size("userspace(actions)", off, v.size(), 0);
                               case OVS_USERSPACE_ATTR_EGRESS_TUN_PORT:
                                 return fail(w() + ": tunnel_out_port is not supported");
                               default:
                                 return fail(w() + ": unknown attribute type " + num(type));
                             }
                           });
  if (!r) return r;
  if (!pid) return fail(w() + ": missing pid");
  return {};
}

Result check_sample(std::span<const uint8_t> payload, size_t off, unsigned depth,
                    const ValidateLimits& lim) {
  bool prob = false, acts = false;
  auto w = [off] { return where("sample", off); };
  Result r = for_each_attr(
      payload, off + kAttrHeader, Ctx{"sample", off},
      [&](uint16_t type, std::span<const uint8_t> v, size_t aoff) -> Result {
        switch (type) {
          case OVS_SAMPLE_ATTR_PROBABILITY:
            if (prob) return fail(w() + ": duplicate probability");
            prob = true;
            return expect_size("sample(probability)", off, v.size(), 4);
          case OVS_SAMPLE_ATTR_ACTIONS:
            if (acts) return fail(w() + ": duplicate actions");
            acts = true;
            if (depth + 1 > lim.max_depth)
              return fail(w() + ": actions nested deeper than " + num(lim.max_depth));
            return check_list(v, aoff + kAttrHeader, depth + 1, lim, Ctx{"sample", off});
          default:
            return fail(w() + ": unknown attribute type " + num(type));
        }
      });
  if (!r) return r;
  if (!prob) return fail(w() + ": missing probability");
  if (!acts) return fail(w() + ": missing actions");
  return {};
}

Result check_action(uint16_t type, std::span<const uint8_t> p, size_t off, unsigned depth,
                    const ValidateLimits& lim) {
  switch (type) {
    case OVS_ACTION_ATTR_OUTPUT:
      return expect_size("output", off, p.size(), 4);
    case OVS_ACTION_ATTR_USERSPACE:
      return check_userspace(p, off, lim);
    case OVS_ACTION_ATTR_SET:
    case OVS_ACTION_ATTR_SET_MASKED:
      return check_set(type, p, off);
    case OVS_ACTION_ATTR_PUSH_VLAN: {
      if (Result r = expect_size("push_vlan", off, p.size(), sizeof(ovs_action_push_vlan)); !r)
        return r;
      const uint16_t tpid = ntohs(load16(p.data()));
      const uint16_t tci = ntohs(load16(p.data() + 2));
      if (tpid != 0x8100 && tpid != 0x88a8)
        return fail(where("push_vlan", off) + ": tpid " + num(tpid) +
                    " is neither 0x8100 nor 0x88a8");
      if (!(tci & 0x1000)) return fail(where("push_vlan", off) + ": tci lacks the CFI bit");
      return {};
    }
    case OVS_ACTION_ATTR_POP_VLAN:
      return expect_size("pop_vlan", off, p.size(), 0);
    case OVS_ACTION_ATTR_SAMPLE:
      return check_sample(p, off, depth, lim);
    case OVS_ACTION_ATTR_RECIRC:
      return expect_size("recirc", off, p.size(), 4);
    case OVS_ACTION_ATTR_HASH: {
      if (Result r = expect_size("hash", off, p.size(), sizeof(ovs_action_hash)); !r) return r;
      const uint32_t alg = load32(p.data());
      if (alg != kHashAlgL4 && alg != kHashAlgSymL4)
        return fail(where("hash", off) + ": unknown hash algorithm " + num(alg));
      return {};
    }
    case kActionEspEncrypt:
    case kActionEspDecrypt:
      if (depth > 0)
        return fail(where(action_name(type), off) +
                    ": ESP actions are allowed only at the top level, first");
      if (type == kActionEspDecrypt) return expect_size("esp_decrypt", off, p.size(), 0);
      if (Result r = expect_size("esp_encrypt", off, p.size(), 4); !r) return r;
      if (load32(p.data()) == 0) return fail(where("esp_encrypt", off) + ": group 0 is invalid");
      return {};
    case OVS_ACTION_ATTR_CLONE:
      if (depth + 1 > lim.max_depth)
        return fail(where("clone", off) + ": actions nested deeper than " + num(lim.max_depth));
      return check_list(p, off + kAttrHeader, depth + 1, lim, Ctx{"clone", off});
    default:
      if (type == OVS_ACTION_ATTR_UNSPEC || action_name(type) == "unknown")
        return fail("action at offset " + num(off) + ": unknown action type " + num(type));
      return fail("action " + num(type) + " (" + std::string(action_name(type)) +
                  ") is not supported (at offset " + num(off) + ")");
  }
}

Result check_list(std::span<const uint8_t> list, size_t base, unsigned depth,
                  const ValidateLimits& lim, const Ctx& ctx) {
  return for_each_attr(list, base, ctx,
                       [&](uint16_t type, std::span<const uint8_t> p, size_t off) -> Result {
                         return check_action(type, p, off, depth, lim);
                       });
}

}  // namespace

std::expected<void, std::string> validate_actions(std::span<const uint8_t> blob,
                                                  const ValidateLimits& lim) {
  if (blob.size() > lim.max_size)
    return fail("actions are " + num(blob.size()) + " bytes, limit " + num(lim.max_size));
  if (Result r = check_list(blob, 0, 0, lim, Ctx{}); !r) return r;
  // ESP actions: first in the list; esp_encrypt followed by outputs only (at least one),
  // esp_decrypt followed by exactly one recirc (the executor runs them per burst).
  unsigned idx = 0, outputs = 0, recircs = 0, others = 0;
  uint16_t esp = 0;
  for (ActionView a : ActionList(blob)) {
    const bool is_esp = a.type == kActionEspEncrypt || a.type == kActionEspDecrypt;
    if (is_esp && idx != 0)
      return fail(std::string(action_name(a.type)) + " must be the first action");
    if (is_esp)
      esp = a.type;
    else if (a.type == OVS_ACTION_ATTR_OUTPUT)
      ++outputs;
    else if (a.type == OVS_ACTION_ATTR_RECIRC)
      ++recircs;
    else
      ++others;
    ++idx;
  }
  if (esp == kActionEspEncrypt && (outputs == 0 || recircs != 0 || others != 0))
    return fail("esp_encrypt must be followed by output actions only (at least one)");
  if (esp == kActionEspDecrypt && (recircs != 1 || outputs != 0 || others != 0))
    return fail("esp_decrypt must be followed by exactly one recirc(N)");
  return {};
}

// ---- ActionWriter -----------------------------------------------------------------

void ActionWriter::put(const void* p, size_t n) {
  if (n == 0) return;
  const auto* b = static_cast<const uint8_t*>(p);
  buf_.insert(buf_.end(), b, b + n);
}

void ActionWriter::pad() {
  buf_.resize(attr_align(buf_.size()), 0);
}

size_t ActionWriter::begin_attr(uint16_t type) {
  const size_t start = buf_.size();
  const uint16_t len = 0;
  put(&len, 2);
  put(&type, 2);
  return start;
}

void ActionWriter::end_attr(size_t start) {
  const size_t len = buf_.size() - start;
  if (len > UINT16_MAX) {
    error_ = true;
  } else {
    const auto l16 = static_cast<uint16_t>(len);
    std::memcpy(buf_.data() + start, &l16, 2);
  }
  pad();
}

ActionWriter& ActionWriter::attr(uint16_t type, std::span<const uint8_t> payload) {
  const size_t s = begin_attr(type);
  put(payload.data(), payload.size());
  end_attr(s);
  return *this;
}

ActionWriter& ActionWriter::output(uint32_t port) {
  return attr(OVS_ACTION_ATTR_OUTPUT, bytes_of(port));
}

ActionWriter& ActionWriter::userspace(uint32_t pid, std::span<const uint8_t> userdata,
                                      bool send_actions) {
  const size_t s = begin_attr(OVS_ACTION_ATTR_USERSPACE);
  attr(OVS_USERSPACE_ATTR_PID, bytes_of(pid));
  if (!userdata.empty()) attr(OVS_USERSPACE_ATTR_USERDATA, userdata);
  if (send_actions) attr(OVS_USERSPACE_ATTR_ACTIONS, {});
  end_attr(s);
  return *this;
}

ActionWriter& ActionWriter::set_key(uint16_t key_type, std::span<const uint8_t> value) {
  const size_t s = begin_attr(OVS_ACTION_ATTR_SET);
  attr(key_type, value);
  end_attr(s);
  return *this;
}

ActionWriter& ActionWriter::set_masked_key(uint16_t key_type, std::span<const uint8_t> value,
                                           std::span<const uint8_t> mask) {
  const size_t s = begin_attr(OVS_ACTION_ATTR_SET_MASKED);
  const size_t k = begin_attr(key_type);
  for (size_t i = 0; i < value.size(); ++i) {
    const uint8_t b = value[i] & (i < mask.size() ? mask[i] : 0);
    put(&b, 1);
  }
  put(mask.data(), mask.size());
  end_attr(k);
  end_attr(s);
  return *this;
}

ActionWriter& ActionWriter::set_ethernet(const ovs_key_ethernet& v) {
  return set_key(OVS_KEY_ATTR_ETHERNET, bytes_of(v));
}
ActionWriter& ActionWriter::set_ipv4(const ovs_key_ipv4& v) {
  return set_key(OVS_KEY_ATTR_IPV4, bytes_of(v));
}
ActionWriter& ActionWriter::set_ipv6(const ovs_key_ipv6& v) {
  return set_key(OVS_KEY_ATTR_IPV6, bytes_of(v));
}
ActionWriter& ActionWriter::set_tcp(const ovs_key_tcp& v) {
  return set_key(OVS_KEY_ATTR_TCP, bytes_of(v));
}
ActionWriter& ActionWriter::set_udp(const ovs_key_udp& v) {
  return set_key(OVS_KEY_ATTR_UDP, bytes_of(v));
}
ActionWriter& ActionWriter::set_sctp(const ovs_key_sctp& v) {
  return set_key(OVS_KEY_ATTR_SCTP, bytes_of(v));
}
ActionWriter& ActionWriter::set_skb_mark(uint32_t mark) {
  return set_key(OVS_KEY_ATTR_SKB_MARK, bytes_of(mark));
}
ActionWriter& ActionWriter::set_priority(uint32_t priority) {
  return set_key(OVS_KEY_ATTR_PRIORITY, bytes_of(priority));
}

ActionWriter& ActionWriter::set_masked_ethernet(const ovs_key_ethernet& v,
                                                const ovs_key_ethernet& m) {
  return set_masked_key(OVS_KEY_ATTR_ETHERNET, bytes_of(v), bytes_of(m));
}
ActionWriter& ActionWriter::set_masked_ipv4(const ovs_key_ipv4& v, const ovs_key_ipv4& m) {
  return set_masked_key(OVS_KEY_ATTR_IPV4, bytes_of(v), bytes_of(m));
}
ActionWriter& ActionWriter::set_masked_ipv6(const ovs_key_ipv6& v, const ovs_key_ipv6& m) {
  return set_masked_key(OVS_KEY_ATTR_IPV6, bytes_of(v), bytes_of(m));
}
ActionWriter& ActionWriter::set_masked_tcp(const ovs_key_tcp& v, const ovs_key_tcp& m) {
  return set_masked_key(OVS_KEY_ATTR_TCP, bytes_of(v), bytes_of(m));
}
ActionWriter& ActionWriter::set_masked_udp(const ovs_key_udp& v, const ovs_key_udp& m) {
  return set_masked_key(OVS_KEY_ATTR_UDP, bytes_of(v), bytes_of(m));
}
ActionWriter& ActionWriter::set_masked_sctp(const ovs_key_sctp& v, const ovs_key_sctp& m) {
  return set_masked_key(OVS_KEY_ATTR_SCTP, bytes_of(v), bytes_of(m));
}
ActionWriter& ActionWriter::set_masked_skb_mark(uint32_t v, uint32_t m) {
  return set_masked_key(OVS_KEY_ATTR_SKB_MARK, bytes_of(v), bytes_of(m));
}
ActionWriter& ActionWriter::set_masked_priority(uint32_t v, uint32_t m) {
  return set_masked_key(OVS_KEY_ATTR_PRIORITY, bytes_of(v), bytes_of(m));
}

ActionWriter& ActionWriter::push_vlan(uint16_t vid, uint8_t pcp, uint16_t tpid) {
  ovs_action_push_vlan pv;
  pv.vlan_tpid = htons(tpid);
  pv.vlan_tci = htons(static_cast<uint16_t>((vid & 0x0fff) | ((pcp & 7) << 13) | 0x1000));
  return attr(OVS_ACTION_ATTR_PUSH_VLAN, bytes_of(pv));
}

ActionWriter& ActionWriter::pop_vlan() {
  return attr(OVS_ACTION_ATTR_POP_VLAN, {});
}

ActionWriter& ActionWriter::recirc(uint32_t recirc_id) {
  return attr(OVS_ACTION_ATTR_RECIRC, bytes_of(recirc_id));
}

ActionWriter& ActionWriter::hash(uint32_t alg, uint32_t basis) {
  ovs_action_hash h;
  h.hash_alg = alg;
  h.hash_basis = basis;
  return attr(OVS_ACTION_ATTR_HASH, bytes_of(h));
}

ActionWriter& ActionWriter::esp_encrypt(uint32_t group) {
  return attr(kActionEspEncrypt, bytes_of(group));
}

ActionWriter& ActionWriter::esp_decrypt() {
  return attr(kActionEspDecrypt, {});
}

ActionWriter& ActionWriter::begin_nested(uint16_t type) {
  open_.push_back(Open{begin_attr(type), 1, 0});
  return *this;
}

ActionWriter& ActionWriter::begin_clone() {
  return begin_nested(OVS_ACTION_ATTR_CLONE);
}

ActionWriter& ActionWriter::begin_sample(uint32_t probability) {
  const size_t outer = begin_attr(OVS_ACTION_ATTR_SAMPLE);
  attr(OVS_SAMPLE_ATTR_PROBABILITY, bytes_of(probability));
  const size_t inner = begin_attr(OVS_SAMPLE_ATTR_ACTIONS);
  open_.push_back(Open{outer, 2, inner});
  return *this;
}

ActionWriter& ActionWriter::end() {
  if (open_.empty()) {
    error_ = true;  // unbalanced end(): the blob is unusable
    return *this;
  }
  const Open o = open_.back();
  open_.pop_back();
  if (o.levels == 2) end_attr(o.inner);
  end_attr(o.start);
  return *this;
}

}  // namespace gl::odp
