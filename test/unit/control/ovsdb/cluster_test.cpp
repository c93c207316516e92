// cluster_test.cpp — gl::ovsdb::Client against a real 3-member Raft cluster of Debian's
// ovsdb-server on 127.0.0.1 (see OvsdbCluster in ovsdb_harness.hpp): the _Server check
// (leader_only, a follower, a member cut off from its cluster), failover to a new leader
// after SIGKILL, and resume with monitor_cond_since on another member.
//
// The figures (failover times) are printed, never asserted.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "control/ovsdb/client.hpp"
#include "control/ovsdb/value.hpp"
#include "ovsdb_harness.hpp"

using namespace gl::ovsdb;
using namespace gl::ovsdb::test;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

long ms_since(Clock::time_point t0) {
  return long(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

// Everything a client reported, and its log lines.
struct Watch {
  std::vector<RowChange> changes;
  int resyncs = 0;
  std::shared_ptr<std::vector<std::string>> log = std::make_shared<std::vector<std::string>>();

  // Options for `remotes` with the log captured here (and echoed with GL_OVSDB_TEST_LOG).
  ClientOptions options(const std::vector<std::string>& remotes) const {
    ClientOptions o = test_options(remotes.front());
    o.remotes = remotes;
    const bool echo = std::getenv("GL_OVSDB_TEST_LOG") != nullptr;
    o.log = [log = log, echo](LogLevel, std::string_view m) {
      log->emplace_back(m);
      if (echo) fprintf(stderr, "[ovsdb] %.*s\n", int(m.size()), m.data());
    };
    return o;
  }
  void attach(Client& c) {
    c.set_change_handler([this](const std::vector<RowChange>& ch) {
      changes.insert(changes.end(), ch.begin(), ch.end());
    });
    c.set_resync_handler([this](const Replica&) { ++resyncs; });
  }
  bool logged(const std::string& text) const {
    for (const std::string& l : *log) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }
  int count(RowChange::Kind k, const std::string& table) const {
    int n = 0;
    for (const auto& c : changes) n += c.kind == k && c.table == table;
    return n;
  }
};

Client make_client(asio::io_context& io, const ClientOptions& o) {
  auto c = Client::create(io.get_executor(), o);
  if (!c) FAIL("Client::create: " << c.error().message);
  return std::move(*c);
}

void require_connected(asio::io_context& io, Client& c, std::chrono::milliseconds t = 10s) {
  const bool ok = run_until(
      io, [&] { return c.is_connected(); }, t);
  INFO("state " << state_name(c.state()) << ", remote " << c.remote() << ", last skip \""
                << c.last_skip() << "\"");
  REQUIRE(ok);
}

// Every member's remote, starting with member `first`.
std::vector<std::string> remotes_from(const OvsdbCluster& cl, size_t first) {
  std::vector<std::string> r;
  for (size_t k = 0; k < cl.size(); ++k) r.push_back(cl.remote((first + k) % cl.size()));
  return r;
}

// Inserts Host rows one transaction each through `c`: enough history for a resume
// (ovsdb-server keeps a transaction while the history holds fewer atoms than the data).
void bulk_hosts(asio::io_context& io, Client& c, const std::string& prefix, int n) {
  int done = 0;
  int failed = 0;
  for (int i = 0; i < n; ++i) {
    Transaction t;
    t.insert("Host", {{"name", prefix + std::to_string(i)}, {"underlay_ip", "192.0.2.9"}});
    c.transact(std::move(t), [&](Result<TransactResult> r) { (r ? done : failed) += 1; });
  }
  REQUIRE(run_until(io, [&] { return done + failed == n; }));
  REQUIRE(failed == 0);
}

const Row* find_host(const Replica& r, const std::string& name) {
  const Table* t = r.table("Host");
  if (!t) return nullptr;
  for (const auto& [uuid, row] : *t) {
    if (row["name"] == name) return &row;
  }
  return nullptr;
}

// A transaction through `c`, retried while the client is between servers.
Result<TransactResult> insert_host(asio::io_context& io, Client& c, const std::string& name,
                                   std::chrono::milliseconds timeout = 15s) {
  const auto deadline = Clock::now() + timeout;
  Result<TransactResult> r = make_error(Errc::kNotConnected, "not tried");
  while (Clock::now() < deadline) {
    if (!run_until(
            io, [&] { return c.is_connected(); },
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()))) {
      break;
    }
    Transaction t;
    t.insert("Host", {{"name", name}});
    r = transact(io, c, std::move(t));
    if (r || (r.error().code != Errc::kNotConnected && r.error().code != Errc::kDisconnected)) {
      return r;
    }
  }
  return r;
}

}  // namespace

TEST_CASE("cluster: with leader_only the client ends on the leader whichever remote is first",
          "[ovsdb][cluster]") {
  OvsdbCluster cl;
  const size_t leader = cl.wait_leader();
  cl.client_transact(leader,
                     R"(["Goldilocks",{"op":"insert","table":"Host","row":{"name":"hv1"}}])");
  asio::io_context io;
  for (size_t first = 0; first < cl.size(); ++first) {
    INFO("remotes from s" << first << ", leader s" << leader);
    Watch w;
    Client c = make_client(io, w.options(remotes_from(cl, first)));
    const auto t0 = Clock::now();
    c.start();
    require_connected(io, c);
    const long took = ms_since(t0);
    const size_t now_leader = cl.wait_leader();
    CHECK(c.remote() == cl.remote(now_leader));
    CHECK(c.server_db().checked);
    CHECK(c.server_db().model == "clustered");
    CHECK(c.server_db().leader);
    CHECK(c.server_db().connected);
    CHECK(c.server_db().index.has_value());
    CHECK(c.replica().row_count() == 1);
    // The followers listed before the leader were left, each with its reason.
    const uint64_t followers_first = (leader + cl.size() - first) % cl.size();
    if (now_leader == leader) {
      CHECK(c.counters().skips(Skip::kNotLeader) == followers_first);
      CHECK(c.counters().skipped_total() == followers_first);
    }
    if (followers_first > 0) {
      CHECK(c.last_skip() == cl.remote((leader + cl.size() - 1) % cl.size()) + ": not the leader");
      CHECK(w.logged(cl.remote(first) + ": not the leader; next attempt in"));
    } else {
      CHECK(c.last_skip().empty());
    }
    CHECK(w.logged(c.remote() + ": clustered leader index"));
    printf(
        "[cluster] leader_only, remotes from s%zu (leader s%zu): on the leader after %ld ms, "
        "%llu follower(s) left\n",
        first, leader, took, static_cast<unsigned long long>(c.counters().skipped_total()));
  }
}

TEST_CASE("cluster: leader_only=false accepts a follower and writes through it",
          "[ovsdb][cluster]") {
  OvsdbCluster cl;
  const size_t leader = cl.wait_leader();
  const size_t follower = (leader + 1) % cl.size();
  asio::io_context io;
  Watch w;
  ClientOptions o = w.options(remotes_from(cl, follower));
  o.leader_only = false;
  Client c = make_client(io, o);
  w.attach(c);
  c.start();
  require_connected(io, c);
  CHECK(c.remote() == cl.remote(follower));
  CHECK(c.counters().skipped_total() == 0);
  CHECK(c.server_db().model == "clustered");
  CHECK_FALSE(c.server_db().leader);
  CHECK(c.server_db().connected);
  CHECK_FALSE(c.server_db().sid.empty());
  CHECK_FALSE(c.server_db().cid.empty());

  // The follower forwards the transaction to the leader; the change comes back to us.
  auto r = insert_host(io, c, "via-follower");
  REQUIRE(r);
  REQUIRE(run_until(io, [&] { return find_host(c.replica(), "via-follower") != nullptr; }));
  CHECK(w.count(RowChange::Kind::kInsert, "Host") == 1);
  CHECK(c.remote() == cl.remote(follower));
  CHECK(c.replica() == fresh_replica(io, cl.remote(leader)));
}

TEST_CASE(
    "cluster: leader killed: the client moves to the new leader, writes through it, and "
    "resumes its replica there",
    "[ovsdb][cluster]") {
  OvsdbCluster cl;
  const size_t leader = cl.wait_leader();
  asio::io_context io;
  Watch w;
  Client c = make_client(io, w.options(remotes_from(cl, leader)));
  w.attach(c);
  c.start();
  require_connected(io, c);
  REQUIRE(c.remote() == cl.remote(leader));
  bulk_hosts(io, c, "bulk", 30);
  REQUIRE(run_until(io, [&] { return c.replica().row_count() == 30; }));
  CHECK(c.counters().full_loads == 1);
  const std::string txn_before = c.replica().last_txn_id();
  CHECK_FALSE(txn_before.empty());

  // 1. SIGKILL the leader while the client runs. A thread notes when cluster/status first
  //    shows the new leader (for the figures only).
  const auto t0 = Clock::now();
  cl.kill(leader);
  std::atomic<long> elected{-1};
  std::thread poll([&] {
    while (ms_since(t0) < 15000 && !cl.leader()) std::this_thread::sleep_for(10ms);
    elected = ms_since(t0);
  });
  const bool moved = run_until(
      io, [&] { return c.is_connected() && c.remote() != cl.remote(leader); }, 15s);
  const long reconnected = ms_since(t0);
  poll.join();
  REQUIRE(moved);
  auto r = insert_host(io, c, "after-failover");
  const long written = ms_since(t0);
  REQUIRE(r);
  const size_t leader2 = cl.wait_leader();
  CHECK(c.remote() == cl.remote(leader2));
  CHECK(c.server_db().leader);
  REQUIRE(run_until(io, [&] { return find_host(c.replica(), "after-failover") != nullptr; }));
  // The transaction id is the cluster's: the new leader resumed the monitor.
  CHECK(c.counters().resumes == 1);
  CHECK(c.counters().full_loads == 1);
  CHECK(w.resyncs == 1);
  CHECK(c.replica() == fresh_replica(io, cl.remote(leader2)));
  printf(
      "[cluster] leader s%zu killed: new leader s%zu in cluster/status after %ld ms; the client "
      "on it after %ld ms, a transaction through it done after %ld ms (%llu server(s) left on "
      "the way, %llu connect failures)\n",
      leader, leader2, elected.load(), reconnected, written,
      static_cast<unsigned long long>(c.counters().skipped_total()),
      static_cast<unsigned long long>(c.counters().connect_failures));

  // 2. The old leader comes back as a follower; the new leader is killed while the client
  //    does not run, and a change is made on the third leader before the client sees it.
  cl.start(leader);
  cl.wait_follower(leader);
  cl.kill(leader2);
  const size_t leader3 = cl.wait_leader();
  cl.client_transact(leader3, R"(["Goldilocks",
      {"op":"insert","table":"Host","row":{"name":"while-away"}},
      {"op":"delete","table":"Host","where":[["name","==","bulk0"]]}])");
  w.changes.clear();
  const uint64_t sessions = c.counters().sessions;
  const auto t1 = Clock::now();
  REQUIRE(run_until(
      io, [&] { return c.counters().sessions > sessions && c.is_connected(); }, 15s));
  const long resumed = ms_since(t1);
  CHECK(c.remote() == cl.remote(leader3));
  CHECK(c.counters().resumes == 2);
  CHECK(c.counters().full_loads == 1);
  CHECK(w.resyncs == 1);
  CHECK(w.count(RowChange::Kind::kInsert, "Host") == 1);
  CHECK(w.count(RowChange::Kind::kDelete, "Host") == 1);
  CHECK(find_host(c.replica(), "while-away") != nullptr);
  CHECK(find_host(c.replica(), "bulk0") == nullptr);
  REQUIRE(insert_host(io, c, "after-second-failover"));
  REQUIRE(
      run_until(io, [&] { return find_host(c.replica(), "after-second-failover") != nullptr; }));
  CHECK(c.replica() == fresh_replica(io, cl.remote(leader3)));
  printf(
      "[cluster] leader s%zu killed while the client was away: resumed on s%zu %ld ms after "
      "the client ran again\n",
      leader2, leader3, resumed);
}

TEST_CASE("cluster: a member cut off from its cluster is left when connected=false appears",
          "[ovsdb][cluster]") {
  OvsdbCluster cl;
  const size_t leader = cl.wait_leader();
  const size_t follower = (leader + 1) % cl.size();
  const size_t other = (leader + 2) % cl.size();
  asio::io_context io;
  Watch w;
  ClientOptions o = w.options(remotes_from(cl, follower));
  o.leader_only = false;
  Client c = make_client(io, o);
  w.attach(c);
  c.start();
  require_connected(io, c);
  REQUIRE(c.remote() == cl.remote(follower));
  REQUIRE(insert_host(io, c, "hv1"));
  REQUIRE(run_until(io, [&] { return c.replica().row_count() == 1; }));

  // The other two die: the follower's elections fail and its _Server row says
  // connected=false; the client leaves it (it would serve stale data).
  const auto t0 = Clock::now();
  cl.kill(leader);
  cl.kill(other);
  REQUIRE(run_until(
      io, [&] { return !c.is_connected(); }, 15s));
  const long left = ms_since(t0);
  CHECK(c.counters().skips(Skip::kDisconnected) == 1);
  CHECK(c.last_skip() == cl.remote(follower) + ": not connected to the cluster");
  CHECK(w.logged(cl.remote(follower) + ": not connected to the cluster; next attempt in"));
  CHECK(c.counters().server_updates >= 1);
  CHECK(c.replica().row_count() == 1);  // the last good state stays readable

  // Alone, it is refused again at every visit, with a back-off after each cycle of the
  // three remotes (50 ms doubling up to 1 s: at most 7 cycles in 2 s).
  const Counters before = c.counters();
  run_for(io, 2000ms);
  const Counters after = c.counters();
  CHECK_FALSE(c.is_connected());
  CHECK(after.skips(Skip::kDisconnected) > before.skips(Skip::kDisconnected));
  CHECK(after.connect_attempts - before.connect_attempts <= 21);
  printf(
      "[cluster] follower cut off: left %ld ms after the two other members were killed; "
      "%llu attempts in the next 2 s, last back-off %llu ms\n",
      left, static_cast<unsigned long long>(after.connect_attempts - before.connect_attempts),
      static_cast<unsigned long long>(after.last_backoff_ms));

  // The cluster comes back: the client follows it again.
  cl.start(leader);
  cl.start(other);
  require_connected(io, c, 20s);
  CHECK(c.server_db().connected);
  REQUIRE(insert_host(io, c, "hv2"));
  REQUIRE(run_until(io, [&] { return find_host(c.replica(), "hv2") != nullptr; }));
  CHECK(c.replica() == fresh_replica(io, cl.remote(cl.wait_leader())));
}

TEST_CASE("cluster: a lone member of a 3-member cluster is never used", "[ovsdb][cluster]") {
  OvsdbCluster cl;
  cl.client_transact(cl.wait_leader(),
                     R"(["Goldilocks",{"op":"insert","table":"Host","row":{"name":"hv1"}}])");
  for (size_t i = 0; i < cl.size(); ++i) cl.kill(i);
  cl.start(0);  // restarted alone: it has the data but never hears from a leader
  asio::io_context io;
  for (bool leader_only : {true, false}) {
    INFO("leader_only " << leader_only);
    Watch w;
    ClientOptions o = w.options({cl.remote(0)});
    o.leader_only = leader_only;
    Client c = make_client(io, o);
    c.start();
    run_for(io, 1500ms);
    CHECK_FALSE(c.is_connected());
    CHECK(c.counters().skips(Skip::kDisconnected) >= 2);
    CHECK(c.counters().skipped_total() == c.counters().skips(Skip::kDisconnected));
    CHECK(c.last_skip() == cl.remote(0) + ": not connected to the cluster");
    CHECK(c.replica().row_count() == 0);  // its (possibly stale) data was never loaded
    CHECK_FALSE(c.server_db().connected);
    // Requests are not sent to a server that was not accepted.
    auto r = await<Json>(io, [&](auto cb) { c.echo(Json::array({"x"}), cb); });
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::kNotConnected);
  }
}

TEST_CASE("cluster: the leader hands over leadership: the client leaves it for the new leader",
          "[ovsdb][cluster]") {
  OvsdbCluster cl;
  const size_t leader = cl.wait_leader();
  asio::io_context io;
  Watch w;
  Client c = make_client(io, w.options(remotes_from(cl, leader)));
  w.attach(c);
  c.start();
  require_connected(io, c);
  REQUIRE(c.remote() == cl.remote(leader));
  bulk_hosts(io, c, "bulk", 30);
  REQUIRE(run_until(io, [&] { return c.replica().row_count() == 30; }));

  // The leader stays up but gives the leadership away: only _Server tells the client.
  const auto t0 = Clock::now();
  REQUIRE(cl.appctl(leader, {"cluster/failure-test", "transfer-leadership"}).status == 0);
  REQUIRE(run_until(
      io, [&] { return c.counters().skips(Skip::kNotLeader) >= 1; }, 10s));
  // (The client asks the other members at once: last_skip() may already be a follower's.)
  CHECK(w.logged(cl.remote(leader) + ": not the leader"));
  REQUIRE(run_until(
      io, [&] { return c.is_connected() && c.remote() != cl.remote(leader); }, 15s));
  const long moved = ms_since(t0);
  const size_t leader2 = cl.wait_leader();
  CHECK(c.remote() == cl.remote(leader2));
  CHECK(c.counters().resumes >= 1);
  CHECK(c.counters().full_loads == 1);
  REQUIRE(insert_host(io, c, "after-transfer"));
  REQUIRE(run_until(io, [&] { return find_host(c.replica(), "after-transfer") != nullptr; }));
  CHECK(c.replica() == fresh_replica(io, cl.remote(leader2)));
  printf("[cluster] leadership transferred from s%zu: client on the new leader s%zu after %ld ms\n",
         leader, leader2, moved);
}
