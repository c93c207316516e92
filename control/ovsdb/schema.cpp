// schema.cpp — see schema.hpp.
#include "control/ovsdb/schema.hpp"

#include "control/ovsdb/value.hpp"

namespace gl::ovsdb {

namespace {

std::optional<AtomicType> parse_atomic(std::string_view s) {
  if (s == "integer") return AtomicType::kInteger;
  if (s == "real") return AtomicType::kReal;
  if (s == "boolean") return AtomicType::kBoolean;
  if (s == "string") return AtomicType::kString;
  if (s == "uuid") return AtomicType::kUuid;
  return std::nullopt;
}

// <base-type>: an <atomic-type> string or {"type": <atomic-type>, constraints...}.
Result<AtomicType> parse_base(const Json& j, const std::string& where) {
  const Json* t = &j;
  if (j.is_object()) {
    auto it = j.find("type");
    if (it == j.end())
      return make_error(Errc::kInvalidArgument, where + ": base type lacks \"type\"");
    t = &*it;
  }
  if (!t->is_string())
    return make_error(Errc::kInvalidArgument, where + ": bad base type " + j.dump());
  auto a = parse_atomic(t->get_ref<const std::string&>());
  if (!a) return make_error(Errc::kInvalidArgument, where + ": unknown atomic type " + t->dump());
  return *a;
}

Result<ColumnType> parse_type(const Json& j, const std::string& where) {
  ColumnType ct;
  if (j.is_string()) {
    auto k = parse_base(j, where);
    if (!k) return std::unexpected(k.error());
    ct.key = *k;
    return ct;
  }
  if (!j.is_object()) return make_error(Errc::kInvalidArgument, where + ": bad type " + j.dump());
  auto key = j.find("key");
  if (key == j.end()) return make_error(Errc::kInvalidArgument, where + ": type lacks \"key\"");
  auto k = parse_base(*key, where);
  if (!k) return std::unexpected(k.error());
  ct.key = *k;
  if (auto v = j.find("value"); v != j.end()) {
    auto vt = parse_base(*v, where);
    if (!vt) return std::unexpected(vt.error());
    ct.value = *vt;
  }
  if (auto mn = j.find("min"); mn != j.end()) {
    if (!mn->is_number_unsigned() || mn->get<uint64_t>() > 1) {
      return make_error(Errc::kInvalidArgument, where + ": \"min\" must be 0 or 1");
    }
    ct.min = mn->get<uint64_t>();
  }
  if (auto mx = j.find("max"); mx != j.end()) {
    if (mx->is_string() && mx->get_ref<const std::string&>() == "unlimited") {
      ct.max = kUnlimited;
    } else if (mx->is_number_unsigned() && mx->get<uint64_t>() >= 1) {
      ct.max = mx->get<uint64_t>();
    } else {
      return make_error(Errc::kInvalidArgument, where + ": bad \"max\" " + mx->dump());
    }
  }
  if (ct.max < ct.min) return make_error(Errc::kInvalidArgument, where + ": max < min");
  return ct;
}

}  // namespace

std::string_view atomic_type_name(AtomicType t) {
  switch (t) {
    case AtomicType::kInteger:
      return "integer";
    case AtomicType::kReal:
      return "real";
    case AtomicType::kBoolean:
      return "boolean";
    case AtomicType::kString:
      return "string";
    case AtomicType::kUuid:
      return "uuid";
  }
  return "?";
}

const ColumnType* TableSchema::column(std::string_view name) const {
  auto it = columns.find(name);
  return it == columns.end() ? nullptr : &it->second;
}

const TableSchema* Schema::table(std::string_view name) const {
  auto it = tables_.find(name);
  return it == tables_.end() ? nullptr : &it->second;
}

Result<Schema> Schema::parse(const Json& j) {
  if (!j.is_object()) return make_error(Errc::kInvalidArgument, "schema is not a JSON object");
  Schema s;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string()) {
    return make_error(Errc::kInvalidArgument, "schema lacks a string \"name\"");
  }
  s.name_ = name->get<std::string>();
  if (auto v = j.find("version"); v != j.end() && v->is_string())
    s.version_ = v->get<std::string>();
  auto tables = j.find("tables");
  if (tables == j.end() || !tables->is_object()) {
    return make_error(Errc::kInvalidArgument, "schema lacks a \"tables\" object");
  }
  for (const auto& [tname, tj] : tables->items()) {
    if (!tj.is_object())
      return make_error(Errc::kInvalidArgument, "table " + tname + " is not an object");
    TableSchema ts;
    if (auto r = tj.find("isRoot"); r != tj.end() && r->is_boolean()) ts.is_root = r->get<bool>();
    auto cols = tj.find("columns");
    if (cols == tj.end() || !cols->is_object()) {
      return make_error(Errc::kInvalidArgument, "table " + tname + " lacks \"columns\"");
    }
    for (const auto& [cname, cj] : cols->items()) {
      const std::string where = "column " + tname + "." + cname;
      if (!cj.is_object() || !cj.contains("type")) {
        return make_error(Errc::kInvalidArgument, where + " lacks \"type\"");
      }
      auto ct = parse_type(cj["type"], where);
      if (!ct) return std::unexpected(ct.error());
      ts.columns.emplace(cname, *ct);
    }
    s.tables_.emplace(tname, std::move(ts));
  }
  s.json_ = j;
  return s;
}

namespace {

Json default_atom(AtomicType t) {
  switch (t) {
    case AtomicType::kInteger:
      return 0;
    case AtomicType::kReal:
      return 0.0;
    case AtomicType::kBoolean:
      return false;
    case AtomicType::kString:
      return "";
    case AtomicType::kUuid:
      return uuid_value(kZeroUuid);
  }
  return nullptr;
}

}  // namespace

Json Schema::default_value(const ColumnType& t) {
  // A datum holds `min` default atoms (ovsdb-server's ovsdb_datum_init_default).
  if (t.is_scalar()) return default_atom(t.key);
  Json elems = Json::array();
  if (t.min == 1) {
    if (t.is_map()) {
      elems.push_back(Json::array({default_atom(t.key), default_atom(*t.value)}));
    } else {
      elems.push_back(default_atom(t.key));
    }
  }
  return Json::array({t.is_map() ? "map" : "set", std::move(elems)});
}

}  // namespace gl::ovsdb
