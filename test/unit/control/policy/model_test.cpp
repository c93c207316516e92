#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "control/policy/model.hpp"
#include "policy_builder.hpp"

using namespace gl::policy;
using namespace gl::policy::testing;

namespace {

DesiredState base() {
  StateBuilder b;
  b.workload("web1", "hv1", {"10.0.0.1", "2001:db8::1"}, {{"app", "web"}})
      .workload("web2", "hv2", {"10.0.0.2"}, {{"app", "web"}})
      .workload("db1", "hv1", {"10.0.1.1"}, {{"app", "db"}, {"env", "prod"}})
      .group("dbs", "app=db", {"db1"})
      .group("all-web", "group:dbs|app=web")
      .rule("id=1,priority=100,from=app=web,to=group:dbs,tcp,tp_dst=5432,actions=allow")
      .rule("id=2,priority=10,from=any,to=workload:db1,actions=deny");
  return b.state();
}

struct ValidationCase {
  const char* description;
  std::function<void(DesiredState&)> change;
  std::vector<std::string> expected;  // every problem's text, in order
};

std::vector<std::string> problems(const DesiredState& s) {
  std::vector<std::string> out;
  auto r = validate(s);
  if (!r)
    for (const Problem& p : r.error().problems) out.push_back(p.text());
  return out;
}

}  // namespace

TEST_CASE("validation: the base state is valid", "[policy][model]") {
  CHECK(problems(base()).empty());
  CHECK(problems(DesiredState{}).empty());
}

TEST_CASE("validation: every problem names the object and the field", "[policy][model]") {
  const ValidationCase cases[] = {
      {"default action reject",
       [](DesiredState& s) { s.settings.default_action = Action::kReject; },
       {"settings: default_action: \"reject\": must be allow or deny"}},
      {"bad workload name",
       [](DesiredState& s) { s.workloads[0].name = "web 1"; },
       {"workload #1: name: \"web 1\": not a valid name ([A-Za-z0-9][A-Za-z0-9._-]*, 1..64)"}},
      {"duplicate workload name",
       [](DesiredState& s) { s.workloads[1].name = "web1"; },
       {"workload web1: name: duplicate name"}},
      {"bad mac",
       [](DesiredState& s) { s.workloads[0].mac = "zz:00:00:00:00:01"; },
       {"workload web1: mac: \"zz:00:00:00:00:01\": not a MAC address (aa:bb:cc:dd:ee:ff)"}},
      {"multicast mac",
       [](DesiredState& s) { s.workloads[0].mac = "01:00:5e:00:00:01"; },
       {"workload web1: mac: \"01:00:5e:00:00:01\": not a unicast MAC address"}},
      {"zero mac",
       [](DesiredState& s) { s.workloads[0].mac = "00:00:00:00:00:00"; },
       {"workload web1: mac: \"00:00:00:00:00:00\": not a unicast MAC address"}},
      {"duplicate mac on one host",
       [](DesiredState& s) { s.workloads[2].mac = s.workloads[0].mac; },
       {"workload db1: mac: \"02:00:00:00:00:01\": already used by workload web1 on host hv1"}},
      {"same mac on another host is fine",
       [](DesiredState& s) { s.workloads[1].mac = s.workloads[0].mac; },
       {}},
      {"duplicate ip across workloads",
       [](DesiredState& s) { s.workloads[1].ips = {"10.0.0.1"}; },
       {"workload web2: ips: \"10.0.0.1\": already used by workload web1"}},
      {"duplicate ipv6 in another spelling",
       [](DesiredState& s) { s.workloads[2].ips.push_back("2001:DB8:0::1"); },
       {"workload db1: ips: \"2001:DB8:0::1\": already used by workload web1"}},
      {"ip listed twice",
       [](DesiredState& s) { s.workloads[0].ips.push_back("10.0.0.1"); },
       {"workload web1: ips: \"10.0.0.1\": listed twice"}},
      {"bad ip",
       [](DesiredState& s) { s.workloads[0].ips = {"10.0.0.300"}; },
       {"workload web1: ips: \"10.0.0.300\": not an IPv4 address"}},
      {"prefix instead of ip",
       [](DesiredState& s) { s.workloads[0].ips = {"10.0.0.1/32"}; },
       {"workload web1: ips: \"10.0.0.1/32\": an address, not a prefix"}},
      {"multicast ip",
       [](DesiredState& s) {
         s.workloads[0].ips = {"224.0.0.1", "ff02::1", "0.0.0.0"};
       },
       {"workload web1: ips: \"224.0.0.1\": not a unicast address",
        "workload web1: ips: \"ff02::1\": not a unicast address",
        "workload web1: ips: \"0.0.0.0\": not a unicast address"}},
      {"empty host",
       [](DesiredState& s) { s.workloads[0].host = ""; },
       {"workload web1: host: \"\": not a valid host name"}},
      {"empty port",
       [](DesiredState& s) { s.workloads[0].port = ""; },
       {"workload web1: port: \"\": not a valid port name"}},
      {"port with a space",
       [](DesiredState& s) { s.workloads[0].port = "vnic 1"; },
       {"workload web1: port: \"vnic 1\": not a valid port name"}},
      {"duplicate port on one host",
       [](DesiredState& s) { s.workloads[2].port = "vnic-web1"; },
       {"workload db1: port: \"vnic-web1\": already used by workload web1 on host hv1"}},
      {"bad label key",
       [](DesiredState& s) { s.workloads[0].labels["gl:workload"] = "x"; },
       {"workload web1: labels: \"gl:workload\": not a valid label key"}},
      {"bad label value",
       [](DesiredState& s) { s.workloads[0].labels["env"] = "a b"; },
       {"workload web1: labels: \"env=a b\": not a valid label value"}},
      {"empty label value",
       [](DesiredState& s) { s.workloads[0].labels["env"] = ""; },
       {"workload web1: labels: \"env=\": not a valid label value"}},
      {"duplicate group",
       [](DesiredState& s) { s.groups[1].name = "dbs"; },
       {"group dbs: name: duplicate name", "group dbs: selector: cycle: dbs -> dbs"}},
      {"bad group selector",
       [](DesiredState& s) { s.groups[0].selector = "app=&x"; },
       {"group dbs: selector: \"app=&x\": term \"app=\": empty label value"}},
      {"unknown group referenced",
       [](DesiredState& s) { s.groups[1].selector = "group:nope"; },
       {"group all-web: selector: \"group:nope\": unknown group \"nope\""}},
      {"unknown workload referenced",
       [](DesiredState& s) { s.groups[1].selector = "workload:x"; },
       {"group all-web: selector: \"workload:x\": unknown workload \"x\""}},
      {"unknown member",
       [](DesiredState& s) { s.groups[0].members.push_back("ghost"); },
       {"group dbs: members: \"ghost\": unknown workload"}},
      {"member twice",
       [](DesiredState& s) { s.groups[0].members.push_back("db1"); },
       {"group dbs: members: \"db1\": listed twice"}},
      {"group cycle",
       [](DesiredState& s) { s.groups[0].selector = "group:all-web"; },
       {"group dbs: selector: cycle: dbs -> all-web -> dbs"}},
      {"group self reference",
       [](DesiredState& s) { s.groups[0].selector = "app=db|group:dbs"; },
       {"group dbs: selector: cycle: dbs -> dbs"}},
      {"empty group selector is fine", [](DesiredState& s) { s.groups[0].selector = ""; }, {}},
      {"rule ports reversed",
       [](DesiredState& s) { s.rules[0].ports = "80-70"; },
       {"rule 1: ports: \"80-70\": range reversed"}},
      {"rule ports on icmp",
       [](DesiredState& s) { s.rules[0].protocol = "icmp"; },
       {"rule 1: ports: \"5432\": ports only apply to tcp, udp and sctp (protocol is icmp)"}},
      {"rule ports on protocol 6", [](DesiredState& s) { s.rules[0].protocol = "6"; }, {}},
      {"rule bad protocol",
       [](DesiredState& s) { s.rules[1].protocol = "gre"; },
       {"rule 2: protocol: \"gre\": not a protocol (ip, tcp, udp, icmp, icmp6, sctp or 1..255)"}},
      {"rule id zero",
       [](DesiredState& s) { s.rules[1].rule_id = 0; },
       {"rule #2: rule_id: \"0\": must be 1..2147483647"}},
      {"rule id too big",
       [](DesiredState& s) { s.rules[1].rule_id = 0x80000000u; },
       {"rule #2: rule_id: \"2147483648\": must be 1..2147483647"}},
      {"duplicate rule id",
       [](DesiredState& s) { s.rules[1].rule_id = 1; },
       {"rule 1: rule_id: duplicate rule id (rules #1 and #2)"}},
      {"priority too big",
       [](DesiredState& s) { s.rules[1].priority = 65536; },
       {"rule 2: priority: \"65536\": must be 0..65535"}},
      {"empty from",
       [](DesiredState& s) { s.rules[1].from = ""; },
       {"rule 2: from: empty selector (\"any\" selects everything)"}},
      {"bad to",
       [](DesiredState& s) { s.rules[1].to = "10.0.0.0/8&app=web"; },
       {"rule 2: to: \"10.0.0.0/8&app=web\": term \"10.0.0.0/8\": a CIDR cannot be combined with "
        "'&'"}},
      {"rule unknown group",
       [](DesiredState& s) { s.rules[0].to = "group:dbz"; },
       {"rule 1: to: \"group:dbz\": unknown group \"dbz\""}},
      {"rule unknown workload",
       [](DesiredState& s) { s.rules[1].to = "workload:db2"; },
       {"rule 2: to: \"workload:db2\": unknown workload \"db2\""}},
      {"invalid action value",
       [](DesiredState& s) { s.rules[1].action = static_cast<Action>(9); },
       {"rule 2: action: 9: not an action"}},
      {"description with newline",
       [](DesiredState& s) { s.rules[1].description = "a\nb"; },
       {"rule 2: description: control character 10 not allowed"}},
      {"description too long",
       [](DesiredState& s) { s.rules[1].description = std::string(1025, 'x'); },
       {"rule 2: description: longer than 1024 bytes"}},
      {"many problems, all reported in order",
       [](DesiredState& s) {
         s.settings.default_action = Action::kAllowEncrypted;
         s.workloads[0].mac = "bad";
         s.workloads[1].ips = {"10.0.1.1"};
         s.groups[0].members = {"nobody"};
         s.rules[0].ports = "1-0";
         s.rules[1].to = "group:none";
       },
       {"settings: default_action: \"allow-encrypted\": must be allow or deny",
        "workload web1: mac: \"bad\": not a MAC address (aa:bb:cc:dd:ee:ff)",
        "workload db1: ips: \"10.0.1.1\": already used by workload web2",
        "group dbs: members: \"nobody\": unknown workload",
        "rule 1: ports: \"1-0\": range reversed",
        "rule 2: to: \"group:none\": unknown group \"none\""}},
  };
  for (const ValidationCase& c : cases) {
    INFO(c.description);
    DesiredState s = base();
    c.change(s);
    CHECK(problems(s) == c.expected);
  }
}

TEST_CASE("validation: field syntax helpers", "[policy][model]") {
  CHECK(*parse_ports("") == std::vector<PortRange>{});
  CHECK(*parse_ports(" 80 , 443 ,8000-8080") ==
        std::vector<PortRange>{{80, 80}, {443, 443}, {8000, 8080}});
  CHECK(*parse_ports("10-20,15-30,31,5") == std::vector<PortRange>{{5, 5}, {10, 31}});
  CHECK(*parse_ports("0-65535") == std::vector<PortRange>{{0, 65535}});
  CHECK(format_ports(*parse_ports("443,80,81,82-90")) == "80-90,443");
  CHECK(parse_ports("80,").error() == "\"80,\": empty item in the port list");
  CHECK(parse_ports("1-2-3").error() == "\"1-2-3\": not a port or port range");
  CHECK(parse_ports("080").error() == "\"080\": not a port or port range");
  CHECK(*parse_protocol("ip") == 0);
  CHECK(*parse_protocol("icmp6") == 58);
  CHECK(*parse_protocol("255") == 255);
  CHECK_FALSE(parse_protocol("TCP"));
  CHECK(protocol_name(132) == "sctp");
  CHECK(protocol_name(47) == "47");
  CHECK(*parse_action("allow-encrypted") == Action::kAllowEncrypted);
  CHECK(*parse_action("drop") == Action::kDeny);
  CHECK_FALSE(parse_action("permit"));
  CHECK(is_valid_name("web-1.a_b"));
  CHECK_FALSE(is_valid_name("-web"));
  CHECK_FALSE(is_valid_name(std::string(65, 'a')));
}
