// daemon_test.cpp — glctld's loop (control/glctld/daemon.hpp) against Debian's real
// ovsdb-server (the OVSDB tests' harness) and a scripted gldp (fake_gldp.hpp), seen through
// its management API: changes installed, a bad desired state rejected with the running
// policy kept, missing ports picked up, gldp restarts, an OVSDB outage; and the management
// socket itself (JSON lines, errors, several requests on one connection, a second daemon).
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "control/glctld/daemon.hpp"
#include "control/glctld/mgmt.hpp"
#include "fake_gldp.hpp"
#include "ovsdb_harness.hpp"

using namespace gl;
using namespace gl::glctld;
using gl::glctld::test::FakeGldp;
using gl::glctld::test::FakeLink;
using gl::ovsdb::test::OvsdbServer;
using gl::ovsdb::test::TempDir;
using Json = nlohmann::json;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// A glctld for host hv1 on a real ovsdb-server and a fake gldp, its io_context on a thread.
class Rig {
 public:
  Rig() : g(std::make_shared<FakeGldp>()) {
    g->add_port("vnet1", 1);
    g->add_port("vnet2", 2);
    REQUIRE(log.open(dir.file("glctld.log")));
    log.set_min_level(LogLevel::kDebug);
    DaemonOptions o;
    o.db_remotes = {server.remote()};
    o.host = "hv1";
    o.gldp_socket = "(fake)";
    o.mgmt_socket = mgmt();
    o.dp.interval = 50ms;
    o.dp.backoff_min = 10ms;
    o.dp.backoff_max = 100ms;
    o.db_backoff_min = 20ms;
    o.db_backoff_max = 200ms;
    o.db_probe_interval = 1000ms;
    o.make_link = [gg = g] { return std::make_unique<FakeLink>(gg); };
    auto d = Daemon::create(io, o, log);
    INFO((d ? "" : d.error()));
    REQUIRE(d);
    daemon = std::move(*d);
    daemon->start();
    thread = std::thread([this] { io.run(); });
  }
  ~Rig() {
    asio::post(io, [this] { daemon->stop(); });
    thread.join();
    daemon.reset();
  }

  std::string mgmt() const { return dir.file("glctld.sock"); }
  Json ask(const Json& request) {
    auto r = mgmt_call(mgmt(), request, 5s);
    INFO((r ? "" : r.error()));
    REQUIRE(r);
    return *r;
  }
  Json status() { return ask(Json{{"cmd", "status"}}); }
  std::string log_text() const {
    auto r = gl::ovsdb::test::run_command({"/bin/cat", dir.file("glctld.log")});
    return r.output;
  }

  TempDir dir;
  OvsdbServer server;
  std::shared_ptr<FakeGldp> g;
  Logger log;
  asio::io_context io;
  std::unique_ptr<Daemon> daemon;
  std::thread thread;
};

const char* kBaseState = R"(["Goldilocks",
  {"op":"insert","table":"Goldilocks","row":{"conn_limit":10}},
  {"op":"insert","table":"Workload","row":{"name":"web1","host":"hv1","port":"vnet1",
    "mac":"02:00:00:00:00:01","ips":"10.0.0.1","labels":["map",[["app","web"]]]}},
  {"op":"insert","table":"Workload","row":{"name":"db1","host":"hv1","port":"vnet2",
    "mac":"02:00:00:00:00:02","ips":"10.0.0.2","labels":["map",[["app","db"]]]}},
  {"op":"insert","table":"Workload","row":{"name":"web2","host":"hv2","port":"vnet1",
    "mac":"02:00:00:00:00:03","ips":"10.0.1.1","labels":["map",[["app","web"]]]}},
  {"op":"insert","table":"Rule","row":{"rule_id":1,"priority":100,"from":"app=web",
    "to":"app=db","protocol":"tcp","ports":"5432","action":"allow","log":true}}])";

}  // namespace

TEST_CASE("daemon: the desired state in OVSDB is compiled and installed, and kept installed",
          "[glctld][daemon]") {
  Rig rig;

  // An empty database is a valid desired state: a version with no ports.
  REQUIRE(eventually([&] { return rig.g->install_count() == 1; }));
  CHECK(rig.g->last_install()->ports.empty());
  REQUIRE(eventually([&] { return rig.status()["in_force"] == true; }));

  // Workloads and a rule: hv1's two ports, the whole cluster's addresses.
  rig.server.client_transact(kBaseState);
  REQUIRE(eventually([&] {
    auto i = rig.g->last_install();
    return i && i->ports.size() == 2;
  }));
  auto inst = *rig.g->last_install();
  CHECK(inst.ipcache.size() == 3);
  CHECK(inst.ports[0].port_no == 2);  // db1 on vnet2
  CHECK(inst.ports[0].conn_limit == 10);
  CHECK(inst.ports[1].port_no == 1);  // web1 on vnet1
  REQUIRE(eventually([&] { return rig.status()["generation"] == inst.generation; }));
  Json s = rig.status();
  INFO(s.dump(2));
  CHECK(s["host"] == "hv1");
  CHECK(s["policy"] == "accepted");
  CHECK(s["in_force"] == true);
  CHECK(s["policy_generation"] == inst.generation);
  CHECK(s["errors"].empty());
  CHECK(s["ovsdb"]["state"] == "connected");
  CHECK(s["ovsdb"]["remote"] == rig.server.remote());
  CHECK(s["gldp"]["reachable"] == true);
  CHECK(s["gldp"]["socket"] == "(fake)");
  CHECK(s["workloads"] == 3);
  CHECK(s["local_workloads"] == 2);
  CHECK(s["rules"] == 1);
  CHECK(s["identities"] == 4);  // world + three workloads
  CHECK(s["ports"] == 2);
  CHECK(s["prefixes"] == 3);
  CHECK(s["last_push"].is_string());
  const uint64_t good_generation = inst.generation;
  const size_t installs = rig.g->install_count();

  Json compiled = rig.ask(Json{{"cmd", "compiled"}});
  CHECK(compiled["generation"] == good_generation);
  const std::string text = compiled["text"];
  CHECK(text.find("policy generation " + std::to_string(good_generation) + " host hv1") == 0);
  CHECK(text.find("port vnet1 workload web1") != std::string::npos);
  CHECK(text.find("rule 1 priority 100") != std::string::npos);
  Json ids = rig.ask(Json{{"cmd", "identities"}});
  REQUIRE(ids["identities"].size() == 4);
  CHECK(ids["identities"][0]["kind"] == "world");
  CHECK(ids["identities"][1]["kind"] == "workload");

  // A bad desired state (a duplicate address, written behind glctl's back): rejected, the
  // problems reported, the running policy untouched.
  rig.server.client_transact(R"(["Goldilocks",
    {"op":"insert","table":"Workload","row":{"name":"w3","host":"hv1","port":"vnet3",
     "mac":"02:00:00:00:00:09","ips":"10.0.0.1"}}])");
  REQUIRE(eventually([&] { return rig.status()["policy"] == "rejected"; }));
  s = rig.status();
  REQUIRE(s["errors"].size() == 1);
  CHECK(s["errors"][0] == "workload web1: ips: \"10.0.0.1\": already used by workload w3");
  CHECK(s["generation"] == good_generation);
  CHECK(s["rejected_at"].is_string());
  std::this_thread::sleep_for(300ms);
  CHECK(rig.g->install_count() == installs);
  CHECK(rig.g->current_generation() == good_generation);
  CHECK(rig.ask(Json{{"cmd", "compiled"}})["generation"] == good_generation);
  CHECK(rig.log_text().find("desired state rejected (1 problem)") != std::string::npos);

  // Undone: accepted again; the compiled version is the one in force, nothing installed.
  rig.server.client_transact(
      R"(["Goldilocks",{"op":"delete","table":"Workload","where":[["name","==","w3"]]}])");
  REQUIRE(eventually([&] { return rig.status()["policy"] == "accepted"; }));
  std::this_thread::sleep_for(300ms);
  CHECK(rig.g->install_count() == installs);
  CHECK(rig.status()["errors"].empty());

  // A local workload whose port gldp does not have: left out, reported; installed when the
  // port appears.
  rig.server.client_transact(R"(["Goldilocks",
    {"op":"insert","table":"Workload","row":{"name":"app1","host":"hv1","port":"vnet7",
     "mac":"02:00:00:00:00:07","ips":"10.0.0.7","labels":["map",[["app","db"]]]}}])");
  REQUIRE(eventually([&] { return rig.g->last_install()->ipcache.size() == 4; }));
  CHECK(rig.g->last_install()->ports.size() == 2);
  REQUIRE(eventually([&] { return rig.status()["gldp"]["missing_ports"].size() == 1; }));
  s = rig.status();
  CHECK(s["gldp"]["missing_ports"][0]["workload"] == "app1");
  CHECK(s["gldp"]["missing_ports"][0]["port"] == "vnet7");
  CHECK(s["local_workloads"] == 3);
  CHECK(s["ports"] == 2);
  rig.g->add_port("vnet7", 7);
  REQUIRE(eventually([&] { return rig.g->last_install()->ports.size() == 3; }));
  REQUIRE(eventually([&] { return rig.status()["gldp"]["missing_ports"].empty(); }));

  // gldp restarts: the policy goes in again, under a higher generation.
  uint64_t before = rig.g->current_generation();
  rig.g->restart();
  REQUIRE(eventually([&] { return rig.g->current_generation() > before; }));
  CHECK(rig.g->last_install()->ports.size() == 3);
  REQUIRE(eventually([&] { return rig.status()["generation"] == rig.g->current_generation(); }));
  CHECK(rig.log_text().find("gldp restarted") != std::string::npos);

  // gldp down: reported unreachable; glctld keeps trying.
  rig.g->set_up(false);
  REQUIRE(eventually([&] { return rig.status()["gldp"]["reachable"] == false; }));
  CHECK_FALSE(rig.status()["gldp"]["error"].get<std::string>().empty());
  rig.g->set_up(true);
  REQUIRE(eventually([&] { return rig.status()["gldp"]["reachable"] == true; }));

  // The database goes away: nothing changes in gldp; back, a change is applied.
  before = rig.g->current_generation();
  const size_t n_before = rig.g->install_count();
  rig.server.kill();
  REQUIRE(eventually([&] { return rig.status()["ovsdb"]["state"] != "connected"; }));
  std::this_thread::sleep_for(300ms);
  CHECK(rig.g->install_count() == n_before);
  CHECK(rig.status()["policy"] == "accepted");
  rig.server.start();
  REQUIRE(eventually([&] { return rig.status()["ovsdb"]["state"] == "connected"; }));
  rig.server.client_transact(R"(["Goldilocks",
    {"op":"insert","table":"Rule","row":{"rule_id":2,"priority":10,"from":"any",
     "to":"app=web","protocol":"icmp","ports":"","action":"allow","log":false}}])");
  REQUIRE(eventually([&] { return rig.g->current_generation() > before; }));
  REQUIRE(eventually([&] { return rig.status()["rules"] == 2; }));
}

TEST_CASE("daemon: management requests that are not understood get errors naming the problem",
          "[glctld][daemon][mgmt]") {
  Rig rig;
  Json r = rig.ask(Json{{"cmd", "reboot"}});
  CHECK(r["error"] ==
        "unknown command \"reboot\" (status, compiled, identities, keys, rule-stats, conntrack, "
        "flush-conntrack, trace)");
  r = rig.ask(Json::object());
  CHECK(r["error"].get<std::string>().find("without \"cmd\"") != std::string::npos);
  r = rig.ask(Json{{"cmd", 5}});
  CHECK(r.contains("error"));
  r = rig.ask(Json::array({1, 2}));
  CHECK(r["error"] == "request is not a JSON object");

  // Raw lines on one connection: garbage, a blank line (ignored), then a good request.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, rig.mgmt().c_str());
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::string out = "not json\n\n{\"cmd\":\"identities\"}\n";
  REQUIRE(::send(fd, out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
  std::string in;
  char buf[4096];
  while (std::count(in.begin(), in.end(), '\n') < 2) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    REQUIRE(n > 0);
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t nl = in.find('\n');
  CHECK(Json::parse(in.substr(0, nl))["error"] == "request is not JSON");
  CHECK(Json::parse(in.substr(nl + 1, in.find('\n', nl + 1) - nl - 1)).contains("identities"));

  // A second glctld on the same management socket is refused; the first keeps serving it.
  Logger quiet;
  REQUIRE(quiet.open(rig.dir.file("second.log")));
  DaemonOptions o;
  o.db_remotes = {rig.server.remote()};
  o.host = "hv1";
  o.mgmt_socket = rig.mgmt();
  asio::io_context io2;
  auto second = Daemon::create(io2, o, quiet);
  REQUIRE_FALSE(second);
  CHECK(second.error().find("another process is listening") != std::string::npos);
  CHECK(rig.status()["host"] == "hv1");
  // Bad options are refused by name.
  o.mgmt_socket = rig.dir.file("other.sock");
  o.db_remotes = {"udp:1.2.3.4:5"};
  auto bad = Daemon::create(io2, o, quiet);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().find("--db") == 0);
}

TEST_CASE("mgmt: the socket is private, answers in order and survives a client that goes away",
          "[glctld][mgmt]") {
  TempDir dir;
  asio::io_context io;
  int n = 0;
  auto server = MgmtServer::create(io.get_executor(), dir.file("m.sock"), [&n](const Json& req) {
    ++n;
    return Json{{"echo", req}, {"n", n}};
  });
  REQUIRE(server);
  struct stat st {};
  REQUIRE(::stat(dir.file("m.sock").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::thread t([&] { io.run(); });
  for (int i = 1; i <= 3; ++i) {
    auto r = mgmt_call(dir.file("m.sock"), Json{{"cmd", "x"}, {"i", i}}, 5s);
    REQUIRE(r);
    CHECK((*r)["echo"]["i"] == i);
    CHECK((*r)["n"] == i);
  }
  // A client that connects and leaves without a word.
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, dir.file("m.sock").c_str());
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
  }
  // An overlong line: an error, then the connection is closed.
  auto big = mgmt_call(dir.file("m.sock"), Json{{"cmd", std::string(kMaxRequest + 10, 'a')}}, 5s);
  REQUIRE(big);
  CHECK((*big)["error"].get<std::string>().find("longer than") != std::string::npos);
  CHECK(mgmt_call(dir.file("m.sock"), Json{{"cmd", "y"}}, 5s));
  asio::post(io, [&] { (*server)->close(); });
  t.join();
  CHECK(::access(dir.file("m.sock").c_str(), F_OK) != 0);  // removed on close
  // Nobody there: the error names the socket.
  auto none = mgmt_call(dir.file("m.sock"), Json{{"cmd", "status"}}, 1s);
  REQUIRE_FALSE(none);
  CHECK(none.error().find(dir.file("m.sock")) != std::string::npos);
}

TEST_CASE("daemon: flow export follows the settings row; questions for gldp check their input",
          "[glctld][daemon][flow_export]") {
  Rig rig;
  rig.server.client_transact(kBaseState);
  REQUIRE(eventually([&] {
    auto i = rig.g->last_install();
    return i && i->ports.size() == 2;
  }));
  // No exporter: gldp reports only what rules with `log` decide.
  CHECK(rig.g->last_install()->record == 0);
  const std::string flow_log = rig.dir.file("flows.jsonl");
  rig.server.client_transact(R"(["Goldilocks",
    {"op":"update","table":"Goldilocks","where":[],
     "row":{"flow_log":")" + flow_log +
                             R"(","ipfix_collector":"udp:127.0.0.1:notaport"}}])");
  // A new install asks gldp for every connection and refusal; the log file exists (0640).
  REQUIRE(eventually([&] { return rig.g->last_install()->record == api::kFwRecordAll; }));
  Json st = rig.status();
  CHECK(st["flow_export"]["flow_log"] == flow_log);
  CHECK(st["flow_export"]["polling"] == true);
  struct stat sb {};
  REQUIRE(::stat(flow_log.c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0640);
  // A bad collector is reported, naming the part that is wrong; the file log still works.
  CHECK(st["flow_export"]["ipfix_state"]["error"].get<std::string>().find("port") !=
        std::string::npos);
  CHECK(rig.log_text().find("ipfix:") != std::string::npos);
  // gldp (a fake here, no API socket): the events poll reports it cannot reach it.
  REQUIRE(
      eventually([&] { return !rig.status()["flow_export"]["error"].get<std::string>().empty(); }));

  // Questions that need gldp: bad input is refused before anything is asked ...
  Json r = rig.ask(Json{{"cmd", "trace"}});
  CHECK(r["error"] == "workload: required (a name)");
  r = rig.ask(Json{{"cmd", "trace"}, {"workload", "web1"}, {"direction", "sideways"}});
  CHECK(r["error"] == "direction: from-vm or to-vm");
  r = rig.ask(Json{{"cmd", "trace"}, {"workload", "web2"}, {"direction", "from-vm"}});
  CHECK(r["error"].get<std::string>().find("not on this host (hv1)") != std::string::npos);
  r = rig.ask(Json{{"cmd", "trace"},
                   {"workload", "web1"},
                   {"direction", "from-vm"},
                   {"packet", "tcp,dst=10.0.0.2,tp_dst=99999"}});
  CHECK(r["error"] == "packet: tp_dst: 99999 is over 65535");
  r = rig.ask(Json{{"cmd", "trace"},
                   {"workload", "web1"},
                   {"direction", "from-vm"},
                   {"packet", "dst=10.0.0.2,tp_dst=80"}});
  CHECK(r["error"].get<std::string>().find("no protocol") != std::string::npos);
  r = rig.ask(Json{{"cmd", "conntrack"}, {"workload", "nobody"}});
  CHECK(r["error"].get<std::string>().find("\"nobody\" is not on this host") != std::string::npos);
  r = rig.ask(Json{{"cmd", "conntrack"}, {"max", 0}});
  CHECK(r["error"] == "max: a number of connections, 1..1000000");
  // zone=N (glctl dump-conntrack/flush-conntrack zone=N): 0..65535, not with a workload.
  for (const char* cmd : {"conntrack", "flush-conntrack"}) {
    INFO(cmd);
    for (const Json& bad : {Json(70000), Json(-1), Json("5"), Json(1.5)}) {
      r = rig.ask(Json{{"cmd", cmd}, {"zone", bad}});
      CHECK(r["error"] == "zone: a conntrack zone, 0..65535");
    }
    r = rig.ask(Json{{"cmd", cmd}, {"zone", 2}, {"workload", "web1"}});
    CHECK(r["error"] == "zone: give a workload or a zone, not both");
    // A good zone gets as far as gldp.
    r = rig.ask(Json{{"cmd", cmd}, {"zone", 65535}});
    CHECK(r["error"].get<std::string>().find("gldp at (fake)") != std::string::npos);
  }
  // ... and a gldp that cannot be reached is named in the error, the daemon answers on.
  r = rig.ask(Json{{"cmd", "rule-stats"}});
  CHECK(r["error"].get<std::string>().find("gldp at (fake)") != std::string::npos);
  r = rig.ask(Json{{"cmd", "trace"},
                   {"workload", "web1"},
                   {"direction", "from-vm"},
                   {"packet", "tcp,dst=10.0.0.2,tp_dst=5432"}});
  CHECK(r["error"].get<std::string>().find("gldp at (fake)") != std::string::npos);
  CHECK(rig.status()["host"] == "hv1");

  // Export off again: the next install reports only `log` rules.
  rig.server.client_transact(R"(["Goldilocks",
    {"op":"update","table":"Goldilocks","where":[],
     "row":{"flow_log":["set",[]],"ipfix_collector":["set",[]]}}])");
  REQUIRE(eventually([&] { return rig.g->last_install()->record == 0; }));
  CHECK(rig.status()["flow_export"]["flow_log"].is_null());
}
