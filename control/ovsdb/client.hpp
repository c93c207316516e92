// client.hpp — an RFC 7047 OVSDB client on Boost.Asio: JSON-RPC requests, a monitored
// replica of a database's tables, echo/inactivity probe, reconnect with back-off.
//
// Purpose: glctld's view of the cluster's desired state. A Client connects to one of a
// list of remotes ("unix:PATH", "tcp:IP:PORT", tried round-robin), reads the server's
// `_Server` row of the configured database and leaves, for the next remote, a Raft member
// that is not connected to its cluster, is behind, or (leader_only) is not the leader —
// also later in the session, when that row changes. It then fetches the schema of
// the configured database and monitors its tables (monitor_cond_since when the server
// offers it, else monitor_cond, else monitor), keeping an in-memory Replica. When the
// session drops it reconnects with exponential back-off; with monitor_cond_since it
// resumes from the last transaction id it saw (the server sends only what changed) and
// falls back to a full reload when the server no longer has that id. A full (re)load
// replaces the replica in one step and is reported as the row changes it made plus a
// "resynced" signal. Requests (list_dbs, get_schema, transact, echo, any other method via
// call()) complete through callbacks with Result<T>; they are sent only in the connected
// state (a server not yet checked gets none: Errc::kNotConnected); requests pending when
// the session drops complete with Errc::kDisconnected. See control/DESIGN.md, "OVSDB client".
//
// Usage:
//   boost::asio::io_context io;
//   ClientOptions o;
//   o.remotes = {"unix:/run/gl/db.sock"};
//   o.db = "Goldilocks";
//   auto c = Client::create(io.get_executor(), o);          // Result<Client>
//   c->set_change_handler([](const std::vector<RowChange>& ch) { ... });
//   c->start();
//   Transaction t;  t.insert("Host", {{"name", "h1"}});
//   c->transact(std::move(t), [](Result<TransactResult> r) { ... });
//   io.run();
//
// Thread-safety: a Client and everything it owns (replica, schema, handlers) belong to
// its executor. Construct it with a single-threaded io_context's executor (glctld: one
// io_context run by one thread) or with a strand; call its methods and read replica() /
// schema() only from that executor (inside its callbacks or handlers posted to it).
// counters() alone may be read from any thread. Callbacks run on the executor, never
// inside the call that issued the request.
// Complexity: per message O(size) to frame and parse; updates as in replica.hpp.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>

#include "control/ovsdb/error.hpp"
#include "control/ovsdb/framer.hpp"
#include "control/ovsdb/remote.hpp"
#include "control/ovsdb/replica.hpp"
#include "control/ovsdb/schema.hpp"
#include "control/ovsdb/transaction.hpp"

namespace gl::ovsdb {

// Ordered by capability: the client tries the best one allowed first and steps down when
// the server answers "unknown method".
enum class MonitorMethod : uint8_t { kMonitor, kMonitorCond, kMonitorCondSince };
std::string_view monitor_method_name(MonitorMethod m);

enum class State : uint8_t {
  kIdle,        // not started
  kConnecting,  // connect() in progress
  kSyncing,     // connected; checking _Server, fetching the schema, setting up the monitor
  kConnected,   // session up, replica current (or no monitor configured)
  kBackoff,     // waiting before the next connection attempt
  kStopped,     // stop() was called
};
std::string_view state_name(State s);

enum class LogLevel : uint8_t { kDebug, kInfo, kWarn };

struct ClientOptions {
  std::vector<std::string> remotes;  // tried round-robin
  std::string db;                    // database to monitor and transact on; "" = none
  bool monitor = true;               // keep a replica of `tables` of `db`
  std::vector<std::string> tables;   // tables to monitor; empty = every table of the schema
  MonitorMethod max_monitor_method = MonitorMethod::kMonitorCondSince;

  // Use only the leader of a Raft cluster (as OVS IDL's default); false: any member that
  // is connected to its cluster and not behind. Standalone servers are always used.
  bool leader_only = true;

  std::chrono::milliseconds probe_interval{5000};  // echo after this idle; 0 = no probe
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{8000};
  std::chrono::milliseconds connect_timeout{5000};
  size_t max_message = kDefaultMaxMessage;              // larger incoming messages drop the session
  std::function<void(LogLevel, std::string_view)> log;  // optional
};

// Snapshot of the client's counters (monotonic since create()).
struct Counters {
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t connect_attempts = 0;
  uint64_t connect_failures = 0;  // attempts that did not reach a session
  uint64_t reconnects = 0;        // attempts after the first one
  uint64_t sessions = 0;          // connections established
  uint64_t disconnects = 0;       // established connections lost
  uint64_t parse_errors = 0;      // malformed JSON / not an object at top level
  uint64_t overflows = 0;         // message over max_message
  uint64_t protocol_errors = 0;   // valid JSON that RFC 7047 does not allow here
  uint64_t echo_answered = 0;     // server's echo requests answered
  uint64_t probes_sent = 0;       // our inactivity echoes
  uint64_t probe_timeouts = 0;    // sessions dropped for silence
  uint64_t full_loads = 0;        // replica (re)loaded from scratch
  uint64_t resumes = 0;           // monitor_cond_since found our last transaction id
  uint64_t updates = 0;           // update/update2/update3 notifications applied
  uint64_t requests_failed = 0;   // requests completed with kDisconnected / kCancelled
  uint64_t last_backoff_ms = 0;   // the most recent back-off delay

  // Raft: _Server.Database changes received, and the servers left after the _Server
  // check, by reason (indexed by Skip; remote.hpp).
  uint64_t server_updates = 0;
  std::array<uint64_t, kSkipCount> skipped{};
  uint64_t skips(Skip s) const { return skipped[static_cast<size_t>(s)]; }
  uint64_t skipped_total() const {
    uint64_t n = 0;
    for (uint64_t v : skipped) n += v;
    return n;
  }
};

class Client {
 public:
  using Executor = boost::asio::any_io_executor;
  template <typename T>
  using Callback = std::function<void(Result<T>)>;
  // Every state transition; `reason` says why (e.g. the error that dropped the session).
  using StateHandler = std::function<void(State, std::string_view reason)>;
  // The rows an update (or a full reload, as a diff) changed, after the replica has them.
  using ChangeHandler = std::function<void(const std::vector<RowChange>&)>;
  // After a full (re)load replaced the replica (after the change handler).
  using ResyncHandler = std::function<void(const Replica&)>;

  // Validates the options (remotes, back-off, monitor without db); does not connect.
  static Result<Client> create(Executor ex, ClientOptions options);

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  // Closes the session; pending callbacks and handlers are dropped without being called.
  ~Client();

  void set_state_handler(StateHandler h);
  void set_change_handler(ChangeHandler h);
  void set_resync_handler(ResyncHandler h);

  // Starts connecting (and reconnecting until stop()). No-op when already started.
  void start();
  // Closes the session and stops reconnecting; pending requests complete with kCancelled.
  // The replica is kept; start() may be called again (and resumes when it can).
  void stop();

  // RFC 7047 4.1.1 list_dbs.
  void list_dbs(Callback<std::vector<std::string>> cb);
  // RFC 7047 4.1.2 get_schema: the schema JSON.
  void get_schema(std::string db, Callback<nlohmann::json> cb);
  // RFC 7047 4.1.3 transact, on txn.db() or else the configured db.
  void transact(Transaction txn, Callback<TransactResult> cb);
  // RFC 7047 4.1.11 echo: the server sends `payload` (an array) back.
  void echo(nlohmann::json payload, Callback<nlohmann::json> cb);
  // Any other method: the "result" of the reply, or kRpcError with the server's error.
  void call(std::string method, nlohmann::json params, Callback<nlohmann::json> cb);

  State state() const;
  bool is_connected() const { return state() == State::kConnected; }
  const Replica& replica() const;
  // The schema of the monitored database (nullptr before the first session got it).
  const Schema* schema() const;
  // The monitor method of the current (or last) session.
  MonitorMethod monitor_method() const;
  // The remote of the current (or last) connection attempt, as a string.
  std::string remote() const;
  // What the current (or last) server's `_Server` said about the database (checked is
  // false when it has no `_Server`, or before the first check).
  const ServerDb& server_db() const;
  // Why the last server was left, with its remote: "tcp:127.0.0.1:6642: not the leader"
  // ("" if none was).
  const std::string& last_skip() const;
  Counters counters() const;  // any thread
  Executor get_executor() const;

  class Impl;

 private:
  explicit Client(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace gl::ovsdb
