// state_test.cpp — the Goldilocks tables as the desired state (control/glctld/state.hpp):
// replicas built by hand from the real schema, every column, defaults, order, the builders'
// round trip, and problems that name the table, the row and the column.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "control/glctld/state.hpp"
#include "control/ovsdb/schema.hpp"

using namespace gl;
using Json = nlohmann::json;

namespace {

Json schema_json() {
  std::ifstream f(GL_OVSDB_SCHEMA);
  REQUIRE(f.good());
  return Json::parse(f);
}

ovsdb::Schema parse_schema(const Json& j) {
  auto s = ovsdb::Schema::parse(j);
  INFO((s ? "" : s.error().message));
  REQUIRE(s);
  return *s;
}

std::string uuid_n(int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-0000-0000-%012d", n);
  return buf;
}

// A replica holding `rows` ({"Table": [row, ...]}), in wire notation as a client would
// insert them. Rows get UUIDs in descending order of their position, so that UUID order is
// the reverse of the order given (the conversion must not depend on it).
ovsdb::Replica replica_of(const ovsdb::Schema& schema, const Json& rows) {
  Json updates = Json::object();
  int n = 1000;
  for (const auto& [table, list] : rows.items())
    for (const Json& row : list) updates[table][uuid_n(n--)] = Json{{"initial", row}};
  std::vector<std::string> tables;
  for (std::string_view t : glctld::kMonitoredTables) tables.emplace_back(t);
  auto r = ovsdb::Replica::load_update2(schema, tables, updates);
  INFO((r ? "" : r.error().message));
  REQUIRE(r);
  return *r;
}

std::vector<std::string> problem_texts(const policy::Error& e) {
  std::vector<std::string> out;
  for (const policy::Problem& p : e.problems) out.push_back(p.text());
  return out;
}

}  // namespace

TEST_CASE("state: every column of every table becomes the desired state", "[glctld][state]") {
  const ovsdb::Schema schema = parse_schema(schema_json());
  const Json rows = Json::parse(R"({
    "Goldilocks": [{"default_action": "allow", "conn_limit": 100}],
    "Host": [{"name": "hv1", "underlay_ip": "192.0.2.1", "pubkey": "AAAA"}],
    "Workload": [
      {"name": "web1", "host": "hv1", "port": "vnet1", "mac": "02:00:00:00:00:01",
       "ips": ["set", ["10.0.0.1", "fd00::1"]], "labels": ["map", [["app", "web"], ["env", "prod"]]]},
      {"name": "db1", "host": "hv2", "port": "vnet2", "mac": "02:00:00:00:00:02",
       "ips": "10.0.0.2", "labels": ["map", [["app", "db"]]]},
      {"name": "bare", "host": "hv1", "port": "vnet3", "mac": "02:00:00:00:00:03"}],
    "Group": [
      {"name": "web", "selector": "app=web", "members": ["set", ["db1", "bare"]]},
      {"name": "all", "selector": ""}],
    "Rule": [
      {"rule_id": 7, "priority": 10, "from": "any", "to": "group:web", "protocol": "ip",
       "ports": "", "action": "deny", "log": false, "description": "db, locked down"},
      {"rule_id": 2, "priority": 100, "from": "app=web", "to": "app=db", "protocol": "tcp",
       "ports": "5432,8000-8080", "action": "allow-encrypted", "log": true, "description": ""}]
  })");
  auto state = glctld::desired_state(replica_of(schema, rows));
  INFO((state ? "" : state.error().text()));
  REQUIRE(state);

  CHECK(state->settings == policy::Settings{policy::Action::kAllow, 100});
  REQUIRE(state->workloads.size() == 3);  // sorted by name
  CHECK(state->workloads[0] ==
        policy::Workload{"bare", "hv1", "vnet3", "02:00:00:00:00:03", {}, {}});
  CHECK(
      state->workloads[1] ==
      policy::Workload{"db1", "hv2", "vnet2", "02:00:00:00:00:02", {"10.0.0.2"}, {{"app", "db"}}});
  CHECK(state->workloads[2] == policy::Workload{"web1",
                                                "hv1",
                                                "vnet1",
                                                "02:00:00:00:00:01",
                                                {"10.0.0.1", "fd00::1"},
                                                {{"app", "web"}, {"env", "prod"}}});
  REQUIRE(state->groups.size() == 2);
  CHECK(state->groups[0] == policy::Group{"all", "", {}});
  CHECK(state->groups[1] == policy::Group{"web", "app=web", {"bare", "db1"}});
  REQUIRE(state->rules.size() == 2);  // sorted by id
  policy::Rule r2;
  r2.rule_id = 2;
  r2.priority = 100;
  r2.from = "app=web";
  r2.to = "app=db";
  r2.protocol = "tcp";
  r2.ports = "5432,8000-8080";
  r2.action = policy::Action::kAllowEncrypted;
  r2.log = true;
  CHECK(state->rules[0] == r2);
  policy::Rule r7;
  r7.rule_id = 7;
  r7.priority = 10;
  r7.from = "any";
  r7.to = "group:web";
  r7.protocol = "ip";
  r7.action = policy::Action::kDeny;
  r7.description = "db, locked down";
  CHECK(state->rules[1] == r7);
  // The result is a valid desired state (the policy library agrees with the conversion).
  CHECK(policy::validate(*state));
}

TEST_CASE("state: no settings row gives the defaults, an empty default_action is deny",
          "[glctld][state]") {
  const ovsdb::Schema schema = parse_schema(schema_json());
  struct Case {
    const char* description;
    Json rows;
    policy::Settings expect;
  } cases[] = {
      {"empty database", Json::object(), {policy::Action::kDeny, 0}},
      {"settings row without default_action",
       Json::parse(R"({"Goldilocks": [{"conn_limit": 5}]})"),
       {policy::Action::kDeny, 5}},
      {"explicit deny",
       Json::parse(R"({"Goldilocks": [{"default_action": "deny"}]})"),
       {policy::Action::kDeny, 0}},
      {"allow",
       Json::parse(R"({"Goldilocks": [{"default_action": ["set", ["allow"]]}]})"),
       {policy::Action::kAllow, 0}},
  };
  for (const Case& c : cases) {
    INFO(c.description);
    auto state = glctld::desired_state(replica_of(schema, c.rows));
    REQUIRE(state);
    CHECK(state->settings == c.expect);
    CHECK(state->workloads.empty());
    CHECK(state->rules.empty());
  }
  // A replica that lacks the tables altogether (nothing monitored yet) is empty too.
  auto empty = glctld::desired_state(ovsdb::Replica{});
  REQUIRE(empty);
  CHECK(empty->settings == policy::Settings{});
}

TEST_CASE("state: rows written by glctl's builders read back as the same objects",
          "[glctld][state]") {
  const ovsdb::Schema schema = parse_schema(schema_json());
  policy::Workload w{"web-1",
                     "hv1",
                     "vhu-1",
                     "02:00:00:00:00:0a",
                     {"fd00::5", "10.1.2.3"},
                     {{"app", "web"}, {"tier", "front"}}};
  policy::Workload none{"lonely", "hv2", "p", "02:00:00:00:00:0b", {}, {}};
  policy::Group g{"g1", "app=web&tier", {"web-1", "lonely"}};
  policy::Rule r;
  r.rule_id = 2147483647;
  r.priority = 0;
  r.from = "10.0.0.0/8|192.168.0.0/16";
  r.to = "workload:web-1";
  r.protocol = "udp";
  r.ports = "53";
  r.action = policy::Action::kReject;
  r.log = true;
  r.description = "quotes \" and, commas";
  const Json rows{{"Workload", {glctld::workload_row(w), glctld::workload_row(none)}},
                  {"Group", {glctld::group_row(g)}},
                  {"Rule", {glctld::rule_row(r)}},
                  {"Goldilocks",
                   {Json{{"default_action", glctld::default_action_value(policy::Action::kAllow)},
                         {"conn_limit", 4294967295u}}}}};
  auto state = glctld::desired_state(replica_of(schema, rows));
  INFO((state ? "" : state.error().text()));
  REQUIRE(state);
  CHECK(state->settings == policy::Settings{policy::Action::kAllow, 4294967295u});
  REQUIRE(state->workloads.size() == 2);
  // Sets come back sorted (OVSDB sets are unordered); everything else as written.
  policy::Workload w_sorted = w;
  w_sorted.ips = {"10.1.2.3", "fd00::5"};
  CHECK(state->workloads[0] == none);
  CHECK(state->workloads[1] == w_sorted);
  policy::Group g_sorted = g;
  g_sorted.members = {"lonely", "web-1"};
  REQUIRE(state->groups.size() == 1);
  CHECK(state->groups[0] == g_sorted);
  REQUIRE(state->rules.size() == 1);
  CHECK(state->rules[0] == r);
}

TEST_CASE("state: values that do not fit name the table, the row and the column",
          "[glctld][state]") {
  // A schema that drifted from glctld's: Workload.mac an integer, Group.name an integer,
  // Workload.labels gone; and values the real schema allows but the model cannot hold.
  Json sj = schema_json();
  sj["tables"]["Workload"]["columns"]["mac"] = Json{{"type", "integer"}};
  sj["tables"]["Workload"]["columns"].erase("labels");
  sj["tables"]["Group"]["columns"]["name"] = Json{{"type", "integer"}};
  const ovsdb::Schema schema = parse_schema(sj);
  const Json rows = Json::parse(R"({
    "Goldilocks": [{"conn_limit": 5000000000, "default_action": "deny"}],
    "Workload": [{"name": "web1", "host": "hv1", "port": "p1", "mac": 12}],
    "Group": [{"name": 5, "selector": "app=web"}],
    "Rule": [{"rule_id": 3, "priority": 1, "from": "any", "to": "any", "protocol": "ip",
              "ports": "", "action": "bogus", "log": false, "description": ""}]
  })");
  auto state = glctld::desired_state(replica_of(schema, rows));
  REQUIRE_FALSE(state);
  const std::vector<std::string> got = problem_texts(state.error());
  const std::string group_uuid = uuid_n(999);  // tables in name order: Goldilocks, Group, ...
  const std::vector<std::string> expect = {
      "Goldilocks settings: conn_limit: 5000000000: out of range 0..4294967295",
      "Workload web1: mac: not a string: 12",
      "Workload web1: labels: column missing (is the database's schema older than glctld's?)",
      "Group row " + group_uuid + ": name: not a string: 5",
      "Rule 3: action: \"bogus\": not an action",
  };
  CHECK(got == expect);
}

TEST_CASE("state: more than one settings row is refused", "[glctld][state]") {
  Json sj = schema_json();
  sj["tables"]["Goldilocks"].erase("maxRows");
  const ovsdb::Schema schema = parse_schema(sj);
  auto state = glctld::desired_state(
      replica_of(schema, Json::parse(R"({"Goldilocks": [{"conn_limit": 1}, {"conn_limit": 2}]})")));
  REQUIRE_FALSE(state);
  CHECK(problem_texts(state.error()) ==
        std::vector<std::string>{"Goldilocks: 2 settings rows (at most one)"});
}

TEST_CASE("state: the cache follows inserts, modifies, renames, deletes and bad rows",
          "[glctld][state]") {
  // glctld's StateCache reads only the rows an update names; after every update it must
  // say exactly what desired_state() of the whole replica says (objects, order, problems).
  // The schema is loosened so that updates can also make rows that do not fit (a rule's
  // action outside the model) and mend them again.
  Json sj = schema_json();
  sj["tables"]["Rule"]["columns"]["action"] = Json{{"type", "string"}};
  const ovsdb::Schema schema = parse_schema(sj);
  std::vector<std::string> tables;
  for (std::string_view t : glctld::kMonitoredTables) tables.emplace_back(t);
  auto loaded = ovsdb::Replica::load_update2(schema, tables, Json::object());
  REQUIRE(loaded);
  ovsdb::Replica replica = std::move(*loaded);
  glctld::StateCache cache;

  uint32_t seed = 12345;
  auto rnd = [&](uint32_t n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
  };
  // Names from small pools, so that renames collide and reorder.
  auto name = [&] { return "w" + std::to_string(rnd(12)); };
  // Now and then a value that does not fit (deletes and later modifies mend them).
  auto action = [&]() -> const char* {
    const char* actions[] = {"allow", "deny", "reject", "allow-encrypted"};
    return rnd(25) == 0 ? "bogus" : actions[rnd(4)];
  };
  auto new_row = [&](const std::string& table) -> Json {
    if (table == "Workload")
      return Json{{"name", name()},
                  {"host", "hv" + std::to_string(rnd(3))},
                  {"port", "p" + std::to_string(rnd(50))},
                  {"mac", "02:00:00:00:00:01"},
                  {"ips", Json::array({"set", Json::array({"10.0.0." + std::to_string(rnd(9))})})},
                  {"labels", Json::array({"map", Json::array({Json::array({"app", "web"})})})}};
    if (table == "Group")
      return Json{{"name", "g" + std::to_string(rnd(8))}, {"selector", "app=web"}};
    return Json{
        {"rule_id", 1 + rnd(10)}, {"priority", rnd(3)}, {"from", "any"},      {"to", "any"},
        {"protocol", "tcp"},      {"ports", ""},        {"action", action()}, {"log", false},
        {"description", ""}};
  };
  auto modify = [&](const std::string& table) -> Json {
    if (table == "Workload") {
      switch (rnd(3)) {
        case 0:
          return Json{{"name", name()}};
        case 1:
          return Json{{"port", "p" + std::to_string(rnd(50))}};
        default:
          return Json{{"host", "hv" + std::to_string(rnd(3))}};
      }
    }
    if (table == "Group") return Json{{"name", "g" + std::to_string(rnd(8))}};
    if (rnd(2) == 0) return Json{{"rule_id", 1 + rnd(10)}};
    return Json{{"action", action()}};
  };
  int next_uuid = 1;
  int compared = 0, refused = 0;
  const char* row_tables[] = {"Workload", "Group", "Rule"};
  for (int step = 0; step < 400; ++step) {
    Json updates = Json::object();
    for (uint32_t k = 1 + rnd(4); k > 0; --k) {
      const std::string table = row_tables[rnd(3)];
      const ovsdb::Table* t = replica.table(table);
      const bool have = t != nullptr && !t->empty();
      const uint32_t op = have ? rnd(3) : 0;
      if (op == 0) {
        updates[table][uuid_n(next_uuid++)] = Json{{"insert", new_row(table)}};
        continue;
      }
      auto it = t->begin();
      std::advance(it, rnd(static_cast<uint32_t>(t->size())));
      if (updates.contains(table) && updates[table].contains(it->first)) continue;
      updates[table][it->first] =
          op == 1 ? Json{{"modify", modify(table)}} : Json{{"delete", nullptr}};
    }
    auto changes = replica.apply_update2(schema, updates);
    INFO("step " << step << ": " << updates.dump());
    REQUIRE(changes);
    cache.note(*changes);
    if (rnd(50) == 0) cache.invalidate();  // a resync now and then
    auto want = glctld::desired_state(replica);
    auto got = cache.state(replica);
    REQUIRE(want.has_value() == got.has_value());
    if (want) {
      CHECK(**got == *want);
      ++compared;
    } else {
      CHECK(problem_texts(got.error()) == problem_texts(want.error()));
      ++refused;
    }
  }
  // Both outcomes were exercised many times.
  CHECK(compared > 50);
  CHECK(refused > 50);
}
