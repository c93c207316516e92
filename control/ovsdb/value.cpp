// value.cpp — see value.hpp.
#include "control/ovsdb/value.hpp"

#include <algorithm>

namespace gl::ovsdb {

namespace {

bool is_tagged(const Json& v, std::string_view tag) {
  return v.is_array() && v.size() == 2 && v[0].is_string() &&
         v[0].get_ref<const std::string&>() == tag;
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

Json uuid_value(std::string_view uuid) {
  return Json::array({"uuid", std::string(uuid)});
}

Json named_uuid_value(std::string_view name) {
  return Json::array({"named-uuid", std::string(name)});
}

Json set_value(std::vector<Json> atoms) {
  std::sort(atoms.begin(), atoms.end());
  atoms.erase(std::unique(atoms.begin(), atoms.end()), atoms.end());
  return Json::array({"set", Json(std::move(atoms))});
}

Json string_set_value(const std::vector<std::string>& atoms) {
  std::vector<Json> v(atoms.begin(), atoms.end());
  return set_value(std::move(v));
}

Json map_value(std::vector<std::pair<Json, Json>> pairs) {
  // Stable so that, among equal keys, the last given stays last; then keep the last one.
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  Json arr = Json::array();
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i + 1 < pairs.size() && pairs[i + 1].first == pairs[i].first) continue;
    arr.push_back(Json::array({std::move(pairs[i].first), std::move(pairs[i].second)}));
  }
  return Json::array({"map", std::move(arr)});
}

Json string_map_value(const std::map<std::string, std::string>& pairs) {
  Json arr = Json::array();
  for (const auto& [k, v] : pairs) arr.push_back(Json::array({k, v}));
  return Json::array({"map", std::move(arr)});
}

Json optional_value(const std::optional<Json>& atom) {
  Json arr = Json::array();
  if (atom) arr.push_back(*atom);
  return Json::array({"set", std::move(arr)});
}

bool is_uuid_string(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!is_hex(s[i])) {
      return false;
    }
  }
  return true;
}

Result<std::string> uuid_of(const Json& v) {
  if (is_tagged(v, "uuid") && v[1].is_string() &&
      is_uuid_string(v[1].get_ref<const std::string&>())) {
    return v[1].get<std::string>();
  }
  return make_error(Errc::kInvalidArgument, "not a uuid value: " + v.dump());
}

Result<std::vector<Json>> set_atoms(const Json& v) {
  if (is_tagged(v, "set")) {
    if (!v[1].is_array()) return make_error(Errc::kInvalidArgument, "malformed set: " + v.dump());
    return v[1].get<std::vector<Json>>();
  }
  if (v.is_array() && !is_tagged(v, "uuid") && !is_tagged(v, "named-uuid")) {
    return make_error(Errc::kInvalidArgument, "not a set: " + v.dump());
  }
  if (v.is_object() || v.is_null()) {
    return make_error(Errc::kInvalidArgument, "not a set: " + v.dump());
  }
  return std::vector<Json>{v};
}

Result<std::vector<std::pair<Json, Json>>> map_pairs(const Json& v) {
  if (!is_tagged(v, "map") || !v[1].is_array()) {
    return make_error(Errc::kInvalidArgument, "not a map: " + v.dump());
  }
  std::vector<std::pair<Json, Json>> out;
  out.reserve(v[1].size());
  for (const Json& p : v[1]) {
    if (!p.is_array() || p.size() != 2) {
      return make_error(Errc::kInvalidArgument, "malformed map pair: " + p.dump());
    }
    out.emplace_back(p[0], p[1]);
  }
  return out;
}

Result<std::vector<std::string>> string_set(const Json& v) {
  auto atoms = set_atoms(v);
  if (!atoms) return std::unexpected(atoms.error());
  std::vector<std::string> out;
  out.reserve(atoms->size());
  for (const Json& a : *atoms) {
    if (!a.is_string()) {
      return make_error(Errc::kInvalidArgument, "set element is not a string: " + a.dump());
    }
    out.push_back(a.get<std::string>());
  }
  return out;
}

Result<std::map<std::string, std::string>> string_map(const Json& v) {
  auto pairs = map_pairs(v);
  if (!pairs) return std::unexpected(pairs.error());
  std::map<std::string, std::string> out;
  for (const auto& [k, val] : *pairs) {
    if (!k.is_string() || !val.is_string()) {
      return make_error(Errc::kInvalidArgument,
                        "map pair is not string->string: [" + k.dump() + "," + val.dump() + "]");
    }
    out[k.get<std::string>()] = val.get<std::string>();
  }
  return out;
}

Result<std::optional<Json>> optional_atom(const Json& v) {
  auto atoms = set_atoms(v);
  if (!atoms) return std::unexpected(atoms.error());
  if (atoms->empty()) return std::optional<Json>{};
  if (atoms->size() > 1) {
    return make_error(Errc::kInvalidArgument, "optional value has several elements: " + v.dump());
  }
  return std::optional<Json>{(*atoms)[0]};
}

}  // namespace gl::ovsdb
