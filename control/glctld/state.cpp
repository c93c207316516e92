#include "control/glctld/state.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "control/ovsdb/value.hpp"

namespace gl::glctld {
namespace {

using Json = nlohmann::json;
using policy::Problem;

// Reads the columns of one row, collecting a problem for each value that does not fit.
class RowReader {
 public:
  RowReader(const ovsdb::Row& row, std::string object, std::vector<Problem>& problems)
      : row_(row), object_(std::move(object)), problems_(problems) {}

  std::string string(std::string_view column) {
    const Json* v = get(column);
    if (v == nullptr) return {};
    if (v->is_string()) return v->get<std::string>();
    bad(column, "not a string: " + v->dump());
    return {};
  }
  bool boolean(std::string_view column) {
    const Json* v = get(column);
    if (v == nullptr) return false;
    if (v->is_boolean()) return v->get<bool>();
    bad(column, "not a boolean: " + v->dump());
    return false;
  }
  // An integer column that the model holds in 32 bits.
  uint32_t u32(std::string_view column) {
    const Json* v = get(column);
    if (v == nullptr) return 0;
    if (!v->is_number_integer()) {
      bad(column, "not an integer: " + v->dump());
      return 0;
    }
    const int64_t n = v->get<int64_t>();
    if (n < 0 || n > std::numeric_limits<uint32_t>::max()) {
      bad(column, std::to_string(n) + ": out of range 0..4294967295");
      return 0;
    }
    return static_cast<uint32_t>(n);
  }
  std::vector<std::string> string_set(std::string_view column) {
    const Json* v = get(column);
    if (v == nullptr) return {};
    auto s = ovsdb::string_set(*v);
    if (s) return std::move(*s);
    bad(column, s.error().message);
    return {};
  }
  std::map<std::string, std::string> string_map(std::string_view column) {
    const Json* v = get(column);
    if (v == nullptr) return {};
    auto m = ovsdb::string_map(*v);
    if (m) return std::move(*m);
    bad(column, m.error().message);
    return {};
  }
  // An optional string column: nullopt when empty.
  std::optional<std::string> optional_string(std::string_view column) {
    const Json* v = get(column);
    if (v == nullptr) return std::nullopt;
    auto a = ovsdb::optional_atom(*v);
    if (!a) {
      bad(column, a.error().message);
      return std::nullopt;
    }
    if (!a->has_value()) return std::nullopt;
    if ((*a)->is_string()) return (*a)->get<std::string>();
    bad(column, "not a string: " + (*a)->dump());
    return std::nullopt;
  }
  std::optional<policy::Action> action(std::string_view column, std::string_view text) {
    auto a = policy::parse_action(text);
    if (!a) bad(column, "\"" + std::string(text) + "\": not an action");
    return a;
  }
  void bad(std::string_view column, std::string message) {
    problems_.push_back({object_, std::string(column), std::move(message)});
  }

 private:
  const Json* get(std::string_view column) {
    if (!row_.is_object()) {
      if (!reported_shape_) problems_.push_back({object_, "", "row is not a JSON object"});
      reported_shape_ = true;
      return nullptr;
    }
    auto it = row_.find(column);
    if (it == row_.end()) {
      bad(column, "column missing (is the database's schema older than glctld's?)");
      return nullptr;
    }
    return &*it;
  }

  const ovsdb::Row& row_;
  std::string object_;
  std::vector<Problem>& problems_;
  bool reported_shape_ = false;
};

// "Workload web1", or "Workload row <uuid>" when the name is not a usable string.
std::string named_object(std::string_view table, const ovsdb::Row& row, std::string_view uuid) {
  if (row.is_object()) {
    auto it = row.find("name");
    if (it != row.end() && it->is_string() && policy::is_valid_name(it->get<std::string>()))
      return std::string(table) + " " + it->get<std::string>();
  }
  return std::string(table) + " row " + std::string(uuid);
}

std::string rule_object(const ovsdb::Row& row, std::string_view uuid) {
  if (row.is_object()) {
    auto it = row.find("rule_id");
    if (it != row.end() && it->is_number_integer() && it->get<int64_t>() > 0)
      return std::string(kRuleTable) + " " + std::to_string(it->get<int64_t>());
  }
  return std::string(kRuleTable) + " row " + std::string(uuid);
}

void read_settings(const ovsdb::Table* table, policy::Settings& out,
                   std::vector<Problem>& problems) {
  if (table == nullptr || table->empty()) return;  // the defaults
  if (table->size() > 1) {
    problems.push_back({std::string(kSettingsTable), "",
                        std::to_string(table->size()) + " settings rows (at most one)"});
    return;
  }
  const auto& [uuid, row] = *table->begin();
  RowReader r(row, std::string(kSettingsTable) + " settings", problems);
  if (auto text = r.optional_string("default_action"); text) {
    if (auto a = r.action("default_action", *text)) out.default_action = *a;
  }
  out.conn_limit = r.u32("conn_limit");
}

}  // namespace

ExportSettings export_settings(const ovsdb::Replica& replica) {
  ExportSettings out;
  const ovsdb::Table* table = replica.table(kSettingsTable);
  if (table == nullptr || table->size() != 1) return out;
  std::vector<Problem> ignored;  // a malformed settings row is reported by desired_state()
  RowReader r(table->begin()->second, std::string(kSettingsTable) + " settings", ignored);
  out.flow_log = r.optional_string("flow_log").value_or("");
  out.ipfix_collector = r.optional_string("ipfix_collector").value_or("");
  const auto options = r.string_map("options");
  if (auto it = options.find("ipfix_export_start"); it != options.end())
    out.ipfix_export_start = it->second == "true";
  return out;
}

HostTable host_table(const ovsdb::Replica& replica) {
  HostTable out;
  const ovsdb::Table* t = replica.table(kHostTable);
  if (t == nullptr) return out;
  for (const auto& [uuid, row] : *t) {
    const size_t before = out.problems.size();
    RowReader r(row, named_object(kHostTable, row, uuid), out.problems);
    HostEntry h;
    h.name = r.string("name");
    h.underlay_ip = r.string("underlay_ip");
    h.pubkey = r.string("pubkey");
    h.revoked = r.boolean("revoked");
    if (out.problems.size() == before) out.hosts.push_back(std::move(h));
  }
  std::stable_sort(out.hosts.begin(), out.hosts.end(),
                   [](const HostEntry& a, const HostEntry& b) { return a.name < b.name; });
  return out;
}

nlohmann::json host_row(const HostEntry& h) {
  return Json{{"name", h.name},
              {"underlay_ip", h.underlay_ip},
              {"pubkey", h.pubkey},
              {"revoked", h.revoked}};
}

KeySettings key_settings(const ovsdb::Replica& replica) {
  KeySettings out;
  const ovsdb::Table* table = replica.table(kSettingsTable);
  if (table == nullptr || table->size() != 1) return out;
  std::vector<Problem> ignored;
  RowReader r(table->begin()->second, std::string(kSettingsTable) + " settings", ignored);
  const Json* v = nullptr;
  if (const auto& row = table->begin()->second; row.is_object()) {
    auto it = row.find("rekey_seconds");
    if (it != row.end()) v = &*it;
  }
  if (v != nullptr) {
    auto a = ovsdb::optional_atom(*v);
    if (a && a->has_value() && (*a)->is_number_integer()) {
      const int64_t n = (*a)->get<int64_t>();
      if (n >= 1 && n <= 86400) out.rekey_seconds = static_cast<uint32_t>(n);
    }
  }
  const auto options = r.string_map("options");
  auto number = [&](const char* key) -> uint64_t {
    auto it = options.find(key);
    if (it == options.end()) return 0;
    try {
      return std::stoull(it->second);
    } catch (const std::exception&) {
      return 0;
    }
  };
  out.rekey_packets = number("rekey_packets");
  out.rekey_bytes = number("rekey_bytes");
  return out;
}

namespace {

policy::Workload read_workload(const ovsdb::Row& row, std::string_view uuid,
                               std::vector<Problem>& problems) {
  RowReader r(row, named_object(kWorkloadTable, row, uuid), problems);
  policy::Workload w;
  w.name = r.string("name");
  w.host = r.string("host");
  w.port = r.string("port");
  w.mac = r.string("mac");
  w.ips = r.string_set("ips");
  w.labels = r.string_map("labels");
  return w;
}

policy::Group read_group(const ovsdb::Row& row, std::string_view uuid,
                         std::vector<Problem>& problems) {
  RowReader r(row, named_object(kGroupTable, row, uuid), problems);
  policy::Group g;
  g.name = r.string("name");
  g.selector = r.string("selector");
  g.members = r.string_set("members");
  return g;
}

policy::Rule read_rule(const ovsdb::Row& row, std::string_view uuid,
                       std::vector<Problem>& problems) {
  RowReader r(row, rule_object(row, uuid), problems);
  policy::Rule rule;
  rule.rule_id = r.u32("rule_id");
  rule.priority = r.u32("priority");
  rule.from = r.string("from");
  rule.to = r.string("to");
  rule.protocol = r.string("protocol");
  rule.ports = r.string("ports");
  const std::string action = r.string("action");
  if (auto a = r.action("action", action)) rule.action = *a;
  rule.log = r.boolean("log");
  rule.description = r.string("description");
  return rule;
}

// The order desired_state() gives (ties: the replica's row order, by UUID).
bool before(const policy::Workload& a, const policy::Workload& b) {
  return a.name < b.name;
}
bool before(const policy::Group& a, const policy::Group& b) {
  return a.name < b.name;
}
bool before(const policy::Rule& a, const policy::Rule& b) {
  return a.rule_id < b.rule_id;
}

}  // namespace

std::expected<policy::DesiredState, policy::Error> desired_state(const ovsdb::Replica& replica) {
  policy::DesiredState state;
  std::vector<Problem> problems;
  read_settings(replica.table(kSettingsTable), state.settings, problems);
  if (const ovsdb::Table* t = replica.table(kWorkloadTable))
    for (const auto& [uuid, row] : *t)
      state.workloads.push_back(read_workload(row, uuid, problems));
  if (const ovsdb::Table* t = replica.table(kGroupTable))
    for (const auto& [uuid, row] : *t) state.groups.push_back(read_group(row, uuid, problems));
  if (const ovsdb::Table* t = replica.table(kRuleTable))
    for (const auto& [uuid, row] : *t) state.rules.push_back(read_rule(row, uuid, problems));
  if (!problems.empty()) return std::unexpected(policy::Error(std::move(problems)));

  auto by_key = [](const auto& a, const auto& b) { return before(a, b); };
  std::stable_sort(state.workloads.begin(), state.workloads.end(), by_key);
  std::stable_sort(state.groups.begin(), state.groups.end(), by_key);
  std::stable_sort(state.rules.begin(), state.rules.end(), by_key);
  return state;
}

// ---- StateCache ---------------------------------------------------------------------------

template <typename T>
void StateCache::Rows<T>::apply(const ovsdb::Table* table, std::vector<T>& items,
                                const Reader<T>& read) {
  // The row's model object, or nullopt when it is absent or does not fit (its problems kept).
  auto read_row = [&](const std::string& uuid, const ovsdb::Row* row) -> std::optional<T> {
    problems.erase(uuid);
    if (row == nullptr) return std::nullopt;
    std::vector<Problem> p;
    T item = read(*row, uuid, p);
    if (p.empty()) return item;
    problems.emplace(uuid, std::move(p));
    return std::nullopt;
  };
  bool reorder = full;
  if (full) {
    items.clear();
    uuids.clear();
    problems.clear();
    if (table != nullptr)
      for (const auto& [uuid, row] : *table)
        if (auto item = read_row(uuid, &row)) {
          items.push_back(std::move(*item));
          uuids.push_back(uuid);
        }
  } else if (!dirty.empty()) {
    std::unordered_map<std::string_view, size_t> at;  // uuid -> position
    at.reserve(uuids.size());
    for (size_t i = 0; i < uuids.size(); ++i) at.emplace(uuids[i], i);
    std::vector<bool> gone(items.size(), false);
    bool any_gone = false;
    for (const std::string& uuid : dirty) {
      const ovsdb::Row* row = nullptr;
      if (table != nullptr)
        if (auto r = table->find(uuid); r != table->end()) row = &r->second;
      std::optional<T> item = read_row(uuid, row);
      const auto it = at.find(uuid);
      if (it == at.end()) {
        if (!item) continue;
        items.push_back(std::move(*item));
        uuids.push_back(uuid);
        reorder = true;
      } else if (!item) {
        gone[it->second] = any_gone = true;
      } else {
        // A changed sort key moves the row; an unchanged one keeps its place.
        T& old = items[it->second];
        reorder |= before(old, *item) || before(*item, old);
        old = std::move(*item);
      }
    }
    if (any_gone) {
      size_t out = 0;
      for (size_t i = 0; i < items.size(); ++i) {
        if (i < gone.size() && gone[i]) continue;
        if (out != i) {
          items[out] = std::move(items[i]);
          uuids[out] = std::move(uuids[i]);
        }
        ++out;
      }
      items.resize(out);
      uuids.resize(out);
    }
  }
  if (reorder) {
    // desired_state()'s order: the key, then the replica's row order (by UUID).
    std::vector<size_t> order(items.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
      if (before(items[x], items[y])) return true;
      if (before(items[y], items[x])) return false;
      return uuids[x] < uuids[y];
    });
    std::vector<T> sorted_items;
    std::vector<std::string> sorted_uuids;
    sorted_items.reserve(items.size());
    sorted_uuids.reserve(items.size());
    for (size_t i : order) {
      sorted_items.push_back(std::move(items[i]));
      sorted_uuids.push_back(std::move(uuids[i]));
    }
    items = std::move(sorted_items);
    uuids = std::move(sorted_uuids);
  }
  full = false;
  dirty.clear();
}

void StateCache::note(const std::vector<ovsdb::RowChange>& changes) {
  for (const ovsdb::RowChange& c : changes) {
    if (c.table == kWorkloadTable)
      workloads_.dirty.insert(c.uuid);
    else if (c.table == kGroupTable)
      groups_.dirty.insert(c.uuid);
    else if (c.table == kRuleTable)
      rules_.dirty.insert(c.uuid);
  }
}

void StateCache::invalidate() {
  workloads_.full = groups_.full = rules_.full = true;
}

std::expected<const policy::DesiredState*, policy::Error> StateCache::state(
    const ovsdb::Replica& replica) {
  state_.settings = policy::Settings{};
  std::vector<Problem> problems;
  read_settings(replica.table(kSettingsTable), state_.settings, problems);
  workloads_.apply(replica.table(kWorkloadTable), state_.workloads, read_workload);
  groups_.apply(replica.table(kGroupTable), state_.groups, read_group);
  rules_.apply(replica.table(kRuleTable), state_.rules, read_rule);
  // desired_state()'s problems: settings, then each table's rows in the replica's order.
  for (const auto* rows : {&workloads_.problems, &groups_.problems, &rules_.problems})
    for (const auto& [uuid, p] : *rows) problems.insert(problems.end(), p.begin(), p.end());
  if (!problems.empty()) return std::unexpected(policy::Error(std::move(problems)));
  return &state_;
}

nlohmann::json workload_row(const policy::Workload& w) {
  return Json{{"name", w.name},
              {"host", w.host},
              {"port", w.port},
              {"mac", w.mac},
              {"ips", ovsdb::string_set_value(w.ips)},
              {"labels", ovsdb::string_map_value(w.labels)}};
}

nlohmann::json group_row(const policy::Group& g) {
  return Json{
      {"name", g.name}, {"selector", g.selector}, {"members", ovsdb::string_set_value(g.members)}};
}

nlohmann::json rule_row(const policy::Rule& r) {
  return Json{{"rule_id", r.rule_id},
              {"priority", r.priority},
              {"from", r.from},
              {"to", r.to},
              {"protocol", r.protocol},
              {"ports", r.ports},
              {"action", std::string(policy::action_name(r.action))},
              {"log", r.log},
              {"description", r.description}};
}

nlohmann::json default_action_value(policy::Action a) {
  return ovsdb::optional_value(Json(std::string(policy::action_name(a))));
}

}  // namespace gl::glctld
