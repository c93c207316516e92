// ovsdb_harness.hpp — helpers for the gl_ovsdb tests: a temporary directory, a real
// ovsdb-server (Debian's) started in it on a unix socket, synchronous command runs
// (ovsdb-tool, ovsdb-client, ovs-appctl) with timeouts, and io_context loops with
// deadlines so that no test can hang.
//
// Every resource is an RAII guard: the server is killed by its pid (never by name) and
// the directory removed when the test ends, also when it fails (Catch2 REQUIRE throws).
// The server is our child with PR_SET_PDEATHSIG, so it dies with the test binary even if
// that crashes.
// Thread-safety: single-threaded tests. Complexity: n/a.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "control/ovsdb/client.hpp"

namespace gl::ovsdb::test {

using namespace std::chrono_literals;

// A fresh directory under /tmp, removed recursively on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int status = -1;     // exit status; -1 if killed or timed out
  std::string output;  // stdout and stderr
};

// Runs argv[0] (a path) with a timeout; the child is killed if it runs over.
CommandResult run_command(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = 20s);

// The Goldilocks schema file in the source tree.
std::string schema_path();

class OvsdbServer {
 public:
  struct Options {
    bool clustered = false;  // a one-server Raft cluster instead of a standalone file
    bool tcp = false;        // also listen on ptcp:0:127.0.0.1 (port read from the log)
  };
  explicit OvsdbServer(Options o);
  OvsdbServer() : OvsdbServer(Options{}) {}
  ~OvsdbServer();
  OvsdbServer(const OvsdbServer&) = delete;
  OvsdbServer& operator=(const OvsdbServer&) = delete;

  // Starts ovsdb-server on the database file and waits until it serves requests.
  void start();
  // SIGKILL and reap (the socket file stays behind, as after a crash).
  void kill();
  void pause();   // SIGSTOP
  void resume();  // SIGCONT
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  std::string remote() const { return "unix:" + sock_; }
  const std::string& socket_path() const { return sock_; }
  const std::string& db_path() const { return db_; }
  const TempDir& dir() const { return dir_; }
  // "tcp:127.0.0.1:PORT" of the running server (Options::tcp).
  std::string tcp_remote() const;

  // ovsdb-client transact on the running server; returns its output (the results).
  std::string client_transact(const std::string& json_ops);
  // ovs-appctl -t <server's unixctl> args...
  CommandResult appctl(const std::vector<std::string>& args);
  std::string log_text() const;

 private:
  void wait_ready();

  Options opt_;
  TempDir dir_;
  std::string db_;
  std::string sock_;
  std::string ctl_;
  std::string log_;
  pid_t pid_ = -1;
  bool paused_ = false;
};

// A Raft cluster of ovsdb-servers on 127.0.0.1, all our children, in one temp dir:
// member i has its own database file, unix socket, unixctl socket and log, a Raft port and
// a client port ("tcp:127.0.0.1:PORT", fixed for the cluster's life so that a restarted
// member keeps its remote). The ports are chosen by the kernel (bind to port 0) when the
// cluster is made. Members are killed by pid on destruction (and die with the test binary:
// PR_SET_PDEATHSIG).
class OvsdbCluster {
 public:
  struct Options {
    size_t members = 3;
    int election_timer_ms = 500;  // ovsdb-tool create-cluster --election-timer
  };
  // Creates the cluster (create-cluster, then join-cluster for the others), starts every
  // member and waits until all are members and one is the leader.
  explicit OvsdbCluster(Options o);
  OvsdbCluster() : OvsdbCluster(Options{}) {}
  ~OvsdbCluster();
  OvsdbCluster(const OvsdbCluster&) = delete;
  OvsdbCluster& operator=(const OvsdbCluster&) = delete;

  size_t size() const { return members_.size(); }
  // Starts member i and waits until it accepts connections (not until it joined or leads).
  void start(size_t i);
  void kill(size_t i);  // SIGKILL and reap
  bool running(size_t i) const { return members_[i].pid > 0; }

  std::string remote(size_t i) const;  // "tcp:127.0.0.1:PORT" for clients
  std::string unix_remote(size_t i) const { return "unix:" + members_[i].sock; }
  // The running member that says it is the leader, if exactly one does.
  std::optional<size_t> leader();
  // Waits for a leader among the running members (throws after `timeout`).
  size_t wait_leader(std::chrono::milliseconds timeout = 15s);
  // Waits until member i follows a known leader (it rejoined after a restart).
  void wait_follower(size_t i, std::chrono::milliseconds timeout = 15s);
  // ovs-appctl -t <member i's unixctl> args...
  CommandResult appctl(size_t i, const std::vector<std::string>& args);
  std::string status(size_t i);  // cluster/status Goldilocks
  // ovsdb-client transact on member i (it must be the leader: ovsdb-client is leader-only).
  std::string client_transact(size_t i, const std::string& json_ops);
  std::string log_text(size_t i) const;

 private:
  struct Member {
    std::string db, sock, ctl, log;
    uint16_t raft_port = 0;
    uint16_t client_port = 0;
    pid_t pid = -1;
  };
  void wait_accepting(size_t i);

  Options opt_;
  TempDir dir_;
  std::vector<Member> members_;
};

// Runs `io` until pred() holds or `timeout` passes; returns pred().
bool run_until(boost::asio::io_context& io, const std::function<bool()>& pred,
               std::chrono::milliseconds timeout = 10s);
// Runs `io` for `d` (timers and I/O proceed).
void run_for(boost::asio::io_context& io, std::chrono::milliseconds d);

// Issues a request through `issue` (which gets the completion callback) and runs `io`
// until it completes (or fails the test after `timeout`).
template <typename T>
Result<T> await(boost::asio::io_context& io,
                const std::function<void(std::function<void(Result<T>)>)>& issue,
                std::chrono::milliseconds timeout = 10s) {
  std::optional<Result<T>> out;
  issue([&out](Result<T> r) { out.emplace(std::move(r)); });
  if (!run_until(
          io, [&] { return out.has_value(); }, timeout)) {
    return make_error(Errc::kDisconnected, "test: no completion within the timeout");
  }
  return std::move(*out);
}

Result<TransactResult> transact(boost::asio::io_context& io, Client& c, Transaction t);

// Client options for the Goldilocks database on `remote` with short timers for tests.
ClientOptions test_options(const std::string& remote);

// A fresh client's full load of the database: what the database holds now.
Replica fresh_replica(boost::asio::io_context& io, const std::string& remote);

}  // namespace gl::ovsdb::test
