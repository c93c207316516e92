// model_test.cpp — the parts of gl_ovsdb that need no server: value notation, schema
// parsing, the transaction builder and reply interpretation, the replica's canonical form
// and update application, remotes and back-off.
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "control/ovsdb/remote.hpp"
#include "control/ovsdb/replica.hpp"
#include "control/ovsdb/schema.hpp"
#include "control/ovsdb/transaction.hpp"
#include "control/ovsdb/value.hpp"
#include "ovsdb_harness.hpp"

using namespace gl::ovsdb;

namespace {

const char* kU1 = "11111111-2222-3333-4444-555555555555";
const char* kU2 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

Schema goldilocks_schema() {
  std::ifstream in(test::schema_path());
  auto s = Schema::parse(Json::parse(in));
  REQUIRE(s);
  return *s;
}

}  // namespace

TEST_CASE("value: building uuid and named-uuid and set and map values", "[ovsdb][value]") {
  CHECK(uuid_value(kU1) == Json::array({"uuid", kU1}));
  CHECK(named_uuid_value("row1") == Json::array({"named-uuid", "row1"}));
  CHECK(string_set_value({"b", "a", "b"}) == Json::parse(R"(["set",["a","b"]])"));
  CHECK(set_value(std::vector<Json>{3, 1, 2}) == Json::parse(R"(["set",[1,2,3]])"));
  CHECK(string_set_value({}) == Json::parse(R"(["set",[]])"));
  CHECK(string_map_value({{"b", "2"}, {"a", "1"}}) ==
        Json::parse(R"(["map",[["a","1"],["b","2"]]])"));
  CHECK(map_value({{Json("k"), Json(1)}, {Json("k"), Json(2)}}) ==
        Json::parse(R"(["map",[["k",2]]])"));
  CHECK(optional_value(std::nullopt) == Json::parse(R"(["set",[]])"));
  CHECK(optional_value(Json("x")) == Json::parse(R"(["set",["x"]])"));
}

TEST_CASE("value: reading sets and maps and uuids tolerantly", "[ovsdb][value]") {
  CHECK(is_uuid_string(kU1));
  CHECK(is_uuid_string("AAAAAAAA-bbbb-cccc-dddd-eeeeeeeeeeee"));
  CHECK_FALSE(is_uuid_string("11111111-2222-3333-4444-55555555555"));
  CHECK_FALSE(is_uuid_string("11111111x2222-3333-4444-555555555555"));
  CHECK(uuid_of(uuid_value(kU2)).value() == kU2);
  CHECK_FALSE(uuid_of(Json("x")).has_value());
  CHECK_FALSE(uuid_of(Json::array({"uuid", "nope"})).has_value());

  CHECK(string_set(Json("a")).value() == std::vector<std::string>{"a"});  // a set of one
  CHECK(string_set(Json::parse(R"(["set",["a","b"]])")).value() ==
        std::vector<std::string>{"a", "b"});
  CHECK_FALSE(string_set(Json::parse(R"(["set",["a",1]])")).has_value());
  CHECK_FALSE(string_set(Json::parse(R"(["map",[]])")).has_value());
  CHECK(set_atoms(uuid_value(kU1)).value() == std::vector<Json>{uuid_value(kU1)});

  auto m = string_map(Json::parse(R"(["map",[["app","web"],["tier","1"]]])"));
  REQUIRE(m);
  CHECK(m->at("app") == "web");
  CHECK(m->size() == 2);
  CHECK_FALSE(string_map(Json::parse(R"(["map",[["a"]]])")).has_value());
  CHECK_FALSE(string_map(Json("x")).has_value());

  CHECK(optional_atom(Json::parse(R"(["set",[]])")).value() == std::nullopt);
  CHECK(optional_atom(Json("deny")).value() == Json("deny"));
  CHECK(optional_atom(Json::parse(R"(["set",[5]])")).value() == Json(5));
  CHECK_FALSE(optional_atom(Json::parse(R"(["set",[1,2]])")).has_value());
}

TEST_CASE("schema: the Goldilocks schema parses with the intended column types",
          "[ovsdb][schema]") {
  const Schema s = goldilocks_schema();
  CHECK(s.name() == "Goldilocks");
  CHECK(s.version() == "1.0.0");
  CHECK(s.tables().size() == 5);
  for (const char* t : {"Goldilocks", "Host", "Workload", "Group", "Rule"}) {
    INFO(t);
    REQUIRE(s.table(t));
    CHECK(s.table(t)->is_root);
  }
  const TableSchema& w = *s.table("Workload");
  CHECK(w.column("name")->is_scalar());
  CHECK(w.column("ips")->is_set());
  CHECK(w.column("ips")->min == 0);
  CHECK(w.column("ips")->max == kUnlimited);
  CHECK(w.column("labels")->is_map());
  CHECK(s.table("Rule")->column("rule_id")->key == AtomicType::kInteger);
  CHECK(s.table("Rule")->column("log")->key == AtomicType::kBoolean);
  const TableSchema& g = *s.table("Goldilocks");
  CHECK(g.column("default_action")->is_set());  // optional: empty = deny
  CHECK(g.column("default_action")->max == 1);
  CHECK(g.column("conn_limit")->is_scalar());
  CHECK(g.column("options")->is_map());
  CHECK(Schema::default_value(*g.column("conn_limit")) == Json(0));
  CHECK(Schema::default_value(*g.column("flow_log")) == Json::parse(R"(["set",[]])"));
  CHECK(Schema::default_value(*g.column("options")) == Json::parse(R"(["map",[]])"));
  CHECK(Schema::default_value(ColumnType{AtomicType::kUuid, std::nullopt, 1, 1}) ==
        uuid_value(kZeroUuid));
}

TEST_CASE("schema: bad schemas are rejected with the place named", "[ovsdb][schema]") {
  CHECK_FALSE(Schema::parse(Json::array()).has_value());
  CHECK_FALSE(Schema::parse(Json{{"tables", Json::object()}}).has_value());
  auto bad_type = Schema::parse(
      Json::parse(R"({"name":"x","tables":{"T":{"columns":{"c":{"type":"float"}}}}})"));
  REQUIRE_FALSE(bad_type.has_value());
  CHECK_THAT(bad_type.error().message, Catch::Contains("T.c"));
  auto bad_max = Schema::parse(Json::parse(
      R"({"name":"x","tables":{"T":{"columns":{"c":{"type":{"key":"string","max":0}}}}}})"));
  REQUIRE_FALSE(bad_max.has_value());
  CHECK_THAT(bad_max.error().message, Catch::Contains("max"));
}

TEST_CASE("transaction: the builder writes RFC 7047 operations", "[ovsdb][txn]") {
  Transaction t;
  CHECK(t.insert("Host", {{"name", "h1"}}, "h") == 0);
  CHECK(t.update("Workload", {Condition::eq("name", "w1")}, {{"port", "vhu1"}}) == 1);
  CHECK(t.mutate("Group", {Condition::eq("name", "g")},
                 {Mutation::insert("members", set_value({"w1"})),
                  Mutation::erase("members", set_value({"w0"}))}) == 2);
  CHECK(t.erase("Rule", {Condition::uuid_is(kU1)}) == 3);
  CHECK(t.select("Host", {}, {"name"}) == 4);
  CHECK(t.wait("Host", {Condition::eq("name", "h1")}, {"name"}, WaitUntil::kNotEqual, {}, 0) == 5);
  CHECK(t.comment("glctl add-host") == 6);
  const Json p = t.params("Goldilocks");
  const Json want = Json::parse(R"([
    "Goldilocks",
    {"op":"insert","table":"Host","row":{"name":"h1"},"uuid-name":"h"},
    {"op":"update","table":"Workload","where":[["name","==","w1"]],"row":{"port":"vhu1"}},
    {"op":"mutate","table":"Group","where":[["name","==","g"]],
     "mutations":[["members","insert",["set",["w1"]]],["members","delete",["set",["w0"]]]]},
    {"op":"delete","table":"Rule","where":[["_uuid","==",["uuid","11111111-2222-3333-4444-555555555555"]]]},
    {"op":"select","table":"Host","where":[],"columns":["name"]},
    {"op":"wait","table":"Host","where":[["name","==","h1"]],"columns":["name"],"until":"!=",
     "rows":[],"timeout":0},
    {"op":"comment","comment":"glctl add-host"}])");
  CHECK(p == want);
  CHECK(t.describe(0) == "op 0 (insert into Host)");
  CHECK(t.describe(1) == "op 1 (update of Workload)");
  CHECK(t.describe(3) == "op 3 (delete in Rule)");
}

TEST_CASE("transaction: replies become results or an error naming the operation", "[ovsdb][txn]") {
  Transaction t;
  t.insert("Host", {{"name", "h1"}});
  t.insert("Rule", {{"rule_id", 0}});
  SECTION("success") {
    auto r = t.interpret_reply(Json::parse(
        R"([{"uuid":["uuid","11111111-2222-3333-4444-555555555555"]},{"uuid":["uuid","aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"]}])"));
    REQUIRE(r);
    CHECK(r->inserted_uuid(0) == std::string(kU1));
    CHECK(r->inserted_uuid(1) == std::string(kU2));
    CHECK_FALSE(r->inserted_uuid(2).has_value());
  }
  SECTION("an operation fails") {
    auto r = t.interpret_reply(Json::parse(
        R"j([{"uuid":["uuid","11111111-2222-3333-4444-555555555555"]},{"error":"constraint violation","details":"0 is not in the valid range 1 to 2147483647 (inclusive)"}])j"));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::kTxnFailed);
    CHECK(r.error().op_index == 1u);
    CHECK(r.error().server_error == "constraint violation");
    CHECK_THAT(r.error().message, Catch::StartsWith("op 1 (insert into Rule) failed: constraint "
                                                    "violation: 0 is not in the valid range"));
  }
  SECTION("the commit fails; the details quote a row this transaction inserted") {
    auto r = t.interpret_reply(Json::parse(
        R"([{"uuid":["uuid","11111111-2222-3333-4444-555555555555"]},{"uuid":["uuid","aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"]},
            {"error":"constraint violation","details":"Transaction causes multiple rows in \"Host\" table to have identical values (h1) for index on column \"name\".  First row, with UUID 11111111-2222-3333-4444-555555555555, was inserted by this transaction."}])"));
    REQUIRE_FALSE(r);
    CHECK(r.error().op_index == 0u);
    CHECK_THAT(r.error().message,
               Catch::StartsWith("transaction commit failed at op 0 (insert into Host)"));
  }
  SECTION("the commit fails; only the table is named") {
    auto r = t.interpret_reply(Json::parse(
        R"([{"uuid":["uuid","11111111-2222-3333-4444-555555555555"]},{"uuid":["uuid","aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"]},
            {"error":"constraint violation","details":"transaction causes \"Rule\" table to contain 2 rows"}])"));
    REQUIRE_FALSE(r);
    CHECK(r.error().op_index == 1u);
  }
  SECTION("malformed replies") {
    CHECK(t.interpret_reply(Json::object()).error().code == Errc::kBadReply);
    CHECK(t.interpret_reply(Json::array({Json::object()})).error().code == Errc::kBadReply);
  }
}

TEST_CASE("replica: canonical values", "[ovsdb][replica]") {
  const ColumnType str_set{AtomicType::kString, std::nullopt, 0, kUnlimited};
  const ColumnType int_scalar{AtomicType::kInteger, std::nullopt, 1, 1};
  const ColumnType real_scalar{AtomicType::kReal, std::nullopt, 1, 1};
  const ColumnType smap{AtomicType::kString, AtomicType::kString, 0, kUnlimited};
  const ColumnType uuid_opt{AtomicType::kUuid, std::nullopt, 0, 1};
  CHECK(canonical_datum(str_set, Json("a")).value() == Json::parse(R"(["set",["a"]])"));
  CHECK(canonical_datum(str_set, Json::parse(R"(["set",["b","a"]])")).value() ==
        Json::parse(R"(["set",["a","b"]])"));
  CHECK(canonical_datum(int_scalar, Json(7u)).value() == Json(int64_t{7}));
  CHECK(canonical_datum(int_scalar, Json::parse(R"(["set",[7]])")).value() == Json(7));
  CHECK_FALSE(canonical_datum(int_scalar, Json("7")).has_value());
  CHECK(canonical_datum(real_scalar, Json(1)).value().is_number_float());
  CHECK(canonical_datum(smap, Json::parse(R"(["map",[["b","2"],["a","1"]]])")).value() ==
        Json::parse(R"(["map",[["a","1"],["b","2"]]])"));
  CHECK_FALSE(canonical_datum(smap, Json::parse(R"(["map",[["a","1"],["a","2"]]])")).has_value());
  CHECK(canonical_datum(uuid_opt, uuid_value(kU1)).value() ==
        Json::array({"set", Json::array({uuid_value(kU1)})}));
}

TEST_CASE("replica: load and apply update2 diffs", "[ovsdb][replica]") {
  const Schema s = goldilocks_schema();
  const std::vector<std::string> tables = {"Goldilocks", "Workload", "Host"};
  auto r = Replica::load_update2(s, tables, Json::parse(R"({
      "Workload": {"11111111-2222-3333-4444-555555555555": {"initial": {
          "name": "w1", "ips": ["set", ["10.0.0.2", "10.0.0.1"]],
          "labels": ["map", [["app", "web"], ["env", "prod"]]]}}},
      "Goldilocks": {"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee": {"initial": {"conn_limit": 10}}}})"));
  REQUIRE(r);
  REQUIRE(r->table("Host"));
  CHECK(r->table("Host")->empty());
  CHECK(r->row_count() == 2);
  const Row* w = r->row("Workload", kU1);
  REQUIRE(w);
  CHECK((*w)["name"] == "w1");
  CHECK((*w)["host"] == "");  // defaulted
  CHECK((*w)["ips"] == Json::parse(R"(["set",["10.0.0.1","10.0.0.2"]])"));
  CHECK((*r->row("Goldilocks", kU2))["default_action"] == Json::parse(R"(["set",[]])"));

  SECTION("modify: set symmetric difference, map toggle/replace, scalar replace") {
    auto ch = r->apply_update2(s, Json::parse(R"({"Workload": {
        "11111111-2222-3333-4444-555555555555": {"modify": {
            "ips": ["set", ["10.0.0.1", "10.0.0.3"]],
            "labels": ["map", [["app", "db"], ["env", "prod"], ["new", "1"]]],
            "port": "vhu7"}}}})"));
    REQUIRE(ch);
    REQUIRE(ch->size() == 1);
    const RowChange& c = (*ch)[0];
    CHECK(c.kind == RowChange::Kind::kModify);
    CHECK(c.old_row["ips"] == Json::parse(R"(["set",["10.0.0.1","10.0.0.2"]])"));
    CHECK(c.new_row["ips"] == Json::parse(R"(["set",["10.0.0.2","10.0.0.3"]])"));
    CHECK(c.new_row["labels"] == Json::parse(R"(["map",[["app","db"],["new","1"]]])"));
    CHECK(c.new_row["port"] == "vhu7");
    CHECK(*r->row("Workload", kU1) == c.new_row);
  }
  SECTION("an optional (max 1) column's diff is its new value") {
    const char* id = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    auto modify = [&](const char* col, Json v) {
      return r->apply_update2(s, Json{{"Goldilocks", {{id, {{"modify", {{col, v}}}}}}}});
    };
    REQUIRE(modify("default_action", "allow"));
    CHECK((*r->row("Goldilocks", kU2))["default_action"] == Json::parse(R"(["set",["allow"]])"));
    REQUIRE(modify("default_action", "deny"));
    CHECK((*r->row("Goldilocks", kU2))["default_action"] == Json::parse(R"(["set",["deny"]])"));
    REQUIRE(modify("default_action", Json::parse(R"(["set",[]])")));
    CHECK((*r->row("Goldilocks", kU2))["default_action"] == Json::parse(R"(["set",[]])"));
    REQUIRE(modify("conn_limit", 5));
    CHECK((*r->row("Goldilocks", kU2))["conn_limit"] == 5);
  }
  SECTION("insert and delete") {
    auto ch = r->apply_update2(s, Json::parse(R"({
        "Host": {"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee": {"insert": {"name": "h1"}}},
        "Workload": {"11111111-2222-3333-4444-555555555555": {"delete": null}}})"));
    REQUIRE(ch);
    REQUIRE(ch->size() == 2);
    CHECK(r->row("Workload", kU1) == nullptr);
    REQUIRE(r->row("Host", kU2));
    CHECK((*r->row("Host", kU2))["revoked"] == false);
  }
  SECTION("all or nothing: one bad row leaves the replica untouched") {
    const Replica before = *r;
    auto ch = r->apply_update2(s, Json::parse(R"({
        "Host": {"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee": {"insert": {"name": "h1"}}},
        "Workload": {"99999999-2222-3333-4444-555555555555": {"modify": {"port": "x"}}}})"));
    CHECK_FALSE(ch);
    CHECK(*r == before);
    CHECK_FALSE(r->apply_update2(s, Json::parse(R"({"Rule": {}})")));  // not monitored
    CHECK_FALSE(r->apply_update2(s, Json::parse(R"({"Workload": {
        "11111111-2222-3333-4444-555555555555": {"modify": {"ips": 5}}}})")));
    CHECK(*r == before);
  }
  SECTION("a modify that changes nothing is not reported") {
    auto ch = r->apply_update2(s, Json::parse(R"({"Workload": {
        "11111111-2222-3333-4444-555555555555": {"modify": {}}}})"));
    REQUIRE(ch);
    CHECK(ch->empty());
  }
  SECTION("diff against a reloaded copy") {
    auto other = Replica::load_update2(s, tables, Json::parse(R"({
        "Workload": {"11111111-2222-3333-4444-555555555555": {"initial": {"name": "w1b"}}},
        "Host": {"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee": {"initial": {"name": "h"}}}})"));
    REQUIRE(other);
    auto d = Replica::diff(*r, *other);
    REQUIRE(d.size() == 3);
    int ins = 0, mod = 0, del = 0;
    for (const auto& c : d) {
      ins += c.kind == RowChange::Kind::kInsert;
      mod += c.kind == RowChange::Kind::kModify;
      del += c.kind == RowChange::Kind::kDelete;
    }
    CHECK(ins == 1);  // Host h
    CHECK(mod == 1);  // Workload renamed
    CHECK(del == 1);  // Goldilocks row gone
  }
  SECTION("a full load holds rows only") {
    CHECK_FALSE(Replica::load_update2(s, tables, Json::parse(R"({"Host": {
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee": {"modify": {"name": "h"}}}})")));
  }
}

TEST_CASE("replica: RFC 7047 monitor updates (old/new)", "[ovsdb][replica]") {
  const Schema s = goldilocks_schema();
  auto r = Replica::load_update(s, {"Host"}, Json::parse(R"({"Host": {
      "11111111-2222-3333-4444-555555555555": {"new": {"name": "h1", "revoked": false}}}})"));
  REQUIRE(r);
  auto ch = r->apply_update(s, Json::parse(R"({"Host": {
      "11111111-2222-3333-4444-555555555555": {"old": {"revoked": false},
                                               "new": {"name": "h1", "revoked": true}},
      "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee": {"new": {"name": "h2"}}}})"));
  REQUIRE(ch);
  CHECK(ch->size() == 2);
  CHECK((*r->row("Host", kU1))["revoked"] == true);
  ch = r->apply_update(s, Json::parse(R"({"Host": {
      "11111111-2222-3333-4444-555555555555": {"old": {"name": "h1"}}}})"));
  REQUIRE(ch);
  REQUIRE(ch->size() == 1);
  CHECK((*ch)[0].kind == RowChange::Kind::kDelete);
  CHECK(r->table("Host")->size() == 1);
}

TEST_CASE("remote: parsing and round-robin", "[ovsdb][remote]") {
  auto u = Remote::parse("unix:/run/gl/db.sock");
  REQUIRE(u);
  CHECK(u->kind == Remote::Kind::kUnix);
  CHECK(u->path == "/run/gl/db.sock");
  auto t = Remote::parse("tcp:127.0.0.1:6641");
  REQUIRE(t);
  CHECK(t->host == "127.0.0.1");
  CHECK(t->port == 6641);
  CHECK(t->to_string() == "tcp:127.0.0.1:6641");
  auto t6 = Remote::parse("tcp:[::1]:6641");
  REQUIRE(t6);
  CHECK(t6->host == "::1");
  CHECK(t6->to_string() == "tcp:[::1]:6641");
  for (const char* bad :
       {"ssl:1.2.3.4:6641", "tcp:1.2.3.4", "tcp:host.example:6641", "tcp:1.2.3.4:0",
        "tcp:1.2.3.4:70000", "tcp:1.2.3.4:66x", "unix:", "tcp:[::1:6641"}) {
    INFO(bad);
    auto r = Remote::parse(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(bad));
  }
  CHECK_FALSE(Remote::parse("unix:/" + std::string(200, 'x')));

  auto set = RemoteSet::parse({"unix:/a", "tcp:127.0.0.1:1", "unix:/c"});
  REQUIRE(set);
  CHECK(set->next().path == "/a");
  CHECK(set->current().path == "/a");
  CHECK(set->next().port == 1);
  CHECK(set->next().path == "/c");
  CHECK(set->next().path == "/a");
  CHECK_FALSE(RemoteSet::parse({}));
  CHECK_FALSE(RemoteSet::parse({"unix:/a", "bogus"}));
}

TEST_CASE("backoff: doubles up to the cap and resets", "[ovsdb][remote]") {
  using std::chrono::milliseconds;
  Backoff b(milliseconds(100), milliseconds(800));
  CHECK(b.next_delay() == milliseconds(100));
  CHECK(b.next_delay() == milliseconds(200));
  CHECK(b.next_delay() == milliseconds(400));
  CHECK(b.next_delay() == milliseconds(800));
  CHECK(b.next_delay() == milliseconds(800));
  b.reset();
  CHECK(b.next_delay() == milliseconds(100));
}

TEST_CASE("server db: _Server.Database rows are read from the replica's canonical form",
          "[ovsdb][remote]") {
  const char* kCid = "ab0aecbf-eef9-47c5-b59f-cdc569dee43b";
  auto db = ServerDb::from_row(
      Json{{"name", "Goldilocks"},
           {"model", "clustered"},
           {"connected", true},
           {"leader", false},
           {"index", Json::parse(R"(["set",[42]])")},
           {"cid", Json::parse(R"(["set",[["uuid","ab0aecbf-eef9-47c5-b59f-cdc569dee43b"]]])")},
           {"sid", Json::parse(R"(["set",[]])")},
           {"schema", Json::parse(R"(["set",["{}"]])")}});
  REQUIRE(db);
  CHECK(db->checked);
  CHECK(db->name == "Goldilocks");
  CHECK(db->model == "clustered");
  CHECK(db->connected);
  CHECK_FALSE(db->leader);
  CHECK(db->index == 42u);
  CHECK(db->cid == kCid);
  CHECK(db->sid.empty());
  CHECK(db->schema == "{}");
  CHECK(db->to_string() == "clustered follower index 42");

  // A standalone row: no index, no ids, no schema column monitored.
  auto sa = ServerDb::from_row(
      Json{{"name", "Goldilocks"}, {"model", "standalone"}, {"connected", true}, {"leader", true}});
  REQUIRE(sa);
  CHECK_FALSE(sa->index);
  CHECK_FALSE(sa->schema);
  CHECK(sa->to_string() == "standalone");

  CHECK_FALSE(ServerDb::from_row(Json{{"connected", "yes"}}));
  CHECK_FALSE(ServerDb::from_row(Json{{"index", Json::parse(R"(["set",["x"]])")}}));
  CHECK_FALSE(ServerDb::from_row(Json{{"cid", Json::parse(R"(["set",["not-a-uuid"]])")}}));
  CHECK_FALSE(ServerDb::from_row(Json::array()));
}

TEST_CASE("member check: OVS IDL's rules for Raft members, relays and standalone servers",
          "[ovsdb][remote]") {
  auto member = [](bool connected, bool leader, uint64_t index, std::string cid = "c1") {
    ServerDb d;
    d.checked = true;
    d.model = "clustered";
    d.connected = connected;
    d.leader = leader;
    d.index = index;
    d.cid = std::move(cid);
    d.schema = "{}";
    return d;
  };
  MemberCheck leader_only(true);
  CHECK(leader_only.check(ServerDb{}).ok());  // no _Server: used as it is
  ServerDb standalone;
  standalone.checked = true;
  standalone.model = "standalone";
  CHECK(leader_only.check(standalone).ok());

  auto v = leader_only.check(member(true, false, 10));
  CHECK(v.skip == Skip::kNotLeader);
  CHECK(v.reason == "not the leader");
  v = leader_only.check(member(false, true, 10));
  CHECK(v.skip == Skip::kDisconnected);
  CHECK(v.reason == "not connected to the cluster");
  ServerDb joining = member(false, false, 0);
  joining.schema.reset();
  CHECK(leader_only.check(joining).skip == Skip::kNotJoined);
  CHECK(leader_only.min_index() == 0);  // nothing accepted yet

  CHECK(leader_only.check(member(true, true, 10)).ok());
  CHECK(leader_only.min_index() == 10);
  // A later leader that has not applied what the client saw is behind: stale.
  v = leader_only.check(member(true, true, 9));
  CHECK(v.skip == Skip::kStale);
  CHECK(v.reason == "stale data (index 9, already saw 10)");
  CHECK(leader_only.check(member(true, true, 10)).ok());
  CHECK(leader_only.check(member(true, true, 12)).ok());
  CHECK(leader_only.min_index() == 12);
  // Another cluster (a new cluster id): its indexes start again.
  CHECK(leader_only.check(member(true, true, 3, "c2")).ok());
  CHECK(leader_only.min_index() == 3);

  MemberCheck any(false);
  CHECK(any.check(member(true, false, 5)).ok());
  CHECK(any.check(member(false, false, 5)).skip == Skip::kDisconnected);
  CHECK(any.check(member(true, false, 4)).skip == Skip::kStale);

  ServerDb relay;
  relay.checked = true;
  relay.model = "relay";
  relay.connected = true;
  relay.schema = "{}";
  CHECK(any.check(relay).ok());
  CHECK(leader_only.check(relay).skip == Skip::kRelay);
  relay.connected = false;
  CHECK(any.check(relay).skip == Skip::kDisconnected);

  CHECK(skip_name(Skip::kNotLeader) == "not_leader");
  CHECK(skip_name(Skip::kCount) == "?");
}
