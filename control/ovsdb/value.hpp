// value.hpp — RFC 7047 5.1 value notation: building and reading OVSDB data in JSON.
//
// Purpose: OVSDB encodes a uuid as ["uuid","<36 chars>"], a reference to a row inserted
// in the same transaction as ["named-uuid","<id>"], a set as ["set",[atom...]] (a set of
// exactly one atom may also be sent as the bare atom) and a map as ["map",[[k,v]...]].
// These helpers build such values so that callers never handcraft the arrays, and read
// them back tolerantly (bare atom or ["set",...]). Rows in the client's replica are kept
// in a canonical form (see replica.hpp) that the readers accept directly.
// Thread-safety: pure functions. Complexity: O(size of the value) (set_value/map_value
// sort: O(n log n)).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/ovsdb/error.hpp"

namespace gl::ovsdb {

using Json = nlohmann::json;

inline constexpr std::string_view kZeroUuid = "00000000-0000-0000-0000-000000000000";

// ---- building ----------------------------------------------------------------------------
// ["uuid", s]; s must be a UUID in 8-4-4-4-12 hex form (checked by is_uuid_string()).
Json uuid_value(std::string_view uuid);
// ["named-uuid", name]: the row inserted by this transaction's insert op with "uuid-name".
Json named_uuid_value(std::string_view name);
// ["set", [atoms]]; atoms sorted and deduplicated (the order ovsdb-server uses).
Json set_value(std::vector<Json> atoms);
Json string_set_value(const std::vector<std::string>& atoms);
// ["map", [[k, v]...]], sorted by key; a later duplicate key replaces an earlier one.
Json map_value(std::vector<std::pair<Json, Json>> pairs);
Json string_map_value(const std::map<std::string, std::string>& pairs);
// An optional (min 0, max 1) column: ["set", []] when empty, else ["set", [atom]].
Json optional_value(const std::optional<Json>& atom);

// ---- reading -----------------------------------------------------------------------------
// True for "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex digits, either case).
bool is_uuid_string(std::string_view s);
// The UUID string of ["uuid", s]; an error for anything else.
Result<std::string> uuid_of(const Json& v);
// The atoms of a set: ["set",[...]] or a bare atom (a set of one).
Result<std::vector<Json>> set_atoms(const Json& v);
// The pairs of ["map",[[k,v]...]].
Result<std::vector<std::pair<Json, Json>>> map_pairs(const Json& v);
// Strings of a set of strings (bare string accepted), or an error naming the bad element.
Result<std::vector<std::string>> string_set(const Json& v);
// A map of string to string.
Result<std::map<std::string, std::string>> string_map(const Json& v);
// An optional column: nullopt for an empty set, the atom for a set of one or a bare atom.
Result<std::optional<Json>> optional_atom(const Json& v);

}  // namespace gl::ovsdb
