// error.hpp — the error type of the policy library: every problem names its object and field.
//
// Purpose: validation, selector and rule-text parsing and compilation report problems as
// Problem{object, field, message}, e.g. {"rule 7", "ports", "\"80-70\": range reversed"},
// printed "rule 7: ports: \"80-70\": range reversed". An Error carries every problem found
// in one pass (not only the first), in a deterministic order, so that a rejected change set
// is reported completely and the caller keeps its running policy.
//
// Thread-safety: plain values. Complexity: trivial.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace gl::policy {

struct Problem {
  std::string object;   // "rule 7", "workload web1", "group db", "settings"; "" for rule text
  std::string field;    // "ports", "mac", ...; "" when the problem is the object itself
  std::string message;  // what is wrong, quoting the offending text

  // "object: field: message", leaving out the empty parts.
  std::string text() const {
    std::string out;
    for (const std::string* part : {&object, &field, &message}) {
      if (part->empty()) continue;
      if (!out.empty()) out += ": ";
      out += *part;
    }
    return out;
  }
  bool operator==(const Problem&) const = default;
};

struct Error {
  std::vector<Problem> problems;  // never empty in a returned error

  Error() = default;
  explicit Error(std::vector<Problem> p) : problems(std::move(p)) {}
  Error(std::string object, std::string field, std::string message)
      : problems{{std::move(object), std::move(field), std::move(message)}} {}

  // One problem per line.
  std::string text() const {
    std::string out;
    for (const Problem& p : problems) {
      if (!out.empty()) out += '\n';
      out += p.text();
    }
    return out;
  }
};

}  // namespace gl::policy
