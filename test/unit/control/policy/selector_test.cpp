#include <catch2/catch.hpp>
#include <string>

#include "control/policy/selector.hpp"

using namespace gl::policy;

namespace {

struct SelectorCase {
  const char* description;
  const char* input;
  const char* expected;  // canonical text, or the complete error
  bool ok;
};

}  // namespace

TEST_CASE("selectors: valid expressions and their canonical text", "[policy][selector]") {
  const SelectorCase cases[] = {
      {"any", "any", "any", true},
      {"empty selects nothing", "", "", true},
      {"blank selects nothing", "   ", "", true},
      {"label equals (the issue's example)", "app=web", "app=web", true},
      {"label not equals", "env!=prod", "env!=prod", true},
      {"has key", "tier", "tier", true},
      {"lacks key", "!quarantine", "!quarantine", true},
      {"conjunction with spaces", " app = web & env != prod ", "app=web&env!=prod", true},
      {"lacks key with space", "! quarantine", "!quarantine", true},
      {"alternatives", "group:db | workload:bastion", "group:db|workload:bastion", true},
      {"group and label", "group:db&zone=a", "group:db&zone=a", true},
      {"ipv4 cidr", "10.0.0.0/8", "10.0.0.0/8", true},
      {"ipv4 host", "192.0.2.7", "192.0.2.7", true},
      {"ipv4 host /32 printed short", "192.0.2.7/32", "192.0.2.7", true},
      {"ipv6 cidr", "2001:DB8::/32", "2001:db8::/32", true},
      {"ipv6 host", "2001:db8::7", "2001:db8::7", true},
      {"cidr alternatives", "10.0.0.0/8|2001:db8::/32|0.0.0.0/0",
       "10.0.0.0/8|2001:db8::/32|0.0.0.0/0", true},
      {"any among alternatives", "app=web|any", "app=web|any", true},
      {"key with prefix path", "app.kubernetes.io/name=web", "app.kubernetes.io/name=web", true},
      {"value with dots", "version=1.2.3", "version=1.2.3", true},
      {"digit key", "3tier", "3tier", true},
      {"four terms", "a&b=c&!d&e!=f", "a&b=c&!d&e!=f", true},
  };
  for (const SelectorCase& c : cases) {
    INFO(c.description << ": " << c.input);
    auto s = parse_selector(c.input);
    if (!s) FAIL(s.error());
    CHECK(format_selector(*s) == c.expected);
    auto again = parse_selector(format_selector(*s));
    REQUIRE(again);
    CHECK(*again == *s);
  }
}

TEST_CASE("selectors: the tree", "[policy][selector]") {
  auto s = parse_selector("app=web&env!=prod|group:db|!q|tier|10.0.0.0/8|workload:w1");
  REQUIRE(s);
  REQUIRE(s->alternatives.size() == 6);
  REQUIRE(s->alternatives[0].terms.size() == 2);
  CHECK(s->alternatives[0].terms[0].kind == TermKind::kLabelEquals);
  CHECK(s->alternatives[0].terms[0].key == "app");
  CHECK(s->alternatives[0].terms[0].value == "web");
  CHECK(s->alternatives[0].terms[1].kind == TermKind::kLabelNotEquals);
  CHECK(s->alternatives[1].terms[0].kind == TermKind::kGroup);
  CHECK(s->alternatives[1].terms[0].key == "db");
  CHECK(s->alternatives[2].terms[0].kind == TermKind::kLacksLabel);
  CHECK(s->alternatives[3].terms[0].kind == TermKind::kHasLabel);
  CHECK(s->alternatives[4].terms[0].kind == TermKind::kCidr);
  CHECK(s->alternatives[4].terms[0].prefix.to_string() == "10.0.0.0/8");
  CHECK(s->alternatives[5].terms[0].kind == TermKind::kWorkload);
  CHECK(s->alternatives[5].terms[0].key == "w1");
}

TEST_CASE("selectors: every error names the term", "[policy][selector]") {
  const SelectorCase cases[] = {
      {"trailing &", "app=web&", "\"app=web&\": empty term after '&'", false},
      {"leading &", "&app=web", "\"&app=web\": empty term before '&'", false},
      {"double &", "a&&b", "\"a&&b\": empty term after '&'", false},
      {"trailing |", "app=web|", "\"app=web|\": empty alternative after '|'", false},
      {"leading |", "|app=web", "\"|app=web\": empty alternative before '|'", false},
      {"any combined", "any&app=web",
       "\"any&app=web\": term \"any\": \"any\" cannot be combined with '&'", false},
      {"cidr combined", "app=web & 10.0.0.0/8",
       "\"app=web & 10.0.0.0/8\": term \"10.0.0.0/8\": a CIDR cannot be combined with '&'", false},
      {"cidr negated", "!10.0.0.0/8", "\"!10.0.0.0/8\": a CIDR cannot be negated", false},
      {"host bits", "10.1.2.3/8", "\"10.1.2.3/8\": host bits set, did you mean 10.0.0.0/8?", false},
      {"prefix too long", "10.0.0.0/40", "\"10.0.0.0/40\": prefix length above 32", false},
      {"bad ipv4", "10.0.0", "\"10.0.0\": not an IPv4 address", false},
      {"bad ipv6", "2001:db8:::1", "\"2001:db8:::1\": not an IPv6 address", false},
      {"unknown reference kind", "grp:db",
       "\"grp:db\": unknown reference \"grp:\" (references are group:NAME and workload:NAME)",
       false},
      {"empty group name", "group:", "\"group:\": bad name \"\"", false},
      {"bad group name", "group:d b", "\"group:d b\": bad name \"d b\"", false},
      {"bad workload name", "workload:-x", "\"workload:-x\": bad name \"-x\"", false},
      {"empty value", "app=", "\"app=\": empty label value", false},
      {"empty key", "=web", "\"=web\": empty label key", false},
      {"empty key of !=", "!=web", "\"!=web\": empty label key", false},
      {"bad key char", "ap p=web", "\"ap p=web\": bad label key \"ap p\"", false},
      {"bad value char", "app=we/b", "\"app=we/b\": bad label value \"we/b\"", false},
      {"value with colon", "app=a:b", "\"app=a:b\": bad label value \"a:b\"", false},
      {"key starting with dot", ".app", "\".app\": bad label key \".app\"", false},
      {"negated equals", "!app=web", "\"!app=web\": bad label key \"!app\"", false},
      {"term in a longer selector",
       "app=web|env=", "\"app=web|env=\": term \"env=\": empty label value", false},
  };
  for (const SelectorCase& c : cases) {
    INFO(c.description << ": " << c.input);
    auto s = parse_selector(c.input);
    REQUIRE_FALSE(s);
    CHECK(s.error() == c.expected);
  }
}

TEST_CASE("label keys and values", "[policy][selector]") {
  CHECK(is_valid_label_key("app"));
  CHECK(is_valid_label_key("app.kubernetes.io/name"));
  CHECK(is_valid_label_key(std::string(253, 'k')));
  CHECK_FALSE(is_valid_label_key(std::string(254, 'k')));
  CHECK_FALSE(is_valid_label_key("gl:workload"));  // reserved namespace: ':' never in keys
  CHECK_FALSE(is_valid_label_key("10.0.0.1"));     // would read as an address
  CHECK_FALSE(is_valid_label_key(""));
  CHECK(is_valid_label_value("v1.2_3-x"));
  CHECK(is_valid_label_value(std::string(63, 'v')));
  CHECK_FALSE(is_valid_label_value(std::string(64, 'v')));
  CHECK_FALSE(is_valid_label_value(""));
  CHECK_FALSE(is_valid_label_value("a b"));
}
