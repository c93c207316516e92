#include "dataplane/api/odp_text.hpp"

#include <arpa/inet.h>
#include <linux/openvswitch.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "dataplane/api/odp_actions.hpp"
#include "flowtables/bytes.hpp"

namespace gl::odp {

using flow::FlowKey;
using flow::FlowMask;
using flow::FlowMatch;
using flow::load_be_n;
using flow::store_be_n;

namespace {

using Result = std::expected<void, std::string>;

std::unexpected<std::string> fail(std::string msg) {
  return std::unexpected(std::move(msg));
}

__attribute__((format(printf, 1, 2))) std::string sfmt(const char* f, ...) {
  char buf[128];
  va_list ap;
  va_start(ap, f);
  const int n = std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return std::string(buf, n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
}

std::string q(std::string_view s) {
  return "'" + std::string(s) + "'";
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string join(const std::vector<std::string>& parts, char sep = ',') {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

// ---- tokens ---------------------------------------------------------------------------

// Splits `s` at commas outside parentheses. An empty (all-blank) `s` gives no items.
std::expected<std::vector<std::string_view>, std::string> split_top(std::string_view s) {
  std::vector<std::string_view> out;
  if (trim(s).empty()) return out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth < 0) return fail("unbalanced ')' in " + q(trim(s)));
    } else if (c == ',' && depth == 0) {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  if (depth != 0) return fail("missing ')' in " + q(trim(s)));
  out.push_back(trim(s.substr(start)));
  for (std::string_view item : out)
    if (item.empty()) return fail("empty item in " + q(trim(s)));
  return out;
}

struct Call {
  std::string_view name;
  std::string_view args;  // inside the parentheses
  bool parens = false;
};

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// "name" or "name(args)" with the closing parenthesis last.
std::expected<Call, std::string> split_call(std::string_view item) {
  Call c;
  const size_t open = item.find('(');
  c.name = trim(item.substr(0, open));
  if (c.name.empty()) return fail("bad syntax " + q(item));
  for (char ch : c.name)
    if (!is_name_char(ch)) return fail("bad syntax " + q(item));
  if (open == std::string_view::npos) return c;
  int depth = 0;
  for (size_t i = open; i < item.size(); ++i) {
    if (item[i] == '(') ++depth;
    if (item[i] == ')' && --depth == 0) {
      if (i + 1 != item.size()) return fail("unexpected text after ')' in " + q(item));
      c.args = item.substr(open + 1, i - open - 1);
      c.parens = true;
      return c;
    }
  }
  return fail("missing ')' in " + q(item));
}

// ---- numbers ----------------------------------------------------------------------

// Decimal or 0x-hexadecimal.
std::optional<uint64_t> to_u64(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Hexadecimal with an optional "0x", as OVS reads ct marks (scanf "%x").
std::optional<uint32_t> parse_hex32(std::string_view s) {
  s = trim(s);
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  if (s.empty()) return std::nullopt;
  uint32_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::expected<uint64_t, std::string> parse_uint(std::string_view tok, uint64_t max) {
  tok = trim(tok);
  if (tok.empty()) return fail("missing value");
  const auto v = to_u64(tok);
  if (!v) return fail("bad number " + q(tok));
  if (*v > max) return fail("value " + q(tok) + " out of range (max " + std::to_string(max) + ")");
  return *v;
}

struct ValueMask {
  uint64_t v = 0;
  uint64_t m = 0;
};

// "value" (mask = exact) or "value/mask".
std::expected<ValueMask, std::string> parse_uint_masked(std::string_view tok, uint64_t vmax,
                                                        uint64_t mmax, uint64_t exact) {
  const size_t slash = tok.find('/');
  const auto v = parse_uint(tok.substr(0, slash), vmax);
  if (!v) return fail(v.error());
  ValueMask r{*v, exact};
  if (slash != std::string_view::npos) {
    const auto m = parse_uint(tok.substr(slash + 1), mmax);
    if (!m) return fail("mask: " + m.error());
    r.m = *m;
  }
  return r;
}

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

bool all_ones(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != 0xff) return false;
  return true;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// ---- addresses ----------------------------------------------------------------------

std::optional<std::array<uint8_t, 6>> parse_mac(std::string_view text) {
  std::array<uint8_t, 6> mac{};
  size_t pos = 0;
  for (size_t i = 0; i < 6; ++i) {
    if (i) {
      if (pos >= text.size() || text[pos] != ':') return std::nullopt;
      ++pos;
    }
    int v = 0, digits = 0;
    while (pos < text.size() && digits < 2 && hex_digit(text[pos]) >= 0) {
      v = v * 16 + hex_digit(text[pos++]);
      ++digits;
    }
    if (digits == 0) return std::nullopt;
    mac[i] = static_cast<uint8_t>(v);
  }
  if (pos != text.size()) return std::nullopt;
  return mac;
}

std::string format_mac(std::span<const uint8_t, 6> mac) {
  return sfmt("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

std::optional<uint32_t> parse_ipv4(std::string_view text) {
  if (text.empty() || text.size() > 15) return std::nullopt;
  const std::string s(text);
  in_addr a;
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return a.s_addr;
}

std::string format_ipv4(uint32_t addr_be) {
  char buf[INET_ADDRSTRLEN];
  in_addr a;
  a.s_addr = addr_be;
  return inet_ntop(AF_INET, &a, buf, sizeof buf) ? std::string(buf) : std::string("?");
}

std::optional<std::array<uint8_t, 16>> parse_ipv6(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string s(text);
  std::array<uint8_t, 16> out{};
  if (inet_pton(AF_INET6, s.c_str(), out.data()) != 1) return std::nullopt;
  return out;
}

std::string format_ipv6(std::span<const uint8_t, 16> addr) {
  char buf[INET6_ADDRSTRLEN];
  return inet_ntop(AF_INET6, addr.data(), buf, sizeof buf) ? std::string(buf) : std::string("?");
}

namespace {

// ---- fields -------------------------------------------------------------------------

// How a field is written, stored and printed. Every kind is stored big-endian / byte
// wise (packet fields in FlowKey and in the ovs_key_* structs are network order).
enum class Kind : uint8_t {
  kMac,       // 6 bytes
  kIpv4,      // 4 bytes; mask dotted or /prefix
  kIpv6,      // 16 bytes; mask address or /prefix
  kU8Dec,     // 1 byte, printed decimal (proto, ttl)
  kU8Hex,     // 1 byte, printed hex (tos, tclass)
  kBe16Dec,   // 2 bytes, printed decimal (ports, arp op)
  kIcmp,      // 2 bytes holding an 8-bit value (FlowKey ICMP type/code); exact = 0x00ff
  kLabel,     // 4 bytes holding a 20-bit IPv6 flow label; exact = 0x000fffff
  kFragFlow,  // FlowKey nw_frag bits: no / first / later
  kFragOdp,   // ovs_key_ipv4/6 frag enum: no=0 / first=1 / later=2
};

struct Field {
  std::string_view name;
  Kind kind;
  uint16_t off;
};

constexpr size_t kind_size(Kind k) {
  switch (k) {
    case Kind::kMac:
      return 6;
    case Kind::kIpv4:
      return 4;
    case Kind::kIpv6:
      return 16;
    case Kind::kU8Dec:
    case Kind::kU8Hex:
    case Kind::kFragFlow:
    case Kind::kFragOdp:
      return 1;
    case Kind::kBe16Dec:
    case Kind::kIcmp:
      return 2;
    case Kind::kLabel:
      return 4;
  }
  return 0;
}

// The mask a field written without "/mask" gets (kFragFlow has none: it depends on
// the value).
void exact_mask_of(Kind k, uint8_t* out) {
  std::memset(out, 0xff, kind_size(k));
  if (k == Kind::kIcmp) store_be_n(out, 0xff, 2);
  if (k == Kind::kLabel) store_be_n(out, 0xfffff, 4);
}

bool is_exact(Kind k, const uint8_t* m) {
  uint8_t e[16];
  exact_mask_of(k, e);
  return std::memcmp(e, m, kind_size(k)) == 0;
}

constexpr std::string_view kFragNames[] = {"no", "first", "later"};

// FlowKey nw_frag (value, mask) for "no", "first", "later".
constexpr uint8_t kFragFlowValue[] = {0, flow::kFragAny, flow::kFragAny | flow::kFragLater};
constexpr uint8_t kFragFlowMask[] = {flow::kFragAny, flow::kFragAny | flow::kFragLater,
                                     flow::kFragAny | flow::kFragLater};

std::expected<uint32_t, std::string> ipv4_mask(std::string_view tok) {
  if (!tok.empty() && tok.find('.') == std::string_view::npos) {
    const auto len = to_u64(tok);
    if (!len || *len > 32) return fail("bad IPv4 mask " + q(tok));
    return *len == 0 ? 0u : htonl(~0u << (32 - *len));
  }
  const auto m = parse_ipv4(tok);
  if (!m) return fail("bad IPv4 mask " + q(tok));
  return *m;
}

std::expected<std::array<uint8_t, 16>, std::string> ipv6_mask(std::string_view tok) {
  if (!tok.empty() && tok.find(':') == std::string_view::npos) {
    const auto len = to_u64(tok);
    if (!len || *len > 128) return fail("bad IPv6 mask " + q(tok));
    std::array<uint8_t, 16> m{};
    for (size_t bit = 0; bit < *len; ++bit) m[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
    return m;
  }
  const auto m = parse_ipv6(tok);
  if (!m) return fail("bad IPv6 mask " + q(tok));
  return *m;
}

// Parses one field value ("v" or "v/m") into v and m (kind_size bytes each).
Result parse_field(Kind k, std::string_view tok, uint8_t* v, uint8_t* m) {
  tok = trim(tok);
  if (tok.empty()) return fail("missing value");
  const size_t slash = tok.find('/');
  const std::string_view vt = trim(tok.substr(0, slash));
  const std::string_view mt =
      slash == std::string_view::npos ? std::string_view() : trim(tok.substr(slash + 1));
  const bool has_mask = slash != std::string_view::npos;
  switch (k) {
    case Kind::kMac: {
      const auto a = parse_mac(vt);
      if (!a) return fail("bad Ethernet address " + q(vt));
      std::memcpy(v, a->data(), 6);
      std::memset(m, 0xff, 6);
      if (has_mask) {
        const auto b = parse_mac(mt);
        if (!b) return fail("bad Ethernet mask " + q(mt));
        std::memcpy(m, b->data(), 6);
      }
      return {};
    }
    case Kind::kIpv4: {
      const auto a = parse_ipv4(vt);
      if (!a) return fail("bad IPv4 address " + q(vt));
      uint32_t mask = 0xffffffffu;
      if (has_mask) {
        const auto b = ipv4_mask(mt);
        if (!b) return fail(b.error());
        mask = *b;
      }
      std::memcpy(v, &*a, 4);
      std::memcpy(m, &mask, 4);
      return {};
    }
    case Kind::kIpv6: {
      const auto a = parse_ipv6(vt);
      if (!a) return fail("bad IPv6 address " + q(vt));
      std::memcpy(v, a->data(), 16);
      std::memset(m, 0xff, 16);
      if (has_mask) {
        const auto b = ipv6_mask(mt);
        if (!b) return fail(b.error());
        std::memcpy(m, b->data(), 16);
      }
      return {};
    }
    case Kind::kFragFlow:
    case Kind::kFragOdp:
      for (uint8_t i = 0; i < 3; ++i) {
        if (vt != kFragNames[i]) continue;
        if (has_mask) return fail("frag=" + std::string(vt) + " takes no mask");
        *v = k == Kind::kFragFlow ? kFragFlowValue[i] : i;
        *m = k == Kind::kFragFlow ? kFragFlowMask[i] : 0xff;
        return {};
      }
      if (vt.empty() || vt[0] < '0' || vt[0] > '9')
        return fail("bad frag " + q(vt) + " (expected no, first, later or a number)");
      [[fallthrough]];
    default: {
      uint64_t vmax = 0, mmax = 0;
      switch (k) {
        case Kind::kBe16Dec:
          vmax = mmax = 0xffff;
          break;
        case Kind::kIcmp:
          vmax = 0xff, mmax = 0xffff;
          break;
        case Kind::kLabel:
          vmax = 0xfffff, mmax = 0xffffffff;
          break;
        default:
          vmax = mmax = 0xff;
          break;
      }
      uint8_t exact[4];
      exact_mask_of(k, exact);
      const auto r = parse_uint_masked(tok, vmax, mmax, load_be_n(exact, kind_size(k)));
      if (!r) return fail(r.error());
      store_be_n(v, r->v, kind_size(k));
      store_be_n(m, r->m, kind_size(k));
      return {};
    }
  }
}

// Prints one field's value (and "/mask" when not exact). `m` == nullptr: exact.
std::string format_field(Kind k, const uint8_t* v, const uint8_t* m) {
  const bool exact = m == nullptr || (k != Kind::kFragFlow && is_exact(k, m));
  const size_t n = kind_size(k);
  switch (k) {
    case Kind::kMac: {
      std::string s = format_mac(std::span<const uint8_t, 6>(v, 6));
      if (!exact) s += "/" + format_mac(std::span<const uint8_t, 6>(m, 6));
      return s;
    }
    case Kind::kIpv4: {
      uint32_t a, b = 0;
      std::memcpy(&a, v, 4);
      if (m) std::memcpy(&b, m, 4);
      std::string s = format_ipv4(a);
      if (!exact) s += "/" + format_ipv4(b);
      return s;
    }
    case Kind::kIpv6: {
      std::string s = format_ipv6(std::span<const uint8_t, 16>(v, 16));
      if (!exact) s += "/" + format_ipv6(std::span<const uint8_t, 16>(m, 16));
      return s;
    }
    case Kind::kFragFlow:
      for (size_t i = 0; i < 3; ++i)
        if (*v == kFragFlowValue[i] && (m == nullptr || *m == kFragFlowMask[i]))
          return std::string(kFragNames[i]);
      return sfmt("%#x/%#x", *v, m ? *m : 0xff);
    case Kind::kFragOdp:
      if (exact && *v < 3) return std::string(kFragNames[*v]);
      return exact ? sfmt("%u", *v) : sfmt("%#x/%#x", *v, *m);
    default: {
      const auto val = static_cast<unsigned>(load_be_n(v, n));
      std::string s = (k == Kind::kU8Hex || k == Kind::kLabel) ? sfmt("%#x", val) : sfmt("%u", val);
      if (!exact) s += sfmt("/%#x", static_cast<unsigned>(load_be_n(m, n)));
      return s;
    }
  }
}

// Parses "f1=v1,f2=v2" for one key into the bytes at v_base / m_base. Errors read
// "KEY(ITEM): problem", wrapped as "OUTER(KEY(ITEM)): problem" when `outer` is set.
// With `strict` a value with bits outside its mask is an error (set actions).
Result parse_fields(std::string_view key, std::string_view args, std::span<const Field> fields,
                    uint8_t* v_base, uint8_t* m_base, std::string_view outer = {},
                    bool strict = false) {
  auto ctx = [&](std::string_view item) {
    std::string s = std::string(key) + "(" + std::string(item) + ")";
    if (!outer.empty()) s = std::string(outer) + "(" + s + ")";
    return s + ": ";
  };
  const auto items = split_top(args);
  if (!items) return fail(ctx(args) + items.error());
  uint32_t seen = 0;
  for (std::string_view item : *items) {
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) return fail(ctx(item) + "expected field=value");
    const std::string_view name = trim(item.substr(0, eq));
    size_t idx = 0;
    while (idx < fields.size() && fields[idx].name != name) ++idx;
    if (idx == fields.size()) {
      std::string known;
      for (const Field& f : fields) known += (known.empty() ? "" : ", ") + std::string(f.name);
      return fail(ctx(item) + "unknown field " + q(name) + " (expected " + known + ")");
    }
    if (seen & (1u << idx)) return fail(ctx(item) + "field " + q(name) + " given twice");
    seen |= 1u << idx;
    const Field& f = fields[idx];
    if (Result r = parse_field(f.kind, item.substr(eq + 1), v_base + f.off, m_base + f.off); !r)
      return fail(ctx(item) + r.error());
    if (strict)
      for (size_t i = 0; i < kind_size(f.kind); ++i)
        if (v_base[f.off + i] & ~m_base[f.off + i])
          return fail(ctx(item) + "value has bits outside the mask");
  }
  return {};
}

// "f1=..,f2=.." for the fields whose mask is non-zero (every field when m_base is null).
std::string format_fields(std::span<const Field> fields, const uint8_t* v_base,
                          const uint8_t* m_base) {
  std::vector<std::string> parts;
  for (const Field& f : fields) {
    const uint8_t* m = m_base ? m_base + f.off : nullptr;
    if (m && all_zero(m, kind_size(f.kind))) continue;
    parts.push_back(std::string(f.name) + "=" + format_field(f.kind, v_base + f.off, m));
  }
  return join(parts);
}

bool any_mask(std::span<const Field> fields, const uint8_t* m_base) {
  for (const Field& f : fields)
    if (!all_zero(m_base + f.off, kind_size(f.kind))) return true;
  return false;
}

// ---- field tables ---------------------------------------------------------------------

#define GL_FK(f) static_cast<uint16_t>(offsetof(FlowKey, f))

constexpr Field kFlowEth[] = {{"src", Kind::kMac, GL_FK(eth_src)},
                              {"dst", Kind::kMac, GL_FK(eth_dst)}};
constexpr Field kFlowIpv4[] = {
    {"src", Kind::kIpv4, GL_FK(ipv4_src)},    {"dst", Kind::kIpv4, GL_FK(ipv4_dst)},
    {"proto", Kind::kU8Dec, GL_FK(nw_proto)}, {"tos", Kind::kU8Hex, GL_FK(nw_tos)},
    {"ttl", Kind::kU8Dec, GL_FK(nw_ttl)},     {"frag", Kind::kFragFlow, GL_FK(nw_frag)}};
constexpr Field kFlowIpv6[] = {
    {"src", Kind::kIpv6, GL_FK(ipv6_src)},      {"dst", Kind::kIpv6, GL_FK(ipv6_dst)},
    {"label", Kind::kLabel, GL_FK(ipv6_label)}, {"proto", Kind::kU8Dec, GL_FK(nw_proto)},
    {"tclass", Kind::kU8Hex, GL_FK(nw_tos)},    {"hlimit", Kind::kU8Dec, GL_FK(nw_ttl)},
    {"frag", Kind::kFragFlow, GL_FK(nw_frag)}};
constexpr Field kFlowArp[] = {{"sip", Kind::kIpv4, GL_FK(ipv4_src)},
                              {"tip", Kind::kIpv4, GL_FK(ipv4_dst)},
                              {"op", Kind::kBe16Dec, GL_FK(arp_op)},
                              {"sha", Kind::kMac, GL_FK(arp_sha)},
                              {"tha", Kind::kMac, GL_FK(arp_tha)}};
constexpr Field kFlowPorts[] = {{"src", Kind::kBe16Dec, GL_FK(tp_src)},
                                {"dst", Kind::kBe16Dec, GL_FK(tp_dst)}};
constexpr Field kFlowIcmp[] = {{"type", Kind::kIcmp, GL_FK(tp_src)},
                               {"code", Kind::kIcmp, GL_FK(tp_dst)}};
// Fields printed outside their family (matches parse_flow cannot produce).
constexpr Field kFlowIpv4Addr[] = {{"src", Kind::kIpv4, GL_FK(ipv4_src)},
                                   {"dst", Kind::kIpv4, GL_FK(ipv4_dst)}};
constexpr Field kFlowIpv6Addr[] = {{"src", Kind::kIpv6, GL_FK(ipv6_src)},
                                   {"dst", Kind::kIpv6, GL_FK(ipv6_dst)},
                                   {"label", Kind::kLabel, GL_FK(ipv6_label)}};
constexpr Field kFlowArpOnly[] = {{"op", Kind::kBe16Dec, GL_FK(arp_op)},
                                  {"sha", Kind::kMac, GL_FK(arp_sha)},
                                  {"tha", Kind::kMac, GL_FK(arp_tha)}};
// ct_orig_tuple (OVS's ct_tuple4 / ct_tuple6 keys).
constexpr Field kFlowCtTuple4[] = {{"src", Kind::kIpv4, GL_FK(ct_nw_src)},
                                   {"dst", Kind::kIpv4, GL_FK(ct_nw_dst)},
                                   {"proto", Kind::kU8Dec, GL_FK(ct_nw_proto)},
                                   {"tp_src", Kind::kBe16Dec, GL_FK(ct_tp_src)},
                                   {"tp_dst", Kind::kBe16Dec, GL_FK(ct_tp_dst)}};
constexpr Field kFlowCtTuple6[] = {{"src", Kind::kIpv6, GL_FK(ct_ipv6_src)},
                                   {"dst", Kind::kIpv6, GL_FK(ct_ipv6_dst)},
                                   {"proto", Kind::kU8Dec, GL_FK(ct_nw_proto)},
                                   {"tp_src", Kind::kBe16Dec, GL_FK(ct_tp_src)},
                                   {"tp_dst", Kind::kBe16Dec, GL_FK(ct_tp_dst)}};
constexpr Field kFlowNwOnly[] = {{"proto", Kind::kU8Dec, GL_FK(nw_proto)},
                                 {"tos", Kind::kU8Hex, GL_FK(nw_tos)},
                                 {"ttl", Kind::kU8Dec, GL_FK(nw_ttl)},
                                 {"frag", Kind::kFragFlow, GL_FK(nw_frag)}};
#undef GL_FK

#define GL_OK(type, f) static_cast<uint16_t>(offsetof(type, f))
constexpr Field kSetEth[] = {{"src", Kind::kMac, GL_OK(ovs_key_ethernet, eth_src)},
                             {"dst", Kind::kMac, GL_OK(ovs_key_ethernet, eth_dst)}};
constexpr Field kSetIpv4[] = {{"src", Kind::kIpv4, GL_OK(ovs_key_ipv4, ipv4_src)},
                              {"dst", Kind::kIpv4, GL_OK(ovs_key_ipv4, ipv4_dst)},
                              {"proto", Kind::kU8Dec, GL_OK(ovs_key_ipv4, ipv4_proto)},
                              {"tos", Kind::kU8Hex, GL_OK(ovs_key_ipv4, ipv4_tos)},
                              {"ttl", Kind::kU8Dec, GL_OK(ovs_key_ipv4, ipv4_ttl)},
                              {"frag", Kind::kFragOdp, GL_OK(ovs_key_ipv4, ipv4_frag)}};
constexpr Field kSetIpv6[] = {{"src", Kind::kIpv6, GL_OK(ovs_key_ipv6, ipv6_src)},
                              {"dst", Kind::kIpv6, GL_OK(ovs_key_ipv6, ipv6_dst)},
                              {"label", Kind::kLabel, GL_OK(ovs_key_ipv6, ipv6_label)},
                              {"proto", Kind::kU8Dec, GL_OK(ovs_key_ipv6, ipv6_proto)},
                              {"tclass", Kind::kU8Hex, GL_OK(ovs_key_ipv6, ipv6_tclass)},
                              {"hlimit", Kind::kU8Dec, GL_OK(ovs_key_ipv6, ipv6_hlimit)},
                              {"frag", Kind::kFragOdp, GL_OK(ovs_key_ipv6, ipv6_frag)}};
// tcp, udp and sctp keys are all {be16 src; be16 dst}.
constexpr Field kSetPorts[] = {{"src", Kind::kBe16Dec, GL_OK(ovs_key_tcp, tcp_src)},
                               {"dst", Kind::kBe16Dec, GL_OK(ovs_key_tcp, tcp_dst)}};
#undef GL_OK
static_assert(sizeof(ovs_key_udp) == sizeof(ovs_key_tcp) &&
              sizeof(ovs_key_sctp) == sizeof(ovs_key_tcp));

struct SetKey {
  std::string_view name;
  uint16_t type;
  std::span<const Field> fields;  // empty: a u32 (skb_mark, skb_priority)
};

constexpr SetKey kSetKeys[] = {
    {"eth", OVS_KEY_ATTR_ETHERNET, kSetEth}, {"ipv4", OVS_KEY_ATTR_IPV4, kSetIpv4},
    {"ipv6", OVS_KEY_ATTR_IPV6, kSetIpv6},   {"tcp", OVS_KEY_ATTR_TCP, kSetPorts},
    {"udp", OVS_KEY_ATTR_UDP, kSetPorts},    {"sctp", OVS_KEY_ATTR_SCTP, kSetPorts},
    {"skb_mark", OVS_KEY_ATTR_SKB_MARK, {}}, {"skb_priority", OVS_KEY_ATTR_PRIORITY, {}},
};

const SetKey* find_set_key(std::string_view name) {
  for (const SetKey& k : kSetKeys)
    if (k.name == name) return &k;
  return nullptr;
}

const SetKey* find_set_key(uint16_t type) {
  for (const SetKey& k : kSetKeys)
    if (k.type == type) return &k;
  return nullptr;
}

// Key names OVS knows that Goldilocks does not match on.
constexpr std::string_view kUnsupportedKeys[] = {"tunnel", "mpls", "nd", "nd_ext", "nsh", "unspec"};

bool is_unsupported_key(std::string_view name) {
  for (std::string_view k : kUnsupportedKeys)
    if (k == name) return true;
  return false;
}

// ---- flag sets ------------------------------------------------------------------------

struct FlagName {
  uint32_t bit;
  std::string_view name;
};

constexpr FlagName kCtStateFlags[] = {{0x01, "new"}, {0x02, "est"}, {0x04, "rel"},  {0x08, "rpl"},
                                      {0x10, "inv"}, {0x20, "trk"}, {0x40, "snat"}, {0x80, "dnat"}};
constexpr FlagName kTcpFlags[] = {{0x001, "fin"},   {0x002, "syn"},   {0x004, "rst"},
                                  {0x008, "psh"},   {0x010, "ack"},   {0x020, "urg"},
                                  {0x040, "ece"},   {0x080, "cwr"},   {0x100, "ns"},
                                  {0x200, "[200]"}, {0x400, "[400]"}, {0x800, "[800]"}};

// "+a-b" (mask = the bits named), "a|b" (mask = full), or a number "v[/m]" (mask = full).
std::expected<ValueMask, std::string> parse_flags(std::string_view tok,
                                                  std::span<const FlagName> names, uint32_t full,
                                                  uint32_t max) {
  tok = trim(tok);
  if (tok.empty()) return fail("missing value");
  if (tok[0] >= '0' && tok[0] <= '9') return parse_uint_masked(tok, max, max, full);
  auto lookup = [&](std::string_view n) -> std::optional<uint32_t> {
    for (const FlagName& f : names)
      if (f.name == n) return f.bit;
    return std::nullopt;
  };
  ValueMask r;
  if (tok[0] == '+' || tok[0] == '-') {
    size_t i = 0;
    while (i < tok.size()) {
      const char sign = tok[i];
      if (sign != '+' && sign != '-') return fail("expected '+' or '-' in " + q(tok));
      size_t j = i + 1;
      while (j < tok.size() && tok[j] != '+' && tok[j] != '-') ++j;
      const std::string_view n = trim(tok.substr(i + 1, j - i - 1));
      const auto bit = lookup(n);
      if (!bit) return fail("unknown flag " + q(n));
      if (r.m & *bit) return fail("flag " + q(n) + " given twice");
      r.m |= *bit;
      if (sign == '+') r.v |= *bit;
      i = j;
    }
    return r;
  }
  size_t i = 0;
  while (i <= tok.size()) {
    size_t j = tok.find('|', i);
    if (j == std::string_view::npos) j = tok.size();
    const std::string_view n = trim(tok.substr(i, j - i));
    const auto bit = lookup(n);
    if (!bit) return fail("unknown flag " + q(n));
    r.v |= *bit;
    i = j + 1;
  }
  r.m = full;
  return r;
}

std::string format_flags(uint32_t v, uint32_t m, std::span<const FlagName> names, uint32_t full) {
  std::string s;
  if (m == full) {
    if (v == 0) return "0";
    for (const FlagName& f : names)
      if (v & f.bit) s += (s.empty() ? "" : "|") + std::string(f.name);
    return s;
  }
  if ((m & ~full) == 0) {
    for (const FlagName& f : names)
      if (m & f.bit) s += ((v & f.bit) ? "+" : "-") + std::string(f.name);
    return s;
  }
  return sfmt("%#x/%#x", v, m);
}

// ---- 128-bit ct_label (bytes little-endian: ct_label[0] is the least significant) ----

std::optional<std::array<uint8_t, 16>> parse_u128(std::string_view tok) {
  tok = trim(tok);
  std::array<uint8_t, 16> out{};
  if (tok.size() > 2 && tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X')) {
    const std::string_view h = tok.substr(2);
    if (h.size() > 32) return std::nullopt;
    for (size_t i = 0; i < h.size(); ++i) {
      const int d = hex_digit(h[h.size() - 1 - i]);
      if (d < 0) return std::nullopt;
      out[i / 2] |= static_cast<uint8_t>(d << (4 * (i % 2)));
    }
    return out;
  }
  const auto v = to_u64(tok);
  if (!v) return std::nullopt;
  for (size_t i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(*v >> (8 * i));
  return out;
}

std::string format_u128(const uint8_t* b) {
  std::string s;
  for (size_t i = 16; i-- > 0;) {
    if (s.empty() && b[i] == 0) continue;
    s += s.empty() ? sfmt("%x", b[i]) : sfmt("%02x", b[i]);
  }
  return s.empty() ? "0" : "0x" + s;
}

// ---- parse_flow -----------------------------------------------------------------------

// Flow keys allowed only outside encap(...).
bool is_top_only_key(std::string_view n) {
  for (std::string_view t :
       {"recirc_id", "dp_hash", "skb_priority", "in_port", "skb_mark", "ct_state", "ct_zone",
        "ct_mark", "ct_label", "ct_tuple4", "ct_tuple6", "eth", "vlan", "encap", "packet_type"})
    if (t == n) return true;
  return false;
}

bool is_known_key(std::string_view n) {
  if (is_top_only_key(n)) return true;
  for (std::string_view t :
       {"eth_type", "ipv4", "ipv6", "arp", "tcp", "udp", "sctp", "icmp", "icmpv6", "tcp_flags"})
    if (t == n) return true;
  return false;
}

constexpr uint16_t kCfi = flow::kVlanCfi;

class FlowParser {
 public:
  std::expected<FlowMatch, std::string> run(std::string_view text) {
    if (trim(text).empty()) return fail("empty flow");
    if (Result r = parse_list(text, kTop); !r) return fail(r.error());
    if (tpid_marker_ && !vlan_tagged_)
      return fail("eth_type(0x8100) must be followed by vlan(...)");
    // OVS: an Ethernet flow without a VLAN attribute matches untagged packets only.
    if (eth_type_top_ && !vlan_tagged_ && !vlan_explicit_) {
      k_.vlan_tci = 0;
      m_.vlan_tci = 0xffff;
    }
    FlowMatch fm;
    fm.mask = m_;
    flow::apply_mask(k_, m_, fm.key);
    return fm;
  }

 private:
  enum Scope { kTop = 0, kEncap = 1 };

  Result parse_list(std::string_view text, Scope scope) {
    const auto items = split_top(text);
    if (!items) return fail(items.error());
    for (std::string_view item : *items)
      if (Result r = parse_key(item, scope); !r) return r;
    return {};
  }

  template <class T>
  static void store(FlowKey& k, size_t off, T v) {
    std::memcpy(reinterpret_cast<uint8_t*>(&k) + off, &v, sizeof v);
  }

  // Host-order metadata: name(value[/mask]).
  template <class T>
  Result meta(const Call& c, size_t off) {
    const uint64_t max = static_cast<T>(~T{0});
    const auto r = parse_uint_masked(c.args, max, max, max);
    if (!r) return fail(std::string(c.name) + "(" + std::string(c.args) + "): " + r.error());
    store<T>(k_, off, static_cast<T>(r->v));
    store<T>(m_, off, static_cast<T>(r->m));
    return {};
  }

  Result parse_key(std::string_view item, Scope scope) {
    const auto c = split_call(item);
    if (!c) return fail(c.error());
    const std::string_view n = c->name;
    if (is_unsupported_key(n)) return fail("key " + q(n) + " is not supported");
    if (!is_known_key(n)) return fail("unknown key " + q(n));
    if (!c->parens) return fail("key " + q(n) + " needs parentheses: " + std::string(n) + "(...)");
    if (scope == kEncap && is_top_only_key(n))
      return fail(std::string(n) + "(...) is not allowed inside encap(...)");
    auto& seen = seen_[scope];
    for (const std::string& s : seen)
      if (s == n) return fail("duplicate key " + q(n));
    seen.emplace_back(n);
    const std::string ctx = std::string(n) + "(" + std::string(c->args) + "): ";

    if (n == "recirc_id") return meta<uint32_t>(*c, offsetof(FlowKey, recirc_id));
    if (n == "dp_hash") return meta<uint32_t>(*c, offsetof(FlowKey, dp_hash));
    if (n == "skb_priority") return meta<uint32_t>(*c, offsetof(FlowKey, priority));
    if (n == "in_port") return meta<uint32_t>(*c, offsetof(FlowKey, in_port));
    if (n == "skb_mark") return meta<uint32_t>(*c, offsetof(FlowKey, pkt_mark));
    if (n == "ct_mark") return meta<uint32_t>(*c, offsetof(FlowKey, ct_mark));
    if (n == "ct_zone") return meta<uint16_t>(*c, offsetof(FlowKey, ct_zone));
    if (n == "ct_state") {
      const auto r = parse_flags(c->args, kCtStateFlags, 0xff, 0xff);
      if (!r) return fail(ctx + r.error());
      k_.ct_state = static_cast<uint8_t>(r->v);
      m_.ct_state = static_cast<uint8_t>(r->m);
      return {};
    }
    if (n == "ct_label") {
      const size_t slash = c->args.find('/');
      const std::string_view vt = c->args.substr(0, slash);
      const auto v = parse_u128(vt);
      if (!v) return fail(ctx + "bad 128-bit value " + q(trim(vt)));
      std::array<uint8_t, 16> m;
      m.fill(0xff);
      if (slash != std::string_view::npos) {
        const auto mm = parse_u128(c->args.substr(slash + 1));
        if (!mm) return fail(ctx + "bad 128-bit mask " + q(trim(c->args.substr(slash + 1))));
        m = *mm;
      }
      std::memcpy(k_.ct_label, v->data(), 16);
      std::memcpy(m_.ct_label, m.data(), 16);
      return {};
    }
    if (n == "packet_type") {
      const auto items = split_top(c->args);
      if (!items || items->size() != 2 || (*items)[0] != "ns=0" || (*items)[1] != "id=0")
        return fail(ctx + "only packet_type(ns=0,id=0) (Ethernet) is supported");
      return {};
    }
    if (n == "ct_tuple4") return parse_fields(n, c->args, kFlowCtTuple4, bytes(k_), bytes(m_));
    if (n == "ct_tuple6") return parse_fields(n, c->args, kFlowCtTuple6, bytes(k_), bytes(m_));
    if (n == "eth") return parse_fields(n, c->args, kFlowEth, bytes(k_), bytes(m_));
    if (n == "eth_type") return eth_type(*c, scope, ctx);
    if (n == "vlan") return vlan(*c, ctx);
    if (n == "encap") {
      if (!vlan_tagged_) return fail("encap(...) needs eth_type(0x8100),vlan(...) before it");
      return parse_list(c->args, kEncap);
    }
    if (n == "ipv4" || n == "ipv6" || n == "arp") return l3(*c, scope);
    return l4(*c, scope, ctx);
  }

  static uint8_t* bytes(FlowKey& k) { return reinterpret_cast<uint8_t*>(&k); }

  Result eth_type(const Call& c, Scope scope, const std::string& ctx) {
    const auto r = parse_uint_masked(c.args, 0xffff, 0xffff, 0xffff);
    if (!r) return fail(ctx + r.error());
    const bool tag = r->m == 0xffff && (r->v == 0x8100 || r->v == 0x88a8);
    if (tag && (r->v == 0x88a8 || scope == kEncap))
      return fail(ctx + "stacked or 802.1ad (0x88a8) VLAN tags are not supported");
    if (tag) {
      tpid_marker_ = true;
      return {};
    }
    k_.eth_type = htons(static_cast<uint16_t>(r->v));
    m_.eth_type = htons(static_cast<uint16_t>(r->m));
    eth_type_scope_ = scope;
    if (scope == kTop) eth_type_top_ = true;
    return {};
  }

  Result vlan(const Call& c, const std::string& ctx) {
    const auto items = split_top(c.args);
    if (!items) return fail(ctx + items.error());
    uint16_t tci = 0, mask = 0;
    bool cfi_given = false;
    for (std::string_view item : *items) {
      const size_t eq = item.find('=');
      const std::string_view f = trim(item.substr(0, eq));
      const std::string ictx = "vlan(" + std::string(item) + "): ";
      if (eq == std::string_view::npos) return fail(ictx + "expected field=value");
      unsigned shift = 0;
      uint64_t max = 0;
      if (f == "vid") {
        shift = 0, max = 0xfff;
      } else if (f == "pcp") {
        shift = 13, max = 7;
      } else if (f == "cfi") {
        shift = 12, max = 1, cfi_given = true;
      } else {
        return fail(ictx + "unknown field " + q(f) + " (expected vid, pcp, cfi)");
      }
      if (mask & (max << shift)) return fail(ictx + "field " + q(f) + " given twice");
      const auto r = parse_uint_masked(item.substr(eq + 1), max, max, max);
      if (!r) return fail(ictx + r.error());
      tci |= static_cast<uint16_t>(r->v << shift);
      mask |= static_cast<uint16_t>(r->m << shift);
    }
    if (tpid_marker_) {
      if (cfi_given && !((tci & kCfi) && (mask & kCfi)))
        return fail(ctx + "a tag after eth_type(0x8100) always has cfi=1");
      tci |= kCfi;
      mask |= kCfi;
      vlan_tagged_ = true;
    } else {
      vlan_explicit_ = true;
    }
    k_.vlan_tci = htons(tci);
    m_.vlan_tci = htons(mask);
    return {};
  }

  bool eth_type_is(uint16_t t, Scope scope) const {
    return eth_type_scope_ == scope && m_.eth_type == 0xffff && k_.eth_type == htons(t);
  }

  Result l3(const Call& c, Scope scope) {
    std::span<const Field> fields;
    if (c.name == "ipv4") {
      if (!eth_type_is(0x0800, scope)) return fail("eth_type(0x0800) needed before ipv4(...)");
      fields = kFlowIpv4;
      l3_ = 4;
    } else if (c.name == "ipv6") {
      if (!eth_type_is(0x86dd, scope)) return fail("eth_type(0x86dd) needed before ipv6(...)");
      fields = kFlowIpv6;
      l3_ = 6;
    } else {
      if (!eth_type_is(0x0806, scope) && !eth_type_is(0x8035, scope))
        return fail("eth_type(0x0806) needed before arp(...)");
      fields = kFlowArp;
      l3_ = 1;
    }
    l3_scope_ = scope;
    return parse_fields(c.name, c.args, fields, bytes(k_), bytes(m_));
  }

  bool proto_is(uint8_t p) const { return m_.nw_proto == 0xff && (k_.nw_proto & m_.nw_proto) == p; }

  Result l4(const Call& c, Scope scope, const std::string& ctx) {
    const std::string_view n = c.name;
    const bool ip = l3_scope_ == scope && (l3_ == 4 || l3_ == 6);
    std::string need;
    if (n == "tcp" || n == "tcp_flags") {
      if (!ip || !proto_is(6)) need = "ipv4(proto=6) or ipv6(proto=6)";
    } else if (n == "udp") {
      if (!ip || !proto_is(17)) need = "ipv4(proto=17) or ipv6(proto=17)";
    } else if (n == "sctp") {
      if (!ip || !proto_is(132)) need = "ipv4(proto=132) or ipv6(proto=132)";
    } else if (n == "icmp") {
      if (!ip || l3_ != 4 || !proto_is(1)) need = "ipv4(proto=1)";
    } else if (n == "icmpv6") {
      if (!ip || l3_ != 6 || !proto_is(58)) need = "ipv6(proto=58)";
    }
    if (!need.empty()) return fail(need + " needed before " + std::string(n) + "(...)");
    if ((k_.nw_frag & m_.nw_frag & flow::kFragLater) != 0)
      return fail(std::string(n) + "(...) cannot match a later fragment (frag=later)");
    if (n == "tcp_flags") {
      const auto r = parse_flags(c.args, kTcpFlags, 0x0fff, 0xffff);
      if (!r) return fail(ctx + r.error());
      k_.tcp_flags = htons(static_cast<uint16_t>(r->v));
      m_.tcp_flags = htons(static_cast<uint16_t>(r->m));
      return {};
    }
    const bool icmp = n == "icmp" || n == "icmpv6";
    return parse_fields(n, c.args, icmp ? std::span<const Field>(kFlowIcmp) : kFlowPorts, bytes(k_),
                        bytes(m_));
  }

  FlowKey k_ = flow::zero_key();
  FlowMask m_ = flow::zero_key();
  std::vector<std::string> seen_[2];
  bool tpid_marker_ = false;    // eth_type(0x8100) at the top level
  bool vlan_tagged_ = false;    // vlan(...) after it (the OVS form)
  bool vlan_explicit_ = false;  // vlan(...) without it (bit-exact extension)
  bool eth_type_top_ = false;   // a non-VLAN eth_type at the top level
  int eth_type_scope_ = -1;
  int l3_scope_ = -1;
  int l3_ = 0;  // 4 ipv4, 6 ipv6, 1 arp
};

// ---- format_flow helpers -------------------------------------------------------------

std::string meta_hex(std::string_view name, uint32_t v, uint32_t m, uint32_t full) {
  std::string s = std::string(name) + "(" + sfmt("%#x", v);
  if (m != full) s += sfmt("/%#x", m);
  return s + ")";
}

std::string group(std::string_view name, std::span<const Field> fields, const FlowKey& k,
                  const FlowMask& m) {
  return std::string(name) + "(" +
         format_fields(fields, reinterpret_cast<const uint8_t*>(&k),
                       reinterpret_cast<const uint8_t*>(&m)) +
         ")";
}

void add_group(std::vector<std::string>& out, std::string_view name, std::span<const Field> fields,
               const FlowKey& k, const FlowMask& m) {
  if (any_mask(fields, reinterpret_cast<const uint8_t*>(&m)))
    out.push_back(group(name, fields, k, m));
}

std::string vlan_fields(uint16_t t, uint16_t m, bool with_cfi) {
  std::vector<std::string> parts;
  const unsigned vid = t & 0xfff, vidm = m & 0xfff;
  const unsigned pcp = t >> 13, pcpm = m >> 13;
  if (vidm) parts.push_back(sfmt("vid=%u", vid) + (vidm != 0xfff ? sfmt("/%#x", vidm) : ""));
  if (pcpm) parts.push_back(sfmt("pcp=%u", pcp) + (pcpm != 7 ? sfmt("/%#x", pcpm) : ""));
  if (with_cfi && (m & kCfi)) parts.push_back(sfmt("cfi=%u", (t & kCfi) ? 1u : 0u));
  return "vlan(" + join(parts) + ")";
}

}  // namespace

std::expected<FlowMatch, std::string> parse_flow(std::string_view text) {
  FlowParser p;
  return p.run(text);
}

std::string format_flow(const FlowMatch& match) {
  const FlowMask& m = match.mask;
  FlowKey k;
  flow::apply_mask(match.key, m, k);
  std::vector<std::string> out;
  if (m.recirc_id) out.push_back(meta_hex("recirc_id", k.recirc_id, m.recirc_id, ~0u));
  if (m.dp_hash) out.push_back(meta_hex("dp_hash", k.dp_hash, m.dp_hash, ~0u));
  if (m.priority) out.push_back(meta_hex("skb_priority", k.priority, m.priority, ~0u));
  if (m.in_port)
    out.push_back(sfmt("in_port(%u", k.in_port) +
                  (m.in_port != ~0u ? sfmt("/%#x", m.in_port) : "") + ")");
  if (m.pkt_mark) out.push_back(meta_hex("skb_mark", k.pkt_mark, m.pkt_mark, ~0u));
  if (m.ct_state)
    out.push_back("ct_state(" + format_flags(k.ct_state, m.ct_state, kCtStateFlags, 0xff) + ")");
  if (m.ct_zone) out.push_back(meta_hex("ct_zone", k.ct_zone, m.ct_zone, 0xffff));
  if (m.ct_mark) out.push_back(meta_hex("ct_mark", k.ct_mark, m.ct_mark, ~0u));
  if (!all_zero(m.ct_label, 16)) {
    std::string s = "ct_label(" + format_u128(k.ct_label);
    if (!all_ones(m.ct_label, 16)) s += "/" + format_u128(m.ct_label);
    out.push_back(s + ")");
  }
  if (!all_zero(m.ct_ipv6_src, 16) || !all_zero(m.ct_ipv6_dst, 16))
    add_group(out, "ct_tuple6", kFlowCtTuple6, k, m);
  else
    add_group(out, "ct_tuple4", kFlowCtTuple4, k, m);
  add_group(out, "eth", kFlowEth, k, m);

  // Everything from eth_type on; inside encap() for a tagged match.
  std::vector<std::string> inner;
  if (m.eth_type) {
    std::string s = sfmt("eth_type(0x%04x", ntohs(k.eth_type));
    if (m.eth_type != 0xffff) s += sfmt("/0x%04x", ntohs(m.eth_type));
    inner.push_back(s + ")");
  }
  const uint16_t fam = m.eth_type == 0xffff ? ntohs(k.eth_type) : 0;
  if (fam == 0x86dd) {
    add_group(inner, "ipv6", kFlowIpv6, k, m);
    add_group(inner, "ipv4", kFlowIpv4Addr, k, m);
    add_group(inner, "arp", kFlowArpOnly, k, m);
  } else if (fam == 0x0806 || fam == 0x8035) {
    add_group(inner, "arp", kFlowArp, k, m);
    add_group(inner, "ipv6", kFlowIpv6Addr, k, m);
    add_group(inner, "ipv4", kFlowNwOnly, k, m);
  } else {
    add_group(inner, "ipv4", kFlowIpv4, k, m);
    add_group(inner, "ipv6", kFlowIpv6Addr, k, m);
    add_group(inner, "arp", kFlowArpOnly, k, m);
  }
  if (m.tp_src || m.tp_dst) {
    const int proto = m.nw_proto == 0xff ? k.nw_proto : -1;
    if (proto == 1 || proto == 58)
      inner.push_back(group(proto == 1 ? "icmp" : "icmpv6", kFlowIcmp, k, m));
    else
      inner.push_back(group(proto == 6     ? "tcp"
                            : proto == 17  ? "udp"
                            : proto == 132 ? "sctp"
                                           : "l4",
                            kFlowPorts, k, m));
  }
  if (m.tcp_flags)
    inner.push_back("tcp_flags(" +
                    format_flags(ntohs(k.tcp_flags), ntohs(m.tcp_flags), kTcpFlags, 0x0fff) + ")");

  const uint16_t tci = ntohs(k.vlan_tci), tmask = ntohs(m.vlan_tci);
  if ((tci & kCfi) && (tmask & kCfi)) {
    out.push_back("eth_type(0x8100)");
    out.push_back(vlan_fields(tci, tmask, false));
    if (!inner.empty()) out.push_back("encap(" + join(inner) + ")");
  } else if (tci == 0 && tmask == 0xffff) {
    if (!m.eth_type) out.push_back("vlan(vid=0,pcp=0,cfi=0)");
    out.insert(out.end(), inner.begin(), inner.end());
  } else {
    if (tmask || m.eth_type) out.push_back(vlan_fields(tci, tmask, true));
    out.insert(out.end(), inner.begin(), inner.end());
  }
  // A match of nothing (every field wildcarded, e.g. from eth_type(0x81/0),vlan()) still
  // needs text that parses back to it: "" is refused as an empty flow.
  if (out.empty()) return "recirc_id(0/0)";
  return join(out);
}

// ---- actions ------------------------------------------------------------------------

namespace {

constexpr std::string_view kUnsupportedActions[] = {
    "trunc",   "push_mpls", "pop_mpls", "add_mpls",  "push_eth",
    "pop_eth", "push_nsh",  "pop_nsh",  "meter",     "check_pkt_len",
    "dec_ttl", "tnl_push",  "tnl_pop",  "lb_output", "drop_reason"};

// Probability (UINT32_MAX = 100%) from a percentage, as OVS computes it.
uint32_t prob_from_pct(double pct) {
  const double p = std::floor(static_cast<double>(UINT32_MAX) * (pct / 100.0) + 0.5);
  return p >= static_cast<double>(UINT32_MAX) ? UINT32_MAX : static_cast<uint32_t>(p);
}

std::optional<double> parse_pct(std::string_view s) {
  double v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !(v >= 0.0 && v <= 100.0))
    return std::nullopt;
  return v;
}

// The shortest "%.Nf" (N >= 1, OVS prints %.1f) that parses back to the same value.
std::string format_pct(uint32_t prob) {
  const double pct = 100.0 * static_cast<double>(prob) / static_cast<double>(UINT32_MAX);
  for (int prec = 1; prec <= 12; ++prec) {
    std::string s = sfmt("%.*f", prec, pct);
    const auto back = parse_pct(s);
    if (back && prob_from_pct(*back) == prob) return s;
  }
  return sfmt("%.17g", pct);
}

class ActionParser {
 public:
  std::expected<std::vector<uint8_t>, std::string> run(std::string_view text) {
    if (Result r = list(text, 0); !r) return fail(r.error());
    if (!w_.ok()) return fail("actions too long for the netlink encoding");
    std::vector<uint8_t> blob = w_.take();
    if (auto v = validate_actions(blob); !v) return fail(v.error());
    return blob;
  }

 private:
  static constexpr unsigned kMaxDepth = 4;

  Result list(std::string_view text, unsigned depth) {
    const std::string_view t = trim(text);
    if (t == "drop") return {};
    if (t.empty()) {
      if (depth == 0) return fail("empty action list (write 'drop' for no actions)");
      return {};
    }
    const auto items = split_top(t);
    if (!items) return fail(items.error());
    for (std::string_view item : *items) {
      if (item == "drop") return fail("'drop' must be the only action in " + q(t));
      if (Result r = action(item, depth); !r) return r;
    }
    return {};
  }

  Result u32_arg(const Call& c, uint32_t& out) {
    if (!c.parens) return fail(q(c.name) + " needs an argument: " + std::string(c.name) + "(N)");
    const auto v = parse_uint(c.args, UINT32_MAX);
    if (!v) return fail(std::string(c.name) + "(" + std::string(c.args) + "): " + v.error());
    out = static_cast<uint32_t>(*v);
    return {};
  }

  Result action(std::string_view item, unsigned depth) {
    if (item[0] >= '0' && item[0] <= '9') {
      const auto port = parse_uint(item, UINT32_MAX);
      if (!port) return fail("bad output port " + q(item) + ": " + port.error());
      w_.output(static_cast<uint32_t>(*port));
      return {};
    }
    const auto c = split_call(item);
    if (!c) return fail(c.error());
    const std::string_view n = c->name;
    const std::string ctx = std::string(n) + "(" + std::string(c->args) + "): ";
    uint32_t v = 0;
    if (n == "output") {
      if (Result r = u32_arg(*c, v); !r) return r;
      w_.output(v);
      return {};
    }
    if (n == "recirc") {
      if (Result r = u32_arg(*c, v); !r) return r;
      w_.recirc(v);
      return {};
    }
    if (n == "pop_vlan") {
      if (!trim(c->args).empty()) return fail(ctx + "takes no arguments");
      w_.pop_vlan();
      return {};
    }
    if (n == "esp_decrypt") {
      if (!trim(c->args).empty()) return fail(ctx + "takes no arguments");
      w_.esp_decrypt();
      return {};
    }
    if (n == "esp_encrypt") {
      const std::string_view a = trim(c->args);
      if (!c->parens || !a.starts_with("group="))
        return fail(ctx + "expected esp_encrypt(group=N)");
      const auto g = parse_uint(a.substr(6), UINT32_MAX);
      if (!g) return fail(ctx + g.error());
      if (*g == 0) return fail(ctx + "group must be >= 1");
      w_.esp_encrypt(static_cast<uint32_t>(*g));
      return {};
    }
    if (n == "ct") return ct(*c);
    if (n == "ct_clear") {
      if (!trim(c->args).empty()) return fail(ctx + "takes no arguments");
      w_.ct_clear();
      return {};
    }
    if (n == "push_vlan") return push_vlan(*c, ctx);
    if (n == "userspace") return userspace(*c, ctx);
    if (n == "set") return set(*c);
    if (n == "hash") {
      const auto h = split_call(trim(c->args));
      if (!h || !h->parens || (h->name != "l4" && h->name != "sym_l4"))
        return fail(ctx + "expected l4(BASIS) or sym_l4(BASIS)");
      const auto basis = parse_uint(h->args, UINT32_MAX);
      if (!basis) return fail(ctx + basis.error());
      w_.hash(h->name == "l4" ? kHashAlgL4 : kHashAlgSymL4, static_cast<uint32_t>(*basis));
      return {};
    }
    if (n == "clone" || n == "sample") {
      if (!c->parens) return fail(q(n) + " needs arguments: " + std::string(n) + "(...)");
      if (depth + 1 > kMaxDepth)
        return fail(std::string(n) + "(...): actions nested deeper than " +
                    std::to_string(kMaxDepth));
      if (n == "clone") {
        w_.begin_clone();
        if (Result r = list(c->args, depth + 1); !r) return r;
        w_.end();
        return {};
      }
      return sample(*c, ctx, depth);
    }
    for (std::string_view u : kUnsupportedActions)
      if (u == n) return fail("action " + q(n) + " is not supported");
    return fail("unknown action " + q(n));
  }

  Result push_vlan(const Call& c, const std::string& ctx) {
    const auto items = split_top(c.args);
    if (!items) return fail(ctx + items.error());
    uint64_t tpid = 0x8100, vid = 0, pcp = 0, cfi = 1;
    unsigned seen = 0;
    for (std::string_view item : *items) {
      const size_t eq = item.find('=');
      const std::string_view f = trim(item.substr(0, eq));
      const std::string ictx = "push_vlan(" + std::string(item) + "): ";
      if (eq == std::string_view::npos) return fail(ictx + "expected field=value");
      uint64_t* dst = nullptr;
      uint64_t max = 0;
      unsigned bit = 0;
      if (f == "tpid") dst = &tpid, max = 0xffff, bit = 1;
      if (f == "vid") dst = &vid, max = 0xfff, bit = 2;
      if (f == "pcp") dst = &pcp, max = 7, bit = 4;
      if (f == "cfi") dst = &cfi, max = 1, bit = 8;
      if (!dst) return fail(ictx + "unknown field " + q(f) + " (expected tpid, vid, pcp)");
      if (seen & bit) return fail(ictx + "field " + q(f) + " given twice");
      seen |= bit;
      const auto r = parse_uint(item.substr(eq + 1), max);
      if (!r) return fail(ictx + r.error());
      *dst = *r;
    }
    if (tpid != 0x8100 && tpid != 0x88a8)
      return fail(ctx +
                  sfmt("tpid 0x%04x is neither 0x8100 nor 0x88a8", static_cast<unsigned>(tpid)));
    if (cfi != 1) return fail(ctx + "a pushed tag always has cfi=1");
    w_.push_vlan(static_cast<uint16_t>(vid), static_cast<uint8_t>(pcp),
                 static_cast<uint16_t>(tpid));
    return {};
  }

  Result userspace(const Call& c, const std::string& ctx) {
    const auto items = split_top(c.args);
    if (!items) return fail(ctx + items.error());
    std::optional<uint32_t> pid;
    std::optional<std::vector<uint8_t>> userdata;
    bool actions = false;
    for (std::string_view item : *items) {
      if (item.starts_with("pid=")) {
        if (pid) return fail(ctx + "pid given twice");
        const auto v = parse_uint(item.substr(4), UINT32_MAX);
        if (!v) return fail(ctx + "pid: " + v.error());
        pid = static_cast<uint32_t>(*v);
      } else if (item == "actions") {
        actions = true;
      } else if (item.starts_with("tunnel_out_port=")) {
        return fail(ctx + "tunnel_out_port is not supported");
      } else {
        const auto u = split_call(item);
        if (!u || !u->parens || u->name != "userdata")
          return fail(ctx + "unknown argument " + q(item) +
                      " (expected pid=N, userdata(HEX), actions)");
        if (userdata) return fail(ctx + "userdata given twice");
        const std::string_view h = trim(u->args);
        if (h.size() % 2) return fail(ctx + "userdata " + q(h) + " has an odd number of digits");
        std::vector<uint8_t> bytes;
        for (size_t i = 0; i < h.size(); i += 2) {
          const int hi = hex_digit(h[i]), lo = hex_digit(h[i + 1]);
          if (hi < 0 || lo < 0) return fail(ctx + "bad hex in userdata " + q(h));
          bytes.push_back(static_cast<uint8_t>(hi * 16 + lo));
        }
        userdata = std::move(bytes);
      }
    }
    if (!pid) return fail(ctx + "missing pid=N");
    w_.begin_nested(OVS_ACTION_ATTR_USERSPACE);
    w_.attr(OVS_USERSPACE_ATTR_PID, std::span(reinterpret_cast<const uint8_t*>(&*pid), 4));
    if (userdata) w_.attr(OVS_USERSPACE_ATTR_USERDATA, *userdata);
    if (actions) w_.attr(OVS_USERSPACE_ATTR_ACTIONS, {});
    w_.end();
    return {};
  }

  Result sample(const Call& c, const std::string& ctx, unsigned depth) {
    const auto items = split_top(c.args);
    if (!items) return fail(ctx + items.error());
    if (items->size() != 2 || !(*items)[0].starts_with("sample="))
      return fail(ctx + "expected sample=P%,actions(...)");
    std::string_view p = trim((*items)[0].substr(7));
    if (!p.ends_with('%')) return fail(ctx + "probability " + q(p) + " must end with '%'");
    p.remove_suffix(1);
    const auto pct = parse_pct(p);
    if (!pct)
      return fail(ctx + "bad probability " + q(std::string(p) + "%") + " (expected 0 to 100)");
    const auto a = split_call((*items)[1]);
    if (!a || !a->parens || a->name != "actions")
      return fail(ctx + "expected actions(...) after the probability");
    w_.begin_sample(prob_from_pct(*pct));
    if (Result r = list(a->args, depth + 1); !r) return r;
    w_.end();
    return {};
  }

  Result set(const Call& c) {
    if (!c.parens) return fail("'set' needs a key: set(KEY(...))");
    const auto kc = split_call(trim(c.args));
    if (!kc) return fail("set(" + std::string(c.args) + "): " + kc.error());
    const std::string ctx = "set(" + std::string(trim(c.args)) + "): ";
    if (!kc->parens) return fail(ctx + "expected KEY(...)");
    const SetKey* key = find_set_key(kc->name);
    if (!key) {
      if (is_known_key(kc->name) || is_unsupported_key(kc->name))
        return fail(ctx + "key " + q(kc->name) + " cannot be set");
      return fail(ctx + "unknown key " + q(kc->name));
    }
    if (key->fields.empty()) {  // skb_mark / skb_priority: u32 value[/mask]
      const auto r = parse_uint_masked(kc->args, UINT32_MAX, UINT32_MAX, UINT32_MAX);
      if (!r) return fail(ctx + r.error());
      if (r->v & ~r->m) return fail(ctx + "value has bits outside the mask");
      const auto v = static_cast<uint32_t>(r->v), m = static_cast<uint32_t>(r->m);
      if (m == UINT32_MAX)
        w_.set_key(key->type, std::span(reinterpret_cast<const uint8_t*>(&v), 4));
      else
        w_.set_masked_key(key->type, std::span(reinterpret_cast<const uint8_t*>(&v), 4),
                          std::span(reinterpret_cast<const uint8_t*>(&m), 4));
      return {};
    }
    const size_t size = settable_key_size(key->type);
    uint8_t val[64] = {}, msk[64] = {}, full[64] = {};
    if (Result r = parse_fields(kc->name, kc->args, key->fields, val, msk, "set", true); !r)
      return r;
    for (const Field& f : key->fields) exact_mask_of(f.kind, full + f.off);
    if (std::memcmp(msk, full, size) == 0) {
      w_.set_key(key->type, std::span<const uint8_t>(val, size));
      return {};
    }
    if (key->type == OVS_KEY_ATTR_IPV4 || key->type == OVS_KEY_ATTR_IPV6) {
      const size_t po = key->type == OVS_KEY_ATTR_IPV4 ? offsetof(ovs_key_ipv4, ipv4_proto)
                                                       : offsetof(ovs_key_ipv6, ipv6_proto);
      const size_t fo = key->type == OVS_KEY_ATTR_IPV4 ? offsetof(ovs_key_ipv4, ipv4_frag)
                                                       : offsetof(ovs_key_ipv6, ipv6_frag);
      if (msk[po] || msk[fo])
        return fail(ctx +
                    "proto and frag cannot be changed; give them only together with "
                    "every other field (a plain set)");
    }
    w_.set_masked_key(key->type, std::span<const uint8_t>(val, size),
                      std::span<const uint8_t>(msk, size));
    return {};
  }

  // ct[(OPTION,...)]: commit, force_commit, zone=N, mark=V[/M] (hex, as OVS's "%x"),
  // label=V[/M], helper=ftp|tftp, timeout=NAME, eventmask=N, nat[(...)].
  Result ct(const Call& c) {
    const auto items = split_top(c.args);
    if (!items) return fail("ct: " + items.error());
    CtAction a;
    std::vector<std::string_view> seen;
    for (std::string_view item : *items) {
      const size_t cut = item.find_first_of("=(");
      const std::string_view key = trim(item.substr(0, cut));
      const bool has_value = cut != std::string_view::npos && item[cut] == '=';
      const std::string_view val = has_value ? trim(item.substr(cut + 1)) : std::string_view();
      if (std::find(seen.begin(), seen.end(), key) != seen.end())
        return fail("ct: option " + q(key) + " given twice");
      seen.push_back(key);
      if (key == "commit" || key == "force_commit") {
        if (cut != std::string_view::npos) return fail("ct: option " + q(key) + " takes no value");
        (key == "commit" ? a.commit : a.force_commit) = true;
        continue;
      }
      if (key == "nat") {
        if (has_value) return fail("ct: expected nat or nat(...), not " + q(item));
        if (Result r = ct_nat(item, a.nat); !r) return r;
        a.has_nat = true;
        continue;
      }
      const bool known = key == "zone" || key == "mark" || key == "label" || key == "helper" ||
                         key == "timeout" || key == "eventmask";
      if (!known) return fail("ct: unknown option " + q(key));
      if (!has_value)
        return fail("ct: option " + q(key) + " needs a value: " + std::string(key) + "=...");
      auto number = [&](uint64_t max) -> std::expected<uint64_t, std::string> {
        const auto v = to_u64(val);
        if (!v) return fail("ct: bad " + std::string(key) + " " + q(val));
        if (*v > max)
          return fail("ct: " + std::string(key) + " " + q(val) + " out of range (max " +
                      std::to_string(max) + ")");
        return *v;
      };
      if (key == "zone") {
        const auto v = number(UINT16_MAX);
        if (!v) return fail(v.error());
        a.zone = static_cast<uint16_t>(*v);
      } else if (key == "eventmask") {
        const auto v = number(UINT32_MAX);
        if (!v) return fail(v.error());
        a.has_eventmask = true;
        a.eventmask = static_cast<uint32_t>(*v);
      } else if (key == "mark") {
        const size_t slash = val.find('/');
        const auto v = parse_hex32(val.substr(0, slash));
        const auto m = slash == std::string_view::npos ? std::optional<uint32_t>(UINT32_MAX)
                                                       : parse_hex32(val.substr(slash + 1));
        if (!v || !m) return fail("ct: bad mark " + q(val));
        a.has_mark = true;
        a.mark = *v;
        a.mark_mask = *m;
      } else if (key == "label") {
        const size_t slash = val.find('/');
        std::array<uint8_t, 16> ones;
        ones.fill(0xff);
        const auto v = parse_u128(val.substr(0, slash));
        const auto m = slash == std::string_view::npos ? std::optional(ones)
                                                       : parse_u128(val.substr(slash + 1));
        if (!v || !m) return fail("ct: bad label " + q(val));
        a.has_labels = true;
        std::memcpy(a.labels, v->data(), 16);
        std::memcpy(a.labels_mask, m->data(), 16);
      } else if (key == "helper") {
        if (val.empty()) return fail("ct: helper is empty");
        if (val == ct_helper_name(kCtHelperFtp))
          a.helper = kCtHelperFtp;
        else if (val == ct_helper_name(kCtHelperTftp))
          a.helper = kCtHelperTftp;
        else
          return fail("ct: helper " + q(val) + " is not supported (ftp, tftp)");
      } else {  // timeout
        if (val.empty()) return fail("ct: timeout is empty");
        if (val.size() > kCtTimeoutSize - 1)
          return fail("ct: timeout is " + std::to_string(val.size()) + " characters, limit " +
                      std::to_string(kCtTimeoutSize - 1));
        for (char ch : val) {
          const auto u = static_cast<unsigned char>(ch);
          if (u <= ' ' || u >= 0x7f || ch == ',' || ch == '(' || ch == ')' || ch == '=')
            return fail("ct: timeout has a bad character " + sfmt("0x%02x", u));
        }
        std::memcpy(a.timeout, val.data(), val.size());
      }
    }
    // The semantic rules (commit vs force_commit, NAT ranges, ...) are decode_ct's, so
    // that the text and the netlink form refuse the same things with the same words.
    ActionWriter probe;
    probe.ct(a);
    if (auto d = decode_ct((*ActionList(probe.data()).begin()).payload); !d) return fail(d.error());
    w_.ct(a);
    return {};
  }

  // nat[(src[=RANGE]|dst[=RANGE][,persistent][,hash|,random])].
  Result ct_nat(std::string_view item, CtNat& n) {
    const auto nc = split_call(item);
    if (!nc) return fail("ct: " + nc.error());
    if (!nc->parens) return {};
    const auto items = split_top(nc->args);
    if (!items) return fail("ct: nat: " + items.error());
    std::vector<std::string_view> seen;
    for (std::string_view it : *items) {
      const size_t eq = it.find('=');
      const std::string_view key = trim(it.substr(0, eq));
      if (std::find(seen.begin(), seen.end(), key) != seen.end())
        return fail("ct: nat: option " + q(key) + " given twice");
      seen.push_back(key);
      if (key == "src" || key == "dst") {
        if (n.src || n.dst) return fail("ct: nat: src and dst are exclusive");
        (key == "src" ? n.src : n.dst) = true;
        if (eq != std::string_view::npos)
          if (Result r = nat_range(trim(it.substr(eq + 1)), n); !r) return r;
        continue;
      }
      bool* flag = key == "persistent" ? &n.persistent
                   : key == "hash"     ? &n.proto_hash
                   : key == "random"   ? &n.proto_random
                                       : nullptr;
      if (!flag) return fail("ct: nat: unknown option " + q(it));
      if (eq != std::string_view::npos)
        return fail("ct: nat: option " + q(key) + " takes no value");
      *flag = true;
    }
    return {};
  }

  // IPv4 "A[-B][:P[-Q]]"; IPv6 "[A][-[B]][:P[-Q]]" or, without ports, "A[-B]".
  static Result nat_range(std::string_view r, CtNat& n) {
    const std::string_view text = r;
    const std::string bad = "ct: nat: bad address range " + q(r);
    // IPv6 when bracketed, or when the first address has a ':' not preceded by an IPv4
    // address (that ':' would start the ports).
    const std::string_view first = r.substr(0, r.find('-'));
    const bool bare_v6 =
        first.find(':') != std::string_view::npos && !parse_ipv4(first.substr(0, first.find(':')));
    std::string_view lo, hi, ports;
    bool has_hi = false, has_ports = false, v6 = true;
    if (r.starts_with('[')) {
      size_t close = r.find(']');
      if (close == std::string_view::npos) return fail(bad);
      lo = r.substr(1, close - 1);
      r.remove_prefix(close + 1);
      if (r.starts_with('-')) {
        r.remove_prefix(1);
        close = r.find(']');
        if (!r.starts_with('[') || close == std::string_view::npos) {
          if (parse_ipv4(r.substr(0, r.find(':'))))
            return fail("ct: nat: address range mixes IPv6 and IPv4");
          return fail(bad + " (bracket both addresses: [A]-[B])");
        }
        hi = r.substr(1, close - 1);
        has_hi = true;
        r.remove_prefix(close + 1);
      }
      if (r.starts_with(':')) {
        ports = r.substr(1);
        has_ports = true;
      } else if (!r.empty()) {
        return fail(bad);
      }
    } else if (!bare_v6) {
      v6 = false;
      const size_t dash = r.find('-'), colon = r.find(':');
      if (dash != std::string_view::npos && (colon == std::string_view::npos || dash < colon)) {
        const std::string_view rest = r.substr(dash + 1);
        if (rest.starts_with('[') || parse_ipv6(rest))
          return fail("ct: nat: address range mixes IPv4 and IPv6");
      }
      const std::string_view addrs = r.substr(0, colon);
      if (colon != std::string_view::npos) {
        ports = r.substr(colon + 1);
        has_ports = true;
      }
      const size_t d = addrs.find('-');
      lo = addrs.substr(0, d);
      if (d != std::string_view::npos) {
        hi = addrs.substr(d + 1);
        has_hi = true;
      }
    } else {
      const size_t dash = r.find('-');
      lo = r.substr(0, dash);
      if (dash != std::string_view::npos) {
        hi = r.substr(dash + 1);
        has_hi = true;
      }
    }
    const size_t len = v6 ? 16 : 4;
    auto addr = [&](std::string_view t, uint8_t* out) -> Result {
      if (v6) {
        if (const auto a = parse_ipv6(t)) {
          std::memcpy(out, a->data(), 16);
          return {};
        }
        if (parse_ipv4(t)) return fail("ct: nat: address range mixes IPv6 and IPv4");
        return fail("ct: nat: bad IPv6 address " + q(t));
      }
      if (const auto a = parse_ipv4(t)) {
        std::memcpy(out, &*a, 4);
        return {};
      }
      return fail("ct: nat: bad IPv4 address " + q(t));
    };
    if (Result e = addr(lo, n.ip_min); !e) return e;
    if (has_hi) {
      if (Result e = addr(hi, n.ip_max); !e) return e;
    } else {
      std::memcpy(n.ip_max, n.ip_min, len);
    }
    if (std::memcmp(n.ip_min, n.ip_max, len) > 0)
      return fail("ct: nat: address range " + q(text) + " has min > max");
    n.family = v6 ? 6 : 4;
    if (!has_ports) return {};
    const size_t d = ports.find('-');
    auto port = [&](std::string_view t) -> std::expected<uint16_t, std::string> {
      const auto v = to_u64(trim(t));
      if (!v || *v == 0 || *v > UINT16_MAX)
        return fail("ct: nat: bad port " + q(t) + " (1 to 65535)");
      return static_cast<uint16_t>(*v);
    };
    const auto pmin = port(ports.substr(0, d));
    if (!pmin) return fail(pmin.error());
    const auto pmax = d == std::string_view::npos ? pmin : port(ports.substr(d + 1));
    if (!pmax) return fail(pmax.error());
    if (*pmin > *pmax) return fail("ct: nat: port range " + q(ports) + " has min > max");
    n.port_min = *pmin;
    n.port_max = *pmax;
    return {};
  }

  ActionWriter w_;
};

void format_list(std::span<const uint8_t> list, std::string& out);

void format_set(const ActionView& a, std::string& out) {
  const SetAction s = decode_set(a);
  const uint8_t* m = s.mask.empty() ? nullptr : s.mask.data();
  const SetKey* key = find_set_key(s.key_type);
  out += "set(";
  if (key == nullptr) {
    out += sfmt("key%u", s.key_type);
  } else if (key->fields.empty()) {
    uint32_t v = 0, mm = UINT32_MAX;
    std::memcpy(&v, s.value.data(), 4);
    if (m) std::memcpy(&mm, m, 4);
    out += std::string(key->name) + sfmt("(%#x", v);
    if (mm != UINT32_MAX) out += sfmt("/%#x", mm);
    out += ")";
  } else {
    out += std::string(key->name) + "(" + format_fields(key->fields, s.value.data(), m) + ")";
  }
  out += ")";
}

// One NAT address as format_odp_ct_nat prints it: IPv6 in brackets when a port follows.
std::string format_nat_addr(const CtNat& n, const uint8_t* a) {
  if (n.family == 4) {
    uint32_t be;
    std::memcpy(&be, a, 4);
    return format_ipv4(be);
  }
  const std::string s = format_ipv6(std::span<const uint8_t, 16>(a, 16));
  return n.port_min != 0 ? "[" + s + "]" : s;
}

// OVS's format_odp_conntrack_action order and spelling; eventmask (which OVS does not
// print) goes after timeout.
void format_ct(const CtAction& a, std::string& out) {
  std::vector<std::string> items;
  if (a.commit) items.emplace_back("commit");
  if (a.force_commit) items.emplace_back("force_commit");
  if (a.zone != 0) items.push_back(sfmt("zone=%u", a.zone));
  if (a.has_mark) items.push_back(sfmt("mark=%#x/%#x", a.mark, a.mark_mask));
  if (a.has_labels) {
    std::string l = "label=" + format_u128(a.labels);
    if (!all_ones(a.labels_mask, 16)) l += "/" + format_u128(a.labels_mask);
    items.push_back(std::move(l));
  }
  if (a.helper != kCtHelperNone) items.push_back("helper=" + std::string(ct_helper_name(a.helper)));
  if (a.timeout[0] != 0) items.push_back("timeout=" + std::string(a.timeout));
  if (a.has_eventmask) items.push_back(sfmt("eventmask=%#x", a.eventmask));
  if (a.has_nat) {
    const CtNat& n = a.nat;
    std::string s = "nat";
    if (n.src || n.dst) {
      s += n.src ? "(src" : "(dst";
      if (n.family != 0) {
        const size_t len = n.family == 4 ? 4 : 16;
        s += "=" + format_nat_addr(n, n.ip_min);
        if (std::memcmp(n.ip_min, n.ip_max, len) != 0) s += "-" + format_nat_addr(n, n.ip_max);
        if (n.port_min != 0) {
          s += sfmt(":%u", n.port_min);
          if (n.port_max != n.port_min) s += sfmt("-%u", n.port_max);
        }
      }
      if (n.persistent) s += ",persistent";
      if (n.proto_hash) s += ",hash";
      if (n.proto_random) s += ",random";
      s += ")";
    }
    items.push_back(std::move(s));
  }
  out += "ct";
  if (!items.empty()) out += "(" + join(items) + ")";
}

void format_action(const ActionView& a, std::string& out) {
  switch (a.type) {
    case OVS_ACTION_ATTR_OUTPUT:
      out += sfmt("%u", a.u32());
      return;
    case OVS_ACTION_ATTR_USERSPACE: {
      const UserspaceAction u = decode_userspace(a.payload);
      out += sfmt("userspace(pid=%u", u.pid);
      for (ActionView n : ActionList(a.payload)) {
        if (n.type != OVS_USERSPACE_ATTR_USERDATA) continue;
        out += ",userdata(";
        for (uint8_t b : n.payload) out += sfmt("%02x", b);
        out += ")";
      }
      if (u.send_actions) out += ",actions";
      out += ")";
      return;
    }
    case OVS_ACTION_ATTR_SET:
    case OVS_ACTION_ATTR_SET_MASKED:
      format_set(a, out);
      return;
    case OVS_ACTION_ATTR_PUSH_VLAN: {
      ovs_action_push_vlan pv;
      std::memcpy(&pv, a.payload.data(), sizeof pv);
      const uint16_t tpid = ntohs(pv.vlan_tpid), tci = ntohs(pv.vlan_tci);
      out += "push_vlan(";
      if (tpid != 0x8100) out += sfmt("tpid=0x%04x,", tpid);
      out += sfmt("vid=%u,pcp=%u)", tci & 0xfffu, static_cast<unsigned>(tci >> 13));
      return;
    }
    case OVS_ACTION_ATTR_POP_VLAN:
      out += "pop_vlan";
      return;
    case OVS_ACTION_ATTR_SAMPLE: {
      const SampleAction s = decode_sample(a.payload);
      out += "sample(sample=" + format_pct(s.probability) + "%,actions(";
      format_list(s.actions, out);
      out += "))";
      return;
    }
    case OVS_ACTION_ATTR_RECIRC:
      out += sfmt("recirc(%#x)", a.u32());
      return;
    case OVS_ACTION_ATTR_HASH: {
      ovs_action_hash h;
      std::memcpy(&h, a.payload.data(), sizeof h);
      out += sfmt(h.hash_alg == kHashAlgL4 ? "hash(l4(%u))" : "hash(sym_l4(%u))", h.hash_basis);
      return;
    }
    case OVS_ACTION_ATTR_CT: {
      const auto ct = decode_ct(a.payload);
      if (ct)
        format_ct(*ct, out);
      else
        out += "ct(<" + ct.error() + ">)";
      return;
    }
    case OVS_ACTION_ATTR_CT_CLEAR:
      out += "ct_clear";
      return;
    case OVS_ACTION_ATTR_CLONE:
      out += "clone(";
      format_list(a.payload, out);
      out += ")";
      return;
    case kActionEspEncrypt:
      out += sfmt("esp_encrypt(group=%u)", a.u32());
      return;
    case kActionEspDecrypt:
      out += "esp_decrypt";
      return;
    default:
      out += sfmt("action%u", a.type);
      return;
  }
}

void format_list(std::span<const uint8_t> list, std::string& out) {
  if (list.empty()) {
    out += "drop";
    return;
  }
  bool first = true;
  for (ActionView a : ActionList(list)) {
    if (!first) out += ',';
    first = false;
    format_action(a, out);
  }
}

}  // namespace

std::expected<std::vector<uint8_t>, std::string> parse_actions(std::string_view text) {
  ActionParser p;
  return p.run(text);
}

std::string format_actions(std::span<const uint8_t> blob) {
  ValidateLimits lim;
  lim.max_size = SIZE_MAX;
  lim.max_userdata = SIZE_MAX;
  lim.max_depth = 16;
  if (auto v = validate_actions(blob, lim); !v) return "<invalid actions: " + v.error() + ">";
  std::string out;
  format_list(blob, out);
  return out;
}

}  // namespace gl::odp
