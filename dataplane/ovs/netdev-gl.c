/* netdev-gl.c — OVS netdev classes for ports of datapath type "gl" (see netdev-gl.h). */
#include <config.h>

#include "netdev-gl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/api/gl_dpapi.h"
#include "netdev-provider.h"
#include "netdev.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/list.h"
#include "openvswitch/poll-loop.h"
#include "openvswitch/vlog.h"
#include "ovs-thread.h"
#include "packets.h"
#include "smap.h"
#include "timeval.h"
#include "util.h"

VLOG_DEFINE_THIS_MODULE(netdev_gl);
static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

/* How often run() compares gldp's link state and MACs with what OVS last saw. */
#define NETDEV_GL_REFRESH_MS 1000

struct netdev_gl {
    struct netdev up;
    struct ovs_list node; /* In 'all_netdevs'. */
    struct ovs_mutex mutex;
    char *devargs;   /* What gldp opens; NULL until configured. */
    uint16_t n_rxq;  /* 0 = gldp's default. */
    int mtu_request; /* Last set_mtu; applied when gldp adds the port. 0 = none. */
    /* gl-esp options, as given. */
    char esp_remote[INET6_ADDRSTRLEN], esp_local[INET6_ADDRSTRLEN];
    char esp_underlay[GL_DP_NAME_LEN];
    uint32_t esp_group;
    /* Last state seen from gldp (for change notification). */
    bool seen;
    bool link_up;
    struct eth_addr mac;
    /* Internal and system ports: the kernel interface's flags as last read. */
    enum netdev_flags kernel_flags;
};

static struct ovs_mutex gl_mutex = OVS_MUTEX_INITIALIZER;
static struct ovs_list
    all_netdevs OVS_GUARDED_BY(gl_mutex) = OVS_LIST_INITIALIZER(&all_netdevs);
/* The connection every netdev query shares. */
static struct gl_dp *gl_conn OVS_GUARDED_BY(gl_mutex);
static long long int next_refresh OVS_GUARDED_BY(gl_mutex);

static const struct netdev_class netdev_gl_dpdk_class;
static const struct netdev_class netdev_gl_internal_class;
static const struct netdev_class netdev_gl_system_class;
static const struct netdev_class netdev_gl_esp_class;

const char *
gl_ovs_socket_path(void)
{
    const char *p = getenv("GLDP_SOCKET");
    return p && p[0] ? p : "/run/gldp/gldp.sock";
}

bool
netdev_is_gl(const struct netdev *netdev)
{
    const struct netdev_class *c = netdev->netdev_class;
    return c == &netdev_gl_dpdk_class || c == &netdev_gl_internal_class ||
           c == &netdev_gl_system_class || c == &netdev_gl_esp_class;
}

static struct netdev_gl *
netdev_gl_cast(const struct netdev *netdev)
{
    ovs_assert(netdev_is_gl(netdev));
    return CONTAINER_OF(netdev, struct netdev_gl, up);
}

/* Runs 'cb' on the shared connection (connecting when needed); reconnects once when the
 * connection turns out to be dead (gldp restarted). Returns the callback's errno. */
static int
with_conn(int (*cb)(struct gl_dp *, void *), void *aux) OVS_REQUIRES(gl_mutex)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!gl_conn) {
            int error = gl_dp_open(gl_ovs_socket_path(), &gl_conn);
            if (error) {
                VLOG_WARN_RL(&rl, "cannot connect to gldp at %s: %s", gl_ovs_socket_path(),
                             gl_dp_last_error(NULL));
                return error;
            }
        }
        int error = cb(gl_conn, aux);
        if (error == EPIPE || error == ECONNRESET || error == ENOTCONN ||
            error == ETIMEDOUT || error == ECONNREFUSED) {
            gl_dp_close(gl_conn);
            gl_conn = NULL;
            continue;
        }
        return error;
    }
    return ECONNRESET;
}

struct port_get_aux {
    const char *name;
    struct gl_port_info *info;
};

static int
port_get_cb(struct gl_dp *dp, void *aux_)
{
    struct port_get_aux *aux = aux_;
    return gl_dp_port_get_by_name(dp, aux->name, aux->info);
}

/* gldp's view of the port named like 'netdev'; ENOENT when gldp has no such port. */
static int
netdev_gl_query(const struct netdev *netdev, struct gl_port_info *info)
{
    struct port_get_aux aux = {netdev_get_name(netdev), info};
    ovs_mutex_lock(&gl_mutex);
    int error = with_conn(port_get_cb, &aux);
    ovs_mutex_unlock(&gl_mutex);
    return error;
}

static bool
is_type(const struct netdev *netdev, const struct netdev_class *c)
{
    return netdev->netdev_class == c;
}

/* DPDK and ESP ports have no kernel interface behind them. */
static bool
no_kernel_iface(const struct netdev *netdev)
{
    return is_type(netdev, &netdev_gl_dpdk_class) || is_type(netdev, &netdev_gl_esp_class);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static struct netdev *
netdev_gl_alloc(void)
{
    struct netdev_gl *dev = xzalloc(sizeof *dev);
    return &dev->up;
}

static int
netdev_gl_construct(struct netdev *netdev)
{
    struct netdev_gl *dev = netdev_gl_cast(netdev);
    const char *name = netdev_get_name(netdev);

    ovs_mutex_init(&dev->mutex);
    if (strlen(name) >= GL_DP_NAME_LEN) {
        return ENAMETOOLONG;
    }
    /* Internal and system ports need no options: their devargs follow from the name. */
    if (is_type(netdev, &netdev_gl_internal_class)) {
        dev->devargs = xasprintf("net_tap_ovs_%s,iface=%s", name, name);
    } else if (is_type(netdev, &netdev_gl_system_class)) {
        /* libpcap on the interface, incoming direction only (so that what gldp sends
         * is not received again). Not net_af_packet: DPDK 22.11 joins its sockets to a
         * fanout group with PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles IP
         * fragments (and holds later fragments without a first one) before gldp sees
         * them; an OVS system port forwards frames as they are. type=dpdk with
         * af_packet devargs stays available where speed matters. */
        dev->devargs = xasprintf(NETDEV_GL_SYSTEM_PREFIX "%s,rx_iface_in=%s,tx_iface=%s",
                                 name, name, name);
    }
    ovs_mutex_lock(&gl_mutex);
    ovs_list_push_back(&all_netdevs, &dev->node);
    ovs_mutex_unlock(&gl_mutex);
    return 0;
}

static void
netdev_gl_destruct(struct netdev *netdev)
{
    struct netdev_gl *dev = netdev_gl_cast(netdev);
    ovs_mutex_lock(&gl_mutex);
    ovs_list_remove(&dev->node);
    ovs_mutex_unlock(&gl_mutex);
    free(dev->devargs);
    ovs_mutex_destroy(&dev->mutex);
}

static void
netdev_gl_dealloc(struct netdev *netdev)
{
    free(netdev_gl_cast(netdev));
}

/* ---- configuration ------------------------------------------------------------------- */

static int
netdev_gl_get_config(const struct netdev *netdev, struct smap *args)
{
    struct netdev_gl *dev = netdev_gl_cast(netdev);
    ovs_mutex_lock(&dev->mutex);
    if (dev->devargs && is_type(netdev, &netdev_gl_dpdk_class)) {
        smap_add(args, "dpdk-devargs", dev->devargs);
    }
    if (is_type(netdev, &netdev_gl_esp_class)) {
        if (dev->esp_remote[0]) {
            smap_add(args, "remote_ip", dev->esp_remote);
            smap_add(args, "local_ip", dev->esp_local);
            smap_add(args, "underlay", dev->esp_underlay);
            smap_add_format(args, "group", "%u", dev->esp_group);
        }
    }
    if (dev->n_rxq) {
        smap_add_format(args, "n_rxq", "%u", dev->n_rxq);
    }
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

/* gl-esp: options remote_ip, local_ip (IPv4 or IPv6, one family), underlay (the gldp
 * port, in this or another gl bridge, that carries the ESP packets) and group (the
 * outbound SA group: the SAs added with group=N encrypt what OVS sends to this port). */
static int
esp_set_config(struct netdev *netdev, const struct smap *args, char **errp)
{
    struct netdev_gl *dev = netdev_gl_cast(netdev);
    const char *name = netdev_get_name(netdev);
    const char *remote = smap_get_def(args, "remote_ip", "");
    const char *local = smap_get_def(args, "local_ip", "");
    const char *underlay = smap_get_def(args, "underlay", "");
    const char *group_s = smap_get_def(args, "group", "");
    struct in6_addr a6;
    struct in_addr a4;
    int fam_r = inet_pton(AF_INET, remote, &a4) == 1    ? 4
                : inet_pton(AF_INET6, remote, &a6) == 1 ? 6
                                                        : 0;
    int fam_l = inet_pton(AF_INET, local, &a4) == 1    ? 4
                : inet_pton(AF_INET6, local, &a6) == 1 ? 6
                                                       : 0;
    char *end = NULL;
    unsigned long group = strtoul(group_s, &end, 0);

    if (!fam_r || !fam_l) {
        *errp = xasprintf("%s: gl-esp needs options:remote_ip and options:local_ip "
                          "(IPv4 or IPv6 addresses; got '%s' and '%s')",
                          name, remote, local);
        return EINVAL;
    }
    if (fam_r != fam_l) {
        *errp =
            xasprintf("%s: remote_ip and local_ip are of different address families", name);
        return EINVAL;
    }
    if (!underlay[0] || strlen(underlay) >= GL_DP_NAME_LEN) {
        *errp = xasprintf("%s: gl-esp needs options:underlay, the port its ESP packets "
                          "leave and arrive on",
                          name);
        return EINVAL;
    }
    if (!group_s[0] || *end || group == 0 || group > UINT32_MAX) {
        *errp = xasprintf("%s: gl-esp needs options:group, 1..4294967295: the group of "
                          "its outbound SAs (gl-dpctl add-sa ... dir=out group=N)",
                          name);
        return EINVAL;
    }
    char *devargs = xasprintf("gl_esp,underlay=%s,group=%lu,local=%s,remote=%s", underlay,
                              group, local, remote);
    ovs_mutex_lock(&dev->mutex);
    if (!dev->devargs || strcmp(dev->devargs, devargs)) {
        free(dev->devargs);
        dev->devargs = devargs;
        devargs = NULL;
    }
    ovs_strlcpy(dev->esp_remote, remote, sizeof dev->esp_remote);
    ovs_strlcpy(dev->esp_local, local, sizeof dev->esp_local);
    ovs_strlcpy(dev->esp_underlay, underlay, sizeof dev->esp_underlay);
    dev->esp_group = group;
    ovs_mutex_unlock(&dev->mutex);
    free(devargs);
    return 0;
}

static int
netdev_gl_set_config(struct netdev *netdev, const struct smap *args, char **errp)
{
    struct netdev_gl *dev = netdev_gl_cast(netdev);
    int n_rxq = smap_get_int(args, "n_rxq", 0);

    if (n_rxq < 0 || n_rxq > 64) {
        *errp =
            xasprintf("%s: n_rxq %d out of range 0..64", netdev_get_name(netdev), n_rxq);
        return EINVAL;
    }
    if (is_type(netdev, &netdev_gl_esp_class)) {
        return esp_set_config(netdev, args, errp);
    }
    ovs_mutex_lock(&dev->mutex);
    dev->n_rxq = n_rxq;
    if (is_type(netdev, &netdev_gl_dpdk_class)) {
        const char *devargs = smap_get(args, "dpdk-devargs");
        if (!devargs) {
            devargs = smap_get(args, "devargs");
        }
        if (!devargs || !devargs[0]) {
            ovs_mutex_unlock(&dev->mutex);
            *errp = xasprintf("%s: options:dpdk-devargs is required "
                              "(a DPDK device, e.g. net_af_packet0,iface=eth1)",
                              netdev_get_name(netdev));
            return EINVAL;
        }
        if (strlen(devargs) >= GL_DP_DEVARGS_LEN) {
            ovs_mutex_unlock(&dev->mutex);
            *errp = xasprintf("%s: dpdk-devargs longer than %d bytes",
                              netdev_get_name(netdev), GL_DP_DEVARGS_LEN - 1);
            return EINVAL;
        }
        if (!dev->devargs || strcmp(dev->devargs, devargs)) {
            free(dev->devargs);
            dev->devargs = xstrdup(devargs);
        }
    }
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

int
netdev_gl_get_port_config(const struct netdev *netdev, char *devargs, size_t devargs_len,
                          uint16_t *n_rxq)
{
    if (!netdev_is_gl(netdev)) {
        return EOPNOTSUPP;
    }
    struct netdev_gl *dev = netdev_gl_cast(netdev);
    int error = 0;
    ovs_mutex_lock(&dev->mutex);
    if (!dev->devargs) {
        error = EINVAL;
    } else {
        ovs_strlcpy(devargs, dev->devargs, devargs_len);
        *n_rxq = dev->n_rxq;
    }
    ovs_mutex_unlock(&dev->mutex);
    return error;
}

const char *
netdev_gl_type_of(const char *name OVS_UNUSED, const char *devargs)
{
    if (!strncmp(devargs, "net_tap_ovs_", strlen("net_tap_ovs_"))) {
        return NETDEV_GL_TYPE_INTERNAL;
    }
    if (!strncmp(devargs, "gl_esp,", strlen("gl_esp,"))) {
        return NETDEV_GL_TYPE_ESP;
    }
    if (!strncmp(devargs, NETDEV_GL_SYSTEM_PREFIX, strlen(NETDEV_GL_SYSTEM_PREFIX)) ||
        !strncmp(devargs, "net_af_packet_ovs_", strlen("net_af_packet_ovs_"))) {
        /* (net_af_packet_ovs_ is what earlier versions gave system ports.) */
        return NETDEV_GL_TYPE_SYSTEM;
    }
    return NETDEV_GL_TYPE_DPDK;
}

/* ---- state from gldp ------------------------------------------------------------------
 */

/* Kernel ioctl on the tap interface of an internal port (gldp's net_tap keeps its own
 * MAC equal to the kernel's; OVS sets the bridge MAC on the local port). */
static int
kernel_ifreq(unsigned long cmd, const char *name, struct ifreq *ifr)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        return errno;
    }
    ovs_strlcpy(ifr->ifr_name, name, sizeof ifr->ifr_name);
    int error = ioctl(fd, cmd, ifr) < 0 ? errno : 0;
    close(fd);
    return error;
}

static int
netdev_gl_get_etheraddr(const struct netdev *netdev, struct eth_addr *mac)
{
    struct gl_port_info info;
    if (is_type(netdev, &netdev_gl_system_class)) {
        /* A system port's address is its kernel interface's (net_pcap makes one up). */
        struct ifreq ifr;
        int error = kernel_ifreq(SIOCGIFHWADDR, netdev_get_name(netdev), &ifr);
        if (!error) {
            memcpy(mac->ea, ifr.ifr_hwaddr.sa_data, ETH_ADDR_LEN);
        }
        return error;
    }
    int error = netdev_gl_query(netdev, &info);
    if (!error) {
        memcpy(mac->ea, info.mac, ETH_ADDR_LEN);
    } else if (error == ENOENT && !no_kernel_iface(netdev)) {
        /* Not in gldp yet: the kernel interface (system port) may already exist. */
        struct ifreq ifr;
        error = kernel_ifreq(SIOCGIFHWADDR, netdev_get_name(netdev), &ifr);
        if (!error) {
            memcpy(mac->ea, ifr.ifr_hwaddr.sa_data, ETH_ADDR_LEN);
        }
    }
    return error == ENOENT ? ENODEV : error;
}

static int
netdev_gl_set_etheraddr(struct netdev *netdev, const struct eth_addr mac)
{
    if (!is_type(netdev, &netdev_gl_internal_class)) {
        return EOPNOTSUPP;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    /* Only when it differs: the kernel announces every SIOCSIFHWADDR, also of the same
     * address, and OVS reconfigures its bridges on that announcement, which sets the
     * address again (a loop of hundreds of reconfigurations a second). */
    if (!kernel_ifreq(SIOCGIFHWADDR, netdev_get_name(netdev), &ifr) &&
        !memcmp(ifr.ifr_hwaddr.sa_data, mac.ea, ETH_ADDR_LEN)) {
        return 0;
    }
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, mac.ea, ETH_ADDR_LEN);
    int error = kernel_ifreq(SIOCSIFHWADDR, netdev_get_name(netdev), &ifr);
    if (!error) {
        netdev_change_seq_changed(netdev);
    }
    return error;
}

static int
netdev_gl_get_mtu(const struct netdev *netdev, int *mtup)
{
    struct gl_port_info info;
    int error = netdev_gl_query(netdev, &info);
    if (!error) {
        *mtup = info.mtu;
    }
    return error == ENOENT ? ENODEV : error;
}

struct port_mtu_aux {
    const char *name;
    int mtu;
};

static int
port_set_mtu_cb(struct gl_dp *dp, void *aux_)
{
    struct port_mtu_aux *aux = aux_;
    return gl_dp_port_set_mtu(dp, aux->name, aux->mtu, NULL);
}

/* mtu_request: gldp sets the device's MTU (and, for tap and af_packet ports, the kernel
 * interface's). */
static int
netdev_gl_set_mtu(struct netdev *netdev, int mtu)
{
    if (mtu < 68 || mtu > GL_DP_MAX_PORT_MTU) {
        VLOG_WARN_RL(&rl,
                     "%s: MTU %d is outside 68..%d (gldp receives frames of up to "
                     "2048 bytes)",
                     netdev_get_name(netdev), mtu, GL_DP_MAX_PORT_MTU);
        return EINVAL;
    }
    struct netdev_gl *dev = netdev_gl_cast(netdev);
    ovs_mutex_lock(&dev->mutex);
    dev->mtu_request = mtu;
    ovs_mutex_unlock(&dev->mutex);
    struct port_mtu_aux aux = {netdev_get_name(netdev), mtu};
    ovs_mutex_lock(&gl_mutex);
    int error = with_conn(port_set_mtu_cb, &aux);
    if (error == ENOENT) {
        /* OVS sets the MTU before it adds the port: dpif-gl applies it then. */
        ovs_mutex_unlock(&gl_mutex);
        return 0;
    }
    if (error) {
        VLOG_WARN_RL(&rl, "%s: cannot set MTU %d: %s", netdev_get_name(netdev), mtu,
                     gl_conn ? gl_dp_last_error(gl_conn) : ovs_strerror(error));
    }
    ovs_mutex_unlock(&gl_mutex);
    if (!error) {
        netdev_change_seq_changed(netdev);
    }
    return error;
}

int
netdev_gl_get_mtu_request(const struct netdev *netdev)
{
    if (!netdev_is_gl(netdev)) {
        return 0;
    }
    struct netdev_gl *dev = netdev_gl_cast(netdev);
    ovs_mutex_lock(&dev->mutex);
    int mtu = dev->mtu_request;
    ovs_mutex_unlock(&dev->mutex);
    return mtu;
}

static int
netdev_gl_get_ifindex(const struct netdev *netdev)
{
    if (no_kernel_iface(netdev)) {
        return -ENODEV;
    }
    unsigned int idx = if_nametoindex(netdev_get_name(netdev));
    return idx ? (int) idx : -ENODEV;
}

static int
netdev_gl_get_carrier(const struct netdev *netdev, bool *carrier)
{
    struct gl_port_info info;
    int error = netdev_gl_query(netdev, &info);
    if (!error) {
        *carrier = info.link_up != 0;
    }
    return error == ENOENT ? ENODEV : error;
}

static int
netdev_gl_get_stats(const struct netdev *netdev, struct netdev_stats *stats)
{
    struct gl_port_info info;
    int error = netdev_gl_query(netdev, &info);
    if (!error) {
        stats->rx_packets = info.stats.rx_packets;
        stats->rx_bytes = info.stats.rx_bytes;
        stats->tx_packets = info.stats.tx_packets;
        stats->tx_bytes = info.stats.tx_bytes;
        stats->rx_dropped = info.stats.rx_dropped;
        stats->tx_dropped = info.stats.tx_dropped;
        stats->rx_errors = info.stats.rx_errors;
        stats->tx_errors = info.stats.tx_errors;
    }
    return error == ENOENT ? ENODEV : error;
}

static int
netdev_gl_get_status(const struct netdev *netdev, struct smap *smap)
{
    struct gl_port_info info;
    int error = netdev_gl_query(netdev, &info);
    if (!error) {
        smap_add_format(smap, "gl_port_no", "%" PRIu32, info.port_no);
        smap_add_format(smap, "dpdk_port_id", "%u", info.dpdk_port_id);
        smap_add(smap, "driver_name", info.driver);
        smap_add(smap, "devargs", info.devargs);
        smap_add_format(smap, "n_rxq", "%u", info.n_rxq);
        smap_add_format(smap, "n_txq", "%u", info.n_txq);
        smap_add_format(smap, "link_speed", "%" PRIu32 " Mbps", info.link_speed_mbps);
        /* As netdev-dpdk reports it. */
        smap_add(smap, "rx_csum_offload",
                 info.offloads & GL_PORT_RX_CHECKSUM ? "true" : "false");
    }
    return error == ENOENT ? 0 : error;
}

/* The kernel interface's IFF_UP/IFF_PROMISC as netdev flags ('off'/'on' applied when
 * nonzero): what internal (tap) and system ports have, as with OVS's netdev-linux. */
static int
kernel_update_flags(const char *name, enum netdev_flags off, enum netdev_flags on,
                    enum netdev_flags *old_flagsp)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    int error = kernel_ifreq(SIOCGIFFLAGS, name, &ifr);
    if (error) {
        return error;
    }
    int old = ifr.ifr_flags;
    *old_flagsp = (old & IFF_UP ? NETDEV_UP : 0) | (old & IFF_PROMISC ? NETDEV_PROMISC : 0);
    int new = old;
    new &= ~((off & NETDEV_UP ? IFF_UP : 0) | (off & NETDEV_PROMISC ? IFF_PROMISC : 0));
    new |= (on & NETDEV_UP ? IFF_UP : 0) | (on & NETDEV_PROMISC ? IFF_PROMISC : 0);
    if (new != old) {
        ifr.ifr_flags = new;
        error = kernel_ifreq(SIOCSIFFLAGS, name, &ifr);
    }
    return error;
}

static int
netdev_gl_update_flags(struct netdev *netdev, enum netdev_flags off, enum netdev_flags on,
                       enum netdev_flags *old_flagsp)
{
    if (no_kernel_iface(netdev)) {
        /* A DPDK or ESP port in gldp is always up and receives everything. */
        *old_flagsp = NETDEV_UP | NETDEV_PROMISC;
        return 0;
    }
    struct netdev_gl *dev = netdev_gl_cast(netdev);
    int error = kernel_update_flags(netdev_get_name(netdev), off, on, old_flagsp);
    ovs_mutex_lock(&dev->mutex);
    if (!error) {
        dev->kernel_flags = (*old_flagsp & ~off) | on;
    } else if (!off && !on) {
        /* Only reading, and the interface is gone (deleted under the port, as with
         * netdev-linux's cached flags): what it had last. */
        *old_flagsp = dev->kernel_flags;
        error = 0;
    }
    ovs_mutex_unlock(&dev->mutex);
    if (!error && (off || on)) {
        netdev_change_seq_changed(netdev);
    }
    return error;
}

/* Addresses of an internal or system port's kernel interface (OVS's route table and
 * tunnel code ask for them, e.g. "ovs-appctl ovs/route/add ... br0"). */
static int
netdev_gl_get_addr_list(const struct netdev *netdev, struct in6_addr **addr,
                        struct in6_addr **mask, int *n)
{
    if (no_kernel_iface(netdev)) {
        return EOPNOTSUPP;
    }
    return netdev_get_addrs(netdev_get_name(netdev), addr, mask, n);
}

int
netdev_gl_prepare_system_port(const struct netdev *netdev)
{
    if (!is_type(netdev, &netdev_gl_system_class)) {
        return 0;
    }
    /* libpcap, which gldp opens system ports with, refuses an interface that is down
     * (OVS's netdev-linux reads from it anyway): bring it up. */
    enum netdev_flags old;
    int error = kernel_update_flags(netdev_get_name(netdev), 0, 0, &old);
    if (!error && !(old & NETDEV_UP)) {
        VLOG_INFO("%s: bringing the interface up (gldp's libpcap port needs it up)",
                  netdev_get_name(netdev));
        error = kernel_update_flags(netdev_get_name(netdev), 0, NETDEV_UP, &old);
    }
    return error;
}

static int
port_list_cb(struct gl_dp *dp, void *aux)
{
    void **out = aux;
    size_t n = 0;
    struct gl_port_info *ports = NULL;
    int error = gl_dp_port_list(dp, &ports, &n);
    if (!error) {
        out[0] = ports;
        out[1] = (void *) (uintptr_t) n;
    }
    return error;
}

/* Notices link and MAC changes in gldp and tells OVS (change_seq), once a second. */
static void
netdev_gl_run(const struct netdev_class *class OVS_UNUSED)
{
    ovs_mutex_lock(&gl_mutex);
    if (time_msec() < next_refresh || ovs_list_is_empty(&all_netdevs)) {
        ovs_mutex_unlock(&gl_mutex);
        return;
    }
    next_refresh = time_msec() + NETDEV_GL_REFRESH_MS;
    void *res[2] = {NULL, NULL};
    if (!with_conn(port_list_cb, res)) {
        struct gl_port_info *ports = res[0];
        size_t n = (size_t) (uintptr_t) res[1];
        struct netdev_gl *dev;
        LIST_FOR_EACH(dev, node, &all_netdevs)
        {
            const struct gl_port_info *p = NULL;
            for (size_t i = 0; i < n; i++) {
                if (!strcmp(ports[i].name, netdev_get_name(&dev->up))) {
                    p = &ports[i];
                    break;
                }
            }
            bool up = p && p->link_up;
            struct eth_addr mac = eth_addr_zero;
            if (p) {
                memcpy(mac.ea, p->mac, ETH_ADDR_LEN);
            }
            if (!dev->seen || up != dev->link_up || !eth_addr_equals(mac, dev->mac)) {
                dev->seen = true;
                dev->link_up = up;
                dev->mac = mac;
                netdev_change_seq_changed(&dev->up);
            }
        }
        gl_dp_free(ports);
    }
    ovs_mutex_unlock(&gl_mutex);
}

static void
netdev_gl_wait(const struct netdev_class *class OVS_UNUSED)
{
    ovs_mutex_lock(&gl_mutex);
    if (!ovs_list_is_empty(&all_netdevs)) {
        poll_timer_wait_until(next_refresh);
    }
    ovs_mutex_unlock(&gl_mutex);
}

void
netdev_gl_ports_changed(void)
{
    ovs_mutex_lock(&gl_mutex);
    next_refresh = 0;
    ovs_mutex_unlock(&gl_mutex);
}

#define NETDEV_GL_CLASS(NAME, RUN, WAIT)                                                   \
    {                                                                                      \
        .type = NAME, .is_pmd = false, .run = RUN, .wait = WAIT, .alloc = netdev_gl_alloc, \
        .construct = netdev_gl_construct, .destruct = netdev_gl_destruct,                  \
        .dealloc = netdev_gl_dealloc, .get_config = netdev_gl_get_config,                  \
        .set_config = netdev_gl_set_config, .get_etheraddr = netdev_gl_get_etheraddr,      \
        .set_etheraddr = netdev_gl_set_etheraddr, .get_mtu = netdev_gl_get_mtu,            \
        .set_mtu = netdev_gl_set_mtu, .get_ifindex = netdev_gl_get_ifindex,                \
        .get_carrier = netdev_gl_get_carrier, .get_stats = netdev_gl_get_stats,            \
        .get_status = netdev_gl_get_status, .update_flags = netdev_gl_update_flags,        \
        .get_addr_list = netdev_gl_get_addr_list,                                          \
    }

/* run/wait are per class: one class does the periodic refresh for all three. */
static const struct netdev_class netdev_gl_dpdk_class =
    NETDEV_GL_CLASS(NETDEV_GL_TYPE_DPDK, netdev_gl_run, netdev_gl_wait);
static const struct netdev_class netdev_gl_internal_class =
    NETDEV_GL_CLASS(NETDEV_GL_TYPE_INTERNAL, NULL, NULL);
static const struct netdev_class netdev_gl_system_class =
    NETDEV_GL_CLASS(NETDEV_GL_TYPE_SYSTEM, NULL, NULL);
static const struct netdev_class netdev_gl_esp_class =
    NETDEV_GL_CLASS(NETDEV_GL_TYPE_ESP, NULL, NULL);

void
netdev_gl_register(void)
{
    static struct ovsthread_once once = OVSTHREAD_ONCE_INITIALIZER;
    if (ovsthread_once_start(&once)) {
        netdev_register_provider(&netdev_gl_dpdk_class);
        netdev_register_provider(&netdev_gl_internal_class);
        netdev_register_provider(&netdev_gl_system_class);
        netdev_register_provider(&netdev_gl_esp_class);
        ovsthread_once_done(&once);
    }
}
