// replica.cpp — see replica.hpp.
#include "control/ovsdb/replica.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "control/ovsdb/value.hpp"

namespace gl::ovsdb {

namespace {

Result<Json> canonical_atom(AtomicType t, const Json& v) {
  switch (t) {
    case AtomicType::kInteger:
      if (v.is_number_integer() && !v.is_number_unsigned()) return Json(v.get<int64_t>());
      if (v.is_number_unsigned() &&
          v.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max())) {
        return Json(static_cast<int64_t>(v.get<uint64_t>()));
      }
      break;
    case AtomicType::kReal:
      if (v.is_number()) return Json(v.get<double>());
      break;
    case AtomicType::kBoolean:
      if (v.is_boolean()) return v;
      break;
    case AtomicType::kString:
      if (v.is_string()) return v;
      break;
    case AtomicType::kUuid:
      if (auto u = uuid_of(v)) return uuid_value(*u);
      break;
  }
  return make_error(Errc::kBadReply, std::string("not a valid ") +
                                         std::string(atomic_type_name(t)) + ": " + v.dump());
}

// Sorted, duplicate-free atoms of a set in wire form.
Result<std::vector<Json>> canonical_atoms(AtomicType t, const Json& wire) {
  auto atoms = set_atoms(wire);
  if (!atoms) return std::unexpected(atoms.error());
  std::vector<Json> out;
  out.reserve(atoms->size());
  for (const Json& a : *atoms) {
    auto c = canonical_atom(t, a);
    if (!c) return std::unexpected(c.error());
    out.push_back(std::move(*c));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

using Pairs = std::vector<std::pair<Json, Json>>;

Result<Pairs> canonical_pairs(const ColumnType& type, const Json& wire) {
  auto pairs = map_pairs(wire);
  if (!pairs) return std::unexpected(pairs.error());
  Pairs out;
  out.reserve(pairs->size());
  for (const auto& [k, v] : *pairs) {
    auto ck = canonical_atom(type.key, k);
    if (!ck) return std::unexpected(ck.error());
    auto cv = canonical_atom(*type.value, v);
    if (!cv) return std::unexpected(cv.error());
    out.emplace_back(std::move(*ck), std::move(*cv));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

Json pairs_to_map(Pairs pairs) {
  Json arr = Json::array();
  for (auto& [k, v] : pairs) arr.push_back(Json::array({std::move(k), std::move(v)}));
  return Json::array({"map", std::move(arr)});
}

// Applies an update2 "modify" diff of one column to its canonical old value.
// Only columns that can hold more than one element travel as differences; for the others
// (scalars, optional values, max-1 maps) the "diff" is the new value (ovsdb-server 7,
// 4.1.14, as ovsdb-server implements it).
Result<Json> apply_diff(const ColumnType& type, const Json& old_value, const Json& diff) {
  if (type.max <= 1) return canonical_datum(type, diff);
  if (type.is_map()) {
    auto old_pairs = canonical_pairs(type, old_value);
    if (!old_pairs) return std::unexpected(old_pairs.error());
    auto d = canonical_pairs(type, diff);
    if (!d) return std::unexpected(d.error());
    // Key in both with the same value: removed; with another value: replaced; only in the
    // diff: added.
    std::map<Json, Json> m;
    for (auto& [k, v] : *old_pairs) m.emplace(std::move(k), std::move(v));
    for (auto& [k, v] : *d) {
      auto it = m.find(k);
      if (it == m.end()) {
        m.emplace(std::move(k), std::move(v));
      } else if (it->second == v) {
        m.erase(it);
      } else {
        it->second = std::move(v);
      }
    }
    Pairs out;
    out.reserve(m.size());
    for (auto& [k, v] : m) out.emplace_back(k, std::move(v));
    return pairs_to_map(std::move(out));
  }
  // Set: symmetric difference.
  auto a = canonical_atoms(type.key, old_value);
  if (!a) return std::unexpected(a.error());
  auto b = canonical_atoms(type.key, diff);
  if (!b) return std::unexpected(b.error());
  std::vector<Json> out;
  std::set_symmetric_difference(a->begin(), a->end(), b->begin(), b->end(),
                                std::back_inserter(out));
  return Json::array({"set", Json(std::move(out))});
}

const Json* member(const Json& obj, std::string_view key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

}  // namespace

std::string_view change_kind_name(RowChange::Kind k) {
  switch (k) {
    case RowChange::Kind::kInsert:
      return "insert";
    case RowChange::Kind::kModify:
      return "modify";
    case RowChange::Kind::kDelete:
      return "delete";
  }
  return "?";
}

Result<Json> canonical_datum(const ColumnType& type, const Json& wire) {
  if (type.is_scalar()) {
    // Scalars travel as the bare atom; accept a set of exactly one too.
    if (wire.is_array() && wire.size() == 2 && wire[0] == "set") {
      auto atoms = set_atoms(wire);
      if (!atoms || atoms->size() != 1) {
        return make_error(Errc::kBadReply, "scalar column given " + wire.dump());
      }
      return canonical_atom(type.key, (*atoms)[0]);
    }
    return canonical_atom(type.key, wire);
  }
  if (type.is_map()) {
    auto pairs = canonical_pairs(type, wire);
    if (!pairs) return std::unexpected(pairs.error());
    for (size_t i = 1; i < pairs->size(); ++i) {
      if ((*pairs)[i].first == (*pairs)[i - 1].first) {
        return make_error(Errc::kBadReply, "map with a duplicate key: " + wire.dump());
      }
    }
    return pairs_to_map(std::move(*pairs));
  }
  auto atoms = canonical_atoms(type.key, wire);
  if (!atoms) return std::unexpected(atoms.error());
  return Json::array({"set", Json(std::move(*atoms))});
}

Result<Row> canonical_row(const TableSchema& table, const Json& wire) {
  if (!wire.is_object()) return make_error(Errc::kBadReply, "row is not an object: " + wire.dump());
  Row row = Json::object();
  for (const auto& [name, type] : table.columns) {
    const Json* v = member(wire, name);
    if (!v) {
      row[name] = Schema::default_value(type);
      continue;
    }
    auto c = canonical_datum(type, *v);
    if (!c) {
      auto e = c.error();
      e.message = "column " + name + ": " + e.message;
      return std::unexpected(std::move(e));
    }
    row[name] = std::move(*c);
  }
  // Columns the schema does not know (none when the schema is the server's) are kept.
  for (const auto& [name, v] : wire.items()) {
    if (!row.contains(name)) row[name] = v;
  }
  return row;
}

const Table* Replica::table(std::string_view name) const {
  auto it = tables_.find(name);
  return it == tables_.end() ? nullptr : &it->second;
}

const Row* Replica::row(std::string_view table_name, std::string_view uuid) const {
  const Table* t = table(table_name);
  if (!t) return nullptr;
  auto it = t->find(uuid);
  return it == t->end() ? nullptr : &it->second;
}

size_t Replica::row_count() const {
  size_t n = 0;
  for (const auto& [name, t] : tables_) n += t.size();
  return n;
}

Json Replica::to_json() const {
  Json j = Json::object();
  for (const auto& [name, t] : tables_) {
    Json rows = Json::object();
    for (const auto& [uuid, r] : t) rows[uuid] = r;
    j[name] = std::move(rows);
  }
  return j;
}

Result<Replica> Replica::load_update2(const Schema& schema, const std::vector<std::string>& tables,
                                      const Json& updates) {
  return load(schema, tables, updates, /*v2=*/true);
}

Result<Replica> Replica::load_update(const Schema& schema, const std::vector<std::string>& tables,
                                     const Json& updates) {
  return load(schema, tables, updates, /*v2=*/false);
}

Result<Replica> Replica::load(const Schema& schema, const std::vector<std::string>& tables,
                              const Json& updates, bool v2) {
  Replica r;
  for (const std::string& t : tables) {
    if (!schema.table(t)) return make_error(Errc::kInvalidArgument, "no table " + t + " in schema");
    r.tables_.emplace(t, Table{});
  }
  auto changes = r.apply(schema, updates, v2, /*full=*/true);
  if (!changes) return std::unexpected(changes.error());
  r.commit(*changes);
  return r;
}

Result<std::vector<RowChange>> Replica::apply_update2(const Schema& schema, const Json& updates) {
  auto changes = apply(schema, updates, /*v2=*/true, /*full=*/false);
  if (changes) commit(*changes);
  return changes;
}

Result<std::vector<RowChange>> Replica::apply_update(const Schema& schema, const Json& updates) {
  auto changes = apply(schema, updates, /*v2=*/false, /*full=*/false);
  if (changes) commit(*changes);
  return changes;
}

Result<std::vector<RowChange>> Replica::apply(const Schema& schema, const Json& updates, bool v2,
                                              bool full) const {
  std::vector<RowChange> changes;
  if (updates.is_null()) return changes;
  if (!updates.is_object()) return make_error(Errc::kBadReply, "table updates are not an object");
  for (const auto& [tname, rows] : updates.items()) {
    auto tit = tables_.find(tname);
    const TableSchema* ts = schema.table(tname);
    if (tit == tables_.end() || !ts) {
      return make_error(Errc::kBadReply, "update for a table not monitored: " + tname);
    }
    if (!rows.is_object())
      return make_error(Errc::kBadReply, "rows of " + tname + " not an object");
    for (const auto& [uuid, ru] : rows.items()) {
      const std::string where = tname + " row " + uuid;
      if (!is_uuid_string(uuid) || !ru.is_object()) {
        return make_error(Errc::kBadReply, "malformed row update for " + where);
      }
      auto rit = tit->second.find(uuid);
      const Row* old = rit == tit->second.end() ? nullptr : &rit->second;
      RowChange ch;
      ch.table = tname;
      ch.uuid = uuid;
      if (old) ch.old_row = *old;

      // What the server says happened, in either notation.
      const Json* whole = nullptr;  // a complete row (initial/insert, or v1 "new")
      const Json* diff = nullptr;   // v2 "modify"
      bool is_delete = false;
      if (v2) {
        if (ru.size() != 1) return make_error(Errc::kBadReply, "row update2 for " + where);
        const auto first = ru.begin();
        const std::string& kind = first.key();
        const Json& val = first.value();
        if (kind == "initial" || kind == "insert") {
          whole = &val;
        } else if (kind == "modify") {
          diff = &val;
        } else if (kind == "delete") {
          is_delete = true;
        } else {
          return make_error(Errc::kBadReply, "unknown row update2 \"" + kind + "\" for " + where);
        }
      } else {
        const Json* nw = member(ru, "new");
        const Json* od = member(ru, "old");
        if (nw && !od) {
          whole = nw;
        } else if (nw && od) {
          diff = nw;  // v1 modify: "new" holds (at least) the changed columns, new values
        } else if (od) {
          is_delete = true;
        } else {
          return make_error(Errc::kBadReply,
                            "row update for " + where + " has neither old nor new");
        }
      }
      if (full && !whole) {
        return make_error(Errc::kBadReply, "a full load holds a change, not a row: " + where);
      }

      if (is_delete) {
        if (!old) continue;  // nothing to delete: already consistent
        ch.kind = RowChange::Kind::kDelete;
        changes.push_back(std::move(ch));
        continue;
      }
      if (whole) {
        auto row = canonical_row(*ts, *whole);
        if (!row) return std::unexpected(row.error());
        ch.kind = old ? RowChange::Kind::kModify : RowChange::Kind::kInsert;
        ch.new_row = std::move(*row);
      } else {
        if (!old) return make_error(Errc::kBadReply, "modify of an unknown row: " + where);
        if (!diff->is_object()) return make_error(Errc::kBadReply, "modify of " + where);
        Row row = *old;
        for (const auto& [col, val] : diff->items()) {
          const ColumnType* ct = ts->column(col);
          if (!ct) {
            row[col] = val;
            continue;
          }
          auto nv = v2 ? apply_diff(*ct, row[col], val) : canonical_datum(*ct, val);
          if (!nv) {
            auto e = nv.error();
            e.message = where + " column " + col + ": " + e.message;
            return std::unexpected(std::move(e));
          }
          row[col] = std::move(*nv);
        }
        ch.kind = RowChange::Kind::kModify;
        ch.new_row = std::move(row);
      }
      if (ch.kind == RowChange::Kind::kModify && ch.new_row == ch.old_row) continue;
      changes.push_back(std::move(ch));
    }
  }
  return changes;
}

void Replica::commit(const std::vector<RowChange>& changes) {
  for (const RowChange& c : changes) {
    Table& t = tables_[c.table];
    if (c.kind == RowChange::Kind::kDelete) {
      t.erase(c.uuid);
    } else {
      t.insert_or_assign(c.uuid, c.new_row);
    }
  }
}

std::vector<RowChange> Replica::diff(const Replica& from, const Replica& to) {
  std::vector<RowChange> out;
  static const Table kEmpty;
  auto emit = [&](const std::string& tname, const Table& a, const Table& b) {
    auto ia = a.begin();
    auto ib = b.begin();
    while (ia != a.end() || ib != b.end()) {
      if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
        out.push_back({RowChange::Kind::kDelete, tname, ia->first, ia->second, nullptr});
        ++ia;
      } else if (ia == a.end() || ib->first < ia->first) {
        out.push_back({RowChange::Kind::kInsert, tname, ib->first, nullptr, ib->second});
        ++ib;
      } else {
        if (ia->second != ib->second) {
          out.push_back({RowChange::Kind::kModify, tname, ia->first, ia->second, ib->second});
        }
        ++ia;
        ++ib;
      }
    }
  };
  for (const auto& [tname, a] : from.tables_) {
    const Table* b = to.table(tname);
    emit(tname, a, b ? *b : kEmpty);
  }
  for (const auto& [tname, b] : to.tables_) {
    if (!from.table(tname)) emit(tname, kEmpty, b);
  }
  return out;
}

}  // namespace gl::ovsdb
