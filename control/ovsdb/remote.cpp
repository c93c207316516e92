// remote.cpp — see remote.hpp.
#include "control/ovsdb/remote.hpp"

#include <sys/un.h>

#include <charconv>

#include <boost/asio/ip/address.hpp>

#include "control/ovsdb/value.hpp"

namespace gl::ovsdb {

Result<Remote> Remote::parse(std::string_view s) {
  Remote r;
  if (s.starts_with("unix:")) {
    r.kind = Kind::kUnix;
    r.path = std::string(s.substr(5));
    if (r.path.empty()) {
      return make_error(Errc::kInvalidArgument, "remote \"" + std::string(s) + "\": empty path");
    }
    if (r.path.size() >= sizeof(sockaddr_un::sun_path)) {
      return make_error(Errc::kInvalidArgument,
                        "remote \"" + std::string(s) + "\": path longer than " +
                            std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
    }
    return r;
  }
  if (!s.starts_with("tcp:")) {
    return make_error(Errc::kInvalidArgument,
                      "remote \"" + std::string(s) + "\": expected unix:PATH or tcp:IP:PORT");
  }
  r.kind = Kind::kTcp;
  std::string_view rest = s.substr(4);
  std::string_view host;
  std::string_view port;
  if (rest.starts_with("[")) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return make_error(Errc::kInvalidArgument,
                        "remote \"" + std::string(s) + "\": expected tcp:[IPv6]:PORT");
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return make_error(Errc::kInvalidArgument, "remote \"" + std::string(s) + "\": no port");
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  boost::system::error_code ec;
  boost::asio::ip::make_address(std::string(host), ec);
  if (ec) {
    return make_error(Errc::kInvalidArgument,
                      "remote \"" + std::string(s) + "\": \"" + std::string(host) +
                          "\" is not an IP address (names are not resolved)");
  }
  unsigned p = 0;
  auto [ptr, err] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (err != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
    return make_error(Errc::kInvalidArgument,
                      "remote \"" + std::string(s) + "\": bad port \"" + std::string(port) + "\"");
  }
  r.host = std::string(host);
  r.port = static_cast<uint16_t>(p);
  return r;
}

std::string Remote::to_string() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "tcp:[" + host + "]:" + std::to_string(port);
  return "tcp:" + host + ":" + std::to_string(port);
}

Result<RemoteSet> RemoteSet::parse(const std::vector<std::string>& remotes) {
  if (remotes.empty()) return make_error(Errc::kInvalidArgument, "no remote given");
  RemoteSet set;
  for (const std::string& s : remotes) {
    auto r = Remote::parse(s);
    if (!r) return std::unexpected(r.error());
    set.remotes_.push_back(std::move(*r));
  }
  return set;
}

const Remote& RemoteSet::next() {
  current_ = next_;
  next_ = (next_ + 1) % remotes_.size();
  return remotes_[current_];
}

// ---- _Server -------------------------------------------------------------------------------

namespace {

// An optional (min 0, max 1) column's atom, if the row has the column and it is set.
Result<std::optional<Json>> optional_column(const Json& row, const char* name) {
  auto it = row.find(name);
  if (it == row.end()) return std::optional<Json>{};
  return optional_atom(*it);
}

template <typename T>
Result<void> read_scalar(const Json& row, const char* name, T& out) {
  auto it = row.find(name);
  if (it == row.end()) return {};
  if (!it->is_primitive() || it->is_null()) {
    return make_error(Errc::kBadReply, std::string("_Server.Database.") + name + ": " + it->dump());
  }
  try {
    out = it->get<T>();
  } catch (const nlohmann::json::exception&) {
    return make_error(Errc::kBadReply, std::string("_Server.Database.") + name + ": " + it->dump());
  }
  return {};
}

}  // namespace

Result<ServerDb> ServerDb::from_row(const Json& row) {
  if (!row.is_object()) return make_error(Errc::kBadReply, "_Server.Database row: not an object");
  ServerDb db;
  db.checked = true;
  for (auto r :
       {read_scalar(row, "name", db.name), read_scalar(row, "model", db.model),
        read_scalar(row, "connected", db.connected), read_scalar(row, "leader", db.leader)}) {
    if (!r) return std::unexpected(r.error());
  }
  auto index = optional_column(row, "index");
  auto cid = optional_column(row, "cid");
  auto sid = optional_column(row, "sid");
  auto schema = optional_column(row, "schema");
  for (const auto* r : {&index, &cid, &sid, &schema}) {
    if (!*r) return std::unexpected(r->error());
  }
  if (*index) {
    if (!(*index)->is_number_integer() || (*index)->get<int64_t>() < 0) {
      return make_error(Errc::kBadReply, "_Server.Database.index: " + (*index)->dump());
    }
    db.index = (*index)->get<uint64_t>();
  }
  for (auto [col, out] : {std::pair{&cid, &db.cid}, std::pair{&sid, &db.sid}}) {
    if (!**col) continue;
    auto u = uuid_of(***col);
    if (!u) return make_error(Errc::kBadReply, "_Server.Database: " + u.error().message);
    *out = std::move(*u);
  }
  if (*schema) {
    if (!(*schema)->is_string()) {
      return make_error(Errc::kBadReply, "_Server.Database.schema: not a string");
    }
    db.schema = (*schema)->get<std::string>();
  }
  return db;
}

std::string ServerDb::to_string() const {
  if (!checked) return "not checked (no _Server)";
  std::string s = model.empty() ? std::string("?") : model;
  if (model == "clustered") {
    s += leader ? " leader" : " follower";
    if (!connected) s += " (not connected)";
    if (index) s += " index " + std::to_string(*index);
  } else if (model == "relay" && !connected) {
    s += " (not connected)";
  }
  return s;
}

MemberCheck::Verdict MemberCheck::check(const ServerDb& db) {
  auto no = [](Skip k, std::string why) { return Verdict{k, std::move(why)}; };
  if (!db.checked) return {};
  if (db.model == "clustered") {
    if (!db.schema) return no(Skip::kNotJoined, "has not joined the cluster yet");
    if (!db.connected) return no(Skip::kDisconnected, "not connected to the cluster");
    if (leader_only_ && !db.leader) return no(Skip::kNotLeader, "not the leader");
    if (db.index) {
      if (db.cid != min_index_cid_) {  // another cluster: its indexes are not comparable
        min_index_cid_ = db.cid;
        min_index_ = 0;
      }
      if (*db.index < min_index_) {
        return no(Skip::kStale, "stale data (index " + std::to_string(*db.index) +
                                    ", already saw " + std::to_string(min_index_) + ")");
      }
      min_index_ = *db.index;
    }
    return {};
  }
  if (db.model == "relay") {
    if (!db.schema || !db.connected) {
      return no(Skip::kDisconnected, "relay not connected to its source");
    }
    if (leader_only_) return no(Skip::kRelay, "a relay, not the leader (leader_only)");
  }
  return {};  // standalone (or a model this client does not know): used as it is
}

}  // namespace gl::ovsdb
