// schema.hpp — the parts of an RFC 7047 database schema (3.2) the client needs.
//
// Purpose: the replica must know each column's type to apply "update2" diffs (for a column
// that may hold several elements, a set's diff is a symmetric difference and a map's a
// key-wise add/replace/remove; any other column's "diff" is its new value; ovsdb-server 7,
// 4.1.14) and to fill in the default values that
// "initial"/"insert" rows omit. Schema parses get_schema's reply (or an .ovsschema file)
// into table -> column -> ColumnType and keeps the original JSON. Constraints (enum,
// ranges, refTable) are the server's business and are not modelled.
// Thread-safety: immutable after parse(); share freely. Complexity: parse O(schema size);
// lookups O(log tables + log columns).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "control/ovsdb/error.hpp"

namespace gl::ovsdb {

enum class AtomicType : uint8_t { kInteger, kReal, kBoolean, kString, kUuid };

std::string_view atomic_type_name(AtomicType t);

inline constexpr uint64_t kUnlimited = UINT64_MAX;

struct ColumnType {
  AtomicType key = AtomicType::kString;
  std::optional<AtomicType> value;  // set for a map column
  uint64_t min = 1;                 // 0 or 1
  uint64_t max = 1;                 // >= 1, kUnlimited for "unlimited"

  bool is_map() const { return value.has_value(); }
  // One atom, always present: sent and stored as the bare atom.
  bool is_scalar() const { return !value && min == 1 && max == 1; }
  bool is_set() const { return !value && !is_scalar(); }
};

struct TableSchema {
  std::map<std::string, ColumnType, std::less<>> columns;
  bool is_root = false;
  const ColumnType* column(std::string_view name) const;
};

class Schema {
 public:
  // Parses a schema object ({"name":..., "version":..., "tables":{...}}).
  static Result<Schema> parse(const nlohmann::json& j);

  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  const std::map<std::string, TableSchema, std::less<>>& tables() const { return tables_; }
  const TableSchema* table(std::string_view name) const;
  const nlohmann::json& json() const { return json_; }

  // The default datum of a column type: 0, 0.0, false, "", the zero uuid for a scalar;
  // ["set",[]] / ["map",[]] otherwise (RFC 7047 and ovsdb-server's defaults).
  static nlohmann::json default_value(const ColumnType& t);

 private:
  std::string name_;
  std::string version_;
  std::map<std::string, TableSchema, std::less<>> tables_;
  nlohmann::json json_;
};

}  // namespace gl::ovsdb
