#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "dataplane/api/message.hpp"

using gl::api::HeaderError;
using gl::api::MessageBuilder;
using gl::api::MessageReader;
using gl::api::MsgType;

namespace {

// A finished datagram as an owned byte vector.
std::vector<uint8_t> finish(MessageBuilder& b) {
  auto s = b.finish();
  return {s.begin(), s.end()};
}

}  // namespace

TEST_CASE("read_text reads what append_text wrote, each padded to 8", "[message]") {
  MessageBuilder b(MsgType::kIpfDump, 1, gl::api::kFlagReply);
  b.append(gl::api::IpfDumpReply{3, 0});
  b.append_text("");
  b.append_text("1234567");   // 7 + NUL: exactly 8
  b.append_text("12345678");  // 8 + NUL: 16
  const auto msg = finish(b);
  MessageReader r(msg);
  REQUIRE(r.check_header() == HeaderError::kOk);
  gl::api::IpfDumpReply dr;
  REQUIRE(r.read(dr));
  std::string_view t;
  REQUIRE(r.read_text(256, t));
  CHECK(t.empty());
  REQUIRE(r.read_text(256, t));
  CHECK(t == "1234567");
  REQUIRE(r.read_text(256, t));
  CHECK(t == "12345678");
  CHECK(r.remaining() == 0);
  CHECK_FALSE(r.read_text(256, t));  // nothing left
}

TEST_CASE("read_text refuses an unterminated, too long or unpadded string", "[message]") {
  SECTION("no NUL before the end") {
    MessageBuilder b(MsgType::kIpfDump, 1);
    b.append_padded(std::vector<uint8_t>(16, 'x'));
    const auto msg = finish(b);
    MessageReader r(msg);
    REQUIRE(r.check_header() == HeaderError::kOk);
    std::string_view t;
    CHECK_FALSE(r.read_text(256, t));
    CHECK(r.remaining() == 16);  // nothing consumed
  }
  SECTION("longer than the limit") {
    MessageBuilder b(MsgType::kIpfDump, 1);
    b.append_text(std::string(20, 'y'));
    const auto msg = finish(b);
    MessageReader r(msg);
    REQUIRE(r.check_header() == HeaderError::kOk);
    std::string_view t;
    CHECK_FALSE(r.read_text(20, t));  // 20 bytes + NUL do not fit 20
    REQUIRE(r.read_text(21, t));
    CHECK(t == std::string(20, 'y'));
  }
  SECTION("padding cut off") {
    MessageBuilder b(MsgType::kIpfDump, 1);
    b.append_text("abc");
    auto msg = finish(b);
    msg.resize(msg.size() - 4);  // "abc\0" kept, the padding gone
    auto* h = reinterpret_cast<gl::api::MsgHeader*>(msg.data());
    h->length = static_cast<uint32_t>(msg.size());
    MessageReader r(msg);
    REQUIRE(r.check_header() == HeaderError::kOk);
    std::string_view t;
    CHECK_FALSE(r.read_text(256, t));
  }
}
