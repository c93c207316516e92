/* gl_dpapi.h — the C ABI of the datapath API (dpapi) client.
 *
 * Purpose: lets C code (the OVS dpif provider dpif-gl in dataplane/ovs/, whose OVS
 * headers are C-only) program gldp without touching C++: ports, megaflows (batched put
 * and delete, get, paged dump), execute, upcalls, statistics and runtime configuration,
 * the connection tracker (dump, flush, limits, counters, timeout policies, fragment
 * reassembly), plus the ODP text syntax
 * (parse/format of flows and actions) for tools and tests.
 * It is a thin layer over gl::api::Client (client.hpp); the structs below mirror the
 * wire structs of wire.hpp byte for byte (gl_dpapi.cpp static_asserts every size and
 * offset), so no field is converted on the way.
 *
 * Vocabulary: struct gl_flow_key is gl::flow::FlowKey (flowtables/flow_key.hpp): metadata
 * fields host order, packet fields network order; a mask is a gl_flow_key whose set bits
 * must match. Actions are the Linux OVS datapath netlink encoding
 * (<linux/openvswitch.h> OVS_ACTION_ATTR_*), so OVS's own action buffers pass unchanged.
 *
 * Thread-safety: a handle (struct gl_dp) and everything obtained from it (a flow dump,
 * pointers in a gl_upcall) is used by one thread at a time; nothing is shared between
 * handles, so threads that each open their own handle need no locking (OVS handler
 * threads each open one). The text and UFID helpers are reentrant.
 *
 * Ownership: strings and buffers passed in are only read during the call. Memory the
 * library allocates for the caller (gl_dp_port_list, gl_dp_get_stats, gl_dp_ct_get_limits,
 * gl_dp_ct_get_stats, gl_dp_ct_get_timeout_policies, gl_dp_ipf_get_status) is one block,
 * freed with gl_dp_free(). Pointers inside a gl_upcall
 * are owned by the handle and stay valid until the next call on that handle; pointers
 * inside a gl_flow from gl_dp_flow_dump_next are owned by the dump and stay valid until
 * its next gl_dp_flow_dump_next or gl_dp_flow_dump_done. gl_dp_flow_get copies actions
 * into a caller buffer; gl_dp_ct_dump_next copies into the caller's gl_ct_entry.
 *
 * Errors: every int-returning function returns 0 or a positive errno value; it never
 * aborts and never lets a C++ exception escape. A NULL pointer where one is required
 * gives EINVAL. gl_dp_last_error(dp) then names what was wrong (gldp's own message where
 * gldp refused, e.g. "port 'p1' exists"). Batched calls (flow put / del) return 0 when
 * the batch was exchanged and report each entry's errno and message in its result.
 *
 * Complexity: one request/reply round trip per call; batches are split into 64 KiB
 * messages with several in flight, dumps fetch one 64 KiB page per round trip. A reply
 * is awaited for at most 30 s (then ETIMEDOUT); gl_dp_recv_upcall waits timeout_ms.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#define GL_DP_ALIGN8 alignas(8)
#else
#define GL_DP_ALIGN8 _Alignas(8)
#endif

/* ---- limits and constants (the values of wire.hpp / flow_key.hpp) ------------------ */

#define GL_DP_NAME_LEN 32       /* port names incl. NUL */
#define GL_DP_DEVARGS_LEN 256   /* DPDK devargs incl. NUL */
#define GL_DP_MAX_PORT_MTU 2030 /* frames of up to 2048 bytes */
#define GL_DP_ERROR_LEN 128     /* per-entry error text in batch results incl. NUL */
#define GL_DP_MAX_ACTIONS 4096
#define GL_DP_MAX_PACKET 9216
#define GL_DP_MAX_USERDATA 256
#define GL_PORT_ANY 0xffffffffu /* "choose a port number" / "use the name" */
#define GL_PORT_RX_CHECKSUM 0x1 /* gl_port_info.offloads */
#define GL_UFID_STRLEN 37       /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" + NUL */

/* gl_dp_info.features */
#define GL_DP_FEATURE_RECIRC (1u << 0)
#define GL_DP_FEATURE_CLONE (1u << 1)
#define GL_DP_FEATURE_SAMPLE (1u << 2)
#define GL_DP_FEATURE_HASH (1u << 3)
#define GL_DP_FEATURE_SET_MASKED (1u << 4)
#define GL_DP_FEATURE_UFID (1u << 5)
#define GL_DP_FEATURE_ESP (1u << 6)       /* SA messages, esp_encrypt / esp_decrypt */
#define GL_DP_FEATURE_CONNTRACK (1u << 7) /* ct() / ct_clear and the gl_dp_ct_* calls */

/* gl_flow_put.flags */
#define GL_FLOW_PUT_CREATE 0x1u     /* may create a new flow */
#define GL_FLOW_PUT_MODIFY 0x2u     /* may replace the actions of an existing one */
#define GL_FLOW_PUT_ZERO_STATS 0x4u /* reset stats when modifying */

/* gl_dp_flow_dump_start flags */
#define GL_FLOW_DUMP_NO_ACTIONS 0x1u

/* gl_upcall.kind */
#define GL_UPCALL_MISS 0   /* no megaflow matched */
#define GL_UPCALL_ACTION 1 /* a userspace() action */

/* gl_flow_key fields (as flow_key.hpp) */
#define GL_VLAN_CFI 0x1000 /* vlan_tci: a tag is present */
#define GL_FRAG_ANY 0x01   /* nw_frag: the packet is a fragment */
#define GL_FRAG_LATER 0x02 /* nw_frag: ... and not the first one */
#define GL_CS_NEW 0x01     /* ct_state bits = the kernel's OVS_CS_F_* */
#define GL_CS_ESTABLISHED 0x02
#define GL_CS_RELATED 0x04
#define GL_CS_REPLY_DIR 0x08
#define GL_CS_INVALID 0x10
#define GL_CS_TRACKED 0x20

/* ---- plain data (mirrors of the wire structs) ---------------------------------------- */

/* The flow key / mask: 184 bytes, 23 64-bit words, the layout of gl::flow::FlowKey.
 * Metadata (in_port .. priority) is host order; packet fields and the conntrack original
 * tuple (ct_nw_src .. ct_nw_proto, metadata set by ct()) are network order.
 * ICMP type/code live in tp_src/tp_dst as htons(type)/htons(code). Padding must be zero
 * (gldp refuses a mask that covers it). */
struct gl_flow_key {
  GL_DP_ALIGN8 uint32_t in_port;
  uint32_t recirc_id;
  uint32_t dp_hash;
  uint32_t pkt_mark; /* skb_mark in ODP */
  uint32_t ct_mark;
  uint16_t ct_zone;
  uint8_t ct_state;
  uint8_t pad0;
  uint32_t priority; /* skb_priority in ODP */
  uint32_t pad1;
  uint8_t ct_label[16];
  uint8_t eth_dst[6];
  uint16_t eth_type; /* inner type when a VLAN tag is present */
  uint8_t eth_src[6];
  uint16_t vlan_tci; /* 0 = untagged; else TCI with GL_VLAN_CFI set */
  uint32_t ipv4_src; /* also ARP spa */
  uint32_t ipv4_dst; /* also ARP tpa */
  uint8_t ipv6_src[16];
  uint8_t ipv6_dst[16];
  uint32_t ipv6_label;
  uint8_t nw_proto; /* IP protocol; low 8 bits of the ARP opcode for ARP */
  uint8_t nw_tos;
  uint8_t nw_ttl;
  uint8_t nw_frag; /* GL_FRAG_* */
  uint16_t tp_src;
  uint16_t tp_dst;
  uint16_t tcp_flags;
  uint16_t pad2;
  uint8_t arp_sha[6];
  uint16_t arp_op;
  uint8_t arp_tha[6];
  uint16_t pad3;
  uint32_t ct_nw_src; /* ct_orig_tuple: the original direction of the packet's connection */
  uint32_t ct_nw_dst;
  uint8_t ct_ipv6_src[16];
  uint8_t ct_ipv6_dst[16];
  uint16_t ct_tp_src; /* ICMP: htons(type) */
  uint16_t ct_tp_dst; /* ICMP: htons(code) */
  uint8_t ct_nw_proto;
  uint8_t pad4[3];
};

/* Unique flow identifier (OVS's ovs_u128 order: lo = u64[0], hi = u64[1]). */
struct gl_ufid {
  uint64_t lo, hi;
};

struct gl_flow_stats {
  uint64_t packets;
  uint64_t bytes;
  uint64_t used_ms; /* CLOCK_MONOTONIC milliseconds of the last hit, 0 = never */
  uint16_t tcp_flags;
  uint16_t pad0;
  uint32_t pad1;
};

struct gl_dp_info {
  char version[32]; /* gldp version string */
  uint32_t api_version;
  uint32_t n_pmds;
  uint32_t n_ports;
  uint32_t max_ports;
  uint64_t n_flows;
  uint64_t features;  /* GL_DP_FEATURE_* */
  char pmd_cores[64]; /* e.g. "1" or "1,3" */
  uint64_t boot_id;   /* random per gldp start: a change means gldp restarted */
};

struct gl_port_stats {
  uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
  uint64_t rx_dropped, tx_dropped;
  uint64_t rx_errors, tx_errors;
};

struct gl_port_info {
  uint32_t port_no;
  uint16_t dpdk_port_id;
  uint16_t mtu;
  char name[GL_DP_NAME_LEN];
  char devargs[GL_DP_DEVARGS_LEN];
  char driver[GL_DP_NAME_LEN];
  uint8_t mac[6];
  uint8_t link_up;
  uint8_t offloads; /* GL_PORT_RX_CHECKSUM: the device verifies checksums on receive */
  uint32_t link_speed_mbps;
  uint16_t n_rxq, n_txq;
  struct gl_port_stats stats;
};

struct gl_pmd_stats {
  uint32_t core;
  uint32_t n_rxq;
  uint64_t packets; /* received */
  uint64_t batches;
  uint64_t busy_cycles;
  uint64_t idle_cycles;
  uint64_t emc_hits;
  uint64_t megaflow_hits;
  uint64_t misses;
  uint64_t upcalls; /* queued to the control side */
  uint64_t upcalls_lost;
  uint64_t recirculations;
  uint64_t esp_fragmented; /* IPv4 frames without DF fragmented to fit an ESP tunnel */
  uint64_t esp_handoffs;   /* ESP packets handed to the context that owns their inbound SA */
};

struct gl_drop_counter {
  char name[GL_DP_NAME_LEN]; /* e.g. "no_port", "parse_truncated" */
  uint64_t count;
};

/* Statistics: totals (the first ten fields mirror the wire StatsReply), then arrays of
 * n_pmds PMD counters and n_drops drop counters, in the same allocation. */
struct gl_dp_stats {
  uint64_t n_flows;
  uint64_t upcalls_delivered;
  uint64_t upcalls_lost; /* no subscriber, socket full, or rate limit */
  uint32_t n_pmds;
  uint32_t n_drops;
  uint64_t tsc_hz;
  /* The miss hold: repeats of a miss already sent up, held instead of sent again. */
  uint64_t misses_held;
  uint64_t misses_held_run;     /* then run through the flow that appeared */
  uint64_t misses_held_sent_up; /* then sent up: no flow within the window */
  uint64_t misses_hold_full;    /* sent up at once: the hold was full */
  struct gl_pmd_stats* pmds;
  struct gl_drop_counter* drops;
};

/* One entry of a batched flow put. */
struct gl_flow_put {
  struct gl_ufid ufid;
  uint32_t flags; /* GL_FLOW_PUT_*; 0 is refused */
  struct gl_flow_key key;
  struct gl_flow_key mask;
  const void* actions; /* ODP netlink actions; may be NULL when actions_len is 0 (drop) */
  size_t actions_len;  /* at most GL_DP_MAX_ACTIONS */
};

/* The result of one entry of a batched put or del. */
struct gl_flow_result {
  int error;                     /* 0 or errno (EEXIST, ENOENT, EINVAL, ...) */
  struct gl_flow_stats stats;    /* del and modify: the flow's stats before the call */
  char message[GL_DP_ERROR_LEN]; /* what was wrong; "" on success */
};

/* A flow as gldp reports it. */
struct gl_flow {
  struct gl_ufid ufid;
  struct gl_flow_key key; /* masked */
  struct gl_flow_key mask;
  struct gl_flow_stats stats;
  const uint8_t* actions; /* see the function that filled it for the lifetime */
  size_t actions_len;
};

/* A packet sent to userspace. */
struct gl_upcall {
  int kind;                /* GL_UPCALL_MISS or GL_UPCALL_ACTION */
  uint32_t pid;            /* the userspace(pid=) of an action upcall; 0 for a miss */
  struct gl_flow_key key;  /* the packet's parsed key, metadata (in_port, recirc_id...) included */
  const uint8_t* userdata; /* valid until the next call on the handle */
  size_t userdata_len;
  const uint8_t* packet; /* valid until the next call on the handle */
  size_t packet_len;
};

/* ---- connection tracking (mirrors of wire.hpp's Ct* structs) ------------------------ */

#define GL_CT_MAX_ZONE 65535
/* gl_ct_entry.flags */
#define GL_CT_ENTRY_SNAT 0x01        /* source translated (NAT) */
#define GL_CT_ENTRY_DNAT 0x02        /* destination translated */
#define GL_CT_ENTRY_HELPER_FTP 0x04  /* FTP control connection (helper=ftp) */
#define GL_CT_ENTRY_HELPER_TFTP 0x08 /* helper=tftp */
#define GL_CT_ENTRY_RELATED 0x10     /* expected by a helper: +rel */
#define GL_CT_ENTRY_REPLY_SEEN 0x20  /* a packet passed in the reply direction */

/* One direction of a connection. Addresses network order (IPv4: the first 4 bytes, the
 * rest zero). TCP and UDP: sport/dport (network order), ICMP fields zero.
 * ICMP/ICMPv6 queries: icmp_id (network order), icmp_type, icmp_code of this direction
 * (echo request 8 in the original tuple, echo reply 0 in the reply tuple), ports zero.
 * Other protocols: ports and ICMP fields zero. Padding must be zero. */
struct gl_ct_tuple {
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t sport;
  uint16_t dport;
  uint16_t icmp_id;
  uint8_t icmp_type;
  uint8_t icmp_code;
  uint8_t family; /* 4 or 6 */
  uint8_t proto;  /* IP protocol */
  uint8_t pad[6];
};

/* A connection as a dump reports it. */
struct gl_ct_entry {
  struct gl_ct_tuple orig;  /* originator -> responder */
  struct gl_ct_tuple reply; /* what replies carry */
  uint64_t packets[2];      /* [0] original direction, [1] reply direction */
  uint64_t bytes[2];        /* IP bytes */
  uint8_t label[16];        /* ct_label, a 128-bit little-endian number (= OVS's ovs_u128) */
  uint32_t mark;            /* ct_mark */
  uint32_t timeout_s;       /* seconds until it expires unless refreshed */
  uint16_t zone;
  uint8_t tcp_state_orig;  /* TCP: each end's state, OVS's CT_DPIF_TCPS_* numbering */
  uint8_t tcp_state_reply; /* (0 CLOSED .. 10 TIME_WAIT); 0 for other protocols */
  uint8_t flags;           /* GL_CT_ENTRY_* */
  uint8_t pad[3];
};

struct gl_ct_config {
  uint32_t n_conns;            /* connections tracked now */
  uint32_t max_conns;          /* the global limit */
  uint32_t capacity;           /* the table's size: the largest max_conns allowed */
  uint32_t default_zone_limit; /* 0 = unlimited */
  uint8_t tcp_seq_check;       /* 1: TCP sequence numbers are checked */
  uint8_t pad[7];
};

/* A zone's connection limit (0 = unlimited); count: its connections (get only; 0 in a
 * set). zone is 32 bits so that an out-of-range zone reaches gldp and is refused. */
struct gl_ct_zone_limit {
  uint32_t zone; /* 0..GL_CT_MAX_ZONE */
  uint32_t limit;
  uint32_t count;
  uint32_t pad;
};

struct gl_ct_counter {
  char name[GL_DP_NAME_LEN]; /* e.g. "tcp_window" */
  uint64_t count;
};

struct gl_ct_proto_count {
  uint32_t proto; /* IP protocol */
  uint32_t count; /* live connections */
};

/* The tracker's counters: totals (mirroring the wire CtStatsReply), then n_invalid
 * per-reason counts of +inv packets and n_protos protocols with live connections, in the
 * same allocation (free with gl_dp_free). */
struct gl_ct_stats {
  uint64_t packets;       /* packets that went through ct() */
  uint64_t found;         /* ... that belonged to a tracked connection */
  uint64_t created;       /* connections committed */
  uint64_t expired;       /* connections timed out */
  uint64_t limit_global;  /* commits refused by max_conns */
  uint64_t limit_zone;    /* commits refused by a zone's limit */
  uint64_t table_full;    /* commits refused: no free slot or bucket */
  uint64_t nat_exhausted; /* commits refused: no free address/port in the NAT range */
  uint32_t n_conns;
  uint32_t max_conns;
  uint32_t capacity;
  uint32_t pending_free; /* removed, memory not yet reclaimed */
  uint32_t n_invalid;
  uint32_t n_protos;
  uint64_t index_bytes; /* the lookup index's size now (it grows with the connections) */
  uint32_t index_grows; /* times it grew */
  uint32_t pad;
  struct gl_ct_counter* invalid;
  struct gl_ct_proto_count* protos;
};

/* Timeout policies (OVS's zone timeout policies; ct(commit,timeout="ID") in an action picks
 * one by its decimal id). Classes are indexes into sec[], named as OVS's attributes. */
#define GL_CT_TP_TCP_SYN_SENT 0
#define GL_CT_TP_TCP_SYN_RECV 1
#define GL_CT_TP_TCP_ESTABLISHED 2
#define GL_CT_TP_TCP_FIN_WAIT 3
#define GL_CT_TP_TCP_TIME_WAIT 4
#define GL_CT_TP_TCP_CLOSE 5
#define GL_CT_TP_UDP_FIRST 6
#define GL_CT_TP_UDP_SINGLE 7
#define GL_CT_TP_UDP_MULTIPLE 8
#define GL_CT_TP_ICMP_FIRST 9
#define GL_CT_TP_ICMP_REPLY 10
#define GL_CT_TP_COUNT 11                          /* classes in use */
#define GL_CT_TP_SLOTS 16                          /* room in sec[] */
#define GL_CT_TP_ALL ((1u << GL_CT_TP_COUNT) - 1u) /* every class */
#define GL_CT_MAX_TIMEOUT_POLICIES 1024            /* ids 0..1023; 0 = the default policy */
#define GL_CT_TP_MAX_SEC 4000000                   /* the longest timeout, seconds */

/* A timeout policy. In a set: the classes whose bit is in present get sec[class], the
 * others the defaults (sec[] must be 0 for them and for slots past GL_CT_TP_COUNT). In a
 * get: every class's seconds, present = GL_CT_TP_ALL. */
struct gl_ct_timeout_policy {
  uint32_t id;
  uint32_t present;
  uint32_t sec[GL_CT_TP_SLOTS];
};

/* ---- IP fragment reassembly (mirrors of wire.hpp's Ipf* structs) --------------------- */

#define GL_IPF_MIN_FRAG_LOWER_BOUND 400    /* gl_dp_ipf_set_min_frag refuses less */
#define GL_IPF_MAX_NFRAGS_UPPER_BOUND 5000 /* gl_dp_ipf_set_max_nfrags refuses more */

/* One family's status (OVS's struct dpif_ipf_proto_status). */
struct gl_ipf_family_status {
  uint8_t enabled; /* 0 or 1 */
  uint8_t pad[3];
  uint32_t min_frag_size;  /* bytes of a non-last fragment's IP packet */
  uint64_t accepted;       /* fragments taken and held */
  uint64_t completed_sent; /* ... sent on reassembled */
  uint64_t expired_sent;   /* ... sent on as +inv when their datagram timed out */
  uint64_t too_small;      /* refused: non-last fragments below min_frag_size */
  uint64_t overlap;        /* refused: overlapping or duplicate data */
  uint64_t purged;         /* ... dropped long after their datagram timed out */
};

/* A per-reason counter for IPv4 and IPv6. */
struct gl_ipf_counter {
  char name[GL_DP_NAME_LEN]; /* e.g. "l3_checksum", "disabled" */
  uint64_t v4;
  uint64_t v6;
};

/* Reassembly status: the first fields mirror the wire IpfStatusReply, then n_invalid
 * counters of refused fragments and n_passed of fragments sent on un-reassembled, per
 * reason, in the same allocation (free with gl_dp_free). */
struct gl_ipf_status {
  struct gl_ipf_family_status v4;
  struct gl_ipf_family_status v6;
  uint32_t nfrag;      /* fragments held now */
  uint32_t nfrag_max;  /* the most held at once */
  uint32_t nlists;     /* datagrams being reassembled */
  uint32_t timeout_ms; /* a datagram's time to complete from its first fragment */
  uint32_t n_invalid;
  uint32_t n_passed;
  struct gl_ipf_counter* invalid;
  struct gl_ipf_counter* passed;
};

/* ---- the handle ------------------------------------------------------------------- */

struct gl_dp;
struct gl_flow_dump;
struct gl_ct_dump;
struct gl_ipf_dump;

/* Connects to gldp's socket. On success *out is a new handle; on failure *out is NULL
 * and gl_dp_last_error(NULL) names the reason (per thread). */
int gl_dp_open(const char* socket_path, struct gl_dp** out);
/* Closes the connection and frees the handle. NULL is ignored. Flow dumps started on
 * the handle must be finished (gl_dp_flow_dump_done) before. */
void gl_dp_close(struct gl_dp* dp);
/* The socket, for poll(POLLIN) in an upcall handler; -1 for NULL. Upcalls that arrived
 * while another call waited for its reply are queued inside the handle and do not make
 * the socket readable: call gl_dp_recv_upcall(dp, 0, ...) until EAGAIN before polling. */
int gl_dp_fd(const struct gl_dp* dp);
/* Message of the last failing call on the handle ("" if none); valid until the next
 * failing call. For NULL: the last failed gl_dp_open of the calling thread. */
const char* gl_dp_last_error(const struct gl_dp* dp);
/* Frees memory returned by gl_dp_port_list / gl_dp_get_stats. NULL is ignored. */
void gl_dp_free(void* p);

/* ---- datapath ---------------------------------------------------------------------- */

int gl_dp_get_info(struct gl_dp* dp, struct gl_dp_info* out);

/* Applies a runtime setting, e.g. ("emc-insert-inv-prob", "100"). Unknown keys and
 * malformed values give EINVAL with a message; settings fixed at start give ENOTSUP. */
int gl_dp_set_config(struct gl_dp* dp, const char* key, const char* value);

/* Totals, per-PMD and drop counters in one block; free *out with gl_dp_free. */
int gl_dp_get_stats(struct gl_dp* dp, struct gl_dp_stats** out);
int gl_dp_stats_clear(struct gl_dp* dp);

/* ---- ports ------------------------------------------------------------------------- */

/* Adds a DPDK port. port_no: the datapath port number wanted, or GL_PORT_ANY for the
 * lowest free one; n_rxq 0 = default (1); mtu 0 = leave as is. out (may be NULL)
 * receives the port as created. Errors: EEXIST (name taken), EBUSY (number taken),
 * EINVAL (bad devargs: the message is DPDK's complaint), ENAMETOOLONG. */
int gl_dp_port_add(struct gl_dp* dp, const char* name, const char* devargs, uint32_t port_no,
                   uint16_t n_rxq, uint16_t mtu, struct gl_port_info* out);
int gl_dp_port_del(struct gl_dp* dp, uint32_t port_no); /* ENOENT when absent */
int gl_dp_port_del_by_name(struct gl_dp* dp, const char* name);
int gl_dp_port_get(struct gl_dp* dp, uint32_t port_no, struct gl_port_info* out);
int gl_dp_port_get_by_name(struct gl_dp* dp, const char* name, struct gl_port_info* out);
/* Sets the MTU of a port (by name): 68..GL_DP_MAX_PORT_MTU; for tap and af_packet ports
 * the kernel interface follows. out (may be NULL) receives the port afterwards. Errors:
 * ENOENT, EINVAL (out of range), ENOTSUP (the device cannot, e.g. net_pcap). */
int gl_dp_port_set_mtu(struct gl_dp* dp, const char* name, uint16_t mtu, struct gl_port_info* out);
/* All ports (with counters) in port order: *ports is one allocation of *n entries
 * (NULL when there are none), freed with gl_dp_free. */
int gl_dp_port_list(struct gl_dp* dp, struct gl_port_info** ports, size_t* n);

/* ---- flows ------------------------------------------------------------------------- */

/* Installs or modifies n flows. results[i] receives entry i's outcome (results must
 * have n entries). Returns 0 when the batch was exchanged with gldp (look at each
 * results[i].error); on a transport failure (gldp gone, timeout) returns its errno and
 * marks every sent entry with it: their fate is unknown, as with a lost netlink reply, so
 * the caller treats them as failed and lets a dump reconcile.
 * An entry that cannot be encoded (actions_len > GL_DP_MAX_ACTIONS, actions NULL with a
 * length) gets EINVAL and is not sent. */
int gl_dp_flow_put(struct gl_dp* dp, const struct gl_flow_put* puts, size_t n,
                   struct gl_flow_result* results);
/* Deletes n flows by UFID; results as for put (stats = the flow's final counters;
 * ENOENT for a UFID without a flow). */
int gl_dp_flow_del(struct gl_dp* dp, const struct gl_ufid* ufids, size_t n,
                   struct gl_flow_result* results);
/* One flow by UFID (ENOENT when absent). Its actions are copied into actions_buf
 * (capacity actions_cap; GL_DP_MAX_ACTIONS always suffices) and out->actions points
 * there; when they do not fit, ENOBUFS with everything else filled and out->actions_len
 * the size needed. */
int gl_dp_flow_get(struct gl_dp* dp, const struct gl_ufid* ufid, struct gl_flow* out,
                   void* actions_buf, size_t actions_cap);
/* Removes every flow. */
int gl_dp_flow_flush(struct gl_dp* dp);

/* A dump walks every flow once (flows added or removed meanwhile may or may not be
 * seen); it fetches pages on demand, so other calls on dp may be made between
 * gl_dp_flow_dump_next calls (e.g. deleting the flows being dumped). dp must outlive
 * the dump. flags: GL_FLOW_DUMP_NO_ACTIONS leaves actions out (actions_len 0). */
int gl_dp_flow_dump_start(struct gl_dp* dp, uint32_t flags, struct gl_flow_dump** out);
/* Next flow: 0 and *out filled (out->actions valid until the next next/done), ENOENT
 * when the dump is complete, another errno when it failed (the dump then ends). */
int gl_dp_flow_dump_next(struct gl_flow_dump* dump, struct gl_flow* out);
/* Frees the dump; returns 0, or the errno that ended it early. NULL is ignored (0). */
int gl_dp_flow_dump_done(struct gl_flow_dump* dump);

/* ---- execute and upcalls ------------------------------------------------------------ */

/* Runs actions on one packet (14..GL_DP_MAX_PACKET bytes). md supplies the metadata the
 * packet starts with: in_port, recirc_id, dp_hash, pkt_mark, priority, ct_*; the packet
 * fields of md are ignored (gldp parses the packet). NULL md = all zero. */
int gl_dp_execute(struct gl_dp* dp, const struct gl_flow_key* md, const void* actions,
                  size_t actions_len, const void* packet, size_t packet_len);

/* One packet of a batched execute (gl_dp_execute's arguments). */
struct gl_execute {
  struct gl_flow_key md; /* metadata, as for gl_dp_execute */
  const void* actions;   /* may be NULL when actions_len is 0 (drop) */
  size_t actions_len;    /* at most GL_DP_MAX_ACTIONS */
  const void* packet;
  size_t packet_len; /* 14..GL_DP_MAX_PACKET */
};

/* Executes n packets in as few round trips as fit (an upcall handler's batch), in order.
 * results[i] receives packet i's outcome (error 0 or errno, message; stats unused).
 * Returns 0 when the batch was exchanged with gldp; on a transport failure returns its
 * errno and marks every entry with it. An entry that cannot be encoded (too long, NULL
 * pointers) gets EINVAL / EMSGSIZE and is not sent. */
int gl_dp_execute_batch(struct gl_dp* dp, const struct gl_execute* ops, size_t n,
                        struct gl_flow_result* results);

/* Makes this handle receive userspace(pid=pid) upcalls and, when misses is true, flow
 * misses. */
int gl_dp_upcall_subscribe(struct gl_dp* dp, uint32_t pid, bool misses);
/* Next upcall, waiting up to timeout_ms (0 = do not wait, negative = wait until one
 * arrives). EAGAIN when none arrived. out's userdata / packet pointers are valid until
 * the next call on dp. */
int gl_dp_recv_upcall(struct gl_dp* dp, int timeout_ms, struct gl_upcall* out);

/* How many upcalls the handle has already received and queued (gldp sends them in
 * batches, and replies can arrive behind them): a handler with some queued must not
 * wait for the socket before taking them with gl_dp_recv_upcall(dp, 0, ...). */
size_t gl_dp_upcalls_queued(const struct gl_dp* dp);

/* ---- connection tracking -------------------------------------------------------------
 * The tracker of ct() (gl_dp_get_info: GL_DP_FEATURE_CONNTRACK). gldp refuses a zone
 * outside 0..GL_CT_MAX_ZONE, a max_conns above the table's capacity and malformed tuples
 * with EINVAL and a message naming the problem. */

/* A dump of every connection, or of *zone's when zone is not NULL; pages are fetched on
 * demand (other calls on dp may be made in between, e.g. flushing what was dumped). dp
 * must outlive the dump. Zones are uint32_t in this API so that a bad one reaches gldp
 * and is refused by name. */
int gl_dp_ct_dump_start(struct gl_dp* dp, const uint32_t* zone, struct gl_ct_dump** out);
/* Next connection: 0 and *out filled, ENOENT when the dump is complete, another errno
 * when it failed (the dump then ends). */
int gl_dp_ct_dump_next(struct gl_ct_dump* dump, struct gl_ct_entry* out);
/* Frees the dump; 0, or the errno that ended it early. NULL is ignored (0). */
int gl_dp_ct_dump_done(struct gl_ct_dump* dump);

/* Removes connections: every one (zone and tuple NULL), *zone's (tuple NULL), or the one
 * whose original or reply tuple is *tuple, in *zone (zone 0 when zone is NULL; ENOENT
 * when there is none). n_flushed (may be NULL) receives how many were removed. */
int gl_dp_ct_flush(struct gl_dp* dp, const uint32_t* zone, const struct gl_ct_tuple* tuple,
                   uint32_t* n_flushed);

int gl_dp_ct_get_config(struct gl_dp* dp, struct gl_ct_config* out);
int gl_dp_ct_get_maxconns(struct gl_dp* dp, uint32_t* max_conns);
int gl_dp_ct_get_nconns(struct gl_dp* dp, uint32_t* n_conns);
/* The global connection limit, 0..capacity (EINVAL above it). */
int gl_dp_ct_set_maxconns(struct gl_dp* dp, uint32_t max_conns);
/* TCP sequence-number checking (OVS's ct-enable-tcp-seq-chk / ct-disable-tcp-seq-chk). */
int gl_dp_ct_set_tcp_seq_chk(struct gl_dp* dp, bool enabled);
int gl_dp_ct_get_tcp_seq_chk(struct gl_dp* dp, bool* enabled);

/* Sets the default zone limit (when default_limit is not NULL) and the n zone limits
 * (count ignored). Each message is checked as a whole before anything is applied (up to
 * 4000 zones per message). */
int gl_dp_ct_set_limits(struct gl_dp* dp, const uint32_t* default_limit,
                        const struct gl_ct_zone_limit* zones, size_t n);
/* Zones fall back to the default limit. */
int gl_dp_ct_del_limits(struct gl_dp* dp, const uint32_t* zones, size_t n);
/* The default limit and, for each of the n zones, its limit (its own or the default) and
 * connections now; n = 0 lists every zone that has its own limit. *out is one allocation
 * of *n_out entries (NULL when none), freed with gl_dp_free. */
int gl_dp_ct_get_limits(struct gl_dp* dp, const uint32_t* zones, size_t n, uint32_t* default_limit,
                        struct gl_ct_zone_limit** out, size_t* n_out);

/* Counters in one block, free with gl_dp_free. */
int gl_dp_ct_get_stats(struct gl_dp* dp, struct gl_ct_stats** out);
/* Zeroes the counters (not the connections). */
int gl_dp_ct_stats_clear(struct gl_dp* dp);

/* Timeout policies. Set creates or replaces policy tp->id (0..GL_CT_MAX_TIMEOUT_POLICIES-1;
 * 0 changes the defaults) as a whole; EINVAL names a bad id, class or value. */
int gl_dp_ct_set_timeout_policy(struct gl_dp* dp, const struct gl_ct_timeout_policy* tp);
/* ENOENT when there is no policy id. */
int gl_dp_ct_get_timeout_policy(struct gl_dp* dp, uint32_t id, struct gl_ct_timeout_policy* out);
/* ENOENT when there is no policy id; the default policy (0) cannot be deleted (EINVAL).
 * Connections committed with a deleted policy fall back to the defaults. */
int gl_dp_ct_del_timeout_policy(struct gl_dp* dp, uint32_t id);
/* Every policy (the default one, id 0, first), in id order: *out is one allocation of *n
 * entries, freed with gl_dp_free. */
int gl_dp_ct_get_timeout_policies(struct gl_dp* dp, struct gl_ct_timeout_policy** out, size_t* n);

/* Fragment reassembly in front of the tracker (OVS's dpctl/ipf-*): on by default for both
 * families, min_frag 1200 (v4) / 1280 (v6), 1000 fragments at most. */
int gl_dp_ipf_set_enabled(struct gl_dp* dp, bool v6, bool enabled);
/* EINVAL below GL_IPF_MIN_FRAG_LOWER_BOUND. */
int gl_dp_ipf_set_min_frag(struct gl_dp* dp, bool v6, uint32_t min_frag);
/* EINVAL above GL_IPF_MAX_NFRAGS_UPPER_BOUND. */
int gl_dp_ipf_set_max_nfrags(struct gl_dp* dp, uint32_t max_nfrags);
/* Status and counters in one block, free with gl_dp_free. */
int gl_dp_ipf_get_status(struct gl_dp* dp, struct gl_ipf_status** out);
/* The datagrams being reassembled, one line each in OVS's `dpctl/ipf-get-status -m` form
 * ("(src=10.1.1.1,dst=10.1.1.2,recirc_id=0,ip_id=7,dl_type=0x800,zone=9,nw_proto=1,
 * num_fragments=1,state=first frag)"). Start fetches every line; next hands them out: 0
 * and *line (valid until the next next/done) or ENOENT at the end. */
int gl_dp_ipf_dump_start(struct gl_dp* dp, struct gl_ipf_dump** out);
int gl_dp_ipf_dump_next(struct gl_ipf_dump* dump, const char** line);
/* Frees the dump (0). NULL is ignored. */
int gl_dp_ipf_dump_done(struct gl_ipf_dump* dump);

/* ---- helpers (reentrant, no handle) --------------------------------------------------- */

/* OVS's name of timeout class cls (GL_CT_TP_*: "tcp_syn_sent" ... "icmp_reply"); NULL
 * for cls >= GL_CT_TP_COUNT. */
const char* gl_ct_tp_name(unsigned cls);
/* The UFID gl-dpctl derives for a match installed without one: deterministic in
 * (key & mask, mask). */
int gl_ufid_from_match(const struct gl_flow_key* key, const struct gl_flow_key* mask,
                       struct gl_ufid* out);
/* OVS's text form "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into buf[GL_UFID_STRLEN]. */
int gl_ufid_format(const struct gl_ufid* ufid, char* buf, size_t len);
/* Parses that form (an optional "ufid:" prefix is accepted); EINVAL when malformed. */
int gl_ufid_parse(const char* text, struct gl_ufid* out);
/* The exact-match mask: every bit a packet can carry. */
int gl_flow_key_exact_mask(struct gl_flow_key* mask);

/* ODP text syntax (odp_text.hpp), as ovs-dpctl prints it. The format functions write a
 * NUL-terminated string and return ENOBUFS when it had to be truncated. The parse
 * functions write their error (e.g. "ipv4(dst=10.0.0.300): bad IPv4 address
 * '10.0.0.300'") into err/err_len when those are non-NULL/non-zero and return EINVAL. */
int gl_flow_format(const struct gl_flow_key* key, const struct gl_flow_key* mask, char* buf,
                   size_t len);
int gl_flow_parse(const char* text, struct gl_flow_key* key, struct gl_flow_key* mask, char* err,
                  size_t err_len);
int gl_actions_format(const void* actions, size_t actions_len, char* buf, size_t len);
/* Encodes an action list ("2,push_vlan(vid=10,pcp=0),recirc(1)", "drop") into buf;
 * *actions_len is the encoded size; ENOBUFS when it exceeds cap (*actions_len is then
 * the size needed). */
int gl_actions_parse(const char* text, void* buf, size_t cap, size_t* actions_len, char* err,
                     size_t err_len);

#ifdef __cplusplus
} /* extern "C" */
#endif

#undef GL_DP_ALIGN8
