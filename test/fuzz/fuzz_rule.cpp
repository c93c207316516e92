// Fuzz target: glctl's rule grammar and label selectors (control/policy) on hostile text.
// Nothing may crash; a refused rule names at least one problem; and what parses prints
// back (format_rule / format_selector) as text that parses to the same thing again, so
// that dump-rules always shows a rule the user can paste back.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "control/policy/rule_text.hpp"
#include "control/policy/selector.hpp"

using namespace gl::policy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    auto sel = parse_selector(text);
    if (!sel) return 0;
    const std::string once = format_selector(*sel);
    auto again = parse_selector(once);
    if (!again || format_selector(*again) != once) std::abort();
    return 0;
  }
  auto rule = parse_rule(text);
  if (!rule) {
    if (rule.error().problems.empty()) std::abort();
    return 0;
  }
  const std::string once = format_rule(*rule);
  auto again = parse_rule(once);
  if (!again || format_rule(*again) != once) std::abort();
  return 0;
}

std::vector<std::vector<uint8_t>> fuzz_seeds() {
  struct Seed {
    uint8_t selector;
    const char* text;
  };
  const Seed seeds[] = {
      {0, "priority=100,from=group:frontends,to=app=db,tcp,tp_dst=5432,actions=allow,log"},
      {0, "priority=90,from=any,to=app=db,tcp,tp_dst=22,actions=reject"},
      {0, "priority=50,from=10.1.0.0/16,to=app=web&env=prod,tcp,tp_dst=443,actions=allow"},
      {0, "priority=10,from=app=web,to=app=db,udp,tp_dst=53-54,actions=deny"},
      {0, "priority=5,from=any,to=app=db,icmp,actions=allow-encrypted"},
      {1, "app=web&env=prod"},
      {1, "group:frontends"},
      {1, "any"},
  };
  std::vector<std::vector<uint8_t>> s;
  for (const Seed& x : seeds) {
    std::vector<uint8_t> v{x.selector};
    v.insert(v.end(), x.text, x.text + std::string_view(x.text).size());
    s.push_back(v);
  }
  return s;
}
