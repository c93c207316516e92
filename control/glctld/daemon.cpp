#include "control/glctld/daemon.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <utility>

#include <boost/asio/post.hpp>

#include "control/glctld/state.hpp"
#include "control/ovsdb/remote.hpp"
#include "control/policy/rule_text.hpp"

namespace gl::glctld {

namespace asio = boost::asio;
using Json = nlohmann::json;

namespace {

constexpr const char* kCommands =
    "status, compiled, identities, keys, rule-stats, conntrack, flush-conntrack, trace";

Json time_or_null(std::chrono::system_clock::time_point t) {
  if (t == std::chrono::system_clock::time_point{}) return nullptr;
  return iso8601_utc(t);
}

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}

std::string_view identity_kind_name(policy::IdentityKind k) {
  switch (k) {
    case policy::IdentityKind::kWorld:
      return "world";
    case policy::IdentityKind::kWorkload:
      return "workload";
    case policy::IdentityKind::kCidr:
      return "cidr";
  }
  return "?";
}

}  // namespace

std::expected<std::unique_ptr<Daemon>, std::string> Daemon::create(asio::io_context& io,
                                                                   DaemonOptions options,
                                                                   Logger& log) {
  if (options.host.empty()) return std::unexpected("no host name (--host)");
  if (options.db_remotes.empty()) return std::unexpected("no database remote (--db)");
  if (auto remotes = ovsdb::RemoteSet::parse(options.db_remotes); !remotes)
    return std::unexpected("--db: " + remotes.error().message);
  if (!options.make_link) {
    options.make_link = [path = options.gldp_socket] { return std::make_unique<ApiLink>(path); };
  }
  std::unique_ptr<Daemon> d(new Daemon(io, std::move(options), log));

  ovsdb::ClientOptions co;
  co.remotes = d->opt_.db_remotes;
  co.db = std::string(kDatabase);
  for (std::string_view t : kMonitoredTables) co.tables.emplace_back(t);
  co.probe_interval = d->opt_.db_probe_interval;
  co.backoff_min = d->opt_.db_backoff_min;
  co.backoff_max = d->opt_.db_backoff_max;
  co.log = [&log](ovsdb::LogLevel level, std::string_view text) {
    log.write(level == ovsdb::LogLevel::kDebug  ? LogLevel::kDebug
              : level == ovsdb::LogLevel::kInfo ? LogLevel::kInfo
                                                : LogLevel::kWarn,
              "ovsdb: " + std::string(text));
  };
  auto client = ovsdb::Client::create(io.get_executor(), std::move(co));
  if (!client) return std::unexpected("ovsdb client: " + client.error().message);
  d->db_.emplace(std::move(*client));

  Daemon* self = d.get();
  auto mgmt = MgmtServer::create_async(io.get_executor(), d->opt_.mgmt_socket,
                                       [self](const Json& request, MgmtServer::Reply reply) {
                                         self->handle_async(request, std::move(reply));
                                       });
  if (!mgmt) return std::unexpected(mgmt.error());
  d->mgmt_ = std::move(*mgmt);
  if (!d->opt_.keys.key_file.empty()) {
    auto km = KeyManager::create(io, d->opt_.keys, d->opt_.host, d->opt_.gldp_socket, log);
    if (!km) return std::unexpected("--key-file " + km.error());
    d->keys_ = std::move(*km);
  }
  return d;
}

Daemon::Daemon(asio::io_context& io, DaemonOptions options, Logger& log)
    : io_(io), opt_(std::move(options)), log_(log), debounce_(io), poll_timer_(io) {}

Daemon::~Daemon() {
  stop();
}

void Daemon::start() {
  db_->set_state_handler(
      [this](ovsdb::State s, std::string_view reason) { on_db_state(s, reason); });
  db_->set_change_handler([this](const std::vector<ovsdb::RowChange>& changes) {
    state_cache_.note(changes);
    schedule_compile();
  });
  db_->set_resync_handler([this](const ovsdb::Replica&) {
    state_cache_.invalidate();
    loaded_ = true;
    schedule_compile();
  });
  query_ = std::make_unique<DpQueryThread>(opt_.gldp_socket);
  std::weak_ptr<bool> alive = alive_;
  dp_ =
      std::make_unique<DpSyncThread>(opt_.make_link(), opt_.dp, [this, alive](const SyncReport& r) {
        // On the sync thread: hand the report to the io_context.
        asio::post(io_, [this, alive, r] {
          if (auto a = alive.lock(); a && *a) on_report(r);
        });
      });
  std::string remotes;
  for (const std::string& r : opt_.db_remotes) remotes += (remotes.empty() ? "" : ",") + r;
  log_.info("glctld starting: host " + opt_.host + ", database " + remotes + ", gldp " +
            opt_.gldp_socket + ", management socket " + opt_.mgmt_socket);
  if (keys_) keys_->start();
  db_->start();
}

void Daemon::stop() {
  if (stopped_) return;
  stopped_ = true;
  *alive_ = false;
  debounce_.cancel();
  poll_timer_.cancel();
  if (db_) db_->stop();
  if (mgmt_) mgmt_->close();
  if (dp_) dp_->stop();  // joins: no report is posted after this
  if (query_) query_->stop();
  if (keys_) keys_->stop();
  if (ipfix_) ipfix_->flush();
}

// ---- OVSDB --------------------------------------------------------------------------------

void Daemon::on_db_state(ovsdb::State state, std::string_view reason) {
  db_state_ = state;
  db_reason_ = std::string(reason);
  if (state == ovsdb::State::kConnected) {
    if (db_failure_logged_) log_.info("ovsdb: " + db_->remote() + " is back; resynced");
    db_was_connected_ = true;
    db_failure_logged_ = false;
    return;
  }
  if (state != ovsdb::State::kBackoff || db_failure_logged_) return;
  db_failure_logged_ = true;  // once per outage; the status has the latest reason
  const std::string kept =
      running_ ? "; gldp keeps enforcing generation " + std::to_string(running_->generation) : "";
  log_.warn(std::string(db_was_connected_ ? "ovsdb: lost the database" : "ovsdb: cannot connect") +
            " (" + db_->remote() + ": " + db_reason_ + "); retrying" + kept);
}

void Daemon::schedule_compile() {
  if (compile_armed_ || stopped_) return;
  compile_armed_ = true;
  debounce_.expires_after(opt_.debounce);
  std::weak_ptr<bool> alive = alive_;
  debounce_.async_wait([this, alive](boost::system::error_code ec) {
    auto a = alive.lock();
    if (ec || !a || !*a) return;
    compile_armed_ = false;
    compile();
  });
}

void Daemon::compile() {
  if (!db_ || !loaded_) return;
  apply_export(export_settings(db_->replica()));
  if (keys_) keys_->update(host_table(db_->replica()), key_settings(db_->replica()));
  ++compiles_;
  auto read = state_cache_.state(db_->replica());
  if (!read) return reject(read.error());
  const policy::DesiredState& state = **read;
  auto compiled = policy::compile(state, opt_.host, 0,
                                  running_ ? running_->allocator : policy::IdentityAllocator{});
  if (!compiled) return reject(compiled.error());

  const bool was_rejected = !errors_.empty();
  errors_.clear();
  accepted_at_ = std::chrono::system_clock::now();
  n_workloads_ = state.workloads.size();
  n_groups_ = state.groups.size();
  n_rules_ = state.rules.size();
  std::map<std::string, std::string> host_ips;  // workloads' hosts -> underlay addresses
  for (const HostEntry& h : host_table(db_->replica()).hosts)
    if (!h.revoked) host_ips[h.name] = h.underlay_ip;
  FwVersion fv = to_fw_version(*compiled, host_ips);
  // Flow export wants every connection and refusal reported; without it gldp reports
  // only what rules with `log` decide.
  fv.record = export_.any() ? api::kFwRecordAll : 0;
  auto version = std::make_shared<const FwVersion>(std::move(fv));
  const bool changed = desired_ == nullptr || !same_version(*desired_, *version);
  compiled->generation = running_ ? running_->generation : 0;
  running_ = std::move(*compiled);
  index_names(state);
  rules_ = state.rules;  // their texts are made when asked (rule_text())
  rule_text_.clear();
  log_rules_ = false;
  for (const policy::LocalWorkload& w : running_->workloads)
    for (const auto* p : {&w.egress_from_vm, &w.ingress_to_vm})
      for (const policy::PolicyEntry& e : p->entries) log_rules_ |= e.log;
  arm_poll();
  if (!changed) {
    if (was_rejected) log_.info("desired state accepted again; the running policy is unchanged");
    return;
  }
  desired_ = std::move(version);
  ++desired_id_;
  running_->generation = 0;  // until the sync thread reports it installed
  log_.info("policy " + std::to_string(desired_id_) + " compiled: " + std::to_string(n_workloads_) +
            " workloads (" + std::to_string(running_->workloads.size()) + " here), " +
            std::to_string(n_groups_) + " groups, " + std::to_string(n_rules_) + " rules, " +
            std::to_string(running_->identities.size()) + " identities, " +
            std::to_string(running_->ipcache.size()) + " ipcache entries");
  for (const std::string& w : running_->warnings) log_.warn("policy: " + w);
  dp_->set_desired(desired_, desired_id_);
}

void Daemon::reject(const policy::Error& error) {
  ++rejections_;
  rejected_at_ = std::chrono::system_clock::now();
  errors_.clear();
  for (const policy::Problem& p : error.problems) errors_.push_back(p.text());
  std::string kept = running_ ? "the running policy (generation " +
                                    std::to_string(dp_report_.generation) + ") stays in force"
                              : "nothing was installed";
  log_.warn("desired state rejected (" + std::to_string(errors_.size()) + " problem" +
            (errors_.size() == 1 ? "" : "s") + "); " + kept);
  for (const std::string& e : errors_) log_.warn("  " + e);
}

// ---- gldp ---------------------------------------------------------------------------------

void Daemon::on_report(const SyncReport& r) {
  const bool was_reachable = have_report_ && dp_report_.reachable;
  if (r.restarted)
    log_.warn("gldp restarted (boot id " + hex64(r.previous_boot_id) + " -> " + hex64(r.boot_id) +
              "): installing the policy again");
  if (r.reachable && have_report_ && !was_reachable)
    log_.info("gldp at " + opt_.gldp_socket + " reachable again");
  if (!r.reachable && (was_reachable || !have_report_))
    log_.warn("gldp at " + opt_.gldp_socket + " unreachable (" + r.error +
              "); retrying, it keeps enforcing its last version");
  if (r.reachable && !r.error.empty() && r.error != dp_error_logged_)
    log_.error("gldp refused: " + r.error + "; retrying");
  dp_error_logged_ = r.reachable ? r.error : std::string();
  for (const MissingPort& m : r.missing)
    if (std::find(missing_logged_.begin(), missing_logged_.end(), m) == missing_logged_.end())
      log_.warn("workload " + m.workload + ": port " + m.port + " is not in gldp (" + m.reason +
                "); left out until it appears");
  missing_logged_ = r.missing;
  if (r.pushed != 0) {
    ++pushes_;
    if (!r.delta_refused.empty())
      log_.warn("gldp refused a delta (" + r.delta_refused + "); installed the whole version");
    const std::string how = r.delta ? "a delta: " + std::to_string(r.ports_sent) + " ports sent, " +
                                          std::to_string(r.ports_removed) + " removed, " +
                                          (r.delta_ipcache ? "new ipcache" : "ipcache kept")
                                    : "whole";
    log_.info("gldp: installed generation " + std::to_string(r.pushed) + " (policy " +
              std::to_string(r.pushed_desired) + ") as " + how + "; " + std::to_string(r.ports) +
              " ports, " + std::to_string(r.prefixes) + " prefixes" +
              (r.missing.empty() ? "" : ", " + std::to_string(r.missing.size()) + " left out"));
    last_install_ = Json{{"generation", r.pushed},
                         {"delta", r.delta},
                         {"ports_sent", r.ports_sent},
                         {"ports_removed", r.ports_removed},
                         {"new_ipcache", !r.delta || r.delta_ipcache},
                         {"delta_refused", r.delta_refused}};
  }
  if (running_ && r.pushed_desired == desired_id_ && desired_id_ != 0)
    running_->generation = r.generation;
  dp_report_ = r;
  port_nos_ = r.port_nos;
  have_report_ = true;
}

// ---- management API -----------------------------------------------------------------------

Json Daemon::handle(const Json& request) {
  auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string())
    return Json{{"error", std::string("request without \"cmd\" (a string): ") + kCommands}};
  const std::string name = cmd->get<std::string>();
  if (name == "status") return status_json();
  if (name == "identities") return identities_json();
  if (name == "keys") {
    if (!keys_) return Json{{"error", "the key manager is off (glctld runs without --key-file)"}};
    return keys_->status();
  }
  if (name == "compiled") {
    if (!running_) {
      Json e{{"error", errors_.empty() ? "no policy compiled yet"
                                       : "no policy compiled yet: the desired state is rejected"}};
      e["errors"] = errors_;
      return e;
    }
    return Json{{"generation", running_->generation},
                {"policy", desired_id_},
                {"text", policy::format_compiled(*running_)}};
  }
  if (name == "rule-stats" || name == "conntrack" || name == "flush-conntrack" || name == "trace")
    return Json{{"error", "\"" + name + "\" asks gldp: use handle_async"}};
  return Json{{"error", "unknown command \"" + name + "\" (" + kCommands + ")"}};
}

Json Daemon::status_json() const {
  Json missing = Json::array();
  for (const MissingPort& m : dp_report_.missing)
    missing.push_back({{"workload", m.workload}, {"port", m.port}, {"reason", m.reason}});
  Json remotes = opt_.db_remotes;
  const char* policy_state = !errors_.empty() ? "rejected" : running_ ? "accepted" : "none";
  Json j{
      {"host", opt_.host},
      {"generation", dp_report_.generation},
      {"policy_generation", running_ ? running_->generation : 0},
      {"policy", policy_state},
      {"policy_id", desired_id_},
      {"in_force", dp_report_.pushed_desired == desired_id_ && desired_id_ != 0},
      {"last_push", time_or_null(dp_report_.pushed_at)},
      {"last_install", last_install_},
      {"pushes", pushes_},
      {"errors", errors_},
      {"rejected_at", errors_.empty() ? Json(nullptr) : time_or_null(rejected_at_)},
      {"accepted_at", time_or_null(accepted_at_)},
      {"compiles", compiles_},
      {"rejections", rejections_},
      {"warnings", running_ ? Json(running_->warnings) : Json::array()},
      {"ovsdb",
       {{"state", std::string(ovsdb::state_name(db_state_))},
        {"remote", db_ ? db_->remote() : std::string()},
        {"remotes", remotes},
        {"reason", db_reason_}}},
      {"gldp",
       {{"socket", opt_.gldp_socket},
        {"reachable", dp_report_.reachable},
        {"boot_id",
         have_report_ && dp_report_.reachable ? Json(hex64(dp_report_.boot_id)) : Json(nullptr)},
        {"error", dp_report_.error},
        {"missing_ports", missing}}},
      {"workloads", n_workloads_},
      {"local_workloads", running_ ? running_->workloads.size() : 0},
      {"groups", n_groups_},
      {"rules", n_rules_},
      {"identities", running_ ? running_->identities.size() : 0},
      {"ports", dp_report_.ports},
      {"prefixes", dp_report_.prefixes},
      {"flow_export", export_json()},
      {"mgmt_refused", mgmt_ ? mgmt_->refused_peers() : 0},
  };
  if (keys_) {
    const Json k = keys_->status();
    size_t up = 0;
    for (const Json& p : k["peers"]) up += p["active"].is_null() ? 0 : 1;
    j["keys"] = {{"pubkey", k["pubkey"]},
                 {"listening", k["listening"]},
                 {"problem", k["problem"]},
                 {"peers", k["peers"].size()},
                 {"sessions_up", up}};
  } else {
    j["keys"] = nullptr;
  }
  return j;
}

Json Daemon::identities_json() const {
  Json list = Json::array();
  if (running_) {
    for (const policy::IdentityInfo& i : running_->identities) {
      Json e{{"identity", i.identity}, {"kind", std::string(identity_kind_name(i.kind))}};
      if (i.kind == policy::IdentityKind::kWorkload) {
        e["workload"] = i.workload;
        e["key"] = i.key;
      } else if (i.kind == policy::IdentityKind::kCidr) {
        e["prefix"] = i.prefix.to_string();
        Json by = Json::array();
        for (const policy::IpPrefix& p : i.matched_by) by.push_back(p.to_string());
        e["matched_by"] = by;
      }
      list.push_back(std::move(e));
    }
  }
  return Json{{"generation", running_ ? running_->generation : 0}, {"identities", list}};
}

}  // namespace gl::glctld
