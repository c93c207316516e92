// counters.hpp — per-PMD counters and the datapath's drop reasons.
//
// Purpose: every packet the datapath drops is counted under one reason from `Drop`
// (names in kDropTable, shown by gl-dpctl show / stats). Counters are single-writer
// (one PMD thread, or the control thread for its own instance) and read by the control
// thread: a relaxed load + store, no locked instruction on the fast path.
// Thread-safety: one writer per Counter; any number of readers. Complexity: O(1).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "flowtables/enum_names.hpp"

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
  kEspSaRetired,         // the SA ran out its lifetime (sa-del with a grace) and none
                         // replaced it: encrypt, its group and PMD; decrypt, its SPI
  kEspNoRoom,            // encrypt: no headroom/tailroom for ESP + underlay L2
  kEspMultiSeg,          // multi-segment mbuf (ESP needs one contiguous buffer)
  kEspBadOuter,          // decrypt: not IPv4/IPv6 behind Ethernet, bad outer IPv4 checksum
  kEspBadLength,         // crypto Result::bad_length
  kEspUnknownSpi,        // decrypt: no inbound SA with this SPI
  kEspWrongPmd,          // decrypt: the SPI's SA belongs to another context, which cannot take it
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
  kEspHandoffFull,       // decrypt: the owning context's handoff queue was full
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

// Every reason's name, beside its value (checked: a reorder does not compile).
inline constexpr flow::EnumName<Drop> kDropTable[] = {
    {Drop::kActionDrop, "action_drop"},
    {Drop::kNoPort, "no_port"},
    {Drop::kTxFull, "tx_full"},
    {Drop::kUpcallQueueFull, "upcall_queue_full"},
    {Drop::kUpcallRateLimit, "upcall_rate_limit"},
    {Drop::kUpcallUndelivered, "upcall_undelivered"},
    {Drop::kRecircDepth, "recirc_depth"},
    {Drop::kNoMbuf, "no_mbuf"},
    {Drop::kPushVlanNoRoom, "push_vlan_no_room"},
    {Drop::kRecircOverflow, "recirc_overflow"},
    {Drop::kParse, "parse_error"},
    {Drop::kEspNoSa, "esp_no_sa"},
    {Drop::kEspSaExpired, "esp_sa_expired"},
    {Drop::kEspSaRetired, "esp_sa_retired"},
    {Drop::kEspNoRoom, "esp_no_room"},
    {Drop::kEspMultiSeg, "esp_multi_seg"},
    {Drop::kEspBadOuter, "esp_bad_outer"},
    {Drop::kEspBadLength, "esp_bad_length"},
    {Drop::kEspUnknownSpi, "esp_unknown_spi"},
    {Drop::kEspWrongPmd, "esp_wrong_pmd"},
    {Drop::kEspTooOld, "esp_too_old"},
    {Drop::kEspReplay, "esp_replay"},
    {Drop::kEspAuthFailed, "esp_auth_failed"},
    {Drop::kEspBadPadding, "esp_bad_padding"},
    {Drop::kEspBadNextHeader, "esp_bad_next_header"},
    {Drop::kEspDummy, "esp_dummy"},
    {Drop::kEspUnsupported, "esp_unsupported"},
    {Drop::kEspCryptoError, "esp_crypto_error"},
    {Drop::kEspInnerNotEthernet, "esp_inner_not_ethernet"},
    {Drop::kEspTooBig, "esp_too_big"},
    {Drop::kEspPeerMismatch, "esp_peer_mismatch"},
    {Drop::kEspHandoffFull, "esp_handoff_full"},
    {Drop::kCtFragExpired, "ct_frag_expired"},
    {Drop::kFwSpoof, "fw_spoof"},
    {Drop::kFwInvalid, "fw_invalid"},
    {Drop::kFwDeny, "fw_deny"},
    {Drop::kFwReject, "fw_reject"},
    {Drop::kFwConnLimit, "fw_conn_limit"},
    {Drop::kFwRevoked, "fw_revoked"},
    {Drop::kFwQuarantine, "fw_quarantine"},
    {Drop::kFwNotEncrypted, "fw_not_encrypted"},
    {Drop::kFwHostMismatch, "fw_host_mismatch"},
};
inline constexpr auto kDropNames = flow::enum_names(kDropTable);
static_assert(kDropNames.size() == static_cast<size_t>(Drop::kCount), "a Drop value has no name");

constexpr std::string_view drop_name(Drop d) {
  return kDropNames[static_cast<size_t>(d)];
}

}  // namespace gl::dp
