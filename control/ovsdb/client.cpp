// client.cpp — see client.hpp and control/DESIGN.md ("OVSDB client").
#include "control/ovsdb/client.hpp"

#include <array>
#include <atomic>
#include <deque>
#include <optional>
#include <unordered_map>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "control/ovsdb/value.hpp"

namespace gl::ovsdb {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

std::string_view monitor_method_name(MonitorMethod m) {
  switch (m) {
    case MonitorMethod::kMonitor:
      return "monitor";
    case MonitorMethod::kMonitorCond:
      return "monitor_cond";
    case MonitorMethod::kMonitorCondSince:
      return "monitor_cond_since";
  }
  return "?";
}

std::string_view state_name(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kConnecting:
      return "connecting";
    case State::kSyncing:
      return "syncing";
    case State::kConnected:
      return "connected";
    case State::kBackoff:
      return "backoff";
    case State::kStopped:
      return "stopped";
  }
  return "?";
}

namespace {

constexpr std::chrono::milliseconds kLeaderRetry{250};

inline constexpr size_t kReadChunk = 64 * 1024;
inline constexpr std::string_view kMonitorId = "gl-monitor";
inline constexpr std::string_view kServerMonitorId = "gl-server";
// The _Server.Database columns the client reads (those the server's schema has).
inline constexpr std::array<const char*, 8> kServerColumns = {
    "name", "model", "connected", "leader", "schema", "index", "cid", "sid"};
inline constexpr std::string_view kProbePayload = "gl-probe";

struct AtomicCounters {
  std::atomic<uint64_t> messages_in{0}, messages_out{0}, bytes_in{0}, bytes_out{0};
  std::atomic<uint64_t> connect_attempts{0}, connect_failures{0}, reconnects{0}, sessions{0};
  std::atomic<uint64_t> disconnects{0}, parse_errors{0}, overflows{0}, protocol_errors{0};
  std::atomic<uint64_t> echo_answered{0}, probes_sent{0}, probe_timeouts{0}, full_loads{0};
  std::atomic<uint64_t> resumes{0}, updates{0}, requests_failed{0}, last_backoff_ms{0};
  std::atomic<uint64_t> server_updates{0};
  std::array<std::atomic<uint64_t>, kSkipCount> skipped{};
};

void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

// RFC 7047 3.1 <error> (an object with "error" and maybe "details") or a bare string (what
// ovsdb-server sends for "unknown method").
Error rpc_error(std::string_view method, const Json& err) {
  Error e;
  e.code = Errc::kRpcError;
  if (err.is_object()) {
    if (auto it = err.find("error"); it != err.end()) {
      e.server_error = it->is_string() ? it->get<std::string>() : it->dump();
    }
    if (auto it = err.find("details"); it != err.end()) {
      e.details = it->is_string() ? it->get<std::string>() : it->dump();
    }
  } else if (err.is_string()) {
    e.server_error = err.get<std::string>();
  } else {
    e.server_error = err.dump();
  }
  e.message = std::string(method) + " failed: " + e.server_error;
  if (!e.details.empty()) e.message += ": " + e.details;
  return e;
}

bool is_zero_or_empty(const std::string& id) {
  return id.empty() || id == kZeroUuid;
}

}  // namespace

class Client::Impl : public std::enable_shared_from_this<Impl> {
 public:
  using Done = std::function<void(Result<Json>)>;

  Impl(Executor ex, ClientOptions opt, RemoteSet remotes)
      : ex_(ex),
        opt_(std::move(opt)),
        remotes_(std::move(remotes)),
        backoff_(opt_.backoff_min, opt_.backoff_max),
        socket_(ex),
        connect_timer_(ex),
        probe_timer_(ex),
        backoff_timer_(ex),
        framer_(opt_.max_message),
        rbuf_(kReadChunk),
        member_check_(opt_.leader_only) {}

  // ---- lifecycle ---------------------------------------------------------------------------

  void start() {
    if (state_ != State::kIdle && state_ != State::kStopped) return;
    cycle_left_ = remotes_.size();
    cycle_follower_ = false;
    served_ = false;
    attempt();
  }

  void stop() {
    if (state_ == State::kStopped || state_ == State::kIdle) {
      state_ = State::kStopped;
      return;
    }
    close_transport();
    state_ = State::kStopped;
    auto pending = std::exchange(pending_, {});
    for (auto& [id, p] : pending) {
      bump(counters_.requests_failed);
      asio::post(ex_, [done = std::move(p.done), m = p.method] {
        done(make_error(Errc::kCancelled, m + ": client stopped"));
      });
    }
    if (state_handler_) {
      asio::post(ex_, [self = shared_from_this()] {
        if (self->state_handler_) self->state_handler_(State::kStopped, "stopped");
      });
    }
  }

  // The Client is going away: nothing may call back into user code any more.
  void shutdown() {
    state_handler_ = nullptr;
    change_handler_ = nullptr;
    resync_handler_ = nullptr;
    pending_.clear();
    close_transport();
    state_ = State::kStopped;
  }

  // ---- requests ----------------------------------------------------------------------------

  bool session_open() const { return state_ == State::kSyncing || state_ == State::kConnected; }

  // Callers' requests go only to a checked server (connected state); the client's own
  // (`internal`: _Server, schema, monitor, probe) also while syncing.
  void request(std::string method, Json params, Done done, bool internal = false) {
    if (internal ? !session_open() : state_ != State::kConnected) {
      asio::post(ex_, [done = std::move(done), method] {
        done(make_error(Errc::kNotConnected, method + ": not connected"));
      });
      return;
    }
    const uint64_t id = next_id_++;
    Json msg = {{"method", method}, {"params", std::move(params)}, {"id", id}};
    std::string text;
    try {
      text = msg.dump();
    } catch (const nlohmann::json::exception& e) {  // e.g. invalid UTF-8 in a string
      asio::post(ex_, [done = std::move(done), method, what = std::string(e.what())] {
        done(make_error(Errc::kInvalidArgument, method + ": cannot encode request: " + what));
      });
      return;
    }
    pending_.emplace(id, Pending{std::move(method), std::move(done)});
    send_text(std::move(text));
  }

  void transact(Transaction txn, Callback<TransactResult> cb) {
    const std::string db = txn.db().empty() ? opt_.db : txn.db();
    if (db.empty()) {
      asio::post(ex_, [cb = std::move(cb)] {
        cb(make_error(Errc::kInvalidArgument, "transact: no database given"));
      });
      return;
    }
    Json params = txn.params(db);
    request("transact", std::move(params),
            [txn = std::move(txn), cb = std::move(cb)](const Result<Json>& r) {
              if (!r) {
                Error e = r.error();
                if (e.code == Errc::kRpcError) e.message = "transact: " + e.message;
                cb(std::unexpected(std::move(e)));
                return;
              }
              cb(txn.interpret_reply(*r));
            });
  }

  // ---- accessors ---------------------------------------------------------------------------

  State state_ = State::kIdle;
  Replica replica_;
  std::shared_ptr<const Schema> schema_;
  MonitorMethod method_ = MonitorMethod::kMonitorCondSince;
  StateHandler state_handler_;
  ChangeHandler change_handler_;
  ResyncHandler resync_handler_;
  AtomicCounters counters_;
  Executor ex_;
  ClientOptions opt_;
  RemoteSet remotes_;
  ServerDb server_db_;     // the current (or last) server's _Server row of opt_.db
  std::string last_skip_;  // "<remote>: <reason>" of the last server left

 private:
  struct Pending {
    std::string method;
    Done done;
  };
  using Socket = asio::generic::stream_protocol::socket;

  void log(LogLevel level, const std::string& msg) const {
    if (opt_.log) opt_.log(level, msg);
  }

  void set_state(State s, std::string_view reason) {
    if (state_ == s) return;
    state_ = s;
    if (state_handler_) state_handler_(s, reason);
  }

  // ---- connecting --------------------------------------------------------------------------

  void attempt() {
    const uint64_t gen = ++gen_;
    const Remote& r = remotes_.next();
    bump(counters_.connect_attempts);
    if (attempted_) bump(counters_.reconnects);
    attempted_ = true;
    boost::system::error_code ec;
    socket_.close(ec);
    asio::generic::stream_protocol::endpoint ep;
    if (r.kind == Remote::Kind::kUnix) {
      ep = asio::local::stream_protocol::endpoint(r.path);
    } else {
      ep = asio::ip::tcp::endpoint(asio::ip::make_address(r.host), r.port);
    }
    log(LogLevel::kDebug, "connecting to " + r.to_string());
    set_state(State::kConnecting, r.to_string());
    if (gen != gen_) return;  // the state handler stopped or restarted us
    auto self = shared_from_this();
    socket_.async_connect(
        ep, [self, gen](const boost::system::error_code& e) { self->on_connect(gen, e); });
    connect_timer_.expires_after(opt_.connect_timeout);
    connect_timer_.async_wait([self, gen](const boost::system::error_code& e) {
      if (e || gen != self->gen_ || self->state_ != State::kConnecting) return;
      self->fail("connect to " + self->remotes_.current().to_string() + " timed out");
    });
  }

  void on_connect(uint64_t gen, const boost::system::error_code& ec) {
    if (gen != gen_ || state_ != State::kConnecting) return;
    connect_timer_.cancel();
    if (ec) {
      fail("connect to " + remotes_.current().to_string() + " failed: " + ec.message());
      return;
    }
    if (remotes_.current().kind == Remote::Kind::kTcp) {
      boost::system::error_code ignored;
      socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    bump(counters_.sessions);
    session_connected_ = true;
    framer_.reset();
    last_rx_ = Clock::now();
    probe_outstanding_ = false;
    monitoring_ = false;
    log(LogLevel::kInfo, "connected to " + remotes_.current().to_string());
    read();
    arm_probe();
    if (!opt_.db.empty()) {
      set_state(State::kSyncing, remotes_.current().to_string());
      if (gen != gen_) return;
      check_server();
    } else {
      connected(remotes_.current().to_string());
    }
  }

  void connected(const std::string& reason) {
    served_ = true;
    served_at_ = Clock::now();
    set_state(State::kConnected, reason);
  }

  // Drops the transport, fails pending requests, schedules the next attempt.
  // The remotes are tried in cycles, as OVS's jsonrpc sessions do (backoff_free_tries =
  // the number of remotes): within a cycle the next remote is tried at once, and only
  // after a whole cycle without a served session comes a back-off, doubling cycle by
  // cycle. A session that served (connected()) for backoff_min or longer resets the
  // doubling, and its drop starts a new cycle; one that dropped sooner is a step of the
  // cycle like a failed attempt (as OVS's reconnect_disconnected()), so that servers that
  // accept, serve and drop at once are not cycled through without a pause. So when a
  // cluster's leader dies, the others are asked right away, not after a back-off for the
  // dead one and another for each follower (the demo's revocation once took over 5 s).
  // not_leader: a live member of a connected cluster that is not the leader (an election is
  // on, or the list starts with followers): when a cycle met one, its back-off is at most
  // kLeaderRetry, whatever the doubling has grown to, so a failover waits for the
  // election, not for the doubling.
  void fail(const std::string& reason, std::optional<LogLevel> level = std::nullopt,
            bool not_leader = false) {
    if (state_ == State::kStopped || state_ == State::kIdle || state_ == State::kBackoff) return;
    const bool had_session = session_connected_;
    if (had_session) {
      bump(counters_.disconnects);
    } else {
      bump(counters_.connect_failures);
    }
    close_transport();
    if (std::exchange(served_, false) && Clock::now() - served_at_ >= opt_.backoff_min) {
      backoff_.reset();
      cycle_left_ = remotes_.size();
      cycle_follower_ = false;
    }
    cycle_follower_ |= not_leader;
    std::chrono::milliseconds delay{0};
    if (cycle_left_ > 1) {
      --cycle_left_;  // the next remote of this cycle, at once
    } else {
      delay = backoff_.next_delay();
      if (cycle_follower_) delay = std::min(delay, kLeaderRetry);
      cycle_left_ = remotes_.size();
      cycle_follower_ = false;
    }
    counters_.last_backoff_ms.store(uint64_t(delay.count()), std::memory_order_relaxed);
    log(level         ? *level
        : had_session ? LogLevel::kWarn
                      : LogLevel::kDebug,
        reason + "; next attempt in " + std::to_string(delay.count()) + " ms");
    const uint64_t gen = gen_;
    auto self = shared_from_this();
    backoff_timer_.expires_after(delay);
    backoff_timer_.async_wait([self, gen](const boost::system::error_code& e) {
      if (e || gen != self->gen_ || self->state_ != State::kBackoff) return;
      self->attempt();
    });
    auto pending = std::exchange(pending_, {});
    set_state(State::kBackoff, reason);
    for (auto& [id, p] : pending) {
      bump(counters_.requests_failed);
      p.done(make_error(Errc::kDisconnected, p.method + ": connection lost (" + reason + ")"));
    }
  }

  void close_transport() {
    ++gen_;
    boost::system::error_code ec;
    socket_.close(ec);
    connect_timer_.cancel();
    probe_timer_.cancel();
    backoff_timer_.cancel();
    wqueue_.clear();
    wqueued_ = 0;
    writing_ = false;
    framer_.reset();
    monitoring_ = false;
    server_monitoring_ = false;
    session_connected_ = false;
  }

  // ---- I/O ---------------------------------------------------------------------------------

  void read() {
    const uint64_t gen = gen_;
    auto self = shared_from_this();
    socket_.async_read_some(
        asio::buffer(rbuf_),
        [self, gen](const boost::system::error_code& ec, size_t n) { self->on_read(gen, ec, n); });
  }

  void on_read(uint64_t gen, const boost::system::error_code& ec, size_t n) {
    if (gen != gen_) return;
    if (ec) {
      fail(ec == asio::error::eof ? std::string("connection closed by the server")
                                  : "read failed: " + ec.message());
      return;
    }
    bump(counters_.bytes_in, n);
    std::vector<Json> msgs;
    const auto status = framer_.feed(std::string_view(rbuf_.data(), n), msgs);
    // Any byte is a sign of life (a large message may take several probe intervals).
    last_rx_ = Clock::now();
    probe_outstanding_ = false;
    for (Json& m : msgs) {
      bump(counters_.messages_in);
      dispatch(m);
      if (gen != gen_) return;  // the message ended the session (or a callback did)
    }
    if (status != JsonFramer::Status::kOk) {
      if (status == JsonFramer::Status::kOverflow) {
        bump(counters_.overflows);
      } else {
        bump(counters_.parse_errors);
      }
      fail("bad input from the server: " + framer_.error());
      return;
    }
    read();
  }

  void send_text(std::string text) {
    const size_t max_queued = opt_.max_message * 2;
    if (wqueued_ + text.size() > max_queued) {
      // The server does not read. Drop the session, but not from inside a caller's
      // request(): its callback must not run inside the call.
      const uint64_t gen = gen_;
      asio::post(ex_, [self = shared_from_this(), gen, max_queued] {
        if (gen == self->gen_)
          self->fail("send queue over " + std::to_string(max_queued) + " bytes");
      });
      return;
    }
    bump(counters_.messages_out);
    wqueued_ += text.size();
    wqueue_.push_back(std::move(text));
    if (!writing_) write();
  }

  void send(const Json& msg) {
    std::string text;
    try {
      text = msg.dump();
    } catch (const nlohmann::json::exception& e) {  // cannot happen for parsed input
      return protocol_error(std::string("cannot encode a reply: ") + e.what());
    }
    send_text(std::move(text));
  }

  void write() {
    writing_ = true;
    const uint64_t gen = gen_;
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(wqueue_.front()),
                      [self, gen](const boost::system::error_code& ec, size_t n) {
                        if (gen != self->gen_) return;
                        if (ec) {
                          self->fail("write failed: " + ec.message());
                          return;
                        }
                        bump(self->counters_.bytes_out, n);
                        self->wqueued_ -= self->wqueue_.front().size();
                        self->wqueue_.pop_front();
                        if (self->wqueue_.empty()) {
                          self->writing_ = false;
                        } else {
                          self->write();
                        }
                      });
  }

  // ---- inactivity probe --------------------------------------------------------------------

  void arm_probe() {
    if (opt_.probe_interval.count() <= 0) return;
    const auto wake = last_rx_ + (probe_outstanding_ ? 2 : 1) * opt_.probe_interval;
    const uint64_t gen = gen_;
    auto self = shared_from_this();
    probe_timer_.expires_at(wake);
    probe_timer_.async_wait([self, gen](const boost::system::error_code& e) {
      if (e || gen != self->gen_) return;
      self->on_probe_timer();
    });
  }

  void on_probe_timer() {
    const auto idle = Clock::now() - last_rx_;
    const auto interval = opt_.probe_interval;
    if (idle >= 2 * interval) {
      bump(counters_.probe_timeouts);
      fail("no message from the server for " +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(idle).count()) +
           " ms (inactivity probe)");
      return;
    }
    if (idle >= interval && !probe_outstanding_) {
      probe_outstanding_ = true;
      bump(counters_.probes_sent);
      request(
          "echo", Json::array({kProbePayload}), [](const Result<Json>&) {}, true);
    }
    arm_probe();
  }

  // ---- incoming messages -------------------------------------------------------------------

  void dispatch(Json& m) {
    auto method = m.find("method");
    auto id = m.find("id");
    if (method != m.end()) {
      if (!method->is_string()) return protocol_error("method is not a string");
      const std::string& name = method->get_ref<const std::string&>();
      Json params = m.value("params", Json::array());
      if (id != m.end() && !id->is_null()) {
        // A request from the server: echo is the one ovsdb-server sends (RFC 7047 4.1.11).
        if (name == "echo") {
          bump(counters_.echo_answered);
          send({{"id", *id}, {"result", params}, {"error", nullptr}});
        } else {
          send({{"id", *id}, {"result", nullptr}, {"error", "unknown method"}});
        }
        return;
      }
      on_notification(name, params);
      return;
    }
    if (id == m.end() || !id->is_number_unsigned()) {
      return protocol_error("a message that is neither a request nor a reply to us: " +
                            m.dump().substr(0, 200));
    }
    auto it = pending_.find(id->get<uint64_t>());
    if (it == pending_.end()) return protocol_error("a reply to no request of ours");
    Pending p = std::move(it->second);
    pending_.erase(it);
    auto err = m.find("error");
    if (err != m.end() && !err->is_null()) {
      p.done(std::unexpected(rpc_error(p.method, *err)));
      return;
    }
    auto result = m.find("result");
    if (result == m.end()) {
      p.done(make_error(Errc::kBadReply, p.method + ": reply without result"));
      return;
    }
    p.done(std::move(*result));
  }

  void protocol_error(const std::string& what) {
    bump(counters_.protocol_errors);
    log(LogLevel::kWarn, "protocol error: " + what);
  }

  void on_notification(const std::string& name, const Json& params) {
    if (name != "update" && name != "update2" && name != "update3") return;  // locked, stolen..
    if (name == "update2" && server_monitoring_ && params.is_array() && params.size() == 2 &&
        params[0] == kServerMonitorId) {
      return on_server_update(params[1]);
    }
    if (!monitoring_ || !params.is_array() || params.empty() || params[0] != kMonitorId) {
      return protocol_error(name + " for no monitor of ours");
    }
    Result<std::vector<RowChange>> changes;
    std::string txn_id;
    if (name == "update3") {
      if (params.size() != 3 || !params[1].is_string()) return resync("malformed update3");
      txn_id = params[1].get<std::string>();
      changes = replica_.apply_update2(*schema_, params[2]);
    } else if (params.size() != 2) {
      return resync("malformed " + name);
    } else if (name == "update2") {
      changes = replica_.apply_update2(*schema_, params[1]);
    } else {
      changes = replica_.apply_update(*schema_, params[1]);
    }
    if (!changes) return resync(name + " does not apply: " + changes.error().message);
    if (!txn_id.empty()) replica_.set_last_txn_id(txn_id);
    bump(counters_.updates);
    if (!changes->empty() && change_handler_) change_handler_(*changes);
  }

  // The replica can no longer follow the server: start over with a full load.
  void resync(const std::string& why) {
    bump(counters_.protocol_errors);
    replica_.set_last_txn_id({});
    fail(why + "; reloading");
  }

  // ---- the _Server check -------------------------------------------------------------------

  // Reads (and monitors) the server's _Server.Database row of our database, as OVS IDL
  // does; a server without _Server, or that will not monitor it, is used unchecked.
  void check_server() {
    server_db_ = ServerDb{};
    server_accepted_ = false;
    const uint64_t gen = gen_;
    auto self = shared_from_this();
    request(
        "get_schema", Json::array({"_Server"}),
        [self, gen](const Result<Json>& r) {
          if (gen != self->gen_) return;
          if (!r) return self->unchecked("no _Server database (" + r.error().message + ")");
          auto s = Schema::parse(*r);
          const TableSchema* t = s ? s->table("Database") : nullptr;
          if (!t || !t->column("name")) {
            return self->unchecked("_Server has no usable Database table");
          }
          Json cols = Json::array();
          for (const char* c : kServerColumns) {
            if (t->column(c)) cols.push_back(c);
          }
          self->server_schema_ = std::make_shared<const Schema>(std::move(*s));
          Json where = Json::array({Json::array({"name", "==", self->opt_.db})});
          Json req = {{"Database", Json::array({{{"columns", cols}, {"where", where}}})}};
          self->request(
              "monitor_cond", Json::array({"_Server", kServerMonitorId, std::move(req)}),
              [self, gen](const Result<Json>& m) {
                if (gen != self->gen_) return;
                if (!m) return self->unchecked("_Server not monitored (" + m.error().message + ")");
                auto rows = Replica::load_update2(*self->server_schema_, {"Database"}, *m);
                if (!rows) {
                  bump(self->counters_.protocol_errors);
                  return self->fail("_Server rows do not load: " + rows.error().message);
                }
                self->server_replica_ = std::move(*rows);
                self->server_monitoring_ = true;
                if (!self->evaluate_server()) return;
                self->after_check();
              },
              true);
        },
        true);
  }

  void unchecked(const std::string& why) {
    log(LogLevel::kDebug, remotes_.current().to_string() + ": " + why + "; used unchecked");
    after_check();
  }

  // Applies MemberCheck to the current row; leaves the server (and returns false) if it
  // fails.
  bool evaluate_server() {
    const Table* t = server_replica_.table("Database");
    const Row* row = nullptr;
    if (t) {
      for (const auto& [uuid, r] : *t) {
        if (r.value("name", "") == opt_.db) row = &r;
      }
    }
    if (!row) {
      server_db_ = ServerDb{};
      server_db_.checked = true;
      skip(Skip::kNoDatabase, "no database " + opt_.db + " on the server");
      return false;
    }
    auto db = ServerDb::from_row(*row);
    if (!db) {
      bump(counters_.protocol_errors);
      fail(db.error().message);
      return false;
    }
    server_db_ = std::move(*db);
    const MemberCheck::Verdict v = member_check_.check(server_db_);
    if (!v.ok()) {
      skip(*v.skip, v.reason);
      return false;
    }
    if (!server_accepted_) {
      server_accepted_ = true;
      log(LogLevel::kInfo, remotes_.current().to_string() + ": " + server_db_.to_string());
    }
    return true;
  }

  void on_server_update(const Json& updates) {
    bump(counters_.server_updates);
    auto changes = server_replica_.apply_update2(*server_schema_, updates);
    if (!changes) {
      bump(counters_.protocol_errors);
      return fail("_Server update does not apply: " + changes.error().message);
    }
    evaluate_server();
  }

  // The server is not one to use: on to the next remote, with the usual back-off.
  void skip(Skip why, const std::string& reason) {
    bump(counters_.skipped[static_cast<size_t>(why)]);
    last_skip_ = remotes_.current().to_string() + ": " + reason;
    fail(last_skip_,
         why == Skip::kNotLeader || why == Skip::kRelay ? LogLevel::kInfo : LogLevel::kWarn,
         why == Skip::kNotLeader);
  }

  // The server passed (or has no _Server): schema and monitor, or straight to connected.
  void after_check() {
    if (!opt_.monitor) return connected(remotes_.current().to_string());
    if (server_db_.schema) {  // _Server carries the schema: no get_schema round trip
      Json j = Json::parse(*server_db_.schema, nullptr, false);
      if (!j.is_discarded()) return on_schema(j);
    }
    fetch_schema();
  }

  // ---- schema and monitor ------------------------------------------------------------------

  void fetch_schema() {
    const uint64_t gen = gen_;
    auto self = shared_from_this();
    request(
        "get_schema", Json::array({opt_.db}),
        [self, gen](const Result<Json>& r) {
          if (gen != self->gen_) return;
          if (!r) return self->fail("get_schema " + self->opt_.db + ": " + r.error().message);
          self->on_schema(*r);
        },
        true);
  }

  void on_schema(const Json& json) {
    auto s = Schema::parse(json);
    if (!s) {
      bump(counters_.protocol_errors);
      return fail("schema of " + opt_.db + ": " + s.error().message);
    }
    if (schema_ && schema_->json() != s->json()) {
      log(LogLevel::kInfo, "schema of " + opt_.db + " changed: full reload");
      replica_.set_last_txn_id({});
    }
    schema_ = std::make_shared<const Schema>(std::move(*s));
    tables_ = opt_.tables;
    if (tables_.empty()) {
      for (const auto& [name, t] : schema_->tables()) tables_.push_back(name);
    }
    for (const std::string& t : tables_) {
      if (!schema_->table(t)) return fail("database " + opt_.db + " has no table " + t);
    }
    send_monitor(opt_.max_monitor_method);
  }

  void send_monitor(MonitorMethod m) {
    Json reqs = Json::object();
    for (const std::string& t : tables_) {
      Json cols = Json::array();
      for (const auto& [c, type] : schema_->table(t)->columns) cols.push_back(c);
      Json one = {{"columns", std::move(cols)}};
      // monitor takes one <monitor-request> per table; the _cond methods an array of them.
      reqs[t] = m == MonitorMethod::kMonitor ? one : Json::array({one});
    }
    Json params = Json::array({opt_.db, kMonitorId, std::move(reqs)});
    const std::string& last = replica_.last_txn_id();
    const bool can_resume = have_replica_ && !is_zero_or_empty(last);
    if (m == MonitorMethod::kMonitorCondSince) {
      params.push_back(can_resume ? last : std::string(kZeroUuid));
    }
    const uint64_t gen = gen_;
    auto self = shared_from_this();
    request(
        std::string(monitor_method_name(m)), std::move(params),
        [self, gen, m, can_resume](const Result<Json>& r) {
          if (gen != self->gen_) return;
          if (!r) {
            if (r.error().code == Errc::kRpcError && r.error().server_error == "unknown method" &&
                m != MonitorMethod::kMonitor) {
              self->log(LogLevel::kInfo, std::string(monitor_method_name(m)) +
                                             " not offered by the server; stepping down");
              return self->send_monitor(static_cast<MonitorMethod>(uint8_t(m) - 1));
            }
            return self->fail(r.error().message);
          }
          self->on_monitor_reply(m, can_resume, *r);
        },
        true);
  }

  void on_monitor_reply(MonitorMethod m, bool asked_resume, const Json& result) {
    method_ = m;
    if (m == MonitorMethod::kMonitorCondSince) {
      if (!result.is_array() || result.size() != 3 || !result[0].is_boolean() ||
          !result[1].is_string()) {
        bump(counters_.protocol_errors);
        return fail("malformed monitor_cond_since reply");
      }
      const bool found = result[0].get<bool>();
      std::string txn_id = result[1].get<std::string>();
      if (found && asked_resume) {
        auto changes = replica_.apply_update2(*schema_, result[2]);
        if (!changes) return resync("resume does not apply: " + changes.error().message);
        replica_.set_last_txn_id(std::move(txn_id));
        bump(counters_.resumes);
        monitoring_ = true;
        log(LogLevel::kInfo, "resumed at transaction " + replica_.last_txn_id() + " (" +
                                 std::to_string(changes->size()) + " rows changed)");
        const uint64_t gen = gen_;
        connected(remotes_.current().to_string() + " (resumed)");
        if (gen != gen_) return;
        if (!changes->empty() && change_handler_) change_handler_(*changes);
        return;
      }
      auto fresh = Replica::load_update2(*schema_, tables_, result[2]);
      if (fresh) fresh->set_last_txn_id(is_zero_or_empty(txn_id) ? std::string() : txn_id);
      return install(std::move(fresh));
    }
    if (m == MonitorMethod::kMonitorCond) {
      return install(Replica::load_update2(*schema_, tables_, result));
    }
    install(Replica::load_update(*schema_, tables_, result));
  }

  // A full load: swap the replica in one move, report what it changed, then "resynced".
  void install(Result<Replica> fresh) {
    if (!fresh) {
      bump(counters_.protocol_errors);
      return fail("initial contents do not load: " + fresh.error().message);
    }
    std::vector<RowChange> changes = Replica::diff(replica_, *fresh);
    replica_ = std::move(*fresh);
    have_replica_ = true;
    monitoring_ = true;
    bump(counters_.full_loads);
    log(LogLevel::kInfo, "loaded " + std::to_string(replica_.row_count()) + " rows with " +
                             std::string(monitor_method_name(method_)));
    const uint64_t gen = gen_;
    connected(remotes_.current().to_string());
    if (gen != gen_) return;
    if (!changes.empty() && change_handler_) change_handler_(changes);
    if (gen != gen_) return;
    if (resync_handler_) resync_handler_(replica_);
  }

  Backoff backoff_;
  Socket socket_;
  asio::steady_timer connect_timer_;
  asio::steady_timer probe_timer_;
  asio::steady_timer backoff_timer_;
  JsonFramer framer_;
  std::vector<char> rbuf_;
  std::deque<std::string> wqueue_;  // front() is being written; references stay valid
  size_t wqueued_ = 0;
  bool writing_ = false;
  uint64_t gen_ = 0;  // bumped whenever the transport closes: stale handlers see a mismatch
  bool attempted_ = false;
  bool session_connected_ = false;
  bool served_ = false;          // the session in place reached connected()
  Clock::time_point served_at_;  // when
  size_t cycle_left_ = 0;        // attempts of the current cycle of remotes still free
  bool cycle_follower_ = false;  // a member of this cycle was not the leader
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Pending> pending_;
  Clock::time_point last_rx_{};
  bool probe_outstanding_ = false;
  bool monitoring_ = false;  // the monitor of this session is set up
  bool have_replica_ = false;
  std::vector<std::string> tables_;
  MemberCheck member_check_;
  std::shared_ptr<const Schema> server_schema_;  // of _Server, on this connection
  Replica server_replica_;                       // the monitored _Server.Database row
  bool server_monitoring_ = false;               // the _Server monitor of this session is up
  bool server_accepted_ = false;                 // logged that this server passed
};

// ---- Client --------------------------------------------------------------------------------

Result<Client> Client::create(Executor ex, ClientOptions options) {
  auto remotes = RemoteSet::parse(options.remotes);
  if (!remotes) return std::unexpected(remotes.error());
  if (options.backoff_min.count() <= 0 || options.backoff_max < options.backoff_min) {
    return make_error(Errc::kInvalidArgument, "back-off: need 0 < min <= max");
  }
  if (options.connect_timeout.count() <= 0) {
    return make_error(Errc::kInvalidArgument, "connect_timeout must be positive");
  }
  if (options.max_message < 1024) {
    return make_error(Errc::kInvalidArgument, "max_message must be at least 1024 bytes");
  }
  if (options.monitor && options.db.empty() && !options.tables.empty()) {
    return make_error(Errc::kInvalidArgument, "tables to monitor given without a database");
  }
  auto impl = std::make_shared<Impl>(ex, std::move(options), std::move(*remotes));
  impl->method_ = impl->opt_.max_monitor_method;
  return Client(std::move(impl));
}

Client::Client(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&& o) noexcept {
  if (this != &o) {
    if (impl_) impl_->shutdown();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
Client::~Client() {
  if (impl_) impl_->shutdown();
}

void Client::set_state_handler(StateHandler h) {
  impl_->state_handler_ = std::move(h);
}
void Client::set_change_handler(ChangeHandler h) {
  impl_->change_handler_ = std::move(h);
}
void Client::set_resync_handler(ResyncHandler h) {
  impl_->resync_handler_ = std::move(h);
}
void Client::start() {
  impl_->start();
}
void Client::stop() {
  impl_->stop();
}

void Client::list_dbs(Callback<std::vector<std::string>> cb) {
  impl_->request("list_dbs", Json::array(), [cb = std::move(cb)](const Result<Json>& r) {
    if (!r) return cb(std::unexpected(r.error()));
    std::vector<std::string> names;
    if (r->is_array()) {
      for (const Json& n : *r) {
        if (!n.is_string()) break;
        names.push_back(n.get<std::string>());
      }
    }
    if (!r->is_array() || names.size() != r->size()) {
      return cb(make_error(Errc::kBadReply, "list_dbs: not an array of names: " + r->dump()));
    }
    cb(std::move(names));
  });
}

void Client::get_schema(std::string db, Callback<Json> cb) {
  impl_->request("get_schema", Json::array({std::move(db)}), std::move(cb));
}

void Client::transact(Transaction txn, Callback<TransactResult> cb) {
  impl_->transact(std::move(txn), std::move(cb));
}

void Client::echo(Json payload, Callback<Json> cb) {
  if (!payload.is_array()) payload = Json::array({std::move(payload)});
  impl_->request("echo", std::move(payload), std::move(cb));
}

void Client::call(std::string method, Json params, Callback<Json> cb) {
  impl_->request(std::move(method), std::move(params), std::move(cb));
}

State Client::state() const {
  return impl_->state_;
}
const Replica& Client::replica() const {
  return impl_->replica_;
}
const Schema* Client::schema() const {
  return impl_->schema_.get();
}
MonitorMethod Client::monitor_method() const {
  return impl_->method_;
}
std::string Client::remote() const {
  return impl_->remotes_.current().to_string();
}
const ServerDb& Client::server_db() const {
  return impl_->server_db_;
}
const std::string& Client::last_skip() const {
  return impl_->last_skip_;
}
Client::Executor Client::get_executor() const {
  return impl_->ex_;
}

Counters Client::counters() const {
  const AtomicCounters& a = impl_->counters_;
  auto ld = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  Counters c;
  c.messages_in = ld(a.messages_in);
  c.messages_out = ld(a.messages_out);
  c.bytes_in = ld(a.bytes_in);
  c.bytes_out = ld(a.bytes_out);
  c.connect_attempts = ld(a.connect_attempts);
  c.connect_failures = ld(a.connect_failures);
  c.reconnects = ld(a.reconnects);
  c.sessions = ld(a.sessions);
  c.disconnects = ld(a.disconnects);
  c.parse_errors = ld(a.parse_errors);
  c.overflows = ld(a.overflows);
  c.protocol_errors = ld(a.protocol_errors);
  c.echo_answered = ld(a.echo_answered);
  c.probes_sent = ld(a.probes_sent);
  c.probe_timeouts = ld(a.probe_timeouts);
  c.full_loads = ld(a.full_loads);
  c.resumes = ld(a.resumes);
  c.updates = ld(a.updates);
  c.requests_failed = ld(a.requests_failed);
  c.last_backoff_ms = ld(a.last_backoff_ms);
  c.server_updates = ld(a.server_updates);
  for (size_t i = 0; i < kSkipCount; ++i) c.skipped[i] = ld(a.skipped[i]);
  return c;
}

}  // namespace gl::ovsdb
