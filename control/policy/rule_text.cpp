#include "control/policy/rule_text.hpp"
#include "control/policy/text.hpp"

#include <set>
#include <utility>
#include <vector>

#include "control/policy/selector.hpp"

namespace gl::policy {
namespace {

using text::is_space;
using text::quoted;
using text::trim;

// A value in the canonical text: quoted (with \" and \\) only when needed, or always.
std::string value_text(std::string_view v, bool always_quote) {
  bool need = always_quote || v.empty() || is_space(v.front()) || is_space(v.back()) ||
              v.find_first_of(",\"\\") != std::string_view::npos;
  if (!need) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

struct Field {
  std::string key;
  std::string value;
  bool has_value = false;
  bool was_quoted = false;
};

// Splits the text into fields; quoting problems go to `problems`.
std::vector<Field> split_fields(std::string_view text, std::vector<Problem>& problems) {
  std::vector<Field> fields;
  size_t pos = 0;
  const size_t n = text.size();
  while (true) {
    while (pos < n && is_space(text[pos])) ++pos;
    size_t start = pos;
    while (pos < n && text[pos] != '=' && text[pos] != ',') ++pos;
    Field f;
    f.key = std::string(trim(text.substr(start, pos - start)));
    if (pos < n && text[pos] == '=') {
      f.has_value = true;
      ++pos;
      while (pos < n && is_space(text[pos])) ++pos;
      if (pos < n && text[pos] == '"') {
        f.was_quoted = true;
        size_t open = pos++;
        bool closed = false;
        while (pos < n) {
          char c = text[pos++];
          if (c == '\\' && pos < n) {
            f.value += text[pos++];
          } else if (c == '"') {
            closed = true;
            break;
          } else {
            f.value += c;
          }
        }
        if (!closed) {
          problems.push_back({"", f.key, quoted(text.substr(open)) + ": unterminated quote"});
          fields.push_back(std::move(f));
          return fields;
        }
        while (pos < n && is_space(text[pos])) ++pos;
        if (pos < n && text[pos] != ',') {
          size_t end = text.find(',', pos);
          problems.push_back(
              {"", f.key,
               quoted(text.substr(pos, end == std::string_view::npos ? text.npos : end - pos)) +
                   ": text after the closing quote"});
          pos = end == std::string_view::npos ? n : end;
        }
      } else {
        size_t vstart = pos;
        while (pos < n && text[pos] != ',') ++pos;
        f.value = std::string(trim(text.substr(vstart, pos - vstart)));
      }
    }
    if (f.key.empty()) {
      problems.push_back({"", "",
                          f.has_value ? "value " + quoted(f.value) + " without a field name"
                                      : "empty field at offset " + std::to_string(start)});
    } else {
      fields.push_back(std::move(f));
    }
    if (pos >= n) break;
    ++pos;  // the comma
    if (trim(text.substr(pos)).empty()) {
      problems.push_back({"", "", "empty field after the last comma"});
      break;
    }
  }
  return fields;
}

// Decimal without sign; nullopt if not a number or above 2^32-1.
std::optional<uint32_t> parse_u32(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > 0xffffffffull) return std::nullopt;
  return static_cast<uint32_t>(v);
}

bool is_protocol_word(std::string_view w) {
  return w == "ip" || w == "tcp" || w == "udp" || w == "icmp" || w == "icmp6" || w == "sctp";
}

}  // namespace

std::expected<Rule, Error> parse_rule(std::string_view text) {
  if (trim(text).empty()) return std::unexpected(Error("", "", "empty rule"));
  std::vector<Problem> problems;
  std::vector<Field> fields = split_fields(text, problems);

  Rule rule;
  std::set<std::string> seen;
  std::set<std::string> bad;  // fields already reported
  std::string protocol_source;
  std::vector<std::string> ports;
  bool have_action = false;
  auto add = [&](const std::string& field, std::string message) {
    problems.push_back({"", field, std::move(message)});
    bad.insert(field);
  };

  for (const Field& f : fields) {
    const std::string& k = f.key;
    if (!f.has_value) {
      if (is_protocol_word(k)) {
        if (!protocol_source.empty()) {
          add("proto",
              "protocol given twice (" + quoted(protocol_source) + " and " + quoted(k) + ")");
          continue;
        }
        protocol_source = k;
        rule.protocol = k;
      } else if (k == "log") {
        if (!seen.insert(k).second) add(k, "given twice");
        rule.log = true;
      } else if (k == "id" || k == "priority" || k == "from" || k == "to" || k == "proto" ||
                 k == "tp_dst" || k == "actions" || k == "action" || k == "description") {
        add(k == "action" ? "actions" : k, "missing value (" + k + "=...)");
      } else {
        add("", quoted(k) + ": unknown field");
      }
      continue;
    }
    if (k == "tp_dst") {
      if (f.value.empty() && !f.was_quoted) add(k, "empty value");
      ports.push_back(f.value);
      continue;
    }
    const std::string key = k == "action" ? "actions" : k;
    const bool known = key == "id" || key == "priority" || key == "from" || key == "to" ||
                       key == "proto" || key == "actions" || key == "description";
    if (!known) {
      if (is_protocol_word(k) || k == "log")
        add(k, quoted(k + "=" + f.value) + ": " + k + " takes no value");
      else
        add("", quoted(k) + ": unknown field");
      continue;
    }
    if (!seen.insert(key).second) {
      add(key, "given twice");
      continue;
    }
    if (f.value.empty() && key != "description") {
      add(key, "empty value");
      continue;
    }
    if (key == "id") {
      auto v = parse_u32(f.value);
      if (!v)
        add(key, quoted(f.value) + ": not a number");
      else if (*v == 0 || *v > kMaxRuleId)
        add(key, quoted(f.value) + ": must be 1..2147483647 (leave id out to have one assigned)");
      else
        rule.rule_id = *v;
    } else if (key == "priority") {
      auto v = parse_u32(f.value);
      if (!v || *v > kMaxPriority)
        add(key, quoted(f.value) + (v ? ": must be 0..65535" : ": not a number"));
      else
        rule.priority = *v;
    } else if (key == "from" || key == "to") {
      auto sel = parse_selector(f.value);
      std::string& dst = key == "from" ? rule.from : rule.to;
      dst = sel ? format_selector(*sel) : f.value;
    } else if (key == "proto") {
      if (!protocol_source.empty()) {
        add("proto", "protocol given twice (" + quoted(protocol_source) + " and " +
                         quoted("proto=" + f.value) + ")");
        continue;
      }
      protocol_source = "proto=" + f.value;
      auto p = parse_protocol(f.value);
      rule.protocol = p ? protocol_name(*p) : f.value;
    } else if (key == "actions") {
      auto a = parse_action(f.value);
      if (!a)
        add(key, quoted(f.value) + ": not an action (allow, deny, reject, allow-encrypted)");
      else
        rule.action = *a;
      have_action = true;
    } else if (key == "description") {
      rule.description = f.value;
    }
  }
  if (!have_action && !bad.contains("actions"))
    add("actions", "missing (actions=allow, deny, reject or allow-encrypted)");

  std::string joined;
  for (const std::string& p : ports) {
    if (!joined.empty()) joined += ',';
    joined += p;
  }
  auto parsed_ports = parse_ports(joined);
  rule.ports = parsed_ports ? format_ports(*parsed_ports) : joined;

  // Field checks (selectors, ports, protocol/ports, description) in the text's names.
  static constexpr std::pair<std::string_view, std::string_view> kNames[] = {
      {"rule_id", "id"}, {"protocol", "proto"}, {"ports", "tp_dst"}, {"action", "actions"}};
  for (Problem& p : validate_rule(rule, false)) {
    for (auto [model_name, text_name] : kNames)
      if (p.field == model_name) p.field = std::string(text_name);
    if (bad.contains(p.field)) continue;
    p.object.clear();
    problems.push_back(std::move(p));
  }
  if (!problems.empty()) return std::unexpected(Error(std::move(problems)));
  return rule;
}

std::string format_rule(const Rule& rule) {
  std::string out;
  auto field = [&](const std::string& f) {
    if (!out.empty()) out += ',';
    out += f;
  };
  if (rule.rule_id != 0) field("id=" + std::to_string(rule.rule_id));
  field("priority=" + std::to_string(rule.priority));
  for (auto [key, text] : {std::pair{"from=", &rule.from}, std::pair{"to=", &rule.to}}) {
    auto sel = parse_selector(*text);
    field(key + value_text(sel && !trim(*text).empty() ? format_selector(*sel) : *text, false));
  }
  if (auto p = parse_protocol(rule.protocol)) {
    std::string name = protocol_name(*p);
    field(is_protocol_word(name) ? name : "proto=" + name);
  } else {
    field("proto=" + value_text(rule.protocol, false));
  }
  if (auto ports = parse_ports(rule.ports)) {
    for (const PortRange& r : *ports)
      field("tp_dst=" + std::to_string(r.lo) + (r.hi != r.lo ? "-" + std::to_string(r.hi) : ""));
  } else {
    field("tp_dst=" + value_text(rule.ports, true));
  }
  field("actions=" + std::string(action_name(rule.action)));
  if (rule.log) field("log");
  if (!rule.description.empty()) field("description=" + value_text(rule.description, true));
  return out;
}

}  // namespace gl::policy
