/* gl-flow.c — OVS flow keys and masks <-> gl_flow_key (see gl-flow.h). */
#include <config.h>

#include "gl-flow.h"

#include <errno.h>
#include <string.h>

#include "flow.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/ofpbuf.h"
#include "packets.h"
#include "util.h"

/* The mapping: each struct flow field on the left is the gl_flow_key field on the right,
 * same size, same byte order, so conversion is a copy in either direction.
 *   - in_port is the datapath (ODP) port number: gldp port numbers are ODP numbers.
 *   - For ARP, OVS keeps the opcode's low byte in nw_proto (as gldp's parser does) and
 *     spa/tpa in nw_src/nw_dst; arp_sha/arp_tha only mean ARP addresses for ARP/RARP
 *     (for IPv6 ND, OVS keeps the SLL/TLL options there, which gldp does not parse).
 *   - vlans[0].tci has the CFI bit as "tag present" on both sides; gldp has no TPID field
 *     and no second tag.
 *   - ct_state bits are the same on both sides (OVS's CS_* = the kernel's OVS_CS_F_*);
 *     ct_zone and ct_mark are host order; ct_label is OVS's host-order ovs_u128, byte 0
 *     least significant on both sides; the ct_orig_tuple fields (ct_nw_src ..
 *     ct_nw_proto) are network order on both sides. */
#define GL_FLOW_FIELDS(F)        \
    F(in_port.odp_port, in_port) \
    F(recirc_id, recirc_id)      \
    F(dp_hash, dp_hash)          \
    F(pkt_mark, pkt_mark)        \
    F(skb_priority, priority)    \
    F(ct_state, ct_state)        \
    F(ct_zone, ct_zone)          \
    F(ct_mark, ct_mark)          \
    F(ct_label, ct_label)        \
    F(dl_dst, eth_dst)           \
    F(dl_src, eth_src)           \
    F(dl_type, eth_type)         \
    F(vlans[0].tci, vlan_tci)    \
    F(nw_src, ipv4_src)          \
    F(nw_dst, ipv4_dst)          \
    F(ipv6_src, ipv6_src)        \
    F(ipv6_dst, ipv6_dst)        \
    F(ipv6_label, ipv6_label)    \
    F(nw_proto, nw_proto)        \
    F(nw_tos, nw_tos)            \
    F(nw_ttl, nw_ttl)            \
    F(nw_frag, nw_frag)          \
    F(tp_src, tp_src)            \
    F(tp_dst, tp_dst)            \
    F(tcp_flags, tcp_flags)      \
    F(arp_sha, arp_sha)          \
    F(arp_tha, arp_tha)          \
    F(ct_nw_src, ct_nw_src)      \
    F(ct_nw_dst, ct_nw_dst)      \
    F(ct_ipv6_src, ct_ipv6_src)  \
    F(ct_ipv6_dst, ct_ipv6_dst)  \
    F(ct_tp_src, ct_tp_src)      \
    F(ct_tp_dst, ct_tp_dst)      \
    F(ct_nw_proto, ct_nw_proto)

struct gl_field {
    const char *name;
    size_t flow_ofs;
    size_t gl_ofs;
    size_t len;
    bool arp_only;
};

#define GL_FIELD_ENTRY(OVS, GL)                                                   \
    {#OVS, offsetof(struct flow, OVS), offsetof(struct gl_flow_key, GL),          \
     MEMBER_SIZEOF(struct flow, OVS),                                             \
     offsetof(struct gl_flow_key, GL) == offsetof(struct gl_flow_key, arp_sha) || \
         offsetof(struct gl_flow_key, GL) == offsetof(struct gl_flow_key, arp_tha)},
static const struct gl_field gl_fields[] = {GL_FLOW_FIELDS(GL_FIELD_ENTRY)};

#define GL_FIELD_SIZE_CHECK(OVS, GL)                     \
    BUILD_ASSERT_DECL(MEMBER_SIZEOF(struct flow, OVS) == \
                      MEMBER_SIZEOF(struct gl_flow_key, GL));
GL_FLOW_FIELDS(GL_FIELD_SIZE_CHECK)

const struct odp_support *
gl_flow_odp_support(void)
{
    static const struct odp_support support = {
        .max_vlan_headers = 1,
        .max_mpls_depth = 0,
        .recirc = true,
        .ct_state = true,
        .ct_zone = true,
        .ct_mark = true,
        .ct_label = true,
        .ct_state_nat = true,
        .ct_orig_tuple = true,
        .ct_orig_tuple6 = true,
    };
    return &support;
}

static bool
gl_is_arp_type(ovs_be16 dl_type)
{
    return dl_type == htons(ETH_TYPE_ARP) || dl_type == htons(ETH_TYPE_RARP);
}

/* Appends to 'err' the names of the nonzero bytes' fields of 'rest' (a struct flow that
 * should be all zero). */
static void
describe_leftover(const struct flow *rest, struct ds *err)
{
    static const struct {
        const char *name;
        size_t ofs, len;
    } names[] = {
        {"tunnel", offsetof(struct flow, tunnel), sizeof(struct flow_tnl)},
        {"ct_state", offsetof(struct flow, ct_state), 1},
        {"ct_nw_proto", offsetof(struct flow, ct_nw_proto), 1},
        {"ct_zone", offsetof(struct flow, ct_zone), 2},
        {"ct_mark", offsetof(struct flow, ct_mark), 4},
        {"ct_label", offsetof(struct flow, ct_label), 16},
        {"packet_type", offsetof(struct flow, packet_type), 4},
        {"second vlan", offsetof(struct flow, vlans[1]), sizeof(union flow_vlan_hdr)},
        {"vlan tpid", offsetof(struct flow, vlans[0].tpid), 2},
        {"mpls", offsetof(struct flow, mpls_lse), MEMBER_SIZEOF(struct flow, mpls_lse)},
        {"ct_tuple", offsetof(struct flow, ct_nw_src), 8},
        {"ct_tuple6", offsetof(struct flow, ct_ipv6_src), 32},
        {"nd_target", offsetof(struct flow, nd_target), 16},
        {"nd_sll/arp_sha", offsetof(struct flow, arp_sha), 6},
        {"nd_tll/arp_tha", offsetof(struct flow, arp_tha), 6},
        {"nsh", offsetof(struct flow, nsh), sizeof(struct ovs_key_nsh)},
        {"ct_tp", offsetof(struct flow, ct_tp_src), 4},
        {"igmp_group/nd_reserved", offsetof(struct flow, igmp_group_ip4), 4},
    };
    const uint8_t *p = (const uint8_t *) rest;
    bool any = false;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (!is_all_zeros(p + names[i].ofs, names[i].len)) {
            ds_put_format(err, "%s%s", any ? ", " : "", names[i].name);
            any = true;
        }
    }
    if (!any) {
        ds_put_cstr(err, "a field gldp does not have");
    }
}

int
gl_flow_from_flow(const struct flow *flow, const struct flow_wildcards *wc,
                  struct gl_flow_key *gkey, struct gl_flow_key *gmask, struct ds *err)
{
    /* 'rest' starts as what the match selects (the mask, or for an exact match the key
     * itself); every field we take is cleared from it, and what remains must be zero. */
    struct flow rest = wc ? wc->masks : *flow;
    const uint8_t *fk = (const uint8_t *) flow;
    uint8_t *gk = (uint8_t *) gkey;
    uint8_t *gm = (uint8_t *) gmask;

    memset(gkey, 0, sizeof *gkey);
    if (wc) {
        memset(gmask, 0, sizeof *gmask);
    } else {
        gl_flow_key_exact_mask(gmask);
    }

    bool arp = gl_is_arp_type(flow->dl_type);
    for (size_t i = 0; i < ARRAY_SIZE(gl_fields); i++) {
        const struct gl_field *f = &gl_fields[i];
        if (f->arp_only && !arp) {
            /* For a non-ARP frame these bytes are ND options: leave them in 'rest'. */
            if (!wc) {
                memset(gm + f->gl_ofs, 0, f->len);
            }
            continue;
        }
        if (wc) {
            memcpy(gm + f->gl_ofs, (const uint8_t *) &wc->masks + f->flow_ofs, f->len);
        }
        for (size_t b = 0; b < f->len; b++) {
            gk[f->gl_ofs + b] = fk[f->flow_ofs + b] & gm[f->gl_ofs + b];
        }
        memset((uint8_t *) &rest + f->flow_ofs, 0, f->len);
    }

    /* An exact match without an in_port (OVS's feature probes): in_port is wildcarded. */
    if (!wc && flow->in_port.odp_port == ODPP_NONE) {
        gkey->in_port = 0;
        gmask->in_port = 0;
    }

    /* Ethernet is the only packet type gldp carries. */
    ovs_be32 pt_mask = wc ? wc->masks.packet_type : OVS_BE32_MAX;
    if (!((flow->packet_type ^ htonl(PT_ETH)) & pt_mask)) {
        rest.packet_type = 0;
    }
    /* One 802.1Q tag: TPID 0x8100 (or none). */
    ovs_be16 tpid_mask = wc ? wc->masks.vlans[0].tpid : OVS_BE16_MAX;
    ovs_be16 tpid = flow->vlans[0].tpid & tpid_mask;
    if (!tpid || tpid == (htons(ETH_TYPE_VLAN_8021Q) & tpid_mask)) {
        rest.vlans[0].tpid = 0;
    }
    /* Fields OVS keeps in struct flow that never reach a datapath key. */
    rest.metadata = 0;
    memset(rest.regs, 0, sizeof rest.regs);
    rest.conj_id = 0;
    rest.actset_output = 0;
    rest.pad1[0] = rest.pad1[1] = 0;
    rest.pad2 = 0;
    rest.pad3 = 0;

    if (!is_all_zeros(&rest, sizeof rest)) {
        if (err) {
            ds_put_cstr(err, "gldp cannot match on ");
            describe_leftover(&rest, err);
        }
        return EINVAL;
    }
    return 0;
}

int
gl_flow_from_odp(const struct nlattr *key, size_t key_len, const struct nlattr *mask,
                 size_t mask_len, struct gl_flow_key *gkey, struct gl_flow_key *gmask,
                 struct ds *err)
{
    struct flow flow;
    char *perr = NULL;

    enum odp_key_fitness fit = odp_flow_key_to_flow(key, key_len, &flow, &perr);
    if (fit != ODP_FIT_PERFECT) {
        if (err) {
            ds_put_format(err, "flow key: %s%s%s", odp_key_fitness_to_string(fit),
                          perr ? ": " : "", perr ? perr : "");
        }
        free(perr);
        return EINVAL;
    }
    if (!mask_len) {
        /* An exact match (OVS's feature probes; the drop flow a handler installs for a
         * packet from a port no bridge has yet). Stored as gldp will dump it back, i.e.
         * with the mask normalised through the ODP mask encoding (nw_frag 2 bits, ICMP
         * type/code 8 bits, tcp_flags only for TCP, ...): a revalidator that adopts the
         * dumped flow and modifies it then names the very same match. */
        struct gl_flow_key k, m;
        int error = gl_flow_from_flow(&flow, NULL, &k, &m, err);
        if (error) {
            return error;
        }
        struct odputil_keybuf key_stub, mask_stub;
        struct ofpbuf kb, mb;
        ofpbuf_use_stack(&kb, &key_stub, sizeof key_stub);
        ofpbuf_use_stack(&mb, &mask_stub, sizeof mask_stub);
        gl_flow_to_odp(&k, &m, &kb, &mb);
        return gl_flow_from_odp(kb.data, kb.size, mb.data, mb.size, gkey, gmask, err);
    }
    struct flow_wildcards wc;
    fit = odp_flow_key_to_mask(mask, mask_len, &wc, &flow, &perr);
    if (fit != ODP_FIT_PERFECT) {
        if (err) {
            ds_put_format(err, "flow mask: %s%s%s", odp_key_fitness_to_string(fit),
                          perr ? ": " : "", perr ? perr : "");
        }
        free(perr);
        return EINVAL;
    }
    return gl_flow_from_flow(&flow, &wc, gkey, gmask, err);
}

void
gl_flow_to_flow(const struct gl_flow_key *gkey, const struct gl_flow_key *gmask,
                struct flow *flow, struct flow_wildcards *wc)
{
    const uint8_t *gk = (const uint8_t *) gkey;
    const uint8_t *gm = (const uint8_t *) gmask;

    memset(flow, 0, sizeof *flow);
    if (wc) {
        memset(wc, 0, sizeof *wc);
    }
    bool arp = gl_is_arp_type(gkey->eth_type);
    for (size_t i = 0; i < ARRAY_SIZE(gl_fields); i++) {
        const struct gl_field *f = &gl_fields[i];
        if (f->arp_only && !arp) {
            continue;
        }
        memcpy((uint8_t *) flow + f->flow_ofs, gk + f->gl_ofs, f->len);
        if (wc && gm) {
            memcpy((uint8_t *) &wc->masks + f->flow_ofs, gm + f->gl_ofs, f->len);
        }
    }
    flow->packet_type = htonl(PT_ETH);
    if (gkey->vlan_tci & htons(VLAN_CFI)) {
        flow->vlans[0].tpid = htons(ETH_TYPE_VLAN_8021Q);
    }
    if (wc) {
        wc->masks.packet_type = OVS_BE32_MAX;
        if (gm && gmask->vlan_tci) {
            wc->masks.vlans[0].tpid = OVS_BE16_MAX;
        }
    }
}

void
gl_flow_to_odp(const struct gl_flow_key *gkey, const struct gl_flow_key *gmask,
               struct ofpbuf *key_buf, struct ofpbuf *mask_buf)
{
    struct flow flow;
    struct flow_wildcards wc;

    gl_flow_to_flow(gkey, gmask, &flow, &wc);
    struct odp_flow_key_parms parms = {
        .flow = &flow,
        .mask = gmask ? &wc.masks : NULL,
        .support = *gl_flow_odp_support(),
    };
    size_t key_ofs = key_buf->size;
    odp_flow_key_from_flow(&parms, key_buf);
    if (mask_buf) {
        /* The mask encoder looks at the key it belongs to (alone in its buffer). */
        struct ofpbuf key_only;
        ofpbuf_use_const(&key_only, (const uint8_t *) key_buf->data + key_ofs,
                         key_buf->size - key_ofs);
        parms.key_buf = &key_only;
        odp_flow_key_from_mask(&parms, mask_buf);
    }
}
