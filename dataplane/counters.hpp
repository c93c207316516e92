// counters.hpp — per-PMD counters and the datapath's drop reasons.
//
// Purpose: every packet the datapath drops is counted under one reason from `Drop`
// (names in kDropNames, shown by gl-dpctl show / stats). Counters are single-writer
// (one PMD thread, or the control thread for its own instance) and read by the control
// thread: a relaxed load + store, no locked instruction on the fast path.
// Thread-safety: one writer per Counter; any number of readers. Complexity: O(1).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace gl::dp {

class Counter {
 public:
  void add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }
  void reset() { v_.store(0, std::memory_order_relaxed); }
  // Single writer: keep the largest value seen (e.g. last-used timestamps).
  void store_max(uint64_t v) {
    if (v > v_.load(std::memory_order_relaxed)) v_.store(v, std::memory_order_relaxed);
  }
  // Single writer: OR bits in (e.g. TCP flags seen).
  void or_bits(uint64_t b) {
    uint64_t cur = v_.load(std::memory_order_relaxed);
    if ((cur | b) != cur) v_.store(cur | b, std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t> v_{0};
};

enum class Drop : uint8_t {
  kActionDrop,         // the flow's actions drop the packet (drop / empty action list)
  kNoPort,             // output to a port that does not exist (any more)
  kTxFull,             // the port's tx queue did not take the packet
  kUpcallQueueFull,    // miss while the upcall queue was full
  kUpcallRateLimit,    // miss over the upcall rate limit
  kUpcallUndelivered,  // upcall with no subscriber, or the subscriber's socket was full
  kRecircDepth,        // recirculated more than kMaxRecircDepth times
  kNoMbuf,             // no mbuf for a copy (clone, sample, multi-output, upcall)
  kPushVlanNoRoom,     // no headroom to push a VLAN tag
  kRecircOverflow,     // more recirculated copies of one batch than the queue holds
  kParse,              // the parser refused the packet (see the parse counters)
  // ESP (esp_encrypt / esp_decrypt). Fail closed: nothing is ever sent in clear.
  kEspNoSa,              // encrypt: no SA for this group and PMD (missing or removed)
  kEspSaExpired,         // encrypt: the SA's sequence numbers are used up (expired)
  kEspNoRoom,            // encrypt: no headroom/tailroom for ESP + underlay L2
  kEspMultiSeg,          // multi-segment mbuf (ESP needs one contiguous buffer)
  kEspBadOuter,          // decrypt: not IPv4/IPv6 behind Ethernet, bad outer IPv4 checksum
  kEspBadLength,         // crypto Result::bad_length
  kEspUnknownSpi,        // decrypt: no inbound SA with this SPI
  kEspWrongPmd,          // decrypt: the SPI's SA belongs to another PMD
  kEspTooOld,            // decrypt: left of the anti-replay window
  kEspReplay,            // decrypt: sequence number already seen
  kEspAuthFailed,        // decrypt: ICV mismatch
  kEspBadPadding,        // decrypt: padding bytes / length wrong
  kEspBadNextHeader,     // decrypt: next header does not match the inner packet
  kEspDummy,             // decrypt: TFC dummy packet (next header 59), not an error
  kEspUnsupported,       // outer fragment, IPv6 extension headers, wrong mode
  kEspCryptoError,       // the AEAD backend refused an operation
  kEspInnerNotEthernet,  // decrypt: authentic, but the inner packet is not an Ethernet frame
  kEspTooBig,            // encrypt: the ESP packet would exceed the SA's underlay MTU
  kEspPeerMismatch,      // decrypt on an ESP port: the SA is not one of the port's peer
  kCtFragExpired,        // ct(): an IP fragment whose datagram did not complete in time
  // The firewall stage at workload ports (fw_stage.cpp).
  kFwSpoof,         // from a VM with a source MAC or address not registered for its port
  kFwInvalid,       // the firewall's tracker said +inv (out of window, untracked ICMP error...)
  kFwDeny,          // the first packet of a connection the policy denies
  kFwReject,        // ... rejects (answered with a TCP RST / ICMP prohibited)
  kFwConnLimit,     // a new connection over the workload's limit (or a full table)
  kFwRevoked,       // a connection the current policy no longer allows (cut)
  kFwQuarantine,    // to or from a workload's port that the firewall in force has no policy
                    // for yet (glctld named it before it existed: deny until configured)
  kFwNotEncrypted,  // allow-encrypted traffic that arrived in clear (to the VM) or would
                    // leave by a port that is neither an ESP port nor a workload's
  kFwHostMismatch,  // to a VM by an ESP port, from a workload address of another host
  kCount
};

inline constexpr std::array<std::string_view, static_cast<size_t>(Drop::kCount)> kDropNames = {
    "action_drop",       "no_port",
    "tx_full",           "upcall_queue_full",
    "upcall_rate_limit", "upcall_undelivered",
    "recirc_depth",      "no_mbuf",
    "push_vlan_no_room", "recirc_overflow",
    "parse_error",       "esp_no_sa",
    "esp_sa_expired",    "esp_no_room",
    "esp_multi_seg",     "esp_bad_outer",
    "esp_bad_length",    "esp_unknown_spi",
    "esp_wrong_pmd",     "esp_too_old",
    "esp_replay",        "esp_auth_failed",
    "esp_bad_padding",   "esp_bad_next_header",
    "esp_dummy",         "esp_unsupported",
    "esp_crypto_error",  "esp_inner_not_ethernet",
    "esp_too_big",       "esp_peer_mismatch",
    "ct_frag_expired",   "fw_spoof",
    "fw_invalid",        "fw_deny",
    "fw_reject",         "fw_conn_limit",
    "fw_revoked",        "fw_quarantine",
    "fw_not_encrypted",  "fw_host_mismatch",
};

static_assert(!kDropNames.back().empty(), "a Drop value has no name");

constexpr std::string_view drop_name(Drop d) {
  return kDropNames[static_cast<size_t>(d)];
}

}  // namespace gl::dp
