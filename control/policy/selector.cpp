#include "control/policy/selector.hpp"
#include "control/policy/text.hpp"

#include "control/policy/model.hpp"

namespace gl::policy {
namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

using text::is_space;
using text::quoted;
using text::trim;

// Digits, dots and slashes with at least one dot: an IPv4 address or prefix, never a key.
bool looks_like_ipv4(std::string_view s) {
  bool dot = false;
  for (char c : s) {
    if (c == '.') dot = true;
    if (!(c == '.' || c == '/' || (c >= '0' && c <= '9'))) return false;
  }
  return dot;
}

// The reason a label key is invalid, or "" when it is valid.
std::string key_problem(std::string_view key) {
  if (key.empty()) return "empty label key";
  if (key.find(':') != std::string_view::npos || looks_like_ipv4(key))
    return "bad label key " + quoted(key) + " (looks like an address)";
  if (!is_valid_label_key(key)) return "bad label key " + quoted(key);
  return "";
}

std::expected<Term, std::string> parse_term(std::string_view raw, bool alone) {
  std::string_view t = trim(raw);
  auto fail = [&](const std::string& why) -> std::expected<Term, std::string> {
    return std::unexpected(why);
  };
  Term term;
  if (t.empty()) return fail("empty term");
  if (t == "any") {
    if (!alone) return fail("\"any\" cannot be combined with '&'");
    term.kind = TermKind::kAny;
    return term;
  }
  for (auto [prefix, kind] : {std::pair{std::string_view("group:"), TermKind::kGroup},
                              std::pair{std::string_view("workload:"), TermKind::kWorkload}}) {
    if (t.starts_with(prefix)) {
      std::string_view name = trim(t.substr(prefix.size()));
      if (!is_valid_name(name)) return fail("bad name " + quoted(name));
      term.kind = kind;
      term.key = std::string(name);
      return term;
    }
  }
  if (t.front() == '!' && t.find('=') == std::string_view::npos) {
    std::string_view key = trim(t.substr(1));
    if (IpPrefix::parse(key)) return fail("a CIDR cannot be negated");
    if (std::string why = key_problem(key); !why.empty()) return fail(why);
    term.kind = TermKind::kLacksLabel;
    term.key = std::string(key);
    return term;
  }
  if (size_t eq = t.find('='); eq != std::string_view::npos) {
    bool negated = eq > 0 && t[eq - 1] == '!';
    std::string_view key = trim(t.substr(0, negated ? eq - 1 : eq));
    std::string_view value = trim(t.substr(eq + 1));
    if (std::string why = key_problem(key); !why.empty()) return fail(why);
    if (value.empty()) return fail("empty label value");
    if (!is_valid_label_value(value)) return fail("bad label value " + quoted(value));
    term.kind = negated ? TermKind::kLabelNotEquals : TermKind::kLabelEquals;
    term.key = std::string(key);
    term.value = std::string(value);
    return term;
  }
  if (t.find(':') != std::string_view::npos || looks_like_ipv4(t)) {
    auto prefix = IpPrefix::parse(t);
    if (!prefix) {
      // "grp:db", "wl:x": a reference of an unknown kind rather than a broken address
      size_t colon = t.find(':');
      std::string_view head = t.substr(0, colon);
      bool word = colon != std::string_view::npos && colon > 0;
      bool hex = true;
      for (char c : head) {
        if (!is_alnum(c)) word = false;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
          hex = false;
      }
      if (word && (!hex || head.size() > 4))
        return fail("unknown reference " + quoted(std::string(head) + ":") +
                    " (references are group:NAME and workload:NAME)");
      std::string why = prefix.error();  // starts with the quoted term: drop it
      if (why.starts_with(quoted(t) + ": ")) why.erase(0, t.size() + 4);
      return fail(why);
    }
    if (!alone) return fail("a CIDR cannot be combined with '&'");
    term.kind = TermKind::kCidr;
    term.prefix = *prefix;
    return term;
  }
  if (std::string why = key_problem(t); !why.empty()) return fail(why);
  term.kind = TermKind::kHasLabel;
  term.key = std::string(t);
  return term;
}

}  // namespace

bool is_valid_label_key(std::string_view key) {
  if (key.empty() || key.size() > 253 || !is_alnum(key.front())) return false;
  for (char c : key)
    if (!(is_alnum(c) || c == '.' || c == '_' || c == '/' || c == '-')) return false;
  return !looks_like_ipv4(key);
}

bool is_valid_label_value(std::string_view value) {
  if (value.empty() || value.size() > 63) return false;
  for (char c : value)
    if (!(is_alnum(c) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

std::expected<Selector, std::string> parse_selector(std::string_view text) {
  Selector sel;
  auto fail = [&](const std::string& why) -> std::expected<Selector, std::string> {
    return std::unexpected(quoted(text) + ": " + why);
  };
  if (trim(text).empty()) return sel;
  size_t pos = 0;
  while (true) {
    size_t bar = text.find('|', pos);
    std::string_view alt = text.substr(pos, bar == std::string_view::npos ? text.npos : bar - pos);
    if (trim(alt).empty())
      return fail(bar == std::string_view::npos || pos > 0 ? "empty alternative after '|'"
                                                           : "empty alternative before '|'");
    Alternative a;
    size_t tpos = 0;
    bool alone = alt.find('&') == std::string_view::npos;
    while (true) {
      size_t amp = alt.find('&', tpos);
      std::string_view t = alt.substr(tpos, amp == std::string_view::npos ? alt.npos : amp - tpos);
      if (trim(t).empty()) return fail(tpos > 0 ? "empty term after '&'" : "empty term before '&'");
      auto term = parse_term(t, alone);
      if (!term) {
        if (trim(t) == trim(text)) return fail(term.error());
        return fail("term " + quoted(trim(t)) + ": " + term.error());
      }
      a.terms.push_back(std::move(*term));
      if (amp == std::string_view::npos) break;
      tpos = amp + 1;
    }
    sel.alternatives.push_back(std::move(a));
    if (bar == std::string_view::npos) break;
    pos = bar + 1;
  }
  return sel;
}

std::string format_selector(const Selector& selector) {
  std::string out;
  for (size_t i = 0; i < selector.alternatives.size(); ++i) {
    if (i > 0) out += '|';
    const Alternative& a = selector.alternatives[i];
    for (size_t j = 0; j < a.terms.size(); ++j) {
      if (j > 0) out += '&';
      const Term& t = a.terms[j];
      switch (t.kind) {
        case TermKind::kAny:
          out += "any";
          break;
        case TermKind::kGroup:
          out += "group:" + t.key;
          break;
        case TermKind::kWorkload:
          out += "workload:" + t.key;
          break;
        case TermKind::kCidr:
          out += t.prefix.to_short_string();
          break;
        case TermKind::kLabelEquals:
          out += t.key + "=" + t.value;
          break;
        case TermKind::kLabelNotEquals:
          out += t.key + "!=" + t.value;
          break;
        case TermKind::kHasLabel:
          out += t.key;
          break;
        case TermKind::kLacksLabel:
          out += "!" + t.key;
          break;
      }
    }
  }
  return out;
}

}  // namespace gl::policy
