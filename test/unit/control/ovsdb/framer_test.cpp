// framer_test.cpp — JsonFramer: messages split anywhere, several per read, braces and
// escapes inside strings, size cap, garbage.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "control/ovsdb/framer.hpp"

using gl::ovsdb::JsonFramer;
using Json = nlohmann::json;
using Status = JsonFramer::Status;

namespace {

// Three messages back to back, as ovsdb-server writes them, with the tricky parts: braces
// and brackets in strings, escaped quotes and backslashes, unicode escapes, nesting.
const std::string kStream =
    R"({"id":1,"result":["Goldilocks","_Server"],"error":null})"
    R"({"method":"update2","params":["m",{"Rule":{"a":{"insert":{"from":"}{[]\"\\","to":"{"}}}}],"id":null})"
    "\n"
    R"({"id":"echo","method":"echo","params":["\u007b",{"x":[[],[{}]]}]})";

std::vector<Json> expected_messages() {
  return {
      Json::parse(R"({"id":1,"result":["Goldilocks","_Server"],"error":null})"),
      Json::parse(
          R"({"method":"update2","params":["m",{"Rule":{"a":{"insert":{"from":"}{[]\"\\","to":"{"}}}}],"id":null})"),
      Json::parse(R"({"id":"echo","method":"echo","params":["\u007b",{"x":[[],[{}]]}]})"),
  };
}

}  // namespace

TEST_CASE("framer: several messages in one read", "[ovsdb][framer]") {
  JsonFramer f;
  std::vector<Json> out;
  REQUIRE(f.feed(kStream, out) == Status::kOk);
  CHECK(out == expected_messages());
  CHECK(f.buffered() == 0);
}

TEST_CASE("framer: a stream split at every byte position gives the same messages",
          "[ovsdb][framer]") {
  for (size_t cut = 0; cut <= kStream.size(); ++cut) {
    JsonFramer f;
    std::vector<Json> out;
    REQUIRE(f.feed(std::string_view(kStream).substr(0, cut), out) == Status::kOk);
    REQUIRE(f.feed(std::string_view(kStream).substr(cut), out) == Status::kOk);
    INFO("cut at " << cut);
    REQUIRE(out == expected_messages());
  }
}

TEST_CASE("framer: one byte per read", "[ovsdb][framer]") {
  JsonFramer f;
  std::vector<Json> out;
  for (char c : kStream) REQUIRE(f.feed(std::string_view(&c, 1), out) == Status::kOk);
  CHECK(out == expected_messages());
  CHECK(f.buffered() == 0);
}

TEST_CASE("framer: whitespace between messages and a partial message kept", "[ovsdb][framer]") {
  JsonFramer f;
  std::vector<Json> out;
  REQUIRE(f.feed(" \r\n\t{\"a\":1}  \n{\"b\":", out) == Status::kOk);
  REQUIRE(out.size() == 1);
  CHECK(out[0] == Json{{"a", 1}});
  CHECK(f.buffered() == 5);
  REQUIRE(f.feed("\"}\"}", out) == Status::kOk);
  REQUIRE(out.size() == 2);
  CHECK(out[1] == Json{{"b", "}"}});
}

TEST_CASE("framer: a message over the cap is an overflow", "[ovsdb][framer]") {
  SECTION("complete message over the cap") {
    JsonFramer f(64);
    std::vector<Json> out;
    const std::string big = "{\"s\":\"" + std::string(100, 'x') + "\"}";
    CHECK(f.feed(big, out) == Status::kOverflow);
    CHECK(out.empty());
    CHECK_THAT(f.error(), Catch::Contains("cap"));
  }
  SECTION("detected before the message ends, buffer not grown past the cap") {
    JsonFramer f(64);
    std::vector<Json> out;
    REQUIRE(f.feed("{\"s\":\"" + std::string(40, 'x'), out) == Status::kOk);
    CHECK(f.feed(std::string(40, 'x'), out) == Status::kOverflow);
    CHECK(f.buffered() == 0);
  }
  SECTION("messages before the big one are delivered") {
    JsonFramer f(64);
    std::vector<Json> out;
    CHECK(f.feed("{\"ok\":true}{\"s\":\"" + std::string(100, 'x') + "\"}", out) ==
          Status::kOverflow);
    REQUIRE(out.size() == 1);
    CHECK(out[0]["ok"] == true);
  }
  SECTION("exactly at the cap is fine") {
    const std::string msg = "{\"s\":\"" + std::string(20, 'x') + "\"}";
    JsonFramer f(msg.size());
    std::vector<Json> out;
    CHECK(f.feed(msg, out) == Status::kOk);
    CHECK(out.size() == 1);
  }
}

TEST_CASE("framer: garbage and malformed JSON", "[ovsdb][framer]") {
  auto feed_one = [](const std::string& s) {
    JsonFramer f;
    std::vector<Json> out;
    return f.feed(s, out);
  };
  CHECK(feed_one("hello") == Status::kMalformed);
  CHECK(feed_one("}") == Status::kMalformed);
  CHECK(feed_one("[1,2]") == Status::kMalformed);  // JSON-RPC messages are objects
  CHECK(feed_one("{\"a\":}") == Status::kMalformed);
  CHECK(feed_one("{\"a\":1]") == Status::kMalformed);  // mismatched close
  CHECK(feed_one("{\"a\":tru}") == Status::kMalformed);
  CHECK(feed_one(std::string("{\"a\":\"\xff\xfe\"}")) == Status::kMalformed);  // not UTF-8
  CHECK(feed_one(std::string(1000, '[')) == Status::kMalformed);               // not an object
  CHECK(feed_one("{\"a\":" + std::string(1000, '[')) == Status::kMalformed);   // too deep

  SECTION("an error is sticky until reset") {
    JsonFramer f;
    std::vector<Json> out;
    REQUIRE(f.feed("{\"a\":1} x {\"b\":2}", out) == Status::kMalformed);
    CHECK(out.size() == 1);
    CHECK(f.feed("{\"c\":3}", out) == Status::kMalformed);
    CHECK(out.size() == 1);
    f.reset();
    CHECK(f.feed("{\"c\":3}", out) == Status::kOk);
    CHECK(out.size() == 2);
  }
}

TEST_CASE("framer: a large message in many reads", "[ovsdb][framer]") {
  Json rows = Json::object();
  for (int i = 0; i < 2000; ++i) {
    rows["row" + std::to_string(i)] = {{"insert", {{"name", "w{" + std::to_string(i) + "}\""}}}};
  }
  const Json msg = {
      {"method", "update2"}, {"params", {"m", {{"Workload", rows}}}}, {"id", nullptr}};
  const std::string text = msg.dump() + msg.dump();
  JsonFramer f;
  std::vector<Json> out;
  for (size_t i = 0; i < text.size(); i += 4096) {
    REQUIRE(f.feed(std::string_view(text).substr(i, 4096), out) == Status::kOk);
  }
  REQUIRE(out.size() == 2);
  CHECK(out[0] == msg);
  CHECK(out[1] == msg);
}
