// flow_export.hpp — glctld's flow records: the firewall's connection and deny events written
// as JSON lines (FlowLogWriter) and exported as IPFIX over UDP (IpfixExporter).
//
// Purpose: gldp reports connections that start and end and packets it refuses; glctld turns
// each into a FlowRecord (plain data, no dataplane types) and hands it to whichever
// exporters the settings row asks for (Goldilocks.flow_log, Goldilocks.ipfix_collector).
//   * FlowLogWriter: one JSON object per line appended to a file, limited by a token bucket
//     (records over the limit are counted, and the next line or a summary line says how
//     many); reopen() for log rotation.
//   * IpfixExporter: RFC 7011 messages on a connected UDP socket, one template per address
//     family (IANA IEs plus a few enterprise-specific ones), records batched up to an MTU,
//     templates sent first and refreshed every N seconds / M messages (RFC 7011 §8.4).
// Field names, the IEs chosen and why, what is exported when: control/DESIGN.md, "Flow
// records and IPFIX".
//
// Thread-safety: the free functions are pure; a FlowLogWriter or IpfixExporter belongs to
// one thread (glctld's io_context thread). Nothing here throws: errors are return values
// and counters. Complexity: O(size of the record) per record; IPFIX sends one datagram per
// full message (plus one for the templates when they are due), the JSON writer one write(2)
// per line.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/address.hpp>
#include <nlohmann/json.hpp>

namespace gl::glctld {

// One firewall event, as gldp reported it, with the names glctld knows.
struct FlowRecord {
  enum class Kind : uint8_t { kStart, kEnd, kDeny };
  Kind kind = Kind::kEnd;
  uint64_t start_ms = 0, end_ms = 0;     // Unix epoch ms (start: end_ms = 0; deny: both the time)
  uint8_t family = 4;                    // 4 or 6
  uint8_t proto = 0;                     // IP protocol
  std::array<uint8_t, 16> src{}, dst{};  // originator -> responder, network order, IPv4 in [0..3]
  uint16_t sport = 0, dport = 0;         // host order; ICMP: 0 (type/code below)
  uint8_t icmp_type = 0, icmp_code = 0;
  uint64_t packets[2] = {}, bytes[2] = {};      // [0] initiator->responder, [1] back (end records)
  uint32_t rule_id = 0;                         // 0: the port's default action
  uint32_t src_identity = 0, dst_identity = 0;  // workload identities (numbers)
  std::string src_name, dst_name;               // workload names or CIDR text ("" unknown)
  std::string workload;                         // the workload whose port saw it
  bool to_vm = false;                           // opened towards that workload (else by it)
  std::string action;                           // "allow" | "deny" | "reject" | "allow-encrypted"
  std::string reason;       // end: "expired" | "removed"; deny: "deny" | "reject" | "spoof" |
                            // "conn_limit" | "invalid" | "revoked"; start: ""
  uint64_t suppressed = 0;  // deny events the dataplane's rate limit dropped before this one
};

// "start", "end", "deny".
std::string_view flow_kind_name(FlowRecord::Kind kind);
// An address as text ("10.0.0.1", "fd00::1"); family 4 reads a[0..3].
std::string flow_address_text(uint8_t family, const std::array<uint8_t, 16>& a);
// ICMP (family 4, proto 1) or ICMPv6 (family 6, proto 58): type/code instead of ports.
bool flow_is_icmp(const FlowRecord& r);
// The record as one JSON line's object (field order as written; see DESIGN.md).
nlohmann::ordered_json flow_record_json(const FlowRecord& r);

// ---- rate limit ------------------------------------------------------------------------

// `rate` tokens per second up to `burst`; starts full. One thread.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}
  // Takes a token if there is one at `now`.
  bool take(std::chrono::steady_clock::time_point now);

 private:
  double rate_, burst_, tokens_;
  std::chrono::steady_clock::time_point last_{};
  bool started_ = false;
};

// ---- JSON lines ------------------------------------------------------------------------

struct FlowLogOptions {
  double rate = 1000;   // lines per second, sustained (> 0)
  double burst = 2000;  // lines at once (>= 1)
  // Clocks; empty: the real ones. steady_now drives the rate limit, wall_now the summary
  // line's time (records carry their own times).
  std::function<std::chrono::steady_clock::time_point()> steady_now;
  std::function<std::chrono::system_clock::time_point()> wall_now;
};

struct FlowLogCounters {
  uint64_t written = 0;     // record lines written
  uint64_t suppressed = 0;  // records the rate limit dropped
  uint64_t summaries = 0;   // {"event":"suppressed"} lines written
  uint64_t errors = 0;      // lines lost to a failed write or a closed file, failed (re)opens
};

class FlowLogWriter {
 public:
  explicit FlowLogWriter(FlowLogOptions options = {});
  ~FlowLogWriter();
  FlowLogWriter(const FlowLogWriter&) = delete;
  FlowLogWriter& operator=(const FlowLogWriter&) = delete;

  // Appends to `path` from now on (created 0640 when missing; an existing file keeps its
  // mode). The error names the path and the reason; the previous file, if any, stays.
  std::expected<void, std::string> open(const std::string& path);
  // Opens the same path again (after logrotate moved the file). On failure the old file
  // stays open, the error is counted and returned.
  std::expected<void, std::string> reopen();
  void close();
  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

  // Writes the record as one line: true when written; false when the rate limit suppressed
  // it (counted, reported by the next line's "log_suppressed") or the write failed
  // (counted in errors, last_error()).
  bool write(const FlowRecord& r);
  // Writes {"event":"suppressed","count":N,...} when records were suppressed since the last
  // line that reported them; glctld calls it about once a second. True when written.
  bool tick();

  FlowLogCounters counters() const { return counters_; }
  // Records suppressed and not yet reported in a line.
  uint64_t unreported() const { return unreported_; }
  const std::string& last_error() const { return last_error_; }

 private:
  bool write_line(const std::string& line);

  FlowLogOptions options_;
  TokenBucket bucket_;
  std::string path_;
  int fd_ = -1;
  uint64_t unreported_ = 0;
  FlowLogCounters counters_;
  std::string last_error_;
};

// ---- IPFIX -------------------------------------------------------------------------------

namespace ipfix {

inline constexpr uint16_t kVersion = 10;
inline constexpr uint16_t kPort = 4739;  // IANA's UDP port for IPFIX
inline constexpr uint16_t kTemplateSetId = 2;
inline constexpr uint16_t kTemplateV4 = 256;
inline constexpr uint16_t kTemplateV6 = 257;
inline constexpr uint16_t kVarLength = 65535;
inline constexpr size_t kHeaderSize = 16;
inline constexpr size_t kSetHeaderSize = 4;
// RFC 5612's enterprise number for documentation: the default until Goldilocks has its own.
inline constexpr uint32_t kDocumentationPen = 32473;

// IANA Information Elements used (RFC 7012 registry).
enum Ie : uint16_t {
  kProtocolIdentifier = 4,
  kSourceTransportPort = 7,
  kSourceIPv4Address = 8,
  kDestinationTransportPort = 11,
  kDestinationIPv4Address = 12,
  kSourceIPv6Address = 27,
  kDestinationIPv6Address = 28,
  kIcmpTypeCodeIPv4 = 32,
  kFlowDirection = 61,  // 0 ingress (opened towards the workload), 1 egress (by it)
  kFlowEndReason = 136,
  kIcmpTypeCodeIPv6 = 139,
  kFlowStartMilliseconds = 152,
  kFlowEndMilliseconds = 153,
  kInitiatorOctets = 231,
  kResponderOctets = 232,
  kFirewallEvent = 233,
  kInitiatorPackets = 298,
  kResponderPackets = 299,
  kVirtualStationName = 350,  // the workload whose port saw it
};

// Enterprise-specific elements (under IpfixOptions::enterprise_number).
enum GlIe : uint16_t {
  kGlRuleId = 1,          // unsigned32: the rule that decided, 0 = the port's default
  kGlSourceIdentity = 2,  // unsigned32
  kGlDestinationIdentity = 3,
  kGlAction = 4,           // unsigned8: fw::Action (0 allow, 1 deny, 2 reject, 3 allow-encrypted)
  kGlReason = 5,           // unsigned8: fw::EventReason (0 none, 1 expired ... 10 host_mismatch)
  kGlSuppressed = 6,       // unsigned64: deny events the dataplane dropped before this one
  kGlSourceName = 7,       // string
  kGlDestinationName = 8,  // string
};

// firewallEvent (233) values.
inline constexpr uint8_t kFwEventCreated = 1, kFwEventDeleted = 2, kFwEventDenied = 3;
// flowEndReason (136) values.
inline constexpr uint8_t kEndIdleTimeout = 1, kEndForced = 4;

struct Field {
  uint16_t id;
  uint16_t length;  // kVarLength: variable-length string
  bool enterprise;
};

// The template of family 4 or 6, in record order.
std::span<const Field> template_fields(uint8_t family);

// fw::Action's number of its name (fw::kActionNames: "allow" -> 0 ... "allow-encrypted"
// -> 3); anything else 255.
uint8_t action_code(std::string_view action);
// fw::EventReason's number of its name as fw::event_reason_name() gives it ("" 0,
// "expired" 1, ... "host_mismatch" 10); anything else 255.
uint8_t reason_code(std::string_view reason);

}  // namespace ipfix

// Where IPFIX goes: "udp:IP:PORT", "IP:PORT", "IP", "udp:[IPv6]:PORT", "[IPv6]", "IPv6".
struct IpfixTarget {
  boost::asio::ip::address address;
  uint16_t port = ipfix::kPort;
  std::string text() const;  // "192.0.2.1:4739", "[2001:db8::1]:4739"
};
// The error names the part that is wrong (scheme, address, port).
std::expected<IpfixTarget, std::string> parse_ipfix_target(std::string_view text);

struct IpfixOptions {
  uint32_t observation_domain_id = 1;
  size_t mtu = 1400;  // largest IPFIX message (the UDP payload), 512 .. 65507
  // Templates go before the first data message and again before a data message once
  // `template_refresh` passed or `template_refresh_messages` data messages were sent since
  // (0: that trigger off), and after a template message failed to go.
  std::chrono::seconds template_refresh{60};
  uint32_t template_refresh_messages = 100;
  bool export_start = false;  // start records too (end and deny records always)
  uint32_t enterprise_number = ipfix::kDocumentationPen;
  // Export time and template refresh; empty: the system clock.
  std::function<std::chrono::system_clock::time_point()> wall_now;
};

struct IpfixCounters {
  uint64_t messages = 0;  // sent, template messages included
  uint64_t template_messages = 0;
  uint64_t records = 0;  // data records in messages sent
  uint64_t bytes = 0;    // IPFIX bytes sent
  uint64_t send_errors = 0;
  uint64_t lost_records = 0;     // in messages that failed to go
  uint64_t invalid_records = 0;  // not exportable (family not 4/6)
  uint64_t truncated_names = 0;  // names cut to fit a record in the MTU
};

class IpfixExporter {
 public:
  // Sends one IPFIX message; an error means it did not go.
  using Send = std::function<std::error_code(std::span<const uint8_t> message)>;

  // A connected UDP socket on `ex` towards `target` (parse_ipfix_target()); the templates
  // are sent at once (a failure is counted, and they go again before the first records).
  // Errors name the target and what failed (options, socket, connect).
  static std::expected<std::unique_ptr<IpfixExporter>, std::string> create(
      boost::asio::any_io_executor ex, std::string_view target, IpfixOptions options = {});
  // Another transport (tests): messages go to `send`, the templates at once.
  static std::expected<std::unique_ptr<IpfixExporter>, std::string> create(
      Send send, std::string target, IpfixOptions options = {});
  IpfixExporter(const IpfixExporter&) = delete;
  IpfixExporter& operator=(const IpfixExporter&) = delete;

  // Queues the record; sends the pending message first when the record does not fit in it.
  // False when the record is not exported (a start record without export_start, a family
  // other than 4/6: counted in invalid_records).
  bool add(const FlowRecord& r);
  // Sends the pending records (templates first when due). glctld calls it after each batch.
  void flush();

  size_t pending_records() const { return pending_; }
  IpfixCounters counters() const { return counters_; }
  const std::string& last_error() const { return last_error_; }
  const std::string& target() const { return target_; }
  const IpfixOptions& options() const { return options_; }

 private:
  IpfixExporter(Send send, std::string target, IpfixOptions options);
  void start();  // the templates, at once
  void encode_record(const FlowRecord& r, std::vector<uint8_t>& out);
  void close_set();
  void send_pending();
  bool templates_due(std::chrono::system_clock::time_point now) const;
  void send_templates(std::chrono::system_clock::time_point now);
  bool send_message(std::vector<uint8_t>& msg, std::chrono::system_clock::time_point now);

  Send send_;
  std::string target_;
  IpfixOptions options_;
  size_t max_name_ = 255;         // longest string value, so that any record fits in the MTU
  std::vector<uint8_t> msg_;      // the pending message (header filled when sent)
  std::vector<uint8_t> scratch_;  // one record
  size_t set_offset_ = 0;         // the open data set's header in msg_ (0: none)
  uint8_t set_family_ = 0;
  size_t pending_ = 0;  // records in msg_
  uint32_t sequence_ = 0;
  bool templates_sent_ = false;
  std::chrono::system_clock::time_point templates_at_{};
  uint32_t messages_since_templates_ = 0;
  IpfixCounters counters_;
  std::string last_error_;
};

}  // namespace gl::glctld
