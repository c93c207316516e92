// enum_names.hpp — name tables of enums that a reorder cannot silently mislabel.
//
// Purpose: counters are shown by name (drop reasons, parse results, ESP results). A table
// written as a list of names in enum order breaks silently when a value is inserted or
// moved; here each name is written beside its value and the table is checked at compile
// time: enum_names() refuses (does not compile) a table whose entry i is not value i,
// and a table shorter than the enum is caught by the caller's size check.
// Thread-safety: compile-time only. Complexity: O(N) at compile time.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>
#include <utility>

namespace gl::flow {

template <class E>
using EnumName = std::pair<E, std::string_view>;

// The names of values 0..N-1 of E, from (value, name) pairs listed in value order.
template <class E, size_t N>
consteval std::array<std::string_view, N> enum_names(const EnumName<E> (&table)[N]) {
  std::array<std::string_view, N> out{};
  for (size_t i = 0; i < N; ++i) {
    if (static_cast<size_t>(table[i].first) != i) throw "enum name table out of value order";
    if (table[i].second.empty()) throw "enum name table: empty name";
    out[i] = table[i].second;
  }
  return out;
}

// A map from the values 0..N-1 of E to values of T, from (value, target) pairs listed in
// value order (e.g. a crypto result to the datapath's drop reason).
template <class E, class T, size_t N>
consteval std::array<T, N> enum_map(const std::pair<E, T> (&table)[N]) {
  std::array<T, N> out{};
  for (size_t i = 0; i < N; ++i) {
    if (static_cast<size_t>(table[i].first) != i) throw "enum map out of value order";
    out[i] = table[i].second;
  }
  return out;
}

}  // namespace gl::flow
