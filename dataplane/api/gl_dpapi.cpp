// gl_dpapi.cpp — the C ABI (gl_dpapi.h) over gl::api::Client.
//
// Every exported function checks its pointers, converts C structs to wire structs by
// memcpy (the layouts are identical: see the static_asserts), calls the client, records
// the error message in the handle and returns 0 or a positive errno. No exception
// crosses the C boundary.
#include "dataplane/api/gl_dpapi.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane/api/client.hpp"
#include "dataplane/api/message.hpp"
#include "dataplane/api/odp_text.hpp"

namespace api = gl::api;
namespace flow = gl::flow;

// ---- layout checks: every C mirror is byte-identical to its C++ struct -----------------

#define GL_SAME_LAYOUT(C, CPP) \
  static_assert(sizeof(C) == sizeof(CPP) && alignof(C) == alignof(CPP), #C " size/alignment")
#define GL_SAME_FIELD(C, CPP, f)                                                      \
  static_assert(offsetof(C, f) == offsetof(CPP, f) && sizeof(C::f) == sizeof(CPP::f), \
                #C "." #f " differs from " #CPP)

GL_SAME_LAYOUT(gl_flow_key, flow::FlowKey);
static_assert(sizeof(gl_flow_key) == 184);
static_assert(GL_DP_MAX_PORT_MTU == api::kMaxPortMtu);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, in_port);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, recirc_id);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, dp_hash);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, pkt_mark);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ct_mark);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ct_zone);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ct_state);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, pad0);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, priority);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, pad1);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ct_label);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, eth_dst);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, eth_type);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, eth_src);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, vlan_tci);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ipv4_src);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ipv4_dst);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ipv6_src);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ipv6_dst);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ipv6_label);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, nw_proto);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, nw_tos);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, nw_ttl);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, nw_frag);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, tp_src);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, tp_dst);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, tcp_flags);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, pad2);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, arp_sha);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, arp_op);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, arp_tha);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, pad3);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ct_nw_src);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ct_nw_dst);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ct_ipv6_src);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ct_ipv6_dst);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ct_tp_src);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ct_tp_dst);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, ct_nw_proto);
GL_SAME_FIELD(gl_flow_key, flow::FlowKey, pad4);

GL_SAME_LAYOUT(gl_ufid, api::Ufid);
GL_SAME_FIELD(gl_ufid, api::Ufid, lo);
GL_SAME_FIELD(gl_ufid, api::Ufid, hi);

GL_SAME_LAYOUT(gl_flow_stats, api::FlowStats);
GL_SAME_FIELD(gl_flow_stats, api::FlowStats, packets);
GL_SAME_FIELD(gl_flow_stats, api::FlowStats, bytes);
GL_SAME_FIELD(gl_flow_stats, api::FlowStats, used_ms);
GL_SAME_FIELD(gl_flow_stats, api::FlowStats, tcp_flags);

GL_SAME_LAYOUT(gl_dp_info, api::InfoReply);
GL_SAME_FIELD(gl_dp_info, api::InfoReply, version);
GL_SAME_FIELD(gl_dp_info, api::InfoReply, api_version);
GL_SAME_FIELD(gl_dp_info, api::InfoReply, n_pmds);
GL_SAME_FIELD(gl_dp_info, api::InfoReply, n_ports);
GL_SAME_FIELD(gl_dp_info, api::InfoReply, max_ports);
GL_SAME_FIELD(gl_dp_info, api::InfoReply, n_flows);
GL_SAME_FIELD(gl_dp_info, api::InfoReply, features);
GL_SAME_FIELD(gl_dp_info, api::InfoReply, pmd_cores);
GL_SAME_FIELD(gl_dp_info, api::InfoReply, boot_id);

GL_SAME_LAYOUT(gl_port_stats, api::PortStats);
GL_SAME_FIELD(gl_port_stats, api::PortStats, rx_packets);
GL_SAME_FIELD(gl_port_stats, api::PortStats, rx_bytes);
GL_SAME_FIELD(gl_port_stats, api::PortStats, tx_packets);
GL_SAME_FIELD(gl_port_stats, api::PortStats, tx_bytes);
GL_SAME_FIELD(gl_port_stats, api::PortStats, rx_dropped);
GL_SAME_FIELD(gl_port_stats, api::PortStats, tx_dropped);
GL_SAME_FIELD(gl_port_stats, api::PortStats, rx_errors);
GL_SAME_FIELD(gl_port_stats, api::PortStats, tx_errors);

GL_SAME_LAYOUT(gl_port_info, api::PortInfo);
GL_SAME_FIELD(gl_port_info, api::PortInfo, port_no);
GL_SAME_FIELD(gl_port_info, api::PortInfo, dpdk_port_id);
GL_SAME_FIELD(gl_port_info, api::PortInfo, mtu);
GL_SAME_FIELD(gl_port_info, api::PortInfo, name);
GL_SAME_FIELD(gl_port_info, api::PortInfo, devargs);
GL_SAME_FIELD(gl_port_info, api::PortInfo, driver);
GL_SAME_FIELD(gl_port_info, api::PortInfo, mac);
GL_SAME_FIELD(gl_port_info, api::PortInfo, link_up);
GL_SAME_FIELD(gl_port_info, api::PortInfo, offloads);
static_assert(GL_PORT_RX_CHECKSUM == api::kPortRxChecksum);
GL_SAME_FIELD(gl_port_info, api::PortInfo, link_speed_mbps);
GL_SAME_FIELD(gl_port_info, api::PortInfo, n_rxq);
GL_SAME_FIELD(gl_port_info, api::PortInfo, n_txq);
GL_SAME_FIELD(gl_port_info, api::PortInfo, stats);

GL_SAME_LAYOUT(gl_pmd_stats, api::PmdStats);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, core);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, n_rxq);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, packets);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, batches);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, busy_cycles);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, idle_cycles);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, emc_hits);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, megaflow_hits);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, misses);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, esp_fragmented);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, esp_handoffs);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, upcalls);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, upcalls_lost);
GL_SAME_FIELD(gl_pmd_stats, api::PmdStats, recirculations);

GL_SAME_LAYOUT(gl_drop_counter, api::DropCounter);
GL_SAME_FIELD(gl_drop_counter, api::DropCounter, name);
GL_SAME_FIELD(gl_drop_counter, api::DropCounter, count);

// gl_dp_stats starts with the wire StatsReply, then adds the two array pointers.
GL_SAME_FIELD(gl_dp_stats, api::StatsReply, n_flows);
GL_SAME_FIELD(gl_dp_stats, api::StatsReply, upcalls_delivered);
GL_SAME_FIELD(gl_dp_stats, api::StatsReply, upcalls_lost);
GL_SAME_FIELD(gl_dp_stats, api::StatsReply, n_pmds);
GL_SAME_FIELD(gl_dp_stats, api::StatsReply, n_drops);
GL_SAME_FIELD(gl_dp_stats, api::StatsReply, tsc_hz);
GL_SAME_FIELD(gl_dp_stats, api::StatsReply, misses_held);
GL_SAME_FIELD(gl_dp_stats, api::StatsReply, misses_held_run);
GL_SAME_FIELD(gl_dp_stats, api::StatsReply, misses_held_sent_up);
GL_SAME_FIELD(gl_dp_stats, api::StatsReply, misses_hold_full);
static_assert(offsetof(gl_dp_stats, pmds) == sizeof(api::StatsReply));
static_assert(sizeof(gl_dp_stats) % alignof(gl_pmd_stats) == 0 &&
              sizeof(gl_pmd_stats) % alignof(gl_drop_counter) == 0);

GL_SAME_LAYOUT(gl_flow_result, api::EntryResult);
GL_SAME_FIELD(gl_flow_result, api::EntryResult, error);
GL_SAME_FIELD(gl_flow_result, api::EntryResult, stats);
GL_SAME_FIELD(gl_flow_result, api::EntryResult, message);

static_assert(GL_DP_NAME_LEN == api::kNameLen && GL_DP_DEVARGS_LEN == api::kDevargsLen &&
              GL_DP_ERROR_LEN == api::kErrorLen);
static_assert(GL_DP_MAX_ACTIONS == api::kMaxActions && GL_DP_MAX_PACKET == api::kMaxPacket &&
              GL_DP_MAX_USERDATA == api::kMaxUserdata && GL_PORT_ANY == api::kPortAny);
static_assert(GL_DP_FEATURE_RECIRC == api::kFeatureRecirc &&
              GL_DP_FEATURE_CLONE == api::kFeatureClone &&
              GL_DP_FEATURE_SAMPLE == api::kFeatureSample &&
              GL_DP_FEATURE_HASH == api::kFeatureHash &&
              GL_DP_FEATURE_SET_MASKED == api::kFeatureSetMasked &&
              GL_DP_FEATURE_UFID == api::kFeatureUfid);
static_assert(GL_FLOW_PUT_CREATE == api::kPutCreate && GL_FLOW_PUT_MODIFY == api::kPutModify &&
              GL_FLOW_PUT_ZERO_STATS == api::kPutZeroStats);
static_assert(GL_FLOW_DUMP_NO_ACTIONS == api::kDumpNoActions);
static_assert(GL_UPCALL_MISS == static_cast<int>(api::UpcallKind::kMiss) &&
              GL_UPCALL_ACTION == static_cast<int>(api::UpcallKind::kAction));
static_assert(GL_VLAN_CFI == flow::kVlanCfi && GL_FRAG_ANY == flow::kFragAny &&
              GL_FRAG_LATER == flow::kFragLater);
static_assert(GL_CS_NEW == flow::kCsNew && GL_CS_ESTABLISHED == flow::kCsEstablished &&
              GL_CS_RELATED == flow::kCsRelated && GL_CS_REPLY_DIR == flow::kCsReplyDir &&
              GL_CS_INVALID == flow::kCsInvalid && GL_CS_TRACKED == flow::kCsTracked);

GL_SAME_LAYOUT(gl_ct_tuple, api::CtTuple);
GL_SAME_FIELD(gl_ct_tuple, api::CtTuple, src);
GL_SAME_FIELD(gl_ct_tuple, api::CtTuple, dst);
GL_SAME_FIELD(gl_ct_tuple, api::CtTuple, sport);
GL_SAME_FIELD(gl_ct_tuple, api::CtTuple, dport);
GL_SAME_FIELD(gl_ct_tuple, api::CtTuple, icmp_id);
GL_SAME_FIELD(gl_ct_tuple, api::CtTuple, icmp_type);
GL_SAME_FIELD(gl_ct_tuple, api::CtTuple, icmp_code);
GL_SAME_FIELD(gl_ct_tuple, api::CtTuple, family);
GL_SAME_FIELD(gl_ct_tuple, api::CtTuple, proto);
GL_SAME_FIELD(gl_ct_tuple, api::CtTuple, pad);

GL_SAME_LAYOUT(gl_ct_entry, api::CtEntry);
GL_SAME_FIELD(gl_ct_entry, api::CtEntry, orig);
GL_SAME_FIELD(gl_ct_entry, api::CtEntry, reply);
GL_SAME_FIELD(gl_ct_entry, api::CtEntry, packets);
GL_SAME_FIELD(gl_ct_entry, api::CtEntry, bytes);
GL_SAME_FIELD(gl_ct_entry, api::CtEntry, label);
GL_SAME_FIELD(gl_ct_entry, api::CtEntry, mark);
GL_SAME_FIELD(gl_ct_entry, api::CtEntry, timeout_s);
GL_SAME_FIELD(gl_ct_entry, api::CtEntry, zone);
GL_SAME_FIELD(gl_ct_entry, api::CtEntry, tcp_state_orig);
GL_SAME_FIELD(gl_ct_entry, api::CtEntry, tcp_state_reply);
GL_SAME_FIELD(gl_ct_entry, api::CtEntry, flags);

GL_SAME_LAYOUT(gl_ct_config, api::CtConfigReply);
GL_SAME_FIELD(gl_ct_config, api::CtConfigReply, n_conns);
GL_SAME_FIELD(gl_ct_config, api::CtConfigReply, max_conns);
GL_SAME_FIELD(gl_ct_config, api::CtConfigReply, capacity);
GL_SAME_FIELD(gl_ct_config, api::CtConfigReply, default_zone_limit);
GL_SAME_FIELD(gl_ct_config, api::CtConfigReply, tcp_seq_check);

GL_SAME_LAYOUT(gl_ct_zone_limit, api::CtZoneLimit);
GL_SAME_FIELD(gl_ct_zone_limit, api::CtZoneLimit, zone);
GL_SAME_FIELD(gl_ct_zone_limit, api::CtZoneLimit, limit);
GL_SAME_FIELD(gl_ct_zone_limit, api::CtZoneLimit, count);
GL_SAME_FIELD(gl_ct_zone_limit, api::CtZoneLimit, pad);

GL_SAME_LAYOUT(gl_ct_counter, api::CtCounter);
GL_SAME_FIELD(gl_ct_counter, api::CtCounter, name);
GL_SAME_FIELD(gl_ct_counter, api::CtCounter, count);

GL_SAME_LAYOUT(gl_ct_proto_count, api::CtProtoCount);
GL_SAME_FIELD(gl_ct_proto_count, api::CtProtoCount, proto);
GL_SAME_FIELD(gl_ct_proto_count, api::CtProtoCount, count);

// gl_ct_stats starts with the wire CtStatsReply, then adds the two array pointers.
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, packets);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, found);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, created);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, expired);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, limit_global);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, limit_zone);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, table_full);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, nat_exhausted);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, n_conns);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, max_conns);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, capacity);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, pending_free);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, n_invalid);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, n_protos);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, index_bytes);
GL_SAME_FIELD(gl_ct_stats, api::CtStatsReply, index_grows);
static_assert(offsetof(gl_ct_stats, invalid) == sizeof(api::CtStatsReply));
static_assert(sizeof(gl_ct_stats) % alignof(gl_ct_counter) == 0 &&
              sizeof(gl_ct_counter) % alignof(gl_ct_proto_count) == 0);

static_assert(GL_CT_MAX_ZONE == api::kCtMaxZone);
static_assert(GL_DP_FEATURE_ESP == api::kFeatureEsp &&
              GL_DP_FEATURE_CONNTRACK == api::kFeatureConntrack);
static_assert(GL_CT_ENTRY_SNAT == api::kCtEntrySnat && GL_CT_ENTRY_DNAT == api::kCtEntryDnat &&
              GL_CT_ENTRY_HELPER_FTP == api::kCtEntryHelperFtp &&
              GL_CT_ENTRY_HELPER_TFTP == api::kCtEntryHelperTftp &&
              GL_CT_ENTRY_RELATED == api::kCtEntryRelated &&
              GL_CT_ENTRY_REPLY_SEEN == api::kCtEntryReplySeen);

GL_SAME_LAYOUT(gl_ct_timeout_policy, api::CtTimeoutPolicy);
GL_SAME_FIELD(gl_ct_timeout_policy, api::CtTimeoutPolicy, id);
GL_SAME_FIELD(gl_ct_timeout_policy, api::CtTimeoutPolicy, present);
GL_SAME_FIELD(gl_ct_timeout_policy, api::CtTimeoutPolicy, sec);
static_assert(GL_CT_TP_COUNT == api::kCtTpCount && GL_CT_TP_SLOTS == api::kCtTpSlots &&
              GL_CT_TP_ALL == api::kCtTpAllClasses &&
              GL_CT_MAX_TIMEOUT_POLICIES == api::kCtMaxTimeoutPolicies &&
              GL_CT_TP_MAX_SEC == api::kCtTpMaxSec);
static_assert(api::kCtTpNames[GL_CT_TP_TCP_SYN_SENT] == "tcp_syn_sent" &&
              api::kCtTpNames[GL_CT_TP_TCP_SYN_RECV] == "tcp_syn_recv" &&
              api::kCtTpNames[GL_CT_TP_TCP_ESTABLISHED] == "tcp_established" &&
              api::kCtTpNames[GL_CT_TP_TCP_FIN_WAIT] == "tcp_fin_wait" &&
              api::kCtTpNames[GL_CT_TP_TCP_TIME_WAIT] == "tcp_time_wait" &&
              api::kCtTpNames[GL_CT_TP_TCP_CLOSE] == "tcp_close" &&
              api::kCtTpNames[GL_CT_TP_UDP_FIRST] == "udp_first" &&
              api::kCtTpNames[GL_CT_TP_UDP_SINGLE] == "udp_single" &&
              api::kCtTpNames[GL_CT_TP_UDP_MULTIPLE] == "udp_multiple" &&
              api::kCtTpNames[GL_CT_TP_ICMP_FIRST] == "icmp_first" &&
              api::kCtTpNames[GL_CT_TP_ICMP_REPLY] == "icmp_reply");

GL_SAME_LAYOUT(gl_ipf_family_status, api::IpfFamilyStatusWire);
GL_SAME_FIELD(gl_ipf_family_status, api::IpfFamilyStatusWire, enabled);
GL_SAME_FIELD(gl_ipf_family_status, api::IpfFamilyStatusWire, pad);
GL_SAME_FIELD(gl_ipf_family_status, api::IpfFamilyStatusWire, min_frag_size);
GL_SAME_FIELD(gl_ipf_family_status, api::IpfFamilyStatusWire, accepted);
GL_SAME_FIELD(gl_ipf_family_status, api::IpfFamilyStatusWire, completed_sent);
GL_SAME_FIELD(gl_ipf_family_status, api::IpfFamilyStatusWire, expired_sent);
GL_SAME_FIELD(gl_ipf_family_status, api::IpfFamilyStatusWire, too_small);
GL_SAME_FIELD(gl_ipf_family_status, api::IpfFamilyStatusWire, overlap);
GL_SAME_FIELD(gl_ipf_family_status, api::IpfFamilyStatusWire, purged);

GL_SAME_LAYOUT(gl_ipf_counter, api::IpfCounter);
GL_SAME_FIELD(gl_ipf_counter, api::IpfCounter, name);
GL_SAME_FIELD(gl_ipf_counter, api::IpfCounter, v4);
GL_SAME_FIELD(gl_ipf_counter, api::IpfCounter, v6);

// gl_ipf_status starts with the wire IpfStatusReply, then adds the two array pointers.
GL_SAME_FIELD(gl_ipf_status, api::IpfStatusReply, v4);
GL_SAME_FIELD(gl_ipf_status, api::IpfStatusReply, v6);
GL_SAME_FIELD(gl_ipf_status, api::IpfStatusReply, nfrag);
GL_SAME_FIELD(gl_ipf_status, api::IpfStatusReply, nfrag_max);
GL_SAME_FIELD(gl_ipf_status, api::IpfStatusReply, nlists);
GL_SAME_FIELD(gl_ipf_status, api::IpfStatusReply, timeout_ms);
GL_SAME_FIELD(gl_ipf_status, api::IpfStatusReply, n_invalid);
GL_SAME_FIELD(gl_ipf_status, api::IpfStatusReply, n_passed);
static_assert(offsetof(gl_ipf_status, invalid) == sizeof(api::IpfStatusReply));
static_assert(sizeof(gl_ipf_status) % alignof(gl_ipf_counter) == 0);
static_assert(GL_IPF_MIN_FRAG_LOWER_BOUND == api::kIpfMinFragLowerBound &&
              GL_IPF_MAX_NFRAGS_UPPER_BOUND == api::kIpfMaxNfragsUpperBound);

#undef GL_SAME_FIELD
#undef GL_SAME_LAYOUT

// ---- handle and dump state ----------------------------------------------------------------

struct gl_dp {
  explicit gl_dp(api::Client c) : client(std::move(c)) {}
  api::Client client;
  std::string last_error;
  api::Upcall upcall;  // the one gl_dp_recv_upcall handed out last (owns its bytes)
};

struct gl_flow_dump {
  gl_dp* dp = nullptr;
  uint32_t flags = 0;
  uint64_t cursor = 0;
  bool last_page = false;  // the page in hand is the final one
  int error = 0;           // what ended the dump early
  std::vector<uint8_t> page;
  std::optional<api::MessageReader> reader;  // over `page`
  uint32_t left = 0;                         // entries still unread in `page`
};

struct gl_ipf_dump {
  std::vector<std::string> lines;  // fetched by start
  size_t next = 0;
};

struct gl_ct_dump {
  gl_dp* dp = nullptr;
  api::CtDumpRequest req{};  // the next page's request (cursor advances)
  bool last_page = false;
  int error = 0;
  std::vector<uint8_t> page;
  std::optional<api::MessageReader> reader;
  uint32_t left = 0;
};

namespace {

thread_local std::string t_open_error;

// Records `msg` as the handle's last error and returns `code`. Never throws.
int fail(gl_dp* dp, int code, std::string_view msg) noexcept {
  try {
    dp->last_error.assign(msg);
  } catch (...) {
    dp->last_error.clear();
  }
  return code;
}

int fail(gl_dp* dp, const api::Error& e) noexcept {
  return fail(dp, e.code > 0 ? e.code : EIO, e.message);
}

// Runs `fn` (returning 0 or errno) and turns any exception into ENOMEM / EIO.
template <typename Fn>
int guarded(gl_dp* dp, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return fail(dp, ENOMEM, "out of memory");
  } catch (const std::exception& e) {
    return fail(dp, EIO, e.what());
  } catch (...) {
    return fail(dp, EIO, "unexpected internal error");
  }
}

// The same for the handle-less helpers.
template <typename Fn>
int guarded_helper(Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  } catch (...) {
    return EIO;
  }
}

flow::FlowKey to_key(const gl_flow_key& k) {
  flow::FlowKey out;
  std::memcpy(&out, &k, sizeof out);
  return out;
}

void from_key(const flow::FlowKey& k, gl_flow_key* out) {
  std::memcpy(out, &k, sizeof *out);
}

// Copies `s` NUL-terminated into buf[len]; ENOBUFS when truncated.
int copy_text(std::string_view s, char* buf, size_t len) {
  if (buf == nullptr || len == 0) return EINVAL;
  const size_t n = std::min(s.size(), len - 1);
  std::memcpy(buf, s.data(), n);
  buf[n] = '\0';
  return n == s.size() ? 0 : ENOBUFS;
}

// Writes an optional error text for the parse helpers.
void put_err(std::string_view s, char* err, size_t err_len) {
  if (err != nullptr && err_len > 0) (void)copy_text(s, err, err_len);
}

api::Result<void> check_reply(api::MessageReader& r, api::MsgType expect) {
  if (r.check_header() != api::HeaderError::kOk)
    return std::unexpected(api::Error{EPROTO, "protocol error: bad reply header"});
  if (r.type() != expect || (r.header().flags & api::kFlagReply) == 0)
    return std::unexpected(api::Error{EPROTO, "protocol error: unexpected reply type"});
  if (r.header().error != 0) {
    std::string text = r.error_text();
    if (text.empty()) text = std::strerror(r.header().error);
    return std::unexpected(api::Error{r.header().error, text});
  }
  return {};
}

void set_all(gl_flow_result* results, size_t from, size_t to, int code, std::string_view msg) {
  for (size_t i = from; i < to; ++i) {
    std::memset(&results[i], 0, sizeof results[i]);
    results[i].error = code;
    (void)copy_text(msg, results[i].message, sizeof results[i].message);
  }
}

// A batched call: encode(i) turns entry i into a wire item or an error that goes into
// results[i] (the entry is not sent); call(items) sends the rest and returns their
// results in order, which are spread back to the entries they came from. A transport
// failure marks every sent entry with it (their fate is unknown).
template <typename Item, typename Encode, typename Call>
int batch_call(gl_dp* dp, size_t n, gl_flow_result* results, Encode encode, Call call) {
  std::vector<Item> batch;
  std::vector<size_t> where;
  batch.reserve(n);
  where.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::expected<Item, api::Error> item = encode(i);
    if (!item) {
      set_all(results, i, i + 1, item.error().code, item.error().message);
      continue;
    }
    batch.push_back(std::move(*item));
    where.push_back(i);
  }
  if (batch.empty()) return 0;
  auto r = call(std::span<const Item>(batch));
  if (!r || r->size() != batch.size()) {
    api::Error e = r ? api::Error{EPROTO, "protocol error: short batch reply"} : r.error();
    for (size_t k : where) set_all(results, k, k + 1, e.code > 0 ? e.code : EIO, e.message);
    return fail(dp, e);
  }
  for (size_t k = 0; k < batch.size(); ++k)
    std::memcpy(&results[where[k]], &(*r)[k], sizeof(gl_flow_result));
  return 0;
}

}  // namespace

// ---- handle -------------------------------------------------------------------------------

extern "C" {

int gl_dp_open(const char* socket_path, gl_dp** out) {
  try {
    if (out != nullptr) *out = nullptr;
    if (socket_path == nullptr || out == nullptr) {
      t_open_error = "gl_dp_open: NULL argument";
      return EINVAL;
    }
    auto c = api::Client::connect(socket_path);
    if (!c) {
      t_open_error = c.error().message;
      return c.error().code > 0 ? c.error().code : EIO;
    }
    *out = new gl_dp(std::move(*c));
    t_open_error.clear();
    return 0;
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  } catch (...) {
    return EIO;
  }
}

void gl_dp_close(gl_dp* dp) {
  delete dp;
}

int gl_dp_fd(const gl_dp* dp) {
  return dp == nullptr ? -1 : dp->client.fd();
}

const char* gl_dp_last_error(const gl_dp* dp) {
  return dp == nullptr ? t_open_error.c_str() : dp->last_error.c_str();
}

void gl_dp_free(void* p) {
  std::free(p);
}

// ---- datapath -----------------------------------------------------------------------------

int gl_dp_get_info(gl_dp* dp, gl_dp_info* out) {
  if (dp == nullptr) return EINVAL;
  if (out == nullptr) return fail(dp, EINVAL, "gl_dp_get_info: NULL out");
  return guarded(dp, [&] {
    auto r = dp->client.info();
    if (!r) return fail(dp, r.error());
    std::memcpy(out, &*r, sizeof *out);
    return 0;
  });
}

int gl_dp_set_config(gl_dp* dp, const char* key, const char* value) {
  if (dp == nullptr) return EINVAL;
  if (key == nullptr || value == nullptr)
    return fail(dp, EINVAL, "gl_dp_set_config: NULL key or value");
  return guarded(dp, [&] {
    auto r = dp->client.set_config(key, value);
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_get_stats(gl_dp* dp, gl_dp_stats** out) {
  if (dp == nullptr) return EINVAL;
  if (out == nullptr) return fail(dp, EINVAL, "gl_dp_get_stats: NULL out");
  *out = nullptr;
  return guarded(dp, [&] {
    auto r = dp->client.stats();
    if (!r) return fail(dp, r.error());
    const size_t np = r->pmds.size(), nd = r->drops.size();
    const size_t bytes =
        sizeof(gl_dp_stats) + np * sizeof(gl_pmd_stats) + nd * sizeof(gl_drop_counter);
    auto* s = static_cast<gl_dp_stats*>(std::calloc(1, bytes));
    if (s == nullptr) return fail(dp, ENOMEM, "out of memory");
    std::memcpy(s, &r->totals, sizeof r->totals);
    s->n_pmds = static_cast<uint32_t>(np);
    s->n_drops = static_cast<uint32_t>(nd);
    auto* base = reinterpret_cast<unsigned char*>(s) + sizeof(gl_dp_stats);
    s->pmds = reinterpret_cast<gl_pmd_stats*>(base);
    s->drops = reinterpret_cast<gl_drop_counter*>(base + np * sizeof(gl_pmd_stats));
    if (np > 0) std::memcpy(s->pmds, r->pmds.data(), np * sizeof(gl_pmd_stats));
    if (nd > 0) std::memcpy(s->drops, r->drops.data(), nd * sizeof(gl_drop_counter));
    if (np == 0) s->pmds = nullptr;
    if (nd == 0) s->drops = nullptr;
    *out = s;
    return 0;
  });
}

int gl_dp_stats_clear(gl_dp* dp) {
  if (dp == nullptr) return EINVAL;
  return guarded(dp, [&] {
    auto r = dp->client.stats_clear();
    return r ? 0 : fail(dp, r.error());
  });
}

// ---- ports --------------------------------------------------------------------------------

int gl_dp_port_add(gl_dp* dp, const char* name, const char* devargs, uint32_t port_no,
                   uint16_t n_rxq, uint16_t mtu, gl_port_info* out) {
  if (dp == nullptr) return EINVAL;
  if (name == nullptr || devargs == nullptr)
    return fail(dp, EINVAL, "gl_dp_port_add: NULL name or devargs");
  return guarded(dp, [&] {
    auto r = dp->client.port_add(name, devargs, port_no, n_rxq, mtu);
    if (!r) return fail(dp, r.error());
    if (out != nullptr) std::memcpy(out, &*r, sizeof *out);
    return 0;
  });
}

int gl_dp_port_del(gl_dp* dp, uint32_t port_no) {
  if (dp == nullptr) return EINVAL;
  if (port_no == GL_PORT_ANY)
    return fail(dp, EINVAL, "gl_dp_port_del: GL_PORT_ANY is not a port (use _by_name)");
  return guarded(dp, [&] {
    auto r = dp->client.port_del(port_no);
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_port_del_by_name(gl_dp* dp, const char* name) {
  if (dp == nullptr) return EINVAL;
  if (name == nullptr) return fail(dp, EINVAL, "gl_dp_port_del_by_name: NULL name");
  return guarded(dp, [&] {
    auto r = dp->client.port_del(std::string(name));
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_port_get(gl_dp* dp, uint32_t port_no, gl_port_info* out) {
  if (dp == nullptr) return EINVAL;
  if (out == nullptr) return fail(dp, EINVAL, "gl_dp_port_get: NULL out");
  if (port_no == GL_PORT_ANY)
    return fail(dp, EINVAL, "gl_dp_port_get: GL_PORT_ANY is not a port (use _by_name)");
  return guarded(dp, [&] {
    auto r = dp->client.port_get(port_no);
    if (!r) return fail(dp, r.error());
    std::memcpy(out, &*r, sizeof *out);
    return 0;
  });
}

int gl_dp_port_get_by_name(gl_dp* dp, const char* name, gl_port_info* out) {
  if (dp == nullptr) return EINVAL;
  if (name == nullptr || out == nullptr)
    return fail(dp, EINVAL, "gl_dp_port_get_by_name: NULL name or out");
  return guarded(dp, [&] {
    auto r = dp->client.port_get(std::string(name));
    if (!r) return fail(dp, r.error());
    std::memcpy(out, &*r, sizeof *out);
    return 0;
  });
}

int gl_dp_port_set_mtu(gl_dp* dp, const char* name, uint16_t mtu, gl_port_info* out) {
  if (dp == nullptr) return EINVAL;
  if (name == nullptr) return fail(dp, EINVAL, "gl_dp_port_set_mtu: NULL name");
  return guarded(dp, [&] {
    auto r = dp->client.port_set_mtu(api::kPortAny, std::string(name), mtu);
    if (!r) return fail(dp, r.error());
    if (out != nullptr) std::memcpy(out, &*r, sizeof *out);
    return 0;
  });
}

int gl_dp_port_list(gl_dp* dp, gl_port_info** ports, size_t* n) {
  if (dp == nullptr) return EINVAL;
  if (ports == nullptr || n == nullptr) return fail(dp, EINVAL, "gl_dp_port_list: NULL out");
  *ports = nullptr;
  *n = 0;
  return guarded(dp, [&] {
    auto r = dp->client.port_list();
    if (!r) return fail(dp, r.error());
    if (r->empty()) return 0;
    auto* a = static_cast<gl_port_info*>(std::malloc(r->size() * sizeof(gl_port_info)));
    if (a == nullptr) return fail(dp, ENOMEM, "out of memory");
    std::memcpy(a, r->data(), r->size() * sizeof(gl_port_info));
    *ports = a;
    *n = r->size();
    return 0;
  });
}

// ---- flows --------------------------------------------------------------------------------

int gl_dp_flow_put(gl_dp* dp, const gl_flow_put* puts, size_t n, gl_flow_result* results) {
  if (dp == nullptr) return EINVAL;
  if (n == 0) return 0;
  if (puts == nullptr || results == nullptr)
    return fail(dp, EINVAL, "gl_dp_flow_put: NULL puts or results");
  return guarded(dp, [&] {
    // One client call: it splits the batch into messages and keeps several in flight.
    return batch_call<api::FlowPut>(
        dp, n, results,
        [&](size_t i) -> std::expected<api::FlowPut, api::Error> {
          const gl_flow_put& p = puts[i];
          if (p.actions == nullptr && p.actions_len > 0)
            return std::unexpected(api::Error{EINVAL, "actions NULL with a non-zero length"});
          if (p.actions_len > GL_DP_MAX_ACTIONS)
            return std::unexpected(api::Error{EINVAL, "actions longer than 4096 bytes"});
          api::FlowPut f;
          std::memcpy(&f.ufid, &p.ufid, sizeof f.ufid);
          f.flags = p.flags;
          f.match.key = to_key(p.key);
          f.match.mask = to_key(p.mask);
          const auto* a = static_cast<const uint8_t*>(p.actions);
          if (p.actions_len > 0) f.actions.assign(a, a + p.actions_len);
          return f;
        },
        [&](std::span<const api::FlowPut> b) { return dp->client.flow_put(b); });
  });
}

int gl_dp_flow_del(gl_dp* dp, const gl_ufid* ufids, size_t n, gl_flow_result* results) {
  if (dp == nullptr) return EINVAL;
  if (n == 0) return 0;
  if (ufids == nullptr || results == nullptr)
    return fail(dp, EINVAL, "gl_dp_flow_del: NULL ufids or results");
  return guarded(dp, [&] {
    std::vector<api::Ufid> all(n);  // a copy: the types are layout-equal, not the same
    std::memcpy(all.data(), ufids, n * sizeof(api::Ufid));
    auto r = dp->client.flow_del(all);
    if (!r || r->size() != n) {
      api::Error e = r ? api::Error{EPROTO, "protocol error: short batch reply"} : r.error();
      set_all(results, 0, n, e.code > 0 ? e.code : EIO, e.message);
      return fail(dp, e);
    }
    std::memcpy(results, r->data(), n * sizeof(gl_flow_result));
    return 0;
  });
}

int gl_dp_flow_get(gl_dp* dp, const gl_ufid* ufid, gl_flow* out, void* actions_buf,
                   size_t actions_cap) {
  if (dp == nullptr) return EINVAL;
  if (ufid == nullptr || out == nullptr)
    return fail(dp, EINVAL, "gl_dp_flow_get: NULL ufid or out");
  if (actions_buf == nullptr && actions_cap > 0)
    return fail(dp, EINVAL, "gl_dp_flow_get: NULL actions buffer with a capacity");
  return guarded(dp, [&] {
    api::Ufid u;
    std::memcpy(&u, ufid, sizeof u);
    auto r = dp->client.flow_get(u);
    if (!r) return fail(dp, r.error());
    std::memcpy(&out->ufid, &r->ufid, sizeof out->ufid);
    from_key(r->match.key, &out->key);
    from_key(r->match.mask, &out->mask);
    std::memcpy(&out->stats, &r->stats, sizeof out->stats);
    out->actions_len = r->actions.size();
    out->actions = static_cast<const uint8_t*>(actions_buf);
    if (r->actions.size() > actions_cap)
      return fail(dp, ENOBUFS,
                  "actions of " + std::to_string(r->actions.size()) +
                      " bytes do not fit the buffer of " + std::to_string(actions_cap));
    if (!r->actions.empty()) std::memcpy(actions_buf, r->actions.data(), r->actions.size());
    return 0;
  });
}

int gl_dp_flow_flush(gl_dp* dp) {
  if (dp == nullptr) return EINVAL;
  return guarded(dp, [&] {
    auto r = dp->client.flow_flush();
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_flow_dump_start(gl_dp* dp, uint32_t flags, gl_flow_dump** out) {
  if (dp == nullptr) return EINVAL;
  if (out == nullptr) return fail(dp, EINVAL, "gl_dp_flow_dump_start: NULL out");
  *out = nullptr;
  if ((flags & ~GL_FLOW_DUMP_NO_ACTIONS) != 0)
    return fail(dp, EINVAL, "gl_dp_flow_dump_start: unknown flags");
  return guarded(dp, [&] {
    auto* d = new gl_flow_dump();
    d->dp = dp;
    d->flags = flags;
    *out = d;
    return 0;
  });
}

namespace {

// Fetches the next page of the dump into d->page; 0 or errno.
int fetch_page(gl_flow_dump* d) {
  gl_dp* dp = d->dp;
  api::FlowDumpRequest req{};
  req.cursor = d->cursor;
  req.flags = d->flags;
  const uint32_t xid = dp->client.next_xid();
  api::MessageBuilder b(api::MsgType::kFlowDump, xid);
  b.append(req);
  d->reader.reset();
  auto rep = dp->client.transact(b.finish(), xid);
  if (!rep) return fail(dp, rep.error());
  d->page = std::move(*rep);
  d->reader.emplace(d->page);
  if (auto ok = check_reply(*d->reader, api::MsgType::kFlowDump); !ok) return fail(dp, ok.error());
  api::FlowDumpReply dr;
  if (!d->reader->read(dr)) return fail(dp, EPROTO, "protocol error: short dump reply");
  if (dr.n == 0 && dr.next_cursor != 0 && dr.next_cursor <= d->cursor)
    return fail(dp, EPROTO, "protocol error: dump made no progress");
  d->left = dr.n;
  d->cursor = dr.next_cursor;
  d->last_page = dr.next_cursor == 0;
  return 0;
}

}  // namespace

int gl_dp_flow_dump_next(gl_flow_dump* d, gl_flow* out) {
  if (d == nullptr) return EINVAL;
  if (out == nullptr) return fail(d->dp, EINVAL, "gl_dp_flow_dump_next: NULL out");
  if (d->error != 0) return d->error;
  int rc = guarded(d->dp, [&] {
    while (d->left == 0) {
      if (d->last_page) return ENOENT;
      if (int e = fetch_page(d); e != 0) return e;
    }
    api::FlowEntry e;
    std::span<const uint8_t> acts;
    if (!d->reader->read(e) || !d->reader->read_padded(e.actions_len, acts))
      return fail(d->dp, EPROTO, "protocol error: truncated dump");
    --d->left;
    std::memcpy(&out->ufid, &e.ufid, sizeof out->ufid);
    from_key(e.key, &out->key);
    from_key(e.mask, &out->mask);
    std::memcpy(&out->stats, &e.stats, sizeof out->stats);
    out->actions = acts.empty() ? nullptr : acts.data();
    out->actions_len = acts.size();
    return 0;
  });
  if (rc != 0 && rc != ENOENT) d->error = rc;
  return rc;
}

int gl_dp_flow_dump_done(gl_flow_dump* d) {
  if (d == nullptr) return 0;
  int rc = d->error;
  delete d;
  return rc;
}

// ---- execute and upcalls ------------------------------------------------------------------

int gl_dp_execute(gl_dp* dp, const gl_flow_key* md, const void* actions, size_t actions_len,
                  const void* packet, size_t packet_len) {
  if (dp == nullptr) return EINVAL;
  if (packet == nullptr || (actions == nullptr && actions_len > 0))
    return fail(dp, EINVAL, "gl_dp_execute: NULL packet or actions");
  if (actions_len > GL_DP_MAX_ACTIONS) return fail(dp, EINVAL, "actions longer than 4096 bytes");
  if (packet_len > GL_DP_MAX_PACKET)
    return fail(dp, EMSGSIZE, "packet longer than " + std::to_string(GL_DP_MAX_PACKET));
  return guarded(dp, [&] {
    flow::FlowKey k = md != nullptr ? to_key(*md) : flow::zero_key();
    auto r = dp->client.execute(
        k, std::span<const uint8_t>(static_cast<const uint8_t*>(actions), actions_len),
        std::span<const uint8_t>(static_cast<const uint8_t*>(packet), packet_len));
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_execute_batch(gl_dp* dp, const gl_execute* ops, size_t n, gl_flow_result* results) {
  if (dp == nullptr) return EINVAL;
  if (n == 0) return 0;
  if (ops == nullptr || results == nullptr)
    return fail(dp, EINVAL, "gl_dp_execute_batch: NULL ops or results");
  return guarded(dp, [&] {
    return batch_call<api::ExecuteOp>(
        dp, n, results,
        [&](size_t i) -> std::expected<api::ExecuteOp, api::Error> {
          const gl_execute& e = ops[i];
          if (e.packet == nullptr || (e.actions == nullptr && e.actions_len > 0))
            return std::unexpected(api::Error{EINVAL, "NULL packet or actions"});
          if (e.actions_len > GL_DP_MAX_ACTIONS)
            return std::unexpected(api::Error{EINVAL, "actions longer than 4096 bytes"});
          if (e.packet_len > GL_DP_MAX_PACKET)
            return std::unexpected(
                api::Error{EMSGSIZE, "packet longer than " + std::to_string(GL_DP_MAX_PACKET)});
          api::ExecuteOp op;
          op.metadata = to_key(e.md);
          op.actions = {static_cast<const uint8_t*>(e.actions), e.actions_len};
          op.packet = {static_cast<const uint8_t*>(e.packet), e.packet_len};
          return op;
        },
        [&](std::span<const api::ExecuteOp> b) { return dp->client.execute_batch(b); });
  });
}

size_t gl_dp_upcalls_queued(const gl_dp* dp) {
  return dp == nullptr ? 0 : dp->client.upcalls_queued();
}

int gl_dp_upcall_subscribe(gl_dp* dp, uint32_t pid, bool misses) {
  if (dp == nullptr) return EINVAL;
  return guarded(dp, [&] {
    auto r = dp->client.subscribe_upcalls(pid, misses);
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_recv_upcall(gl_dp* dp, int timeout_ms, gl_upcall* out) {
  if (dp == nullptr) return EINVAL;
  if (out == nullptr) return fail(dp, EINVAL, "gl_dp_recv_upcall: NULL out");
  return guarded(dp, [&] {
    constexpr int kForeverSlice = 3600 * 1000;
    for (;;) {
      const int wait = timeout_ms < 0 ? kForeverSlice : timeout_ms;
      auto r = dp->client.recv_upcall(std::chrono::milliseconds(wait));
      if (!r) return fail(dp, r.error());
      if (!r->has_value()) {
        if (timeout_ms < 0) continue;
        return EAGAIN;  // not a failure: last_error is left alone
      }
      dp->upcall = std::move(**r);
      const api::Upcall& u = dp->upcall;
      out->kind = static_cast<int>(u.kind);
      out->pid = u.pid;
      from_key(u.key, &out->key);
      out->userdata = u.userdata.empty() ? nullptr : u.userdata.data();
      out->userdata_len = u.userdata.size();
      out->packet = u.packet.empty() ? nullptr : u.packet.data();
      out->packet_len = u.packet.size();
      return 0;
    }
  });
}

// ---- connection tracking ------------------------------------------------------------------

int gl_dp_ct_dump_start(gl_dp* dp, const uint32_t* zone, gl_ct_dump** out) {
  if (dp == nullptr) return EINVAL;
  if (out == nullptr) return fail(dp, EINVAL, "gl_dp_ct_dump_start: NULL out");
  *out = nullptr;
  return guarded(dp, [&] {
    auto* d = new gl_ct_dump();
    d->dp = dp;
    if (zone != nullptr) {
      d->req.flags = api::kCtDumpZone;
      d->req.zone = *zone;
    }
    *out = d;
    return 0;
  });
}

namespace {

int fetch_ct_page(gl_ct_dump* d) {
  gl_dp* dp = d->dp;
  const uint32_t xid = dp->client.next_xid();
  api::MessageBuilder b(api::MsgType::kCtDump, xid);
  b.append(d->req);
  d->reader.reset();
  auto rep = dp->client.transact(b.finish(), xid);
  if (!rep) return fail(dp, rep.error());
  d->page = std::move(*rep);
  d->reader.emplace(d->page);
  if (auto ok = check_reply(*d->reader, api::MsgType::kCtDump); !ok) return fail(dp, ok.error());
  api::CtDumpReply dr;
  if (!d->reader->read(dr)) return fail(dp, EPROTO, "protocol error: short ct dump reply");
  if (dr.n == 0 && dr.next_cursor != 0 && dr.next_cursor <= d->req.cursor)
    return fail(dp, EPROTO, "protocol error: ct dump made no progress");
  d->left = dr.n;
  d->req.cursor = dr.next_cursor;
  d->last_page = dr.next_cursor == 0;
  return 0;
}

}  // namespace

int gl_dp_ct_dump_next(gl_ct_dump* d, gl_ct_entry* out) {
  if (d == nullptr) return EINVAL;
  if (out == nullptr) return fail(d->dp, EINVAL, "gl_dp_ct_dump_next: NULL out");
  if (d->error != 0) return d->error;
  int rc = guarded(d->dp, [&] {
    while (d->left == 0) {
      if (d->last_page) return ENOENT;
      if (int e = fetch_ct_page(d); e != 0) return e;
    }
    api::CtEntry e;
    if (!d->reader->read(e)) return fail(d->dp, EPROTO, "protocol error: truncated ct dump");
    --d->left;
    std::memcpy(out, &e, sizeof *out);
    return 0;
  });
  if (rc != 0 && rc != ENOENT) d->error = rc;
  return rc;
}

int gl_dp_ct_dump_done(gl_ct_dump* d) {
  if (d == nullptr) return 0;
  int rc = d->error;
  delete d;
  return rc;
}

int gl_dp_ct_flush(gl_dp* dp, const uint32_t* zone, const gl_ct_tuple* tuple, uint32_t* n_flushed) {
  if (dp == nullptr) return EINVAL;
  if (n_flushed != nullptr) *n_flushed = 0;
  return guarded(dp, [&] {
    std::optional<uint32_t> z;
    if (zone != nullptr) z = *zone;
    api::CtTuple t;
    if (tuple != nullptr) std::memcpy(&t, tuple, sizeof t);
    auto r = dp->client.ct_flush(z, tuple != nullptr ? &t : nullptr);
    if (!r) return fail(dp, r.error());
    if (n_flushed != nullptr) *n_flushed = *r;
    return 0;
  });
}

int gl_dp_ct_get_config(gl_dp* dp, gl_ct_config* out) {
  if (dp == nullptr) return EINVAL;
  if (out == nullptr) return fail(dp, EINVAL, "gl_dp_ct_get_config: NULL out");
  return guarded(dp, [&] {
    auto r = dp->client.ct_get_config();
    if (!r) return fail(dp, r.error());
    std::memcpy(out, &*r, sizeof *out);
    return 0;
  });
}

int gl_dp_ct_get_maxconns(gl_dp* dp, uint32_t* max_conns) {
  if (dp == nullptr) return EINVAL;
  if (max_conns == nullptr) return fail(dp, EINVAL, "gl_dp_ct_get_maxconns: NULL out");
  gl_ct_config c;
  int rc = gl_dp_ct_get_config(dp, &c);
  if (rc == 0) *max_conns = c.max_conns;
  return rc;
}

int gl_dp_ct_get_nconns(gl_dp* dp, uint32_t* n_conns) {
  if (dp == nullptr) return EINVAL;
  if (n_conns == nullptr) return fail(dp, EINVAL, "gl_dp_ct_get_nconns: NULL out");
  gl_ct_config c;
  int rc = gl_dp_ct_get_config(dp, &c);
  if (rc == 0) *n_conns = c.n_conns;
  return rc;
}

int gl_dp_ct_set_maxconns(gl_dp* dp, uint32_t max_conns) {
  if (dp == nullptr) return EINVAL;
  return guarded(dp, [&] {
    auto r = dp->client.ct_set_max_conns(max_conns);
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_ct_set_tcp_seq_chk(gl_dp* dp, bool enabled) {
  if (dp == nullptr) return EINVAL;
  return guarded(dp, [&] {
    auto r = dp->client.ct_set_tcp_seq_check(enabled);
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_ct_get_tcp_seq_chk(gl_dp* dp, bool* enabled) {
  if (dp == nullptr) return EINVAL;
  if (enabled == nullptr) return fail(dp, EINVAL, "gl_dp_ct_get_tcp_seq_chk: NULL out");
  gl_ct_config c;
  int rc = gl_dp_ct_get_config(dp, &c);
  if (rc == 0) *enabled = c.tcp_seq_check != 0;
  return rc;
}

int gl_dp_ct_set_limits(gl_dp* dp, const uint32_t* default_limit, const gl_ct_zone_limit* zones,
                        size_t n) {
  if (dp == nullptr) return EINVAL;
  if (zones == nullptr && n > 0) return fail(dp, EINVAL, "gl_dp_ct_set_limits: NULL zones");
  return guarded(dp, [&] {
    std::vector<api::CtZoneLimit> z(n);
    if (n > 0) std::memcpy(z.data(), zones, n * sizeof *zones);
    std::optional<uint32_t> d;
    if (default_limit != nullptr) d = *default_limit;
    auto r = dp->client.ct_set_limits(d, z);
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_ct_del_limits(gl_dp* dp, const uint32_t* zones, size_t n) {
  if (dp == nullptr) return EINVAL;
  if (zones == nullptr || n == 0) return fail(dp, EINVAL, "gl_dp_ct_del_limits: no zones");
  return guarded(dp, [&] {
    auto r = dp->client.ct_del_limits(std::span<const uint32_t>(zones, n));
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_ct_get_limits(gl_dp* dp, const uint32_t* zones, size_t n, uint32_t* default_limit,
                        gl_ct_zone_limit** out, size_t* n_out) {
  if (dp == nullptr) return EINVAL;
  if (default_limit == nullptr || out == nullptr || n_out == nullptr)
    return fail(dp, EINVAL, "gl_dp_ct_get_limits: NULL out");
  if (zones == nullptr && n > 0) return fail(dp, EINVAL, "gl_dp_ct_get_limits: NULL zones");
  *out = nullptr;
  *n_out = 0;
  return guarded(dp, [&] {
    auto r = dp->client.ct_get_limits(std::span<const uint32_t>(zones, n));
    if (!r) return fail(dp, r.error());
    *default_limit = r->default_limit;
    if (r->zones.empty()) return 0;
    auto* a =
        static_cast<gl_ct_zone_limit*>(std::malloc(r->zones.size() * sizeof(gl_ct_zone_limit)));
    if (a == nullptr) return fail(dp, ENOMEM, "out of memory");
    std::memcpy(a, r->zones.data(), r->zones.size() * sizeof(gl_ct_zone_limit));
    *out = a;
    *n_out = r->zones.size();
    return 0;
  });
}

int gl_dp_ct_get_stats(gl_dp* dp, gl_ct_stats** out) {
  if (dp == nullptr) return EINVAL;
  if (out == nullptr) return fail(dp, EINVAL, "gl_dp_ct_get_stats: NULL out");
  *out = nullptr;
  return guarded(dp, [&] {
    auto r = dp->client.ct_stats(false);
    if (!r) return fail(dp, r.error());
    const size_t bytes = sizeof(gl_ct_stats) + r->invalid.size() * sizeof(gl_ct_counter) +
                         r->protos.size() * sizeof(gl_ct_proto_count);
    auto* s = static_cast<gl_ct_stats*>(std::calloc(1, bytes));
    if (s == nullptr) return fail(dp, ENOMEM, "out of memory");
    std::memcpy(s, &r->totals, sizeof r->totals);
    s->invalid = reinterpret_cast<gl_ct_counter*>(s + 1);
    s->protos = reinterpret_cast<gl_ct_proto_count*>(s->invalid + r->invalid.size());
    s->n_invalid = static_cast<uint32_t>(r->invalid.size());
    s->n_protos = static_cast<uint32_t>(r->protos.size());
    if (!r->invalid.empty())
      std::memcpy(s->invalid, r->invalid.data(), r->invalid.size() * sizeof(gl_ct_counter));
    if (!r->protos.empty())
      std::memcpy(s->protos, r->protos.data(), r->protos.size() * sizeof(gl_ct_proto_count));
    *out = s;
    return 0;
  });
}

int gl_dp_ct_stats_clear(gl_dp* dp) {
  if (dp == nullptr) return EINVAL;
  return guarded(dp, [&] {
    auto r = dp->client.ct_stats(true);
    return r ? 0 : fail(dp, r.error());
  });
}

// ---- timeout policies and fragment reassembly ----------------------------------------------

int gl_dp_ct_set_timeout_policy(gl_dp* dp, const gl_ct_timeout_policy* tp) {
  if (dp == nullptr) return EINVAL;
  if (tp == nullptr) return fail(dp, EINVAL, "gl_dp_ct_set_timeout_policy: NULL policy");
  return guarded(dp, [&] {
    api::CtTimeoutPolicy w;
    std::memcpy(&w, tp, sizeof w);
    auto r = dp->client.ct_set_timeout_policy(w);
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_ct_get_timeout_policy(gl_dp* dp, uint32_t id, gl_ct_timeout_policy* out) {
  if (dp == nullptr) return EINVAL;
  if (out == nullptr) return fail(dp, EINVAL, "gl_dp_ct_get_timeout_policy: NULL out");
  return guarded(dp, [&] {
    auto r = dp->client.ct_get_timeout_policy(id);
    if (!r) return fail(dp, r.error());
    std::memcpy(out, &*r, sizeof *out);
    return 0;
  });
}

int gl_dp_ct_del_timeout_policy(gl_dp* dp, uint32_t id) {
  if (dp == nullptr) return EINVAL;
  return guarded(dp, [&] {
    auto r = dp->client.ct_del_timeout_policy(id);
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_ct_get_timeout_policies(gl_dp* dp, gl_ct_timeout_policy** out, size_t* n) {
  if (dp == nullptr) return EINVAL;
  if (out == nullptr || n == nullptr)
    return fail(dp, EINVAL, "gl_dp_ct_get_timeout_policies: NULL out");
  *out = nullptr;
  *n = 0;
  return guarded(dp, [&] {
    auto r = dp->client.ct_dump_timeout_policies();
    if (!r) return fail(dp, r.error());
    if (r->empty()) return 0;
    auto* a =
        static_cast<gl_ct_timeout_policy*>(std::malloc(r->size() * sizeof(gl_ct_timeout_policy)));
    if (a == nullptr) return fail(dp, ENOMEM, "out of memory");
    std::memcpy(a, r->data(), r->size() * sizeof(gl_ct_timeout_policy));
    *out = a;
    *n = r->size();
    return 0;
  });
}

int gl_dp_ipf_set_enabled(gl_dp* dp, bool v6, bool enabled) {
  if (dp == nullptr) return EINVAL;
  return guarded(dp, [&] {
    auto r = dp->client.ipf_set_enabled(v6, enabled);
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_ipf_set_min_frag(gl_dp* dp, bool v6, uint32_t min_frag) {
  if (dp == nullptr) return EINVAL;
  return guarded(dp, [&] {
    auto r = dp->client.ipf_set_min_frag(v6, min_frag);
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_ipf_set_max_nfrags(gl_dp* dp, uint32_t max_nfrags) {
  if (dp == nullptr) return EINVAL;
  return guarded(dp, [&] {
    auto r = dp->client.ipf_set_max_nfrags(max_nfrags);
    return r ? 0 : fail(dp, r.error());
  });
}

int gl_dp_ipf_get_status(gl_dp* dp, gl_ipf_status** out) {
  if (dp == nullptr) return EINVAL;
  if (out == nullptr) return fail(dp, EINVAL, "gl_dp_ipf_get_status: NULL out");
  *out = nullptr;
  return guarded(dp, [&] {
    auto r = dp->client.ipf_get_status();
    if (!r) return fail(dp, r.error());
    const size_t bytes =
        sizeof(gl_ipf_status) + (r->invalid.size() + r->passed.size()) * sizeof(gl_ipf_counter);
    auto* s = static_cast<gl_ipf_status*>(std::calloc(1, bytes));
    if (s == nullptr) return fail(dp, ENOMEM, "out of memory");
    std::memcpy(s, &r->totals, sizeof r->totals);
    s->invalid = reinterpret_cast<gl_ipf_counter*>(s + 1);
    s->passed = s->invalid + r->invalid.size();
    s->n_invalid = static_cast<uint32_t>(r->invalid.size());
    s->n_passed = static_cast<uint32_t>(r->passed.size());
    if (!r->invalid.empty())
      std::memcpy(s->invalid, r->invalid.data(), r->invalid.size() * sizeof(gl_ipf_counter));
    if (!r->passed.empty())
      std::memcpy(s->passed, r->passed.data(), r->passed.size() * sizeof(gl_ipf_counter));
    *out = s;
    return 0;
  });
}

int gl_dp_ipf_dump_start(gl_dp* dp, gl_ipf_dump** out) {
  if (dp == nullptr) return EINVAL;
  if (out == nullptr) return fail(dp, EINVAL, "gl_dp_ipf_dump_start: NULL out");
  *out = nullptr;
  return guarded(dp, [&] {
    auto r = dp->client.ipf_dump();
    if (!r) return fail(dp, r.error());
    auto* d = new gl_ipf_dump();
    d->lines = std::move(*r);
    *out = d;
    return 0;
  });
}

int gl_dp_ipf_dump_next(gl_ipf_dump* d, const char** line) {
  if (d == nullptr || line == nullptr) return EINVAL;
  if (d->next >= d->lines.size()) return ENOENT;
  *line = d->lines[d->next++].c_str();
  return 0;
}

int gl_dp_ipf_dump_done(gl_ipf_dump* d) {
  delete d;
  return 0;
}

// ---- helpers ------------------------------------------------------------------------------

const char* gl_ct_tp_name(unsigned cls) {
  // kCtTpNames are views of string literals: NUL-terminated.
  return cls < api::kCtTpCount ? api::kCtTpNames[cls].data() : nullptr;
}

int gl_ufid_from_match(const gl_flow_key* key, const gl_flow_key* mask, gl_ufid* out) {
  if (key == nullptr || mask == nullptr || out == nullptr) return EINVAL;
  flow::FlowMatch m;
  m.mask = to_key(*mask);
  flow::apply_mask(to_key(*key), m.mask, m.key);
  api::Ufid u = api::ufid_from_match(m);
  std::memcpy(out, &u, sizeof *out);
  return 0;
}

int gl_ufid_format(const gl_ufid* ufid, char* buf, size_t len) {
  if (ufid == nullptr) return EINVAL;
  return guarded_helper([&] {
    api::Ufid u;
    std::memcpy(&u, ufid, sizeof u);
    return copy_text(api::format_ufid(u), buf, len);
  });
}

int gl_ufid_parse(const char* text, gl_ufid* out) {
  if (text == nullptr || out == nullptr) return EINVAL;
  return guarded_helper([&] {
    auto u = api::parse_ufid(text);
    if (!u) return EINVAL;
    std::memcpy(out, &*u, sizeof *out);
    return 0;
  });
}

int gl_flow_key_exact_mask(gl_flow_key* mask) {
  if (mask == nullptr) return EINVAL;
  from_key(flow::exact_mask(), mask);
  return 0;
}

int gl_flow_format(const gl_flow_key* key, const gl_flow_key* mask, char* buf, size_t len) {
  if (key == nullptr || mask == nullptr) return EINVAL;
  return guarded_helper([&] {
    flow::FlowMatch m;
    m.key = to_key(*key);
    m.mask = to_key(*mask);
    return copy_text(gl::odp::format_flow(m), buf, len);
  });
}

int gl_flow_parse(const char* text, gl_flow_key* key, gl_flow_key* mask, char* err,
                  size_t err_len) {
  if (text == nullptr || key == nullptr || mask == nullptr) {
    put_err("NULL argument", err, err_len);
    return EINVAL;
  }
  return guarded_helper([&] {
    auto m = gl::odp::parse_flow(text);
    if (!m) {
      put_err(m.error(), err, err_len);
      return EINVAL;
    }
    from_key(m->key, key);
    from_key(m->mask, mask);
    return 0;
  });
}

int gl_actions_format(const void* actions, size_t actions_len, char* buf, size_t len) {
  if (actions == nullptr && actions_len > 0) return EINVAL;
  return guarded_helper([&] {
    return copy_text(gl::odp::format_actions(std::span<const uint8_t>(
                         static_cast<const uint8_t*>(actions), actions_len)),
                     buf, len);
  });
}

int gl_actions_parse(const char* text, void* buf, size_t cap, size_t* actions_len, char* err,
                     size_t err_len) {
  if (text == nullptr || actions_len == nullptr || (buf == nullptr && cap > 0)) {
    put_err("NULL argument", err, err_len);
    return EINVAL;
  }
  return guarded_helper([&] {
    auto a = gl::odp::parse_actions(text);
    if (!a) {
      put_err(a.error(), err, err_len);
      return EINVAL;
    }
    *actions_len = a->size();
    if (a->size() > cap) {
      put_err("encoded actions need " + std::to_string(a->size()) + " bytes", err, err_len);
      return ENOBUFS;
    }
    if (!a->empty()) std::memcpy(buf, a->data(), a->size());
    return 0;
  });
}

}  // extern "C"
