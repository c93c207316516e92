// client_test.cpp — gl::ovsdb::Client against Debian's real ovsdb-server: RPCs, the
// monitored replica, failing transactions, reconnect/resync/resume, inactivity probe.
// Each test starts its own server in a fresh temp dir (see ovsdb_harness.hpp).
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "control/ovsdb/client.hpp"
#include "control/ovsdb/value.hpp"
#include "ovsdb_harness.hpp"

using namespace gl::ovsdb;
using namespace gl::ovsdb::test;
namespace asio = boost::asio;

namespace {

// Everything a client reported, for checks.
struct Recorder {
  std::vector<RowChange> changes;
  std::vector<std::pair<State, std::string>> states;
  int resyncs = 0;

  void attach(Client& c) {
    c.set_change_handler([this](const std::vector<RowChange>& ch) {
      changes.insert(changes.end(), ch.begin(), ch.end());
    });
    c.set_state_handler([this](State s, std::string_view why) { states.emplace_back(s, why); });
    c.set_resync_handler([this](const Replica&) { ++resyncs; });
  }
  int count(RowChange::Kind k, const std::string& table) const {
    int n = 0;
    for (const auto& c : changes) n += c.kind == k && c.table == table;
    return n;
  }
  const RowChange* last(const std::string& table) const {
    for (auto it = changes.rbegin(); it != changes.rend(); ++it) {
      if (it->table == table) return &*it;
    }
    return nullptr;
  }
};

Client make_client(asio::io_context& io, const ClientOptions& o) {
  auto c = Client::create(io.get_executor(), o);
  if (!c) FAIL("Client::create: " << c.error().message);
  return std::move(*c);
}

void require_connected(asio::io_context& io, Client& c, std::chrono::milliseconds t = 10s) {
  INFO("state " << state_name(c.state()) << ", remote " << c.remote());
  REQUIRE(run_until(
      io, [&] { return c.is_connected(); }, t));
}

const Row* find_row(const Replica& r, const std::string& table, const std::string& name) {
  const Table* t = r.table(table);
  if (!t) return nullptr;
  for (const auto& [uuid, row] : *t) {
    if (row.contains("name") && row["name"] == name) return &row;
  }
  return nullptr;
}

// A few rows in every table, written by an independent client (ovsdb-client).
void populate(OvsdbServer& s) {
  s.client_transact(R"(["Goldilocks",
    {"op":"insert","table":"Goldilocks","row":{"conn_limit":100,"options":["map",[["mode","strict"]]]}},
    {"op":"insert","table":"Host","row":{"name":"hv1","underlay_ip":"192.0.2.1","pubkey":"AAAA"}},
    {"op":"insert","table":"Host","row":{"name":"hv2","underlay_ip":"192.0.2.2","pubkey":"BBBB"}},
    {"op":"insert","table":"Workload","row":{"name":"web-1","host":"hv1","port":"vhu1",
      "mac":"02:00:00:00:00:01","ips":["set",["10.0.0.1","fd00::1"]],
      "labels":["map",[["app","web"],["env","prod"]]]}},
    {"op":"insert","table":"Workload","row":{"name":"db-1","host":"hv2","port":"vhu2",
      "mac":"02:00:00:00:00:02","ips":"10.0.0.2","labels":["map",[["app","db"]]]}},
    {"op":"insert","table":"Group","row":{"name":"web","selector":"app=web",
      "members":["set",["web-1"]]}},
    {"op":"insert","table":"Rule","row":{"rule_id":1,"priority":100,"from":"app=web",
      "to":"app=db","protocol":"tcp","ports":"5432","action":"allow","log":true}}])");
}

}  // namespace

TEST_CASE("client: list_dbs get_schema echo and call on a real ovsdb-server", "[ovsdb][client]") {
  OvsdbServer server;
  asio::io_context io;
  ClientOptions o = test_options(server.remote());
  o.db.clear();  // no monitor: an RPC-only session
  Client c = make_client(io, o);
  Recorder rec;
  rec.attach(c);
  c.start();
  require_connected(io, c);
  REQUIRE(rec.states.size() >= 2);
  CHECK(rec.states.front().first == State::kConnecting);
  CHECK(rec.states.back().first == State::kConnected);

  auto dbs = await<std::vector<std::string>>(io, [&](auto cb) { c.list_dbs(cb); });
  REQUIRE(dbs);
  CHECK(std::find(dbs->begin(), dbs->end(), "Goldilocks") != dbs->end());

  auto schema = await<Json>(io, [&](auto cb) { c.get_schema("Goldilocks", cb); });
  REQUIRE(schema);
  auto parsed = Schema::parse(*schema);
  REQUIRE(parsed);
  CHECK(parsed->name() == "Goldilocks");
  CHECK(parsed->tables().size() == 5);

  auto nodb = await<Json>(io, [&](auto cb) { c.get_schema("NoSuchDb", cb); });
  REQUIRE_FALSE(nodb);
  CHECK(nodb.error().code == Errc::kRpcError);
  CHECK(nodb.error().server_error == "unknown database");
  CHECK_THAT(nodb.error().message, Catch::Contains("get_schema"));

  auto e = await<Json>(io, [&](auto cb) { c.echo(Json::array({"ping", 42}), cb); });
  REQUIRE(e);
  CHECK(*e == Json::array({"ping", 42}));

  auto unknown = await<Json>(io, [&](auto cb) { c.call("no_such_method", Json::array(), cb); });
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().server_error == "unknown method");

  // Without a configured database, transact needs one in the Transaction.
  auto nodb_txn = transact(io, c, Transaction{});
  REQUIRE_FALSE(nodb_txn);
  CHECK(nodb_txn.error().code == Errc::kInvalidArgument);
  Transaction sel("Goldilocks");
  sel.select("Host", {});
  auto rows = transact(io, c, std::move(sel));
  REQUIRE(rows);
  REQUIRE(rows->rows(0));
  CHECK(rows->rows(0)->empty());

  const Counters k = c.counters();
  CHECK(k.messages_out >= 6);
  CHECK(k.messages_in >= 6);
  CHECK(k.bytes_in > 0);
  CHECK(k.bytes_out > 0);
  CHECK(k.sessions == 1);
  CHECK(k.parse_errors == 0);
}

TEST_CASE(
    "client: a transact insert is seen by the monitor and updates and deletes arrive as changes",
    "[ovsdb][client]") {
  OvsdbServer server;
  asio::io_context io;
  Client c = make_client(io, test_options(server.remote()));
  Recorder rec;
  rec.attach(c);
  c.start();
  require_connected(io, c);
  CHECK(c.monitor_method() == MonitorMethod::kMonitorCondSince);
  CHECK(rec.resyncs == 1);
  // A standalone server passes the _Server check as it is.
  CHECK(c.server_db().checked);
  CHECK(c.server_db().model == "standalone");
  CHECK(c.counters().skipped_total() == 0);
  for (const char* t : {"Goldilocks", "Host", "Workload", "Group", "Rule"}) {
    REQUIRE(c.replica().table(t));
    CHECK(c.replica().table(t)->empty());
  }

  // Insert a host and a workload that refers to it by name; named-uuid for the result.
  Transaction t;
  const size_t h = t.insert("Host", {{"name", "hv1"}, {"underlay_ip", "192.0.2.1"}}, "newhost");
  const size_t w = t.insert("Workload", {{"name", "web-1"},
                                         {"host", "hv1"},
                                         {"port", "vhu1"},
                                         {"ips", set_value({"10.0.0.1"})},
                                         {"labels", map_value({{"app", "web"}})}});
  auto r = transact(io, c, std::move(t));
  REQUIRE(r);
  const std::optional<std::string> host_uuid = r->inserted_uuid(h);
  const std::optional<std::string> wl_uuid = r->inserted_uuid(w);
  REQUIRE(host_uuid);
  REQUIRE(wl_uuid);
  REQUIRE(run_until(io, [&] { return c.replica().row("Workload", *wl_uuid) != nullptr; }));
  CHECK(rec.count(RowChange::Kind::kInsert, "Host") == 1);
  CHECK(rec.count(RowChange::Kind::kInsert, "Workload") == 1);
  const Row& wl = *c.replica().row("Workload", *wl_uuid);
  CHECK(wl["name"] == "web-1");
  CHECK(wl["ips"] == Json::parse(R"(["set",["10.0.0.1"]])"));
  CHECK(wl["labels"] == Json::parse(R"(["map",[["app","web"]]])"));
  CHECK(wl["mac"] == "");  // defaulted column present
  CHECK((*c.replica().row("Host", *host_uuid))["revoked"] == false);

  // Update (scalar + map) and mutate (set insert) in one transaction: one modify.
  rec.changes.clear();
  Transaction u;
  u.update("Workload", {Condition::eq("name", "web-1")},
           {{"labels", map_value({{"app", "web"}, {"tier", "front"}})}, {"port", "vhu9"}});
  u.mutate("Workload", {Condition::eq("name", "web-1")},
           {Mutation::insert("ips", set_value({"10.0.0.9"}))});
  auto ur = transact(io, c, std::move(u));
  REQUIRE(ur);
  CHECK(ur->count(0) == 1);
  REQUIRE(run_until(io, [&] { return rec.count(RowChange::Kind::kModify, "Workload") >= 1; }));
  const RowChange* m = rec.last("Workload");
  REQUIRE(m);
  CHECK(m->uuid == *wl_uuid);
  CHECK(m->old_row["port"] == "vhu1");
  CHECK(m->new_row["port"] == "vhu9");
  CHECK(m->new_row["ips"] == Json::parse(R"(["set",["10.0.0.1","10.0.0.9"]])"));
  CHECK(m->new_row["labels"] == Json::parse(R"(["map",[["app","web"],["tier","front"]]])"));
  CHECK(*c.replica().row("Workload", *wl_uuid) == m->new_row);

  // Changes by someone else (ovsdb-client) arrive the same way.
  rec.changes.clear();
  server.client_transact(R"(["Goldilocks",{"op":"mutate","table":"Workload",
      "where":[["name","==","web-1"]],"mutations":[["ips","delete",["set",["10.0.0.1"]]],
      ["labels","delete",["set",["tier"]]]]}])");
  REQUIRE(run_until(io, [&] { return rec.count(RowChange::Kind::kModify, "Workload") >= 1; }));
  CHECK((*c.replica().row("Workload", *wl_uuid))["ips"] == Json::parse(R"(["set",["10.0.0.9"]])"));
  CHECK((*c.replica().row("Workload", *wl_uuid))["labels"] ==
        Json::parse(R"(["map",[["app","web"]]])"));

  // Delete.
  rec.changes.clear();
  Transaction d;
  d.erase("Workload", {Condition::uuid_is(*wl_uuid)});
  auto dr = transact(io, c, std::move(d));
  REQUIRE(dr);
  CHECK(dr->count(0) == 1);
  REQUIRE(run_until(io, [&] { return rec.count(RowChange::Kind::kDelete, "Workload") == 1; }));
  CHECK(c.replica().row("Workload", *wl_uuid) == nullptr);
  REQUIRE(rec.last("Workload"));
  CHECK(rec.last("Workload")->old_row["name"] == "web-1");
  CHECK(rec.last("Workload")->new_row.is_null());

  CHECK(c.replica() == fresh_replica(io, server.remote()));
  CHECK(c.counters().updates >= 3);
  CHECK(c.counters().protocol_errors == 0);
  CHECK(rec.resyncs == 1);
}

TEST_CASE("client: a failing transaction names the failing operation and the server's error",
          "[ovsdb][client]") {
  OvsdbServer server;
  asio::io_context io;
  Client c = make_client(io, test_options(server.remote()));
  c.start();
  require_connected(io, c);
  Transaction first;
  first.insert("Host", {{"name", "hv1"}});
  REQUIRE(transact(io, c, std::move(first)));
  REQUIRE(run_until(io, [&] { return c.replica().table("Host")->size() == 1; }));
  const Replica before = c.replica();

  SECTION("duplicate in a unique index (detected at commit)") {
    Transaction t;
    t.insert("Group", {{"name", "g"}});
    t.insert("Host", {{"name", "hv1"}});
    auto r = transact(io, c, std::move(t));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::kTxnFailed);
    CHECK(r.error().op_index == 1u);
    CHECK(r.error().server_error == "constraint violation");
    CHECK_THAT(r.error().details, Catch::Contains("index on column \"name\""));
    CHECK_THAT(r.error().message, Catch::Contains("op 1 (insert into Host)"));
  }
  SECTION("a value out of the column's range (detected by the operation)") {
    Transaction t;
    t.insert("Host", {{"name", "hv2"}});
    t.insert("Rule", {{"rule_id", 0}, {"action", "allow"}});
    auto r = transact(io, c, std::move(t));
    REQUIRE_FALSE(r);
    CHECK(r.error().op_index == 1u);
    CHECK_THAT(r.error().message,
               Catch::StartsWith("op 1 (insert into Rule) failed: constraint violation"));
    CHECK_THAT(r.error().details, Catch::Contains("valid range"));
  }
  SECTION("an unknown table is a syntax error of that operation") {
    Transaction t;
    t.insert("NoSuchTable", Json::object());
    auto r = transact(io, c, std::move(t));
    REQUIRE_FALSE(r);
    CHECK(r.error().op_index == 0u);
    CHECK(r.error().server_error == "syntax error");
  }
  SECTION("a wait that does not hold") {
    Transaction t;
    t.wait("Host", {Condition::eq("name", "hv1")}, {"name"}, WaitUntil::kEqual, {}, 0);
    t.insert("Host", {{"name", "hv3"}});
    auto r = transact(io, c, std::move(t));
    REQUIRE_FALSE(r);
    CHECK(r.error().op_index == 0u);
    CHECK(r.error().server_error == "timed out");
    CHECK_THAT(r.error().message, Catch::StartsWith("op 0 (wait in Host) failed"));
  }
  SECTION("an unknown database is an RPC error") {
    Transaction t("NoSuchDb");
    t.comment("x");
    auto r = transact(io, c, std::move(t));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::kRpcError);
    CHECK(r.error().server_error == "unknown database");
  }
  // Nothing of a failed transaction is visible.
  run_for(io, 200ms);
  CHECK(c.replica() == before);
  CHECK(c.replica() == fresh_replica(io, server.remote()));
}

TEST_CASE("client: monitor_cond_since and monitor_cond and monitor keep equal replicas",
          "[ovsdb][client]") {
  OvsdbServer server;
  populate(server);
  asio::io_context io;
  std::vector<Client> clients;
  for (MonitorMethod m :
       {MonitorMethod::kMonitorCondSince, MonitorMethod::kMonitorCond, MonitorMethod::kMonitor}) {
    ClientOptions o = test_options(server.remote());
    o.max_monitor_method = m;
    clients.push_back(make_client(io, o));
    clients.back().start();
  }
  for (Client& c : clients) require_connected(io, c);
  CHECK(clients[0].monitor_method() == MonitorMethod::kMonitorCondSince);
  CHECK(clients[1].monitor_method() == MonitorMethod::kMonitorCond);
  CHECK(clients[2].monitor_method() == MonitorMethod::kMonitor);
  CHECK(clients[0].replica().row_count() == 7);
  CHECK(clients[1].replica() == clients[0].replica());
  CHECK(clients[2].replica() == clients[0].replica());

  // Every kind of diff: set add/remove, map add/replace/remove, optional set/clear,
  // scalar, insert, delete. Each client must end equal to a fresh load.
  const char* steps[] = {
      R"(["Goldilocks",{"op":"mutate","table":"Workload","where":[["name","==","web-1"]],
          "mutations":[["ips","insert",["set",["10.0.0.3"]]],["ips","delete",["set",["fd00::1"]]],
          ["labels","insert",["map",[["tier","1"]]]]]}])",
      R"(["Goldilocks",{"op":"update","table":"Workload","where":[["name","==","web-1"]],
          "row":{"labels":["map",[["app","web2"],["tier","1"]]]}}])",
      R"(["Goldilocks",{"op":"update","table":"Goldilocks","where":[],
          "row":{"default_action":"allow","flow_log":"/var/log/gl/flows.json","rekey_seconds":60}}])",
      R"(["Goldilocks",{"op":"update","table":"Goldilocks","where":[],
          "row":{"default_action":"deny","flow_log":["set",[]]}}])",
      R"(["Goldilocks",{"op":"delete","table":"Host","where":[["name","==","hv2"]]},
          {"op":"insert","table":"Rule","row":{"rule_id":2,"priority":10,"from":"","to":"app=web",
           "protocol":"tcp","ports":"80,443","action":"reject"}},
          {"op":"update","table":"Host","where":[["name","==","hv1"]],"row":{"revoked":true}}])",
  };
  for (const char* step : steps) {
    const uint64_t before = clients[0].counters().updates;
    server.client_transact(step);
    REQUIRE(run_until(io, [&] {
      for (Client& c : clients) {
        if (c.counters().updates <= before) return false;
      }
      return true;
    }));
  }
  const Replica truth = fresh_replica(io, server.remote());
  for (Client& c : clients) {
    INFO(monitor_method_name(c.monitor_method()));
    if (!(c.replica() == truth)) {
      for (const auto& d : Replica::diff(truth, c.replica())) {
        UNSCOPED_INFO(d.table << " " << d.uuid << " " << change_kind_name(d.kind) << "\n truth "
                              << d.old_row.dump() << "\n ours  " << d.new_row.dump());
      }
    }
    CHECK(c.replica() == truth);
    CHECK(c.counters().protocol_errors == 0);
  }
  const Row* g = nullptr;
  for (const auto& [uuid, row] : *truth.table("Goldilocks")) g = &row;
  REQUIRE(g);
  CHECK((*g)["default_action"] == Json::parse(R"(["set",["deny"]])"));
  CHECK((*g)["flow_log"] == Json::parse(R"(["set",[]])"));
  CHECK((*g)["rekey_seconds"] == Json::parse(R"(["set",[60]])"));
  CHECK((*find_row(truth, "Workload", "web-1"))["ips"] ==
        Json::parse(R"(["set",["10.0.0.1","10.0.0.3"]])"));
}

TEST_CASE("client: steps down to monitor when the server refuses monitor_cond", "[ovsdb][client]") {
  OvsdbServer server;
  populate(server);
  REQUIRE(server.appctl({"ovsdb-server/disable-monitor-cond"}).status == 0);
  asio::io_context io;
  Client c = make_client(io, test_options(server.remote()));
  c.start();
  require_connected(io, c);
  CHECK(c.monitor_method() == MonitorMethod::kMonitor);
  CHECK_FALSE(c.server_db().checked);  // no monitor_cond on _Server either: used unchecked
  CHECK(c.replica().row_count() == 7);
  server.client_transact(R"(["Goldilocks",{"op":"insert","table":"Host","row":{"name":"hv9"}}])");
  REQUIRE(run_until(io, [&] { return find_row(c.replica(), "Host", "hv9") != nullptr; }));
  CHECK(c.counters().protocol_errors == 0);
}

TEST_CASE("client: requests fail cleanly when not connected and on disconnect and on stop",
          "[ovsdb][client]") {
  OvsdbServer server;
  asio::io_context io;
  Client c = make_client(io, test_options(server.remote()));

  // Not started: an error, delivered later, never inside the call.
  bool called_inline = true;
  bool in_call = true;
  std::optional<Result<TransactResult>> early;
  {
    Transaction t;
    t.comment("x");
    c.transact(std::move(t), [&](Result<TransactResult> r) {
      called_inline = in_call;
      early.emplace(std::move(r));
    });
    in_call = false;
  }
  REQUIRE(run_until(io, [&] { return early.has_value(); }));
  CHECK_FALSE(called_inline);
  CHECK(early->error().code == Errc::kNotConnected);

  c.start();
  require_connected(io, c);

  SECTION("the server stops answering and dies: the pending request fails") {
    server.pause();
    std::optional<Result<TransactResult>> r;
    Transaction t;
    t.insert("Host", {{"name", "lost"}});
    c.transact(std::move(t), [&](Result<TransactResult> x) { r.emplace(std::move(x)); });
    run_for(io, 100ms);
    CHECK_FALSE(r.has_value());
    server.kill();
    REQUIRE(run_until(io, [&] { return r.has_value(); }));
    CHECK(r->error().code == Errc::kDisconnected);
    CHECK_THAT(r->error().message, Catch::Contains("transact"));
    CHECK(c.counters().requests_failed >= 1);
    CHECK(c.counters().disconnects == 1);
  }
  SECTION("stop() cancels the pending request and stops reconnecting") {
    server.pause();
    std::optional<Result<TransactResult>> r;
    Transaction t;
    t.insert("Host", {{"name", "lost"}});
    c.transact(std::move(t), [&](Result<TransactResult> x) { r.emplace(std::move(x)); });
    run_for(io, 50ms);
    c.stop();
    CHECK_FALSE(r.has_value());  // not inside stop()
    REQUIRE(run_until(io, [&] { return r.has_value(); }));
    CHECK(r->error().code == Errc::kCancelled);
    server.resume();
    const uint64_t attempts = c.counters().connect_attempts;
    run_for(io, 300ms);
    CHECK(c.state() == State::kStopped);
    CHECK(c.counters().connect_attempts == attempts);
    // And it can start again.
    c.start();
    require_connected(io, c);
  }
}

TEST_CASE(
    "client: server killed and restarted on the same socket gives reconnect with "
    "back-off and a full resync (standalone database)",
    "[ovsdb][client]") {
  OvsdbServer server;
  populate(server);
  asio::io_context io;
  ClientOptions o = test_options(server.remote());
  o.backoff_min = 50ms;
  o.backoff_max = 400ms;
  Client c = make_client(io, o);
  Recorder rec;
  rec.attach(c);
  c.start();
  require_connected(io, c);
  CHECK(c.replica().row_count() == 7);
  CHECK(c.counters().full_loads == 1);

  server.kill();
  REQUIRE(run_until(io, [&] { return !c.is_connected(); }));
  // Down for a while: attempts back off (50, 100, 200, 400, 400 ms...) rather than spin.
  run_for(io, 1500ms);
  const Counters down = c.counters();
  CHECK(down.connect_failures >= 3);
  CHECK(down.connect_failures <= 10);
  CHECK(down.last_backoff_ms == 400);
  CHECK(c.replica().row_count() == 7);  // the last known state stays readable

  // A change made while the client is away (offline, on the file).
  auto tr = run_command({GL_OVSDB_TOOL, "transact", server.db_path(),
                         R"(["Goldilocks",{"op":"insert","table":"Host","row":{"name":"hv3"}},
                            {"op":"delete","table":"Workload","where":[["name","==","db-1"]]}])"});
  REQUIRE(tr.status == 0);
  rec.changes.clear();
  const int resyncs = rec.resyncs;
  server.start();
  require_connected(io, c);
  CHECK(c.counters().reconnects >= 1);
  CHECK(c.counters().full_loads == 2);  // no transaction history on a standalone database
  CHECK(rec.resyncs == resyncs + 1);
  CHECK(rec.count(RowChange::Kind::kInsert, "Host") == 1);
  CHECK(rec.count(RowChange::Kind::kDelete, "Workload") == 1);
  CHECK(rec.changes.size() == 2);  // the resync reports only what changed
  CHECK(c.replica() == fresh_replica(io, server.remote()));

  // And the session works as before.
  server.client_transact(R"(["Goldilocks",{"op":"insert","table":"Host","row":{"name":"hv4"}}])");
  REQUIRE(run_until(io, [&] { return find_row(c.replica(), "Host", "hv4") != nullptr; }));
  // Back-off is reset by a session that stayed up for backoff_min or longer.
  run_for(io, 100ms);
  server.kill();
  REQUIRE(run_until(io, [&] { return c.state() == State::kBackoff; }));
  CHECK(c.counters().last_backoff_ms == 50);
}

TEST_CASE("client: clustered database: reconnect resumes with monitor_cond_since",
          "[ovsdb][client]") {
  OvsdbServer server(OvsdbServer::Options{.clustered = true});
  populate(server);
  asio::io_context io;
  Client c = make_client(io, test_options(server.remote()));
  Recorder rec;
  rec.attach(c);
  c.start();
  require_connected(io, c);
  REQUIRE(c.monitor_method() == MonitorMethod::kMonitorCondSince);
  CHECK(c.server_db().model == "clustered");
  CHECK(c.server_db().leader);  // a one-member cluster: its member leads
  CHECK_FALSE(c.replica().last_txn_id().empty());
  CHECK(c.counters().full_loads == 1);
  // ovsdb-server keeps a transaction in its history only while the history holds fewer
  // atoms than the database (else a reload is cheaper): many small transactions, so that
  // the last ones stay when a few more are made.
  int done = 0;
  for (int i = 0; i < 30; ++i) {
    Transaction t;
    t.insert("Host", {{"name", "bulk" + std::to_string(i)}, {"underlay_ip", "192.0.2.9"}});
    c.transact(std::move(t), [&](Result<TransactResult> r) { done += r.has_value(); });
  }
  REQUIRE(run_until(io, [&] { return done == 30 && c.replica().row_count() == 37; }));

  SECTION("nothing changed: the session resumes, no reload, no change reported") {
    rec.changes.clear();
    REQUIRE(server.appctl({"ovsdb-server/reconnect"}).status == 0);  // drops every session
    REQUIRE(run_until(io, [&] { return c.counters().disconnects == 1 && c.is_connected(); }));
    CHECK(c.counters().resumes == 1);
    CHECK(c.counters().full_loads == 1);
    CHECK(rec.changes.empty());
    CHECK(rec.resyncs == 1);
    CHECK(c.replica() == fresh_replica(io, server.remote()));
  }
  SECTION("server killed and restarted with nothing changed: resume, no reload") {
    rec.changes.clear();
    server.kill();
    REQUIRE(run_until(io, [&] { return !c.is_connected(); }));
    server.start();
    require_connected(io, c);
    CHECK(c.counters().resumes == 1);
    CHECK(c.counters().full_loads == 1);
    CHECK(rec.changes.empty());
    CHECK(rec.resyncs == 1);
    CHECK(c.replica() == fresh_replica(io, server.remote()));
  }
  SECTION("a change made while the client was disconnected arrives as a change") {
    server.kill();
    REQUIRE(run_until(io, [&] { return !c.is_connected(); }));
    // The client does not run while we restart the server and change the database, so it
    // cannot reconnect before the change.
    server.start();
    server.client_transact(R"(["Goldilocks",
        {"op":"insert","table":"Host","row":{"name":"hv7"}},
        {"op":"update","table":"Workload","where":[["name","==","web-1"]],"row":{"port":"vhu77"}}])");
    rec.changes.clear();
    require_connected(io, c);
    CHECK(c.counters().resumes == 1);  // the restarted server rebuilt its history from the log
    CHECK(c.counters().full_loads == 1);
    CHECK(rec.resyncs == 1);
    CHECK(rec.count(RowChange::Kind::kInsert, "Host") == 1);
    CHECK(rec.count(RowChange::Kind::kModify, "Workload") == 1);
    CHECK(c.replica() == fresh_replica(io, server.remote()));
  }
  SECTION("the server no longer has our transaction (compacted): full reload") {
    server.kill();
    REQUIRE(run_until(io, [&] { return !c.is_connected(); }));
    server.start();
    server.client_transact(R"(["Goldilocks",{"op":"insert","table":"Host","row":{"name":"hv8"}}])");
    REQUIRE(server.appctl({"ovsdb-server/compact"}).status == 0);
    server.kill();
    server.start();
    rec.changes.clear();
    require_connected(io, c);
    CHECK(c.counters().full_loads == 2);
    CHECK(rec.resyncs == 2);
    CHECK(rec.count(RowChange::Kind::kInsert, "Host") == 1);
    CHECK(c.replica() == fresh_replica(io, server.remote()));
  }
}

TEST_CASE("client: inactivity probe detects a stopped server and SIGCONT recovers",
          "[ovsdb][client]") {
  OvsdbServer server;
  populate(server);
  asio::io_context io;
  ClientOptions o = test_options(server.remote());
  o.probe_interval = 200ms;
  Client c = make_client(io, o);
  Recorder rec;
  rec.attach(c);
  c.start();
  require_connected(io, c);

  // Idle but alive: probes are answered, the session stays.
  run_for(io, 1000ms);
  CHECK(c.counters().probes_sent >= 2);
  CHECK(c.counters().disconnects == 0);
  CHECK(c.is_connected());

  server.pause();
  REQUIRE(run_until(
      io, [&] { return !c.is_connected(); }, 5s));
  CHECK(c.counters().probe_timeouts >= 1);
  CHECK(c.counters().disconnects == 1);
  bool saw_reason = false;
  for (const auto& [s, why] : rec.states) {
    saw_reason |= s == State::kBackoff && why.find("inactivity probe") != std::string::npos;
  }
  CHECK(saw_reason);
  run_for(io, 500ms);  // reconnect attempts reach the listen queue but get no answer
  CHECK_FALSE(c.is_connected());

  server.resume();
  require_connected(io, c);
  CHECK(c.replica() == fresh_replica(io, server.remote()));
}

TEST_CASE("client: remotes are tried round-robin and TCP works", "[ovsdb][client]") {
  OvsdbServer server(OvsdbServer::Options{.tcp = true});
  populate(server);
  asio::io_context io;
  ClientOptions o = test_options(server.tcp_remote());
  o.remotes = {"unix:" + server.dir().file("nobody-listens.sock"),
               "unix:" + server.dir().file("nobody-either.sock"), server.tcp_remote()};
  // Within a cycle of the remotes the next one is tried at once (OVS's backoff_free_tries):
  // with a back-off after each dead one, this would wait a minute.
  o.backoff_min = 60s;
  o.backoff_max = 60s;
  Client c = make_client(io, o);
  c.start();
  require_connected(io, c);
  CHECK(c.remote() == server.tcp_remote());
  CHECK(c.counters().connect_failures == 2);
  CHECK(c.counters().last_backoff_ms == 0);
  CHECK(c.replica().row_count() == 7);
  CHECK(c.replica() == fresh_replica(io, server.remote()));
}

TEST_CASE("client: a message over max_message drops the session and is counted",
          "[ovsdb][client]") {
  OvsdbServer server;
  asio::io_context io;
  ClientOptions o = test_options(server.remote());
  o.max_message = 4096;
  Client c = make_client(io, o);
  c.start();
  require_connected(io, c);
  server.client_transact(R"(["Goldilocks",{"op":"insert","table":"Rule","row":{"rule_id":9,
      "action":"deny","description":")" +
                         std::string(10000, 'x') + R"("}}])");
  REQUIRE(run_until(io, [&] { return c.counters().overflows >= 1; }));
  CHECK_FALSE(c.is_connected());
  // While the row exists every full load is too big; once it is gone the client recovers.
  server.client_transact(
      R"(["Goldilocks",{"op":"delete","table":"Rule","where":[["rule_id","==",9]]}])");
  require_connected(io, c);
  CHECK(c.replica().table("Rule")->empty());
}
