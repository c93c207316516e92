#include "dataplane/api/odp_actions.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <string>

#include "flowtables/bytes.hpp"

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

using flow::load_raw16;
using flow::load_raw32;

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
    const uint16_t len = load_raw16(list.data() + off);
    const uint16_t type = load_raw16(list.data() + off + 2);
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
            const uint32_t label = ntohl(load_raw32(val + offsetof(ovs_key_ipv6, ipv6_label)));
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
          const uint32_t lmask = ntohl(load_raw32(msk + offsetof(ovs_key_ipv6, ipv6_label)));
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

// ---- CT ----------------------------------------------------------------------------
// The messages below carry no "ct" prefix; decode_ct and validate_actions add theirs.

constexpr std::string_view ct_attr_name(uint16_t type) {
  switch (type) {
    case OVS_CT_ATTR_COMMIT:
      return "commit";
    case OVS_CT_ATTR_ZONE:
      return "zone";
    case OVS_CT_ATTR_MARK:
      return "mark";
    case OVS_CT_ATTR_LABELS:
      return "labels";
    case OVS_CT_ATTR_HELPER:
      return "helper";
    case OVS_CT_ATTR_NAT:
      return "nat";
    case OVS_CT_ATTR_FORCE_COMMIT:
      return "force_commit";
    case kCtAttrEventmask:
      return "eventmask";
    case kCtAttrTimeout:
      return "timeout";
    default:
      return {};
  }
}

constexpr std::string_view nat_attr_name(uint16_t type) {
  switch (type) {
    case OVS_NAT_ATTR_SRC:
      return "src";
    case OVS_NAT_ATTR_DST:
      return "dst";
    case OVS_NAT_ATTR_IP_MIN:
      return "ip_min";
    case OVS_NAT_ATTR_IP_MAX:
      return "ip_max";
    case OVS_NAT_ATTR_PROTO_MIN:
      return "proto_min";
    case OVS_NAT_ATTR_PROTO_MAX:
      return "proto_max";
    case OVS_NAT_ATTR_PERSISTENT:
      return "persistent";
    case OVS_NAT_ATTR_PROTO_HASH:
      return "hash";
    case OVS_NAT_ATTR_PROTO_RANDOM:
      return "random";
    default:
      return {};
  }
}

Result attr_size(std::string_view name, size_t got, size_t want) {
  if (got == want) return {};
  return fail(std::string(name) + ": payload is " + num(got) + " bytes, expected " + num(want));
}

// A NUL-terminated name of 1 .. size-1 printable characters, none of which would end
// it in the text syntax (space , ( ) =). Copies it into out[size].
Result ct_string(std::string_view name, std::span<const uint8_t> v, size_t size, char* out) {
  const std::string n(name);
  if (v.empty() || v[0] == 0) return fail(n + " is empty");
  if (v.back() != 0) return fail(n + " is not NUL-terminated");
  const size_t len = v.size() - 1;
  if (std::memchr(v.data(), 0, len) != nullptr) return fail(n + " has a NUL inside");
  if (len > size - 1) return fail(n + " is " + num(len) + " characters, limit " + num(size - 1));
  for (size_t i = 0; i < len; ++i) {
    const uint8_t c = v[i];
    if (c <= ' ' || c >= 0x7f || c == ',' || c == '(' || c == ')' || c == '=') {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", c);
      return fail(n + " has a bad character " + hex);
    }
  }
  std::memcpy(out, v.data(), v.size());
  return {};
}

Result check_nat(std::span<const uint8_t> p, size_t base, size_t nat_off, CtNat& nat) {
  unsigned seen = 0;  // bit per OVS_NAT_ATTR_*
  size_t min_len = 0, max_len = 0;
  bool have_pmax = false;
  Result r = for_each_attr(
      p, base, Ctx{"nat", nat_off},
      [&](uint16_t type, std::span<const uint8_t> v, size_t) -> Result {
        const std::string_view name = nat_attr_name(type);
        if (name.empty()) return fail("nat: unknown attribute " + num(type));
        if (seen & (1u << type)) return fail("nat: duplicate attribute " + std::string(name));
        seen |= 1u << type;
        const std::string what = "nat: " + std::string(name);
        switch (type) {
          case OVS_NAT_ATTR_IP_MIN:
          case OVS_NAT_ATTR_IP_MAX:
            if (v.size() != 4 && v.size() != 16)
              return fail(what + ": payload is " + num(v.size()) + " bytes, expected 4 or 16");
            std::memcpy(type == OVS_NAT_ATTR_IP_MIN ? nat.ip_min : nat.ip_max, v.data(), v.size());
            (type == OVS_NAT_ATTR_IP_MIN ? min_len : max_len) = v.size();
            return {};
          case OVS_NAT_ATTR_PROTO_MIN:
          case OVS_NAT_ATTR_PROTO_MAX:
            if (Result s = attr_size(what, v.size(), 2); !s) return s;
            std::memcpy(type == OVS_NAT_ATTR_PROTO_MIN ? &nat.port_min : &nat.port_max, v.data(),
                        2);
            if (type == OVS_NAT_ATTR_PROTO_MAX) have_pmax = true;
            return {};
          default:  // flags
            if (Result s = attr_size(what, v.size(), 0); !s) return s;
            if (type == OVS_NAT_ATTR_SRC) nat.src = true;
            if (type == OVS_NAT_ATTR_DST) nat.dst = true;
            if (type == OVS_NAT_ATTR_PERSISTENT) nat.persistent = true;
            if (type == OVS_NAT_ATTR_PROTO_HASH) nat.proto_hash = true;
            if (type == OVS_NAT_ATTR_PROTO_RANDOM) nat.proto_random = true;
            return {};
        }
      });
  if (!r) return r;
  if (nat.src && nat.dst) return fail("nat: src and dst are exclusive");
  if (!nat.src && !nat.dst) {
    // Plain "nat": the kernel and OVS's printer refuse any option without a type.
    for (uint16_t t = OVS_NAT_ATTR_IP_MIN; t <= OVS_NAT_ATTR_PROTO_RANDOM; ++t)
      if (seen & (1u << t))
        return fail("nat: " + std::string(nat_attr_name(t)) + " needs src or dst");
    return {};
  }
  if (max_len != 0 && min_len == 0) return fail("nat: ip_max without ip_min");
  if (have_pmax && !(seen & (1u << OVS_NAT_ATTR_PROTO_MIN)))
    return fail("nat: proto_max without proto_min");
  if ((seen & (1u << OVS_NAT_ATTR_PROTO_MIN)) && min_len == 0)
    return fail("nat: proto_min without ip_min (a port range needs an address range)");
  if (max_len != 0 && max_len != min_len)
    return fail("nat: ip_min and ip_max are of different families (" + num(min_len) + " and " +
                num(max_len) + " bytes)");
  if ((seen & (1u << OVS_NAT_ATTR_PROTO_MIN)) && nat.port_min == 0)
    return fail("nat: proto_min is 0");
  if (nat.proto_hash && nat.proto_random) return fail("nat: hash and random are exclusive");
  nat.family = min_len == 4 ? 4 : min_len == 16 ? 6 : 0;
  if (max_len == 0) std::memcpy(nat.ip_max, nat.ip_min, sizeof nat.ip_max);
  if (std::memcmp(nat.ip_min, nat.ip_max, min_len) > 0) return fail("nat: ip_min > ip_max");
  if (!have_pmax) nat.port_max = nat.port_min;
  if (nat.port_min > nat.port_max) return fail("nat: proto_min > proto_max");
  return {};
}

// Checks and decodes a CT payload; `base` is its absolute offset (for messages).
Result check_ct(std::span<const uint8_t> p, size_t base, CtAction& ct) {
  unsigned seen = 0;  // bit per OVS_CT_ATTR_*
  Result r = for_each_attr(
      p, base, Ctx{}, [&](uint16_t type, std::span<const uint8_t> v, size_t aoff) -> Result {
        const std::string_view name = ct_attr_name(type);
        if (name.empty()) return fail("unknown attribute " + num(type));
        if (seen & (1u << type)) return fail("duplicate attribute " + std::string(name));
        seen |= 1u << type;
        switch (type) {
          case OVS_CT_ATTR_COMMIT:
            ct.commit = true;
            return attr_size(name, v.size(), 0);
          case OVS_CT_ATTR_FORCE_COMMIT:
            ct.force_commit = true;
            return attr_size(name, v.size(), 0);
          case OVS_CT_ATTR_ZONE:
            if (Result s = attr_size(name, v.size(), 2); !s) return s;
            std::memcpy(&ct.zone, v.data(), 2);
            return {};
          case OVS_CT_ATTR_MARK:
            if (Result s = attr_size(name, v.size(), 8); !s) return s;
            ct.has_mark = true;
            ct.mark = load_raw32(v.data());
            ct.mark_mask = load_raw32(v.data() + 4);
            return {};
          case OVS_CT_ATTR_LABELS:
            if (Result s = attr_size(name, v.size(), 32); !s) return s;
            ct.has_labels = true;
            std::memcpy(ct.labels, v.data(), 16);
            std::memcpy(ct.labels_mask, v.data() + 16, 16);
            return {};
          case OVS_CT_ATTR_HELPER: {
            char h[kCtHelperSize] = {};
            if (Result s = ct_string(name, v, kCtHelperSize, h); !s) return s;
            const std::string_view hv(h);
            if (hv == ct_helper_name(kCtHelperFtp)) {
              ct.helper = kCtHelperFtp;
            } else if (hv == ct_helper_name(kCtHelperTftp)) {
              ct.helper = kCtHelperTftp;
            } else {
              return fail("helper '" + std::string(hv) + "' is not supported (ftp, tftp)");
            }
            return {};
          }
          case kCtAttrTimeout:
            return ct_string(name, v, kCtTimeoutSize, ct.timeout);
          case kCtAttrEventmask:
            if (Result s = attr_size(name, v.size(), 4); !s) return s;
            ct.has_eventmask = true;
            ct.eventmask = load_raw32(v.data());
            return {};
          default:  // OVS_CT_ATTR_NAT
            ct.has_nat = true;
            return check_nat(v, aoff + kAttrHeader, aoff, ct.nat);
        }
      });
  if (!r) return r;
  if (ct.commit && ct.force_commit) return fail("commit and force_commit are exclusive");
  // The kernel refuses a NAT type without commit; OVS's userspace datapath warns that it
  // "won't be able to function properly".
  if ((ct.nat.src || ct.nat.dst) && !ct.commit && !ct.force_commit)
    return fail(std::string("nat(") + (ct.nat.src ? "src" : "dst") +
                ") requires commit or force_commit");
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
      const uint16_t tpid = ntohs(load_raw16(p.data()));
      const uint16_t tci = ntohs(load_raw16(p.data() + 2));
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
      const uint32_t alg = load_raw32(p.data());
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
      if (load_raw32(p.data()) == 0)
        return fail(where("esp_encrypt", off) + ": group 0 is invalid");
      return {};
    case OVS_ACTION_ATTR_CT: {
      CtAction ct;
      if (Result r = check_ct(p, off + kAttrHeader, ct); !r)
        return fail(where("ct", off) + ": " + r.error());
      return {};
    }
    case OVS_ACTION_ATTR_CT_CLEAR:
      return expect_size("ct_clear", off, p.size(), 0);
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

std::expected<CtAction, std::string> decode_ct(std::span<const uint8_t> payload) {
  CtAction ct;
  if (Result r = check_ct(payload, 0, ct); !r) return fail("ct: " + r.error());
  return ct;
}

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

ActionWriter& ActionWriter::ct(const CtAction& c) {
  const size_t s = begin_attr(OVS_ACTION_ATTR_CT);
  if (c.commit) attr(OVS_CT_ATTR_COMMIT, {});
  if (c.force_commit) attr(OVS_CT_ATTR_FORCE_COMMIT, {});
  if (c.zone != 0) attr(OVS_CT_ATTR_ZONE, bytes_of(c.zone));
  if (c.has_mark) {
    const uint32_t m[2] = {c.mark, c.mark_mask};
    attr(OVS_CT_ATTR_MARK, bytes_of(m));
  }
  if (c.has_labels) {
    uint8_t l[32];
    std::memcpy(l, c.labels, 16);
    std::memcpy(l + 16, c.labels_mask, 16);
    attr(OVS_CT_ATTR_LABELS, bytes_of(l));
  }
  const std::string_view helper = ct_helper_name(c.helper);
  if (!helper.empty()) {
    char h[kCtHelperSize] = {};
    std::memcpy(h, helper.data(), helper.size());
    attr(OVS_CT_ATTR_HELPER, std::span(reinterpret_cast<const uint8_t*>(h), helper.size() + 1));
  }
  const size_t tlen = strnlen(c.timeout, sizeof c.timeout);
  if (tlen != 0) {
    char t[sizeof c.timeout + 1] = {};
    std::memcpy(t, c.timeout, tlen);
    attr(kCtAttrTimeout, std::span(reinterpret_cast<const uint8_t*>(t), tlen + 1));
  }
  if (c.has_eventmask) attr(kCtAttrEventmask, bytes_of(c.eventmask));
  if (c.has_nat) {
    const CtNat& n = c.nat;
    const size_t ns = begin_attr(OVS_CT_ATTR_NAT);
    if (n.src) attr(OVS_NAT_ATTR_SRC, {});
    if (n.dst) attr(OVS_NAT_ATTR_DST, {});
    const size_t alen = n.family == 4 ? 4 : n.family == 6 ? 16 : 0;
    if (alen != 0) {
      attr(OVS_NAT_ATTR_IP_MIN, std::span<const uint8_t>(n.ip_min, alen));
      static constexpr uint8_t kZero[16] = {};
      if (std::memcmp(n.ip_max, kZero, alen) != 0 && std::memcmp(n.ip_max, n.ip_min, alen) != 0)
        attr(OVS_NAT_ATTR_IP_MAX, std::span<const uint8_t>(n.ip_max, alen));
    }
    if (n.port_min != 0) attr(OVS_NAT_ATTR_PROTO_MIN, bytes_of(n.port_min));
    if (n.port_max != 0 && n.port_max != n.port_min)
      attr(OVS_NAT_ATTR_PROTO_MAX, bytes_of(n.port_max));
    if (n.persistent) attr(OVS_NAT_ATTR_PERSISTENT, {});
    if (n.proto_hash) attr(OVS_NAT_ATTR_PROTO_HASH, {});
    if (n.proto_random) attr(OVS_NAT_ATTR_PROTO_RANDOM, {});
    end_attr(ns);
  }
  end_attr(s);
  return *this;
}

ActionWriter& ActionWriter::ct_clear() {
  return attr(OVS_ACTION_ATTR_CT_CLEAR, {});
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
