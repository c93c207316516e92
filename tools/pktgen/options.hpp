// options.hpp — gl-pktgen's command line and JSON profiles.
//
// Purpose: one Options value describes a run; it comes from the command line, where
// `--profile FILE` first loads a JSON object whose keys are the long option names
// (`src_ip` or `src-ip`) and later command-line options override it. Errors are
// returned as text (exit code 2 in main), never thrown past this boundary.
// Thread-safety: plain data, built once on the main thread. Complexity: trivial.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <vector>

namespace gl::pktgen {

enum class Proto : uint8_t { kUdp, kIcmp, kTcp };
const char* proto_name(Proto p);

struct Range {
  uint64_t lo = 0;
  uint64_t hi = 0;
  uint64_t size() const { return hi - lo + 1; }
};

using Mac = std::array<uint8_t, 6>;

struct Options {
  std::string tx;  // devargs
  std::string rx;  // devargs; empty = transmit only
  Proto proto = Proto::kUdp;
  uint64_t flows = 0;                    // 0 = every combination of the ranges
  Range src_ip{0x0a000001, 0x0a000001};  // host order: 10.0.0.1
  Range dst_ip{0x0a000101, 0x0a000101};  // 10.0.1.1
  Range src_port{1024, 1024};
  Range dst_port{5001, 5001};
  bool src_port_given = false;
  std::vector<uint16_t> sizes{64};  // Ethernet frame sizes including the 4-byte FCS
  bool imix = false;
  std::optional<uint16_t> vlan;  // VLAN id
  uint8_t vlan_pcp = 0;
  std::optional<Mac> src_mac;      // default: the tx port's MAC
  std::optional<Mac> dst_mac;      // default: the rx port's MAC, else broadcast
  double rate = 0;                 // packets (TCP: connections) per second; 0 = unlimited
  double duration = 0;             // seconds; 0 with count 0 means 10 s
  uint64_t count = 0;              // packets (TCP: connections) to send
  double tcp_timeout = 1.0;        // seconds a connection may take from SYN to last ACK
  uint64_t tcp_concurrency = 256;  // connections open at once, at most
  double drain = 1.0;              // max seconds to wait for in-flight packets at the end
  uint64_t inject_drop = 0;
  uint64_t inject_reorder = 0;
  uint64_t inject_dup = 0;
  std::string json;  // summary destination; "-" = stdout
  std::string lcores;
  bool quiet = false;
  std::vector<std::string> eal;  // after "--"
};

struct ParseResult {
  Options opts;
  bool help = false;
  bool version = false;
};

// Parses argv[1..argc). Returns a message on a usage error.
std::expected<ParseResult, std::string> parse_args(int argc, char** argv);

// The --help text.
std::string usage_text();

// Helpers shared with main (exposed for clarity of messages).
std::string format_ipv4(uint32_t host_order);
std::string format_mac(const Mac& m);

}  // namespace gl::pktgen
