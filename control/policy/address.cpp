#include "control/policy/address.hpp"
#include "control/policy/text.hpp"

#include <cstdio>

namespace gl::policy {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

using text::quoted;

// Dotted quad into out[0..3].
bool parse_v4(std::string_view text, uint8_t* out) {
  int octet = 0;
  size_t pos = 0;
  for (; octet < 4; ++octet) {
    if (octet > 0) {
      if (pos >= text.size() || text[pos] != '.') return false;
      ++pos;
    }
    size_t start = pos;
    unsigned value = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9' && pos - start < 4) {
      value = value * 10 + static_cast<unsigned>(text[pos] - '0');
      ++pos;
    }
    size_t digits = pos - start;
    if (digits == 0 || digits > 3 || value > 255) return false;
    if (digits > 1 && text[start] == '0') return false;  // leading zero
    out[octet] = static_cast<uint8_t>(value);
  }
  return pos == text.size();
}

bool parse_v6(std::string_view text, std::array<uint8_t, 16>& out) {
  // Split on "::" (at most once).
  size_t dc = text.find("::");
  if (dc != std::string_view::npos && text.find("::", dc + 1) != std::string_view::npos)
    return false;
  auto parse_groups = [](std::string_view part, uint16_t* groups, int max_groups,
                         int& count) -> bool {
    count = 0;
    if (part.empty()) return true;
    size_t pos = 0;
    while (true) {
      size_t colon = part.find(':', pos);
      std::string_view g =
          part.substr(pos, colon == std::string_view::npos ? part.npos : colon - pos);
      if (colon == std::string_view::npos && g.find('.') != std::string_view::npos) {
        // trailing dotted quad: two groups
        uint8_t v4[4];
        if (count + 2 > max_groups || !parse_v4(g, v4)) return false;
        groups[count++] = static_cast<uint16_t>(v4[0] << 8 | v4[1]);
        groups[count++] = static_cast<uint16_t>(v4[2] << 8 | v4[3]);
        return true;
      }
      if (g.empty() || g.size() > 4 || count >= max_groups) return false;
      unsigned v = 0;
      for (char c : g) {
        int h = hex_value(c);
        if (h < 0) return false;
        v = v << 4 | static_cast<unsigned>(h);
      }
      groups[count++] = static_cast<uint16_t>(v);
      if (colon == std::string_view::npos) return true;
      pos = colon + 1;
    }
  };
  uint16_t head[8], tail[8];
  int nh = 0, nt = 0;
  if (dc == std::string_view::npos) {
    if (!parse_groups(text, head, 8, nh) || nh != 8) return false;
  } else {
    if (text.substr(0, dc).find('.') != std::string_view::npos) return false;  // quad only last
    if (!parse_groups(text.substr(0, dc), head, 7, nh)) return false;
    if (!parse_groups(text.substr(dc + 2), tail, 7, nt)) return false;
    if (nh + nt > 7) return false;  // "::" stands for at least one group
  }
  uint16_t groups[8] = {};
  for (int i = 0; i < nh; ++i) groups[i] = head[i];
  for (int i = 0; i < nt; ++i) groups[8 - nt + i] = tail[i];
  for (int i = 0; i < 8; ++i) {
    out[2 * i] = static_cast<uint8_t>(groups[i] >> 8);
    out[2 * i + 1] = static_cast<uint8_t>(groups[i]);
  }
  return true;
}

}  // namespace

IpAddress IpAddress::v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddress r;
  r.family = Family::kIpv4;
  r.bytes[0] = a;
  r.bytes[1] = b;
  r.bytes[2] = c;
  r.bytes[3] = d;
  return r;
}

IpAddress IpAddress::v6(const std::array<uint8_t, 16>& bytes) {
  IpAddress r;
  r.family = Family::kIpv6;
  r.bytes = bytes;
  return r;
}

std::expected<IpAddress, std::string> IpAddress::parse(std::string_view text) {
  IpAddress r;
  if (text.find(':') != std::string_view::npos) {
    r.family = Family::kIpv6;
    if (parse_v6(text, r.bytes)) return r;
    return std::unexpected(quoted(text) + ": not an IPv6 address");
  }
  r.family = Family::kIpv4;
  if (parse_v4(text, r.bytes.data())) return r;
  return std::unexpected(quoted(text) + ": not an IPv4 address");
}

std::string IpAddress::to_string() const {
  char buf[64];
  if (family == Family::kIpv4) {
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", bytes[0], bytes[1], bytes[2], bytes[3]);
    return buf;
  }
  uint16_t g[8];
  for (int i = 0; i < 8; ++i) g[i] = static_cast<uint16_t>(bytes[2 * i] << 8 | bytes[2 * i + 1]);
  // IPv4-mapped: ::ffff:a.b.c.d
  if (g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xffff) {
    std::snprintf(buf, sizeof buf, "::ffff:%u.%u.%u.%u", bytes[12], bytes[13], bytes[14],
                  bytes[15]);
    return buf;
  }
  int best = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len) best = i, best_len = j - i;
    i = j;
  }
  if (best_len < 2) best = -1;
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    std::snprintf(buf, sizeof buf, "%x", g[i]);
    out += buf;
  }
  return out;
}

std::expected<IpPrefix, std::string> IpPrefix::parse(std::string_view text) {
  size_t slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) {
    if (slash == std::string_view::npos) return std::unexpected(addr.error());
    return std::unexpected(quoted(text) + ": bad address " + addr.error());
  }
  IpPrefix p{*addr, addr->max_length()};
  if (slash != std::string_view::npos) {
    std::string_view len = text.substr(slash + 1);
    unsigned v = 0;
    bool ok = !len.empty() && len.size() <= 3 && !(len.size() > 1 && len[0] == '0');
    for (char c : len) {
      if (c < '0' || c > '9') ok = false;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (!ok) return std::unexpected(quoted(text) + ": bad prefix length");
    if (v > addr->max_length())
      return std::unexpected(quoted(text) + ": prefix length above " +
                             std::to_string(addr->max_length()));
    p.length = static_cast<uint8_t>(v);
  }
  IpPrefix masked = p;
  for (unsigned bit = p.length; bit < 128; ++bit)
    masked.address.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  if (masked.address != p.address)
    return std::unexpected(quoted(text) + ": host bits set, did you mean " + masked.to_string() +
                           "?");
  return p;
}

bool IpPrefix::contains(const IpAddress& a) const {
  if (a.family != address.family) return false;
  unsigned full = length / 8;
  for (unsigned i = 0; i < full; ++i)
    if (a.bytes[i] != address.bytes[i]) return false;
  unsigned rest = length % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff00u >> rest);
  return (a.bytes[full] & mask) == address.bytes[full];
}

bool IpPrefix::contains(const IpPrefix& p) const {
  return p.length >= length && contains(p.address);
}

std::string IpPrefix::to_string() const {
  return address.to_string() + "/" + std::to_string(length);
}

std::string IpPrefix::to_short_string() const {
  return is_host() ? address.to_string() : to_string();
}

std::optional<Mac> parse_mac(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  Mac mac{};
  for (int i = 0; i < 6; ++i) {
    int hi = hex_value(text[3 * i]), lo = hex_value(text[3 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    if (i < 5 && text[3 * i + 2] != ':') return std::nullopt;
    mac[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return mac;
}

std::string format_mac(const Mac& mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

}  // namespace gl::policy
