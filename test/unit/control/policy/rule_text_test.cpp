#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "control/policy/rule_text.hpp"
#include "control/policy/selector.hpp"

using namespace gl::policy;

namespace {

struct TextCase {
  const char* description;
  const char* input;
  const char* expected;  // canonical text, or every problem (one per line)
};

Rule must_parse(const std::string& text) {
  INFO(text);
  auto r = parse_rule(text);
  if (!r) FAIL(r.error().text());
  return *r;
}

}  // namespace

TEST_CASE("rule text: the issue's example", "[policy][rule_text]") {
  Rule r = must_parse("priority=100,from=app=web,to=app=db,tcp,tp_dst=5432,actions=allow,log");
  CHECK(r.rule_id == 0);
  CHECK(r.priority == 100);
  CHECK(r.from == "app=web");
  CHECK(r.to == "app=db");
  CHECK(r.protocol == "tcp");
  CHECK(r.ports == "5432");
  CHECK(r.action == Action::kAllow);
  CHECK(r.log);
  CHECK(r.description.empty());
  CHECK(format_rule(r) == "priority=100,from=app=web,to=app=db,tcp,tp_dst=5432,actions=allow,log");
}

TEST_CASE("rule text: parse and canonical format", "[policy][rule_text]") {
  const TextCase cases[] = {
      {"minimal: defaults", "actions=deny", "priority=32768,from=any,to=any,ip,actions=deny"},
      {"id first, fields in any order", "actions=reject,to=group:db,id=7,priority=10,from=any",
       "id=7,priority=10,from=any,to=group:db,ip,actions=reject"},
      {"action alias and drop", "action=drop", "priority=32768,from=any,to=any,ip,actions=deny"},
      {"allow-encrypted", "from=app=web,to=app=db,actions=allow-encrypted",
       "priority=32768,from=app=web,to=app=db,ip,actions=allow-encrypted"},
      {"spaces everywhere", " priority = 5 , from = app=web & env=prod , udp , actions=allow ",
       "priority=5,from=app=web&env=prod,to=any,udp,actions=allow"},
      {"repeated tp_dst, sorted and merged",
       "tcp,tp_dst=8000-8080,tp_dst=443,tp_dst=80,tp_dst=8081,actions=allow",
       "priority=32768,from=any,to=any,tcp,tp_dst=80,tp_dst=443,tp_dst=8000-8081,actions=allow"},
      {"quoted tp_dst list", "udp,tp_dst=\"53, 5353\",actions=allow",
       "priority=32768,from=any,to=any,udp,tp_dst=53,tp_dst=5353,actions=allow"},
      {"full range", "sctp,tp_dst=0-65535,actions=allow",
       "priority=32768,from=any,to=any,sctp,tp_dst=0-65535,actions=allow"},
      {"proto number with a name", "proto=6,tp_dst=22,actions=allow",
       "priority=32768,from=any,to=any,tcp,tp_dst=22,actions=allow"},
      {"proto number without a name", "proto=47,actions=allow",
       "priority=32768,from=any,to=any,proto=47,actions=allow"},
      {"proto by name", "proto=icmp6,actions=allow",
       "priority=32768,from=any,to=any,icmp6,actions=allow"},
      {"icmp", "icmp,from=10.0.0.0/8,actions=allow",
       "priority=32768,from=10.0.0.0/8,to=any,icmp,actions=allow"},
      {"cidr alternatives", "from=10.0.0.0/8|192.168.0.0/16|2001:DB8::/32,actions=allow",
       "priority=32768,from=10.0.0.0/8|192.168.0.0/16|2001:db8::/32,to=any,ip,actions=allow"},
      {"description quoted with comma", "actions=deny,description=\"db, locked down\"",
       "priority=32768,from=any,to=any,ip,actions=deny,description=\"db, locked down\""},
      {"description escapes", "actions=deny,description=\"say \\\"hi\\\" \\\\ bye\"",
       "priority=32768,from=any,to=any,ip,actions=deny,description=\"say \\\"hi\\\" \\\\ bye\""},
      {"description unquoted", "actions=deny,description=plain words",
       "priority=32768,from=any,to=any,ip,actions=deny,description=\"plain words\""},
      {"empty description", "actions=deny,description=\"\"",
       "priority=32768,from=any,to=any,ip,actions=deny"},
      {"quoted selector", "from=\"app=web\",actions=allow",
       "priority=32768,from=app=web,to=any,ip,actions=allow"},
      {"priority bounds", "priority=0,actions=allow",
       "priority=0,from=any,to=any,ip,actions=allow"},
      {"priority max", "priority=65535,actions=allow",
       "priority=65535,from=any,to=any,ip,actions=allow"},
      {"max id", "id=2147483647,actions=allow",
       "id=2147483647,priority=32768,from=any,to=any,ip,actions=allow"},
  };
  for (const TextCase& c : cases) {
    INFO(c.description << ": " << c.input);
    Rule r = must_parse(c.input);
    std::string text = format_rule(r);
    CHECK(text == c.expected);
    CHECK(must_parse(text) == r);  // round trip
  }
}

TEST_CASE("rule text: every error names the field and the text", "[policy][rule_text]") {
  const TextCase cases[] = {
      {"empty", "", "empty rule"},
      {"unknown field", "frm=app=web,actions=allow", "\"frm\": unknown field"},
      {"unknown bare word", "tcpp,actions=allow", "\"tcpp\": unknown field"},
      {"missing actions", "tcp",
       "actions: missing (actions=allow, deny, reject or allow-encrypted)"},
      {"bad action", "actions=alow",
       "actions: \"alow\": not an action (allow, deny, reject, "
       "allow-encrypted)"},
      {"reversed range", "tcp,tp_dst=80-70,actions=allow", "tp_dst: \"80-70\": range reversed"},
      {"port too big", "tcp,tp_dst=70000,actions=allow", "tp_dst: \"70000\": port above 65535"},
      {"port not a number", "tcp,tp_dst=http,actions=allow",
       "tp_dst: \"http\": not a port or port range"},
      {"one bad port among many", "tcp,tp_dst=80,tp_dst=90-x,actions=allow",
       "tp_dst: \"90-x\": not a port or port range"},
      {"ports without protocol", "tp_dst=80,actions=allow",
       "tp_dst: \"80\": ports only apply to tcp, udp and sctp (protocol is ip)"},
      {"ports with icmp", "icmp,tp_dst=80,actions=allow",
       "tp_dst: \"80\": ports only apply to tcp, udp and sctp (protocol is icmp)"},
      {"empty tp_dst", "tcp,tp_dst=,actions=allow", "tp_dst: empty value"},
      {"priority too big", "priority=65536,actions=allow", "priority: \"65536\": must be 0..65535"},
      {"priority not a number", "priority=high,actions=allow", "priority: \"high\": not a number"},
      {"priority negative", "priority=-1,actions=allow", "priority: \"-1\": not a number"},
      {"id zero", "id=0,actions=allow",
       "id: \"0\": must be 1..2147483647 (leave id out to have one assigned)"},
      {"id too big", "id=2147483648,actions=allow",
       "id: \"2147483648\": must be 1..2147483647 (leave id out to have one assigned)"},
      {"id not a number", "id=x7,actions=allow", "id: \"x7\": not a number"},
      {"bad protocol", "proto=tcpp,actions=allow",
       "proto: \"tcpp\": not a protocol (ip, tcp, udp, icmp, icmp6, sctp or 1..255)"},
      {"protocol 0", "proto=0,actions=allow",
       "proto: \"0\": 0 is not a transport protocol (\"ip\" means any protocol)"},
      {"protocol 256", "proto=256,actions=allow",
       "proto: \"256\": not a protocol (ip, tcp, udp, icmp, icmp6, sctp or 1..255)"},
      {"two protocols", "tcp,udp,actions=allow",
       "proto: protocol given twice (\"tcp\" and \"udp\")"},
      {"word and proto=", "tcp,proto=17,actions=allow",
       "proto: protocol given twice (\"tcp\" and \"proto=17\")"},
      {"field twice", "priority=1,priority=2,actions=allow", "priority: given twice"},
      {"log twice", "log,log,actions=allow", "log: given twice"},
      {"log with value", "log=yes,actions=allow", "log: \"log=yes\": log takes no value"},
      {"tcp with value", "tcp=1,actions=allow", "tcp: \"tcp=1\": tcp takes no value"},
      {"missing value", "priority,actions=allow", "priority: missing value (priority=...)"},
      {"empty value", "priority=,actions=allow", "priority: empty value"},
      {"empty field", "tcp,,actions=allow", "empty field at offset 4"},
      {"trailing comma", "actions=allow,", "empty field after the last comma"},
      {"value without name", "=5,actions=allow", "value \"5\" without a field name"},
      {"unterminated quote", "actions=allow,description=\"abc",
       "description: \"\"abc\": unterminated quote"},
      {"text after quote", "description=\"a\"b,actions=allow",
       "description: \"b\": text after the closing quote"},
      {"bad selector", "from=app=web&,actions=allow", "from: \"app=web&\": empty term after '&'"},
      {"empty selector", "to=\"\",actions=allow", "to: empty value"},
      {"cidr host bits", "to=10.1.0.0/8,actions=allow",
       "to: \"10.1.0.0/8\": host bits set, did you mean 10.0.0.0/8?"},
      {"control character in description", "actions=allow,description=\"a\tb\"",
       "description: control character 9 not allowed"},
      {"several problems at once", "priority=x,frm=a,tcp,tp_dst=9-1",
       "priority: \"x\": not a number\n\"frm\": unknown field\nactions: missing (actions=allow, "
       "deny, reject or allow-encrypted)\ntp_dst: \"9-1\": range reversed"},
  };
  for (const TextCase& c : cases) {
    INFO(c.description << ": " << c.input);
    auto r = parse_rule(c.input);
    REQUIRE_FALSE(r);
    CHECK(r.error().text() == c.expected);
  }
}

TEST_CASE("rule text: format of rules that did not come from text", "[policy][rule_text]") {
  Rule r;
  r.rule_id = 9;
  r.priority = 7;
  r.from = " app = web ";
  r.to = "group:db";
  r.protocol = "17";
  r.ports = "53 , 1-2";
  r.action = Action::kReject;
  r.description = "a,b";
  std::string text = format_rule(r);
  CHECK(text ==
        "id=9,priority=7,from=app=web,to=group:db,udp,tp_dst=1-2,tp_dst=53,actions=reject,"
        "description=\"a,b\"");
  Rule back = must_parse(text);
  CHECK(back.from == "app=web");
  CHECK(back.protocol == "udp");
  CHECK(back.ports == "1-2,53");
  CHECK(format_rule(back) == text);

  // Invalid fields are written as they are, quoted: the text reports the same problem.
  Rule bad;
  bad.protocol = "icmp";
  bad.ports = "80";
  bad.from = "a,b";
  std::string bad_text = format_rule(bad);
  CHECK(bad_text == "priority=32768,from=\"a,b\",to=any,icmp,tp_dst=80,actions=allow");
  auto err = parse_rule(bad_text);
  REQUIRE_FALSE(err);
  CHECK(err.error().text() ==
        "from: \"a,b\": bad label key \"a,b\"\n"
        "tp_dst: \"80\": ports only apply to tcp, udp and sctp (protocol is icmp)");
}

TEST_CASE("rule text: random rules round-trip", "[policy][rule_text]") {
  std::mt19937 rng(20240611);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  const std::vector<std::string> selectors = {"any",
                                              "app=web",
                                              "app = db & env != prod",
                                              "group:g1|workload:w2",
                                              "10.0.0.0/8",
                                              "2001:db8::/32|192.0.2.7",
                                              "!quarantine",
                                              "tier&role=x"};
  const std::vector<std::string> protocols = {"ip",   "tcp", "udp", "icmp", "icmp6",
                                              "sctp", "47",  "6",   "17"};
  const std::vector<std::string> descriptions = {"",        "plain",       "with, comma",
                                                 "q\"uote", "back\\slash", " spaces "};
  for (int i = 0; i < 2000; ++i) {
    Rule r;
    r.rule_id = rng() % 3 == 0 ? 0 : 1 + rng() % kMaxRuleId;
    r.priority = rng() % (kMaxPriority + 1);
    r.from = pick(selectors);
    r.to = pick(selectors);
    r.protocol = pick(protocols);
    auto proto = parse_protocol(r.protocol);
    REQUIRE(proto);
    if (protocol_has_ports(*proto)) {
      int n = static_cast<int>(rng() % 4);
      for (int k = 0; k < n; ++k) {
        uint16_t lo = static_cast<uint16_t>(rng() % 65536);
        uint16_t hi = rng() % 2 ? lo : static_cast<uint16_t>(lo + rng() % (65536 - lo));
        if (!r.ports.empty()) r.ports += ",";
        r.ports += std::to_string(lo);
        if (hi != lo) r.ports += "-" + std::to_string(hi);
      }
    }
    r.action = static_cast<Action>(rng() % 4);
    r.log = rng() % 2;
    r.description = pick(descriptions);
    INFO(format_rule(r));
    REQUIRE(validate_rule(r, false).empty());
    Rule canonical = must_parse(format_rule(r));
    // Same rule in canonical spelling...
    CHECK(canonical.rule_id == r.rule_id);
    CHECK(canonical.priority == r.priority);
    CHECK(canonical.action == r.action);
    CHECK(canonical.log == r.log);
    CHECK(canonical.description == r.description);
    CHECK(*parse_protocol(canonical.protocol) == *proto);
    CHECK(*parse_ports(canonical.ports) == *parse_ports(r.ports));
    CHECK(*parse_selector(canonical.from) == *parse_selector(r.from));
    CHECK(*parse_selector(canonical.to) == *parse_selector(r.to));
    // ...and a fixed point from there on.
    CHECK(must_parse(format_rule(canonical)) == canonical);
    CHECK(format_rule(canonical) == format_rule(r));
  }
}
