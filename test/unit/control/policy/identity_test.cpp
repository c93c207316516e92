#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "control/policy/identity.hpp"

using namespace gl::policy;

namespace {

using Keys = std::vector<std::string>;

IdentityAllocator must_assign(const IdentityAllocator& a, const Keys& w, const Keys& c = {}) {
  auto r = a.assign(w, c);
  if (!r) FAIL(r.error().text());
  return *r;
}

uint32_t id(const IdentityAllocator& a, const std::string& key,
            IdentityKind kind = IdentityKind::kWorkload) {
  auto v = a.find(kind, key);
  if (!v) FAIL("no identity for " << key);
  return *v;
}

}  // namespace

TEST_CASE("identity allocator: fresh numbers in key order, per range", "[policy][identity]") {
  IdentityAllocator a = must_assign({}, {"b", "a", "c"}, {"10.0.0.0/8", "0.0.0.0/0"});
  CHECK(id(a, "a") == kFirstWorkloadIdentity);
  CHECK(id(a, "b") == kFirstWorkloadIdentity + 1);
  CHECK(id(a, "c") == kFirstWorkloadIdentity + 2);
  CHECK(id(a, "0.0.0.0/0", IdentityKind::kCidr) == kFirstCidrIdentity);
  CHECK(id(a, "10.0.0.0/8", IdentityKind::kCidr) == kFirstCidrIdentity + 1);
  CHECK_FALSE(a.find(IdentityKind::kCidr, "a"));  // kinds are separate
  CHECK(a.live_count() == 5);

  // Deterministic: another fresh allocator, other input order, same numbers.
  IdentityAllocator b = must_assign({}, {"c", "a", "b"}, {"0.0.0.0/0", "10.0.0.0/8"});
  for (const char* k : {"a", "b", "c"}) CHECK(id(a, k) == id(b, k));
}

TEST_CASE("identity allocator: stable across assignments", "[policy][identity]") {
  IdentityAllocator a = must_assign({}, {"m", "n"});
  const uint32_t m = id(a, "m"), n = id(a, "n");

  SECTION("same keys, same numbers") {
    IdentityAllocator b = must_assign(a, {"n", "m"});
    CHECK(id(b, "m") == m);
    CHECK(id(b, "n") == n);
  }
  SECTION("a new key sorting first does not renumber the others") {
    IdentityAllocator b = must_assign(a, {"a", "m", "n"});
    CHECK(id(b, "m") == m);
    CHECK(id(b, "n") == n);
    CHECK(id(b, "a") == n + 1);
  }
  SECTION("removed keys release their number; it is not given to anyone else") {
    IdentityAllocator b = must_assign(a, {"n"});
    CHECK_FALSE(b.find(IdentityKind::kWorkload, "m"));
    CHECK(b.released_count() == 1);
    IdentityAllocator c = must_assign(b, {"n", "x"});
    CHECK(id(c, "x") != m);
    CHECK(id(c, "x") == n + 1);
    SECTION("and a key that comes back gets its number back") {
      IdentityAllocator d = must_assign(c, {"m", "n", "x"});
      CHECK(id(d, "m") == m);
      CHECK(d.released_count() == 0);
    }
  }
  SECTION("assign leaves the original untouched") {
    auto b = a.assign({}, {});
    REQUIRE(b);
    CHECK(b->live_count() == 0);
    CHECK(a.live_count() == 2);
    CHECK(id(a, "m") == m);
  }
}

TEST_CASE("identity allocator: released keys are remembered up to a limit", "[policy][identity]") {
  IdentityAllocator::Limits limits;
  limits.max_released = 2;
  IdentityAllocator a = must_assign(IdentityAllocator(limits), {"a", "b", "c", "d"});
  const uint32_t ida = id(a, "a"), idd = id(a, "d");
  IdentityAllocator b = must_assign(a, {"d"});  // a, b, c released; a is forgotten first
  CHECK(b.released_count() == 2);
  IdentityAllocator c = must_assign(b, {"a", "b", "c", "d"});
  CHECK(id(c, "a") != ida);  // forgotten: a new number
  CHECK(id(c, "a") == idd + 1);
  CHECK(id(c, "b") == ida + 1);  // remembered
  CHECK(id(c, "c") == ida + 2);
}

TEST_CASE("identity allocator: wraps around and reports exhaustion", "[policy][identity]") {
  IdentityAllocator::Limits limits;
  limits.workload_first = 100;
  limits.workload_last = 103;  // four numbers
  limits.max_released = 8;
  IdentityAllocator a = must_assign(IdentityAllocator(limits), {"a", "b", "c", "d"});
  CHECK(id(a, "a") == 100);
  CHECK(id(a, "d") == 103);
  IdentityAllocator b = must_assign(a, {"b", "c", "d"});
  // The range is full of live and released numbers: the oldest released one goes.
  IdentityAllocator c = must_assign(b, {"b", "c", "d", "e"});
  CHECK(id(c, "e") == 100);
  CHECK(id(c, "b") == 101);
  CHECK(c.released_count() == 0);
  auto full = c.assign({"b", "c", "d", "e", "f"}, {});
  REQUIRE_FALSE(full);
  CHECK(full.error().text() ==
        "identities: workload: identity range 100..103 exhausted by live identities");
}

TEST_CASE("workload identity keys carry the reserved name label", "[policy][identity]") {
  CHECK(workload_identity_key("web1", {{"app", "web"}, {"zone", "a"}}) ==
        "app=web,gl:workload=web1,zone=a");
  CHECK(workload_identity_key("bare", {}) == "gl:workload=bare");
  // Two workloads with the same labels have different keys.
  CHECK(workload_identity_key("w1", {{"app", "web"}}) !=
        workload_identity_key("w2", {{"app", "web"}}));
}
