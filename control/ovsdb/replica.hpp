// replica.hpp — an in-memory copy of monitored OVSDB tables, kept current by monitor
// updates.
//
// Purpose: table -> row UUID -> row, each row a JSON object of column -> datum in a
// canonical form: every column of the schema present (defaults filled in), a scalar
// column as its bare atom, any other set column as ["set",[atoms sorted, unique]], a map
// as ["map",[[k,v]...] sorted by key], a uuid atom as ["uuid","..."], integers as int64,
// reals as double. Two replicas of the same data therefore compare equal however they
// were built (a full load, or a load followed by any sequence of diffs).
//
// Updates are applied all-or-nothing: apply_update2()/apply_update() validate and compute
// every row of an update message first, then commit; on error the replica is untouched
// (the client then reloads everything). A full (re)load builds a new Replica that the
// client swaps in with one move, so readers never see a half-loaded state.
//
// Thread-safety: none; the client owns its replica and mutates it on its executor; read
// it there (in the change/resync/state callbacks or in handlers posted to the same
// executor). Complexity: lookups O(log n); an update O(k log n + size of the rows it
// touches) for k rows; diff() O(n) over both replicas.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/ovsdb/error.hpp"
#include "control/ovsdb/schema.hpp"

namespace gl::ovsdb {

using Row = nlohmann::json;                                // column -> canonical datum
using Table = std::map<std::string, Row, std::less<>>;     // row uuid -> row
using Tables = std::map<std::string, Table, std::less<>>;  // table name -> rows

struct RowChange {
  enum class Kind : uint8_t { kInsert, kModify, kDelete };
  Kind kind = Kind::kInsert;
  std::string table;
  std::string uuid;
  Row old_row;  // null for kInsert
  Row new_row;  // null for kDelete
};

std::string_view change_kind_name(RowChange::Kind k);

class Replica {
 public:
  const Tables& tables() const { return tables_; }
  const Table* table(std::string_view name) const;
  const Row* row(std::string_view table, std::string_view uuid) const;
  size_t row_count() const;
  // The id of the last transaction reflected (monitor_cond_since / update3), "" if unknown.
  const std::string& last_txn_id() const { return last_txn_id_; }
  void set_last_txn_id(std::string id) { last_txn_id_ = std::move(id); }

  // Same rows (the transaction id is not compared).
  bool operator==(const Replica& o) const { return tables_ == o.tables_; }
  // {"Table": {"uuid": row...}...}
  nlohmann::json to_json() const;

  // A replica of `tables` (each present, possibly empty) from a <table-updates2> holding
  // only "initial"/"insert" rows: the reply to monitor_cond / a monitor_cond_since that
  // did not find the transaction id.
  static Result<Replica> load_update2(const Schema& schema, const std::vector<std::string>& tables,
                                      const nlohmann::json& updates);
  // The same from an RFC 7047 <table-updates> (the reply to "monitor").
  static Result<Replica> load_update(const Schema& schema, const std::vector<std::string>& tables,
                                     const nlohmann::json& updates);

  // Applies a <table-updates2> ("update2"/"update3" notifications, the reply to a
  // monitor_cond_since that found the transaction id). All or nothing. Returns the rows
  // that changed (a modify that changes nothing is not reported).
  Result<std::vector<RowChange>> apply_update2(const Schema& schema, const nlohmann::json& updates);
  // Applies an RFC 7047 <table-updates> ("update" notifications). All or nothing.
  Result<std::vector<RowChange>> apply_update(const Schema& schema, const nlohmann::json& updates);

  // The changes that turn `from` into `to` (what a full resync changed).
  static std::vector<RowChange> diff(const Replica& from, const Replica& to);

 private:
  static Result<Replica> load(const Schema& schema, const std::vector<std::string>& tables,
                              const nlohmann::json& updates, bool v2);
  // Computes the changes an update makes without making them (full: a load, rows only).
  Result<std::vector<RowChange>> apply(const Schema& schema, const nlohmann::json& updates, bool v2,
                                       bool full) const;
  void commit(const std::vector<RowChange>& changes);

  Tables tables_;
  std::string last_txn_id_;
};

// Canonical form of one column value (see above) from its wire form; exposed for tests and
// for callers comparing values they wrote with what the replica holds.
Result<nlohmann::json> canonical_datum(const ColumnType& type, const nlohmann::json& wire);
// A full canonical row: the columns present in `wire` converted, the others defaulted.
Result<Row> canonical_row(const TableSchema& table, const nlohmann::json& wire);

}  // namespace gl::ovsdb
