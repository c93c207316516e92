/* netdev-gl.h — OVS netdev classes for ports of datapath type "gl".
 *
 * Purpose: an OVS netdev for a port that lives in gldp. ovs-vswitchd never touches its
 * packets (gldp does); the netdev carries the port's configuration (DPDK devargs) to
 * dpif-gl's port_add and reports what gldp knows about the port (MAC, MTU, carrier,
 * counters, driver). Three types:
 *   "dpdk"        options:dpdk-devargs=... (or options:devargs=...): any DPDK ethdev.
 *                 Interface type "gl" is an alias (dpif-gl's port_open_type maps it here).
 *   "gl-internal" what "internal" ports (the bridge's local port) open as on a gl bridge:
 *                 a net_tap device in gldp whose kernel interface has the port's name.
 *   "gl-system"   what plain "system" ports (existing kernel interfaces, e.g. a veth)
 *                 open as: a net_pcap device in gldp on that interface (incoming
 *                 direction only), so that frames pass unchanged (no kernel defrag).
 * Optional for all: options:n_rxq (rx queues in gldp).
 *
 * Thread-safety: all functions may be called from any thread (one mutex-protected gldp
 * connection serves every netdev query).
 */
#ifndef GL_OVS_NETDEV_GL_H
#define GL_OVS_NETDEV_GL_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct netdev;
struct gl_dp;

#define NETDEV_GL_TYPE_DPDK "dpdk"
#define NETDEV_GL_TYPE_INTERNAL "gl-internal"
#define NETDEV_GL_TYPE_SYSTEM "gl-system"
#define NETDEV_GL_TYPE_ESP \
    "gl-esp" /* gldp ESP port: options remote_ip, local_ip, underlay, group */
/* Devargs prefix (DPDK device name) of gl-system ports; the port's name follows. */
#define NETDEV_GL_SYSTEM_PREFIX "net_pcap_ovs_"

/* Registers the three classes (once). */
void netdev_gl_register(void);

/* The gldp socket ovs-vswitchd uses: $GLDP_SOCKET, else /run/gldp/gldp.sock. */
const char *gl_ovs_socket_path(void);

/* True when 'netdev' is one of our classes. */
bool netdev_is_gl(const struct netdev *);

/* The devargs and rx queue count gldp should open 'netdev' with. Returns 0, or EINVAL
 * when the netdev is not configured (no devargs), EOPNOTSUPP when it is not ours. */
int netdev_gl_get_port_config(const struct netdev *, char *devargs, size_t devargs_len,
                              uint16_t *n_rxq);

/* The MTU requested for 'netdev' (mtu_request) before gldp had the port, or 0: dpif-gl
 * applies it when it adds the port. */
int netdev_gl_get_mtu_request(const struct netdev *);

/* Readies the kernel interface of a gl-system port for gldp (brings it up when down).
 * Returns 0 or an errno; 0 for the other types. */
int netdev_gl_prepare_system_port(const struct netdev *);

/* The netdev type of an existing gldp port, from the devargs dpif-gl gave it. */
const char *netdev_gl_type_of(const char *name, const char *devargs);

/* Tells the netdev layer that gldp's view of the ports may have changed (port added or
 * removed): cached state is refreshed on the next query. */
void netdev_gl_ports_changed(void);

#endif
