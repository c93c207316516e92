// text.hpp — small text helpers shared by the policy parsers (selectors, rule text,
// addresses, the model's field checks).
// Thread-safety: pure functions. Complexity: linear in the text.
#pragma once

#include <string>
#include <string_view>

namespace gl::policy::text {

inline bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Without leading and trailing white space (space, tab, CR, LF).
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// The text in double quotes, for error messages.
inline std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

}  // namespace gl::policy::text
