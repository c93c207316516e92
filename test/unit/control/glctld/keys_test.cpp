// keys_test.cpp — glctld's host key files (control/glctld/keys.hpp) and the Host table /
// key settings as glctld reads them (state.hpp): what a user sees when a key file is
// missing, readable by others or malformed; base64 round trip; hosts and rekey settings
// from the real schema. The handshakes between two glctlds are integration:keys.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "control/glctld/keys.hpp"
#include "control/glctld/state.hpp"
#include "control/ovsdb/schema.hpp"

using namespace gl;
using Json = nlohmann::json;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/gl-keys-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
};

ovsdb::Replica replica_of(const Json& rows) {
  std::ifstream f(GL_OVSDB_SCHEMA);
  REQUIRE(f.good());
  auto schema = ovsdb::Schema::parse(Json::parse(f));
  REQUIRE(schema);
  Json updates = Json::object();
  int n = 100;
  for (const auto& [table, list] : rows.items())
    for (const Json& row : list) {
      char uuid[40];
      std::snprintf(uuid, sizeof uuid, "00000000-0000-0000-0000-%012d", n--);
      updates[table][uuid] = Json{{"initial", row}};
    }
  std::vector<std::string> tables;
  for (std::string_view t : glctld::kMonitoredTables) tables.emplace_back(t);
  auto r = ovsdb::Replica::load_update2(*schema, tables, updates);
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE("keys: a new key file is 0600, loads back to the same key, is never overwritten",
          "[glctld][keys]") {
  TempDir d;
  const std::string path = d.path + "/host.key";
  auto made = glctld::create_host_key(path);
  REQUIRE(made);
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto loaded = glctld::load_host_key(path);
  REQUIRE(loaded);
  CHECK(loaded->pub == made->pub);
  CHECK(loaded->priv == made->priv);
  auto again = glctld::create_host_key(path);
  REQUIRE_FALSE(again);
  CHECK(again.error().find("not overwritten") != std::string::npos);
  CHECK(glctld::load_host_key(path)->pub == made->pub);
  // The public key's text form is what glctl add-host takes.
  const std::string b64 = glctld::key_to_base64(made->pub);
  CHECK(b64.size() == 44);
  CHECK(glctld::key_from_base64(b64) == made->pub);
  CHECK(glctld::key_from_base64(b64 + "\n") == made->pub);
}

TEST_CASE("keys: a key file readable by others, missing or malformed is refused by name",
          "[glctld][keys]") {
  TempDir d;
  const std::string path = d.path + "/host.key";
  auto missing = glctld::load_host_key(path);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().find(path) == 0);
  CHECK(missing.error().find("glctld --gen-key") != std::string::npos);

  REQUIRE(glctld::create_host_key(path));
  REQUIRE(chmod(path.c_str(), 0644) == 0);
  auto open = glctld::load_host_key(path);
  REQUIRE_FALSE(open);
  CHECK(open.error().find("readable by others") != std::string::npos);
  CHECK(open.error().find("644") != std::string::npos);

  const std::string bad = d.path + "/bad.key";
  for (const char* text :
       {"", "not base64 at all\n", "AAAA\n", "+g069ayJtW6BVU/TM9M/hknNsCNP8mFCIAGzbW0nRwg==\n"}) {
    INFO(text);
    unlink(bad.c_str());
    {
      std::ofstream f(bad);
      f << text;
    }
    REQUIRE(chmod(bad.c_str(), 0600) == 0);
    auto r = glctld::load_host_key(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().find("not a base64 X25519 private key") != std::string::npos);
  }
  CHECK_FALSE(glctld::key_from_base64("+g069ayJtW6BVU/TM9M/hknNsCNP8mFCIAGzbW0nRw"));
  CHECK_FALSE(glctld::key_from_base64(std::string(44, '!')));
}

TEST_CASE("keys: Host rows and the rekey settings as glctld reads them", "[glctld][keys]") {
  auto r = replica_of(Json::parse(R"({
    "Host": [{"name": "hvB", "underlay_ip": "192.0.2.2", "pubkey": "b", "revoked": true},
             {"name": "hvA", "underlay_ip": "192.0.2.1", "pubkey": "a", "revoked": false}],
    "Goldilocks": [{"rekey_seconds": 5,
                    "options": ["map", [["rekey_packets", "1000"], ["rekey_bytes", "5000000"]]]}]})"));
  const glctld::HostTable t = glctld::host_table(r);
  REQUIRE(t.problems.empty());
  REQUIRE(t.hosts.size() == 2);
  CHECK(t.hosts[0] == glctld::HostEntry{"hvA", "192.0.2.1", "a", false});
  CHECK(t.hosts[1] == glctld::HostEntry{"hvB", "192.0.2.2", "b", true});
  const glctld::KeySettings k = glctld::key_settings(r);
  CHECK(k.rekey_seconds == 5);
  CHECK(k.rekey_packets == 1000);
  CHECK(k.rekey_bytes == 5000000);
  // No settings row, or no rekey_seconds: two minutes, no packet limit.
  CHECK(glctld::key_settings(replica_of(Json::object())) == glctld::KeySettings{120, 0, 0});
  CHECK(glctld::key_settings(replica_of(Json::parse(R"({"Goldilocks": [{"conn_limit": 1}]})"))) ==
        glctld::KeySettings{120, 0, 0});
  // A host row written by glctl's builder reads back the same.
  const glctld::HostEntry h{"hvC", "2001:db8::3", "c", false};
  auto r2 = replica_of(Json{{"Host", Json::array({glctld::host_row(h)})}});
  REQUIRE(glctld::host_table(r2).hosts == std::vector<glctld::HostEntry>{h});
}

TEST_CASE("keys: an SA's hard lifetime from rekey_seconds", "[glctld][keys]") {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  CHECK(glctld::sa_lifetime(1) == seconds(31));     // at least rekey + 30 s
  CHECK(glctld::sa_lifetime(60) == seconds(90));    // the two meet
  CHECK(glctld::sa_lifetime(120) == seconds(180));  // 1.5 x: WireGuard's 120 s / 180 s
  CHECK(glctld::sa_lifetime(2400) == seconds(3600));
  CHECK(glctld::sa_lifetime(3000) == milliseconds(api::kSaMaxGraceMs));  // gldp's longest grace
  CHECK(glctld::sa_lifetime(86400) == milliseconds(api::kSaMaxGraceMs));
  // Rekeyed by time well before it (the responder's fallback 15 s later included).
  for (uint32_t r : {1u, 2u, 5u, 60u, 120u, 2400u})
    CHECK(glctld::sa_lifetime(r) - glctld::kLifetimeMargin > seconds(r + 15));
}
