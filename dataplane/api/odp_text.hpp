// odp_text.hpp — the OVS datapath (ODP) text syntax for flow matches and actions.
//
// Purpose: the same syntax as `ovs-dpctl dump-flows` / `add-flow`, used by gl-dpctl,
// logs and tests:
//   in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),
//   ipv4(src=10.0.0.1,dst=10.0.0.0/255.255.255.0,proto=17,tos=0,ttl=64,frag=no),
//   udp(src=1234,dst=80)
//   actions: 2,set(ipv4(dst=10.0.0.3)),push_vlan(vid=10,pcp=0),recirc(0x1)  (or: drop)
// parse_flow fills a FlowMatch following flow_key.hpp (packet fields network order,
// vlan_tci with the CFI "present" bit, ICMP type/code in tp_src/tp_dst, nw_frag bits);
// format_flow prints it back in OVS's canonical order, so that
// parse_flow(format_flow(m)) == m for every match parse_flow can produce.
// parse_actions builds an action blob (odp_actions.hpp) that passed validate_actions;
// format_actions prints any blob ("drop" when empty).
// Deliberately unsupported: more than one VLAN tag and 802.1ad (FlowKey has one tag and
// no TPID), tunnel / mpls / nd / nsh / ct_tuple keys, port names, and the mpls, trunc,
// meter, check_pkt_len, push/pop_eth, tnl_* actions.
//
// Thread-safety: all functions are reentrant. Complexity: linear in the text or blob
// size; these are control-path functions and allocate freely.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "flowtables/flow_key.hpp"

namespace gl::odp {

// "00:11:22:33:44:55" (also accepts upper-case hex digits).
std::optional<std::array<uint8_t, 6>> parse_mac(std::string_view text);
std::string format_mac(std::span<const uint8_t, 6> mac);

// Dotted quad; the result is in network order (as FlowKey stores addresses).
std::optional<uint32_t> parse_ipv4(std::string_view text);
std::string format_ipv4(uint32_t addr_be);

// Any inet_pton form; inet_ntop's canonical form on output.
std::optional<std::array<uint8_t, 16>> parse_ipv6(std::string_view text);
std::string format_ipv6(std::span<const uint8_t, 16> addr);

// Parses a flow match. Each field is `value` (exact) or `value/mask`; a field not given
// is wildcarded; the returned key is masked. Keys: recirc_id, dp_hash, skb_priority,
// in_port, skb_mark, ct_state, ct_zone, ct_mark, ct_label, eth, eth_type, vlan, encap,
// ipv4, ipv6, arp, tcp, udp, sctp, icmp, icmpv6, tcp_flags, packet_type(ns=0,id=0).
// Prerequisites are as strict as OVS (ipv4 needs eth_type(0x0800) before it, tcp needs
// ipv4/ipv6 with proto=6, ...). VLAN, as in OVS: eth_type(0x8100),vlan(vid=..,pcp=..),
// encap(eth_type(..),...) matches a tagged packet; an eth_type without a vlan() means
// "untagged" (vlan_tci exactly 0). Extension: a vlan(vid=..,pcp=..,cfi=..) not preceded
// by eth_type(0x8100) matches vlan_tci bit by bit as written (`vlan()` = any tag or
// none); format_flow uses it only for matches the OVS forms cannot express.
// Errors name the key, the field and the bad token, e.g.
// "ipv4(dst=10.0.0.300): bad IPv4 address '10.0.0.300'".
std::expected<flow::FlowMatch, std::string> parse_flow(std::string_view text);

// OVS dump-flows style: fields whose mask is non-zero, "/mask" only when not exact, in
// the order recirc_id, dp_hash, skb_priority, in_port, skb_mark, ct_state, ct_zone,
// ct_mark, ct_label, eth, vlan/encap, eth_type, ipv4|ipv6|arp, tcp|udp|sctp|icmp|icmpv6,
// tcp_flags. Never fails; a match parse_flow cannot produce (e.g. L4 fields without an
// exact protocol) is still printed completely, but may not parse back.
std::string format_flow(const flow::FlowMatch& match);

// Parses an action list: `drop` (empty blob), port numbers (`2`, also `output(2)`),
// userspace(pid=N[,userdata(HEX)][,actions]), set(KEY(...)) with KEY one of eth, ipv4,
// ipv6, tcp, udp, sctp, skb_mark, skb_priority (a set with every field exact is a SET,
// anything else a SET_MASKED of the given fields), push_vlan([tpid=..,]vid=..,pcp=..),
// pop_vlan, recirc(N), hash(l4(N)) / hash(sym_l4(N)), clone(ACTIONS),
// sample(sample=P%,actions(ACTIONS)), ct_clear, ct (below), and Goldilocks'
// esp_encrypt(group=N) / esp_decrypt (odp_actions.hpp). The result passed
// validate_actions.
// ct as OVS's odp-util writes it: `ct` or `ct(OPTION,...)`, each option at most once:
//   commit | force_commit, zone=N (0..65535), mark=V[/M] (hexadecimal, "0x" optional, as
//   OVS's "%x"; no mask = 0xffffffff), label=V[/M] (128-bit, hex or decimal; no mask =
//   all ones), helper=ftp|tftp, timeout=NAME (1..31 printable characters other than
//   space , ( ) =), eventmask=N (a Goldilocks addition: OVS neither parses nor prints it;
//   the codec carries it, gldp's datapath refuses it),
//   nat | nat(src[=RANGE] | dst[=RANGE] [,persistent] [,hash | ,random]) with RANGE
//   IPv4 `A[-B][:P[-Q]]` or IPv6 `[A][-[B]][:P[-Q]]` (brackets optional without ports).
// Unlike OVS's parser, persistent/hash/random are kept without an address range (as
// ovs-vswitchd emits them) and mark/label with a zero mask are kept.
// Errors name the option, e.g. "ct: bad zone 'x'", "ct: unknown option 'foo'"; the rules
// about values are decode_ct's, with its messages.
// ct_clear takes no arguments.
std::expected<std::vector<uint8_t>, std::string> parse_actions(std::string_view text);

// Prints a blob in OVS syntax; "drop" when empty. A blob that fails validate_actions
// prints as "<invalid actions: REASON>". parse_actions(format_actions(b)) == b for
// every blob parse_actions produces (a SET_MASKED whose mask is all-exact prints like,
// and parses back as, the equivalent SET). ct follows OVS's format_odp_conntrack_action:
// zone only when non-zero, mark always with "/mask", label with "/mask" unless all
// ones, IPv6 NAT addresses in brackets only when a port follows, nat last; eventmask
// (which OVS does not print) after timeout.
std::string format_actions(std::span<const uint8_t> blob);

}  // namespace gl::odp
