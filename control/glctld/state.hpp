// state.hpp — the Goldilocks OVSDB tables as the policy model's desired state, and back.
//
// Purpose: the one place that knows how the schema's columns (control/schema) map onto
// policy::DesiredState: glctld reads its replica with desired_state(), glctl writes rows
// built by workload_row() / group_row() / rule_row(), so the two never disagree.
//   Goldilocks  (at most one row; none = the defaults) default_action (empty = deny),
//               conn_limit
//   Workload    name, host, port, mac, ips, labels
//   Group       name, selector, members
//   Rule        rule_id, priority, from, to, protocol, ports, action, log, description
// The replica's rows are in the client's canonical form (control/ovsdb/replica.hpp). A value
// that does not fit the model (a column missing or of another type, an integer out of the
// model's range) is a problem naming the table, the row — by name ("Workload web1"), rule id
// ("Rule 7"), or UUID when that is unusable ("Workload row 0d6c…") — and the column; every
// such problem is reported. Syntax and consistency (MACs, addresses, selectors, references)
// are policy::validate()'s business, not this file's. Workloads and groups come out sorted by
// name, rules by id, so that the compiler's input and its error messages do not depend on
// UUIDs.
// Thread-safety: pure functions. Complexity: O(rows · log rows).
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/ovsdb/replica.hpp"
#include "control/policy/error.hpp"
#include "control/policy/model.hpp"

namespace gl::glctld {

inline constexpr std::string_view kDatabase = "Goldilocks";
inline constexpr std::string_view kSettingsTable = "Goldilocks";
inline constexpr std::string_view kHostTable = "Host";
inline constexpr std::string_view kWorkloadTable = "Workload";
inline constexpr std::string_view kGroupTable = "Group";
inline constexpr std::string_view kRuleTable = "Rule";
// What glctld monitors.
inline constexpr std::array<std::string_view, 5> kMonitoredTables = {
    kSettingsTable, kHostTable, kWorkloadTable, kGroupTable, kRuleTable};

// Where the firewall's flow records go (the settings row): flow_log, a file for JSON
// lines; ipfix_collector, an IPFIX collector (parse_ipfix_target); options
// ipfix_export_start=true exports start records too. Empty: not configured.
struct ExportSettings {
  std::string flow_log;
  std::string ipfix_collector;
  bool ipfix_export_start = false;
  bool operator==(const ExportSettings&) const = default;
  bool any() const { return !flow_log.empty() || !ipfix_collector.empty(); }
};
ExportSettings export_settings(const ovsdb::Replica& replica);

// The Host table as written (the key manager checks addresses and keys): rows that do not
// fit the schema's shape are left out and reported in `problems`.
struct HostEntry {
  std::string name;
  std::string underlay_ip;
  std::string pubkey;  // base64 X25519 public key
  bool revoked = false;
  bool operator==(const HostEntry&) const = default;
};
struct HostTable {
  std::vector<HostEntry> hosts;  // sorted by name
  std::vector<policy::Problem> problems;
};
HostTable host_table(const ovsdb::Replica& replica);
nlohmann::json host_row(const HostEntry& h);
// The settings row's rekey_seconds (empty or no row: 120) and its options
// rekey_packets and rekey_bytes (0 = only ahead of sequence exhaustion).
struct KeySettings {
  uint32_t rekey_seconds = 120;
  uint64_t rekey_packets = 0;
  uint64_t rekey_bytes = 0;
  bool operator==(const KeySettings&) const = default;
};
KeySettings key_settings(const ovsdb::Replica& replica);

// The desired state in the replica (tables absent from it count as empty).
std::expected<policy::DesiredState, policy::Error> desired_state(const ovsdb::Replica& replica);

// desired_state() kept up to date row by row: on a change, glctld reads the rows an update
// names instead of the whole replica (10k workloads and rules: 20 ms each time, measured
// by gl-bench-policy). state() equals desired_state() of the same replica, its problems
// and order included, as long as every change since the last state() was note()d or
// invalidate() was called (a resync). Not thread-safe. Per state() with changes: the
// changed rows read, a hash of the table's UUIDs (O(rows), no row read), and a sort when a
// row was added, removed or changed its sort key.
class StateCache {
 public:
  // The client's change handler: which rows to read again at the next state().
  void note(const std::vector<ovsdb::RowChange>& changes);
  // Everything is read again at the next state() (the initial load, a resync).
  void invalidate();
  // The desired state of `replica`; valid until the next state().
  std::expected<const policy::DesiredState*, policy::Error> state(const ovsdb::Replica& replica);

 private:
  template <typename T>
  using Reader = T (*)(const ovsdb::Row&, std::string_view, std::vector<policy::Problem>&);
  template <typename T>
  struct Rows {
    bool full = true;
    std::set<std::string> dirty;
    std::vector<std::string> uuids;  // of the state's items, position by position
    std::map<std::string, std::vector<policy::Problem>> problems;  // rows that do not fit
    void apply(const ovsdb::Table* table, std::vector<T>& items, const Reader<T>& read);
  };
  policy::DesiredState state_;
  Rows<policy::Workload> workloads_;
  Rows<policy::Group> groups_;
  Rows<policy::Rule> rules_;
};

// Rows for transact (RFC 7047 wire notation), every column of the model given.
nlohmann::json workload_row(const policy::Workload& w);
nlohmann::json group_row(const policy::Group& g);
nlohmann::json rule_row(const policy::Rule& r);
// The settings row's default_action value: "deny" or "allow" (the schema allows no other).
nlohmann::json default_action_value(policy::Action a);

}  // namespace gl::glctld
