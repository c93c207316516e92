// ovsdb_harness.cpp — see ovsdb_harness.hpp.
#include "ovsdb_harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <catch2/catch.hpp>

namespace gl::ovsdb::test {

namespace fs = std::filesystem;

namespace {

// Last line of defence against a hung test (every wait has its own deadline): the whole
// binary gets kAlarm seconds; the server children die with it (PR_SET_PDEATHSIG).
constexpr unsigned kAlarm = 300;
[[maybe_unused]] const bool kWatchdog = [] {
  alarm(kAlarm);
  return true;
}();

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// fork + exec with stdout/stderr to `out_path`; the child dies with us (PDEATHSIG).
pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::vector<std::string>& extra_env = {}) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    close_range(3, ~0U, 0);  // no inherited sockets (Asio does not set FD_CLOEXEC)
    for (const std::string& e : extra_env) putenv(const_cast<char*>(e.c_str()));
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// Waits for `pid` up to `timeout`; kills it if still running. Returns the exit status or
// -1.
int reap(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -1;
    }
    std::this_thread::sleep_for(5ms);
  }
}

bool can_connect(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
  close(fd);
  return ok;
}

// A TCP port on 127.0.0.1 that the kernel considers free now (bound to port 0, closed).
uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + strerror(errno));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    close(fd);
    throw std::runtime_error(std::string("bind 127.0.0.1:0: ") + strerror(errno));
  }
  close(fd);
  return ntohs(sa.sin_port);
}

std::vector<std::string> server_env(const std::string& d) {
  return {"OVS_RUNDIR=" + d, "OVS_LOGDIR=" + d, "OVS_DBDIR=" + d, "OVS_SYSCONFDIR=" + d};
}

}  // namespace

// ---- TempDir -------------------------------------------------------------------------------

TempDir::TempDir() {
  std::string tmpl = "/tmp/gl-ovsdb-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error(std::string("mkdtemp: ") + strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  TempDir d;
  const std::string out = d.file("out");
  const pid_t pid = spawn(argv, out);
  CommandResult r;
  r.status = reap(pid, timeout);
  r.output = read_file(out);
  return r;
}

std::string schema_path() {
  return GL_OVSDB_SCHEMA;
}

// ---- OvsdbServer ---------------------------------------------------------------------------

OvsdbServer::OvsdbServer(Options o) : opt_(o) {
  db_ = dir_.file("db.db");
  sock_ = dir_.file("db.sock");
  ctl_ = dir_.file("ovsdb-server.ctl");
  log_ = dir_.file("ovsdb-server.log");
  CommandResult r;
  if (opt_.clustered) {
    r = run_command({GL_OVSDB_TOOL, "--election-timer=100", "create-cluster", db_, schema_path(),
                     "unix:" + dir_.file("raft.sock")});
  } else {
    r = run_command({GL_OVSDB_TOOL, "create", db_, schema_path()});
  }
  if (r.status != 0) throw std::runtime_error("ovsdb-tool create failed: " + r.output);
  start();
}

OvsdbServer::~OvsdbServer() {
  if (pid_ > 0) kill();
}

void OvsdbServer::start() {
  if (pid_ > 0) throw std::runtime_error("ovsdb-server already running");
  std::vector<std::string> argv = {
      GL_OVSDB_SERVER,     "--no-chdir",         "--pidfile=" + dir_.file("ovsdb-server.pid"),
      "--unixctl=" + ctl_, "--log-file=" + log_, "--remote=punix:" + sock_};
  if (opt_.tcp) argv.push_back("--remote=ptcp:0:127.0.0.1");
  argv.push_back(db_);
  const std::string d = dir_.path();
  pid_ = spawn(argv, dir_.file("ovsdb-server.out"), server_env(d));
  paused_ = false;
  wait_ready();
}

void OvsdbServer::wait_ready() {
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  bool sock_ok = false;
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("ovsdb-server exited at start: " + log_text() +
                               read_file(dir_.file("ovsdb-server.out")));
    }
    if (!sock_ok) sock_ok = can_connect(sock_);
    if (sock_ok) {
      if (!opt_.clustered) return;
      // A clustered database serves only once this server is the Raft leader.
      auto r = appctl({"cluster/status", "Goldilocks"});
      if (r.output.find("Role: leader") != std::string::npos) return;
    }
    std::this_thread::sleep_for(20ms);
  }
  throw std::runtime_error("ovsdb-server not ready within 15 s: " + log_text());
}

void OvsdbServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  if (paused_) ::kill(pid_, SIGCONT);
  int st = 0;
  waitpid(pid_, &st, 0);
  pid_ = -1;
  paused_ = false;
}

void OvsdbServer::pause() {
  if (pid_ > 0 && ::kill(pid_, SIGSTOP) == 0) paused_ = true;
}

void OvsdbServer::resume() {
  if (pid_ > 0 && ::kill(pid_, SIGCONT) == 0) paused_ = false;
}

std::string OvsdbServer::tcp_remote() const {
  static const std::regex kPort(R"(127\.0\.0\.1: listening on port (\d+))");
  std::smatch m;
  const std::string text = log_text();
  std::string last;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kPort);
       it != std::sregex_iterator(); ++it) {
    last = (*it)[1];
  }
  if (last.empty()) throw std::runtime_error("no TCP port in the server log: " + text);
  return "tcp:127.0.0.1:" + last;
}

std::string OvsdbServer::client_transact(const std::string& json_ops) {
  auto r = run_command({GL_OVSDB_CLIENT, "--timeout=10", "transact", remote(), json_ops});
  if (r.status != 0) throw std::runtime_error("ovsdb-client transact failed: " + r.output);
  return r.output;
}

CommandResult OvsdbServer::appctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {GL_OVS_APPCTL, "--timeout=10", "-t", ctl_};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

std::string OvsdbServer::log_text() const {
  return read_file(log_);
}

// ---- OvsdbCluster --------------------------------------------------------------------------

OvsdbCluster::OvsdbCluster(Options o) : opt_(o) {
  members_.resize(opt_.members);
  for (size_t i = 0; i < members_.size(); ++i) {
    Member& m = members_[i];
    const std::string n = "s" + std::to_string(i);
    m.db = dir_.file(n + ".db");
    m.sock = dir_.file(n + ".sock");
    m.ctl = dir_.file(n + ".ctl");
    m.log = dir_.file(n + ".log");
    m.raft_port = free_port();
    m.client_port = free_port();
  }
  auto raft = [&](size_t i) { return "tcp:127.0.0.1:" + std::to_string(members_[i].raft_port); };
  auto r = run_command({GL_OVSDB_TOOL, "--election-timer=" + std::to_string(opt_.election_timer_ms),
                        "create-cluster", members_[0].db, schema_path(), raft(0)});
  if (r.status != 0) throw std::runtime_error("ovsdb-tool create-cluster failed: " + r.output);
  try {  // the destructor does not run when the constructor throws
    start(0);
    wait_leader();
    for (size_t i = 1; i < members_.size(); ++i) {
      r = run_command(
          {GL_OVSDB_TOOL, "join-cluster", members_[i].db, "Goldilocks", raft(i), raft(0)});
      if (r.status != 0) throw std::runtime_error("ovsdb-tool join-cluster failed: " + r.output);
      start(i);
    }
    for (size_t i = 1; i < members_.size(); ++i) wait_follower(i);
  } catch (...) {
    for (size_t i = 0; i < members_.size(); ++i) kill(i);
    throw;
  }
}

OvsdbCluster::~OvsdbCluster() {
  for (size_t i = 0; i < members_.size(); ++i) kill(i);
}

void OvsdbCluster::start(size_t i) {
  Member& m = members_.at(i);
  if (m.pid > 0) throw std::runtime_error("member already running");
  std::vector<std::string> argv = {GL_OVSDB_SERVER,
                                   "--no-chdir",
                                   "--unixctl=" + m.ctl,
                                   "--log-file=" + m.log,
                                   "--remote=punix:" + m.sock,
                                   "--remote=ptcp:" + std::to_string(m.client_port) + ":127.0.0.1",
                                   m.db};
  m.pid = spawn(argv, m.log + ".out", server_env(dir_.path()));
  wait_accepting(i);
}

void OvsdbCluster::wait_accepting(size_t i) {
  Member& m = members_[i];
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (waitpid(m.pid, &st, WNOHANG) == m.pid) {
      m.pid = -1;
      throw std::runtime_error("ovsdb-server s" + std::to_string(i) +
                               " exited at start: " + read_file(m.log + ".out") + log_text(i));
    }
    if (can_connect(m.sock)) return;
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error("ovsdb-server s" + std::to_string(i) + " not accepting within 15 s");
}

void OvsdbCluster::kill(size_t i) {
  Member& m = members_.at(i);
  if (m.pid <= 0) return;
  ::kill(m.pid, SIGKILL);
  int st = 0;
  waitpid(m.pid, &st, 0);
  m.pid = -1;
}

std::string OvsdbCluster::remote(size_t i) const {
  return "tcp:127.0.0.1:" + std::to_string(members_.at(i).client_port);
}

CommandResult OvsdbCluster::appctl(size_t i, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {GL_OVS_APPCTL, "--timeout=10", "-t", members_.at(i).ctl};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

std::string OvsdbCluster::status(size_t i) {
  return appctl(i, {"cluster/status", "Goldilocks"}).output;
}

std::optional<size_t> OvsdbCluster::leader() {
  std::optional<size_t> found;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (!running(i)) continue;
    if (status(i).find("Role: leader") != std::string::npos) {
      if (found) return std::nullopt;  // two say so (an old leader not yet told): ask again
      found = i;
    }
  }
  return found;
}

size_t OvsdbCluster::wait_leader(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto l = leader()) return *l;
    std::this_thread::sleep_for(20ms);
  }
  std::string all;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (running(i)) all += "s" + std::to_string(i) + ":\n" + status(i);
  }
  throw std::runtime_error("no Raft leader within the timeout:\n" + all);
}

void OvsdbCluster::wait_follower(size_t i, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string st;
  while (std::chrono::steady_clock::now() < deadline) {
    st = status(i);
    if (st.find("Status: cluster member") != std::string::npos &&
        st.find("Role: follower") != std::string::npos &&
        st.find("Leader: unknown") == std::string::npos &&
        st.find("Leader: self") == std::string::npos) {
      return;
    }
    std::this_thread::sleep_for(20ms);
  }
  throw std::runtime_error("s" + std::to_string(i) + " does not follow a leader:\n" + st);
}

std::string OvsdbCluster::client_transact(size_t i, const std::string& json_ops) {
  auto r = run_command({GL_OVSDB_CLIENT, "--timeout=10", "transact", unix_remote(i), json_ops});
  if (r.status != 0) throw std::runtime_error("ovsdb-client transact failed: " + r.output);
  return r.output;
}

std::string OvsdbCluster::log_text(size_t i) const {
  return read_file(members_.at(i).log);
}

// ---- io helpers ----------------------------------------------------------------------------

bool run_until(boost::asio::io_context& io, const std::function<bool()>& pred,
               std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    if (io.run_for(5ms) == 0) std::this_thread::sleep_for(1ms);
  }
  return true;
}

void run_for(boost::asio::io_context& io, std::chrono::milliseconds d) {
  const auto deadline = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) io.restart();
    if (io.run_for(5ms) == 0) std::this_thread::sleep_for(1ms);
  }
}

Result<TransactResult> transact(boost::asio::io_context& io, Client& c, Transaction t) {
  return await<TransactResult>(io, [&](auto cb) { c.transact(std::move(t), std::move(cb)); });
}

ClientOptions test_options(const std::string& remote) {
  ClientOptions o;
  o.remotes = {remote};
  o.db = "Goldilocks";
  o.probe_interval = 2s;
  o.backoff_min = 50ms;
  o.backoff_max = 1s;
  o.connect_timeout = 2s;
  if (std::getenv("GL_OVSDB_TEST_LOG")) {
    o.log = [](LogLevel, std::string_view m) {
      fprintf(stderr, "[ovsdb] %.*s\n", int(m.size()), m.data());
    };
  }
  return o;
}

Replica fresh_replica(boost::asio::io_context& io, const std::string& remote) {
  auto c = Client::create(io.get_executor(), test_options(remote));
  if (!c) throw std::runtime_error(c.error().message);
  c->start();
  if (!run_until(io, [&] { return c->is_connected(); })) {
    throw std::runtime_error("fresh client did not connect to " + remote);
  }
  return c->replica();
}

}  // namespace gl::ovsdb::test
