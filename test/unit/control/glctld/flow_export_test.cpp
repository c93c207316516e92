// flow_export_test.cpp — glctld's flow records (control/glctld/flow_export.hpp): the JSON
// lines (every field, file mode, append, rotation, the rate limit on an injected clock and
// its summary line), IPFIX collector addresses, the IPFIX messages checked field by field by
// a decoder written here from RFC 7011 (templates, sets, batching to the MTU, sequence
// numbers, template refresh, names cut to fit), and the exporter's real UDP datagrams
// (127.0.0.1, ephemeral port) written to a pcap file that tshark must decode.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "control/glctld/flow_export.hpp"
#include "dataplane/firewall/fw_events.hpp"
#include "dataplane/firewall/fw_tables.hpp"

using namespace gl::glctld;
using namespace std::chrono_literals;
using Json = nlohmann::json;

namespace {

// 2024-05-01T12:00:00.123Z
constexpr uint64_t kT0 = 1714564800123;

std::array<uint8_t, 16> v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {a, b, c, d};
}

std::array<uint8_t, 16> v6(const char* text) {
  std::array<uint8_t, 16> a{};
  REQUIRE(::inet_pton(AF_INET6, text, a.data()) == 1);
  return a;
}

// web1 (10.1.2.3) opened HTTPS to db1 (10.4.5.6); ended by timeout.
FlowRecord tcp_end_v4() {
  FlowRecord r;
  r.kind = FlowRecord::Kind::kEnd;
  r.start_ms = kT0;
  r.end_ms = kT0 + 5333;
  r.family = 4;
  r.proto = 6;
  r.src = v4(10, 1, 2, 3);
  r.dst = v4(10, 4, 5, 6);
  r.sport = 40000;
  r.dport = 443;
  r.packets[0] = 10;
  r.packets[1] = 8;
  r.bytes[0] = 1500;
  r.bytes[1] = 9000;
  r.rule_id = 7;
  r.src_identity = 256;
  r.dst_identity = 257;
  r.src_name = "web1";
  r.dst_name = "db1";
  r.workload = "web1";
  r.to_vm = false;
  r.action = "allow";
  r.reason = "expired";
  return r;
}

// The outside world's DNS answer to web2 over IPv6, removed by a policy change.
FlowRecord udp_end_v6() {
  FlowRecord r;
  r.kind = FlowRecord::Kind::kEnd;
  r.start_ms = kT0 + 1000;
  r.end_ms = kT0 + 2500;
  r.family = 6;
  r.proto = 17;
  r.src = v6("2001:db8::53");
  r.dst = v6("fd00::2");
  r.sport = 53;
  r.dport = 5353;
  r.packets[0] = 1;
  r.packets[1] = 2;
  r.bytes[0] = 80;
  r.bytes[1] = 240;
  r.rule_id = 3;
  r.src_identity = 1;
  r.dst_identity = 258;
  r.src_name = "2001:db8::/32";
  r.dst_name = "web2";
  r.workload = "web2";
  r.to_vm = true;
  r.action = "allow-encrypted";
  r.reason = "removed";
  return r;
}

// An ICMPv6 echo request to db1 refused by the default deny; 4 more dropped before it.
FlowRecord icmp6_deny() {
  FlowRecord r;
  r.kind = FlowRecord::Kind::kDeny;
  r.start_ms = r.end_ms = kT0 + 42;
  r.family = 6;
  r.proto = 58;
  r.src = v6("fd00::9");
  r.dst = v6("fd00::4");
  r.icmp_type = 128;
  r.icmp_code = 0;
  r.rule_id = 0;
  r.src_identity = 300;
  r.dst_identity = 257;
  r.dst_name = "db1";
  r.workload = "db1";
  r.to_vm = true;
  r.action = "deny";
  r.reason = "deny";
  r.suppressed = 4;
  return r;
}

FlowRecord tcp_start_v4() {
  FlowRecord r = tcp_end_v4();
  r.kind = FlowRecord::Kind::kStart;
  r.end_ms = 0;
  r.packets[0] = r.packets[1] = r.bytes[0] = r.bytes[1] = 0;
  r.reason = "";
  return r;
}

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/gl_flowexp_XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
  std::string path;
};

std::vector<Json> read_lines(const std::string& path) {
  std::ifstream f(path);
  REQUIRE(f.good());
  std::vector<Json> out;
  std::string line;
  while (std::getline(f, line)) out.push_back(Json::parse(line));
  return out;
}

// ---- an IPFIX decoder after RFC 7011, independent of the exporter's tables -----------------

struct FieldSpec {
  uint16_t id;
  uint16_t length;
  uint32_t pen;  // 0: IANA
  bool operator==(const FieldSpec&) const = default;
};

struct DataRecord {
  uint16_t template_id = 0;
  std::map<std::pair<uint32_t, uint16_t>, std::vector<uint8_t>> fields;  // (pen, id)

  const std::vector<uint8_t>& raw(uint16_t id, uint32_t pen = 0) const {
    auto it = fields.find({pen, id});
    INFO("IE " << id << " pen " << pen);
    REQUIRE(it != fields.end());
    return it->second;
  }
  uint64_t u(uint16_t id, uint32_t pen = 0) const {
    uint64_t v = 0;
    for (uint8_t b : raw(id, pen)) v = v << 8 | b;
    return v;
  }
  std::string str(uint16_t id, uint32_t pen = 0) const {
    const auto& b = raw(id, pen);
    return std::string(b.begin(), b.end());
  }
  std::string addr(uint16_t id) const {
    const auto& b = raw(id);
    char buf[INET6_ADDRSTRLEN] = {};
    REQUIRE((b.size() == 4 || b.size() == 16));
    REQUIRE(::inet_ntop(b.size() == 4 ? AF_INET : AF_INET6, b.data(), buf, sizeof buf));
    return buf;
  }
};

struct Message {
  uint16_t version = 0, length = 0;
  uint32_t export_time = 0, sequence = 0, domain = 0;
  std::vector<uint16_t> set_ids;
  std::map<uint16_t, std::vector<FieldSpec>> templates;  // defined in this message
  std::vector<DataRecord> records;
};

class Decoder {
 public:
  Message decode(const std::vector<uint8_t>& m) {
    Message out;
    size_t p = 0;
    auto need = [&](size_t n) { REQUIRE(p + n <= m.size()); };
    auto u8 = [&] {
      need(1);
      return m[p++];
    };
    auto u16 = [&] {
      need(2);
      const uint16_t v = static_cast<uint16_t>(m[p] << 8 | m[p + 1]);
      p += 2;
      return v;
    };
    auto u32 = [&] { return static_cast<uint32_t>(u16()) << 16 | u16(); };
    out.version = u16();
    out.length = u16();
    out.export_time = u32();
    out.sequence = u32();
    out.domain = u32();
    REQUIRE(out.length == m.size());
    while (p < m.size()) {
      const size_t set_start = p;
      const uint16_t set_id = u16();
      const uint16_t set_len = u16();
      REQUIRE(set_len >= 4);
      REQUIRE(set_start + set_len <= m.size());
      const size_t set_end = set_start + set_len;
      out.set_ids.push_back(set_id);
      if (set_id == 2) {
        while (p < set_end) {
          const uint16_t tid = u16();
          const uint16_t count = u16();
          std::vector<FieldSpec> fields;
          for (uint16_t i = 0; i < count; ++i) {
            const uint16_t raw_id = u16();
            const uint16_t len = u16();
            const uint32_t pen = (raw_id & 0x8000) ? u32() : 0;
            fields.push_back({static_cast<uint16_t>(raw_id & 0x7fff), len, pen});
          }
          out.templates[tid] = fields;
          known_[tid] = fields;
        }
      } else {
        REQUIRE(set_id >= 256);
        REQUIRE(known_.count(set_id) == 1);  // the template came first
        const auto& fields = known_[set_id];
        while (p < set_end) {
          DataRecord r;
          r.template_id = set_id;
          for (const FieldSpec& f : fields) {
            size_t len = f.length;
            if (len == 65535) {
              len = u8();
              if (len == 255) len = u16();
            }
            need(len);
            r.fields[{f.pen, f.id}] = std::vector<uint8_t>(
                m.begin() + static_cast<ptrdiff_t>(p), m.begin() + static_cast<ptrdiff_t>(p + len));
            p += len;
          }
          REQUIRE(p <= set_end);
          out.records.push_back(std::move(r));
        }
      }
      REQUIRE(p == set_end);
    }
    return out;
  }

 private:
  std::map<uint16_t, std::vector<FieldSpec>> known_;
};

// The templates as RFC 7011 / the IANA registry number them (not the exporter's tables).
std::vector<FieldSpec> expected_template(bool ipv6, uint32_t pen) {
  const uint16_t a = ipv6 ? 16 : 4;
  return {{uint16_t(ipv6 ? 27 : 8), a, 0},    // sourceIPv4/IPv6Address
          {uint16_t(ipv6 ? 28 : 12), a, 0},   // destinationIPv4/IPv6Address
          {7, 2, 0},                          // sourceTransportPort
          {11, 2, 0},                         // destinationTransportPort
          {4, 1, 0},                          // protocolIdentifier
          {uint16_t(ipv6 ? 139 : 32), 2, 0},  // icmpTypeCodeIPv4/IPv6
          {152, 8, 0},                        // flowStartMilliseconds
          {153, 8, 0},                        // flowEndMilliseconds
          {298, 8, 0},                        // initiatorPackets
          {299, 8, 0},                        // responderPackets
          {231, 8, 0},                        // initiatorOctets
          {232, 8, 0},                        // responderOctets
          {136, 1, 0},                        // flowEndReason
          {233, 1, 0},                        // firewallEvent
          {61, 1, 0},                         // flowDirection
          {350, 65535, 0},                    // virtualStationName
          {1, 4, pen},                        // rule id
          {2, 4, pen},                        // source identity
          {3, 4, pen},                        // destination identity
          {4, 1, pen},                        // action
          {5, 1, pen},                        // reason
          {6, 8, pen},                        // suppressed
          {7, 65535, pen},                    // source name
          {8, 65535, pen}};                   // destination name
}

struct Capture {
  std::vector<std::vector<uint8_t>> messages;
  int fail_next = 0;  // the next n sends fail
  IpfixExporter::Send sender() {
    return [this](std::span<const uint8_t> m) -> std::error_code {
      if (fail_next > 0) {
        --fail_next;
        return std::make_error_code(std::errc::connection_refused);
      }
      messages.emplace_back(m.begin(), m.end());
      return {};
    };
  }
};

std::unique_ptr<IpfixExporter> make_exporter(Capture& cap, IpfixOptions o) {
  auto e = IpfixExporter::create(cap.sender(), "test", std::move(o));
  INFO((e ? "" : e.error()));
  REQUIRE(e);
  return std::move(*e);
}

}  // namespace

// ---- JSON lines ------------------------------------------------------------------------------

TEST_CASE("flow_export: a record as JSON, every field", "[flow_export]") {
  const auto end = Json(flow_record_json(tcp_end_v4()));
  CHECK(end == Json::parse(R"({
    "event": "end", "time": "2024-05-01T12:00:05.456Z", "time_ms": 1714564805456,
    "start": "2024-05-01T12:00:00.123Z", "start_ms": 1714564800123,
    "end": "2024-05-01T12:00:05.456Z", "end_ms": 1714564805456, "duration_ms": 5333,
    "workload": "web1", "direction": "egress", "family": 4, "proto": 6,
    "src": "10.1.2.3", "dst": "10.4.5.6", "sport": 40000, "dport": 443,
    "src_identity": 256, "dst_identity": 257, "src_name": "web1", "dst_name": "db1",
    "rule_id": 7, "action": "allow", "reason": "expired",
    "initiator_packets": 10, "responder_packets": 8,
    "initiator_bytes": 1500, "responder_bytes": 9000})"));
  // The order a reader sees.
  CHECK(flow_record_json(tcp_end_v4()).begin().key() == "event");

  const auto deny = Json(flow_record_json(icmp6_deny()));
  CHECK(deny == Json::parse(R"({
    "event": "deny", "time": "2024-05-01T12:00:00.165Z", "time_ms": 1714564800165,
    "workload": "db1", "direction": "ingress", "family": 6, "proto": 58,
    "src": "fd00::9", "dst": "fd00::4", "icmp_type": 128, "icmp_code": 0,
    "src_identity": 300, "dst_identity": 257, "dst_name": "db1",
    "rule_id": 0, "action": "deny", "reason": "deny", "dataplane_suppressed": 4})"));

  const auto start = Json(flow_record_json(tcp_start_v4()));
  CHECK(start["event"] == "start");
  CHECK(start["time_ms"] == kT0);
  CHECK(start["start"] == "2024-05-01T12:00:00.123Z");
  CHECK_FALSE(start.contains("end_ms"));
  CHECK_FALSE(start.contains("initiator_packets"));
  CHECK_FALSE(start.contains("reason"));

  CHECK(flow_kind_name(FlowRecord::Kind::kDeny) == "deny");
  CHECK(flow_address_text(6, v6("2001:db8::53")) == "2001:db8::53");
  CHECK(flow_address_text(4, v4(192, 0, 2, 1)) == "192.0.2.1");
}

TEST_CASE("flow_export: the flow log file: mode, append, one line per record, rotation",
          "[flow_export]") {
  TempDir dir;
  const std::string path = dir / "flows.json";
  {
    FlowLogWriter w;
    REQUIRE(w.open(path));
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);
    CHECK(w.write(tcp_end_v4()));
    CHECK(w.write(icmp6_deny()));
    CHECK(w.counters().written == 2);
  }
  {
    FlowLogWriter w;  // appends, does not truncate
    REQUIRE(w.open(path));
    CHECK(w.write(udp_end_v6()));
    // logrotate: the file is moved away, then glctld reopens.
    REQUIRE(std::rename(path.c_str(), (dir / "flows.json.1").c_str()) == 0);
    REQUIRE(w.reopen());
    CHECK(w.write(tcp_start_v4()));
    CHECK(w.counters().written == 2);
    CHECK(w.counters().errors == 0);
  }
  const auto old_lines = read_lines(dir / "flows.json.1");
  REQUIRE(old_lines.size() == 3);
  CHECK(old_lines[0] == Json(flow_record_json(tcp_end_v4())));
  CHECK(old_lines[1]["event"] == "deny");
  CHECK(old_lines[2]["src"] == "2001:db8::53");
  const auto new_lines = read_lines(path);
  REQUIRE(new_lines.size() == 1);
  CHECK(new_lines[0]["event"] == "start");

  SECTION("a file that cannot be opened is named") {
    FlowLogWriter w;
    const std::string bad = dir / "no/such/dir/flows.json";
    auto r = w.open(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains(bad) && Catch::Contains("No such file"));
    CHECK_FALSE(w.is_open());
    CHECK_FALSE(w.write(tcp_end_v4()));
    CHECK(w.counters().errors == 1);
    CHECK_FALSE(w.reopen());
  }
  SECTION("reopen keeps the old file when the new one cannot be opened") {
    const std::string sub = dir / "sub";
    REQUIRE(std::filesystem::create_directory(sub));
    FlowLogWriter w;
    REQUIRE(w.open(sub + "/f.json"));
    std::filesystem::remove_all(sub);
    auto r = w.reopen();
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains(sub + "/f.json"));
    CHECK(w.is_open());
    CHECK(w.counters().errors == 1);
  }
  SECTION("names that are not UTF-8 do not stop the line") {
    FlowLogWriter w;
    REQUIRE(w.open(dir / "bad.json"));
    FlowRecord r = tcp_end_v4();
    r.src_name =
        "we\xff"
        "b1";
    CHECK(w.write(r));
    const auto lines = read_lines(dir / "bad.json");
    REQUIRE(lines.size() == 1);
    CHECK(lines[0]["src_name"] ==
          "we\xEF\xBF\xBD"
          "b1");
  }
}

TEST_CASE("flow_export: the flow log's rate limit counts, reports and summarises",
          "[flow_export]") {
  TempDir dir;
  const std::string path = dir / "flows.json";
  auto steady = std::chrono::steady_clock::time_point{} + 1000s;
  const auto wall = std::chrono::system_clock::time_point(std::chrono::milliseconds(kT0));
  FlowLogOptions o;
  o.rate = 10;  // one per 100 ms
  o.burst = 5;
  o.steady_now = [&] { return steady; };
  o.wall_now = [&] { return wall; };
  FlowLogWriter w(o);
  REQUIRE(w.open(path));

  int written = 0;
  for (int i = 0; i < 8; ++i) written += w.write(tcp_end_v4()) ? 1 : 0;
  CHECK(written == 5);  // the burst
  CHECK(w.counters().suppressed == 3);
  CHECK(w.unreported() == 3);

  steady += 50ms;  // half a token
  CHECK_FALSE(w.write(tcp_end_v4()));
  steady += 60ms;                // 1.1 tokens
  CHECK(w.write(udp_end_v6()));  // says how many went missing before it
  CHECK(w.unreported() == 0);
  CHECK_FALSE(w.write(tcp_end_v4()));
  CHECK_FALSE(w.write(tcp_end_v4()));
  CHECK(w.tick());        // the summary line
  CHECK_FALSE(w.tick());  // nothing new to report

  steady += 1h;  // a long quiet time refills to the burst, not beyond
  written = 0;
  for (int i = 0; i < 10; ++i) written += w.write(icmp6_deny()) ? 1 : 0;
  CHECK(written == 5);
  CHECK(w.counters().written == 11);
  CHECK(w.counters().suppressed == 11);
  CHECK(w.counters().summaries == 1);
  CHECK(w.counters().errors == 0);

  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 12);
  for (int i = 0; i < 5; ++i) CHECK_FALSE(lines[i].contains("log_suppressed"));
  CHECK(lines[5]["src"] == "2001:db8::53");
  CHECK(lines[5]["log_suppressed"] == 4);
  CHECK(lines[6] == Json::parse(R"({"event": "suppressed", "time": "2024-05-01T12:00:00.123Z",
                                    "time_ms": 1714564800123, "count": 2})"));
  CHECK(lines[7]["event"] == "deny");
  CHECK_FALSE(lines[7].contains("log_suppressed"));
  CHECK(w.unreported() == 5);
}

TEST_CASE("flow_export: the token bucket", "[flow_export]") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 5s;
  TokenBucket b(1000, 2);
  CHECK(b.take(t0));
  CHECK(b.take(t0));
  CHECK_FALSE(b.take(t0));
  CHECK_FALSE(b.take(t0 - 1s));  // a clock going back gives nothing
  CHECK(b.take(t0 + 1ms));
  CHECK_FALSE(b.take(t0 + 1ms));
  CHECK(b.take(t0 + 10s));
  CHECK(b.take(t0 + 10s));
  CHECK_FALSE(b.take(t0 + 10s));
}

// ---- IPFIX -----------------------------------------------------------------------------------

TEST_CASE("flow_export: IPFIX collector addresses", "[flow_export]") {
  struct Good {
    const char* text;
    const char* address;
    uint16_t port;
    const char* canonical;
  };
  for (const Good& g : std::initializer_list<Good>{
           {"udp:192.0.2.1:2055", "192.0.2.1", 2055, "192.0.2.1:2055"},
           {"192.0.2.1:9995", "192.0.2.1", 9995, "192.0.2.1:9995"},
           {"192.0.2.1", "192.0.2.1", 4739, "192.0.2.1:4739"},
           {"udp:192.0.2.1", "192.0.2.1", 4739, "192.0.2.1:4739"},
           {"udp:[2001:db8::1]:4740", "2001:db8::1", 4740, "[2001:db8::1]:4740"},
           {"[2001:db8::1]", "2001:db8::1", 4739, "[2001:db8::1]:4739"},
           {"2001:db8::1", "2001:db8::1", 4739, "[2001:db8::1]:4739"},
           {"::1", "::1", 4739, "[::1]:4739"},
       }) {
    INFO(g.text);
    auto t = parse_ipfix_target(g.text);
    REQUIRE(t);
    CHECK(t->address.to_string() == g.address);
    CHECK(t->port == g.port);
    CHECK(t->text() == g.canonical);
  }
  struct Bad {
    const char* text;
    const char* names;
  };
  for (const Bad& b : std::initializer_list<Bad>{
           {"", "no address"},
           {"udp:", "no address"},
           {"tcp:192.0.2.1:4739", "transport \"tcp\""},
           {"sctp:192.0.2.1", "transport \"sctp\""},
           {"192.0.2.300:4739", "bad address \"192.0.2.300\""},
           {"collector.example:4739", "bad address \"collector.example\""},
           {"192.0.2.1:", "empty port"},
           {"192.0.2.1:0", "bad port \"0\""},
           {"192.0.2.1:65536", "bad port \"65536\""},
           {"192.0.2.1:47x9", "bad port \"47x9\""},
           {"192.0.2.1:000000004739", "bad port \"000000004739\""},
           {"[2001:db8::1", "missing \"]\""},
           {"[2001:db8::1]4739", "unexpected \"4739\""},
           {"[2001:db8::1]:", "empty port"},
           {"[192.0.2.1]:4739", "not an IPv6 address"},
           {"2001:db8::zz", "bad address \"2001:db8::zz\""},
       }) {
    INFO(b.text);
    auto t = parse_ipfix_target(b.text);
    REQUIRE_FALSE(t);
    CHECK_THAT(t.error(), Catch::Contains(b.names) &&
                              Catch::Contains("IPFIX collector \"" + std::string(b.text) + "\""));
  }
}

TEST_CASE("flow_export: IPFIX messages field by field", "[flow_export]") {
  Capture cap;
  auto now = std::chrono::system_clock::time_point(std::chrono::milliseconds(kT0 + 9000));
  IpfixOptions o;
  o.observation_domain_id = 77;
  o.wall_now = [&] { return now; };
  auto ex = make_exporter(cap, o);

  CHECK_FALSE(ex->add(tcp_start_v4()));  // start records only with export_start
  CHECK(ex->add(tcp_end_v4()));
  CHECK(ex->add(udp_end_v6()));
  CHECK(ex->add(icmp6_deny()));
  CHECK(ex->add(tcp_end_v4()));
  CHECK(ex->pending_records() == 4);
  CHECK(cap.messages.size() == 1);  // the templates; records wait for flush() or a full message
  ex->flush();
  CHECK(ex->pending_records() == 0);
  REQUIRE(cap.messages.size() == 2);  // the templates, then the records

  Decoder d;
  const Message t = d.decode(cap.messages[0]);
  CHECK(t.version == 10);
  CHECK(t.export_time == (kT0 + 9000) / 1000);
  CHECK(t.sequence == 0);
  CHECK(t.domain == 77);
  CHECK(t.set_ids == std::vector<uint16_t>{2});
  REQUIRE(t.templates.size() == 2);
  CHECK(t.templates.at(256) == expected_template(false, 32473));
  CHECK(t.templates.at(257) == expected_template(true, 32473));
  CHECK(t.records.empty());

  const Message m = d.decode(cap.messages[1]);
  CHECK(m.version == 10);
  CHECK(m.sequence == 0);
  CHECK(m.domain == 77);
  CHECK(m.export_time == (kT0 + 9000) / 1000);
  CHECK(m.set_ids == std::vector<uint16_t>{256, 257, 256});  // a set per run of one family
  REQUIRE(m.records.size() == 4);
  constexpr uint32_t kPen = 32473;

  const DataRecord& a = m.records[0];
  CHECK(a.template_id == 256);
  CHECK(a.addr(8) == "10.1.2.3");
  CHECK(a.addr(12) == "10.4.5.6");
  CHECK(a.u(7) == 40000);
  CHECK(a.u(11) == 443);
  CHECK(a.u(4) == 6);
  CHECK(a.u(32) == 0);
  CHECK(a.u(152) == kT0);
  CHECK(a.u(153) == kT0 + 5333);
  CHECK(a.u(298) == 10);
  CHECK(a.u(299) == 8);
  CHECK(a.u(231) == 1500);
  CHECK(a.u(232) == 9000);
  CHECK(a.u(136) == 1);  // idle timeout
  CHECK(a.u(233) == 2);  // flow deleted
  CHECK(a.u(61) == 1);   // egress: opened by the workload
  CHECK(a.str(350) == "web1");
  CHECK(a.u(1, kPen) == 7);
  CHECK(a.u(2, kPen) == 256);
  CHECK(a.u(3, kPen) == 257);
  CHECK(a.u(4, kPen) == 0);  // allow
  CHECK(a.u(5, kPen) == 1);  // expired
  CHECK(a.u(6, kPen) == 0);
  CHECK(a.str(7, kPen) == "web1");
  CHECK(a.str(8, kPen) == "db1");

  const DataRecord& b = m.records[1];
  CHECK(b.template_id == 257);
  CHECK(b.addr(27) == "2001:db8::53");
  CHECK(b.addr(28) == "fd00::2");
  CHECK(b.u(7) == 53);
  CHECK(b.u(11) == 5353);
  CHECK(b.u(4) == 17);
  CHECK(b.u(139) == 0);
  CHECK(b.u(152) == kT0 + 1000);
  CHECK(b.u(153) == kT0 + 2500);
  CHECK(b.u(298) == 1);
  CHECK(b.u(299) == 2);
  CHECK(b.u(231) == 80);
  CHECK(b.u(232) == 240);
  CHECK(b.u(136) == 4);  // forced end
  CHECK(b.u(233) == 2);
  CHECK(b.u(61) == 0);  // ingress: opened towards the workload
  CHECK(b.str(350) == "web2");
  CHECK(b.u(1, kPen) == 3);
  CHECK(b.u(4, kPen) == 3);  // allow-encrypted
  CHECK(b.u(5, kPen) == 2);  // removed
  CHECK(b.str(7, kPen) == "2001:db8::/32");
  CHECK(b.str(8, kPen) == "web2");

  const DataRecord& c = m.records[2];
  CHECK(c.template_id == 257);
  CHECK(c.addr(27) == "fd00::9");
  CHECK(c.u(7) == 0);
  CHECK(c.u(11) == 0);
  CHECK(c.u(4) == 58);
  CHECK(c.u(139) == (128 << 8));  // echo request, code 0
  CHECK(c.u(152) == kT0 + 42);
  CHECK(c.u(153) == kT0 + 42);
  CHECK(c.u(298) == 0);
  CHECK(c.u(136) == 0);  // not an end
  CHECK(c.u(233) == 3);  // flow denied
  CHECK(c.u(61) == 0);
  CHECK(c.u(1, kPen) == 0);
  CHECK(c.u(4, kPen) == 1);  // deny
  CHECK(c.u(5, kPen) == 3);  // deny
  CHECK(c.u(6, kPen) == 4);  // dropped by gldp before it
  CHECK(c.str(7, kPen).empty());
  CHECK(c.str(8, kPen) == "db1");
  CHECK(m.records[3].fields == a.fields);

  const IpfixCounters k = ex->counters();
  CHECK(k.messages == 2);
  CHECK(k.template_messages == 1);
  CHECK(k.records == 4);
  CHECK(k.bytes == cap.messages[0].size() + cap.messages[1].size());
  CHECK(k.send_errors == 0);

  ex->flush();  // nothing pending: nothing sent
  CHECK(cap.messages.size() == 2);

  SECTION("start records with export_start; ICMP over IPv4") {
    Capture cap2;
    IpfixOptions o2 = o;
    o2.export_start = true;
    o2.enterprise_number = 99999;
    auto ex2 = make_exporter(cap2, o2);
    FlowRecord icmp = tcp_start_v4();
    icmp.proto = 1;
    icmp.icmp_type = 3;
    icmp.icmp_code = 13;
    CHECK(ex2->add(tcp_start_v4()));
    CHECK(ex2->add(icmp));
    ex2->flush();
    REQUIRE(cap2.messages.size() == 2);
    Decoder d2;
    CHECK(d2.decode(cap2.messages[0]).templates.at(256) == expected_template(false, 99999));
    const Message s = d2.decode(cap2.messages[1]);
    REQUIRE(s.records.size() == 2);
    CHECK(s.records[0].u(233) == 1);  // flow created
    CHECK(s.records[0].u(153) == 0);
    CHECK(s.records[0].u(5, 99999) == 0);
    CHECK(s.records[1].u(32) == (3 << 8 | 13));
    CHECK(s.records[1].u(7) == 0);
    CHECK(s.records[1].u(11) == 0);
  }
  SECTION("every refusal reason and action has the dataplane's number") {
    // IPFIX carries fw::EventReason and fw::Action as numbers: a collector reads the
    // reasons added after "revoked" as theirs, not as 255 (glctld had its own list,
    // which stopped at "revoked").
    Capture cap3;
    auto ex3 = make_exporter(cap3, o);
    FlowRecord clear = icmp6_deny();
    clear.action = "allow-encrypted";
    clear.reason = "not_encrypted";
    FlowRecord other_host = icmp6_deny();
    other_host.action = "allow";
    other_host.reason = "host_mismatch";
    CHECK(ex3->add(clear));
    CHECK(ex3->add(other_host));
    ex3->flush();
    REQUIRE(cap3.messages.size() == 2);
    Decoder d3;
    d3.decode(cap3.messages[0]);
    const Message r = d3.decode(cap3.messages[1]);
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[0].u(4, kPen) == 3);   // allow-encrypted
    CHECK(r.records[0].u(5, kPen) == 9);   // not_encrypted
    CHECK(r.records[1].u(4, kPen) == 0);   // allow
    CHECK(r.records[1].u(5, kPen) == 10);  // host_mismatch
    for (unsigned v = 0; v < 256; ++v) {
      const std::string_view reason = gl::fw::event_reason_name(static_cast<uint8_t>(v));
      if (reason != "?" && ipfix::reason_code(reason) != v) FAIL("reason " << v << " " << reason);
      const std::string_view action = gl::fw::action_name(static_cast<uint8_t>(v));
      if (action != "?" && ipfix::action_code(action) != v) FAIL("action " << v << " " << action);
    }
    CHECK(ipfix::reason_code("none") == 255);
    CHECK(ipfix::reason_code("bogus") == 255);
    CHECK(ipfix::action_code("") == 255);
  }
  SECTION("a record of no known family is refused and counted") {
    FlowRecord r = tcp_end_v4();
    r.family = 5;
    CHECK_FALSE(ex->add(r));
    CHECK(ex->counters().invalid_records == 1);
    CHECK_THAT(ex->last_error(), Catch::Contains("family 5"));
  }
}

TEST_CASE("flow_export: IPFIX batches to the MTU and numbers records in sequence",
          "[flow_export]") {
  Capture cap;
  IpfixOptions o;
  o.mtu = 600;
  auto ex = make_exporter(cap, o);
  // A v4 record with these names is 88 + 3 * (1 + 4) = 103 bytes, a v6 one 127 bytes.
  std::vector<FlowRecord> sent;
  for (int i = 0; i < 40; ++i) {
    FlowRecord r = i % 3 == 0 ? udp_end_v6() : tcp_end_v4();
    r.src_name = r.dst_name = r.workload = "wkld";
    r.sport = static_cast<uint16_t>(1000 + i);
    sent.push_back(r);
    CHECK(ex->add(r));
  }
  ex->flush();
  Decoder d;
  uint32_t expect_seq = 0;
  std::vector<uint16_t> sports;
  size_t data_messages = 0;
  for (const auto& raw : cap.messages) {
    CHECK(raw.size() <= 600);
    const Message m = d.decode(raw);
    CHECK(m.sequence == expect_seq);
    if (m.records.empty()) continue;
    ++data_messages;
    // Full: the next record would not have fitted (a set header for a new family at most).
    if (&raw != &cap.messages.back()) CHECK(raw.size() + 4 + 127 > 600);
    for (const auto& r : m.records) sports.push_back(static_cast<uint16_t>(r.u(7)));
    expect_seq += static_cast<uint32_t>(m.records.size());
  }
  CHECK(expect_seq == 40);
  CHECK(data_messages >= 8);  // 14 v6 and 26 v4 records: 4456 bytes in 584-byte payloads
  REQUIRE(sports.size() == 40);
  for (int i = 0; i < 40; ++i) CHECK(sports[i] == 1000 + i);  // in order
  CHECK(ex->counters().records == 40);
  CHECK(ex->counters().messages == data_messages + 1);
}

TEST_CASE("flow_export: IPFIX templates are sent first, refreshed, and re-sent after a loss",
          "[flow_export]") {
  Capture cap;
  auto now = std::chrono::system_clock::time_point(std::chrono::milliseconds(kT0));
  IpfixOptions o;
  o.template_refresh = 60s;
  o.template_refresh_messages = 3;
  o.wall_now = [&] { return now; };
  auto ex = make_exporter(cap, o);
  Decoder d;
  // One flush: returns whether the templates went in front of the data.
  auto round = [&]() {
    const size_t before = cap.messages.size();
    REQUIRE(ex->add(tcp_end_v4()));
    ex->flush();
    const size_t n = cap.messages.size() - before;
    REQUIRE((n == 1 || n == 2));
    if (n == 2) CHECK(d.decode(cap.messages[before]).set_ids == std::vector<uint16_t>{2});
    CHECK(d.decode(cap.messages.back()).records.size() == 1);
    return n == 2;
  };
  REQUIRE(cap.messages.size() == 1);  // the templates, at start
  CHECK(d.decode(cap.messages[0]).templates.size() == 2);
  CHECK_FALSE(round());
  CHECK_FALSE(round());
  CHECK_FALSE(round());
  CHECK(round());  // after 3 data messages
  now += 30s;
  CHECK_FALSE(round());
  now += 30s;
  CHECK(round());  // after 60 s (the message count was not reached)
  now -= 10min;    // the clock went back: re-send rather than wait for it
  CHECK(round());
  CHECK(ex->counters().template_messages == 4);

  // The template message fails: the data still goes, the templates come again next time.
  now += 1h;
  cap.fail_next = 1;
  const size_t before = cap.messages.size();
  REQUIRE(ex->add(tcp_end_v4()));
  ex->flush();
  CHECK(cap.messages.size() == before + 1);
  CHECK(ex->counters().send_errors == 1);
  CHECK_THAT(ex->last_error(), Catch::Contains("IPFIX to test"));
  CHECK(round());

  // A data message fails: its records are lost and counted, and the sequence moves on.
  cap.fail_next = 1;
  REQUIRE(ex->add(tcp_end_v4()));
  REQUIRE(ex->add(tcp_end_v4()));
  const uint32_t seq_before = d.decode(cap.messages.back()).sequence + 1;
  ex->flush();
  CHECK(ex->counters().lost_records == 2);
  CHECK(round() == false);
  CHECK(d.decode(cap.messages.back()).sequence == seq_before + 2);

  SECTION("templates refused at start go with the first records") {
    Capture cap2;
    cap2.fail_next = 1;
    auto ex2 = make_exporter(cap2, o);
    CHECK(cap2.messages.empty());
    CHECK(ex2->counters().send_errors == 1);
    REQUIRE(ex2->add(tcp_end_v4()));
    ex2->flush();
    REQUIRE(cap2.messages.size() == 2);
    Decoder d2;
    CHECK(d2.decode(cap2.messages[0]).templates.size() == 2);
    CHECK(d2.decode(cap2.messages[1]).records.size() == 1);
  }
  SECTION("refresh triggers can be turned off") {
    Capture cap2;
    IpfixOptions o2 = o;
    o2.template_refresh = 0s;
    o2.template_refresh_messages = 0;
    auto ex2 = make_exporter(cap2, o2);
    for (int i = 0; i < 5; ++i) {
      REQUIRE(ex2->add(tcp_end_v4()));
      ex2->flush();
      now += 1h;
    }
    CHECK(cap2.messages.size() == 6);
    CHECK(ex2->counters().template_messages == 1);
  }
}

TEST_CASE("flow_export: IPFIX names are cut to fit, never inside a UTF-8 character",
          "[flow_export]") {
  Capture cap;
  IpfixOptions o;
  FlowRecord r = udp_end_v6();
  r.src_name = std::string(300, 'a');
  r.dst_name = std::string(20, 'b');
  r.workload = std::string(254, 'w');
  auto ex = make_exporter(cap, o);
  REQUIRE(ex->add(r));
  ex->flush();
  Decoder d;
  d.decode(cap.messages[0]);
  const Message m = d.decode(cap.messages[1]);
  REQUIRE(m.records.size() == 1);
  CHECK(m.records[0].str(7, 32473) == std::string(255, 'a'));  // the three-byte length form
  CHECK(m.records[0].str(8, 32473) == std::string(20, 'b'));
  CHECK(m.records[0].str(350) == std::string(254, 'w'));
  CHECK(ex->counters().truncated_names == 1);

  // The smallest MTU: every record still fits in a message of its own.
  Capture cap2;
  o.mtu = 512;
  auto small = make_exporter(cap2, o);
  r.workload = std::string(200, 'w') + "\xC3\xA9\xC3\xA9";  // ends in two two-byte characters
  r.src_name = std::string(1000, 'a');
  r.dst_name = std::string(1000, 'b');
  REQUIRE(small->add(r));
  REQUIRE(small->add(r));
  small->flush();
  REQUIRE(cap2.messages.size() == 3);
  Decoder d2;
  d2.decode(cap2.messages[0]);
  for (size_t i = 1; i < 3; ++i) {
    CHECK(cap2.messages[i].size() <= 512);
    const Message s = d2.decode(cap2.messages[i]);
    REQUIRE(s.records.size() == 1);
    const std::string w = s.records[0].str(350);
    CHECK(w.size() < 204);
    CHECK(w.size() >= 120);
    CHECK((static_cast<uint8_t>(w.back()) & 0xC0) != 0xC0);  // no lead byte left alone
    CHECK(w.substr(0, 120) == std::string(120, 'w'));
  }

  SECTION("options out of range are refused") {
    IpfixOptions bad;
    bad.mtu = 511;
    auto e = IpfixExporter::create(cap.sender(), "x", bad);
    REQUIRE_FALSE(e);
    CHECK_THAT(e.error(), Catch::Contains("mtu 511"));
    bad.mtu = 1400;
    bad.enterprise_number = 0;
    CHECK_FALSE(IpfixExporter::create(cap.sender(), "x", bad));
    boost::asio::io_context io;
    auto t = IpfixExporter::create(io.get_executor(), "udp:localhost:4739");
    REQUIRE_FALSE(t);
    CHECK_THAT(t.error(), Catch::Contains("bad address \"localhost\""));
  }
}

// ---- the real thing: UDP on 127.0.0.1, decoded by tshark -------------------------------------

namespace {

std::string find_program(const char* name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  dirs += ":/usr/bin:/usr/sbin:/bin";
  std::stringstream ss(dirs);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    const std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

void le16(std::string& b, uint16_t v) {
  b.append(reinterpret_cast<const char*>(&v), 2);
}
void le32(std::string& b, uint32_t v) {
  b.append(reinterpret_cast<const char*>(&v), 4);
}
void be16(std::string& b, uint16_t v) {
  b.push_back(static_cast<char>(v >> 8));
  b.push_back(static_cast<char>(v));
}

// A classic pcap file (Ethernet): each datagram in IPv4/UDP from 127.0.0.1:sport to
// 127.0.0.1:4739.
void write_pcap(const std::string& path, const std::vector<std::vector<uint8_t>>& datagrams,
                uint16_t sport) {
  std::string f;
  le32(f, 0xa1b2c3d4);
  le16(f, 2);
  le16(f, 4);
  le32(f, 0);
  le32(f, 0);
  le32(f, 65535);
  le32(f, 1);  // LINKTYPE_ETHERNET
  uint32_t ts = static_cast<uint32_t>(kT0 / 1000 + 10);
  uint16_t ip_id = 1;
  for (const auto& d : datagrams) {
    std::string p;
    p += std::string("\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00", 14);
    std::string ip;
    ip += '\x45';
    ip += '\x00';
    be16(ip, static_cast<uint16_t>(20 + 8 + d.size()));
    be16(ip, ip_id++);
    be16(ip, 0x4000);  // DF
    ip += '\x40';      // TTL 64
    ip += '\x11';      // UDP
    be16(ip, 0);       // checksum, below
    ip += std::string("\x7f\x00\x00\x01\x7f\x00\x00\x01", 8);
    uint32_t sum = 0;
    for (size_t i = 0; i < ip.size(); i += 2)
      sum +=
          static_cast<uint32_t>(static_cast<uint8_t>(ip[i]) << 8 | static_cast<uint8_t>(ip[i + 1]));
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    const uint16_t csum = static_cast<uint16_t>(~sum);
    ip[10] = static_cast<char>(csum >> 8);
    ip[11] = static_cast<char>(csum);
    p += ip;
    be16(p, sport);
    be16(p, 4739);
    be16(p, static_cast<uint16_t>(8 + d.size()));
    be16(p, 0);  // no UDP checksum (IPv4)
    p.append(reinterpret_cast<const char*>(d.data()), d.size());
    le32(f, ts++);
    le32(f, 0);
    le32(f, static_cast<uint32_t>(p.size()));
    le32(f, static_cast<uint32_t>(p.size()));
    f += p;
  }
  std::ofstream out(path, std::ios::binary);
  out << f;
  REQUIRE(out.good());
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  INFO(cmd << "\n" << out);
  REQUIRE(status == 0);
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::stringstream ss(s);
  while (std::getline(ss, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

}  // namespace

TEST_CASE("flow_export: IPFIX over UDP, decoded by tshark", "[flow_export]") {
  // A collector on 127.0.0.1, ephemeral port.
  const int rx = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(rx >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(rx, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t alen = sizeof addr;
  REQUIRE(::getsockname(rx, reinterpret_cast<sockaddr*>(&addr), &alen) == 0);
  const uint16_t port = ntohs(addr.sin_port);

  boost::asio::io_context io;
  auto ex = IpfixExporter::create(io.get_executor(), "udp:127.0.0.1:" + std::to_string(port));
  INFO((ex ? "" : ex.error()));
  REQUIRE(ex);
  CHECK((*ex)->target() == "127.0.0.1:" + std::to_string(port));
  REQUIRE((*ex)->add(tcp_end_v4()));
  REQUIRE((*ex)->add(udp_end_v6()));
  REQUIRE((*ex)->add(icmp6_deny()));
  (*ex)->flush();
  CHECK((*ex)->counters().send_errors == 0);
  CHECK((*ex)->counters().messages == 2);

  std::vector<std::vector<uint8_t>> got;
  uint16_t sport = 0;
  while (got.size() < 2) {
    pollfd pfd{rx, POLLIN, 0};
    REQUIRE(::poll(&pfd, 1, 5000) == 1);
    std::vector<uint8_t> buf(65536);
    sockaddr_in from{};
    socklen_t flen = sizeof from;
    const ssize_t n =
        ::recvfrom(rx, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &flen);
    REQUIRE(n > 0);
    buf.resize(static_cast<size_t>(n));
    sport = ntohs(from.sin_port);
    got.push_back(std::move(buf));
  }
  ::close(rx);
  Decoder d;
  CHECK(d.decode(got[0]).templates.size() == 2);
  CHECK(d.decode(got[1]).records.size() == 3);

  const std::string tshark = find_program("tshark");
  if (tshark.empty()) {
    WARN("tshark not installed (tools/setup.sh installs it): the decode by tshark is skipped");
    return;
  }
  TempDir dir;
  const std::string pcap = dir / "ipfix.pcap";
  write_pcap(pcap, got, sport);
  if (const char* keep = std::getenv("GL_FLOW_EXPORT_PCAP"))  // to look at it afterwards
    std::filesystem::copy_file(pcap, keep, std::filesystem::copy_options::overwrite_existing);
  const char* fields[] = {"cflow.srcaddr",
                          "cflow.dstaddr",
                          "cflow.srcaddrv6",
                          "cflow.dstaddrv6",
                          "cflow.srcport",
                          "cflow.dstport",
                          "cflow.protocol",
                          "cflow.initiator_packets",
                          "cflow.responder_packets",
                          "cflow.initiator_octets",
                          "cflow.responder_octets",
                          "cflow.abstimestart",
                          "cflow.abstimeend",
                          "cflow.firewall_event",
                          "cflow.flow_end_reason",
                          "cflow.direction",
                          "cflow.virtual_station_name",
                          "cflow.template_id",
                          "_ws.malformed",
                          "_ws.expert.message"};
  std::string cmd = "TZ=UTC " + tshark + " -n -r " + pcap +
                    " -d udp.port==4739,cflow -T fields -E separator=/t -E occurrence=a"
                    " -E aggregator=/s";
  for (const char* f : fields) cmd += std::string(" -e ") + f;
  cmd += " 2>" + dir / "tshark.err";
  const std::string out = run(cmd);
  INFO(out);
  const auto lines = split(out, '\n');
  REQUIRE(lines.size() >= 2);
  std::vector<std::map<std::string, std::string>> pkts;
  for (size_t i = 0; i < 2; ++i) {
    const auto cols = split(lines[i], '\t');
    REQUIRE(cols.size() == std::size(fields));
    std::map<std::string, std::string> m;
    for (size_t c = 0; c < cols.size(); ++c) m[fields[c]] = cols[c];
    pkts.push_back(m);
  }
  // The template message: both templates, no records.
  CHECK(pkts[0]["cflow.template_id"] == "256 257");
  CHECK(pkts[0]["cflow.srcaddr"].empty());
  // The data message: the IPv4 record, then the IPv6 end and deny records.
  auto& p = pkts[1];
  CHECK(p["_ws.malformed"].empty());
  CHECK(p["_ws.expert.message"].empty());
  CHECK(p["cflow.srcaddr"] == "10.1.2.3");
  CHECK(p["cflow.dstaddr"] == "10.4.5.6");
  CHECK(p["cflow.srcaddrv6"] == "2001:db8::53 fd00::9");
  CHECK(p["cflow.dstaddrv6"] == "fd00::2 fd00::4");
  CHECK(p["cflow.srcport"] == "40000 53 0");
  CHECK(p["cflow.dstport"] == "443 5353 0");
  CHECK(p["cflow.protocol"] == "6 17 58");
  CHECK(p["cflow.initiator_packets"] == "10 1 0");
  CHECK(p["cflow.responder_packets"] == "8 2 0");
  CHECK(p["cflow.initiator_octets"] == "1500 80 0");
  CHECK(p["cflow.responder_octets"] == "9000 240 0");
  CHECK_THAT(p["cflow.abstimestart"], Catch::StartsWith("May  1, 2024 12:00:00.123000000"));
  CHECK_THAT(p["cflow.abstimestart"], Catch::Contains("12:00:01.123000000"));
  CHECK_THAT(p["cflow.abstimeend"], Catch::StartsWith("May  1, 2024 12:00:05.456000000"));
  CHECK_THAT(p["cflow.abstimeend"], Catch::Contains("12:00:02.623000000"));
  CHECK(p["cflow.firewall_event"] == "2 2 3");
  CHECK(p["cflow.flow_end_reason"] == "1 4 0");
  CHECK(p["cflow.direction"] == "1 0 0");
  CHECK(p["cflow.virtual_station_name"] == "web1 web2 db1");

  // Every element of the templates by the name tshark knows it by (IANA's above 127).
  const std::string verbose = run("TZ=UTC " + tshark + " -n -r " + pcap +
                                  " -d udp.port==4739,cflow -V 2>>" + dir / "tshark.err");
  for (const char* name : {"IP_SRC_ADDR (8)",
                           "IP_DST_ADDR (12)",
                           "IPV6_SRC_ADDR (27)",
                           "IPV6_DST_ADDR (28)",
                           "L4_SRC_PORT (7)",
                           "L4_DST_PORT (11)",
                           "PROTOCOL (4)",
                           "ICMP_TYPE (32)",
                           "icmpTypeCodeIPv6 (139)",
                           "flowStartMilliseconds (152)",
                           "flowEndMilliseconds (153)",
                           "initiatorPackets (298)",
                           "responderPackets (299)",
                           "initiatorOctets (231)",
                           "responderOctets (232)",
                           "flowEndReason (136)",
                           "firewallEvent (233)",
                           "DIRECTION (61)",
                           "virtualStationName (350)",
                           "PEN: Example Enterprise Number for Documentation Use (32473)"})
    CHECK_THAT(verbose,
               Catch::Contains(std::string("Type: ") + name) || Catch::Contains(std::string(name)));
  CHECK_THAT(verbose, !Catch::Contains("Malformed"));
}
