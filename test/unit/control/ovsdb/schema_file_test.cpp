// schema_file_test.cpp — control/schema/goldilocks.ovsschema checked by Debian's ovsdb-tool
// (it creates a database, its checksum is current) and its constraints enforced by a real
// ovsdb-server.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "control/ovsdb/client.hpp"
#include "ovsdb_harness.hpp"

using namespace gl::ovsdb;
using namespace gl::ovsdb::test;
using Json = nlohmann::json;

TEST_CASE("schema file: ovsdb-tool accepts it and its name and version and checksum are right",
          "[ovsdb][schema]") {
  TempDir dir;
  auto created = run_command({GL_OVSDB_TOOL, "create", dir.file("db"), schema_path()});
  INFO(created.output);
  REQUIRE(created.status == 0);
  auto name = run_command({GL_OVSDB_TOOL, "schema-name", schema_path()});
  CHECK(name.output == "Goldilocks\n");
  auto version = run_command({GL_OVSDB_TOOL, "schema-version", schema_path()});
  CHECK(version.output == "1.0.0\n");
  auto db_version = run_command({GL_OVSDB_TOOL, "db-version", dir.file("db")});
  CHECK(db_version.output == "1.0.0\n");
  // The "cksum" field must be the checksum of the file without it (as OVS's build checks):
  // editing the schema without updating it (and the version) fails here.
  auto declared = run_command({GL_OVSDB_TOOL, "schema-cksum", schema_path()});
  auto actual = run_command(
      {"/bin/sh", "-c",
       "sed '/\"cksum\": *\"[0-9][0-9]* [0-9][0-9]*\",/d' '" + schema_path() + "' | cksum"});
  REQUIRE(actual.status == 0);
  CHECK(declared.output == actual.output);
}

TEST_CASE("schema file: a real server enforces its constraints", "[ovsdb][schema]") {
  OvsdbServer server;
  boost::asio::io_context io;
  auto c = Client::create(io.get_executor(), test_options(server.remote()));
  REQUIRE(c);
  c->start();
  REQUIRE(run_until(io, [&] { return c->is_connected(); }));

  auto fails = [&](Transaction t, const std::string& detail) {
    auto r = transact(io, *c, std::move(t));
    INFO(detail);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::kTxnFailed);
    CHECK_THAT(r.error().message, Catch::Contains(detail));
  };
  Transaction ok;
  ok.insert("Goldilocks", {{"default_action", "deny"}, {"rekey_seconds", 120}});
  ok.insert("Rule", {{"rule_id", 2147483647},
                     {"priority", 65535},
                     {"action", "allow-encrypted"},
                     {"from", "app=web"},
                     {"to", "app=db"}});
  REQUIRE(transact(io, *c, std::move(ok)));

  Transaction second_settings;
  second_settings.insert("Goldilocks", Json::object());
  fails(std::move(second_settings), "greater than the schema-defined limit of 1 row");
  Transaction bad_action;
  bad_action.insert("Rule", {{"rule_id", 5}, {"action", "permit"}});
  fails(std::move(bad_action), "not one of the allowed values");
  Transaction no_action;  // the action has no usable default: it must be given
  no_action.insert("Rule", {{"rule_id", 6}});
  fails(std::move(no_action), "op 0 (insert into Rule)");
  Transaction bad_priority;
  bad_priority.insert("Rule", {{"rule_id", 7}, {"priority", 65536}, {"action", "deny"}});
  fails(std::move(bad_priority), "valid range");
  Transaction dup_rule;
  dup_rule.insert("Rule", {{"rule_id", 2147483647}, {"action", "deny"}});
  fails(std::move(dup_rule), "index on column \"rule_id\"");
  Transaction bad_default;
  bad_default.update("Goldilocks", {}, {{"default_action", "maybe"}});
  fails(std::move(bad_default), "not one of the allowed values");
  Transaction negative_limit;
  negative_limit.update("Goldilocks", {}, {{"conn_limit", -1}});
  fails(std::move(negative_limit), "less than minimum allowed value 0");
  Transaction dup_workload;
  dup_workload.insert("Workload", {{"name", "w"}});
  dup_workload.insert("Workload", {{"name", "w"}});
  fails(std::move(dup_workload), "index on column \"name\"");
}
