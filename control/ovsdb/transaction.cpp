// transaction.cpp — see transaction.hpp.
#include "control/ovsdb/transaction.hpp"

#include "control/ovsdb/value.hpp"

namespace gl::ovsdb {

namespace {

Json where_json(const Where& where) {
  Json w = Json::array();
  for (const Condition& c : where) w.push_back(c.to_json());
  return w;
}

std::string json_string_or_dump(const Json& j) {
  return j.is_string() ? j.get<std::string>() : j.dump();
}

}  // namespace

// ---- Condition / Mutation ------------------------------------------------------------------

Condition Condition::eq(std::string column, Json value) {
  return {std::move(column), "==", std::move(value)};
}
Condition Condition::ne(std::string column, Json value) {
  return {std::move(column), "!=", std::move(value)};
}
Condition Condition::lt(std::string column, Json value) {
  return {std::move(column), "<", std::move(value)};
}
Condition Condition::le(std::string column, Json value) {
  return {std::move(column), "<=", std::move(value)};
}
Condition Condition::gt(std::string column, Json value) {
  return {std::move(column), ">", std::move(value)};
}
Condition Condition::ge(std::string column, Json value) {
  return {std::move(column), ">=", std::move(value)};
}
Condition Condition::includes(std::string column, Json value) {
  return {std::move(column), "includes", std::move(value)};
}
Condition Condition::excludes(std::string column, Json value) {
  return {std::move(column), "excludes", std::move(value)};
}
Condition Condition::uuid_is(std::string_view uuid) {
  return {"_uuid", "==", uuid_value(uuid)};
}

Json Condition::to_json() const {
  return Json::array({column, function, value});
}

Mutation Mutation::insert(std::string column, Json set_or_map) {
  return {std::move(column), "insert", std::move(set_or_map)};
}
Mutation Mutation::erase(std::string column, Json set_or_map_or_keys) {
  return {std::move(column), "delete", std::move(set_or_map_or_keys)};
}
Mutation Mutation::add(std::string column, Json n) {
  return {std::move(column), "+=", std::move(n)};
}
Mutation Mutation::sub(std::string column, Json n) {
  return {std::move(column), "-=", std::move(n)};
}

Json Mutation::to_json() const {
  return Json::array({column, mutator, value});
}

// ---- TransactResult ------------------------------------------------------------------------

std::optional<std::string> TransactResult::inserted_uuid(size_t op) const {
  if (op >= results.size() || !results[op].is_object()) return std::nullopt;
  auto it = results[op].find("uuid");
  if (it == results[op].end()) return std::nullopt;
  auto u = uuid_of(*it);
  if (!u) return std::nullopt;
  return *u;
}

std::optional<int64_t> TransactResult::count(size_t op) const {
  if (op >= results.size() || !results[op].is_object()) return std::nullopt;
  auto it = results[op].find("count");
  if (it == results[op].end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

const Json* TransactResult::rows(size_t op) const {
  if (op >= results.size() || !results[op].is_object()) return nullptr;
  auto it = results[op].find("rows");
  return it == results[op].end() ? nullptr : &*it;
}

// ---- Transaction ---------------------------------------------------------------------------

size_t Transaction::push(Json op) {
  ops_.push_back(std::move(op));
  return ops_.size() - 1;
}

size_t Transaction::insert(std::string_view table, Json row, std::string_view uuid_name) {
  Json op = {{"op", "insert"}, {"table", std::string(table)}, {"row", std::move(row)}};
  if (!uuid_name.empty()) op["uuid-name"] = std::string(uuid_name);
  return push(std::move(op));
}

size_t Transaction::update(std::string_view table, const Where& where, Json row) {
  return push({{"op", "update"},
               {"table", std::string(table)},
               {"where", where_json(where)},
               {"row", std::move(row)}});
}

size_t Transaction::mutate(std::string_view table, const Where& where,
                           const std::vector<Mutation>& mutations) {
  Json m = Json::array();
  for (const Mutation& x : mutations) m.push_back(x.to_json());
  return push({{"op", "mutate"},
               {"table", std::string(table)},
               {"where", where_json(where)},
               {"mutations", std::move(m)}});
}

size_t Transaction::erase(std::string_view table, const Where& where) {
  return push({{"op", "delete"}, {"table", std::string(table)}, {"where", where_json(where)}});
}

size_t Transaction::select(std::string_view table, const Where& where,
                           const std::vector<std::string>& columns) {
  Json op = {{"op", "select"}, {"table", std::string(table)}, {"where", where_json(where)}};
  if (!columns.empty()) op["columns"] = columns;
  return push(std::move(op));
}

size_t Transaction::wait(std::string_view table, const Where& where,
                         const std::vector<std::string>& columns, WaitUntil until,
                         std::vector<Json> rows, int64_t timeout_ms) {
  return push({{"op", "wait"},
               {"table", std::string(table)},
               {"where", where_json(where)},
               {"columns", columns},
               {"until", until == WaitUntil::kEqual ? "==" : "!="},
               {"rows", Json(std::move(rows))},
               {"timeout", timeout_ms}});
}

size_t Transaction::comment(std::string_view text) {
  return push({{"op", "comment"}, {"comment", std::string(text)}});
}

size_t Transaction::abort() {
  return push({{"op", "abort"}});
}

Json Transaction::params(std::string_view db) const {
  Json p = Json::array();
  p.push_back(std::string(db));
  for (const Json& op : ops_) p.push_back(op);
  return p;
}

std::string Transaction::describe(size_t op) const {
  if (op >= ops_.size()) return "op " + std::to_string(op);
  const Json& o = ops_[op];
  const std::string name = o.value("op", std::string("?"));
  const std::string table = o.value("table", std::string());
  std::string what = name;
  if (name == "insert") {
    what += " into " + table;
  } else if (name == "update" || name == "mutate") {
    what += " of " + table;
  } else if (name == "delete" || name == "select" || name == "wait") {
    what += " in " + table;
  }
  return "op " + std::to_string(op) + " (" + what + ")";
}

Result<TransactResult> Transaction::interpret_reply(const Json& result) const {
  if (!result.is_array()) {
    return make_error(Errc::kBadReply, "transact reply is not an array: " + result.dump());
  }
  const size_t n = ops_.size();
  for (size_t i = 0; i < result.size(); ++i) {
    const Json& r = result[i];
    if (!r.is_object() || !r.contains("error")) continue;
    Error e;
    e.code = Errc::kTxnFailed;
    e.server_error = json_string_or_dump(r["error"]);
    if (auto d = r.find("details"); d != r.end()) e.details = json_string_or_dump(*d);
    std::string what;
    if (i < n) {
      e.op_index = i;
      what = describe(i) + " failed";
    } else {
      // Commit-time failure: find the operation the details are about. An insert whose new
      // row UUID the server quotes is certain; otherwise the only operation on a table the
      // details name in quotes.
      std::optional<size_t> by_uuid;
      for (size_t k = 0; k < n && k < result.size(); ++k) {
        const Json& rk = result[k];
        if (!rk.is_object()) continue;
        auto u = rk.find("uuid");
        if (u == rk.end()) continue;
        auto s = uuid_of(*u);
        if (s && e.details.find(*s) != std::string::npos) by_uuid = k;
      }
      if (by_uuid) {
        e.op_index = by_uuid;
      } else {
        std::optional<size_t> by_table;
        bool ambiguous = false;
        for (size_t k = 0; k < n; ++k) {
          const std::string table = ops_[k].value("table", std::string());
          if (table.empty() || e.details.find("\"" + table + "\"") == std::string::npos) continue;
          const std::string kind = ops_[k].value("op", std::string());
          if (kind == "select" || kind == "wait") continue;
          if (by_table) ambiguous = true;
          by_table = k;
        }
        if (by_table && !ambiguous) e.op_index = by_table;
      }
      what = "transaction commit failed";
      if (e.op_index) what += " at " + describe(*e.op_index);
    }
    e.message = what + ": " + e.server_error;
    if (!e.details.empty()) e.message += ": " + e.details;
    return std::unexpected(std::move(e));
  }
  if (result.size() != n) {
    return make_error(Errc::kBadReply, "transact reply has " + std::to_string(result.size()) +
                                           " results for " + std::to_string(n) + " operations");
  }
  TransactResult tr;
  tr.results = result.get<std::vector<Json>>();
  return tr;
}

}  // namespace gl::ovsdb
