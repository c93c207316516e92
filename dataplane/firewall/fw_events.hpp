// fw_events.hpp — what the firewall reports besides its counters: connection records
// (start, end) and refusals, carried from the PMDs to the control thread.
//
// Purpose: glctld's flow records and deny events (JSON lines, IPFIX) come from here. A PMD
// writes an event into its own ring (EventRing: single producer, single consumer, fixed
// size, no allocation); the control thread drains every ring into a bounded backlog that
// the datapath API hands out (kFwEvents). A full ring or backlog loses events, counted.
// Which events exist at all is the policy's choice (FwTables::record, an entry's `log`):
// with neither, the PMDs write none.
// Thread-safety: EventRing: one producer thread, one consumer thread. FwRateLimit: one
// thread (the producer's). Complexity: O(1) per event.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "flowtables/enum_names.hpp"

namespace gl::fw {

enum class EventKind : uint8_t { kStart = 0, kEnd = 1, kRefused = 2 };
// Why a connection ended (kEnd) or a packet was refused (kRefused).
enum class EventReason : uint8_t {
  kNone = 0,
  kExpired = 1,        // end: timed out
  kRemoved = 2,        // end: removed (flush, a new policy cut it, TCP reopened it)
  kDeny = 3,           // refused: the policy's deny (a rule or the default)
  kReject = 4,         // refused: reject (answered)
  kSpoof = 5,          // refused: a source the workload does not own
  kConnLimit = 6,      // refused: the workload's connection limit (or a full table)
  kInvalid = 7,        // refused: the tracker said invalid
  kRevoked = 8,        // refused: a connection the current policy denies (then cut)
  kNotEncrypted = 9,   // refused: allow-encrypted, but it arrived in clear
  kHostMismatch = 10,  // refused: by an ESP port, a workload address of another host
};
inline constexpr flow::EnumName<EventReason> kEventReasonTable[] = {
    {EventReason::kNone, "none"},
    {EventReason::kExpired, "expired"},
    {EventReason::kRemoved, "removed"},
    {EventReason::kDeny, "deny"},
    {EventReason::kReject, "reject"},
    {EventReason::kSpoof, "spoof"},
    {EventReason::kConnLimit, "conn_limit"},
    {EventReason::kInvalid, "invalid"},
    {EventReason::kRevoked, "revoked"},
    {EventReason::kNotEncrypted, "not_encrypted"},
    {EventReason::kHostMismatch, "host_mismatch"},
};
inline constexpr auto kEventReasonNames = flow::enum_names(kEventReasonTable);
static_assert(kEventReasonNames.size() == static_cast<size_t>(EventReason::kHostMismatch) + 1);
// An event's reason as its outputs show it: "" for none, "?" for a value no version defines.
inline std::string_view event_reason_name(uint8_t r) {
  if (r == 0) return "";
  return r < kEventReasonNames.size() ? kEventReasonNames[r] : "?";
}

// One event. Addresses network order (IPv4 in [0]); ports network order (ICMP: 0).
struct FwEvent {
  uint64_t time_ms;               // the tracker's clock: when it happened (start: = start_ms)
  uint64_t start_ms;              // the connection's start (kEnd, kStart); kRefused: = time_ms
  uint64_t packets[2], bytes[2];  // kEnd: originator->responder, responder->originator
  uint32_t src[4], dst[4];        // the originator's tuple (kRefused: the packet's)
  uint16_t sport, dport;
  uint8_t proto, family;  // family 4 or 6
  uint8_t icmp_type, icmp_code;
  uint32_t port_no;     // the workload port (the zone)
  uint32_t rule_id;     // the rule that decided (0: the port's default)
  uint32_t generation;  // low 32 bits of the version that decided
  uint32_t suppressed;  // kRefused: refusals the rate limit dropped before this one
  EventKind kind;
  uint8_t action;  // Action
  uint8_t to_vm;   // 1: opened towards the VM (refused: sent to the VM)
  EventReason reason;
  uint8_t pad[4];
};
static_assert(sizeof(FwEvent) == 112);

class EventRing {
 public:
  explicit EventRing(uint32_t size_pow2 = 4096)
      : mask_(size_pow2 - 1), ev_(new FwEvent[size_pow2]) {}
  // Producer: false (and counted) when full.
  bool push(const FwEvent& e) {
    const uint64_t h = head_.load(std::memory_order_relaxed);
    if (h - tail_.load(std::memory_order_acquire) > mask_) {
      lost_.store(lost_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      return false;
    }
    ev_[h & mask_] = e;
    head_.store(h + 1, std::memory_order_release);
    return true;
  }
  // Consumer: calls fn(event) for everything pushed so far; returns how many.
  template <typename Fn>
  size_t drain(Fn&& fn) {
    const uint64_t t = tail_.load(std::memory_order_relaxed);
    const uint64_t h = head_.load(std::memory_order_acquire);
    for (uint64_t i = t; i != h; ++i) fn(ev_[i & mask_]);
    tail_.store(h, std::memory_order_release);
    return static_cast<size_t>(h - t);
  }
  uint64_t lost() const { return lost_.load(std::memory_order_relaxed); }

 private:
  alignas(64) std::atomic<uint64_t> head_{0};
  std::atomic<uint64_t> lost_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
  uint64_t mask_;
  std::unique_ptr<FwEvent[]> ev_;
};

// A token bucket for refusal events on one PMD: `rate` per second, bursts of `burst`;
// what it drops is counted and handed on with the next event allowed.
class FwRateLimit {
 public:
  FwRateLimit(uint32_t rate = 1000, uint32_t burst = 2000) : rate_(rate), burst_(burst) {}
  // True when an event at now_ms may go; then `suppressed` is what was dropped since the
  // last one that went.
  bool allow(uint64_t now_ms, uint32_t& suppressed) {
    if (now_ms > last_ms_) {
      tokens_ = std::min<uint64_t>(burst_, tokens_ + (now_ms - last_ms_) * rate_ / 1000);
      last_ms_ = now_ms;
    }
    if (tokens_ == 0) {
      ++dropped_;
      return false;
    }
    --tokens_;
    suppressed = dropped_;
    dropped_ = 0;
    return true;
  }

 private:
  uint32_t rate_, burst_;
  uint64_t tokens_ = 2000, last_ms_ = 0;
  uint32_t dropped_ = 0;
};

}  // namespace gl::fw
