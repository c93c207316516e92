// fake_server_test.cpp — the client against a scripted JSON-RPC peer on a unix socket:
// what a real ovsdb-server does not do on demand (odd write boundaries, garbage, oversize
// messages, echo requests, stray replies, updates that do not apply, exact resume ids).
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <deque>
#include <memory>

#include "control/ovsdb/client.hpp"
#include "control/ovsdb/framer.hpp"
#include "control/ovsdb/value.hpp"
#include "ovsdb_harness.hpp"

using namespace gl::ovsdb;
using namespace gl::ovsdb::test;
namespace asio = boost::asio;
using asio::local::stream_protocol;

namespace {

const char* kUuidA = "11111111-2222-3333-4444-555555555555";
const char* kTxn1 = "aaaaaaaa-0000-0000-0000-000000000001";
const char* kTxn2 = "aaaaaaaa-0000-0000-0000-000000000002";

const Json kTinySchema = Json::parse(R"({"name":"T","version":"1.0.0","tables":{
    "Item":{"columns":{"name":{"type":"string"},
                       "tags":{"type":{"key":"string","min":0,"max":"unlimited"}}},
            "isRoot":true}}})");

// A one-connection-at-a-time scripted server. `on_message` sees every message the client
// sends; the script answers with send()/send_raw().
class FakeServer {
 public:
  FakeServer(asio::io_context& io, const std::string& path) : io_(io), acceptor_(io) {
    stream_protocol::endpoint ep(path);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    accept();
  }

  std::function<void(const Json&)> on_message;
  std::function<void()> on_connect;
  std::vector<Json> received;
  int connections = 0;

  void send(const Json& m) { send_raw(m.dump()); }
  // Writes `bytes` in pieces of `chunk` bytes, each its own write.
  void send_raw(const std::string& bytes, size_t chunk = 0) {
    if (!conn_) return;
    if (chunk == 0) chunk = bytes.size();
    for (size_t i = 0; i < bytes.size(); i += chunk) out_.push_back(bytes.substr(i, chunk));
    if (!writing_) write();
  }
  void close() {
    if (conn_) conn_->sock.close();
    conn_.reset();
  }

  // Answers get_schema with `schema` and monitor_cond_since with
  // [found, txn, updates] computed by `monitor_reply(params)`.
  void serve_monitor(Json schema, std::function<Json(const Json& params)> monitor_reply) {
    on_message = [this, schema, monitor_reply](const Json& m) {
      const std::string method = m.value("method", "");
      if (method == "get_schema" && m["params"][0] == "_Server") {  // an OVS before 2.9
        send({{"id", m["id"]}, {"result", nullptr}, {"error", {{"error", "unknown database"}}}});
      } else if (method == "get_schema") {
        send({{"id", m["id"]}, {"result", schema}, {"error", nullptr}});
      } else if (method == "monitor_cond_since") {
        send({{"id", m["id"]}, {"result", monitor_reply(m["params"])}, {"error", nullptr}});
      } else if (method == "echo") {
        send({{"id", m["id"]}, {"result", m["params"]}, {"error", nullptr}});
      }
    };
  }

 private:
  struct Conn {
    explicit Conn(asio::io_context& io) : sock(io) {}
    stream_protocol::socket sock;
    std::array<char, 4096> buf{};
    JsonFramer framer;
  };

  void accept() {
    auto c = std::make_shared<Conn>(io_);
    acceptor_.async_accept(c->sock, [this, c](const boost::system::error_code& ec) {
      if (ec) return;
      conn_ = c;
      out_.clear();
      writing_ = false;
      ++connections;
      read(c);
      if (on_connect) on_connect();
      accept();
    });
  }

  void read(const std::shared_ptr<Conn>& c) {
    c->sock.async_read_some(asio::buffer(c->buf),
                            [this, c](const boost::system::error_code& ec, size_t n) {
                              if (ec || c != conn_) return;
                              std::vector<Json> msgs;
                              c->framer.feed(std::string_view(c->buf.data(), n), msgs);
                              for (const Json& m : msgs) {
                                received.push_back(m);
                                if (on_message) on_message(m);
                              }
                              read(c);
                            });
  }

  void write() {
    if (out_.empty() || !conn_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    auto c = conn_;
    asio::async_write(c->sock, asio::buffer(out_.front()),
                      [this, c](const boost::system::error_code& ec, size_t) {
                        if (ec || c != conn_) return;
                        out_.pop_front();
                        write();
                      });
  }

  asio::io_context& io_;
  stream_protocol::acceptor acceptor_;
  std::shared_ptr<Conn> conn_;
  std::deque<std::string> out_;
  bool writing_ = false;
};

Client make_client(asio::io_context& io, ClientOptions o) {
  auto c = Client::create(io.get_executor(), std::move(o));
  if (!c) FAIL(c.error().message);
  return std::move(*c);
}

ClientOptions rpc_only(const std::string& path) {
  ClientOptions o = test_options("unix:" + path);
  o.db.clear();
  return o;
}

ClientOptions monitored(const std::string& path) {
  ClientOptions o = test_options("unix:" + path);
  o.db = "T";
  return o;
}

Json reply(const Json& id, Json result) {
  return {{"id", id}, {"result", std::move(result)}, {"error", nullptr}};
}

}  // namespace

TEST_CASE("fake server: replies split into 1-byte writes and several replies in one write",
          "[ovsdb][fake]") {
  TempDir dir;
  asio::io_context io;
  FakeServer fs(io, dir.file("s.sock"));
  std::vector<Json> echoes;
  fs.on_message = [&](const Json& m) {
    if (m["method"] == "list_dbs") {
      fs.send_raw(reply(m["id"], Json::array({"T", "_Server"})).dump(), 1);
    } else if (m["method"] == "echo") {
      echoes.push_back(m);
      if (echoes.size() == 2) {  // both answers in one write, in reverse order
        fs.send_raw(reply(echoes[1]["id"], echoes[1]["params"]).dump() + "\n" +
                    reply(echoes[0]["id"], echoes[0]["params"]).dump());
      }
    }
  };
  Client c = make_client(io, rpc_only(dir.file("s.sock")));
  c.start();
  REQUIRE(run_until(io, [&] { return c.is_connected(); }));
  auto dbs = await<std::vector<std::string>>(io, [&](auto cb) { c.list_dbs(cb); });
  REQUIRE(dbs);
  CHECK(*dbs == std::vector<std::string>{"T", "_Server"});

  std::optional<Result<Json>> a, b;
  c.echo(Json::array({"first"}), [&](Result<Json> r) { a.emplace(std::move(r)); });
  c.echo(Json::array({"second"}), [&](Result<Json> r) { b.emplace(std::move(r)); });
  REQUIRE(run_until(io, [&] { return a && b; }));
  CHECK(**a == Json::array({"first"}));
  CHECK(**b == Json::array({"second"}));
  CHECK(c.counters().parse_errors == 0);
}

TEST_CASE("fake server: the client answers the server's echo requests", "[ovsdb][fake]") {
  TempDir dir;
  asio::io_context io;
  FakeServer fs(io, dir.file("s.sock"));
  fs.on_connect = [&] {
    fs.send(Json{{"method", "echo"}, {"params", Json::array({"x", 1})}, {"id", "echo-7"}});
    fs.send(Json{{"method", "frobnicate"}, {"params", Json::array()}, {"id", 8}});
  };
  Client c = make_client(io, rpc_only(dir.file("s.sock")));
  c.start();
  REQUIRE(run_until(io, [&] { return fs.received.size() >= 2; }));
  CHECK(fs.received[0] == Json::parse(R"({"id":"echo-7","result":["x",1],"error":null})"));
  CHECK(fs.received[1]["id"] == 8);
  CHECK(fs.received[1]["error"] == "unknown method");
  CHECK(c.counters().echo_answered == 1);
  CHECK(c.is_connected());
}

TEST_CASE("fake server: garbage drops the session and is counted and the client reconnects",
          "[ovsdb][fake]") {
  TempDir dir;
  asio::io_context io;
  FakeServer fs(io, dir.file("s.sock"));
  fs.on_connect = [&] {
    if (fs.connections == 1) fs.send_raw("{\"id\":1}garbage");
  };
  Client c = make_client(io, rpc_only(dir.file("s.sock")));
  c.start();
  REQUIRE(run_until(io, [&] { return fs.connections >= 2 && c.is_connected(); }));
  const Counters k = c.counters();
  CHECK(k.parse_errors == 1);
  CHECK(k.protocol_errors == 1);  // {"id":1} answered nothing of ours
  CHECK(k.disconnects == 1);
  CHECK(k.reconnects >= 1);
}

TEST_CASE("fake server: servers that serve and drop at once are cycled through with a back-off",
          "[ovsdb][fake]") {
  // Within a cycle of the remotes the next is tried at once; only a session that stayed up
  // for backoff_min starts a new cycle and resets the doubling. Two servers that drop every
  // session right after it is served must not be cycled through without a pause.
  TempDir dir;
  asio::io_context io;
  FakeServer a(io, dir.file("a.sock")), b(io, dir.file("b.sock"));
  a.on_connect = [&] { a.close(); };
  b.on_connect = [&] { b.close(); };
  ClientOptions o = rpc_only(dir.file("a.sock"));
  o.remotes = {"unix:" + dir.file("a.sock"), "unix:" + dir.file("b.sock")};
  o.backoff_min = 200ms;
  o.backoff_max = 200ms;
  Client c = make_client(io, o);
  c.start();
  run_for(io, 1000ms);
  // A back-off of 200 ms after every cycle of two: about 10 sessions in a second (hundreds
  // when every served session started a new cycle).
  INFO(a.connections << " + " << b.connections << " sessions");
  CHECK(a.connections >= 2);
  CHECK(b.connections >= 2);
  CHECK(a.connections + b.connections <= 14);
  CHECK(c.counters().last_backoff_ms <= 200);
}

TEST_CASE("fake server: an oversize message drops the session and is counted", "[ovsdb][fake]") {
  TempDir dir;
  asio::io_context io;
  FakeServer fs(io, dir.file("s.sock"));
  fs.on_connect = [&] {
    if (fs.connections == 1) {
      fs.send(Json{{"method", "note"}, {"params", {std::string(5000, 'x')}}, {"id", nullptr}});
    }
  };
  ClientOptions o = rpc_only(dir.file("s.sock"));
  o.max_message = 2048;
  Client c = make_client(io, o);
  c.start();
  REQUIRE(run_until(io, [&] { return fs.connections >= 2 && c.is_connected(); }));
  CHECK(c.counters().overflows == 1);
  CHECK(c.counters().disconnects == 1);
}

TEST_CASE("fake server: resume sends the last transaction id and a bad update forces a reload",
          "[ovsdb][fake]") {
  TempDir dir;
  asio::io_context io;
  FakeServer fs(io, dir.file("s.sock"));
  std::vector<Json> since_params;
  fs.serve_monitor(kTinySchema, [&](const Json& params) -> Json {
    since_params.push_back(params);
    if (since_params.size() == 2) {
      // Second session: we have the client's id; send what happened since.
      return Json::array(
          {true, kTxn2, Json::parse(R"({"Item":{"11111111-2222-3333-4444-555555555555":
          {"modify":{"tags":["set",["b"]]}}}})")});
    }
    return Json::array(
        {false, kTxn1, Json::parse(R"({"Item":{"11111111-2222-3333-4444-555555555555":
        {"initial":{"name":"one","tags":"a"}}}})")});
  });
  Client c = make_client(io, monitored(dir.file("s.sock")));
  std::vector<RowChange> changes;
  int resyncs = 0;
  c.set_change_handler([&](const std::vector<RowChange>& ch) {
    changes.insert(changes.end(), ch.begin(), ch.end());
  });
  c.set_resync_handler([&](const Replica&) { ++resyncs; });
  c.start();
  REQUIRE(run_until(io, [&] { return c.is_connected(); }));
  REQUIRE(since_params.size() == 1);
  CHECK(since_params[0][0] == "T");
  CHECK(since_params[0][2] == Json::parse(R"({"Item":[{"columns":["name","tags"]}]})"));
  CHECK(since_params[0][3] == std::string(kZeroUuid));
  CHECK(c.replica().last_txn_id() == kTxn1);
  CHECK(resyncs == 1);

  // An update3 moves the id on.
  fs.send(
      Json{{"method", "update3"},
           {"params", Json::array({"gl-monitor", kTxn1,
                                   Json::parse(R"({"Item":{"11111111-2222-3333-4444-555555555555":
                                           {"modify":{"name":"uno"}}}})")})},
           {"id", nullptr}});
  REQUIRE(run_until(io, [&] { return c.counters().updates == 1; }));
  CHECK((*c.replica().row("Item", kUuidA))["name"] == "uno");

  // Drop the session: the client resumes from the id it saw and applies the diff.
  changes.clear();
  fs.close();
  REQUIRE(run_until(io, [&] { return since_params.size() == 2 && c.is_connected(); }));
  CHECK(since_params[1][3] == kTxn1);
  CHECK(c.counters().resumes == 1);
  CHECK(resyncs == 1);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].new_row["tags"] == Json::parse(R"(["set",["a","b"]])"));
  CHECK(c.replica().last_txn_id() == kTxn2);

  // A modify of a row the client does not have cannot be applied: reload from scratch.
  fs.send(
      Json{{"method", "update3"},
           {"params", Json::array({"gl-monitor", kTxn2,
                                   Json::parse(R"({"Item":{"99999999-2222-3333-4444-555555555555":
                                           {"modify":{"name":"?"}}}})")})},
           {"id", nullptr}});
  REQUIRE(run_until(io, [&] { return since_params.size() == 3 && c.is_connected(); }));
  CHECK(since_params[2][3] == std::string(kZeroUuid));  // not resumable any more
  CHECK(c.counters().protocol_errors == 1);
  CHECK(c.counters().full_loads == 2);
  CHECK(resyncs == 2);
  CHECK((*c.replica().row("Item", kUuidA))["name"] == "one");
}

TEST_CASE("fake server: stray replies and notifications are counted and not fatal",
          "[ovsdb][fake]") {
  TempDir dir;
  asio::io_context io;
  FakeServer fs(io, dir.file("s.sock"));
  fs.on_connect = [&] {
    fs.send(reply(999, Json::array()));                                                // no request
    fs.send(Json{{"method", "update2"}, {"params", {"other", {}}}, {"id", nullptr}});  // no monitor
    fs.send(Json{{"result", 1}});                                                      // no id
    fs.send(Json{{"method", "locked"}, {"params", {"lock"}}, {"id", nullptr}});        // ignored
  };
  Client c = make_client(io, rpc_only(dir.file("s.sock")));
  c.start();
  REQUIRE(run_until(io, [&] { return c.counters().messages_in >= 4; }));
  run_for(io, 50ms);
  CHECK(c.counters().protocol_errors == 3);
  CHECK(c.is_connected());
  CHECK(c.counters().disconnects == 0);
}

TEST_CASE("client: bad options are refused by create()", "[ovsdb][client]") {
  asio::io_context io;
  ClientOptions o;
  CHECK(Client::create(io.get_executor(), o).error().code == Errc::kInvalidArgument);
  o.remotes = {"unix:/tmp/x.sock"};
  o.backoff_min = std::chrono::milliseconds(0);
  CHECK_FALSE(Client::create(io.get_executor(), o));
  o.backoff_min = std::chrono::milliseconds(100);
  o.backoff_max = std::chrono::milliseconds(50);
  CHECK_FALSE(Client::create(io.get_executor(), o));
  o.backoff_max = std::chrono::milliseconds(500);
  o.remotes = {"tcp:localhost:6641"};
  auto r = Client::create(io.get_executor(), o);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("localhost"));
}

TEST_CASE(
    "fake server: the _Server row decides: stale members are left and a change drops the "
    "session",
    "[ovsdb][fake]") {
  TempDir dir;
  asio::io_context io;
  FakeServer fs(io, dir.file("s.sock"));
  const Json server_schema = Json::parse(R"({"name":"_Server","version":"1.2.0","tables":{
      "Database":{"columns":{"name":{"type":"string"},"model":{"type":"string"},
        "connected":{"type":"boolean"},"leader":{"type":"boolean"},
        "schema":{"type":{"key":"string","min":0}},"index":{"type":{"key":"integer","min":0}},
        "cid":{"type":{"key":"uuid","min":0}},"sid":{"type":{"key":"uuid","min":0}}}}}})");
  // The index each connection's _Server row reports: 10, then 8 (behind), then 11.
  const std::vector<int> indexes = {10, 8, 11};
  std::vector<Json> server_monitors;
  int data_schema_requests = 0;
  fs.on_message = [&](const Json& m) {
    const std::string method = m.value("method", "");
    const Json& p = m["params"];
    if (method == "get_schema" && p[0] == "_Server") {
      fs.send(reply(m["id"], server_schema));
    } else if (method == "get_schema") {
      ++data_schema_requests;
      fs.send(reply(m["id"], kTinySchema));
    } else if (method == "monitor_cond" && p[0] == "_Server") {
      server_monitors.push_back(p);
      const int index = indexes[std::min(server_monitors.size(), indexes.size()) - 1];
      fs.send(reply(m["id"], Json{{"Database",
                                   {{kUuidA,
                                     {{"initial",
                                       {{"name", "T"},
                                        {"model", "clustered"},
                                        {"connected", true},
                                        {"leader", true},
                                        {"index", index},
                                        {"schema", kTinySchema.dump()},
                                        {"cid", Json::array({"uuid", kTxn1})}}}}}}}}));
    } else if (method == "monitor_cond_since") {
      fs.send(reply(m["id"], Json::array({false, kTxn1, Json::object()})));
    } else if (method == "echo") {
      fs.send(reply(m["id"], p));
    }
  };
  ClientOptions o = monitored(dir.file("s.sock"));
  Client c = make_client(io, o);
  c.start();
  REQUIRE(run_until(io, [&] { return c.is_connected(); }));
  REQUIRE(server_monitors.size() == 1);
  // Only the row of our database, and only the columns the client reads.
  CHECK(server_monitors[0][1] == "gl-server");
  CHECK(server_monitors[0][2]["Database"][0]["where"] == Json::parse(R"([["name","==","T"]])"));
  CHECK(server_monitors[0][2]["Database"][0]["columns"].size() == 8);
  CHECK(data_schema_requests == 0);  // the schema came with the _Server row
  CHECK(c.server_db().index == 10u);
  CHECK(c.server_db().cid == kTxn1);

  // The row changes: the index moves on (nothing to do), then leadership is lost.
  auto update = [&](const Json& modify) {
    fs.send(Json{
        {"method", "update2"},
        {"params", Json::array({"gl-server", {{"Database", {{kUuidA, {{"modify", modify}}}}}}})},
        {"id", nullptr}});
  };
  update({{"index", 12}});
  REQUIRE(run_until(io, [&] { return c.counters().server_updates == 1; }));
  CHECK(c.is_connected());
  CHECK(c.server_db().index == 12u);
  update({{"leader", false}});
  REQUIRE(run_until(io, [&] { return c.counters().skips(Skip::kNotLeader) == 1; }));
  CHECK(c.last_skip() == "unix:" + dir.file("s.sock") + ": not the leader");
  // Next connection: index 8 < 12 already seen: stale, left. The one after: 11 < 12 too.
  REQUIRE(run_until(io, [&] { return c.counters().skips(Skip::kStale) >= 2; }));
  CHECK_FALSE(c.is_connected());
  CHECK_THAT(c.last_skip(), Catch::EndsWith("stale data (index 11, already saw 12)"));
  CHECK(c.counters().protocol_errors == 0);
}
