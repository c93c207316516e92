/* gl-flow.h — OVS flow keys and masks <-> gldp's gl_flow_key.
 *
 * Purpose: the one place where OVS's vocabulary (ODP netlink keys and masks, parsed into
 * OVS's struct flow with its own odp_flow_key_to_flow / odp_flow_key_to_mask) meets ours
 * (struct gl_flow_key = gl::flow::FlowKey). The mapping is a single table of
 * {struct flow field, gl_flow_key field}: both sides use the same byte order for every
 * field (metadata host order, packet fields network order), so each entry is a copy.
 * Whatever a mask selects that the table does not cover (tunnels, MPLS, conntrack, ND,
 * NSH, a second VLAN tag, a non-Ethernet packet type) is refused with EINVAL, which is
 * how OVS's feature probes learn what gldp does not support.
 *
 * Thread-safety: reentrant. Complexity: O(size of struct flow) per conversion.
 */
#ifndef GL_OVS_GL_FLOW_H
#define GL_OVS_GL_FLOW_H 1

#include <stdbool.h>
#include <stddef.h>

#include "dataplane/api/gl_dpapi.h"
#include "odp-util.h"

struct flow;
struct flow_wildcards;
struct ofpbuf;
struct ds;

/* What gldp supports, in OVS's terms (used to build keys OVS will accept). */
const struct odp_support *gl_flow_odp_support(void);

/* ODP key (+ optional mask; mask_len 0 = exact match on the key) -> gl key + mask.
 * Returns 0 or EINVAL; on EINVAL a reason is appended to 'err' when it is nonnull. */
int gl_flow_from_odp(const struct nlattr *key, size_t key_len, const struct nlattr *mask,
                     size_t mask_len, struct gl_flow_key *gkey, struct gl_flow_key *gmask,
                     struct ds *err);

/* struct flow (+ wildcards, NULL = exact) -> gl key + mask; EINVAL for what gldp lacks. */
int gl_flow_from_flow(const struct flow *flow, const struct flow_wildcards *wc,
                      struct gl_flow_key *gkey, struct gl_flow_key *gmask, struct ds *err);

/* gl key (+ mask, NULL = exact) -> struct flow (+ wildcards when wc is nonnull). */
void gl_flow_to_flow(const struct gl_flow_key *gkey, const struct gl_flow_key *gmask,
                     struct flow *flow, struct flow_wildcards *wc);

/* gl key + mask -> ODP key and ODP mask appended to 'key_buf' / 'mask_buf' (mask_buf may
 * be NULL: key only). *key_ofs / *mask_ofs receive where they start in the buffers. */
void gl_flow_to_odp(const struct gl_flow_key *gkey, const struct gl_flow_key *gmask,
                    struct ofpbuf *key_buf, struct ofpbuf *mask_buf);

#endif
