// Fuzz target: what glctld reads from an OVSDB server (control/ovsdb): the JSON-RPC
// stream framer and the monitor updates (update, update2) applied to a replica of the
// Goldilocks schema. Input: first byte, where the stream is cut in two feeds, and
// whether the messages are applied as update2 (bit 0) ; the rest is the stream. Nothing
// may crash (deep nesting is refused before nlohmann's recursive parser sees it), and an
// update that is refused leaves the replica exactly as it was.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "control/ovsdb/framer.hpp"
#include "control/ovsdb/replica.hpp"
#include "control/ovsdb/schema.hpp"

using namespace gl::ovsdb;

namespace {

const Schema& schema() {
  static const Schema s = [] {
    std::ifstream f(GL_OVSDB_SCHEMA);
    std::stringstream ss;
    ss << f.rdbuf();
    auto r = Schema::parse(nlohmann::json::parse(ss.str()));
    if (!r) std::abort();
    return *r;
  }();
  return s;
}

// A replica monitoring every table, empty.
Replica fresh() {
  auto r = Replica::load_update2(schema(), {"Goldilocks", "Host", "Workload", "Group", "Rule"},
                                 nlohmann::json::object());
  if (!r) std::abort();
  return *r;
}

// GL_FUZZ_STATS=1: how many updates applied (the run reaches past the refusals).
uint64_t applied = 0;
struct Report {
  ~Report() {
    if (std::getenv("GL_FUZZ_STATS") != nullptr)
      std::printf("updates applied: %llu\n", static_cast<unsigned long long>(applied));
  }
} report;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t cut = stream.empty() ? 0 : (data[0] >> 1) % (stream.size() + 1);
  JsonFramer framer(1 << 20);
  std::vector<nlohmann::json> msgs;
  if (framer.feed(stream.substr(0, cut), msgs) == JsonFramer::Status::kOk)
    framer.feed(stream.substr(cut), msgs);
  static Replica replica = fresh();
  for (const auto& m : msgs) {
    // A monitor notification's updates, or the message itself taken as updates.
    const nlohmann::json* updates = &m;
    if (m.contains("params") && m["params"].is_array() && m["params"].size() >= 2)
      updates = &m["params"][1];
    const Replica before = replica;
    auto r = (data[0] & 1) ? replica.apply_update2(schema(), *updates)
                           : replica.apply_update(schema(), *updates);
    if (!r && !(replica == before)) std::abort();
    if (r) ++applied;
    if (replica.row_count() > 10000) replica = fresh();  // keep each input cheap
  }
  return 0;
}

std::vector<std::vector<uint8_t>> fuzz_seeds() {
  const char* streams[] = {
      "\x01{\"method\":\"update2\",\"params\":[null,{\"Workload\":{"
      "\"11111111-1111-1111-1111-111111111111\":{\"insert\":{\"name\":\"web1\",\"host\":\"hv1\","
      "\"port\":\"vnet1\",\"mac\":\"02:00:00:00:00:01\",\"ips\":[\"set\",[\"10.0.0.1\"]],"
      "\"labels\":[\"map\",[[\"app\",\"web\"]]]}}}}],\"id\":null}"
      "{\"method\":\"update2\",\"params\":[null,{\"Workload\":{"
      "\"11111111-1111-1111-1111-111111111111\":{\"modify\":{\"labels\":[\"map\",[[\"env\","
      "\"prod\"]]]}}}}],\"id\":null}"
      "{\"method\":\"update2\",\"params\":[null,{\"Workload\":{"
      "\"11111111-1111-1111-1111-111111111111\":{\"delete\":null}}}],\"id\":null}",
      "\x00{\"method\":\"update\",\"params\":[null,{\"Rule\":{"
      "\"22222222-2222-2222-2222-222222222222\":{\"new\":{\"rule_id\":5,\"priority\":100,"
      "\"from\":\"app=web\",\"to\":\"app=db\",\"protocol\":\"tcp\",\"ports\":\"5432\","
      "\"action\":\"allow\",\"log\":true}}}}],\"id\":null}",
      "\x01{\"method\":\"update2\",\"params\":[null,{\"Host\":{"
      "\"33333333-3333-3333-3333-333333333333\":{\"initial\":{\"name\":\"hv2\",\"underlay_ip\":"
      "\"192.0.2.2\",\"pubkey\":\"x\",\"revoked\":false}}}}],\"id\":null}",
  };
  std::vector<std::vector<uint8_t>> s;
  for (const char* t : streams) {
    const std::string str(t + 1);
    std::vector<uint8_t> v{static_cast<uint8_t>(t[0] == '\x01' ? 0x41 : 0x40)};
    v.insert(v.end(), str.begin(), str.end());
    s.push_back(v);
  }
  return s;
}
