#include "control/policy/model.hpp"
#include "control/policy/text.hpp"

#include <algorithm>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "control/policy/address.hpp"
#include "control/policy/selector.hpp"

namespace gl::policy {
namespace {

using text::quoted;

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Decimal, no sign, no leading zeros; nullopt when not a number or above max.
std::optional<uint32_t> parse_decimal(std::string_view s, uint32_t max) {
  if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return std::nullopt;
  return static_cast<uint32_t>(v);
}

bool is_valid_host(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h)
    if (!(is_alnum(c) || c == '.' || c == '-' || c == '_')) return false;
  return true;
}

// Port names are OVS interface names: printable, no whitespace, quotes or commas.
bool is_valid_port_name(std::string_view p) {
  if (p.empty() || p.size() > 255) return false;
  for (char c : p)
    if (c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == '\\') return false;
  return true;
}

bool is_unicast(const IpAddress& a) {
  if (a == IpAddress{a.family, {}}) return false;  // unspecified
  if (a.family == Family::kIpv4)
    return (a.bytes[0] & 0xf0) != 0xe0 &&
           !(a.bytes[0] == 255 && a.bytes[1] == 255 && a.bytes[2] == 255 && a.bytes[3] == 255);
  return a.bytes[0] != 0xff;
}

std::string rule_object(const Rule& r, int index) {
  if (r.rule_id >= 1 && r.rule_id <= kMaxRuleId) return "rule " + std::to_string(r.rule_id);
  if (index < 0) return "rule";
  return "rule #" + std::to_string(index + 1);
}

std::string indexed_object(const char* kind, const std::string& name, size_t index) {
  if (is_valid_name(name)) return std::string(kind) + " " + name;
  return std::string(kind) + " #" + std::to_string(index + 1);
}

using NameSet = std::unordered_set<std::string_view>;

void check_selector_refs(const Selector& sel, const std::string& object, const char* field,
                         const NameSet& workloads, const NameSet& groups, const std::string& text,
                         std::vector<Problem>& out) {
  for (const Alternative& a : sel.alternatives) {
    for (const Term& t : a.terms) {
      if (t.kind == TermKind::kGroup && !groups.contains(t.key))
        out.push_back({object, field, quoted(text) + ": unknown group " + quoted(t.key)});
      if (t.kind == TermKind::kWorkload && !workloads.contains(t.key))
        out.push_back({object, field, quoted(text) + ": unknown workload " + quoted(t.key)});
    }
  }
}

}  // namespace

std::string_view action_name(Action a) {
  switch (a) {
    case Action::kAllow:
      return "allow";
    case Action::kDeny:
      return "deny";
    case Action::kReject:
      return "reject";
    case Action::kAllowEncrypted:
      return "allow-encrypted";
  }
  return "invalid";
}

std::optional<Action> parse_action(std::string_view text) {
  if (text == "allow") return Action::kAllow;
  if (text == "deny" || text == "drop") return Action::kDeny;
  if (text == "reject") return Action::kReject;
  if (text == "allow-encrypted") return Action::kAllowEncrypted;
  return std::nullopt;
}

std::expected<uint8_t, std::string> parse_protocol(std::string_view text) {
  static constexpr std::pair<std::string_view, uint8_t> kNames[] = {
      {"ip", kProtoAny},  {"icmp", kProtoIcmp},   {"tcp", kProtoTcp},
      {"udp", kProtoUdp}, {"icmp6", kProtoIcmp6}, {"sctp", kProtoSctp}};
  for (auto [name, number] : kNames)
    if (text == name) return number;
  if (text == "0")
    return std::unexpected(quoted(text) +
                           ": 0 is not a transport protocol (\"ip\" means any protocol)");
  if (auto v = parse_decimal(text, 255)) return static_cast<uint8_t>(*v);
  return std::unexpected(quoted(text) +
                         ": not a protocol (ip, tcp, udp, icmp, icmp6, sctp or 1..255)");
}

std::string protocol_name(uint8_t proto) {
  switch (proto) {
    case kProtoAny:
      return "ip";
    case kProtoIcmp:
      return "icmp";
    case kProtoTcp:
      return "tcp";
    case kProtoUdp:
      return "udp";
    case kProtoIcmp6:
      return "icmp6";
    case kProtoSctp:
      return "sctp";
    default:
      return std::to_string(proto);
  }
}

bool protocol_has_ports(uint8_t proto) {
  return proto == kProtoTcp || proto == kProtoUdp || proto == kProtoSctp;
}

std::expected<std::vector<PortRange>, std::string> parse_ports(std::string_view text) {
  std::vector<PortRange> out;
  if (trim(text).empty()) return out;
  size_t pos = 0;
  while (true) {
    size_t comma = text.find(',', pos);
    std::string_view item =
        trim(text.substr(pos, comma == std::string_view::npos ? text.npos : comma - pos));
    if (item.empty()) return std::unexpected(quoted(text) + ": empty item in the port list");
    size_t dash = item.find('-');
    std::string_view lo_text = trim(item.substr(0, dash));
    std::string_view hi_text =
        dash == std::string_view::npos ? lo_text : trim(item.substr(dash + 1));
    auto lo = parse_decimal(lo_text, 65535);
    auto hi = parse_decimal(hi_text, 65535);
    if (!lo || !hi) {
      std::string_view bad = !lo ? lo_text : hi_text;
      if (parse_decimal(bad, 0xffffffffu))
        return std::unexpected(quoted(item) + ": port above 65535");
      return std::unexpected(quoted(item) + ": not a port or port range");
    }
    if (*lo > *hi) return std::unexpected(quoted(item) + ": range reversed");
    out.push_back({static_cast<uint16_t>(*lo), static_cast<uint16_t>(*hi)});
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  std::sort(out.begin(), out.end(), [](const PortRange& a, const PortRange& b) {
    return a.lo != b.lo ? a.lo < b.lo : a.hi < b.hi;
  });
  std::vector<PortRange> merged;
  for (const PortRange& r : out) {
    if (!merged.empty() && static_cast<uint32_t>(r.lo) <= merged.back().hi + 1u)
      merged.back().hi = std::max(merged.back().hi, r.hi);
    else
      merged.push_back(r);
  }
  return merged;
}

std::string format_ports(const std::vector<PortRange>& ranges) {
  std::string out;
  for (const PortRange& r : ranges) {
    if (!out.empty()) out += ',';
    out += std::to_string(r.lo);
    if (r.hi != r.lo) out += "-" + std::to_string(r.hi);
  }
  return out;
}

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || !is_alnum(name.front())) return false;
  for (char c : name)
    if (!(is_alnum(c) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

namespace {

// validate_rule, also handing out the parsed selectors (nullopt when invalid).
std::vector<Problem> check_rule(const Rule& r, bool require_id, int index,
                                std::optional<Selector>* parsed_from,
                                std::optional<Selector>* parsed_to) {
  std::vector<Problem> out;
  const std::string obj = rule_object(r, index);
  auto add = [&](const char* field, std::string message) {
    out.push_back({obj, field, std::move(message)});
  };
  if (r.rule_id > kMaxRuleId || (r.rule_id == 0 && require_id))
    add("rule_id", quoted(std::to_string(r.rule_id)) + ": must be 1..2147483647");
  if (r.priority > kMaxPriority)
    add("priority", quoted(std::to_string(r.priority)) + ": must be 0..65535");
  for (auto [field, text, parsed] :
       {std::tuple{"from", &r.from, parsed_from}, std::tuple{"to", &r.to, parsed_to}}) {
    if (trim(*text).empty()) {
      add(field, "empty selector (\"any\" selects everything)");
      continue;
    }
    if (auto sel = parse_selector(*text); !sel)
      add(field, sel.error());
    else if (parsed)
      *parsed = std::move(*sel);
  }
  auto proto = parse_protocol(r.protocol);
  if (!proto) add("protocol", proto.error());
  auto ports = parse_ports(r.ports);
  if (!ports) {
    add("ports", ports.error());
  } else if (proto && !ports->empty() && !protocol_has_ports(*proto)) {
    add("ports", quoted(r.ports) + ": ports only apply to tcp, udp and sctp (protocol is " +
                     protocol_name(*proto) + ")");
  }
  if (action_name(r.action) == "invalid")
    add("action", std::to_string(static_cast<int>(r.action)) + ": not an action");
  if (r.description.size() > 1024) add("description", "longer than 1024 bytes");
  for (unsigned char c : r.description) {
    if (c < 0x20 || c == 0x7f) {
      add("description", "control character " + std::to_string(c) + " not allowed");
      break;
    }
  }
  return out;
}

}  // namespace

std::vector<Problem> validate_rule(const Rule& r, bool require_id, int index) {
  return check_rule(r, require_id, index, nullptr, nullptr);
}

std::expected<void, Error> validate(const DesiredState& state) {
  std::vector<Problem> out;

  // ---- settings
  if (state.settings.default_action != Action::kAllow &&
      state.settings.default_action != Action::kDeny)
    out.push_back({"settings", "default_action",
                   quoted(action_name(state.settings.default_action)) + ": must be allow or deny"});

  // ---- workloads (the maps hold views into `state` and indices of workloads)
  // (Sized up front and object names made only for a problem: 10k workloads are
  // validated on every change, gl-bench-policy.)
  const size_t n_workloads = state.workloads.size();
  NameSet workload_names(2 * n_workloads);
  std::unordered_map<std::string, size_t> ports(2 * n_workloads);  // host '\0' port
  std::unordered_map<std::string, size_t> macs(2 * n_workloads);   // host '\0' mac
  std::unordered_map<IpAddress, size_t, IpAddressHash> addresses(2 * n_workloads);
  auto name_of = [&](size_t i) { return state.workloads[i].name; };
  std::string slot;             // host '\0' port or mac
  std::vector<IpAddress> seen;  // the workload's addresses so far
  for (size_t i = 0; i < n_workloads; ++i) {
    const Workload& w = state.workloads[i];
    auto add = [&](const char* field, std::string message) {
      out.push_back({indexed_object("workload", w.name, i), field, std::move(message)});
    };
    if (!is_valid_name(w.name)) {
      add("name", quoted(w.name) + ": not a valid name ([A-Za-z0-9][A-Za-z0-9._-]*, 1..64)");
    } else if (!workload_names.insert(w.name).second) {
      add("name", "duplicate name");
    }
    if (!is_valid_host(w.host)) add("host", quoted(w.host) + ": not a valid host name");
    if (!is_valid_port_name(w.port)) {
      add("port", quoted(w.port) + ": not a valid port name");
    } else if (auto [it, fresh] =
                   ports.try_emplace((slot = w.host, slot += '\0', slot += w.port), i);
               !fresh) {
      add("port", quoted(w.port) + ": already used by workload " + name_of(it->second) +
                      " on host " + w.host);
    }
    if (auto mac = parse_mac(w.mac); !mac) {
      add("mac", quoted(w.mac) + ": not a MAC address (aa:bb:cc:dd:ee:ff)");
    } else if ((*mac)[0] & 1 || *mac == Mac{}) {
      add("mac", quoted(w.mac) + ": not a unicast MAC address");
    } else if (auto [it, fresh] = macs.try_emplace(
                   (slot = w.host, slot += '\0', slot.append(mac->begin(), mac->end()), slot), i);
               !fresh) {
      add("mac", quoted(w.mac) + ": already used by workload " + name_of(it->second) + " on host " +
                     w.host);
    }
    seen.clear();
    for (const std::string& text : w.ips) {
      auto ip = IpAddress::parse(text);
      if (!ip) {
        add("ips", text.find('/') != std::string::npos ? quoted(text) + ": an address, not a prefix"
                                                       : ip.error());
      } else if (!is_unicast(*ip)) {
        add("ips", quoted(text) + ": not a unicast address");
      } else if (std::find(seen.begin(), seen.end(), *ip) != seen.end()) {
        add("ips", quoted(text) + ": listed twice");
      } else {
        seen.push_back(*ip);
        if (auto [it, fresh] = addresses.try_emplace(*ip, i); !fresh)
          add("ips", quoted(text) + ": already used by workload " + name_of(it->second));
      }
    }
    for (const auto& [key, value] : w.labels) {
      if (!is_valid_label_key(key))
        add("labels", quoted(key) + ": not a valid label key");
      else if (!is_valid_label_value(value))
        add("labels", quoted(key + "=" + value) + ": not a valid label value");
    }
  }

  // ---- groups
  NameSet group_names;
  for (const Group& g : state.groups)
    if (is_valid_name(g.name)) group_names.insert(g.name);
  NameSet seen_groups;
  std::map<std::string, std::vector<std::string>, std::less<>> group_edges;  // for cycles
  for (size_t i = 0; i < state.groups.size(); ++i) {
    const Group& g = state.groups[i];
    const std::string obj = indexed_object("group", g.name, i);
    if (!is_valid_name(g.name)) {
      out.push_back(
          {obj, "name", quoted(g.name) + ": not a valid name ([A-Za-z0-9][A-Za-z0-9._-]*, 1..64)"});
    } else if (!seen_groups.insert(g.name).second) {
      out.push_back({obj, "name", "duplicate name"});
    }
    if (auto sel = parse_selector(g.selector); !sel) {
      out.push_back({obj, "selector", sel.error()});
    } else {
      check_selector_refs(*sel, obj, "selector", workload_names, group_names, g.selector, out);
      for (const Alternative& a : sel->alternatives)
        for (const Term& t : a.terms)
          if (t.kind == TermKind::kGroup) group_edges[g.name].push_back(t.key);
    }
    NameSet members;
    for (const std::string& m : g.members) {
      if (!workload_names.contains(m))
        out.push_back({obj, "members", quoted(m) + ": unknown workload"});
      else if (!members.insert(m).second)
        out.push_back({obj, "members", quoted(m) + ": listed twice"});
    }
  }
  // Cycles: depth-first search; each cycle is reported once, at its first group in
  // declaration order.
  {
    std::map<std::string, int, std::less<>> state_of;  // 0 new, 1 on stack, 2 done
    std::vector<std::string> stack;
    std::set<std::string> reported;
    auto dfs = [&](auto&& self, const std::string& g) -> void {
      state_of[g] = 1;
      stack.push_back(g);
      for (const std::string& next : group_edges[g]) {
        if (!group_names.contains(next)) continue;
        int s = state_of[next];
        if (s == 1) {
          auto begin = std::find(stack.begin(), stack.end(), next);
          std::string path;
          for (auto it = begin; it != stack.end(); ++it) path += *it + " -> ";
          path += next;
          if (reported.insert(next).second)
            out.push_back({"group " + next, "selector", "cycle: " + path});
        } else if (s == 0) {
          self(self, next);
        }
      }
      stack.pop_back();
      state_of[g] = 2;
    };
    for (const Group& g : state.groups)
      if (is_valid_name(g.name) && state_of[g.name] == 0) dfs(dfs, g.name);
  }

  // ---- rules
  std::unordered_map<uint32_t, size_t> rule_ids;
  for (size_t i = 0; i < state.rules.size(); ++i) {
    const Rule& r = state.rules[i];
    std::optional<Selector> from, to;
    std::vector<Problem> own = check_rule(r, true, static_cast<int>(i), &from, &to);
    const std::string obj = rule_object(r, static_cast<int>(i));
    if (r.rule_id >= 1 && r.rule_id <= kMaxRuleId) {
      if (auto [it, fresh] = rule_ids.try_emplace(r.rule_id, i); !fresh)
        own.insert(own.begin(), {obj, "rule_id",
                                 "duplicate rule id (rules #" + std::to_string(it->second + 1) +
                                     " and #" + std::to_string(i + 1) + ")"});
    }
    for (auto [field, text, sel] :
         {std::tuple{"from", &r.from, &from}, std::tuple{"to", &r.to, &to}})
      if (*sel) check_selector_refs(**sel, obj, field, workload_names, group_names, *text, own);
    out.insert(out.end(), own.begin(), own.end());
  }

  if (out.empty()) return {};
  return std::unexpected(Error(std::move(out)));
}

}  // namespace gl::policy
