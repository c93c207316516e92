#include <catch2/catch.hpp>
#include <string>

#include "control/policy/address.hpp"

using namespace gl::policy;

namespace {

struct AddressCase {
  const char* description;
  const char* input;
  const char* expected;  // canonical text, or the error text
  bool ok;
};

}  // namespace

TEST_CASE("addresses parse strictly and print canonically", "[policy][address]") {
  const AddressCase cases[] = {
      {"ipv4", "192.0.2.7", "192.0.2.7", true},
      {"ipv4 zero", "0.0.0.0", "0.0.0.0", true},
      {"ipv4 max", "255.255.255.255", "255.255.255.255", true},
      {"ipv6 compressed", "2001:db8::1", "2001:db8::1", true},
      {"ipv6 full form is compressed", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1",
       true},
      {"ipv6 upper case", "2001:DB8::A", "2001:db8::a", true},
      {"ipv6 all zero", "::", "::", true},
      {"ipv6 loopback", "::1", "::1", true},
      {"ipv6 trailing ::", "fe80::", "fe80::", true},
      {"ipv6 longest zero run wins", "1:0:0:2:0:0:0:3", "1:0:0:2::3", true},
      {"ipv6 first of equal runs", "1:0:0:2:3:0:0:4", "1::2:3:0:0:4", true},
      {"ipv6 single zero group not compressed", "1:2:3:4:5:6:0:8", "1:2:3:4:5:6:0:8", true},
      {"ipv6 :: for one group", "1:2:3:4:5:6::8", "1:2:3:4:5:6:0:8", true},
      {"ipv6 embedded ipv4", "64:ff9b::192.0.2.1", "64:ff9b::c000:201", true},
      {"ipv4-mapped", "::ffff:10.0.0.1", "::ffff:10.0.0.1", true},
      {"ipv4 leading zero", "10.0.0.01", "\"10.0.0.01\": not an IPv4 address", false},
      {"ipv4 octet too big", "10.0.0.256", "\"10.0.0.256\": not an IPv4 address", false},
      {"ipv4 three octets", "10.0.0", "\"10.0.0\": not an IPv4 address", false},
      {"ipv4 five octets", "10.0.0.0.1", "\"10.0.0.0.1\": not an IPv4 address", false},
      {"ipv4 trailing dot", "10.0.0.1.", "\"10.0.0.1.\": not an IPv4 address", false},
      {"empty", "", "\"\": not an IPv4 address", false},
      {"ipv6 two ::", "1::2::3", "\"1::2::3\": not an IPv6 address", false},
      {"ipv6 too many groups", "1:2:3:4:5:6:7:8:9", "\"1:2:3:4:5:6:7:8:9\": not an IPv6 address",
       false},
      {"ipv6 :: with eight groups", "1:2:3:4::5:6:7:8", "\"1:2:3:4::5:6:7:8\": not an IPv6 address",
       false},
      {"ipv6 group too long", "12345::", "\"12345::\": not an IPv6 address", false},
      {"ipv6 bad hex", "2001:db8::g", "\"2001:db8::g\": not an IPv6 address", false},
      {"ipv6 leading single colon", ":1::", "\":1::\": not an IPv6 address", false},
      {"ipv6 trailing single colon", "1::2:", "\"1::2:\": not an IPv6 address", false},
      {"ipv6 quad not last", "1.2.3.4::", "\"1.2.3.4::\": not an IPv6 address", false},
      {"ipv6 zone id", "fe80::1%eth0", "\"fe80::1%eth0\": not an IPv6 address", false},
  };
  for (const AddressCase& c : cases) {
    INFO(c.description << ": " << c.input);
    auto a = IpAddress::parse(c.input);
    REQUIRE(a.has_value() == c.ok);
    if (c.ok) {
      CHECK(a->to_string() == c.expected);
      auto again = IpAddress::parse(a->to_string());
      REQUIRE(again);
      CHECK(*again == *a);
    } else {
      CHECK(a.error() == c.expected);
    }
  }
}

TEST_CASE("prefixes: parse, host bits, containment", "[policy][address]") {
  const AddressCase cases[] = {
      {"ipv4 /8", "10.0.0.0/8", "10.0.0.0/8", true},
      {"ipv4 host", "192.0.2.7", "192.0.2.7/32", true},
      {"ipv4 /0", "0.0.0.0/0", "0.0.0.0/0", true},
      {"ipv6 /32", "2001:db8::/32", "2001:db8::/32", true},
      {"ipv6 host", "2001:db8::1", "2001:db8::1/128", true},
      {"ipv6 /0", "::/0", "::/0", true},
      {"ipv4 host bits", "10.1.2.3/8", "\"10.1.2.3/8\": host bits set, did you mean 10.0.0.0/8?",
       false},
      {"ipv6 host bits", "2001:db8::1/32",
       "\"2001:db8::1/32\": host bits set, did you mean 2001:db8::/32?", false},
      {"ipv4 length too long", "10.0.0.0/33", "\"10.0.0.0/33\": prefix length above 32", false},
      {"ipv6 length too long", "::/129", "\"::/129\": prefix length above 128", false},
      {"length missing", "10.0.0.0/", "\"10.0.0.0/\": bad prefix length", false},
      {"length leading zero", "10.0.0.0/08", "\"10.0.0.0/08\": bad prefix length", false},
      {"length not a number", "10.0.0.0/x", "\"10.0.0.0/x\": bad prefix length", false},
      {"bad address", "10.0.0/8", "\"10.0.0/8\": bad address \"10.0.0\": not an IPv4 address",
       false},
  };
  for (const AddressCase& c : cases) {
    INFO(c.description << ": " << c.input);
    auto p = IpPrefix::parse(c.input);
    REQUIRE(p.has_value() == c.ok);
    if (c.ok)
      CHECK(p->to_string() == c.expected);
    else
      CHECK(p.error() == c.expected);
  }

  auto pfx = [](const char* t) { return *IpPrefix::parse(t); };
  auto addr = [](const char* t) { return *IpAddress::parse(t); };
  CHECK(pfx("10.0.0.0/8").contains(addr("10.255.1.2")));
  CHECK_FALSE(pfx("10.0.0.0/8").contains(addr("11.0.0.0")));
  CHECK(pfx("10.1.0.0/17").contains(addr("10.1.127.255")));
  CHECK_FALSE(pfx("10.1.0.0/17").contains(addr("10.1.128.0")));
  CHECK(pfx("0.0.0.0/0").contains(addr("203.0.113.9")));
  CHECK_FALSE(pfx("0.0.0.0/0").contains(addr("2001:db8::1")));  // families never mix
  CHECK_FALSE(pfx("::/0").contains(addr("10.0.0.1")));
  CHECK_FALSE(pfx("10.0.0.0/8").contains(addr("::ffff:10.0.0.1")));
  CHECK(pfx("2001:db8::/32").contains(addr("2001:db8:ffff::1")));
  CHECK_FALSE(pfx("2001:db8::/33").contains(addr("2001:db8:8000::1")));
  CHECK(pfx("10.0.0.0/8").contains(pfx("10.1.0.0/16")));
  CHECK(pfx("10.0.0.0/8").contains(pfx("10.0.0.0/8")));
  CHECK_FALSE(pfx("10.1.0.0/16").contains(pfx("10.0.0.0/8")));
  CHECK_FALSE(pfx("10.1.0.0/16").contains(pfx("10.2.0.0/16")));
  CHECK(pfx("192.0.2.7").to_short_string() == "192.0.2.7");
  CHECK(pfx("192.0.2.0/24").to_short_string() == "192.0.2.0/24");
}

TEST_CASE("MAC addresses", "[policy][address]") {
  auto mac = parse_mac("02:AA:bb:0c:dd:e0");
  REQUIRE(mac);
  CHECK(format_mac(*mac) == "02:aa:bb:0c:dd:e0");
  for (const char* bad : {"", "02:aa:bb:cc:dd", "02:aa:bb:cc:dd:ee:ff", "2:aa:bb:cc:dd:ee",
                          "02-aa-bb-cc-dd-ee", "02:aa:bb:cc:dd:eg", "zz:00:00:00:00:01"}) {
    INFO(bad);
    CHECK_FALSE(parse_mac(bad));
  }
}
