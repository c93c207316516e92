// policy_builder.hpp — a fluent builder of desired states for the policy tests.
//
// Purpose: tests read as tables of {description, desired state, expected}; the builder
// fills in the boring fields (ports "vnic-NAME", a unique MAC per workload), takes rules
// as rule text (rule_text.hpp) and fails the test on any invalid input.
// Thread-safety: none needed (test-only). Complexity: trivial.
#pragma once

#include <catch2/catch.hpp>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "control/policy/compiler.hpp"
#include "control/policy/model.hpp"
#include "control/policy/rule_text.hpp"

namespace gl::policy::testing {

using Labels = std::map<std::string, std::string>;

class StateBuilder {
 public:
  StateBuilder& default_action(Action a) {
    state_.settings.default_action = a;
    return *this;
  }
  StateBuilder& conn_limit(uint32_t n) {
    state_.settings.conn_limit = n;
    return *this;
  }
  StateBuilder& workload(const std::string& name, const std::string& host,
                         std::vector<std::string> ips, Labels labels = {}) {
    Workload w;
    w.name = name;
    w.host = host;
    w.port = "vnic-" + name;
    char mac[18];
    ++macs_;
    std::snprintf(mac, sizeof mac, "02:00:00:00:%02x:%02x", (macs_ >> 8) & 0xff, macs_ & 0xff);
    w.mac = mac;
    w.ips = std::move(ips);
    w.labels = std::move(labels);
    state_.workloads.push_back(std::move(w));
    return *this;
  }
  StateBuilder& group(const std::string& name, const std::string& selector,
                      std::vector<std::string> members = {}) {
    state_.groups.push_back(Group{name, selector, std::move(members)});
    return *this;
  }
  // Rule text; the rule must parse (references are checked by validate/compile).
  StateBuilder& rule(const std::string& text) {
    auto r = parse_rule(text);
    INFO(text);
    if (!r) FAIL(r.error().text());
    state_.rules.push_back(*r);
    return *this;
  }
  const DesiredState& state() const { return state_; }
  DesiredState& mutable_state() { return state_; }

 private:
  DesiredState state_;
  unsigned macs_ = 0;
};

inline CompiledPolicy must_compile(const DesiredState& state, const std::string& host,
                                   const IdentityAllocator& previous = {}, uint64_t gen = 1) {
  auto c = compile(state, host, gen, previous);
  if (!c) FAIL(c.error().text());
  return *c;
}

inline const LocalWorkload& local(const CompiledPolicy& c, const std::string& name) {
  for (const LocalWorkload& w : c.workloads)
    if (w.name == name) return w;
  FAIL("no local workload " << name);
  return c.workloads.front();
}

inline IpAddress ip(const std::string& text) {
  auto a = IpAddress::parse(text);
  if (!a) FAIL(a.error());
  return *a;
}

enum class Dir { kEgress, kIngress };

// The verdict for a packet of workload `name` (local on c's host) with the remote at
// address `remote`: egress = the VM sends to remote:dport, ingress = remote sends to the
// VM's dport. Checks that the indexed and the linear evaluators agree.
inline Verdict verdict(const CompiledPolicy& c, const std::string& name, Dir dir,
                       const std::string& remote, uint8_t proto, uint16_t dport) {
  const LocalWorkload& w = local(c, name);
  const PortPolicy& p = dir == Dir::kEgress ? w.egress_from_vm : w.ingress_to_vm;
  uint32_t id = lookup_identity(c, ip(remote));
  Verdict v = evaluate(p, id, proto, dport);
  CHECK(v == evaluate_linear(p, id, proto, dport));
  return v;
}

inline std::string describe(const Verdict& v) {
  return std::string(action_name(v.action)) + "/" + std::to_string(v.rule_id) +
         (v.log ? "/log" : "");
}

}  // namespace gl::policy::testing
