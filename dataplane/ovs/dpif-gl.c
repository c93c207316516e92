/* dpif-gl.c — the OVS datapath provider for gldp: datapath type "gl".
 *
 * Purpose: makes gldp a datapath of ovs-vswitchd, the way dpif-netlink makes the kernel
 * module one. OVS's ofproto/xlate computes megaflows; this file installs them into gldp
 * over the datapath API (gl_dpapi.h), receives misses and userspace() upcalls, executes
 * packets and reports ports, flows and counters. Keys go through gl-flow.c; actions are
 * the kernel's netlink encoding on both sides and pass through unchanged; UFIDs are
 * OVS's. Design notes: dataplane/ovs/README.md.
 *
 * Connections to gldp: a gl_dp handle is single-threaded, OVS is not (handler and
 * revalidator threads share the backer's dpif). So each struct dpif_gl keeps
 *   - one handle per upcall handler, subscribed with pid = handler index + 1 (gldp
 *     spreads misses over the subscribers by flow hash, userspace() upcalls go by pid);
 *   - a pool of request handles: an operation borrows one, returns it after (a thread
 *     that finds the pool empty opens a new one); flow dumps hold one for their life.
 * A handle that failed at the transport level (gldp gone) is dropped, not pooled: the
 * next operation connects afresh, so a restarted gldp is picked up.
 *
 * Thread-safety: as OVS requires of a dpif provider (see lib/dpif-provider.h).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>

#include "dataplane/api/gl_dpapi.h"
#include "ct-dpif.h"
#include "dp-packet.h"
#include "dpif-provider.h"
#include "flow.h"
#include "gl-flow.h"
#include "netdev-gl.h"
#include "netdev-provider.h"
#include "netlink.h"
#include "odp-util.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/list.h"
#include "openvswitch/ofpbuf.h"
#include "openvswitch/poll-loop.h"
#include "openvswitch/vlog.h"
#include "ovs-thread.h"
#include "seq.h"
#include "sset.h"
#include "timeval.h"
#include "util.h"

VLOG_DEFINE_THIS_MODULE(dpif_gl);
static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

#define GL_DATAPATH_TYPE "gl"
/* Flows per batched put/del request and per dump_next call. */
#define GL_OP_BATCH 64
#define GL_DUMP_BATCH 50
/* Headroom kept in front of an upcall's packet (vlan push etc. in userspace). */
#define GL_UPCALL_HEADROOM 128

struct gl_handler {
    struct gl_dp *dp; /* NULL while gldp cannot be reached. */
    uint32_t pid;
    long long int retry_at; /* When to try reconnecting a NULL 'dp'. */
};

struct dpif_gl {
    struct dpif dpif;
    char *socket;

    struct ovs_mutex pool_mutex;
    struct gl_dp **pool OVS_GUARDED; /* Idle request handles. */
    size_t n_pool OVS_GUARDED;
    size_t pool_cap OVS_GUARDED;

    struct ovs_rwlock upcall_lock; /* handlers_set writes, recv reads. */
    struct gl_handler *handlers;
    uint32_t n_handlers;
    bool recv_enabled;

    uint64_t last_port_seq;
    uint64_t boot_id; /* Of the gldp we last talked to. */
    long long int next_boot_check;
    /* gldp's ports as last seen by run() (main thread only): what a restarted gldp gets
     * back, with the same numbers, before ofproto notices anything. */
    struct gl_port_info *known_ports;
    size_t n_known_ports;
};

/* Bumped whenever a port is added or removed through any dpif-gl in this process. */
static struct seq *gl_port_seq;

static struct dpif_gl *
dpif_gl_cast(const struct dpif *dpif)
{
    return CONTAINER_OF(dpif, struct dpif_gl, dpif);
}

static bool
is_transport_error(int error)
{
    return error == EPIPE || error == ECONNRESET || error == ENOTCONN ||
           error == ETIMEDOUT || error == ECONNREFUSED || error == EPROTO ||
           error == EBADMSG || error == EBADF;
}

/* ---- request handles -------------------------------------------------------------- */

/* Borrows a request handle; NULL (and *errorp) when gldp cannot be reached. */
static struct gl_dp *
conn_get(const struct dpif_gl *d_, int *errorp)
{
    struct dpif_gl *d = CONST_CAST(struct dpif_gl *, d_);
    struct gl_dp *dp = NULL;

    ovs_mutex_lock(&d->pool_mutex);
    if (d->n_pool) {
        dp = d->pool[--d->n_pool];
    }
    ovs_mutex_unlock(&d->pool_mutex);
    if (dp) {
        return dp;
    }
    int error = gl_dp_open(d->socket, &dp);
    if (error) {
        VLOG_WARN_RL(&rl, "%s: cannot connect to gldp at %s: %s", dpif_name(&d->dpif),
                     d->socket, gl_dp_last_error(NULL));
        *errorp = error;
        return NULL;
    }
    return dp;
}

/* Returns a borrowed handle; 'error' is the last result obtained with it: a transport
 * error closes the handle instead of pooling it. */
static void
conn_put(const struct dpif_gl *d_, struct gl_dp *dp, int error)
{
    struct dpif_gl *d = CONST_CAST(struct dpif_gl *, d_);
    if (!dp) {
        return;
    }
    if (error && is_transport_error(error)) {
        gl_dp_close(dp);
        return;
    }
    ovs_mutex_lock(&d->pool_mutex);
    if (d->n_pool == d->pool_cap) {
        d->pool = x2nrealloc(d->pool, &d->pool_cap, sizeof *d->pool);
    }
    d->pool[d->n_pool++] = dp;
    ovs_mutex_unlock(&d->pool_mutex);
}

static void
gl_ufid_from_ovs(const ovs_u128 *u, struct gl_ufid *g)
{
    g->lo = u->u64.lo;
    g->hi = u->u64.hi;
}

static void
gl_ufid_to_ovs(const struct gl_ufid *g, ovs_u128 *u)
{
    u->u64.lo = g->lo;
    u->u64.hi = g->hi;
}

static void
stats_from_gl(const struct gl_flow_stats *g, struct dpif_flow_stats *s)
{
    s->n_packets = g->packets;
    s->n_bytes = g->bytes;
    s->used = g->used_ms; /* CLOCK_MONOTONIC ms, as OVS's time_msec(). */
    s->tcp_flags = ntohs(g->tcp_flags);
}

/* ---- class-level -------------------------------------------------------------------- */

static int
dpif_gl_init(void)
{
    gl_port_seq = seq_create();
    netdev_gl_register();
    return 0;
}

static int
dpif_gl_enumerate(struct sset *all_dps, const struct dpif_class *class OVS_UNUSED)
{
    /* One datapath per gldp; it exists when gldp answers. */
    struct gl_dp *dp;
    if (!gl_dp_open(gl_ovs_socket_path(), &dp)) {
        sset_add(all_dps, "ovs-" GL_DATAPATH_TYPE);
        gl_dp_close(dp);
    }
    return 0;
}

static const char *
dpif_gl_port_open_type(const struct dpif_class *class OVS_UNUSED, const char *type)
{
    if (!strcmp(type, "internal")) {
        return NETDEV_GL_TYPE_INTERNAL;
    }
    if (!strcmp(type, "system") || !type[0]) {
        return NETDEV_GL_TYPE_SYSTEM;
    }
    if (!strcmp(type, "gl")) {
        return NETDEV_GL_TYPE_DPDK;
    }
    return type; /* dpdk, gl-esp */
}

static int
dpif_gl_open(const struct dpif_class *class, const char *name, bool create OVS_UNUSED,
             struct dpif **dpifp)
{
    const char *socket = gl_ovs_socket_path();
    struct gl_dp *dp;
    struct gl_dp_info info;

    int error = gl_dp_open(socket, &dp);
    if (error) {
        VLOG_ERR("%s: cannot connect to gldp at %s (set GLDP_SOCKET): %s", name, socket,
                 gl_dp_last_error(NULL));
        return error;
    }
    error = gl_dp_get_info(dp, &info);
    if (error) {
        VLOG_ERR("%s: gldp at %s: %s", name, socket, gl_dp_last_error(dp));
        gl_dp_close(dp);
        return error;
    }

    struct dpif_gl *d = xzalloc(sizeof *d);
    dpif_init(&d->dpif, class, name, 0, 0);
    d->socket = xstrdup(socket);
    ovs_mutex_init(&d->pool_mutex);
    ovs_rwlock_init(&d->upcall_lock);
    d->last_port_seq = seq_read(gl_port_seq);
    d->boot_id = info.boot_id;
    conn_put(d, dp, 0);
    VLOG_INFO("%s: %s at %s (%" PRIu32 " PMDs, %" PRIu32 " ports, %" PRIu64 " flows)", name,
              info.version, socket, info.n_pmds, info.n_ports, info.n_flows);
    *dpifp = &d->dpif;
    return 0;
}

static void
close_handlers(struct dpif_gl *d) OVS_REQ_WRLOCK(d->upcall_lock)
{
    for (uint32_t i = 0; i < d->n_handlers; i++) {
        gl_dp_close(d->handlers[i].dp);
    }
    free(d->handlers);
    d->handlers = NULL;
    d->n_handlers = 0;
}

static void
dpif_gl_close(struct dpif *dpif)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);

    ovs_rwlock_wrlock(&d->upcall_lock);
    close_handlers(d);
    ovs_rwlock_unlock(&d->upcall_lock);
    for (size_t i = 0; i < d->n_pool; i++) {
        gl_dp_close(d->pool[i]);
    }
    free(d->pool);
    gl_dp_free(d->known_ports);
    ovs_mutex_destroy(&d->pool_mutex);
    ovs_rwlock_destroy(&d->upcall_lock);
    free(d->socket);
    free(d);
}

/* Deleting the datapath: gldp stays, but loses every flow and port. */
static int
dpif_gl_destroy(struct dpif *dpif)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_flow_flush(dp);
    struct gl_port_info *ports = NULL;
    size_t n = 0;
    if (!error) {
        error = gl_dp_port_list(dp, &ports, &n);
    }
    for (size_t i = 0; !error && i < n; i++) {
        error = gl_dp_port_del(dp, ports[i].port_no);
    }
    gl_dp_free(ports);
    conn_put(d, dp, error);
    seq_change(gl_port_seq);
    return error;
}

/* Notices a restarted gldp (its boot id changes): OVS then re-adds ports and flows. */
static bool
dpif_gl_run(struct dpif *dpif)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    if (time_msec() < d->next_boot_check) {
        return false;
    }
    d->next_boot_check = time_msec() + 1000;

    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    struct gl_dp_info info;
    if (dp) {
        error = gl_dp_get_info(dp, &info);
        if (error) {
            conn_put(d, dp, error);
            dp = NULL;
        }
    }
    if (!dp) {
        /* gldp is away (restarting?): look again soon, so that its ports, and with them
         * the traffic, are back within 100 ms of its return rather than a second. */
        d->next_boot_check = time_msec() + 100;
        return false;
    }
    if (info.boot_id == d->boot_id) {
        struct gl_port_info *ports = NULL;
        size_t n = 0;
        error = gl_dp_port_list(dp, &ports, &n);
        if (!error) {
            gl_dp_free(d->known_ports);
            d->known_ports = ports;
            d->n_known_ports = n;
        }
        conn_put(d, dp, error);
        return false;
    }
    {
        VLOG_WARN("%s: gldp restarted (boot id %" PRIx64 " -> %" PRIx64
                  "): re-adding %" PRIuSIZE " ports, revalidating flows",
                  dpif_name(dpif), d->boot_id, info.boot_id, d->n_known_ports);
        d->boot_id = info.boot_id;
        for (size_t i = 0; i < d->n_known_ports && !is_transport_error(error); i++) {
            const struct gl_port_info *p = &d->known_ports[i];
            error = gl_dp_port_add(dp, p->name, p->devargs, p->port_no, p->n_rxq, 0, NULL);
            if (error && error != EEXIST && error != EBUSY) {
                VLOG_WARN("%s: re-adding port %s: %s", dpif_name(dpif), p->name,
                          gl_dp_last_error(dp));
            }
        }
        netdev_gl_ports_changed();
    }
    conn_put(d, dp, is_transport_error(error) ? error : 0);
    {
        /* The port set changed. Upcall handlers notice their dead connections by
         * themselves (the socket becomes readable) and subscribe again: closing them here
         * would leave their threads polling a closed descriptor. */
        seq_change(gl_port_seq);
        return true; /* Tells ofproto to revalidate everything. */
    }
    return false;
}

static void
dpif_gl_wait(struct dpif *dpif)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    poll_timer_wait_until(d->next_boot_check);
}

static int
dpif_gl_get_stats(const struct dpif *dpif, struct dpif_dp_stats *stats)
{
    const struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    struct gl_dp_stats *s = NULL;
    error = gl_dp_get_stats(dp, &s);
    conn_put(d, dp, error);
    if (error) {
        return error;
    }
    memset(stats, 0, sizeof *stats);
    stats->n_flows = s->n_flows;
    stats->n_lost = s->upcalls_lost;
    for (uint32_t i = 0; i < s->n_pmds; i++) {
        stats->n_hit += s->pmds[i].emc_hits + s->pmds[i].megaflow_hits;
        stats->n_missed += s->pmds[i].misses;
    }
    stats->n_masks = UINT32_MAX;
    stats->n_mask_hit = UINT64_MAX;
    stats->n_cache_hit = UINT64_MAX;
    gl_dp_free(s);
    return 0;
}

static int
dpif_gl_set_features(struct dpif *dpif OVS_UNUSED, uint32_t features OVS_UNUSED)
{
    return EOPNOTSUPP;
}

/* ---- ports -------------------------------------------------------------------------- */

static void
fill_dpif_port(const struct gl_port_info *p, struct dpif_port *port)
{
    if (port) {
        port->name = xstrdup(p->name);
        port->type = xstrdup(netdev_gl_type_of(p->name, p->devargs));
        port->port_no = u32_to_odp(p->port_no);
    }
}

static int
dpif_gl_port_add(struct dpif *dpif, struct netdev *netdev, odp_port_t *port_nop)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    const char *name = netdev_get_name(netdev);
    char devargs[GL_DP_DEVARGS_LEN];
    uint16_t n_rxq = 0;

    int error = netdev_gl_get_port_config(netdev, devargs, sizeof devargs, &n_rxq);
    if (error == EOPNOTSUPP) {
        VLOG_WARN("%s: port %s: type %s is not supported by datapath type gl (use "
                  "internal, system, dpdk or gl)",
                  dpif_name(dpif), name, netdev_get_type(netdev));
        return EOPNOTSUPP;
    } else if (error) {
        VLOG_WARN("%s: port %s: no DPDK devargs configured", dpif_name(dpif), name);
        return error;
    }

    error = netdev_gl_prepare_system_port(netdev);
    if (error) {
        VLOG_WARN("%s: port %s: %s", dpif_name(dpif), name, ovs_strerror(error));
        return error == ENXIO ? ENODEV : error;
    }
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    uint32_t want = *port_nop == ODPP_NONE ? GL_PORT_ANY : odp_to_u32(*port_nop);
    struct gl_port_info info;
    error = gl_dp_port_add(dp, name, devargs, want, n_rxq, 0, &info);
    if (error) {
        VLOG_WARN("%s: adding port %s (%s) to gldp failed: %s", dpif_name(dpif), name,
                  devargs, gl_dp_last_error(dp));
    } else {
        *port_nop = u32_to_odp(info.port_no);
        VLOG_INFO("%s: added port %s as gldp port %" PRIu32 " (%s)", dpif_name(dpif), name,
                  info.port_no, devargs);
        /* mtu_request, set before the port existed in gldp. A device that cannot change
         * its MTU keeps the port (as OVS keeps a port whose MTU cannot be set). */
        int mtu = netdev_gl_get_mtu_request(netdev);
        if (mtu && mtu != info.mtu && gl_dp_port_set_mtu(dp, name, mtu, NULL)) {
            VLOG_WARN("%s: port %s: cannot set MTU %d: %s", dpif_name(dpif), name, mtu,
                      gl_dp_last_error(dp));
        }
    }
    conn_put(d, dp, error);
    if (!error) {
        seq_change(gl_port_seq);
        netdev_gl_ports_changed();
    }
    return error == ENOENT ? ENODEV : error;
}

static int
dpif_gl_port_del(struct dpif *dpif, odp_port_t port_no)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_port_del(dp, odp_to_u32(port_no));
    conn_put(d, dp, error);
    if (!error) {
        seq_change(gl_port_seq);
        netdev_gl_ports_changed();
    }
    return error;
}

/* While gldp cannot be reached (it died and is being restarted), its ports are answered
 * from what run() last saw: the bridge must not conclude that they are gone. If it did, it
 * would delete the interfaces and add them back with new OpenFlow port numbers once gldp
 * returns, and every OpenFlow rule that names a port by number would then miss (measured
 * with bench/faults.py: kill -9 of gldp cut a stream for good). run() re-adds them to the
 * restarted gldp under the same numbers. Main thread only, as known_ports. */
static const struct gl_port_info *
known_port(const struct dpif_gl *d, const char *name, uint32_t port_no)
{
    for (size_t i = 0; i < d->n_known_ports; i++) {
        const struct gl_port_info *p = &d->known_ports[i];
        if (name ? !strcmp(p->name, name) : p->port_no == port_no) {
            return p;
        }
    }
    return NULL;
}

static int
dpif_gl_port_query_by_number(const struct dpif *dpif, odp_port_t port_no,
                             struct dpif_port *port)
{
    const struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_port_info info;
    struct gl_dp *dp = conn_get(d, &error);
    if (dp) {
        error = gl_dp_port_get(dp, odp_to_u32(port_no), &info);
        conn_put(d, dp, error);
    }
    if (is_transport_error(error)) {
        const struct gl_port_info *k = known_port(d, NULL, odp_to_u32(port_no));
        if (k) {
            fill_dpif_port(k, port);
            return 0;
        }
    }
    if (!error) {
        fill_dpif_port(&info, port);
    }
    return error;
}

static int
dpif_gl_port_query_by_name(const struct dpif *dpif, const char *devname,
                           struct dpif_port *port)
{
    const struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    if (strlen(devname) >= GL_DP_NAME_LEN) {
        return ENODEV;
    }
    struct gl_port_info info;
    struct gl_dp *dp = conn_get(d, &error);
    if (dp) {
        error = gl_dp_port_get_by_name(dp, devname, &info);
        conn_put(d, dp, error);
    }
    if (is_transport_error(error)) {
        const struct gl_port_info *k = known_port(d, devname, 0);
        if (k) {
            fill_dpif_port(k, port);
            return 0;
        }
    }
    if (!error) {
        fill_dpif_port(&info, port);
    }
    return error == ENOENT ? ENODEV : error;
}

static uint32_t
dpif_gl_port_get_pid(const struct dpif *dpif, odp_port_t port_no)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    uint32_t pid = 0;
    ovs_rwlock_rdlock(&d->upcall_lock);
    if (d->n_handlers) {
        pid = odp_to_u32(port_no) % d->n_handlers + 1;
    }
    ovs_rwlock_unlock(&d->upcall_lock);
    return pid;
}

struct gl_port_dump {
    struct gl_port_info *ports;
    size_t n, next;
    char *name, *type; /* Returned by the last dump_next. */
};

static int
dpif_gl_port_dump_start(const struct dpif *dpif, void **statep)
{
    const struct dpif_gl *d = dpif_gl_cast(dpif);
    struct gl_port_dump *s = xzalloc(sizeof *s);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (dp) {
        error = gl_dp_port_list(dp, &s->ports, &s->n);
        conn_put(d, dp, error);
    }
    if (error) {
        /* An unreachable gldp: the ports it had (see known_port()), which run() gives
         * back to it when it returns. */
        VLOG_WARN_RL(&rl, "%s: port dump: %s (answering the %" PRIuSIZE " ports last seen)",
                     dpif_name(dpif), ovs_strerror(error), d->n_known_ports);
        gl_dp_free(s->ports);
        s->ports = NULL;
        s->n = 0;
        if (is_transport_error(error) && d->n_known_ports) {
            s->ports = xmemdup(d->known_ports, d->n_known_ports * sizeof *d->known_ports);
            s->n = d->n_known_ports;
        }
    }
    *statep = s;
    return 0;
}

static int
dpif_gl_port_dump_next(const struct dpif *dpif OVS_UNUSED, void *state,
                       struct dpif_port *port)
{
    struct gl_port_dump *s = state;
    free(s->name);
    free(s->type);
    s->name = s->type = NULL;
    if (s->next >= s->n) {
        return EOF;
    }
    const struct gl_port_info *p = &s->ports[s->next++];
    s->name = xstrdup(p->name);
    s->type = xstrdup(netdev_gl_type_of(p->name, p->devargs));
    port->name = s->name;
    port->type = s->type;
    port->port_no = u32_to_odp(p->port_no);
    return 0;
}

static int
dpif_gl_port_dump_done(const struct dpif *dpif OVS_UNUSED, void *state)
{
    struct gl_port_dump *s = state;
    free(s->name);
    free(s->type);
    gl_dp_free(s->ports);
    free(s);
    return 0;
}

static int
dpif_gl_port_poll(const struct dpif *dpif, char **devnamep OVS_UNUSED)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    uint64_t seq = seq_read(gl_port_seq);
    if (seq != d->last_port_seq) {
        d->last_port_seq = seq;
        return ENOBUFS; /* "Something changed; dump the ports again." */
    }
    return EAGAIN;
}

static void
dpif_gl_port_poll_wait(const struct dpif *dpif)
{
    const struct dpif_gl *d = dpif_gl_cast(dpif);
    seq_wait(gl_port_seq, d->last_port_seq);
}

/* ---- flows -------------------------------------------------------------------------- */

static int
dpif_gl_flow_flush(struct dpif *dpif)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_flow_flush(dp);
    conn_put(d, dp, error);
    return error;
}

/* Fills 'out' from gldp's 'f'; key, mask and actions are appended to the buffers (which
 * must not move afterwards: callers size them). The buffers may be one and the same
 * (flow_get puts everything into the caller's one buffer). */
static void
dpif_flow_from_gl(const struct gl_flow *f, bool terse, struct ofpbuf *keybuf,
                  struct ofpbuf *maskbuf, struct ofpbuf *actbuf, struct dpif_flow *out)
{
    memset(out, 0, sizeof *out);
    if (!terse) {
        struct odputil_keybuf key_stub, mask_stub;
        struct ofpbuf key, mask;
        ofpbuf_use_stack(&key, &key_stub, sizeof key_stub);
        ofpbuf_use_stack(&mask, &mask_stub, sizeof mask_stub);
        gl_flow_to_odp(&f->key, &f->mask, &key, &mask);
        out->key = ofpbuf_put(keybuf, key.data, key.size);
        out->key_len = key.size;
        out->mask = ofpbuf_put(maskbuf, mask.data, mask.size);
        out->mask_len = mask.size;
        out->actions = ofpbuf_put(actbuf, f->actions, f->actions_len);
        out->actions_len = f->actions_len;
    }
    gl_ufid_to_ovs(&f->ufid, &out->ufid);
    out->ufid_present = true;
    out->pmd_id = PMD_ID_NULL;
    stats_from_gl(&f->stats, &out->stats);
    out->attrs.offloaded = false;
    out->attrs.dp_layer = "gl";
    out->attrs.dp_extra_info = NULL;
}

struct dpif_gl_flow_dump {
    struct dpif_flow_dump up;
    struct ovs_mutex mutex;
    struct gl_dp *dp OVS_GUARDED; /* Borrowed for the dump's life. */
    struct gl_flow_dump *dump OVS_GUARDED;
    int status OVS_GUARDED; /* First error, 0 while it goes on. */
    bool done OVS_GUARDED;
};

struct dpif_gl_flow_dump_thread {
    struct dpif_flow_dump_thread up;
    struct dpif_gl_flow_dump *dump;
    struct odputil_keybuf keys[GL_DUMP_BATCH];
    struct odputil_keybuf masks[GL_DUMP_BATCH];
    uint8_t actions[GL_DUMP_BATCH][GL_DP_MAX_ACTIONS];
};

static struct dpif_gl_flow_dump *
dump_cast(struct dpif_flow_dump *dump)
{
    return CONTAINER_OF(dump, struct dpif_gl_flow_dump, up);
}

static struct dpif_flow_dump *
dpif_gl_flow_dump_create(const struct dpif *dpif, bool terse,
                         struct dpif_flow_dump_types *types OVS_UNUSED)
{
    const struct dpif_gl *d = dpif_gl_cast(dpif);
    struct dpif_gl_flow_dump *dump = xzalloc(sizeof *dump);

    dpif_flow_dump_init(&dump->up, dpif);
    dump->up.terse = terse;
    ovs_mutex_init(&dump->mutex);
    int error = 0;
    dump->dp = conn_get(d, &error);
    if (dump->dp) {
        error = gl_dp_flow_dump_start(dump->dp, terse ? GL_FLOW_DUMP_NO_ACTIONS : 0,
                                      &dump->dump);
    }
    if (error) {
        dump->status = error;
        dump->done = true;
    }
    return &dump->up;
}

static int
dpif_gl_flow_dump_destroy(struct dpif_flow_dump *dump_)
{
    struct dpif_gl_flow_dump *dump = dump_cast(dump_);
    const struct dpif_gl *d = dpif_gl_cast(dump->up.dpif);
    int error = dump->status;
    if (dump->dump) {
        int e = gl_dp_flow_dump_done(dump->dump);
        error = error ? error : e;
    }
    conn_put(d, dump->dp, error);
    ovs_mutex_destroy(&dump->mutex);
    free(dump);
    return error;
}

static struct dpif_flow_dump_thread *
dpif_gl_flow_dump_thread_create(struct dpif_flow_dump *dump_)
{
    struct dpif_gl_flow_dump_thread *t = xmalloc(sizeof *t);
    dpif_flow_dump_thread_init(&t->up, dump_);
    t->dump = dump_cast(dump_);
    return &t->up;
}

static void
dpif_gl_flow_dump_thread_destroy(struct dpif_flow_dump_thread *thread)
{
    free(CONTAINER_OF(thread, struct dpif_gl_flow_dump_thread, up));
}

static int
dpif_gl_flow_dump_next(struct dpif_flow_dump_thread *thread_, struct dpif_flow *flows,
                       int max_flows)
{
    struct dpif_gl_flow_dump_thread *t =
        CONTAINER_OF(thread_, struct dpif_gl_flow_dump_thread, up);
    struct dpif_gl_flow_dump *dump = t->dump;
    int n = 0;

    max_flows = MIN(max_flows, GL_DUMP_BATCH);
    ovs_mutex_lock(&dump->mutex);
    while (!dump->done && n < max_flows) {
        struct gl_flow f;
        int error = gl_dp_flow_dump_next(dump->dump, &f);
        if (error) {
            dump->done = true;
            if (error != ENOENT) {
                dump->status = error;
            }
            break;
        }
        struct ofpbuf keybuf, maskbuf, actbuf;
        ofpbuf_use_stack(&keybuf, &t->keys[n], sizeof t->keys[n]);
        ofpbuf_use_stack(&maskbuf, &t->masks[n], sizeof t->masks[n]);
        ofpbuf_use_stack(&actbuf, t->actions[n], sizeof t->actions[n]);
        dpif_flow_from_gl(&f, dump->up.terse, &keybuf, &maskbuf, &actbuf, &flows[n]);
        n++;
    }
    ovs_mutex_unlock(&dump->mutex);
    return n;
}

/* ---- operate ------------------------------------------------------------------------ */

static void
log_flow_error(const struct dpif *dpif, const char *what, const struct nlattr *key,
               size_t key_len, const struct nlattr *mask, size_t mask_len, int error,
               const char *msg)
{
    if (VLOG_DROP_WARN(&rl)) {
        return;
    }
    struct ds s = DS_EMPTY_INITIALIZER;
    odp_flow_format(key, key_len, mask, mask_len, NULL, &s, false);
    VLOG_WARN("%s: %s %s failed (%s): %s", dpif_name(dpif), what, ds_cstr(&s),
              ovs_strerror(error), msg);
    ds_destroy(&s);
}

static const ovs_u128 *
op_ufid(const ovs_u128 *ufid, const struct nlattr *key, size_t key_len, ovs_u128 *tmp)
{
    if (ufid) {
        return ufid;
    }
    odp_flow_key_hash(key, key_len, tmp);
    return tmp;
}

/* Puts ops[0..n) (all DPIF_OP_FLOW_PUT) in one batch. */
static void
operate_puts(struct dpif_gl *d, struct gl_dp **dpp, int *conn_error, struct dpif_op **ops,
             size_t n)
{
    struct gl_flow_put puts[GL_OP_BATCH];
    struct gl_flow_result results[GL_OP_BATCH];
    size_t idx[GL_OP_BATCH];
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        struct dpif_flow_put *put = &ops[i]->flow_put;
        struct gl_flow_put *p = &puts[m];
        struct ds err = DS_EMPTY_INITIALIZER;
        ovs_u128 tmp;

        memset(p, 0, sizeof *p);
        int error = gl_flow_from_odp(put->key, put->key_len, put->mask, put->mask_len,
                                     &p->key, &p->mask, &err);
        if (error) {
            ops[i]->error = error;
            if (!(put->flags & DPIF_FP_PROBE)) {
                log_flow_error(&d->dpif, "put", put->key, put->key_len, put->mask,
                               put->mask_len, error, ds_cstr(&err));
            }
            ds_destroy(&err);
            continue;
        }
        ds_destroy(&err);
        gl_ufid_from_ovs(op_ufid(put->ufid, put->key, put->key_len, &tmp), &p->ufid);
        p->flags = (put->flags & DPIF_FP_CREATE ? GL_FLOW_PUT_CREATE : 0) |
                   (put->flags & DPIF_FP_MODIFY ? GL_FLOW_PUT_MODIFY : 0) |
                   (put->flags & DPIF_FP_ZERO_STATS ? GL_FLOW_PUT_ZERO_STATS : 0);
        p->actions = put->actions;
        p->actions_len = put->actions_len;
        idx[m++] = i;
    }
    if (!m) {
        return;
    }
    if (!*dpp) {
        *dpp = conn_get(d, conn_error);
    }
    int error = *dpp ? gl_dp_flow_put(*dpp, puts, m, results) : *conn_error;
    if (error && *dpp) {
        *conn_error = error;
    }
    for (size_t j = 0; j < m; j++) {
        struct dpif_op *op = ops[idx[j]];
        struct dpif_flow_put *put = &op->flow_put;
        op->error = error ? error : results[j].error;
        if (!op->error && put->stats) {
            if (put->flags & DPIF_FP_MODIFY) {
                stats_from_gl(&results[j].stats, put->stats);
            } else {
                memset(put->stats, 0, sizeof *put->stats);
            }
        }
        if (op->error && !error && !(put->flags & DPIF_FP_PROBE) && op->error != EEXIST) {
            log_flow_error(&d->dpif, "put", put->key, put->key_len, put->mask,
                           put->mask_len, op->error, results[j].message);
        }
    }
}

static void
operate_dels(struct dpif_gl *d, struct gl_dp **dpp, int *conn_error, struct dpif_op **ops,
             size_t n)
{
    struct gl_ufid ufids[GL_OP_BATCH];
    struct gl_flow_result results[GL_OP_BATCH];

    for (size_t i = 0; i < n; i++) {
        struct dpif_flow_del *del = &ops[i]->flow_del;
        ovs_u128 tmp;
        gl_ufid_from_ovs(op_ufid(del->ufid, del->key, del->key_len, &tmp), &ufids[i]);
    }
    if (!*dpp) {
        *dpp = conn_get(d, conn_error);
    }
    int error = *dpp ? gl_dp_flow_del(*dpp, ufids, n, results) : *conn_error;
    if (error && *dpp) {
        *conn_error = error;
    }
    for (size_t i = 0; i < n; i++) {
        struct dpif_flow_del *del = &ops[i]->flow_del;
        ops[i]->error = error ? error : results[i].error;
        if (!ops[i]->error && del->stats) {
            stats_from_gl(&results[i].stats, del->stats);
        }
    }
}

static int
operate_get(struct dpif_gl *d, struct gl_dp *dp, struct dpif_flow_get *get)
{
    ovs_u128 tmp;
    struct gl_ufid ufid;
    struct gl_flow f;
    uint8_t actions[GL_DP_MAX_ACTIONS];

    gl_ufid_from_ovs(op_ufid(get->ufid, get->key, get->key_len, &tmp), &ufid);
    int error = gl_dp_flow_get(dp, &ufid, &f, actions, sizeof actions);
    if (error) {
        return error;
    }
    /* Key, mask and actions all go into the caller's buffer: reserve room first so
     * that the pointers stay valid. */
    ofpbuf_prealloc_tailroom(get->buffer,
                             2 * sizeof(struct odputil_keybuf) + f.actions_len);
    dpif_flow_from_gl(&f, false, get->buffer, get->buffer, get->buffer, get->flow);
    (void) d;
    return 0;
}

static void
execute_md(const struct dp_packet *pkt, struct gl_flow_key *meta)
{
    const struct pkt_metadata *md = &pkt->md;

    memset(meta, 0, sizeof *meta);
    meta->in_port = odp_to_u32(md->in_port.odp_port);
    if (md->in_port.odp_port == ODPP_NONE) {
        meta->in_port = 0;
    }
    meta->recirc_id = md->recirc_id;
    meta->dp_hash = md->dp_hash;
    meta->pkt_mark = md->pkt_mark;
    meta->priority = md->skb_priority;
    /* Conntrack metadata: what an earlier ct() said of the packet (OVS keeps it in
     * pkt_metadata across the upcall); only meaningful while ct_state is set. */
    if (md->ct_state) {
        meta->ct_state = md->ct_state;
        meta->ct_zone = md->ct_zone;
        meta->ct_mark = md->ct_mark;
        memcpy(meta->ct_label, &md->ct_label, sizeof meta->ct_label);
        if (md->ct_orig_tuple_ipv6) {
            const struct ovs_key_ct_tuple_ipv6 *t = &md->ct_orig_tuple.ipv6;
            memcpy(meta->ct_ipv6_src, &t->ipv6_src, 16);
            memcpy(meta->ct_ipv6_dst, &t->ipv6_dst, 16);
            meta->ct_tp_src = t->src_port;
            meta->ct_tp_dst = t->dst_port;
            meta->ct_nw_proto = t->ipv6_proto;
        } else {
            const struct ovs_key_ct_tuple_ipv4 *t = &md->ct_orig_tuple.ipv4;
            meta->ct_nw_src = t->ipv4_src;
            meta->ct_nw_dst = t->ipv4_dst;
            meta->ct_tp_src = t->src_port;
            meta->ct_tp_dst = t->dst_port;
            meta->ct_nw_proto = t->ipv4_proto;
        }
    }
}

/* Executes ops[0..n) (all DPIF_OP_EXECUTE) in one batch: one round trip for an upcall
 * handler's whole batch instead of one per packet. */
static void
operate_executes(struct dpif_gl *d, struct gl_dp **dpp, int *conn_error,
                 struct dpif_op **ops, size_t n)
{
    struct gl_execute execs[GL_OP_BATCH];
    struct gl_flow_result results[GL_OP_BATCH];
    size_t idx[GL_OP_BATCH];
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        const struct dpif_execute *exec = &ops[i]->execute;
        const struct dp_packet *pkt = exec->packet;

        if (dp_packet_size(pkt) > GL_DP_MAX_PACKET) {
            ops[i]->error = EMSGSIZE;
            continue;
        }
        struct gl_execute *e = &execs[m];
        execute_md(pkt, &e->md);
        e->actions = exec->actions;
        e->actions_len = exec->actions_len;
        e->packet = dp_packet_data(pkt);
        e->packet_len = dp_packet_size(pkt);
        idx[m++] = i;
    }
    if (!m) {
        return;
    }
    if (!*dpp) {
        *dpp = conn_get(d, conn_error);
    }
    int error = *dpp ? gl_dp_execute_batch(*dpp, execs, m, results) : *conn_error;
    if (error && *dpp) {
        *conn_error = error;
    }
    for (size_t j = 0; j < m; j++) {
        struct dpif_op *op = ops[idx[j]];
        const struct dpif_execute *exec = &op->execute;
        op->error = error ? error : results[j].error;
        if (op->error && !error && !exec->probe) {
            struct ds s = DS_EMPTY_INITIALIZER;
            format_odp_actions(&s, exec->actions, exec->actions_len, NULL);
            VLOG_WARN_RL(&rl, "%s: execute %s failed (%s): %s", dpif_name(&d->dpif),
                         ds_cstr(&s), ovs_strerror(op->error), results[j].message);
            ds_destroy(&s);
        }
    }
}

static void
dpif_gl_operate(struct dpif *dpif, struct dpif_op **ops, size_t n_ops,
                enum dpif_offload_type offload_type OVS_UNUSED)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    struct gl_dp *dp = NULL;
    int conn_error = 0;

    for (size_t i = 0; i < n_ops;) {
        enum dpif_op_type type = ops[i]->type;
        size_t j = i + 1;
        if (type == DPIF_OP_FLOW_PUT || type == DPIF_OP_EXECUTE) {
            /* A run of puts and executes (what upcall handlers send: put a flow, execute
             * its packet, next upcall): all puts first, in batches, then the executes, so
             * that a run costs two round trips per 64 ops instead of one per op.
             * Executes carry their own actions; doing them after the puts only lets a
             * recirculated packet find its flow already there. */
            struct dpif_op *puts[GL_OP_BATCH], *execs[GL_OP_BATCH];
            size_t n_puts = 0, n_execs = 0;
            while (j < n_ops && j - i < GL_OP_BATCH &&
                   (ops[j]->type == DPIF_OP_FLOW_PUT || ops[j]->type == DPIF_OP_EXECUTE)) {
                j++;
            }
            for (size_t k = i; k < j; k++) {
                if (ops[k]->type == DPIF_OP_FLOW_PUT) {
                    puts[n_puts++] = ops[k];
                } else {
                    execs[n_execs++] = ops[k];
                }
            }
            if (n_puts) {
                operate_puts(d, &dp, &conn_error, puts, n_puts);
            }
            if (n_execs) {
                if (dp && conn_error) {
                    conn_put(d, dp, conn_error);
                    dp = NULL;
                    conn_error = 0;
                }
                operate_executes(d, &dp, &conn_error, execs, n_execs);
            }
        } else if (type == DPIF_OP_FLOW_DEL) {
            while (j < n_ops && j - i < GL_OP_BATCH && ops[j]->type == type) {
                j++;
            }
            operate_dels(d, &dp, &conn_error, &ops[i], j - i);
        } else {
            if (!dp) {
                dp = conn_get(d, &conn_error);
            }
            if (!dp) {
                ops[i]->error = conn_error;
            } else if (type == DPIF_OP_FLOW_GET) {
                ops[i]->error = operate_get(d, dp, &ops[i]->flow_get);
            } else {
                ops[i]->error = EOPNOTSUPP;
            }
            if (dp && is_transport_error(ops[i]->error)) {
                conn_error = ops[i]->error;
            }
        }
        if (dp && conn_error) {
            /* The connection broke: drop it, the next op connects again. */
            conn_put(d, dp, conn_error);
            dp = NULL;
            conn_error = 0;
        }
        i = j;
    }
    conn_put(d, dp, 0);
}

/* ---- upcalls ------------------------------------------------------------------------ */

/* (Re)connects handler 'h' and subscribes it; on failure retries a second later. */
static void
handler_connect(struct dpif_gl *d, struct gl_handler *h)
{
    if (h->dp || time_msec() < h->retry_at) {
        return;
    }
    struct gl_dp *dp;
    int error = gl_dp_open(d->socket, &dp);
    if (!error) {
        error = gl_dp_upcall_subscribe(dp, h->pid, true);
        if (error) {
            VLOG_WARN_RL(&rl, "%s: upcall subscription: %s", dpif_name(&d->dpif),
                         gl_dp_last_error(dp));
            gl_dp_close(dp);
        }
    }
    if (error) {
        h->retry_at = time_msec() + 1000;
        return;
    }
    h->dp = dp;
}

static void
refresh_handlers(struct dpif_gl *d, uint32_t n) OVS_REQ_WRLOCK(d->upcall_lock)
{
    close_handlers(d);
    if (!d->recv_enabled || !n) {
        return;
    }
    d->handlers = xcalloc(n, sizeof *d->handlers);
    d->n_handlers = n;
    for (uint32_t i = 0; i < n; i++) {
        d->handlers[i].pid = i + 1;
        handler_connect(d, &d->handlers[i]);
    }
}

static int
dpif_gl_recv_set(struct dpif *dpif, bool enable)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    ovs_rwlock_wrlock(&d->upcall_lock);
    if (d->recv_enabled != enable) {
        uint32_t n = d->n_handlers ? d->n_handlers : 1;
        d->recv_enabled = enable;
        refresh_handlers(d, n);
    }
    ovs_rwlock_unlock(&d->upcall_lock);
    return 0;
}

static int
dpif_gl_handlers_set(struct dpif *dpif, uint32_t n_handlers)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    ovs_rwlock_wrlock(&d->upcall_lock);
    if (!d->recv_enabled) {
        /* Remember the count for when receiving is enabled. */
        close_handlers(d);
        d->n_handlers = 0;
        d->handlers = NULL;
        if (n_handlers) {
            d->handlers = xcalloc(n_handlers, sizeof *d->handlers);
            d->n_handlers = n_handlers;
            for (uint32_t i = 0; i < n_handlers; i++) {
                d->handlers[i].pid = i + 1;
            }
        }
    } else if (n_handlers != d->n_handlers) {
        refresh_handlers(d, n_handlers);
    }
    ovs_rwlock_unlock(&d->upcall_lock);
    return 0;
}

/* Builds the OVS upcall from gldp's in 'buf': key, userdata attribute, then the packet
 * with headroom; every pointer is set once all of 'buf' is written. */
static void
upcall_from_gl(const struct gl_upcall *up, struct dpif_upcall *upcall, struct ofpbuf *buf)
{
    ofpbuf_prealloc_tailroom(buf, sizeof(struct odputil_keybuf) + up->userdata_len + 64 +
                                      GL_UPCALL_HEADROOM + up->packet_len);
    memset(upcall, 0, sizeof *upcall);
    size_t key_ofs = buf->size;
    gl_flow_to_odp(&up->key, NULL, buf, NULL);
    size_t key_len = buf->size - key_ofs;
    size_t ud_ofs = 0;
    bool has_ud = up->kind == GL_UPCALL_ACTION && up->userdata_len;
    if (has_ud) {
        ud_ofs = buf->size;
        nl_msg_put_unspec(buf, OVS_PACKET_ATTR_USERDATA, up->userdata, up->userdata_len);
    }
    size_t pkt_ofs = buf->size;
    ofpbuf_put_uninit(buf, GL_UPCALL_HEADROOM + up->packet_len);
    uint8_t *base = ofpbuf_at_assert(buf, pkt_ofs, GL_UPCALL_HEADROOM + up->packet_len);
    memcpy(base + GL_UPCALL_HEADROOM, up->packet, up->packet_len);

    upcall->type = up->kind == GL_UPCALL_ACTION ? DPIF_UC_ACTION : DPIF_UC_MISS;
    upcall->key = ofpbuf_at_assert(buf, key_ofs, key_len);
    upcall->key_len = key_len;
    odp_flow_key_hash(upcall->key, upcall->key_len, &upcall->ufid);
    if (has_ud) {
        upcall->userdata = ofpbuf_at_assert(buf, ud_ofs, NLA_HDRLEN);
    }
    dp_packet_use_stub(&upcall->packet, base, GL_UPCALL_HEADROOM + up->packet_len);
    dp_packet_set_data(&upcall->packet, base + GL_UPCALL_HEADROOM);
    dp_packet_set_size(&upcall->packet, up->packet_len);
}

static int
dpif_gl_recv(struct dpif *dpif, uint32_t handler_id, struct dpif_upcall *upcall,
             struct ofpbuf *buf)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = EAGAIN;

    ovs_rwlock_rdlock(&d->upcall_lock);
    if (d->recv_enabled && handler_id < d->n_handlers) {
        struct gl_handler *h = &d->handlers[handler_id];
        /* Only this handler's thread touches its slot under the read lock. */
        handler_connect(d, h);
        if (h->dp) {
            struct gl_upcall up;
            error = gl_dp_recv_upcall(h->dp, 0, &up);
            if (!error) {
                upcall_from_gl(&up, upcall, buf);
            } else if (error != EAGAIN) {
                VLOG_WARN_RL(&rl, "%s: upcall receive: %s (reconnecting)", dpif_name(dpif),
                             gl_dp_last_error(h->dp));
                gl_dp_close(h->dp);
                h->dp = NULL;
                h->retry_at = time_msec() + 100;
                error = EAGAIN;
            }
        }
    }
    ovs_rwlock_unlock(&d->upcall_lock);
    return error;
}

static void
dpif_gl_recv_wait(struct dpif *dpif, uint32_t handler_id)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    ovs_rwlock_rdlock(&d->upcall_lock);
    if (d->recv_enabled && handler_id < d->n_handlers) {
        struct gl_handler *h = &d->handlers[handler_id];
        if (h->dp && gl_dp_upcalls_queued(h->dp)) {
            poll_immediate_wake();
        } else if (h->dp) {
            poll_fd_wait(gl_dp_fd(h->dp), POLLIN);
        } else {
            poll_timer_wait_until(h->retry_at);
        }
    }
    ovs_rwlock_unlock(&d->upcall_lock);
}

static void
dpif_gl_recv_purge(struct dpif *dpif)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    ovs_rwlock_wrlock(&d->upcall_lock);
    for (uint32_t i = 0; i < d->n_handlers; i++) {
        struct gl_upcall up;
        while (d->handlers[i].dp && !gl_dp_recv_upcall(d->handlers[i].dp, 0, &up)) {
            continue;
        }
    }
    ovs_rwlock_unlock(&d->upcall_lock);
}

static char *
dpif_gl_get_datapath_version(void)
{
    return xstrdup("gldp");
}

/* ---- connection tracking ---------------------------------------------------------------
 *
 * gldp's tracker seen through OVS's ct-dpif interface (dpctl/dump-conntrack,
 * flush-conntrack, ct-*). Entries are filled as OVS's userspace tracker fills them
 * (lib/conntrack.c): tuples with ICMP id/type/code, zone, mark, labels, TCP states of both
 * ends, timeout, helper; status and id stay 0, all entries count as bucket 0. gldp also
 * has per-direction packet and byte counters, which `-s` shows (as the kernel datapath
 * does). Timeout policies and fragment reassembly (dpctl/ipf-*) are gldp's, reached as
 * OVS-DPDK reaches its own; see the comments at their callbacks below. */

struct dpif_gl_ct_dump {
    struct ct_dpif_dump_state up;
    struct gl_dp *dp; /* Borrowed for the dump's life. */
    struct gl_ct_dump *dump;
};

static bool
ct_proto_is_icmp(uint8_t proto)
{
    return proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6;
}

static void
ct_tuple_from_gl(const struct gl_ct_tuple *g, struct ct_dpif_tuple *t)
{
    memset(t, 0, sizeof *t);
    t->ip_proto = g->proto;
    if (g->family == 6) {
        t->l3_type = AF_INET6;
        memcpy(&t->src.in6, g->src, sizeof t->src.in6);
        memcpy(&t->dst.in6, g->dst, sizeof t->dst.in6);
    } else {
        t->l3_type = AF_INET;
        memcpy(&t->src.ip, g->src, sizeof t->src.ip);
        memcpy(&t->dst.ip, g->dst, sizeof t->dst.ip);
    }
    if (ct_proto_is_icmp(g->proto)) {
        t->icmp_id = g->icmp_id;
        t->icmp_type = g->icmp_type;
        t->icmp_code = g->icmp_code;
    } else {
        t->src_port = g->sport;
        t->dst_port = g->dport;
    }
}

static int
ct_tuple_to_gl(const struct ct_dpif_tuple *t, struct gl_ct_tuple *g)
{
    memset(g, 0, sizeof *g);
    g->proto = t->ip_proto;
    if (t->l3_type == AF_INET) {
        g->family = 4;
        memcpy(g->src, &t->src.ip, sizeof t->src.ip);
        memcpy(g->dst, &t->dst.ip, sizeof t->dst.ip);
    } else if (t->l3_type == AF_INET6) {
        g->family = 6;
        memcpy(g->src, &t->src.in6, sizeof t->src.in6);
        memcpy(g->dst, &t->dst.in6, sizeof t->dst.in6);
    } else {
        return EINVAL;
    }
    if (ct_proto_is_icmp(t->ip_proto)) {
        g->icmp_id = t->icmp_id;
        g->icmp_type = t->icmp_type;
        g->icmp_code = t->icmp_code;
    } else {
        g->sport = t->src_port;
        g->dport = t->dst_port;
    }
    return 0;
}

static void
ct_entry_from_gl(const struct gl_ct_entry *g, struct ct_dpif_entry *e)
{
    memset(e, 0, sizeof *e);
    ct_tuple_from_gl(&g->orig, &e->tuple_orig);
    ct_tuple_from_gl(&g->reply, &e->tuple_reply);
    e->zone = g->zone;
    e->counters_orig.packets = g->packets[0];
    e->counters_orig.bytes = g->bytes[0];
    e->counters_reply.packets = g->packets[1];
    e->counters_reply.bytes = g->bytes[1];
    e->mark = g->mark;
    /* Our label is a little-endian 128-bit number: OVS's host-order ovs_u128 on the
     * little-endian machines gldp runs on. */
    BUILD_ASSERT_DECL(sizeof e->labels == sizeof g->label);
    memcpy(&e->labels, g->label, sizeof e->labels);
    e->timeout = g->timeout_s;
    if (g->orig.proto == IPPROTO_TCP) {
        e->protoinfo.proto = IPPROTO_TCP;
        e->protoinfo.tcp.state_orig = g->tcp_state_orig;
        e->protoinfo.tcp.state_reply = g->tcp_state_reply;
    }
    if (g->flags & GL_CT_ENTRY_HELPER_FTP) {
        e->helper.name = xstrdup("ftp");
    } else if (g->flags & GL_CT_ENTRY_HELPER_TFTP) {
        e->helper.name = xstrdup("tftp");
    }
}

static int
dpif_gl_ct_dump_start(struct dpif *dpif, struct ct_dpif_dump_state **statep,
                      const uint16_t *zone, int *ptot_bkts)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    uint32_t z = zone ? *zone : 0;
    struct gl_ct_dump *gd = NULL;
    error = gl_dp_ct_dump_start(dp, zone ? &z : NULL, &gd);
    if (error) {
        conn_put(d, dp, error);
        return error;
    }
    struct dpif_gl_ct_dump *dump = xzalloc(sizeof *dump);
    dump->dp = dp;
    dump->dump = gd;
    if (ptot_bkts) {
        *ptot_bkts = 1; /* As OVS's userspace tracker: every entry in bucket 0. */
    }
    *statep = &dump->up;
    return 0;
}

static int
dpif_gl_ct_dump_next(struct dpif *dpif, struct ct_dpif_dump_state *state,
                     struct ct_dpif_entry *entry)
{
    struct dpif_gl_ct_dump *dump = CONTAINER_OF(state, struct dpif_gl_ct_dump, up);
    struct gl_ct_entry g;
    int error = gl_dp_ct_dump_next(dump->dump, &g);
    if (error == ENOENT) {
        return EOF;
    } else if (error) {
        VLOG_WARN_RL(&rl, "%s: conntrack dump: %s", dpif_name(dpif),
                     gl_dp_last_error(dump->dp));
        return error;
    }
    ct_entry_from_gl(&g, entry);
    return 0;
}

static int
dpif_gl_ct_dump_done(struct dpif *dpif, struct ct_dpif_dump_state *state)
{
    const struct dpif_gl *d = dpif_gl_cast(dpif);
    struct dpif_gl_ct_dump *dump = CONTAINER_OF(state, struct dpif_gl_ct_dump, up);
    int error = gl_dp_ct_dump_done(dump->dump);
    conn_put(d, dump->dp, error);
    free(dump);
    return error;
}

/* Logs gldp's message for a failed conntrack call 'what' (dpctl prints only the errno). */
static void
ct_log_error(const struct dpif *dpif, struct gl_dp *dp, const char *what, int error)
{
    if (error) {
        VLOG_WARN_RL(&rl, "%s: %s: %s", dpif_name(dpif), what,
                     dp ? gl_dp_last_error(dp) : ovs_strerror(error));
    }
}

static int
dpif_gl_ct_flush(struct dpif *dpif, const uint16_t *zone, const struct ct_dpif_tuple *tuple)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    struct gl_ct_tuple t;
    if (tuple && ct_tuple_to_gl(tuple, &t)) {
        VLOG_WARN_RL(&rl,
                     "%s: conntrack flush: address family %" PRIu16 " is not IPv4 or IPv6",
                     dpif_name(dpif), tuple->l3_type);
        return EINVAL;
    }
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    /* A tuple without a zone is looked up in zone 0, as the provider interface says. */
    uint32_t z = zone ? *zone : 0;
    error = gl_dp_ct_flush(dp, zone ? &z : NULL, tuple ? &t : NULL, NULL);
    ct_log_error(dpif, dp, "conntrack flush", error);
    conn_put(d, dp, error);
    return error;
}

static int
dpif_gl_ct_set_maxconns(struct dpif *dpif, uint32_t maxconns)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_ct_set_maxconns(dp, maxconns);
    ct_log_error(dpif, dp, "conntrack set maxconns", error);
    conn_put(d, dp, error);
    return error;
}

static int
dpif_gl_ct_get_maxconns(struct dpif *dpif, uint32_t *maxconns)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_ct_get_maxconns(dp, maxconns);
    ct_log_error(dpif, dp, "conntrack get maxconns", error);
    conn_put(d, dp, error);
    return error;
}

static int
dpif_gl_ct_get_nconns(struct dpif *dpif, uint32_t *nconns)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_ct_get_nconns(dp, nconns);
    ct_log_error(dpif, dp, "conntrack get nconns", error);
    conn_put(d, dp, error);
    return error;
}

static int
dpif_gl_ct_set_tcp_seq_chk(struct dpif *dpif, bool enabled)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_ct_set_tcp_seq_chk(dp, enabled);
    ct_log_error(dpif, dp, "conntrack set tcp sequence check", error);
    conn_put(d, dp, error);
    return error;
}

static int
dpif_gl_ct_get_tcp_seq_chk(struct dpif *dpif, bool *enabled)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_ct_get_tcp_seq_chk(dp, enabled);
    ct_log_error(dpif, dp, "conntrack get tcp sequence check", error);
    conn_put(d, dp, error);
    return error;
}

/* The zones of a list of struct ct_dpif_zone_limit, in a new array of *n. */
static uint32_t *
ct_zones_from_list(const struct ovs_list *zone_limits, size_t *n)
{
    const struct ct_dpif_zone_limit *zl;
    uint32_t *zones = xmalloc((ovs_list_size(zone_limits) + 1) * sizeof *zones);
    *n = 0;
    LIST_FOR_EACH(zl, node, zone_limits)
    {
        zones[(*n)++] = zl->zone;
    }
    return zones;
}

static int
dpif_gl_ct_set_limits(struct dpif *dpif, const uint32_t *default_limit,
                      const struct ovs_list *zone_limits)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    size_t n = ovs_list_size(zone_limits);
    if (!default_limit && !n) {
        return 0;
    }
    struct gl_ct_zone_limit *zones = xcalloc(n + 1, sizeof *zones);
    const struct ct_dpif_zone_limit *zl;
    size_t i = 0;
    LIST_FOR_EACH(zl, node, zone_limits)
    {
        zones[i].zone = zl->zone;
        zones[i].limit = zl->limit;
        i++;
    }
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (dp) {
        error = gl_dp_ct_set_limits(dp, default_limit, zones, n);
        ct_log_error(dpif, dp, "conntrack set limits", error);
        conn_put(d, dp, error);
    }
    free(zones);
    return error;
}

static int
dpif_gl_ct_get_limits(struct dpif *dpif, uint32_t *default_limit,
                      const struct ovs_list *zone_limits_in,
                      struct ovs_list *zone_limits_out)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    size_t n_in;
    uint32_t *zones = ct_zones_from_list(zone_limits_in, &n_in);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (dp) {
        struct gl_ct_zone_limit *out = NULL;
        size_t n_out = 0;
        error = gl_dp_ct_get_limits(dp, zones, n_in, default_limit, &out, &n_out);
        ct_log_error(dpif, dp, "conntrack get limits", error);
        conn_put(d, dp, error);
        for (size_t i = 0; !error && i < n_out; i++) {
            ct_dpif_push_zone_limit(zone_limits_out, out[i].zone, out[i].limit,
                                    out[i].count);
        }
        gl_dp_free(out);
    }
    free(zones);
    return error;
}

static int
dpif_gl_ct_del_limits(struct dpif *dpif, const struct ovs_list *zone_limits)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    size_t n;
    uint32_t *zones = ct_zones_from_list(zone_limits, &n);
    int error = 0;
    if (n) {
        struct gl_dp *dp = conn_get(d, &error);
        if (dp) {
            error = gl_dp_ct_del_limits(dp, zones, n);
            ct_log_error(dpif, dp, "conntrack delete limits", error);
            conn_put(d, dp, error);
        }
    }
    free(zones);
    return error;
}

/* ---- timeout policies ------------------------------------------------------------------
 *
 * OVSDB's zone timeout policies (ovs-vsctl add-zone-tp gl zone=N udp_first=S ...): ofproto
 * gives each distinct policy an id, sets it here and names it in the commit of the zone's
 * ct() actions; as on OVS-DPDK the name is the decimal id and generic (one policy for every
 * protocol), so ofproto emits ct(commit,zone=N,timeout="ID") and gldp's tracker, which
 * reads the attribute as that decimal id, applies it. gldp keeps the classes OVS's
 * userspace tracker keeps (the GL_CT_TP_* of gl_dpapi.h); the kernel-only ones (close_wait,
 * last_ack, syn_sent2, retransmit, unack) are ignored, as OVS-DPDK ignores them. */

/* OVS's attribute for each gldp class. */
static const enum ct_dpif_tp_attr gl_tp_attr[GL_CT_TP_COUNT] = {
    [GL_CT_TP_TCP_SYN_SENT] = CT_DPIF_TP_ATTR_TCP_SYN_SENT,
    [GL_CT_TP_TCP_SYN_RECV] = CT_DPIF_TP_ATTR_TCP_SYN_RECV,
    [GL_CT_TP_TCP_ESTABLISHED] = CT_DPIF_TP_ATTR_TCP_ESTABLISHED,
    [GL_CT_TP_TCP_FIN_WAIT] = CT_DPIF_TP_ATTR_TCP_FIN_WAIT,
    [GL_CT_TP_TCP_TIME_WAIT] = CT_DPIF_TP_ATTR_TCP_TIME_WAIT,
    [GL_CT_TP_TCP_CLOSE] = CT_DPIF_TP_ATTR_TCP_CLOSE,
    [GL_CT_TP_UDP_FIRST] = CT_DPIF_TP_ATTR_UDP_FIRST,
    [GL_CT_TP_UDP_SINGLE] = CT_DPIF_TP_ATTR_UDP_SINGLE,
    [GL_CT_TP_UDP_MULTIPLE] = CT_DPIF_TP_ATTR_UDP_MULTIPLE,
    [GL_CT_TP_ICMP_FIRST] = CT_DPIF_TP_ATTR_ICMP_FIRST,
    [GL_CT_TP_ICMP_REPLY] = CT_DPIF_TP_ATTR_ICMP_REPLY,
};
BUILD_ASSERT_DECL(CT_DPIF_TP_ATTR_MAX <= 32);

static void
ct_tp_from_gl(const struct gl_ct_timeout_policy *g, struct ct_dpif_timeout_policy *tp)
{
    memset(tp, 0, sizeof *tp);
    tp->id = g->id;
    for (int i = 0; i < GL_CT_TP_COUNT; i++) {
        if (g->present & (1u << i)) {
            tp->present |= 1u << gl_tp_attr[i];
            tp->attrs[gl_tp_attr[i]] = g->sec[i];
        }
    }
}

static int
dpif_gl_ct_set_timeout_policy(struct dpif *dpif, const struct ct_dpif_timeout_policy *tp)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    struct gl_ct_timeout_policy g;
    memset(&g, 0, sizeof g);
    g.id = tp->id;
    for (int i = 0; i < GL_CT_TP_COUNT; i++) {
        if (tp->present & (1u << gl_tp_attr[i])) {
            g.present |= 1u << i;
            g.sec[i] = tp->attrs[gl_tp_attr[i]];
        }
    }
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_ct_set_timeout_policy(dp, &g);
    ct_log_error(dpif, dp, "conntrack set timeout policy", error);
    conn_put(d, dp, error);
    return error;
}

static int
dpif_gl_ct_get_timeout_policy(struct dpif *dpif, uint32_t tp_id,
                              struct ct_dpif_timeout_policy *tp)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    struct gl_ct_timeout_policy g;
    error = gl_dp_ct_get_timeout_policy(dp, tp_id, &g);
    if (error != ENOENT) { /* A missing policy is an answer, not a failure. */
        ct_log_error(dpif, dp, "conntrack get timeout policy", error);
    }
    conn_put(d, dp, error);
    if (!error) {
        ct_tp_from_gl(&g, tp);
    }
    return error;
}

/* Deleting a policy that gldp does not have (gldp restarted since it was set) succeeds:
 * ofproto retries a failed delete every 20 s for as long as it runs. */
static int
dpif_gl_ct_del_timeout_policy(struct dpif *dpif, uint32_t tp_id)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_ct_del_timeout_policy(dp, tp_id);
    if (error == ENOENT) {
        VLOG_DBG("%s: timeout policy %" PRIu32 " was already gone", dpif_name(dpif), tp_id);
        conn_put(d, dp, error);
        return 0;
    }
    ct_log_error(dpif, dp, "conntrack delete timeout policy", error);
    conn_put(d, dp, error);
    return error;
}

/* The dump gives ofproto, when it starts, the policies a previous ovs-vswitchd left in
 * gldp (gldp outlives it, like the kernel datapath): it reserves their ids and deletes
 * them a little later. The default policy (id 0) is gldp's, not one OVS set: left out. */
struct dpif_gl_tp_dump {
    struct gl_ct_timeout_policy *tps;
    size_t n, next;
};

static int
dpif_gl_ct_timeout_policy_dump_start(struct dpif *dpif, void **statep)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    struct dpif_gl_tp_dump *dump = xzalloc(sizeof *dump);
    error = gl_dp_ct_get_timeout_policies(dp, &dump->tps, &dump->n);
    ct_log_error(dpif, dp, "conntrack timeout policy dump", error);
    conn_put(d, dp, error);
    if (error) {
        free(dump);
        return error;
    }
    *statep = dump;
    return 0;
}

static int
dpif_gl_ct_timeout_policy_dump_next(struct dpif *dpif OVS_UNUSED, void *state,
                                    struct ct_dpif_timeout_policy *tp)
{
    struct dpif_gl_tp_dump *dump = state;
    while (dump->next < dump->n) {
        const struct gl_ct_timeout_policy *g = &dump->tps[dump->next++];
        if (g->id != 0) {
            ct_tp_from_gl(g, tp);
            return 0;
        }
    }
    return EOF;
}

static int
dpif_gl_ct_timeout_policy_dump_done(struct dpif *dpif OVS_UNUSED, void *state)
{
    struct dpif_gl_tp_dump *dump = state;
    gl_dp_free(dump->tps);
    free(dump);
    return 0;
}

/* As OVS-DPDK: the name is the decimal id, valid for every protocol. */
static int
dpif_gl_ct_get_timeout_policy_name(struct dpif *dpif OVS_UNUSED, uint32_t tp_id,
                                   uint16_t dl_type OVS_UNUSED, uint8_t nw_proto OVS_UNUSED,
                                   char **tp_name, bool *is_generic)
{
    *tp_name = xasprintf("%" PRIu32, tp_id);
    *is_generic = true;
    return 0;
}

/* gldp's NAT keeps the packet's own address when the range is all zero (nat(src) with
 * no address), which is what all-zero SNAT asks for. */
static int
dpif_gl_ct_get_features(struct dpif *dpif OVS_UNUSED, enum ct_features *features)
{
    if (features) {
        *features = CONNTRACK_F_ZERO_SNAT;
    }
    return 0;
}

/* ---- fragment reassembly (dpctl/ipf-*) -------------------------------------------------
 *
 * gldp reassembles fragments in front of its tracker as OVS-DPDK's ipf does, with the
 * same settings and counters. gldp refuses a bad min_frag / max_nfrags with EINVAL (its
 * reason in the log); OVS-DPDK returns 1 there, so dpctl's message ends in "(Invalid
 * argument)" instead of "(Operation not permitted)". */

static int
dpif_gl_ipf_set_enabled(struct dpif *dpif, bool v6, bool enabled)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_ipf_set_enabled(dp, v6, enabled);
    ct_log_error(dpif, dp, "ipf set enabled", error);
    conn_put(d, dp, error);
    return error;
}

static int
dpif_gl_ipf_set_min_frag(struct dpif *dpif, bool v6, uint32_t min_frag)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_ipf_set_min_frag(dp, v6, min_frag);
    ct_log_error(dpif, dp, "ipf set min frag", error);
    conn_put(d, dp, error);
    return error;
}

static int
dpif_gl_ipf_set_max_nfrags(struct dpif *dpif, uint32_t max_nfrags)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    error = gl_dp_ipf_set_max_nfrags(dp, max_nfrags);
    ct_log_error(dpif, dp, "ipf set max nfrags", error);
    conn_put(d, dp, error);
    return error;
}

static void
ipf_proto_status_from_gl(const struct gl_ipf_family_status *g,
                         struct dpif_ipf_proto_status *p)
{
    p->nfrag_accepted = g->accepted;
    p->nfrag_completed_sent = g->completed_sent;
    p->nfrag_expired_sent = g->expired_sent;
    p->nfrag_too_small = g->too_small;
    p->nfrag_overlap = g->overlap;
    p->nfrag_purged = g->purged;
    p->min_frag_size = g->min_frag_size;
    p->enabled = g->enabled != 0;
}

static int
dpif_gl_ipf_get_status(struct dpif *dpif, struct dpif_ipf_status *status)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    struct gl_ipf_status *g = NULL;
    error = gl_dp_ipf_get_status(dp, &g);
    ct_log_error(dpif, dp, "ipf get status", error);
    conn_put(d, dp, error);
    if (!error) {
        memset(status, 0, sizeof *status);
        ipf_proto_status_from_gl(&g->v4, &status->v4);
        ipf_proto_status_from_gl(&g->v6, &status->v6);
        status->nfrag = g->nfrag;
        status->nfrag_max = g->nfrag_max;
    }
    gl_dp_free(g);
    return error;
}

/* The list dump's state (OVS names the type struct ipf_dump_ctx and defines it in its own
 * ipf.c; ours is a different struct behind the same opaque pointer, only seen here). */
struct dpif_gl_ipf_dump {
    struct gl_ipf_dump *dump;
};

static int
dpif_gl_ipf_dump_start(struct dpif *dpif, struct ipf_dump_ctx **ctxp)
{
    struct dpif_gl *d = dpif_gl_cast(dpif);
    int error = 0;
    struct gl_dp *dp = conn_get(d, &error);
    if (!dp) {
        return error;
    }
    struct gl_ipf_dump *gd = NULL;
    error = gl_dp_ipf_dump_start(dp, &gd);
    ct_log_error(dpif, dp, "ipf list dump", error);
    conn_put(d, dp, error);
    if (error) {
        return error;
    }
    struct dpif_gl_ipf_dump *dump = xzalloc(sizeof *dump);
    dump->dump = gd;
    *ctxp = (struct ipf_dump_ctx *) dump;
    return 0;
}

static int
dpif_gl_ipf_dump_next(struct dpif *dpif OVS_UNUSED, void *ctx, char **line)
{
    struct dpif_gl_ipf_dump *dump = ctx;
    const char *text = NULL;
    int error = gl_dp_ipf_dump_next(dump->dump, &text);
    if (error) {
        return error == ENOENT ? EOF : error;
    }
    *line = xstrdup(text);
    return 0;
}

static int
dpif_gl_ipf_dump_done(struct dpif *dpif OVS_UNUSED, void *ctx)
{
    struct dpif_gl_ipf_dump *dump = ctx;
    gl_dp_ipf_dump_done(dump->dump);
    free(dump);
    return 0;
}

/* ---- meters: gldp has none ------------------------------------------------------------
 */

static void
dpif_gl_meter_get_features(const struct dpif *dpif OVS_UNUSED,
                           struct ofputil_meter_features *features)
{
    memset(features, 0, sizeof *features);
}

static int
dpif_gl_meter_set(struct dpif *dpif OVS_UNUSED, ofproto_meter_id id OVS_UNUSED,
                  struct ofputil_meter_config *config OVS_UNUSED)
{
    return EOPNOTSUPP;
}

static int
dpif_gl_meter_get(const struct dpif *dpif OVS_UNUSED, ofproto_meter_id id OVS_UNUSED,
                  struct ofputil_meter_stats *stats OVS_UNUSED, uint16_t n OVS_UNUSED)
{
    return EOPNOTSUPP;
}

static int
dpif_gl_meter_del(struct dpif *dpif OVS_UNUSED, ofproto_meter_id id OVS_UNUSED,
                  struct ofputil_meter_stats *stats OVS_UNUSED, uint16_t n OVS_UNUSED)
{
    return EOPNOTSUPP;
}

static const struct dpif_class dpif_gl_class = {
    .type = GL_DATAPATH_TYPE,
    /* Ports stay in gldp when ovs-vswitchd exits: it keeps forwarding meanwhile. */
    .cleanup_required = false,
    .init = dpif_gl_init,
    .enumerate = dpif_gl_enumerate,
    .port_open_type = dpif_gl_port_open_type,
    .open = dpif_gl_open,
    .close = dpif_gl_close,
    .destroy = dpif_gl_destroy,
    .run = dpif_gl_run,
    .wait = dpif_gl_wait,
    .get_stats = dpif_gl_get_stats,
    .set_features = dpif_gl_set_features,
    .port_add = dpif_gl_port_add,
    .port_del = dpif_gl_port_del,
    .port_query_by_number = dpif_gl_port_query_by_number,
    .port_query_by_name = dpif_gl_port_query_by_name,
    .port_get_pid = dpif_gl_port_get_pid,
    .port_dump_start = dpif_gl_port_dump_start,
    .port_dump_next = dpif_gl_port_dump_next,
    .port_dump_done = dpif_gl_port_dump_done,
    .port_poll = dpif_gl_port_poll,
    .port_poll_wait = dpif_gl_port_poll_wait,
    .flow_flush = dpif_gl_flow_flush,
    .flow_dump_create = dpif_gl_flow_dump_create,
    .flow_dump_destroy = dpif_gl_flow_dump_destroy,
    .flow_dump_thread_create = dpif_gl_flow_dump_thread_create,
    .flow_dump_thread_destroy = dpif_gl_flow_dump_thread_destroy,
    .flow_dump_next = dpif_gl_flow_dump_next,
    .operate = dpif_gl_operate,
    .recv_set = dpif_gl_recv_set,
    .handlers_set = dpif_gl_handlers_set,
    .recv = dpif_gl_recv,
    .recv_wait = dpif_gl_recv_wait,
    .recv_purge = dpif_gl_recv_purge,
    .get_datapath_version = dpif_gl_get_datapath_version,
    .ct_dump_start = dpif_gl_ct_dump_start,
    .ct_dump_next = dpif_gl_ct_dump_next,
    .ct_dump_done = dpif_gl_ct_dump_done,
    .ct_flush = dpif_gl_ct_flush,
    .ct_set_maxconns = dpif_gl_ct_set_maxconns,
    .ct_get_maxconns = dpif_gl_ct_get_maxconns,
    .ct_get_nconns = dpif_gl_ct_get_nconns,
    .ct_set_tcp_seq_chk = dpif_gl_ct_set_tcp_seq_chk,
    .ct_get_tcp_seq_chk = dpif_gl_ct_get_tcp_seq_chk,
    .ct_set_limits = dpif_gl_ct_set_limits,
    .ct_get_limits = dpif_gl_ct_get_limits,
    .ct_del_limits = dpif_gl_ct_del_limits,
    .ct_set_timeout_policy = dpif_gl_ct_set_timeout_policy,
    .ct_get_timeout_policy = dpif_gl_ct_get_timeout_policy,
    .ct_del_timeout_policy = dpif_gl_ct_del_timeout_policy,
    .ct_timeout_policy_dump_start = dpif_gl_ct_timeout_policy_dump_start,
    .ct_timeout_policy_dump_next = dpif_gl_ct_timeout_policy_dump_next,
    .ct_timeout_policy_dump_done = dpif_gl_ct_timeout_policy_dump_done,
    .ct_get_timeout_policy_name = dpif_gl_ct_get_timeout_policy_name,
    .ct_get_features = dpif_gl_ct_get_features,
    .ipf_set_enabled = dpif_gl_ipf_set_enabled,
    .ipf_set_min_frag = dpif_gl_ipf_set_min_frag,
    .ipf_set_max_nfrags = dpif_gl_ipf_set_max_nfrags,
    .ipf_get_status = dpif_gl_ipf_get_status,
    .ipf_dump_start = dpif_gl_ipf_dump_start,
    .ipf_dump_next = dpif_gl_ipf_dump_next,
    .ipf_dump_done = dpif_gl_ipf_dump_done,
    .meter_get_features = dpif_gl_meter_get_features,
    .meter_set = dpif_gl_meter_set,
    .meter_get = dpif_gl_meter_get,
    .meter_del = dpif_gl_meter_del,
};

/* Registration: nothing in OVS names this file; linking it in is enough. */
OVS_CONSTRUCTOR(dpif_gl_register)
{
    dp_register_provider(&dpif_gl_class);
}
