#include <catch2/catch.hpp>

#include <random>
#include <unordered_map>

#include "dataplane/ufid_map.hpp"

using gl::api::Ufid;
using gl::dp::UfidMap;

namespace {

struct UfidHash {
  size_t operator()(const Ufid& u) const { return u.lo ^ (u.hi * 31); }
};

}  // namespace

TEST_CASE("UfidMap agrees with std::unordered_map under random insert/erase", "[ufid_map]") {
  std::mt19937_64 rng(7);
  UfidMap<int> m;
  std::unordered_map<Ufid, int, UfidHash> ref;
  std::vector<Ufid> keys;
  for (int i = 0; i < 3000; ++i) keys.push_back(Ufid{rng(), rng()});
  // Keys that collide on the low word exercise probing past occupied and dead slots.
  for (int i = 0; i < 200; ++i) keys.push_back(Ufid{keys[i].lo, rng()});
  for (int step = 0; step < 200000; ++step) {
    const Ufid& k = keys[rng() % keys.size()];
    switch (rng() % 3) {
      case 0: {
        int v = static_cast<int>(rng() % 1000);
        bool fresh = ref.emplace(k, v).second;
        CHECK(m.insert(k, v) == fresh);
        break;
      }
      case 1:
        CHECK(m.erase(k) == (ref.erase(k) == 1));
        break;
      default: {
        auto it = ref.find(k);
        const int* got = m.find(k);
        REQUIRE((got != nullptr) == (it != ref.end()));
        if (got) CHECK(*got == it->second);
      }
    }
    if (step % 50000 == 0) CHECK(m.size() == ref.size());
  }
  CHECK(m.size() == ref.size());
  size_t seen = 0;
  m.for_each([&](const Ufid& u, int v) {
    ++seen;
    CHECK(ref.at(u) == v);
  });
  CHECK(seen == ref.size());
  m.clear();
  CHECK(m.empty());
  CHECK(m.find(keys[0]) == nullptr);
}
