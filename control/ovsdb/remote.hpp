// remote.hpp — where the client connects ("unix:PATH", "tcp:IP:PORT") and in which order,
// how long it waits between attempts, and which servers of a Raft cluster it trusts.
//
// Purpose: RemoteSet is the one place that decides which server the next connection
// attempt goes to: it cycles through the configured remotes round-robin (each attempt,
// failed, refused by MemberCheck or after a lost session, moves to the next). Backoff is
// the exponential reconnect delay (min doubling to max, reset once a session is
// established). ServerDb is what a server's `_Server` database says about our database
// (one row of its Database table) and MemberCheck applies OVS IDL's rules to it: a
// clustered member that is not connected to the cluster, has not joined it, is not the
// leader (with leader_only) or is behind what the client already saw is left for the next
// remote. See control/DESIGN.md, "OVSDB client", "Raft clusters".
// Thread-safety: plain values, used on the client's executor. Complexity: O(1) per call;
// parse O(length).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/ovsdb/error.hpp"
#include "flowtables/enum_names.hpp"

namespace gl::ovsdb {

struct Remote {
  enum class Kind : uint8_t { kUnix, kTcp };
  Kind kind = Kind::kUnix;
  std::string path;  // kUnix
  std::string host;  // kTcp: an IPv4 or IPv6 address literal (no name resolution)
  uint16_t port = 0;

  // "unix:/run/gl/db.sock", "tcp:127.0.0.1:6641", "tcp:[::1]:6641".
  static Result<Remote> parse(std::string_view s);
  std::string to_string() const;
};

class RemoteSet {
 public:
  // Parses every remote; an error names the first bad one. An empty list is an error.
  static Result<RemoteSet> parse(const std::vector<std::string>& remotes);

  // The remote for the next connection attempt; advances the cursor.
  const Remote& next();
  // The remote of the current (last started) attempt.
  const Remote& current() const { return remotes_[current_]; }
  size_t size() const { return remotes_.size(); }
  const std::vector<Remote>& remotes() const { return remotes_; }

 private:
  std::vector<Remote> remotes_;
  size_t current_ = 0;
  size_t next_ = 0;
};

// One row of a server's `_Server.Database` table: the state of our database on that server
// (ovsdb-server(5), "_Server"). `checked` is false when the server has no `_Server`
// database (OVS before 2.9) or refuses to monitor it; the client then takes the server as
// it is.
struct ServerDb {
  bool checked = false;
  std::string name;
  std::string model;                  // "standalone", "clustered" or "relay"
  bool connected = false;             // clustered: in touch with a leader; relay: with its source
  bool leader = false;                // clustered: this member is the Raft leader
  std::optional<uint64_t> index;      // clustered: Raft index of the last entry applied
  std::string cid;                    // clustered: cluster id ("" if none)
  std::string sid;                    // clustered: this member's server id ("" if none)
  std::optional<std::string> schema;  // the database's schema (JSON text), once known

  // From a row in the replica's canonical form (replica.hpp); columns the server's
  // `_Server` schema lacks keep the defaults above.
  static Result<ServerDb> from_row(const nlohmann::json& row);
  // "clustered leader index 42", "standalone", ...
  std::string to_string() const;
};

// Why a server was left for the next remote.
enum class Skip : uint8_t {
  kNoDatabase,    // its _Server lists no database of our name
  kNotJoined,     // clustered, no schema yet: still joining the cluster
  kDisconnected,  // clustered / relay: connected is false (stale data)
  kNotLeader,     // clustered, leader_only, not the leader
  kStale,         // clustered: its index is below one the client already saw
  kRelay,         // relay with leader_only: a relay is never the leader
  kCount,
};
inline constexpr size_t kSkipCount = static_cast<size_t>(Skip::kCount);
inline constexpr flow::EnumName<Skip> kSkipTable[] = {
    {Skip::kNoDatabase, "no_database"},
    {Skip::kNotJoined, "not_joined"},
    {Skip::kDisconnected, "disconnected"},
    {Skip::kNotLeader, "not_leader"},
    {Skip::kStale, "stale"},
    {Skip::kRelay, "relay"},
};
inline constexpr auto kSkipNames = flow::enum_names(kSkipTable);
static_assert(kSkipNames.size() == kSkipCount);
constexpr std::string_view skip_name(Skip s) {
  const auto i = static_cast<size_t>(s);
  return i < kSkipNames.size() ? kSkipNames[i] : std::string_view{"?"};
}

// OVS IDL's choice of a cluster member (python/ovs/db/idl.py, lib/ovsdb-cs.c): check()
// says whether the client may use a server, given its `_Server` row. It remembers the
// highest Raft index accepted (per cluster id), so that after a failover the client never
// moves back in time to a member that has not caught up.
class MemberCheck {
 public:
  struct Verdict {
    std::optional<Skip> skip;  // nullopt: use this server
    std::string reason;        // "not the leader", ... ("" when accepted)
    bool ok() const { return !skip.has_value(); }
  };

  explicit MemberCheck(bool leader_only) : leader_only_(leader_only) {}
  // Accepting a clustered member raises the index floor to its index.
  Verdict check(const ServerDb& db);
  uint64_t min_index() const { return min_index_; }
  bool leader_only() const { return leader_only_; }

 private:
  bool leader_only_;
  uint64_t min_index_ = 0;
  std::string min_index_cid_;  // the cluster the floor belongs to
};

class Backoff {
 public:
  using Ms = std::chrono::milliseconds;
  Backoff(Ms min, Ms max) : min_(min), max_(max), next_(min) {}

  // The delay before the next attempt; doubles the one after, up to max.
  Ms next_delay() {
    const Ms d = next_;
    next_ = std::min(max_, next_ * 2);
    return d;
  }
  void reset() { next_ = min_; }
  Ms peek() const { return next_; }

 private:
  Ms min_;
  Ms max_;
  Ms next_;
};

}  // namespace gl::ovsdb
