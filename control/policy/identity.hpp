// identity.hpp — numeric security identities and their allocator.
//
// Purpose: the dataplane never sees labels; it sees a 32-bit identity per remote address
// (the ipcache) and per-port tables keyed by identity. Numbers:
//   0                    kAnyIdentity: a wildcard in compiled entries, never a real one
//   1                    kWorldIdentity: an address that is neither a workload's nor in
//                        a rule's CIDR
//   256 .. 2^24-1        workload identities, one per workload: the key is the workload's
//                        label set plus the reserved label gl:workload=NAME (user label
//                        keys cannot contain ':'), so workload:NAME selectors can tell
//                        workloads apart and a label change gives a new identity
//   2^24 .. 2^25-1       CIDR identities, one per distinct prefix used by the rules
// The allocator keeps numbers stable: assign() given the live keys of a new compilation
// keeps the number of every key it knew, revives the number of a key released recently
// (a workload deleted and re-added keeps its identity), and gives new keys the next
// numbers of their range in sorted key order. Numbers are not reused until the range
// wraps, so a number seen in a log or a connection entry keeps its meaning. Two fresh
// allocators given the same keys produce the same numbers. Identities are local to one
// host's glctld (not shared through the cluster database) and are not persisted.
//
// Thread-safety: a value type; assign() is const and returns a new allocator, so a
// rejected compilation leaves the caller's allocator untouched.
// Complexity: assign() O(live · log live + released) expected, plus, only once a range wrapped, a
// scan for free numbers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "control/policy/error.hpp"

namespace gl::policy {

inline constexpr uint32_t kAnyIdentity = 0;
inline constexpr uint32_t kWorldIdentity = 1;
inline constexpr uint32_t kFirstWorkloadIdentity = 256;
inline constexpr uint32_t kLastWorkloadIdentity = (1u << 24) - 1;
inline constexpr uint32_t kFirstCidrIdentity = 1u << 24;
inline constexpr uint32_t kLastCidrIdentity = (1u << 25) - 1;

enum class IdentityKind : uint8_t { kWorld, kWorkload, kCidr };

class IdentityAllocator {
 public:
  struct Limits {
    uint32_t workload_first = kFirstWorkloadIdentity;
    uint32_t workload_last = kLastWorkloadIdentity;
    uint32_t cidr_first = kFirstCidrIdentity;
    uint32_t cidr_last = kLastCidrIdentity;
    size_t max_released = 65536;  // released keys remembered for revival
  };

  IdentityAllocator() : IdentityAllocator(Limits{}) {}
  explicit IdentityAllocator(const Limits& limits);

  // The allocator of a compilation whose live identities are exactly these keys (each
  // list without duplicates, any order). Fails only when a range is full of live keys.
  std::expected<IdentityAllocator, Error> assign(const std::vector<std::string>& workload_keys,
                                                 const std::vector<std::string>& cidr_keys) const;

  // The live number of a key, if any.
  std::optional<uint32_t> find(IdentityKind kind, std::string_view key) const;
  size_t live_count() const { return live_.size(); }
  size_t released_count() const { return released_.size(); }

 private:
  struct Range {
    uint32_t first = 0;
    uint32_t last = 0;
    uint32_t next = 0;  // where the search for a new number starts
  };
  static std::string map_key(IdentityKind kind, std::string_view key);

  Limits limits_;
  Range workload_;
  Range cidr_;
  std::unordered_map<std::string, uint32_t> live_;      // kind-tagged key -> number
  std::unordered_map<std::string, uint32_t> released_;  // recently released
  std::deque<std::string> released_order_;              // oldest first (may be stale)
};

// The identity key of a workload: its labels and gl:workload=NAME, sorted by key,
// "k=v" joined by ','. E.g. "app=web,env=prod,gl:workload=web1".
std::string workload_identity_key(std::string_view name,
                                  const std::map<std::string, std::string>& labels);

}  // namespace gl::policy
