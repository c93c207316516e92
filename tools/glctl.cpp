// glctl — the distributed firewall's CLI, ovs-ofctl style: writes the desired state into the
// Goldilocks OVSDB database (as ovn-nbctl writes OVN's) and asks the local glctld for its
// runtime state (control/DESIGN.md, "glctld").
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <expected>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "control/glctld/daemon.hpp"
#include "control/glctld/flow_export.hpp"
#include "control/glctld/mgmt.hpp"
#include "control/glctld/state.hpp"
#include "control/ovsdb/client.hpp"
#include "control/ovsdb/remote.hpp"
#include "control/ovsdb/value.hpp"
#include "control/policy/model.hpp"
#include "control/policy/rule_text.hpp"
#include "control/policy/selector.hpp"

namespace {

namespace asio = boost::asio;
namespace policy = gl::policy;
namespace ovsdb = gl::ovsdb;
namespace glctld = gl::glctld;
using Json = nlohmann::json;
using Args = std::vector<std::string>;

constexpr const char* kUsage = R"(usage: glctl [OPTION]... COMMAND [ARG]...

Edit the distributed firewall's desired state in the Goldilocks database and ask the local
glctld how it is enforced. Every change is checked (policy validation, naming the field)
before it is written; glctld compiles it for each host and installs it in gldp.

Settings:
  init                             create the settings row if there is none
  set-default deny|allow           what happens when no rule matches (default deny)
  set-conn-limit N                 connections per workload (0 = no limit)
  set-flow-log PATH                every host's glctld writes flow records (JSON lines)
                                   to PATH; "" turns it off
  set-ipfix COLLECTOR              ... and exports them as IPFIX to udp:IP:PORT
                                   (default port 4739); "" turns it off
Workloads (a VM's vNIC on a host; KEY=VALUE arguments):
  add-workload NAME host=H port=P mac=M [ip=A[,A]]... [label=K=V]...
                                   port: its port name in gldp on host H
  set-workload NAME [host=H] [port=P] [mac=M] [ip=A[,A]]... [label=K=V]...
                                   replace the given keys: ip= replaces every address
                                   (ip= alone: none), label= replaces every label
                                   (label= alone: none)
  del-workload NAME
  dump-workloads
Groups:
  add-group NAME [selector=SEL] [member=W]...
  set-group NAME [selector=SEL] [member=W]...   (member= alone: no members)
  del-group NAME
  dump-groups
Rules (ovs-ofctl-style text; fields in any order):
  add-rule "RULE"                  e.g. "priority=100,from=app=web,to=app=db,tcp,
                                   tp_dst=5432,actions=allow,log"; without id=N the next
                                   free id is taken; the rule's id is printed
  del-rule ID
  del-rules                        remove every rule
  dump-rules                       every rule in canonical text, in evaluation order,
                                   with this host's hit counters (n_packets, n_bytes,
                                   n_conns) when glctld answers
Hosts and keys (ESP between hypervisors; glctld negotiates and rotates the keys):
  add-host NAME UNDERLAY_IP PUBKEY a hypervisor: its tunnel address and its glctld's public
                                   key (glctld --gen-key / --pubkey KEYFILE prints it)
  revoke-host NAME                 every other host removes its SAs at once (its traffic
                                   is dropped: fail closed) and refuses its handshakes
  del-host NAME                    the same, and the row goes
  dump-hosts
  set-rekey SECONDS [packets=N] [bytes=N]
                                   new keys every SECONDS (default 120), and after N
                                   packets / bytes on an outbound SA (0: off)
  keys                             this host's sessions with each peer (from glctld)
Runtime state (from glctld):
  status                           generation in force, last install, rejected desired
                                   state and why, database and gldp connections, counts
  compiled                         the compiled policy of this host (identities,
                                   ipcache, each port's tables)
  identities                       identity numbers and what they stand for
  dump-conntrack [WORKLOAD|zone=N] the firewall's connections (of one workload, or of
                                   conntrack zone N, 0..65535: the firewall's zone of a
                                   workload is its port number, as dumps show it)
  flush-conntrack [WORKLOAD|zone=N]
                                   remove them (the next packet is a first packet again)
  trace WORKLOAD from-vm|to-vm PACKET
                                   what the firewall does with PACKET at WORKLOAD's port
                                   (and at the destination's, when it is on this host):
                                   identities, rule, connection, verdict. PACKET e.g.
                                   "tcp,dst=10.0.0.2,tp_dst=5432" (src defaults to the
                                   workload's address from the VM, dst to it to the VM;
                                   fields src= dst= tp_src= tp_dst= icmp_type= icmp_code=
                                   icmp_id= dl_src=, protocol tcp|udp|icmp|icmp6|sctp|proto=N)

Rule fields: id=N priority=N (0..65535, default 32768) from=SEL to=SEL
  ip|tcp|udp|icmp|icmp6|sctp|proto=N  tp_dst=P|LO-HI (repeat, or tp_dst="80,443")
  actions=allow|deny|reject|allow-encrypted  log  description="TEXT"
Selectors: any | group:NAME | workload:NAME | ADDRESS[/LEN] | KEY=VALUE | KEY!=VALUE | KEY
  | !KEY, joined with & (and) and | (or); e.g. "app=web&env!=prod", "10.0.0.0/8".

Options:
  --db REMOTE[,REMOTE...]  the database (default unix:/run/goldilocks/db.sock)
  --mgmt-socket PATH       glctld's socket (default /run/goldilocks/glctld.sock)
  --json                   dumps, status, compiled and identities as JSON
  --timeout SECS           give up after SECS (default 10)
  --if-exists              del-* of something absent is not an error
  -h, --help               this text

Exit status: 0 success, 1 failure (refused change, unreachable database or glctld), 2 usage
error (bad command line or field syntax, found before anything is contacted).
)";

constexpr int kOk = 0;
constexpr int kFailure = 1;
constexpr int kUsageError = 2;

struct Options {
  std::vector<std::string> db{glctld::kDefaultDbRemote};
  std::string mgmt = glctld::kDefaultMgmtSocket;
  bool json = false;
  bool if_exists = false;
  std::chrono::milliseconds timeout{10000};
};

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "glctl: %s\n(try glctl --help)\n", msg.c_str());
  return kUsageError;
}

int failure(const std::string& msg) {
  std::fprintf(stderr, "glctl: %s\n", msg.c_str());
  return kFailure;
}

int report(const std::vector<std::string>& problems, int code) {
  for (const std::string& p : problems) std::fprintf(stderr, "glctl: %s\n", p.c_str());
  return code;
}

std::vector<std::string> texts(const std::vector<policy::Problem>& problems) {
  std::vector<std::string> out;
  for (const policy::Problem& p : problems) out.push_back(p.text());
  return out;
}

void print_json(const Json& j) {
  std::printf("%s\n", j.dump(2).c_str());
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = s.find(',', pos);
    out.push_back(s.substr(pos, comma == std::string::npos ? comma : comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

// A decimal number in [0, max], nothing else.
std::optional<uint64_t> parse_number(const std::string& s, uint64_t max) {
  if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
  if (errno != 0 || v > max) return std::nullopt;
  return v;
}

// ---- the database ----------------------------------------------------------------------------

// One session with the database: connect, wait for the replica, transact. Blocking, with
// the --timeout deadline over the whole session.
class Db {
 public:
  explicit Db(const Options& o)
      : opt_(o), deadline_(std::chrono::steady_clock::now() + o.timeout) {}

  std::expected<void, std::string> open() {
    ovsdb::ClientOptions co;
    co.remotes = opt_.db;
    co.db = std::string(glctld::kDatabase);
    for (std::string_view t : glctld::kMonitoredTables) co.tables.emplace_back(t);
    co.backoff_min = std::chrono::milliseconds(100);
    co.backoff_max = std::chrono::milliseconds(1000);
    co.connect_timeout = opt_.timeout;
    auto c = ovsdb::Client::create(io_.get_executor(), std::move(co));
    if (!c) return std::unexpected("--db: " + c.error().message);
    client_.emplace(std::move(*c));
    client_->set_state_handler([this](ovsdb::State s, std::string_view reason) {
      if (s == ovsdb::State::kBackoff) {
        ++failures_;
        reason_ = std::string(reason);
        // A cluster member that answers but may not serve yet (an election, a member
        // catching up): worth waiting for, up to --timeout.
        if (reason.find("leader") != std::string_view::npos ||
            reason.find("cluster") != std::string_view::npos ||
            reason.find("behind") != std::string_view::npos)
          transient_ = true;
      }
    });
    client_->start();
    const size_t n = opt_.db.size();
    run_until([&] { return client_->is_connected() || (failures_ >= n && !transient_); });
    if (client_->is_connected()) return {};
    const std::string where = "the database at " + join(opt_.db, ",");
    if (failures_ == 0) return std::unexpected("no answer from " + where);
    return std::unexpected("cannot connect to " + where + ": " + reason_);
  }

  const ovsdb::Replica& replica() const { return client_->replica(); }

  ovsdb::Result<ovsdb::TransactResult> transact(ovsdb::Transaction t) {
    std::optional<ovsdb::Result<ovsdb::TransactResult>> out;
    client_->transact(std::move(t), [&out](ovsdb::Result<ovsdb::TransactResult> r) {
      out.emplace(std::move(r));
    });
    run_until([&] { return out.has_value(); });
    if (!out) return ovsdb::make_error(ovsdb::Errc::kDisconnected, "no answer from the database");
    return std::move(*out);
  }

  ~Db() {
    if (client_) client_->stop();
  }

 private:
  template <typename Pred>
  void run_until(Pred pred) {
    while (!pred() && std::chrono::steady_clock::now() < deadline_) {
      io_.restart();
      io_.run_one_until(deadline_);
    }
  }

  const Options& opt_;
  std::chrono::steady_clock::time_point deadline_;
  asio::io_context io_;
  std::optional<ovsdb::Client> client_;
  size_t failures_ = 0;
  bool transient_ = false;
  std::string reason_;
};

// What every command gets: the options, and the database once asked for.
class Ctx {
 public:
  explicit Ctx(Options o) : opt(std::move(o)) {}
  Options opt;

  // The database's desired state; on failure prints why and returns the exit code.
  std::expected<policy::DesiredState, int> load() {
    if (!db_) {
      db_.emplace(opt);
      if (auto ok = db_->open(); !ok) return std::unexpected(failure(ok.error()));
    }
    auto state = glctld::desired_state(db_->replica());
    if (!state) {
      std::fprintf(stderr, "glctl: the database holds values glctl cannot read:\n");
      return std::unexpected(report(texts(state.error().problems), kFailure));
    }
    return std::move(*state);
  }
  const ovsdb::Replica& replica() const { return db_->replica(); }

  // Runs a transaction; prints the database's error (naming the operation) on failure.
  int commit(ovsdb::Transaction t, const std::string& what) {
    auto r = db_->transact(std::move(t));
    if (!r) return failure(what + ": " + r.error().message);
    return kOk;
  }
  ovsdb::Result<ovsdb::TransactResult> transact(ovsdb::Transaction t) {
    return db_->transact(std::move(t));
  }

 private:
  std::optional<Db> db_;
};

// The problems `after` has that `before` did not: what a change would break. Problems the
// database had already are not the change's fault (glctld reports them).
std::vector<std::string> new_problems(const policy::DesiredState& before,
                                      const policy::DesiredState& after) {
  std::set<std::string> old;
  if (auto v = policy::validate(before); !v)
    for (const policy::Problem& p : v.error().problems) old.insert(p.text());
  std::vector<std::string> out;
  if (auto v = policy::validate(after); !v)
    for (const policy::Problem& p : v.error().problems)
      if (!old.contains(p.text())) out.push_back(p.text());
  return out;
}

// Checks a change against the database's state; prints what it would break.
int check_change(const policy::DesiredState& before, const policy::DesiredState& after,
                 const std::string& what) {
  auto problems = new_problems(before, after);
  if (problems.empty()) return kOk;
  std::fprintf(stderr, "glctl: %s: refused, the change would make the desired state invalid:\n",
               what.c_str());
  return report(problems, kFailure);
}

ovsdb::Where name_is(const std::string& name) {
  return {ovsdb::Condition::eq("name", name)};
}

template <typename T>
const T* find_named(const std::vector<T>& items, const std::string& name) {
  for (const T& i : items)
    if (i.name == name) return &i;
  return nullptr;
}

// ---- settings ----------------------------------------------------------------------------------

bool has_settings(const Ctx& ctx) {
  const ovsdb::Table* t = ctx.replica().table(glctld::kSettingsTable);
  return t != nullptr && !t->empty();
}

// Writes settings columns: an update of the row, or the row's insert when there is none
// (guarded by a wait: another glctl may create it at the same time).
int write_settings(Ctx& ctx, Json columns, const std::string& what) {
  ovsdb::Transaction t;
  if (has_settings(ctx)) {
    t.update(glctld::kSettingsTable, {}, std::move(columns));
    return ctx.commit(std::move(t), what);
  }
  t.wait(glctld::kSettingsTable, {}, {"conn_limit"}, ovsdb::WaitUntil::kEqual, {}, 0);
  if (!columns.contains("conn_limit")) columns["conn_limit"] = 0;
  t.insert(glctld::kSettingsTable, std::move(columns));
  return ctx.commit(std::move(t), what);
}

int cmd_init(Ctx& ctx, const Args& a) {
  if (a.size() != 1) return usage_error("init takes no arguments");
  auto state = ctx.load();
  if (!state) return state.error();
  if (has_settings(ctx)) return kOk;
  ovsdb::Transaction t;
  t.wait(glctld::kSettingsTable, {}, {"conn_limit"}, ovsdb::WaitUntil::kEqual, {}, 0);
  t.insert(glctld::kSettingsTable, Json{{"conn_limit", 0}});
  auto r = ctx.transact(std::move(t));
  if (!r && r.error().code == ovsdb::Errc::kTxnFailed && r.error().op_index == 0)
    return kOk;  // created meanwhile by someone else
  if (!r) return failure("init: " + r.error().message);
  return kOk;
}

int cmd_set_default(Ctx& ctx, const Args& a) {
  if (a.size() != 2 || (a[1] != "deny" && a[1] != "allow"))
    return usage_error("set-default deny|allow");
  auto state = ctx.load();
  if (!state) return state.error();
  const policy::Action action = a[1] == "allow" ? policy::Action::kAllow : policy::Action::kDeny;
  return write_settings(ctx, Json{{"default_action", glctld::default_action_value(action)}},
                        "set-default");
}

int cmd_set_conn_limit(Ctx& ctx, const Args& a) {
  if (a.size() != 2) return usage_error("set-conn-limit N");
  auto n = parse_number(a[1], UINT32_MAX);
  if (!n)
    return usage_error("set-conn-limit: conn_limit: \"" + a[1] +
                       "\": not a number 0..4294967295 (0 = no limit)");
  auto state = ctx.load();
  if (!state) return state.error();
  return write_settings(ctx, Json{{"conn_limit", *n}}, "set-conn-limit");
}

// set-flow-log PATH | set-flow-log "" (off); set-ipfix COLLECTOR | set-ipfix "" (off).
int cmd_set_flow_log(Ctx& ctx, const Args& a) {
  if (a.size() != 2) return usage_error("set-flow-log PATH (\"\" turns it off)");
  if (!a[1].empty() && a[1][0] != '/')
    return usage_error("set-flow-log: flow_log: \"" + a[1] +
                       "\": an absolute path (glctld opens it on every host)");
  auto state = ctx.load();
  if (!state) return state.error();
  return write_settings(
      ctx, Json{{"flow_log", a[1].empty() ? Json::array({"set", Json::array()}) : Json(a[1])}},
      "set-flow-log");
}

int cmd_set_ipfix(Ctx& ctx, const Args& a) {
  if (a.size() != 2) return usage_error("set-ipfix COLLECTOR (\"\" turns it off)");
  if (!a[1].empty()) {
    if (auto t = glctld::parse_ipfix_target(a[1]); !t)
      return usage_error("set-ipfix: ipfix_collector: " + t.error());
  }
  auto state = ctx.load();
  if (!state) return state.error();
  return write_settings(
      ctx,
      Json{{"ipfix_collector", a[1].empty() ? Json::array({"set", Json::array()}) : Json(a[1])}},
      "set-ipfix");
}

// ---- workloads ---------------------------------------------------------------------------------

struct WorkloadArgs {
  std::optional<std::string> host, port, mac;
  std::optional<std::vector<std::string>> ips;
  std::optional<std::map<std::string, std::string>> labels;
};

std::expected<WorkloadArgs, std::string> parse_workload_args(const Args& a, size_t from) {
  WorkloadArgs w;
  for (size_t i = from; i < a.size(); ++i) {
    const std::string& arg = a[i];
    const size_t eq = arg.find('=');
    if (eq == std::string::npos)
      return std::unexpected("\"" + arg + "\": want KEY=VALUE (host, port, mac, ip, label)");
    const std::string key = arg.substr(0, eq);
    const std::string value = arg.substr(eq + 1);
    auto once = [&](std::optional<std::string>& field) -> std::expected<void, std::string> {
      if (field) return std::unexpected(key + ": given twice");
      field = value;
      return {};
    };
    std::expected<void, std::string> ok;
    if (key == "host") {
      ok = once(w.host);
    } else if (key == "port") {
      ok = once(w.port);
    } else if (key == "mac") {
      ok = once(w.mac);
    } else if (key == "ip" || key == "ips") {
      if (!w.ips) w.ips.emplace();
      if (!value.empty())
        for (const std::string& ip : split_commas(value)) w.ips->push_back(ip);
    } else if (key == "label" || key == "labels") {
      if (!w.labels) w.labels.emplace();
      if (value.empty()) continue;
      const size_t eq2 = value.find('=');
      if (eq2 == std::string::npos)
        return std::unexpected("labels: \"" + value + "\": want label=KEY=VALUE");
      const std::string k = value.substr(0, eq2);
      if (!w.labels->emplace(k, value.substr(eq2 + 1)).second)
        return std::unexpected("labels: \"" + k + "\": given twice");
    } else {
      return std::unexpected("\"" + arg + "\": unknown key \"" + key +
                             "\" (host, port, mac, ip, label)");
    }
    if (!ok) return std::unexpected(ok.error());
  }
  return w;
}

// Applies the given keys to `w`.
void apply(const WorkloadArgs& args, policy::Workload& w) {
  if (args.host) w.host = *args.host;
  if (args.port) w.port = *args.port;
  if (args.mac) w.mac = *args.mac;
  if (args.ips) w.ips = *args.ips;
  if (args.labels) w.labels = *args.labels;
}

// The syntax of the given fields, checked alone (placeholders for the others): problems
// that need no database.
std::vector<std::string> workload_syntax(const std::string& name, const WorkloadArgs& args) {
  policy::DesiredState alone;
  policy::Workload w;
  w.name = name;
  w.host = "h";
  w.port = "p";
  w.mac = "02:00:00:00:00:01";
  apply(args, w);
  alone.workloads.push_back(std::move(w));
  auto v = policy::validate(alone);
  return v ? std::vector<std::string>{} : texts(v.error().problems);
}

int cmd_add_workload(Ctx& ctx, const Args& a) {
  if (a.size() < 2)
    return usage_error("add-workload NAME host=H port=P mac=M [ip=A[,A]]... [label=K=V]...");
  const std::string& name = a[1];
  auto args = parse_workload_args(a, 2);
  if (!args) return usage_error("add-workload " + name + ": " + args.error());
  for (const char* key : {"host", "port", "mac"}) {
    const bool given = key == std::string("host")   ? args->host.has_value()
                       : key == std::string("port") ? args->port.has_value()
                                                    : args->mac.has_value();
    if (!given) return usage_error("add-workload " + name + ": " + key + "= is required");
  }
  if (auto p = workload_syntax(name, *args); !p.empty()) return report(p, kUsageError);

  auto state = ctx.load();
  if (!state) return state.error();
  if (find_named(state->workloads, name))
    return failure("add-workload: workload " + name + " already exists (set-workload changes it)");
  policy::Workload w;
  w.name = name;
  apply(*args, w);
  policy::DesiredState after = *state;
  after.workloads.push_back(w);
  if (int rc = check_change(*state, after, "add-workload " + name); rc != kOk) return rc;
  ovsdb::Transaction t;
  t.insert(glctld::kWorkloadTable, glctld::workload_row(w));
  return ctx.commit(std::move(t), "add-workload " + name);
}

int cmd_set_workload(Ctx& ctx, const Args& a) {
  if (a.size() < 3)
    return usage_error("set-workload NAME [host=H] [port=P] [mac=M] [ip=A[,A]]... [label=K=V]...");
  const std::string& name = a[1];
  auto args = parse_workload_args(a, 2);
  if (!args) return usage_error("set-workload " + name + ": " + args.error());
  if (auto p = workload_syntax(name, *args); !p.empty()) return report(p, kUsageError);

  auto state = ctx.load();
  if (!state) return state.error();
  policy::DesiredState after = *state;
  policy::Workload* w = nullptr;
  for (policy::Workload& x : after.workloads)
    if (x.name == name) w = &x;
  if (w == nullptr) return failure("set-workload: no workload named " + name);
  apply(*args, *w);
  if (int rc = check_change(*state, after, "set-workload " + name); rc != kOk) return rc;
  const Json row = glctld::workload_row(*w);
  Json columns = Json::object();
  if (args->host) columns["host"] = row["host"];
  if (args->port) columns["port"] = row["port"];
  if (args->mac) columns["mac"] = row["mac"];
  if (args->ips) columns["ips"] = row["ips"];
  if (args->labels) columns["labels"] = row["labels"];
  ovsdb::Transaction t;
  t.update(glctld::kWorkloadTable, name_is(name), std::move(columns));
  return ctx.commit(std::move(t), "set-workload " + name);
}

int cmd_del_workload(Ctx& ctx, const Args& a) {
  if (a.size() != 2) return usage_error("del-workload NAME");
  const std::string& name = a[1];
  auto state = ctx.load();
  if (!state) return state.error();
  if (!find_named(state->workloads, name))
    return ctx.opt.if_exists ? kOk : failure("del-workload: no workload named " + name);
  policy::DesiredState after = *state;
  std::erase_if(after.workloads, [&](const policy::Workload& w) { return w.name == name; });
  if (int rc = check_change(*state, after, "del-workload " + name); rc != kOk) return rc;
  ovsdb::Transaction t;
  t.erase(glctld::kWorkloadTable, name_is(name));
  return ctx.commit(std::move(t), "del-workload " + name);
}

int cmd_dump_workloads(Ctx& ctx, const Args& a) {
  if (a.size() != 1) return usage_error("dump-workloads takes no arguments");
  auto state = ctx.load();
  if (!state) return state.error();
  if (ctx.opt.json) {
    Json all = Json::array();
    for (const policy::Workload& w : state->workloads)
      all.push_back({{"name", w.name},
                     {"host", w.host},
                     {"port", w.port},
                     {"mac", w.mac},
                     {"ips", w.ips},
                     {"labels", w.labels}});
    print_json(all);
    return kOk;
  }
  for (const policy::Workload& w : state->workloads) {
    std::string line = w.name + " host=" + w.host + " port=" + w.port + " mac=" + w.mac;
    if (!w.ips.empty()) line += " ip=" + join(w.ips, ",");
    for (const auto& [k, v] : w.labels) line += " label=" + k + "=" + v;
    std::printf("%s\n", line.c_str());
  }
  return kOk;
}

// ---- groups ------------------------------------------------------------------------------------

struct GroupArgs {
  std::optional<std::string> selector;
  std::optional<std::vector<std::string>> members;
};

std::expected<GroupArgs, std::string> parse_group_args(const Args& a, size_t from) {
  GroupArgs g;
  for (size_t i = from; i < a.size(); ++i) {
    const std::string& arg = a[i];
    const size_t eq = arg.find('=');
    const std::string key = arg.substr(0, eq);
    if (eq == std::string::npos || (key != "selector" && key != "member" && key != "members"))
      return std::unexpected("\"" + arg + "\": want selector=SEL or member=W");
    const std::string value = arg.substr(eq + 1);
    if (key == "selector") {
      if (g.selector) return std::unexpected("selector: given twice");
      g.selector = value;
    } else {
      if (!g.members) g.members.emplace();
      if (!value.empty())
        for (const std::string& m : split_commas(value)) g.members->push_back(m);
    }
  }
  return g;
}

std::vector<std::string> group_syntax(const std::string& name, const GroupArgs& g) {
  std::vector<std::string> out;
  const std::string obj = "group " + name;
  if (!policy::is_valid_name(name))
    out.push_back(obj + ": name: \"" + name +
                  "\": not a valid name ([A-Za-z0-9][A-Za-z0-9._-]*, 1..64)");
  if (g.selector && !g.selector->empty())
    if (auto s = policy::parse_selector(*g.selector); !s)
      out.push_back(obj + ": selector: " + s.error());
  if (g.members)
    for (const std::string& m : *g.members)
      if (!policy::is_valid_name(m))
        out.push_back(obj + ": members: \"" + m + "\": not a valid workload name");
  return out;
}

int cmd_add_or_set_group(Ctx& ctx, const Args& a) {
  const bool add = a[0] == "add-group";
  if (a.size() < (add ? 2u : 3u)) return usage_error(a[0] + " NAME [selector=SEL] [member=W]...");
  const std::string& name = a[1];
  auto args = parse_group_args(a, 2);
  if (!args) return usage_error(a[0] + " " + name + ": " + args.error());
  if (auto p = group_syntax(name, *args); !p.empty()) return report(p, kUsageError);

  auto state = ctx.load();
  if (!state) return state.error();
  const bool exists = find_named(state->groups, name) != nullptr;
  if (add && exists)
    return failure("add-group: group " + name + " already exists (set-group changes it)");
  if (!add && !exists) return failure("set-group: no group named " + name);
  policy::DesiredState after = *state;
  policy::Group* g = nullptr;
  if (add) {
    after.groups.emplace_back();
    g = &after.groups.back();
    g->name = name;
  } else {
    for (policy::Group& x : after.groups)
      if (x.name == name) g = &x;
  }
  if (args->selector) g->selector = *args->selector;
  if (args->members) g->members = *args->members;
  if (int rc = check_change(*state, after, a[0] + " " + name); rc != kOk) return rc;
  ovsdb::Transaction t;
  if (add) {
    t.insert(glctld::kGroupTable, glctld::group_row(*g));
  } else {
    const Json row = glctld::group_row(*g);
    Json columns = Json::object();
    if (args->selector) columns["selector"] = row["selector"];
    if (args->members) columns["members"] = row["members"];
    if (columns.empty()) return kOk;
    t.update(glctld::kGroupTable, name_is(name), std::move(columns));
  }
  return ctx.commit(std::move(t), a[0] + " " + name);
}

int cmd_del_group(Ctx& ctx, const Args& a) {
  if (a.size() != 2) return usage_error("del-group NAME");
  const std::string& name = a[1];
  auto state = ctx.load();
  if (!state) return state.error();
  if (!find_named(state->groups, name))
    return ctx.opt.if_exists ? kOk : failure("del-group: no group named " + name);
  policy::DesiredState after = *state;
  std::erase_if(after.groups, [&](const policy::Group& g) { return g.name == name; });
  if (int rc = check_change(*state, after, "del-group " + name); rc != kOk) return rc;
  ovsdb::Transaction t;
  t.erase(glctld::kGroupTable, name_is(name));
  return ctx.commit(std::move(t), "del-group " + name);
}

int cmd_dump_groups(Ctx& ctx, const Args& a) {
  if (a.size() != 1) return usage_error("dump-groups takes no arguments");
  auto state = ctx.load();
  if (!state) return state.error();
  if (ctx.opt.json) {
    Json all = Json::array();
    for (const policy::Group& g : state->groups)
      all.push_back({{"name", g.name}, {"selector", g.selector}, {"members", g.members}});
    print_json(all);
    return kOk;
  }
  for (const policy::Group& g : state->groups) {
    std::string line = g.name;
    if (!g.selector.empty()) line += " selector=" + g.selector;
    for (const std::string& m : g.members) line += " member=" + m;
    std::printf("%s\n", line.c_str());
  }
  return kOk;
}

// ---- rules -------------------------------------------------------------------------------------

std::optional<uint32_t> parse_rule_id(const std::string& s) {
  auto n = parse_number(s, policy::kMaxRuleId);
  if (!n || *n == 0) return std::nullopt;
  return static_cast<uint32_t>(*n);
}

// The next free rule id: one above the highest, or the lowest free one when the highest
// is taken.
std::optional<uint32_t> next_rule_id(const std::vector<policy::Rule>& rules) {
  std::set<uint32_t> used;
  for (const policy::Rule& r : rules) used.insert(r.rule_id);
  if (used.empty()) return 1;
  if (*used.rbegin() < policy::kMaxRuleId) return *used.rbegin() + 1;
  uint32_t id = 1;
  for (uint32_t u : used) {
    if (u != id) break;
    ++id;
  }
  if (id > policy::kMaxRuleId) return std::nullopt;
  return id;
}

int cmd_add_rule(Ctx& ctx, const Args& a) {
  if (a.size() != 2) return usage_error("add-rule \"RULE\" (one argument: quote the rule text)");
  auto parsed = policy::parse_rule(a[1]);
  if (!parsed) {
    std::vector<std::string> p;
    for (const policy::Problem& x : parsed.error().problems) p.push_back("add-rule: " + x.text());
    return report(p, kUsageError);
  }
  policy::Rule rule = *parsed;
  auto state = ctx.load();
  if (!state) return state.error();
  if (rule.rule_id == 0) {
    auto id = next_rule_id(state->rules);
    if (!id) return failure("add-rule: every rule id is taken");
    rule.rule_id = *id;
  } else {
    for (const policy::Rule& r : state->rules)
      if (r.rule_id == rule.rule_id)
        return failure("add-rule: rule " + std::to_string(rule.rule_id) +
                       " already exists (del-rule it first, or leave id= out)");
  }
  policy::DesiredState after = *state;
  after.rules.push_back(rule);
  const std::string what = "add-rule " + std::to_string(rule.rule_id);
  if (int rc = check_change(*state, after, what); rc != kOk) return rc;
  ovsdb::Transaction t;
  t.insert(glctld::kRuleTable, glctld::rule_row(rule));
  if (int rc = ctx.commit(std::move(t), what); rc != kOk) return rc;
  if (ctx.opt.json)
    print_json(Json{{"rule_id", rule.rule_id}, {"text", policy::format_rule(rule)}});
  else
    std::printf("%u\n", rule.rule_id);
  return kOk;
}

int cmd_del_rule(Ctx& ctx, const Args& a) {
  if (a.size() != 2) return usage_error("del-rule ID");
  auto id = parse_rule_id(a[1]);
  if (!id) return usage_error("del-rule: rule_id: \"" + a[1] + "\": must be 1..2147483647");
  auto state = ctx.load();
  if (!state) return state.error();
  const bool exists = std::any_of(state->rules.begin(), state->rules.end(),
                                  [&](const policy::Rule& r) { return r.rule_id == *id; });
  if (!exists) return ctx.opt.if_exists ? kOk : failure("del-rule: no rule " + a[1]);
  ovsdb::Transaction t;
  t.erase(glctld::kRuleTable, {ovsdb::Condition::eq("rule_id", *id)});
  return ctx.commit(std::move(t), "del-rule " + a[1]);
}

int cmd_del_rules(Ctx& ctx, const Args& a) {
  if (a.size() != 1) return usage_error("del-rules takes no arguments");
  auto state = ctx.load();
  if (!state) return state.error();
  ovsdb::Transaction t;
  t.erase(glctld::kRuleTable, {});
  return ctx.commit(std::move(t), "del-rules");
}

int cmd_dump_rules(Ctx& ctx, const Args& a) {
  if (a.size() != 1) return usage_error("dump-rules takes no arguments");
  auto state = ctx.load();
  if (!state) return state.error();
  std::vector<policy::Rule> rules = state->rules;
  std::stable_sort(rules.begin(), rules.end(), [](const policy::Rule& x, const policy::Rule& y) {
    return x.priority != y.priority ? x.priority > y.priority : x.rule_id < y.rule_id;
  });
  // Hit counters from this host's glctld (gldp's, since it started), when it answers.
  std::map<uint32_t, Json> stats;
  bool have_stats = false;
  if (auto r = glctld::mgmt_call(ctx.opt.mgmt, Json{{"cmd", "rule-stats"}}, ctx.opt.timeout); !r) {
    std::fprintf(stderr, "glctl: no hit counters: %s\n", r.error().c_str());
  } else if (r->contains("error")) {
    std::fprintf(stderr, "glctl: no hit counters: %s\n", (*r)["error"].dump().c_str());
  } else {
    have_stats = true;
    for (const Json& x : r->value("rules", Json::array())) stats[x.value("rule_id", 0u)] = x;
  }
  auto counter = [&](uint32_t id, const char* key) -> uint64_t {
    auto it = stats.find(id);
    return it == stats.end() ? 0 : it->second.value(key, uint64_t{0});
  };
  if (ctx.opt.json) {
    Json all = Json::array();
    for (const policy::Rule& r : rules) {
      Json j = glctld::rule_row(r);  // every column, as written to the database
      j["text"] = policy::format_rule(r);
      if (have_stats) {
        j["packets"] = counter(r.rule_id, "packets");
        j["bytes"] = counter(r.rule_id, "bytes");
        j["connections"] = counter(r.rule_id, "connections");
      }
      all.push_back(std::move(j));
    }
    if (have_stats)
      all.push_back({{"rule_id", 0},
                     {"text", "(default action)"},
                     {"packets", counter(0, "packets")},
                     {"bytes", counter(0, "bytes")},
                     {"connections", counter(0, "connections")}});
    print_json(all);
    return kOk;
  }
  auto prefix = [&](uint32_t id) -> std::string {
    if (!have_stats) return "";
    return "n_packets=" + std::to_string(counter(id, "packets")) +
           ", n_bytes=" + std::to_string(counter(id, "bytes")) +
           ", n_conns=" + std::to_string(counter(id, "connections")) + ", ";
  };
  for (const policy::Rule& r : rules)
    std::printf("%s%s\n", prefix(r.rule_id).c_str(), policy::format_rule(r).c_str());
  if (have_stats) std::printf("%s(default action)\n", prefix(0).c_str());
  return kOk;
}

// ---- runtime state from glctld -----------------------------------------------------------------

std::expected<Json, int> ask_glctld_request(const Ctx& ctx, const Json& request) {
  const std::string cmd = request.value("cmd", "");
  auto reply = glctld::mgmt_call(ctx.opt.mgmt, request, ctx.opt.timeout);
  if (!reply) return std::unexpected(failure(reply.error()));
  if (auto e = reply->find("error"); e != reply->end()) {
    std::vector<std::string> lines{cmd + ": " +
                                   (e->is_string() ? e->get<std::string>() : e->dump())};
    if (auto errs = reply->find("errors"); errs != reply->end() && errs->is_array())
      for (const Json& x : *errs)
        lines.push_back("  " + (x.is_string() ? x.get<std::string>() : x.dump()));
    return std::unexpected(report(lines, kFailure));
  }
  return std::move(*reply);
}

std::expected<Json, int> ask_glctld(const Ctx& ctx, const char* cmd) {
  return ask_glctld_request(ctx, Json{{"cmd", cmd}});
}

std::string str(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

int cmd_status(Ctx& ctx, const Args& a) {
  if (a.size() != 1) return usage_error("status takes no arguments");
  auto s = ask_glctld(ctx, "status");
  if (!s) return s.error();
  if (ctx.opt.json) {
    print_json(*s);
    return kOk;
  }
  const Json& j = *s;
  std::printf("host: %s\n", str(j, "host").c_str());
  const std::string policy_state = str(j, "policy");
  const bool in_force = j.value("in_force", false);
  if (policy_state == "rejected") {
    std::printf("policy: rejected at %s; %s:\n", str(j, "rejected_at").c_str(),
                in_force ? "the running policy stays in force" : "nothing of it is installed");
    for (const Json& e : j.value("errors", Json::array()))
      std::printf("  %s\n", e.get<std::string>().c_str());
  } else if (policy_state == "accepted") {
    std::printf("policy: accepted, %s\n", in_force ? "in force" : "not installed yet");
  } else {
    std::printf("policy: none yet (the database was not read)\n");
  }
  std::printf("generation: %s", str(j, "generation").c_str());
  if (!str(j, "last_push").empty())
    std::printf(" (installed %s; %s installs)", str(j, "last_push").c_str(),
                str(j, "pushes").c_str());
  if (const Json li = j.value("last_install", Json()); li.is_object()) {
    if (li.value("delta", false))
      std::printf("; last as a delta: %s ports sent, %s removed, %s", str(li, "ports_sent").c_str(),
                  str(li, "ports_removed").c_str(),
                  li.value("new_ipcache", false) ? "new ipcache" : "ipcache kept");
    else
      std::printf("; last whole: %s ports", str(li, "ports_sent").c_str());
    if (!str(li, "delta_refused").empty())
      std::printf(" (gldp refused the delta: %s)", str(li, "delta_refused").c_str());
  }
  std::printf("\n");
  const Json db = j.value("ovsdb", Json::object());
  std::printf("ovsdb: %s %s", str(db, "state").c_str(), str(db, "remote").c_str());
  if (str(db, "state") != "connected" && !str(db, "reason").empty())
    std::printf(" (%s)", str(db, "reason").c_str());
  std::printf("\n");
  const Json dp = j.value("gldp", Json::object());
  const bool reachable = dp.value("reachable", false);
  std::printf("gldp: %s %s", reachable ? "reachable" : "unreachable", str(dp, "socket").c_str());
  if (reachable) std::printf(" (boot id %s)", str(dp, "boot_id").c_str());
  if (!str(dp, "error").empty()) std::printf(" (%s)", str(dp, "error").c_str());
  std::printf("\n");
  for (const Json& m : dp.value("missing_ports", Json::array()))
    std::printf("  workload %s: port %s not in gldp (%s)\n", str(m, "workload").c_str(),
                str(m, "port").c_str(), str(m, "reason").c_str());
  std::printf("workloads: %s (%s here), groups: %s, rules: %s, identities: %s\n",
              str(j, "workloads").c_str(), str(j, "local_workloads").c_str(),
              str(j, "groups").c_str(), str(j, "rules").c_str(), str(j, "identities").c_str());
  std::printf("enforced: %s ports, %s prefixes\n", str(j, "ports").c_str(),
              str(j, "prefixes").c_str());
  for (const Json& w : j.value("warnings", Json::array()))
    std::printf("warning: %s\n", w.get<std::string>().c_str());
  return kOk;
}

int cmd_compiled(Ctx& ctx, const Args& a) {
  if (a.size() != 1) return usage_error("compiled takes no arguments");
  auto s = ask_glctld(ctx, "compiled");
  if (!s) return s.error();
  if (ctx.opt.json)
    print_json(*s);
  else
    std::fputs(str(*s, "text").c_str(), stdout);
  return kOk;
}

int cmd_identities(Ctx& ctx, const Args& a) {
  if (a.size() != 1) return usage_error("identities takes no arguments");
  auto s = ask_glctld(ctx, "identities");
  if (!s) return s.error();
  if (ctx.opt.json) {
    print_json(*s);
    return kOk;
  }
  for (const Json& i : s->value("identities", Json::array())) {
    std::string line = str(i, "identity") + " " + str(i, "kind");
    if (i.contains("workload")) line += " " + str(i, "workload") + " {" + str(i, "key") + "}";
    if (i.contains("prefix")) line += " " + str(i, "prefix");
    std::printf("%s\n", line.c_str());
  }
  return kOk;
}

// "src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=5432" (or icmp id/type/code).
std::string tuple_text(const Json& t) {
  std::string out = "src=" + str(t, "src") + ",dst=" + str(t, "dst");
  if (t.contains("sport")) out += ",sport=" + str(t, "sport") + ",dport=" + str(t, "dport");
  if (t.contains("icmp_type"))
    out += ",id=" + str(t, "icmp_id") + ",type=" + str(t, "icmp_type") +
           ",code=" + str(t, "icmp_code");
  return out;
}

std::string proto_text(const Json& c) {
  const int family = c.value("family", 4), proto = c.value("proto", 0);
  switch (proto) {
    case 6:
      return family == 6 ? "tcp6" : "tcp";
    case 17:
      return family == 6 ? "udp6" : "udp";
    case 1:
      return "icmp";
    case 58:
      return "icmp6";
    case 132:
      return family == 6 ? "sctp6" : "sctp";
    default:
      return std::string(family == 6 ? "ipv6" : "ip") + ",proto=" + std::to_string(proto);
  }
}

// The optional WORKLOAD|zone=N argument of dump-conntrack and flush-conntrack into the
// request (zone: 0..65535, else a usage error naming it). False after a usage error.
bool conntrack_scope(const Args& a, const std::string& cmd, Json& req, int& rc) {
  if (a.size() > 2) {
    rc = usage_error(cmd + " [WORKLOAD|zone=N]");
    return false;
  }
  if (a.size() < 2) return true;
  if (a[1].starts_with("zone=")) {
    const std::string v = a[1].substr(5);
    auto zone = parse_number(v, UINT16_MAX);
    if (!zone) {
      rc = usage_error(cmd + ": zone: \"" + v + "\": a conntrack zone, 0..65535");
      return false;
    }
    req["zone"] = *zone;
  } else {
    req["workload"] = a[1];
  }
  return true;
}

int cmd_dump_conntrack(Ctx& ctx, const Args& a) {
  Json req{{"cmd", "conntrack"}};
  if (int rc = kOk; !conntrack_scope(a, "dump-conntrack", req, rc)) return rc;
  auto s = ask_glctld_request(ctx, req);
  if (!s) return s.error();
  if (ctx.opt.json) {
    print_json(*s);
    return kOk;
  }
  for (const Json& c : s->value("connections", Json::array())) {
    std::string line = str(c, "workload") + " " + str(c, "direction") + " " + proto_text(c) +
                       ",orig=(" + tuple_text(c.at("orig")) + "),reply=(" +
                       tuple_text(c.at("reply")) + ")";
    const Json& p = c.at("packets");
    const Json& b = c.at("bytes");
    line += ",packets=" + p.at(0).dump() + "/" + p.at(1).dump() + ",bytes=" + b.at(0).dump() + "/" +
            b.at(1).dump();
    if (c.contains("tcp_state"))
      line += ",state=" + c.at("tcp_state").at(0).get<std::string>() + "/" +
              c.at("tcp_state").at(1).get<std::string>();
    line += ",timeout=" + str(c, "timeout_s") + "s,rule=" + str(c, "rule_id") +
            ",action=" + str(c, "action");
    if (!c.value("current", true)) line += ",policy=older";
    const std::string names = str(c, "src_name") + " -> " + str(c, "dst_name");
    if (names != " -> ") line += " (" + names + ")";
    std::printf("%s\n", line.c_str());
  }
  if (s->value("truncated", false))
    std::fprintf(stderr, "glctl: more connections than shown (the first %zu)\n",
                 s->value("connections", Json::array()).size());
  return kOk;
}

int cmd_flush_conntrack(Ctx& ctx, const Args& a) {
  Json req{{"cmd", "flush-conntrack"}};
  if (int rc = kOk; !conntrack_scope(a, "flush-conntrack", req, rc)) return rc;
  auto s = ask_glctld_request(ctx, req);
  if (!s) return s.error();
  if (ctx.opt.json)
    print_json(*s);
  else
    std::printf("flushed %s connections\n", str(*s, "flushed").c_str());
  return kOk;
}

int cmd_trace(Ctx& ctx, const Args& a) {
  if (a.size() != 4 || (a[2] != "from-vm" && a[2] != "to-vm"))
    return usage_error("trace WORKLOAD from-vm|to-vm PACKET");
  auto s = ask_glctld_request(
      ctx, Json{{"cmd", "trace"}, {"workload", a[1]}, {"direction", a[2]}, {"packet", a[3]}});
  if (!s) return s.error();
  if (ctx.opt.json) {
    print_json(*s);
    return kOk;
  }
  std::printf("generation %s\n", str(*s, "generation").c_str());
  for (const Json& h : s->value("hops", Json::array())) {
    std::printf("%s %s (port %s, identity %s): remote %s = %s (identity %s)\n",
                str(h, "workload").c_str(), str(h, "direction").c_str(), str(h, "port").c_str(),
                str(h, "identity").c_str(), str(h, "remote").c_str(),
                str(h, "remote_name").empty() ? "?" : str(h, "remote_name").c_str(),
                str(h, "remote_identity").c_str());
    if (!h.value("has_firewall", false)) {
      std::printf("  => %s\n", str(h, "verdict").c_str());
      continue;
    }
    if (h.contains("source_ok"))
      std::printf("  spoof guard: %s\n",
                  h.at("source_ok").get<bool>() ? "ok" : "source not registered");
    std::printf("  first packet: %s -> %s%s\n",
                h.value("rule_id", 0) == 0 ? "default action" : ("rule " + str(h, "rule")).c_str(),
                str(h, "action").c_str(), h.value("log", false) ? ", log" : "");
    if (h.at("connection").is_null()) {
      std::printf("  connection: none\n");
    } else {
      const Json& c = h.at("connection");
      std::string st;
      if (c.contains("tcp_state"))
        st = ", " + c.at("tcp_state").at(0).get<std::string>() + "/" +
             c.at("tcp_state").at(1).get<std::string>();
      std::printf("  connection: %s (%s direction%s, %s, rule %s, %s packets)\n",
                  tuple_text(c.at("orig")).c_str(),
                  c.value("reply_direction", false) ? "reply" : "original", st.c_str(),
                  c.value("current", false) ? "allowed by this version" : "of an older version",
                  str(c, "rule_id").c_str(),
                  (c.at("packets").at(0).dump() + "/" + c.at("packets").at(1).dump()).c_str());
    }
    std::printf("  => %s\n", str(h, "verdict").c_str());
  }
  std::printf("verdict: %s\n", str(*s, "verdict").c_str());
  return kOk;
}

// ---- hosts and keys ----------------------------------------------------------------------------

// The Host table as the database holds it; on failure prints why and returns the exit code.
std::expected<glctld::HostTable, int> load_hosts(Ctx& ctx) {
  auto state = ctx.load();
  if (!state) return std::unexpected(state.error());
  return glctld::host_table(ctx.replica());
}

std::optional<std::string> host_ip_problem(const std::string& ip) {
  auto a = policy::IpAddress::parse(ip);
  if (!a) return "underlay_ip: \"" + ip + "\": not an IPv4 or IPv6 address";
  return std::nullopt;
}

int cmd_add_host(Ctx& ctx, const Args& a) {
  if (a.size() != 4) return usage_error("add-host NAME UNDERLAY_IP PUBKEY");
  glctld::HostEntry h{a[1], a[2], a[3], false};
  if (!policy::is_valid_name(h.name))
    return usage_error("add-host: name: \"" + h.name + "\": not a valid name");
  if (auto p = host_ip_problem(h.underlay_ip)) return usage_error("add-host " + h.name + ": " + *p);
  if (!glctld::key_from_base64(h.pubkey))
    return usage_error("add-host " + h.name + ": pubkey: \"" + h.pubkey +
                       "\": not a base64 X25519 public key (glctld --pubkey KEYFILE prints it)");
  auto hosts = load_hosts(ctx);
  if (!hosts) return hosts.error();
  for (const glctld::HostEntry& o : hosts->hosts) {
    if (o.name == h.name) return failure("add-host: host " + h.name + " already exists");
    if (o.underlay_ip == h.underlay_ip)
      return failure("add-host " + h.name + ": underlay_ip " + h.underlay_ip + " is host " +
                     o.name + "'s");
    if (o.pubkey == h.pubkey)
      return failure("add-host " + h.name + ": pubkey is host " + o.name +
                     "'s (every host has its own key)");
  }
  ovsdb::Transaction t;
  t.insert(glctld::kHostTable, glctld::host_row(h));
  return ctx.commit(std::move(t), "add-host " + h.name);
}

int cmd_del_host(Ctx& ctx, const Args& a) {
  if (a.size() != 2) return usage_error("del-host NAME");
  auto hosts = load_hosts(ctx);
  if (!hosts) return hosts.error();
  if (std::none_of(hosts->hosts.begin(), hosts->hosts.end(),
                   [&](const glctld::HostEntry& h) { return h.name == a[1]; }))
    return ctx.opt.if_exists ? kOk : failure("del-host: no host named " + a[1]);
  ovsdb::Transaction t;
  t.erase(glctld::kHostTable, name_is(a[1]));
  return ctx.commit(std::move(t), "del-host " + a[1]);
}

int cmd_revoke_host(Ctx& ctx, const Args& a) {
  if (a.size() != 2) return usage_error("revoke-host NAME");
  auto hosts = load_hosts(ctx);
  if (!hosts) return hosts.error();
  if (std::none_of(hosts->hosts.begin(), hosts->hosts.end(),
                   [&](const glctld::HostEntry& h) { return h.name == a[1]; }))
    return failure("revoke-host: no host named " + a[1]);
  ovsdb::Transaction t;
  t.update(glctld::kHostTable, name_is(a[1]), Json{{"revoked", true}});
  return ctx.commit(std::move(t), "revoke-host " + a[1]);
}

int cmd_dump_hosts(Ctx& ctx, const Args& a) {
  if (a.size() != 1) return usage_error("dump-hosts takes no arguments");
  auto hosts = load_hosts(ctx);
  if (!hosts) return hosts.error();
  if (ctx.opt.json) {
    Json all = Json::array();
    for (const glctld::HostEntry& h : hosts->hosts) all.push_back(glctld::host_row(h));
    print_json(all);
  } else {
    for (const glctld::HostEntry& h : hosts->hosts)
      std::printf("%s underlay_ip=%s pubkey=%s%s\n", h.name.c_str(), h.underlay_ip.c_str(),
                  h.pubkey.c_str(), h.revoked ? " revoked" : "");
  }
  for (const policy::Problem& p : hosts->problems)
    std::fprintf(stderr, "glctl: %s\n", p.text().c_str());
  return kOk;
}

int cmd_set_rekey(Ctx& ctx, const Args& a) {
  constexpr const char* kUse = "set-rekey SECONDS [packets=N] [bytes=N]";
  if (a.size() < 2 || a.size() > 4) return usage_error(kUse);
  auto n = parse_number(a[1], 86400);
  if (!n || *n == 0)
    return usage_error("set-rekey: rekey_seconds: \"" + a[1] + "\": want 1..86400 seconds");
  std::map<std::string, uint64_t> limits;  // option -> value (0: remove it)
  for (size_t i = 2; i < a.size(); ++i) {
    const size_t eq = a[i].find('=');
    const std::string key = eq == std::string::npos ? a[i] : a[i].substr(0, eq);
    if (eq == std::string::npos || (key != "packets" && key != "bytes"))
      return usage_error(std::string(kUse) + ": \"" + a[i] + "\"");
    auto v = parse_number(a[i].substr(eq + 1), UINT64_MAX / 2);
    if (!v)
      return usage_error("set-rekey: rekey_" + key + ": \"" + a[i].substr(eq + 1) +
                         "\": not a number (0 turns it off)");
    if (!limits.emplace("rekey_" + key, *v).second)
      return usage_error("set-rekey: " + key + "= given twice");
  }
  auto state = ctx.load();
  if (!state) return state.error();
  Json columns{{"rekey_seconds", *n}};
  if (!limits.empty()) {
    Json options = Json::array();
    if (const ovsdb::Table* t = ctx.replica().table(glctld::kSettingsTable);
        t != nullptr && t->size() == 1) {
      const Json& row = t->begin()->second;
      if (auto it = row.find("options"); it != row.end())
        if (auto m = ovsdb::string_map(*it))
          for (const auto& [k, v] : *m)
            if (!limits.contains(k)) options.push_back(Json::array({k, v}));
    }
    for (const auto& [k, v] : limits)
      if (v != 0) options.push_back(Json::array({k, std::to_string(v)}));
    columns["options"] = Json::array({"map", options});
  }
  return write_settings(ctx, std::move(columns), "set-rekey");
}

int cmd_keys(Ctx& ctx, const Args& a) {
  if (a.size() != 1) return usage_error("keys takes no arguments");
  auto s = ask_glctld(ctx, "keys");
  if (!s) return s.error();
  if (ctx.opt.json) {
    print_json(*s);
    return kOk;
  }
  const Json& j = *s;
  std::printf("host %s, underlay %s, key %s\n", str(j, "host").c_str(),
              str(j, "underlay_ip").c_str(), str(j, "pubkey").c_str());
  std::printf("handshakes on UDP port %s: %s", str(j, "port").c_str(),
              j.value("listening", false) ? "listening" : "not listening");
  if (!str(j, "problem").empty()) std::printf(" (%s)", str(j, "problem").c_str());
  std::printf("\nrekey every %s s", str(j, "rekey_seconds").c_str());
  if (j.value("rekey_packets", 0) != 0)
    std::printf(" or %s packets", str(j, "rekey_packets").c_str());
  std::printf("; SA lifetime %.0f s (gldp removes an SA then, unless replaced)\n",
              j.value("sa_lifetime_seconds", 0.0));
  for (const Json& p : j.value("peers", Json::array())) {
    std::printf("peer %s (%s):", str(p, "name").c_str(), str(p, "underlay_ip").c_str());
    if (!p.value("valid", false)) {
      std::printf(" no session: %s\n", str(p, "problem").c_str());
      continue;
    }
    const Json& s2 = p.at("active");
    if (s2.is_null()) {
      std::printf(" no session%s%s\n", p.value("handshaking", false) ? ", handshaking" : "",
                  str(p, "problem").empty() ? "" : (" (" + str(p, "problem") + ")").c_str());
    } else {
      std::printf(
          " %s, %s, ESP port %s (group %s), in spi 0x%x+%s, out spi 0x%x+%s, %s, "
          "age %.1f s, lifetime left %.1f s, %s sessions so far\n",
          str(s2, "state").c_str(), str(s2, "role").c_str(), str(p, "esp_port").c_str(),
          str(s2, "group").c_str(), s2.value("spi_in", 0u), str(s2, "n_in").c_str(),
          s2.value("spi_out", 0u), str(s2, "n_out").c_str(), str(s2, "cipher").c_str(),
          s2.value("age_s", 0.0), s2.value("lifetime_left_s", 0.0), str(p, "sessions").c_str());
    }
    if (!str(p, "last_error").empty())
      std::printf("  last error: %s\n", str(p, "last_error").c_str());
  }
  const Json c = j.value("counters", Json::object());
  std::printf(
      "sessions %s (rekeys %s), revocations %s, inits sent %s, responses sent %s, "
      "cookies sent %s\n",
      str(c, "sessions").c_str(), str(c, "rekeys").c_str(), str(c, "revocations").c_str(),
      str(c, "inits_sent").c_str(), str(c, "responses_sent").c_str(),
      str(c, "cookies_sent").c_str());
  std::string refused;
  const Json refused_counts = c.value("refused", Json::object());
  for (const auto& [k, v] : refused_counts.items())
    if (v.get<uint64_t>() != 0) refused += " " + k + "=" + v.dump();
  for (const char* k : {"wrong_source", "crossed", "rate_limited", "no_esp_port", "bad_confirm",
                        "unknown_message", "install_errors"})
    if (c.value(k, uint64_t{0}) != 0) refused += std::string(" ") + k + "=" + str(c, k);
  if (!refused.empty()) std::printf("refused/dropped:%s\n", refused.c_str());
  return kOk;
}

struct Command {
  const char* name;
  int (*run)(Ctx&, const Args&);
};

constexpr Command kCommands[] = {
    {"init", cmd_init},
    {"set-default", cmd_set_default},
    {"set-conn-limit", cmd_set_conn_limit},
    {"set-flow-log", cmd_set_flow_log},
    {"set-ipfix", cmd_set_ipfix},
    {"add-workload", cmd_add_workload},
    {"set-workload", cmd_set_workload},
    {"del-workload", cmd_del_workload},
    {"dump-workloads", cmd_dump_workloads},
    {"add-group", cmd_add_or_set_group},
    {"set-group", cmd_add_or_set_group},
    {"del-group", cmd_del_group},
    {"dump-groups", cmd_dump_groups},
    {"add-rule", cmd_add_rule},
    {"del-rule", cmd_del_rule},
    {"del-rules", cmd_del_rules},
    {"dump-rules", cmd_dump_rules},
    {"status", cmd_status},
    {"compiled", cmd_compiled},
    {"identities", cmd_identities},
    {"dump-conntrack", cmd_dump_conntrack},
    {"flush-conntrack", cmd_flush_conntrack},
    {"trace", cmd_trace},
    {"add-host", cmd_add_host},
    {"del-host", cmd_del_host},
    {"revoke-host", cmd_revoke_host},
    {"dump-hosts", cmd_dump_hosts},
    {"set-rekey", cmd_set_rekey},
    {"keys", cmd_keys},
};

}  // namespace

static int run_main(int argc, char** argv) {
  Options opt;
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return kOk;
    }
    if (a == "--json") {
      opt.json = true;
      continue;
    }
    if (a == "--if-exists") {
      opt.if_exists = true;
      continue;
    }
    if (a.rfind("--", 0) == 0) {
      std::string name = a, value;
      if (const size_t eq = a.find('='); eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
      } else if (a == "--db" || a == "--mgmt-socket" || a == "--timeout") {
        if (i + 1 >= argc) return usage_error(a + " needs a value");
        value = argv[++i];
      } else {
        return usage_error("unknown option '" + a + "'");
      }
      if (name == "--db") {
        opt.db.clear();
        for (const std::string& r : split_commas(value))
          if (!r.empty()) opt.db.push_back(r);
        if (opt.db.empty()) return usage_error("--db: no remote given");
        if (auto r = ovsdb::RemoteSet::parse(opt.db); !r)
          return usage_error("--db: " + r.error().message);
      } else if (name == "--mgmt-socket") {
        if (value.empty()) return usage_error("--mgmt-socket: empty path");
        opt.mgmt = value;
      } else if (name == "--timeout") {
        auto s = parse_number(value, 3600);
        if (!s || *s == 0) return usage_error("--timeout: \"" + value + "\": want 1..3600 seconds");
        opt.timeout = std::chrono::seconds(*s);
      } else {
        return usage_error("unknown option '" + name + "'");
      }
      continue;
    }
    args.push_back(a);
  }
  if (args.empty()) return usage_error("missing command");
  for (const Command& c : kCommands) {
    if (args[0] == c.name) {
      Ctx ctx(opt);
      return c.run(ctx, args);
    }
  }
  return usage_error("unknown command '" + args[0] + "'");
}

int main(int argc, char** argv) {
  // A safety net: a JSON value of an unexpected type (a file given to fw-install, a reply)
  // is an error message and exit 1, never an abort.
  try {
    return run_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "glctl: %s\n", e.what());
    return 1;
  }
}
