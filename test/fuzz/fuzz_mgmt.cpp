// Fuzz target: glctld's management socket (control/glctld/mgmt.cpp: JSON lines over a Unix
// stream socket) and, behind it, the daemon's own request handler (Daemon::handle_async,
// daemon.cpp and daemon_runtime.cpp). An input is one client's byte stream on a fresh
// connection to the real MgmtServer of a real Daemon, everything on one io_context.
//
// The daemon (built once per process, in a temporary directory) has a policy: its OVSDB
// client reads a scripted in-process OVSDB server (get_schema, monitor_cond_since with a
// fixed cluster: workloads web1 and db1 on this host hv1, web2 on hv2, rules with a CIDR),
// its gldp sync thread installs into a scripted gldp (test/unit/control/glctld/
// fake_gldp.hpp), and its key manager has a host key. What stays out: gldp's API socket
// does not exist, so rule-stats, conntrack, flush-conntrack and trace get as far as the
// query thread (argument checks, trace packet parsing) and come back with gldp's error.
//
// Input: byte 0 chooses how the stream is written (0: at once; k: in pieces of at least
// k bytes, each a write of its own, so that lines arrive cut); the rest is the stream,
// where 0xFF F H L stands for the byte F repeated H*256+L times (lines past kMaxRequest
// within libFuzzer's -max_len; 0xFF with fewer than three bytes after it is itself). The
// client writes it, shuts its side down and reads until the server closes.
//
// Checked, beyond "no crash, no sanitizer report":
//  * every complete line that is not blank (nothing but spaces and tabs before the CRs at
//    its end) gets exactly one reply line, in order; blank lines and a last line without
//    '\n' get none;
//  * every reply line is a JSON object, and the one its request calls for: the server's
//    errors for a line that is not JSON or not an object, the handler's for a missing or
//    unknown "cmd" (naming it), and for each command its reply (status: this host;
//    compiled: the policy text; identities; keys: the public key; the commands that ask
//    gldp: an error, as gldp is away);
//  * a line of kMaxRequest bytes or more (before its '\n') gets the "longer than" error
//    and the connection is closed: nothing after it is answered;
//  * the server closes the connection once the client is done, within 5 s (no hang), and
//    keeps serving: the next input's connection is accepted and answered (a leaked
//    session would exhaust kMaxMgmtSessions).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "control/glctld/daemon.hpp"
#include "control/glctld/keys.hpp"
#include "control/glctld/log.hpp"
#include "control/glctld/mgmt.hpp"
#include "control/ovsdb/framer.hpp"
#include "fake_gldp.hpp"

namespace asio = boost::asio;
using Json = nlohmann::json;
using Local = asio::local::stream_protocol;
using namespace std::chrono_literals;
using gl::glctld::kMaxRequest;

namespace {

constexpr size_t kMaxStream = 3 * kMaxRequest;  // expansion stops there
constexpr auto kHang = 5s;                      // a connection not closed by then: a hang

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "gl-fuzz-mgmt: %s\n", what.c_str());
  std::abort();
}

// ---- a scripted OVSDB server ----------------------------------------------------------------

// Answers what glctld's OVSDB client asks (RFC 7047): no _Server database, the Goldilocks
// schema, one monitor_cond_since with the fixed contents, echo. Nothing changes afterwards.
class FakeOvsdb {
 public:
  FakeOvsdb(asio::io_context& io, const std::string& path, Json schema, Json contents)
      : acceptor_(io), schema_(std::move(schema)), contents_(std::move(contents)) {
    boost::system::error_code ec;
    acceptor_.open(Local(), ec);
    if (!ec) acceptor_.bind(Local::endpoint(path), ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) die("fake ovsdb-server on " + path + ": " + ec.message());
    accept();
  }
  void close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& c : conns_) c->sock.close(ignored);
  }

 private:
  struct Conn {
    explicit Conn(Local::socket s) : sock(std::move(s)) {}
    Local::socket sock;
    gl::ovsdb::JsonFramer framer;
    std::array<char, 4096> buf{};
    std::deque<std::string> out;
    bool writing = false;
  };

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, Local::socket s) {
      if (ec) return;
      conns_.push_back(std::make_shared<Conn>(std::move(s)));
      read(conns_.back());
      accept();
    });
  }
  void read(std::shared_ptr<Conn> c) {
    c->sock.async_read_some(asio::buffer(c->buf),
                            [this, c](boost::system::error_code ec, size_t n) {
                              if (ec) return;
                              std::vector<Json> msgs;
                              if (c->framer.feed(std::string_view(c->buf.data(), n), msgs) !=
                                  gl::ovsdb::JsonFramer::Status::kOk)
                                die("fake ovsdb-server: the client sent something unframeable");
                              for (const Json& m : msgs) answer(c, m);
                              read(c);
                            });
  }
  void answer(const std::shared_ptr<Conn>& c, const Json& m) {
    if (!m.contains("method") || !m.contains("id") || m["id"].is_null()) return;
    const std::string method = m["method"].get<std::string>();
    const Json params = m.value("params", Json::array());
    Json r{{"id", m["id"]}, {"result", nullptr}, {"error", nullptr}};
    if (method == "get_schema" && params == Json::array({"Goldilocks"}))
      r["result"] = schema_;
    else if (method == "monitor_cond_since")
      r["result"] = Json::array({false, "00000000-0000-0000-0000-000000000000", contents_});
    else if (method == "echo")
      r["result"] = params;
    else
      r["error"] = method == "get_schema" ? "unknown database" : "unknown method";
    c->out.push_back(r.dump());
    write(c);
  }
  void write(const std::shared_ptr<Conn>& c) {
    if (c->writing || c->out.empty()) return;
    c->writing = true;
    asio::async_write(c->sock, asio::buffer(c->out.front()),
                      [this, c](boost::system::error_code ec, size_t) {
                        c->writing = false;
                        if (ec) return;
                        c->out.pop_front();
                        write(c);
                      });
  }

  Local::acceptor acceptor_;
  Json schema_, contents_;
  std::vector<std::shared_ptr<Conn>> conns_;
};

// The cluster: hv1 has web1 (vnet1) and db1 (vnet2, IPv4 and IPv6), hv2 has web2; rules
// between labels, from a CIDR (a CIDR identity), a group.
Json cluster() {
  auto row = [](const char* uuid, Json cols) { return Json{{uuid, {{"initial", cols}}}}; };
  auto labels = [](const char* app) {
    return Json::array({"map", Json::array({Json::array({"app", app})})});
  };
  Json w = row("aaaaaaaa-0000-0000-0000-000000000001", {{"name", "web1"},
                                                        {"host", "hv1"},
                                                        {"port", "vnet1"},
                                                        {"mac", "02:00:00:00:00:01"},
                                                        {"ips", "10.0.0.1"},
                                                        {"labels", labels("web")}});
  w.update(row("aaaaaaaa-0000-0000-0000-000000000002",
               {{"name", "db1"},
                {"host", "hv1"},
                {"port", "vnet2"},
                {"mac", "02:00:00:00:00:02"},
                {"ips", Json::array({"set", Json::array({"10.0.0.2", "fd00::2"})})},
                {"labels", labels("db")}}));
  w.update(row("aaaaaaaa-0000-0000-0000-000000000003", {{"name", "web2"},
                                                        {"host", "hv2"},
                                                        {"port", "vnet1"},
                                                        {"mac", "02:00:00:00:00:03"},
                                                        {"ips", "10.0.1.1"},
                                                        {"labels", labels("web")}}));
  Json rules = row("bbbbbbbb-0000-0000-0000-000000000001", {{"rule_id", 1},
                                                            {"priority", 100},
                                                            {"from", "app=web"},
                                                            {"to", "app=db"},
                                                            {"protocol", "tcp"},
                                                            {"ports", "5432"},
                                                            {"action", "allow"}});
  rules.update(row("bbbbbbbb-0000-0000-0000-000000000002", {{"rule_id", 2},
                                                            {"priority", 50},
                                                            {"from", "192.0.2.0/24"},
                                                            {"to", "app=web"},
                                                            {"protocol", "tcp"},
                                                            {"ports", "443"},
                                                            {"action", "allow"}}));
  rules.update(row("bbbbbbbb-0000-0000-0000-000000000003", {{"rule_id", 3},
                                                            {"priority", 10},
                                                            {"from", "any"},
                                                            {"to", "app=db"},
                                                            {"protocol", "udp"},
                                                            {"ports", "53"},
                                                            {"action", "reject"}}));
  return Json{{"Goldilocks", row("cccccccc-0000-0000-0000-000000000001", {{"conn_limit", 10}})},
              {"Workload", w},
              {"Group", row("dddddddd-0000-0000-0000-000000000001",
                            {{"name", "dbs"}, {"selector", "app=db"}})},
              {"Rule", rules}};
}

// ---- the daemon under test ------------------------------------------------------------------

struct World {
  std::string dir;
  asio::io_context io;
  std::unique_ptr<FakeOvsdb> db;
  std::shared_ptr<gl::glctld::test::FakeGldp> gldp = std::make_shared<gl::glctld::test::FakeGldp>();
  gl::glctld::Logger log;
  std::unique_ptr<gl::glctld::Daemon> daemon;
  std::string pubkey;

  std::string file(const char* name) const { return dir + "/" + name; }

  World() {
    char tmpl[] = "/tmp/gl-fuzz-mgmt-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) die("mkdtemp");
    dir = tmpl;
    if (auto ok = log.open(file("glctld.log")); !ok) die(ok.error());
    log.set_min_level(gl::glctld::LogLevel::kWarn);
    std::ifstream f(GL_OVSDB_SCHEMA);
    std::stringstream schema;
    schema << f.rdbuf();
    db = std::make_unique<FakeOvsdb>(io, file("db.sock"), Json::parse(schema.str()), cluster());
    auto key = gl::glctld::create_host_key(file("host.key"));
    if (!key) die(key.error());
    pubkey = gl::glctld::key_to_base64(key->pub);
    gldp->add_port("vnet1", 1);
    gldp->add_port("vnet2", 2);

    gl::glctld::DaemonOptions o;
    o.db_remotes = {"unix:" + file("db.sock")};
    o.host = "hv1";
    o.gldp_socket = file("gldp.sock");  // nobody there: the runtime questions fail
    o.mgmt_socket = file("glctld.sock");
    o.debounce = 1ms;
    o.event_poll = 1h;
    o.make_link = [g = gldp] { return std::make_unique<gl::glctld::test::FakeLink>(g); };
    o.keys.key_file = file("host.key");
    auto d = gl::glctld::Daemon::create(io, o, log);
    if (!d) die("daemon: " + d.error());
    daemon = std::move(*d);
    daemon->start();

    // Until the policy is compiled and installed, with both local ports known.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      io.run_one_for(10ms);
      const Json s = daemon->handle(Json{{"cmd", "status"}});
      if (s["policy"] == "accepted" && s["in_force"] == true && s["ports"] == 2) break;
      if (std::chrono::steady_clock::now() > deadline)
        die("the daemon never got ready: " + s.dump());
    }
  }

  ~World() {
    daemon->stop();  // joins its threads, closes the management socket
    db->close();
    io.poll();
    daemon.reset();
    db.reset();
    for (const char* f : {"glctld.log", "host.key", "db.sock", "glctld.sock"})
      ::unlink(file(f).c_str());
    ::rmdir(dir.c_str());
  }
};

World& world() {
  static World w;
  return w;
}

// ---- the oracle -------------------------------------------------------------------------------

// What the reply to one line must be.
struct Expect {
  enum Kind {
    kNotJson,
    kNotObject,
    kNoCmd,
    kUnknown,
    kStatus,
    kCompiled,
    kIdentities,
    kKeys,
    kAsksGldp,
    kTooLong
  } kind;
  std::string name;  // kUnknown: the command
};

const char* kind_name(Expect::Kind k) {
  static constexpr const char* kNames[] = {"not-json",  "not-object", "no-cmd",     "unknown",
                                           "status",    "compiled",   "identities", "keys",
                                           "asks-gldp", "too-long"};
  return kNames[k];
}

// The server's reading of the stream: lines up to '\n'; a line of kMaxRequest bytes or more
// (complete or not) ends the conversation with an error; blank lines are skipped; an
// incomplete last line is not answered.
std::vector<Expect> expected(std::string_view stream) {
  std::vector<Expect> out;
  size_t pos = 0;
  while (pos < stream.size()) {
    const size_t nl = stream.find('\n', pos);
    const size_t len = (nl == std::string_view::npos ? stream.size() : nl) - pos;
    if (len >= kMaxRequest) {
      out.push_back({Expect::kTooLong, {}});
      break;
    }
    if (nl == std::string_view::npos) break;
    std::string_view text = stream.substr(pos, len);
    pos = nl + 1;
    while (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.find_first_not_of(" \t") == std::string_view::npos) continue;
    const Json req = Json::parse(text, nullptr, false);
    if (req.is_discarded()) {
      out.push_back({Expect::kNotJson, {}});
      continue;
    }
    if (!req.is_object()) {
      out.push_back({Expect::kNotObject, {}});
      continue;
    }
    auto cmd = req.find("cmd");
    if (cmd == req.end() || !cmd->is_string()) {
      out.push_back({Expect::kNoCmd, {}});
      continue;
    }
    const std::string name = cmd->get<std::string>();
    Expect e{Expect::kUnknown, name};
    if (name == "status") e.kind = Expect::kStatus;
    if (name == "compiled") e.kind = Expect::kCompiled;
    if (name == "identities") e.kind = Expect::kIdentities;
    if (name == "keys") e.kind = Expect::kKeys;
    if (name == "rule-stats" || name == "conntrack" || name == "flush-conntrack" || name == "trace")
      e.kind = Expect::kAsksGldp;
    out.push_back(std::move(e));
  }
  return out;
}

bool starts_with(const Json& j, const char* key, std::string_view prefix) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() &&
         std::string_view(it->get_ref<const std::string&>()).substr(0, prefix.size()) == prefix;
}

// True when `r` is the reply `e` calls for.
bool matches_or_throws(const Expect& e, const Json& r, const std::string& pubkey) {
  auto error_only = [&](const char* text) { return r == Json{{"error", text}}; };
  switch (e.kind) {
    case Expect::kNotJson:
      return error_only("request is not JSON");
    case Expect::kNotObject:
      return error_only("request is not a JSON object");
    case Expect::kNoCmd:
      return r.size() == 1 && starts_with(r, "error", "request without \"cmd\" (a string): status");
    case Expect::kUnknown:
      return r.size() == 1 && starts_with(r, "error", "unknown command \"" + e.name + "\" (status");
    case Expect::kStatus:
      return !r.contains("error") && r.value("host", "") == "hv1" && r.contains("ovsdb") &&
             r["ovsdb"].value("state", "") == "connected" && r.value("policy", "") == "accepted";
    case Expect::kCompiled:
      return !r.contains("error") && starts_with(r, "text", "policy generation ");
    case Expect::kIdentities:
      return !r.contains("error") && r.contains("identities") && r["identities"].is_array() &&
             r["identities"].size() == 5;  // world, three workloads, one CIDR
    case Expect::kKeys:
      return !r.contains("error") && r.value("pubkey", "") == pubkey &&
             r.value("host", "") == "hv1";
    case Expect::kAsksGldp:
      return starts_with(r, "error", "");
    case Expect::kTooLong:
      return error_only(("request longer than " + std::to_string(kMaxRequest) + " bytes").c_str());
  }
  return false;
}

// GL_FUZZ_STATS=1: how many replies of each kind were checked (the run gets past the
// server's refusals to the commands).
uint64_t checked[Expect::kTooLong + 1] = {};
struct Report {
  ~Report() {
    if (std::getenv("GL_FUZZ_STATS") == nullptr) return;
    std::printf("replies checked:");
    for (int k = 0; k <= Expect::kTooLong; ++k)
      std::printf(" %s %llu", kind_name(static_cast<Expect::Kind>(k)),
                  static_cast<unsigned long long>(checked[k]));
    std::printf("\n");
  }
} report;

bool matches(const Expect& e, const Json& r, const std::string& pubkey) {
  ++checked[e.kind];
  try {
    return matches_or_throws(e, r, pubkey);
  } catch (const Json::exception&) {  // a member of another type than the reply has
    return false;
  }
}

// ---- one conversation -----------------------------------------------------------------------

std::string expand(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && s.size() < kMaxStream; ++i) {
    if (p[i] == 0xff && i + 3 < n) {
      const size_t count = static_cast<size_t>(p[i + 2]) << 8 | p[i + 3];
      s.append(std::min(count, kMaxStream - s.size()), static_cast<char>(p[i + 1]));
      i += 3;
    } else {
      s.push_back(static_cast<char>(p[i]));
    }
  }
  return s;
}

std::string excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 300)) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(c);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", static_cast<unsigned char>(c));
      out += b;
    }
  }
  return s.size() > 300 ? out + "... (" + std::to_string(s.size()) + " bytes)" : out;
}

struct Conversation {
  explicit Conversation(asio::io_context& ctx) : io(ctx), sock(ctx) {}

  asio::io_context& io;
  Local::socket sock;
  std::string stream;
  size_t chunk = 0;  // 0: all at once
  std::string received;
  std::array<char, 16384> buf{};
  bool read_done = false, write_done = false;
  boost::system::error_code read_ec;

  void read() {
    sock.async_read_some(asio::buffer(buf), [this](boost::system::error_code ec, size_t n) {
      if (ec) {
        read_ec = ec;
        read_done = true;
        return;
      }
      received.append(buf.data(), n);
      read();
    });
  }
  void write(size_t off) {
    if (off >= stream.size()) {
      boost::system::error_code ignored;
      sock.shutdown(Local::socket::shutdown_send, ignored);
      write_done = true;
      return;
    }
    const size_t n = chunk == 0 ? stream.size() - off : std::min(chunk, stream.size() - off);
    asio::async_write(sock, asio::buffer(stream.data() + off, n),
                      [this, off, n](boost::system::error_code ec, size_t) {
                        if (ec) {  // the server closed (an over-long line): it stops listening
                          write_done = true;
                          return;
                        }
                        // Let the server read this piece before the next one is written.
                        asio::post(io, [this, off, n] { write(off + n); });
                      });
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  World& w = world();
  Conversation c(w.io);
  c.stream = expand(data + 1, size - 1);
  if (data[0] != 0) c.chunk = std::max<size_t>(data[0], (c.stream.size() + 63) / 64);
  boost::system::error_code ec;
  c.sock.connect(Local::endpoint(w.file("glctld.sock")), ec);
  if (ec) die("connect to the management socket: " + ec.message());
  c.read();
  c.write(0);
  if (w.io.stopped()) w.io.restart();
  const auto deadline = std::chrono::steady_clock::now() + kHang;
  while (!(c.read_done && c.write_done)) {
    w.io.run_one_for(100ms);
    if (std::chrono::steady_clock::now() > deadline)
      die("no end to the conversation after 5 s (" + std::to_string(c.received.size()) +
          " bytes received: " + excerpt(c.received) + "); stream: " + excerpt(c.stream));
  }
  if (c.read_ec != asio::error::eof && c.read_ec != asio::error::connection_reset)
    die("reading the replies: " + c.read_ec.message());

  const std::vector<Expect> want = expected(c.stream);
  std::vector<Json> got;
  for (size_t pos = 0; pos < c.received.size();) {
    const size_t nl = c.received.find('\n', pos);
    if (nl == std::string::npos)
      die("a reply without its end of line: " + excerpt(c.received.substr(pos)));
    Json r = Json::parse(std::string_view(c.received).substr(pos, nl - pos), nullptr, false);
    if (r.is_discarded() || !r.is_object())
      die("a reply that is not a JSON object: " + excerpt(c.received.substr(pos, nl - pos)));
    got.push_back(std::move(r));
    pos = nl + 1;
  }
  bool ok = got.size() == want.size();
  for (size_t i = 0; ok && i < got.size(); ++i) ok = matches(want[i], got[i], w.pubkey);
  if (!ok) {
    std::string why = "replies do not answer the requests: expected";
    for (const Expect& e : want) why += std::string(" ") + kind_name(e.kind);
    why += "; got " + std::to_string(got.size()) + ":";
    for (const Json& r : got) why += "\n  " + excerpt(r.dump());
    die(why + "\nstream: " + excerpt(c.stream));
  }
  return 0;
}

// Seeds: each command, well-formed and not; malformed lines; several requests in one
// stream written in small pieces; lines at and past kMaxRequest; deep nesting.
std::vector<std::vector<uint8_t>> fuzz_seeds() {
  auto seed = [](uint8_t chunking, std::string_view text) {
    std::vector<uint8_t> s{chunking};
    s.insert(s.end(), text.begin(), text.end());
    return s;
  };
  // 0xFF F H L: F repeated H*256+L times.
  auto rep = [](char f, unsigned n) {
    return std::string{'\xff', f, static_cast<char>(n >> 8), static_cast<char>(n & 0xff)};
  };
  const std::string status = R"({"cmd":"status"})";
  std::vector<std::vector<uint8_t>> s;
  for (
      const char* line : {
          R"({"cmd":"status"})",
          R"({"cmd":"compiled"})",
          R"({"cmd":"identities"})",
          R"({"cmd":"keys"})",
          R"({"cmd":"rule-stats"})",
          R"({"cmd":"conntrack"})",
          R"({"cmd":"conntrack","workload":"web1","max":5})",
          R"({"cmd":"conntrack","workload":"nobody"})",
          R"({"cmd":"conntrack","workload":7})",
          R"({"cmd":"conntrack","max":0})",
          R"({"cmd":"conntrack","max":-1.5})",
          R"({"cmd":"flush-conntrack","workload":"db1"})",
          R"({"cmd":"flush-conntrack","workload":null})",
          R"({"cmd":"trace","workload":"web1","direction":"from-vm","packet":"tcp,dst=10.0.0.2,tp_dst=5432"})",
          R"({"cmd":"trace","workload":"db1","direction":"to-vm","packet":"udp,src=10.0.1.1,tp_src=53,tp_dst=53"})",
          R"({"cmd":"trace","workload":"db1","direction":"from-vm","packet":"icmp6,ipv6_src=fd00::2,ipv6_dst=fd00::9,icmp_type=128,icmp_code=0,icmp_id=7"})",
          R"({"cmd":"trace","workload":"web1","direction":"from-vm","packet":"proto=132,nw_dst=192.0.2.7,tp_dst=443,dl_src=02:00:00:00:00:09"})",
          R"({"cmd":"trace","workload":"web1","direction":"from-vm","packet":"tcp,udp,dst=10.0.0.2"})",
          R"({"cmd":"trace","workload":"web1","direction":"from-vm","packet":"tcp,dst=fd00::2,tp_dst=99999"})",
          R"({"cmd":"trace","workload":"web1","direction":"sideways"})",
          R"({"cmd":"trace","workload":"web2","direction":"to-vm","packet":"icmp"})",
          R"({"cmd":"trace"})",
          R"({"cmd":"reboot"})",
          R"({"cmd":"st\u0000atus"})",
          R"({"cmd":5})",
          R"({"cmd":["status"]})",
          R"({})",
          R"([{"cmd":"status"}])",
          R"("status")",
          R"(not json)",
          R"({"cmd":"status"} trailing)",
          R"({"cmd":"status","cmd":"keys"})",
          "{\"cmd\":\"\xc3\x28\"}",
          R"({"cmd":"status","n":1e999})",
      })
    s.push_back(seed(0, std::string(line) + "\n"));
  // Blank lines, CRs, a last line without its end.
  s.push_back(seed(0, "\n \t\r\n\r\r\n" + status + "\r\n\r \n" + status));
  // Several requests on one connection, written in pieces of a byte or a few.
  s.push_back(seed(1, status + "\n{\"cmd\":\"rule-stats\"}\n{\"cmd\":\"identities\"}\nnope\n"));
  s.push_back(seed(
      7,
      R"({"cmd":"keys"})"
      "\n"
      R"({"cmd":"trace","workload":"web1","direction":"from-vm","packet":"tcp,dst=10.0.0.2,tp_dst=5432"})"
      "\n" +
          status + "\n"));
  // The longest line answered (kMaxRequest - 1 bytes before '\n', a valid request) and the
  // shortest refused, each followed by a request that is (or is not) answered.
  const std::string head = R"({"cmd":"status",)", tail = R"("x":1})";
  const unsigned pad = kMaxRequest - 1 - head.size() - tail.size();
  s.push_back(seed(0, head + rep(' ', pad) + tail + "\n" + status + "\n"));
  s.push_back(seed(0, status + "\n" + head + rep(' ', pad + 1) + tail + "\n" + status + "\n"));
  s.push_back(seed(200, rep('x', 65535) + "x"));
  // Deep nesting: inside a request, as the whole line, and unbalanced.
  s.push_back(seed(0, R"({"cmd":"identities","x":)" + rep('[', 20000) + rep(']', 20000) + "}\n"));
  s.push_back(seed(0, rep('[', 30000) + rep(']', 30000) + "\n"));
  s.push_back(seed(0, R"({"cmd":"status","x":)" + rep('[', 30000) + "\n" + status + "\n"));
  return s;
}
