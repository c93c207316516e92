// transaction.hpp — building RFC 7047 "transact" requests (5.2) and reading their replies.
//
// Purpose: callers describe a transaction with a Transaction builder instead of JSON:
//
//   Transaction t;
//   t.insert("Host", {{"name", "h1"}, {"revoked", false}}, "new_host");
//   t.update("Workload", {Condition::eq("name", "web-1")},
//            {{"labels", map_value({{"app", "web"}})}});
//   t.mutate("Group", {Condition::eq("name", "web")},
//            {Mutation::insert("members", set_value({"web-1"}))});
//   t.erase("Rule", {Condition::eq("rule_id", 7)});
//   t.wait("Host", {Condition::eq("name", "h1")}, {"name"}, WaitUntil::kNotEqual, {}, 0);
//
// Values use the notation of value.hpp (uuid_value, named_uuid_value, set_value,
// map_value). interpret_reply() turns the server's result array into per-operation results
// or an Error naming the operation that failed ("op 1 (insert into Host)") with the
// server's error and details; for a commit-time failure (RFC 7047 4.1.3: one extra
// result element, e.g. a duplicate in a unique index) it names the operation whose row
// the server's details mention, when it can tell.
// Thread-safety: a Transaction is a plain value. Complexity: each builder call O(size of
// its arguments); interpret_reply O(reply size).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/ovsdb/error.hpp"

namespace gl::ovsdb {

// A <condition> of a where clause: [column, function, value].
struct Condition {
  std::string column;
  std::string function;  // "==", "!=", "<", "<=", ">", ">=", "includes", "excludes"
  nlohmann::json value;

  static Condition eq(std::string column, nlohmann::json value);
  static Condition ne(std::string column, nlohmann::json value);
  static Condition lt(std::string column, nlohmann::json value);
  static Condition le(std::string column, nlohmann::json value);
  static Condition gt(std::string column, nlohmann::json value);
  static Condition ge(std::string column, nlohmann::json value);
  static Condition includes(std::string column, nlohmann::json value);
  static Condition excludes(std::string column, nlohmann::json value);
  // ["_uuid", "==", ["uuid", uuid]]
  static Condition uuid_is(std::string_view uuid);

  nlohmann::json to_json() const;
};

using Where = std::vector<Condition>;

// A <mutation>: [column, mutator, value].
struct Mutation {
  std::string column;
  std::string mutator;  // "+=", "-=", "*=", "/=", "%=", "insert", "delete"
  nlohmann::json value;

  static Mutation insert(std::string column, nlohmann::json set_or_map);
  static Mutation erase(std::string column, nlohmann::json set_or_map_or_keys);
  static Mutation add(std::string column, nlohmann::json n);
  static Mutation sub(std::string column, nlohmann::json n);

  nlohmann::json to_json() const;
};

enum class WaitUntil : uint8_t { kEqual, kNotEqual };

// The result of one successful transact: one element per operation, as the server sent
// it ({"uuid": [...]} for insert, {"count": n} for update/mutate/delete, {"rows": [...]}
// for select, {} for wait/comment).
struct TransactResult {
  std::vector<nlohmann::json> results;

  // The UUID of the row inserted by operation `op` (an insert), if any.
  std::optional<std::string> inserted_uuid(size_t op) const;
  // The "count" of operation `op` (update/mutate/delete), if any.
  std::optional<int64_t> count(size_t op) const;
  // The "rows" of operation `op` (a select), if any.
  const nlohmann::json* rows(size_t op) const;
};

class Transaction {
 public:
  // `db` empty: the client's configured database.
  explicit Transaction(std::string db = {}) : db_(std::move(db)) {}

  // Each returns the operation's index in the transaction (and in the results).
  size_t insert(std::string_view table, nlohmann::json row, std::string_view uuid_name = {});
  size_t update(std::string_view table, const Where& where, nlohmann::json row);
  size_t mutate(std::string_view table, const Where& where, const std::vector<Mutation>& mutations);
  size_t erase(std::string_view table, const Where& where);  // the "delete" operation
  size_t select(std::string_view table, const Where& where,
                const std::vector<std::string>& columns = {});
  // Waits (up to timeout_ms; 0 = check once) until the rows matching `where`, projected on
  // `columns`, are (kEqual) or are not (kNotEqual) exactly `rows`.
  size_t wait(std::string_view table, const Where& where, const std::vector<std::string>& columns,
              WaitUntil until, std::vector<nlohmann::json> rows, int64_t timeout_ms);
  size_t comment(std::string_view text);
  size_t abort();  // makes the transaction fail: useful only in tests

  const std::string& db() const { return db_; }
  const std::vector<nlohmann::json>& operations() const { return ops_; }
  size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }

  // The "params" of the transact request: [db, op...].
  nlohmann::json params(std::string_view db) const;
  // "op 2 (update of Workload)" for error messages.
  std::string describe(size_t op) const;

  // Interprets the "result" of this transaction's reply (RFC 7047 4.1.3).
  Result<TransactResult> interpret_reply(const nlohmann::json& result) const;

 private:
  size_t push(nlohmann::json op);

  std::string db_;
  std::vector<nlohmann::json> ops_;
};

}  // namespace gl::ovsdb
