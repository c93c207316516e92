/* dpapi_c_test.c — the C ABI of the datapath API (gl_dpapi.h) against a live gldp.
 *
 * Usage: dpapi_c_test SOCKET. gldp must run with two ports named n1 and n2 on
 * net_null devices with no-rx=1 (test_dpapi_c.py starts it), one PMD, no flows.
 * Compiled as C11 so that the header is proven to be plain C. Exercises every function
 * of the ABI and checks what a user would notice: values, errno codes and messages.
 * Prints one line per check and "N passed, N failed"; exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane/api/gl_dpapi.h"

static int n_passed, n_failed;

__attribute__((format(printf, 2, 3))) static bool check(bool ok, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s ", ok ? "PASS" : "FAIL");
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
  if (ok)
    n_passed++;
  else
    n_failed++;
  return ok;
}

/* The call returned `want` and the handle's message contains `words`. */
static bool check_err(struct gl_dp* dp, int rc, int want, const char* words, const char* what) {
  const char* msg = gl_dp_last_error(dp);
  return check(rc == want && strstr(msg, words) != NULL, "%s: rc %d (want %d), message '%s'", what,
               rc, want, msg);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static uint16_t be16(uint16_t v) {
  return (uint16_t)((v >> 8) | (v << 8));
}

/* A 60-byte Ethernet/IPv4/UDP packet. */
static size_t build_udp(uint8_t* p, uint8_t last_octet) {
  static const uint8_t hdr[] = {
      0x02, 0,    0,  0,  0, 0x02, 0x02, 0, 0,  0,  0, 0x01, 0x08, 0x00, /* eth */
      0x45, 0,    0,  46, 0, 0,    0,    0, 64, 17, 0, 0,    10,   0,
      0,    1,    10, 0,  0, 2,             /* ipv4 */
      0x04, 0xd2, 0,  80, 0, 26,   0,    0, /* udp */
  };
  memset(p, 0, 60);
  memcpy(p, hdr, sizeof hdr);
  p[33] = last_octet;
  return 60;
}

static int cmp_ufid(const void* a, const void* b) {
  const struct gl_ufid* x = a;
  const struct gl_ufid* y = b;
  if (x->hi != y->hi) return x->hi < y->hi ? -1 : 1;
  if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
  return 0;
}

static bool key_eq(const struct gl_flow_key* a, const struct gl_flow_key* b) {
  return memcmp(a, b, sizeof *a) == 0;
}

/* Counts the flows of a full dump and collects their UFIDs (up to cap). */
static int dump_all(struct gl_dp* dp, uint32_t flags, struct gl_ufid* ufids, size_t cap, size_t* n,
                    size_t* with_actions) {
  struct gl_flow_dump* d = NULL;
  int rc = gl_dp_flow_dump_start(dp, flags, &d);
  *n = 0;
  if (with_actions) *with_actions = 0;
  if (rc != 0) return rc;
  struct gl_flow f;
  while ((rc = gl_dp_flow_dump_next(d, &f)) == 0) {
    if (*n < cap) ufids[*n] = f.ufid;
    if (with_actions && f.actions_len > 0 && f.actions != NULL) (*with_actions)++;
    (*n)++;
  }
  int done = gl_dp_flow_dump_done(d);
  return rc == ENOENT ? done : rc;
}

/* Waits (up to 3 s) for port `no`'s tx_packets to reach `want`. */
static uint64_t wait_tx(struct gl_dp* dp, uint32_t no, uint64_t want) {
  struct gl_port_info pi;
  uint64_t v = 0;
  for (int i = 0; i < 300; i++) {
    if (gl_dp_port_get(dp, no, &pi) == 0) v = pi.stats.tx_packets;
    if (v >= want) break;
    sleep_ms(10);
  }
  return v;
}

static uint64_t drop_count(const struct gl_dp_stats* s, const char* name) {
  for (uint32_t i = 0; i < s->n_drops; i++)
    if (strcmp(s->drops[i].name, name) == 0) return s->drops[i].count;
  return UINT64_MAX;
}

/* n executes of the same packet and actions (callers change single entries). */
static void fill_executes(struct gl_execute* ex, int n, const struct gl_flow_key* md,
                          const uint8_t* acts, size_t alen, const uint8_t* pkt, size_t len) {
  for (int i = 0; i < n; i++) {
    ex[i].md = *md;
    ex[i].actions = acts;
    ex[i].actions_len = alen;
    ex[i].packet = pkt;
    ex[i].packet_len = len;
  }
}

/* ---- the checks, in the order a provider would use the ABI ------------------------------ */

enum { kFlows = 1000 };

static struct gl_dp* test_open(const char* sock) {
  struct gl_dp* dp = (struct gl_dp*)1;
  int rc = gl_dp_open("/nonexistent/gldp.sock", &dp);
  check(rc == ENOENT && dp == NULL && strstr(gl_dp_last_error(NULL), "cannot connect") != NULL,
        "open of a missing socket: rc %d, handle cleared, message '%s'", rc,
        gl_dp_last_error(NULL));
  check(gl_dp_open(NULL, &dp) == EINVAL, "open(NULL path) is EINVAL");
  check(gl_dp_open(sock, NULL) == EINVAL, "open(NULL out) is EINVAL");
  rc = gl_dp_open(sock, &dp);
  check(rc == 0 && dp != NULL, "open %s: rc %d", sock, rc);
  if (dp == NULL) return NULL;
  check(gl_dp_fd(dp) >= 0 && gl_dp_fd(NULL) == -1, "fd %d; fd(NULL) is -1", gl_dp_fd(dp));
  check(strcmp(gl_dp_last_error(dp), "") == 0, "a new handle has no last error");
  return dp;
}

static void test_null_args(struct gl_dp* dp) {
  struct gl_dp_info info;
  struct gl_port_info pi;
  struct gl_flow f;
  check(gl_dp_get_info(NULL, &info) == EINVAL, "get_info(NULL handle) is EINVAL");
  check_err(dp, gl_dp_get_info(dp, NULL), EINVAL, "NULL", "get_info(NULL out)");
  check_err(dp, gl_dp_port_add(dp, NULL, "net_null9", GL_PORT_ANY, 0, 0, NULL), EINVAL, "NULL",
            "port_add(NULL name)");
  check_err(dp, gl_dp_port_get_by_name(dp, NULL, &pi), EINVAL, "NULL", "port_get_by_name(NULL)");
  check_err(dp, gl_dp_flow_put(dp, NULL, 3, NULL), EINVAL, "NULL", "flow_put(NULL arrays)");
  check(gl_dp_flow_put(dp, NULL, 0, NULL) == 0, "flow_put of 0 entries is a no-op");
  check_err(dp, gl_dp_flow_del(dp, NULL, 1, NULL), EINVAL, "NULL", "flow_del(NULL arrays)");
  check_err(dp, gl_dp_flow_get(dp, NULL, &f, NULL, 0), EINVAL, "NULL", "flow_get(NULL ufid)");
  check_err(dp, gl_dp_execute(dp, NULL, NULL, 0, NULL, 0), EINVAL, "NULL", "execute(NULL packet)");
  check_err(dp, gl_dp_recv_upcall(dp, 0, NULL), EINVAL, "NULL", "recv_upcall(NULL out)");
  check_err(dp, gl_dp_set_config(dp, NULL, "1"), EINVAL, "NULL", "set_config(NULL key)");
  check(gl_dp_flow_dump_next(NULL, &f) == EINVAL, "dump_next(NULL) is EINVAL");
  check(gl_dp_flow_dump_done(NULL) == 0, "dump_done(NULL) is a no-op");
  gl_dp_close(NULL);
  gl_dp_free(NULL);
  check(true, "close(NULL) and free(NULL) are no-ops");
}

static void test_info(struct gl_dp* dp, const char* sock) {
  struct gl_dp_info info;
  int rc = gl_dp_get_info(dp, &info);
  check(rc == 0, "get_info: rc %d", rc);
  check(info.api_version == 3, "info: api_version %u", info.api_version);
  check(info.version[0] != '\0', "info: version '%s'", info.version);
  check(info.n_pmds == 1 && strcmp(info.pmd_cores, "1") == 0, "info: %u PMD on cores '%s'",
        info.n_pmds, info.pmd_cores);
  check(info.n_ports == 2 && info.max_ports >= 2, "info: %u ports of %u", info.n_ports,
        info.max_ports);
  check(info.n_flows == 0, "info: %llu flows", (unsigned long long)info.n_flows);
  check((info.features & GL_DP_FEATURE_RECIRC) && (info.features & GL_DP_FEATURE_UFID),
        "info: features 0x%llx include recirc and ufid", (unsigned long long)info.features);
  check(info.boot_id != 0, "info: boot_id 0x%llx", (unsigned long long)info.boot_id);
  /* The boot id identifies the gldp instance, not the connection. */
  struct gl_dp* other = NULL;
  struct gl_dp_info info2;
  if (gl_dp_open(sock, &other) == 0 && gl_dp_get_info(other, &info2) == 0)
    check(info2.boot_id == info.boot_id, "a second connection sees the same boot_id");
  else
    check(false, "second connection: %s", gl_dp_last_error(other));
  gl_dp_close(other);
}

static void test_ports(struct gl_dp* dp, uint32_t* n1, uint32_t* n2) {
  struct gl_port_info* ports = NULL;
  size_t n = 0;
  int rc = gl_dp_port_list(dp, &ports, &n);
  check(rc == 0 && n == 2 && ports != NULL, "port_list: rc %d, %zu ports", rc, n);
  if (rc == 0 && n == 2)
    check(strcmp(ports[0].name, "n1") == 0 && strcmp(ports[1].name, "n2") == 0 &&
              ports[0].port_no < ports[1].port_no,
          "port_list: n1 = %u, n2 = %u in port order", ports[0].port_no, ports[1].port_no);
  gl_dp_free(ports);

  struct gl_port_info pi;
  rc = gl_dp_port_get_by_name(dp, "n1", &pi);
  *n1 = pi.port_no;
  check(
      rc == 0 && strcmp(pi.driver, "net_null") == 0 && strcmp(pi.devargs, "net_null0,no-rx=1") == 0,
      "port_get_by_name n1: rc %d, port %u, driver '%s', devargs '%s'", rc, pi.port_no, pi.driver,
      pi.devargs);
  rc = gl_dp_port_get_by_name(dp, "n2", &pi);
  *n2 = pi.port_no;
  check(rc == 0, "port_get_by_name n2: port %u", pi.port_no);

  /* Add with a chosen number, then find it by number and by name. */
  memset(&pi, 0, sizeof pi);
  rc = gl_dp_port_add(dp, "p3", "net_null2,no-rx=1", 7, 1, 0, &pi);
  check(rc == 0 && pi.port_no == 7 && strcmp(pi.name, "p3") == 0 && pi.n_rxq == 1,
        "port_add p3 as 7: rc %d (%s), port %u, name '%s', n_rxq %u", rc,
        rc == 0 ? "ok" : gl_dp_last_error(dp), pi.port_no, pi.name, pi.n_rxq);
  rc = gl_dp_port_list(dp, &ports, &n);
  check(rc == 0 && n == 3, "port_list after add: %zu ports", n);
  gl_dp_free(ports);
  memset(&pi, 0, sizeof pi);
  rc = gl_dp_port_get(dp, 7, &pi);
  check(rc == 0 && strcmp(pi.name, "p3") == 0, "port_get 7: rc %d, name '%s'", rc, pi.name);
  memset(&pi, 0, sizeof pi);
  rc = gl_dp_port_get_by_name(dp, "p3", &pi);
  check(rc == 0 && pi.port_no == 7, "port_get_by_name p3: port %u", pi.port_no);

  /* Refusals: each with gldp's reason. */
  check_err(dp, gl_dp_port_add(dp, "p3", "net_null3,no-rx=1", GL_PORT_ANY, 0, 0, NULL), EEXIST,
            "'p3' exists", "port_add of a duplicate name");
  rc = gl_dp_port_add(dp, "p4", "net_nosuchdriver0", GL_PORT_ANY, 0, 0, NULL);
  check(rc != 0 && strstr(gl_dp_last_error(dp), "cannot create device") != NULL,
        "port_add with bad devargs: rc %d, message '%s'", rc, gl_dp_last_error(dp));
  check_err(dp, gl_dp_port_add(dp, "p5", "net_null4,no-rx=1", 7, 0, 0, NULL), EBUSY,
            "in use by 'p3'", "port_add on a taken number");
  check_err(dp,
            gl_dp_port_add(dp, "a-name-that-is-longer-than-31-bytes", "net_null5", GL_PORT_ANY, 0,
                           0, NULL),
            ENAMETOOLONG, "longer than 31", "port_add with a too long name");
  rc = gl_dp_port_list(dp, &ports, &n);
  check(rc == 0 && n == 3, "refused adds left %zu ports", n);
  gl_dp_free(ports);

  /* Delete by number and by name. */
  check(gl_dp_port_del(dp, 7) == 0, "port_del 7");
  check_err(dp, gl_dp_port_get(dp, 7, &pi), ENOENT, "no port 7", "port_get of a deleted port");
  check_err(dp, gl_dp_port_del(dp, 7), ENOENT, "no port 7", "port_del of a deleted port");
  rc = gl_dp_port_add(dp, "p6", "net_null6,no-rx=1", GL_PORT_ANY, 0, 0, &pi);
  check(rc == 0 && pi.port_no != GL_PORT_ANY && pi.port_no != *n1 && pi.port_no != *n2,
        "port_add p6 with GL_PORT_ANY: rc %d, port %u", rc, pi.port_no);
  check(gl_dp_port_del_by_name(dp, "p6") == 0, "port_del_by_name p6");
  check_err(dp, gl_dp_port_del_by_name(dp, "p6"), ENOENT, "no port named 'p6'",
            "port_del_by_name of a deleted port");
  check_err(dp, gl_dp_port_del(dp, GL_PORT_ANY), EINVAL, "GL_PORT_ANY", "port_del(GL_PORT_ANY)");
  rc = gl_dp_port_list(dp, &ports, &n);
  check(rc == 0 && n == 2, "after deletes %zu ports remain", n);
  gl_dp_free(ports);
}

static void test_text_helpers(void) {
  struct gl_flow_key key, mask, key2, mask2;
  char err[256], buf[512];
  int rc = gl_flow_parse("in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.0/255.255.255.0)", &key,
                         &mask, err, sizeof err);
  check(rc == 0 && key.in_port == 1 && mask.in_port == 0xffffffffu &&
            key.eth_type == be16(0x0800) && key.ipv4_dst == 0x0000000a &&
            mask.ipv4_dst == 0x00ffffff,
        "flow_parse: rc %d, fields in the FlowKey byte order", rc);
  rc = gl_flow_format(&key, &mask, buf, sizeof buf);
  check(rc == 0 && strcmp(buf, "in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.0/255.255.255.0)") == 0,
        "flow_format: '%s'", buf);
  rc = gl_flow_parse(buf, &key2, &mask2, NULL, 0);
  check(rc == 0 && key_eq(&key, &key2) && key_eq(&mask, &mask2), "flow_parse(flow_format(m)) == m");
  rc = gl_flow_format(&key, &mask, buf, 8);
  check(rc == ENOBUFS && strlen(buf) == 7, "flow_format into 8 bytes: ENOBUFS, '%s'", buf);
  rc = gl_flow_parse("in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.300)", &key, &mask, err,
                     sizeof err);
  check(rc == EINVAL && strstr(err, "10.0.0.300") != NULL, "flow_parse error: '%s'", err);

  uint8_t acts[GL_DP_MAX_ACTIONS];
  size_t len = 0;
  rc = gl_actions_parse("2,push_vlan(vid=10,pcp=0),recirc(0x1)", acts, sizeof acts, &len, err,
                        sizeof err);
  check(rc == 0 && len > 0 && len % 4 == 0, "actions_parse: rc %d, %zu bytes", rc, len);
  rc = gl_actions_format(acts, len, buf, sizeof buf);
  check(rc == 0 && strcmp(buf, "2,push_vlan(vid=10,pcp=0),recirc(0x1)") == 0,
        "actions_format: '%s'", buf);
  rc = gl_actions_parse("2,3", acts, 4, &len, err, sizeof err);
  check(rc == ENOBUFS && len == 16, "actions_parse into 4 bytes: ENOBUFS, needs %zu", len);
  rc = gl_actions_parse("trunc(100)", acts, sizeof acts, &len, err, sizeof err);
  check(rc == EINVAL && strstr(err, "trunc") != NULL, "actions_parse of trunc: '%s'", err);
  rc = gl_actions_parse("ct(commit,zone=5),2", acts, sizeof acts, &len, err, sizeof err);
  check(rc == 0 && len > 8, "actions_parse of ct(commit,zone=5),2: rc %d '%s'", rc, err);
  rc = gl_actions_parse("drop", acts, sizeof acts, &len, NULL, 0);
  check(rc == 0 && len == 0, "actions_parse of drop: empty blob");
  rc = gl_actions_format(NULL, 0, buf, sizeof buf);
  check(rc == 0 && strcmp(buf, "drop") == 0, "actions_format of nothing: '%s'", buf);

  struct gl_ufid u = {0x1122334455667788ull, 0x99aabbccddeeff00ull}, u2;
  char ubuf[GL_UFID_STRLEN];
  rc = gl_ufid_format(&u, ubuf, sizeof ubuf);
  check(rc == 0 && strcmp(ubuf, "99aabbcc-ddee-ff00-1122-334455667788") == 0, "ufid_format: '%s'",
        ubuf);
  rc = gl_ufid_parse(ubuf, &u2);
  check(rc == 0 && u2.lo == u.lo && u2.hi == u.hi, "ufid_parse(ufid_format(u)) == u");
  check(gl_ufid_parse("not-a-ufid", &u2) == EINVAL, "ufid_parse of junk is EINVAL");

  struct gl_ufid a, b;
  gl_flow_key_exact_mask(&mask);
  check(mask.in_port == 0xffffffffu && mask.pad0 == 0 && mask.pad3 == 0,
        "exact mask covers fields, not padding");
  memset(&key, 0, sizeof key);
  key.in_port = 1;
  gl_ufid_from_match(&key, &mask, &a);
  key.eth_type = be16(0x0800);
  gl_ufid_from_match(&key, &mask, &b);
  gl_ufid_from_match(&key, &mask, &u2);
  check(cmp_ufid(&a, &b) != 0 && cmp_ufid(&b, &u2) == 0,
        "ufid_from_match: deterministic, different matches differ");
}

static void test_flows(struct gl_dp* dp, uint32_t n1, uint32_t n2) {
  static struct gl_flow_put puts[kFlows];
  static struct gl_flow_result res[kFlows];
  static struct gl_ufid ufids[kFlows], dumped[kFlows + 10];
  struct gl_flow_key key, mask;
  char err[256], text[512];
  uint8_t acts[64];
  size_t acts_len = 0;

  check(gl_dp_flow_flush(dp) == 0, "flow_flush on an empty table");
  snprintf(text, sizeof text, "in_port(%u),eth_type(0x0800),ipv4(dst=10.1.0.0)", n1);
  int rc = gl_flow_parse(text, &key, &mask, err, sizeof err);
  check(rc == 0, "flow_parse '%s': %s", text, rc == 0 ? "ok" : err);
  snprintf(text, sizeof text, "%u", n2);
  rc = gl_actions_parse(text, acts, sizeof acts, &acts_len, err, sizeof err);
  check(rc == 0 && acts_len == 8, "actions_parse '%s': %zu bytes", text, acts_len);

  /* 1000 flows, one per destination address, in one call. */
  for (int i = 0; i < kFlows; i++) {
    struct gl_flow_put* p = &puts[i];
    memset(p, 0, sizeof *p);
    p->key = key;
    p->key.ipv4_dst = 10u | 1u << 8 | (uint32_t)(i >> 8) << 16 | (uint32_t)(i & 0xff) << 24;
    p->mask = mask;
    p->flags = GL_FLOW_PUT_CREATE;
    p->actions = acts;
    p->actions_len = acts_len;
    gl_ufid_from_match(&p->key, &p->mask, &p->ufid);
    ufids[i] = p->ufid;
  }
  rc = gl_dp_flow_put(dp, puts, kFlows, res);
  int bad = 0;
  for (int i = 0; i < kFlows; i++) bad += res[i].error != 0;
  check(rc == 0 && bad == 0, "flow_put of %d flows: rc %d, %d entries failed (first: '%s')", kFlows,
        rc, bad, res[0].message);
  struct gl_dp_info info;
  gl_dp_get_info(dp, &info);
  check(info.n_flows == kFlows, "info: %llu flows installed", (unsigned long long)info.n_flows);

  /* Read every flow back by UFID. */
  int mismatch = 0;
  uint8_t got[GL_DP_MAX_ACTIONS];
  for (int i = 0; i < kFlows; i++) {
    struct gl_flow f;
    rc = gl_dp_flow_get(dp, &ufids[i], &f, got, sizeof got);
    if (rc != 0 || cmp_ufid(&f.ufid, &ufids[i]) != 0 || !key_eq(&f.key, &puts[i].key) ||
        !key_eq(&f.mask, &puts[i].mask) || f.actions_len != acts_len || f.actions != got ||
        memcmp(got, acts, acts_len) != 0 || f.stats.packets != 0)
      mismatch++;
  }
  check(mismatch == 0, "flow_get of all %d flows: %d differ from what was put", kFlows, mismatch);
  {
    struct gl_flow f;
    rc = gl_dp_flow_get(dp, &ufids[0], &f, got, 4);
    check(rc == ENOBUFS && f.actions_len == acts_len && key_eq(&f.key, &puts[0].key),
          "flow_get into a 4-byte buffer: ENOBUFS, needs %zu, key filled", f.actions_len);
    struct gl_ufid none = {12345, 67890};
    check_err(dp, gl_dp_flow_get(dp, &none, &f, got, sizeof got), ENOENT, "",
              "flow_get of an unknown UFID");
  }

  /* A full dump sees each UFID exactly once. */
  size_t n = 0, with_acts = 0;
  rc = dump_all(dp, 0, dumped, kFlows + 10, &n, &with_acts);
  int same = n == kFlows;
  if (same) {
    qsort(dumped, n, sizeof dumped[0], cmp_ufid);
    struct gl_ufid sorted[kFlows];
    memcpy(sorted, ufids, sizeof sorted);
    qsort(sorted, kFlows, sizeof sorted[0], cmp_ufid);
    same = memcmp(sorted, dumped, sizeof sorted) == 0;
  }
  check(rc == 0 && same && with_acts == kFlows,
        "flow dump: rc %d, %zu flows (%zu with actions), UFIDs %s", rc, n, with_acts,
        same ? "match" : "differ");
  rc = dump_all(dp, GL_FLOW_DUMP_NO_ACTIONS, dumped, kFlows + 10, &n, &with_acts);
  check(rc == 0 && n == kFlows && with_acts == 0, "flow dump without actions: %zu flows, %zu with",
        n, with_acts);
  {
    /* Other calls on the handle between dump_next calls, as a revalidator makes them. */
    struct gl_flow_dump* d = NULL;
    struct gl_flow f;
    struct gl_dp_info mid;
    size_t cnt = 0;
    int info_ok = 1;
    rc = gl_dp_flow_dump_start(dp, 0, &d);
    while (rc == 0 && (rc = gl_dp_flow_dump_next(d, &f)) == 0) {
      if (cnt++ % 100 == 0) info_ok &= gl_dp_get_info(dp, &mid) == 0;
    }
    int done = gl_dp_flow_dump_done(d);
    check(rc == ENOENT && done == 0 && cnt == kFlows && info_ok,
          "dump interleaved with info calls: %zu flows, end rc %d, done %d", cnt, rc, done);
    check_err(dp, gl_dp_flow_dump_start(dp, 0x80, &d), EINVAL, "unknown flags",
              "dump_start with unknown flags");
  }

  /* Create-only put of existing flows: EEXIST per entry, nothing changes. */
  rc = gl_dp_flow_put(dp, puts, 3, res);
  check(rc == 0 && res[0].error == EEXIST && res[2].error == EEXIST &&
            strstr(res[0].message, "exists") != NULL,
        "re-put with CREATE only: entry errors %d/%d, '%s'", res[0].error, res[2].error,
        res[0].message);

  /* Modify flow 0's actions. */
  struct gl_flow_put mod = puts[0];
  uint8_t acts2[64];
  size_t acts2_len = 0;
  snprintf(text, sizeof text, "push_vlan(vid=10,pcp=0),%u", n2);
  gl_actions_parse(text, acts2, sizeof acts2, &acts2_len, err, sizeof err);
  mod.actions = acts2;
  mod.actions_len = acts2_len;
  mod.flags = GL_FLOW_PUT_MODIFY;
  rc = gl_dp_flow_put(dp, &mod, 1, res);
  check(rc == 0 && res[0].error == 0, "modify flow 0: rc %d, entry %d '%s'", rc, res[0].error,
        res[0].message);
  {
    struct gl_flow f;
    char fmt[256] = "";
    rc = gl_dp_flow_get(dp, &ufids[0], &f, got, sizeof got);
    gl_actions_format(f.actions, f.actions_len, fmt, sizeof fmt);
    check(rc == 0 && strcmp(fmt, text) == 0, "flow 0 now has actions '%s'", fmt);
  }
  mod.key.ipv4_dst ^= 0x01000000;
  rc = gl_dp_flow_put(dp, &mod, 1, res);
  check(rc == 0 && res[0].error == EINVAL && strstr(res[0].message, "keep the flow's match"),
        "modify with another match: %d '%s'", res[0].error, res[0].message);
  mod = puts[0];
  mod.ufid.hi ^= 1;
  mod.flags = GL_FLOW_PUT_MODIFY;
  rc = gl_dp_flow_put(dp, &mod, 1, res);
  check(rc == 0 && res[0].error == ENOENT && strstr(res[0].message, "no such flow"),
        "modify-only of an unknown UFID: %d '%s'", res[0].error, res[0].message);

  /* Refused entries in a mixed batch: an action gldp lacks, no flags, oversized actions. */
  static const uint8_t trunc[8] = {8, 0, 13, 0, 100, 0, 0, 0}; /* OVS_ACTION_ATTR_TRUNC */
  struct gl_flow_put mixed[4];
  for (int i = 0; i < 4; i++) {
    mixed[i] = puts[0];
    mixed[i].key.ipv4_dst = 0x0a0a0a0a + (uint32_t)i;
    gl_ufid_from_match(&mixed[i].key, &mixed[i].mask, &mixed[i].ufid);
  }
  mixed[0].actions = trunc;
  mixed[0].actions_len = sizeof trunc;
  mixed[1].flags = 0;
  mixed[2].actions_len = GL_DP_MAX_ACTIONS + 1;
  rc = gl_dp_flow_put(dp, mixed, 4, res);
  check(rc == 0 && res[0].error == EINVAL && strstr(res[0].message, "trunc") != NULL &&
            strstr(res[0].message, "not supported") != NULL,
        "put with a trunc action: %d '%s'", res[0].error, res[0].message);
  check(res[1].error == EINVAL && strstr(res[1].message, "create") != NULL,
        "put without flags: %d '%s'", res[1].error, res[1].message);
  check(res[2].error == EINVAL && strstr(res[2].message, "4096") != NULL,
        "put with 4097 bytes of actions: %d '%s'", res[2].error, res[2].message);
  check(res[3].error == 0, "the good entry of the mixed batch: %d '%s'", res[3].error,
        res[3].message);
  gl_dp_get_info(dp, &info);
  check(info.n_flows == kFlows + 1, "only the good entry was installed: %llu flows",
        (unsigned long long)info.n_flows);

  /* Delete half in one batch; again: ENOENT. */
  rc = gl_dp_flow_del(dp, ufids, kFlows / 2, res);
  bad = 0;
  for (int i = 0; i < kFlows / 2; i++) bad += res[i].error != 0;
  check(rc == 0 && bad == 0, "flow_del of %d flows: rc %d, %d failed", kFlows / 2, rc, bad);
  rc = gl_dp_flow_del(dp, ufids, 2, res);
  check(rc == 0 && res[0].error == ENOENT && res[1].error == ENOENT,
        "flow_del of deleted flows: %d '%s'", res[0].error, res[0].message);
  rc = dump_all(dp, 0, dumped, kFlows + 10, &n, NULL);
  check(rc == 0 && n == kFlows / 2 + 1, "dump after delete: %zu flows", n);
  check(gl_dp_flow_flush(dp) == 0, "flow_flush");
  rc = dump_all(dp, 0, dumped, kFlows + 10, &n, NULL);
  gl_dp_get_info(dp, &info);
  check(rc == 0 && n == 0 && info.n_flows == 0, "after flush: dump %zu, info %llu flows", n,
        (unsigned long long)info.n_flows);
}

static void test_execute(struct gl_dp* dp, uint32_t n1, uint32_t n2) {
  uint8_t pkt[64], acts[64];
  size_t len = build_udp(pkt, 2), alen = 0;
  char text[64], err[128];
  struct gl_port_info pi;
  gl_dp_port_get(dp, n2, &pi);
  const uint64_t before = pi.stats.tx_packets;

  struct gl_flow_key md;
  memset(&md, 0, sizeof md);
  md.in_port = n1;
  snprintf(text, sizeof text, "%u", n2);
  gl_actions_parse(text, acts, sizeof acts, &alen, err, sizeof err);
  int rc = gl_dp_execute(dp, &md, acts, alen, pkt, len);
  check(rc == 0, "execute output:%u: rc %d", n2, rc);
  uint64_t after = wait_tx(dp, n2, before + 1);
  check(after == before + 1, "n2 tx_packets %llu -> %llu", (unsigned long long)before,
        (unsigned long long)after);

  static const uint8_t trunc[8] = {8, 0, 13, 0, 100, 0, 0, 0};
  check_err(dp, gl_dp_execute(dp, &md, trunc, sizeof trunc, pkt, len), EINVAL, "trunc",
            "execute with a trunc action");
  check_err(dp, gl_dp_execute(dp, &md, acts, alen, pkt, 10), EINVAL, "shorter than 14",
            "execute of a 10-byte packet");
  static uint8_t big[GL_DP_MAX_PACKET + 1];
  check_err(dp, gl_dp_execute(dp, &md, acts, alen, big, sizeof big), EMSGSIZE, "longer than",
            "execute of an oversized packet");

  /* A batch as an upcall handler sends it: 300 packets (more than one message holds),
   * with a few bad entries among them that fail alone. */
  enum { kBatch = 300 };
  static struct gl_execute ex[kBatch];
  static struct gl_flow_result res[kBatch];
  gl_dp_port_get(dp, n2, &pi);
  const uint64_t before_batch = pi.stats.tx_packets;
  size_t n_good = 0;
  fill_executes(ex, kBatch, &md, acts, alen, pkt, len);
  for (size_t i = 0; i < kBatch; i++) {
    if (i == 7) {
      ex[i].actions = trunc; /* refused by gldp */
      ex[i].actions_len = sizeof trunc;
    } else if (i == 150) {
      ex[i].packet_len = 10; /* refused by gldp */
    } else if (i == 299) {
      ex[i].packet = big; /* refused by the client, never sent */
      ex[i].packet_len = sizeof big;
    } else {
      n_good++;
    }
  }
  rc = gl_dp_execute_batch(dp, ex, kBatch, res);
  check(rc == 0, "execute_batch of %d: rc %d (%s)", kBatch, rc, gl_dp_last_error(dp));
  size_t n_ok = 0;
  for (size_t i = 0; i < kBatch; i++) n_ok += res[i].error == 0;
  check(n_ok == n_good, "execute_batch: %zu of %zu good entries succeeded", n_ok, n_good);
  check(res[7].error == EINVAL && strstr(res[7].message, "trunc") != NULL,
        "execute_batch entry with trunc: %d '%s'", res[7].error, res[7].message);
  check(res[150].error == EINVAL && strstr(res[150].message, "shorter than 14") != NULL,
        "execute_batch 10-byte entry: %d '%s'", res[150].error, res[150].message);
  check(res[299].error == EMSGSIZE, "execute_batch oversized entry: %d '%s'", res[299].error,
        res[299].message);
  after = wait_tx(dp, n2, before_batch + n_good);
  check(after == before_batch + n_good, "execute_batch: n2 tx_packets %llu -> %llu, want +%zu",
        (unsigned long long)before_batch, (unsigned long long)after, n_good);
  check(gl_dp_execute_batch(dp, NULL, 1, res) == EINVAL, "execute_batch(NULL ops)");
}

static void test_upcalls(struct gl_dp* dp, const char* sock, uint32_t n1) {
  struct gl_dp* h = NULL;
  struct gl_upcall u;
  if (gl_dp_open(sock, &h) != 0) {
    check(false, "open a handler connection: %s", gl_dp_last_error(NULL));
    return;
  }
  int rc = gl_dp_upcall_subscribe(h, 77, true);
  check(rc == 0, "upcall_subscribe(pid 77, misses): rc %d", rc);
  check(gl_dp_recv_upcall(h, 0, &u) == EAGAIN, "recv_upcall with nothing pending: EAGAIN");
  check(gl_dp_recv_upcall(h, 50, &u) == EAGAIN, "recv_upcall waiting 50 ms: EAGAIN");

  /* A miss: recirculate to a recirc id that has no flows. */
  uint8_t pkt[64], acts[64];
  size_t len = build_udp(pkt, 9), alen = 0;
  char err[128];
  struct gl_flow_key md;
  memset(&md, 0, sizeof md);
  md.in_port = n1;
  md.pkt_mark = 0x55;
  gl_actions_parse("recirc(9)", acts, sizeof acts, &alen, err, sizeof err);
  rc = gl_dp_execute(dp, &md, acts, alen, pkt, len);
  check(rc == 0, "execute recirc(9): rc %d", rc);
  struct pollfd pfd = {gl_dp_fd(h), POLLIN, 0};
  int pr = poll(&pfd, 1, 3000);
  check(pr == 1 && (pfd.revents & POLLIN), "the handler's fd becomes readable");
  rc = gl_dp_recv_upcall(h, 0, &u);
  check(rc == 0 && u.kind == GL_UPCALL_MISS, "recv_upcall: rc %d, kind %d (miss)", rc, u.kind);
  if (rc == 0) {
    check(u.key.recirc_id == 9 && u.key.in_port == n1 && u.key.pkt_mark == 0x55,
          "miss key: recirc_id %u, in_port %u, skb_mark 0x%x", u.key.recirc_id, u.key.in_port,
          u.key.pkt_mark);
    check(u.key.eth_type == be16(0x0800) && u.key.nw_proto == 17 && u.key.tp_dst == be16(80) &&
              u.key.ipv4_dst == (10u | 9u << 24),
          "miss key: parsed as IPv4/UDP to 10.0.0.9:80");
    check(u.packet_len == len && u.packet != NULL && memcmp(u.packet, pkt, len) == 0,
          "miss packet: %zu bytes, the bytes executed", u.packet_len);
    struct gl_flow_key exact;
    char fbuf[512];
    gl_flow_key_exact_mask(&exact);
    check(gl_flow_format(&u.key, &exact, fbuf, sizeof fbuf) == 0 && strstr(fbuf, "recirc_id(0x9)"),
          "miss key formats as '%.80s...'", fbuf);
  }

  /* An action upcall with userdata to pid 77. */
  rc = gl_actions_parse("userspace(pid=77,userdata(0102030405060708))", acts, sizeof acts, &alen,
                        err, sizeof err);
  check(rc == 0, "actions_parse userspace: %s", rc == 0 ? "ok" : err);
  md.pkt_mark = 0;
  rc = gl_dp_execute(dp, &md, acts, alen, pkt, len);
  check(rc == 0, "execute userspace(pid=77): rc %d", rc);
  rc = gl_dp_recv_upcall(h, 3000, &u);
  static const uint8_t ud[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  check(rc == 0 && u.kind == GL_UPCALL_ACTION && u.pid == 77 && u.userdata_len == 8 &&
            memcmp(u.userdata, ud, 8) == 0 && u.packet_len == len,
        "action upcall: rc %d, kind %d, pid %u, %zu bytes userdata, %zu bytes packet", rc, u.kind,
        u.pid, u.userdata_len, u.packet_len);
  check(gl_dp_recv_upcall(h, 100, &u) == EAGAIN, "no further upcalls");

  /* An upcall that arrives while the handle waits for a reply is queued in the handle:
   * the socket is no longer readable, but recv_upcall(0) still returns it. */
  gl_actions_parse("recirc(10)", acts, sizeof acts, &alen, err, sizeof err);
  rc = gl_dp_execute(dp, &md, acts, alen, pkt, len);
  pfd.revents = 0;
  pr = poll(&pfd, 1, 3000);
  struct gl_dp_info info;
  int irc = gl_dp_get_info(h, &info); /* reads the upcall, then the reply */
  pfd.revents = 0;
  int readable = poll(&pfd, 1, 0);
  rc = gl_dp_recv_upcall(h, 0, &u);
  check(pr == 1 && irc == 0 && readable == 0 && rc == 0 && u.key.recirc_id == 10,
        "an upcall that arrived during another call is queued (fd readable after: %d): rc %d,"
        " recirc_id %u",
        readable, rc, rc == 0 ? u.key.recirc_id : 0);

  /* Misses found in one drain of the queues arrive as one batch: after the socket said
   * readable once, the rest are queued in the handle (gl_dp_upcalls_queued), in order. */
  enum { kMisses = 20 };
  struct gl_execute ex[kMisses];
  struct gl_flow_result res[kMisses];
  static uint8_t pkts[kMisses][64];
  gl_actions_parse("recirc(11)", acts, sizeof acts, &alen, err, sizeof err);
  fill_executes(ex, kMisses, &md, acts, alen, pkts[0], len);
  for (int i = 0; i < kMisses; i++) {
    build_udp(pkts[i], 9);
    pkts[i][14 + 20 + 1] = (uint8_t)i; /* UDP source port low byte: 20 distinct keys */
    ex[i].packet = pkts[i];
  }
  rc = gl_dp_execute_batch(dp, ex, kMisses, res);
  check(rc == 0, "execute_batch of %d recirc(11): rc %d", kMisses, rc);
  pfd.revents = 0;
  pr = poll(&pfd, 1, 3000);
  rc = gl_dp_recv_upcall(h, 0, &u);
  size_t queued = gl_dp_upcalls_queued(h);
  check(pr == 1 && rc == 0 && queued == kMisses - 1,
        "one batch of %d upcalls: first received, %zu queued in the handle", kMisses, queued);
  int in_order = rc == 0 && be16(u.key.tp_src) == 0x0400;
  int got = rc == 0;
  while (got < kMisses && gl_dp_recv_upcall(h, 1000, &u) == 0) {
    in_order &= u.key.recirc_id == 11 && be16(u.key.tp_src) == (0x0400 | got);
    got++;
  }
  check(got == kMisses && in_order && gl_dp_upcalls_queued(h) == 0,
        "all %d misses received, in order (%d)", got, in_order);
  gl_dp_close(h);
}

/* The miss hold: a burst of packets of one new flow sends one upcall; the repeats are
 * held and run through the flow the handler installs (nothing lost, nothing sent up
 * twice); without a flow they go up when the window (gldp default 50 ms) runs out. */
static void test_miss_hold(struct gl_dp* dp, const char* sock, uint32_t n2) {
  struct gl_dp* h = NULL;
  struct gl_upcall u;
  if (gl_dp_open(sock, &h) != 0 || gl_dp_upcall_subscribe(h, 78, true) != 0) {
    check(false, "open and subscribe a handler: %s", gl_dp_last_error(h));
    gl_dp_close(h);
    return;
  }
  struct gl_dp_stats* s0 = NULL;
  gl_dp_get_stats(dp, &s0);
  struct gl_port_info pi;
  gl_dp_port_get(dp, n2, &pi);
  const uint64_t tx0 = pi.stats.tx_packets;

  enum { kBurst = 10 };
  uint8_t pkt[64], acts[64], out[64];
  size_t len = build_udp(pkt, 12), alen = 0, olen = 0;
  char err[128], text[32];
  struct gl_flow_key md;
  memset(&md, 0, sizeof md);
  md.in_port = 1;
  gl_actions_parse("recirc(12)", acts, sizeof acts, &alen, err, sizeof err);
  snprintf(text, sizeof text, "%u", n2);
  gl_actions_parse(text, out, sizeof out, &olen, err, sizeof err);
  struct gl_execute ex[kBurst];
  struct gl_flow_result res[kBurst];
  fill_executes(ex, kBurst, &md, acts, alen, pkt, len);
  int rc = gl_dp_execute_batch(dp, ex, kBurst, res);
  check(rc == 0, "a burst of %d packets of one new flow (recirc(12)): rc %d", kBurst, rc);
  rc = gl_dp_recv_upcall(h, 3000, &u);
  check(rc == 0 && u.key.recirc_id == 12, "the first miss goes up: rc %d", rc);
  check(gl_dp_recv_upcall(h, 20, &u) == EAGAIN, "the %d repeats are not sent up", kBurst - 1);
  /* The handler installs the flow (recirc_id(12) -> output n2) and executes its packet. */
  struct gl_flow_put put;
  memset(&put, 0, sizeof put);
  put.key.recirc_id = 12;
  put.mask.recirc_id = 0xffffffff;
  put.flags = GL_FLOW_PUT_CREATE;
  put.actions = out;
  put.actions_len = olen;
  gl_ufid_from_match(&put.key, &put.mask, &put.ufid);
  struct gl_flow_result pr;
  rc = gl_dp_flow_put(h, &put, 1, &pr);
  check(rc == 0 && pr.error == 0, "handler installs recirc_id(12) -> %u: %s", n2, pr.message);
  rc = gl_dp_execute(h, &md, out, olen, pkt, len);
  uint64_t tx = wait_tx(dp, n2, tx0 + kBurst);
  check(tx == tx0 + kBurst,
        "all %d packets left on port %u (tx +%llu): the held ones ran "
        "through the new flow",
        kBurst, n2, (unsigned long long)(tx - tx0));
  struct gl_dp_stats* s1 = NULL;
  gl_dp_get_stats(dp, &s1);
  if (s0 && s1) {
    check(s1->misses_held - s0->misses_held == kBurst - 1 &&
              s1->misses_held_run - s0->misses_held_run == kBurst - 1,
          "stats: %llu held, %llu run through the flow",
          (unsigned long long)(s1->misses_held - s0->misses_held),
          (unsigned long long)(s1->misses_held_run - s0->misses_held_run));
  }
  check(gl_dp_recv_upcall(h, 100, &u) == EAGAIN, "and none of them went up");

  /* No flow appears: the repeats go up when the window runs out. */
  gl_actions_parse("recirc(13)", acts, sizeof acts, &alen, err, sizeof err);
  for (int i = 0; i < kBurst; i++) ex[i].actions_len = alen;
  rc = gl_dp_execute_batch(dp, ex, kBurst, res);
  int got = 0;
  while (got < kBurst && gl_dp_recv_upcall(h, 1000, &u) == 0 && u.key.recirc_id == 13) got++;
  struct gl_dp_stats* s2 = NULL;
  gl_dp_get_stats(dp, &s2);
  check(rc == 0 && got == kBurst, "without a flow all %d misses go up in the end (%d)", kBurst,
        got);
  if (s1 && s2)
    check(s2->misses_held_sent_up - s1->misses_held_sent_up == kBurst - 1,
          "stats: %llu held, then sent up",
          (unsigned long long)(s2->misses_held_sent_up - s1->misses_held_sent_up));
  gl_dp_flow_del(dp, &put.ufid, 1, &pr);
  gl_dp_free(s0);
  gl_dp_free(s1);
  gl_dp_free(s2);
  gl_dp_close(h);
}

static void test_stats_config(struct gl_dp* dp) {
  struct gl_dp_stats* s = NULL;
  int rc = gl_dp_get_stats(dp, &s);
  check(rc == 0 && s != NULL, "get_stats: rc %d", rc);
  if (s == NULL) return;
  check(s->n_pmds == 1 && s->pmds != NULL && s->pmds[0].core == 1 && s->pmds[0].n_rxq >= 2,
        "stats: %u PMD, core %u with %u rx queues", s->n_pmds, s->pmds ? s->pmds[0].core : 0,
        s->pmds ? s->pmds[0].n_rxq : 0);
  check(s->n_drops > 0 && drop_count(s, "no_port") != UINT64_MAX, "stats: %u drop counters",
        s->n_drops);
  check(s->upcalls_delivered >= 3 && s->tsc_hz > 0 && s->n_flows == 0,
        "stats: %llu upcalls delivered, tsc %llu Hz, %llu flows",
        (unsigned long long)s->upcalls_delivered, (unsigned long long)s->tsc_hz,
        (unsigned long long)s->n_flows);
  const uint64_t no_port = drop_count(s, "no_port");
  gl_dp_free(s);

  /* A packet to a port that does not exist is counted as a no_port drop. */
  uint8_t pkt[64];
  size_t len = build_udp(pkt, 3);
  static const uint8_t out200[8] = {8, 0, 1, 0, 200, 0, 0, 0}; /* output:200 */
  struct gl_flow_key md;
  memset(&md, 0, sizeof md);
  md.in_port = 1;
  rc = gl_dp_execute(dp, &md, out200, sizeof out200, pkt, len);
  uint64_t now = no_port;
  for (int i = 0; i < 300 && now < no_port + 1; i++) {
    if (gl_dp_get_stats(dp, &s) == 0) {
      now = drop_count(s, "no_port");
      gl_dp_free(s);
    }
    sleep_ms(10);
  }
  check(rc == 0 && now == no_port + 1, "output to port 200: no_port drops %llu -> %llu",
        (unsigned long long)no_port, (unsigned long long)now);

  check(gl_dp_stats_clear(dp) == 0, "stats_clear");
  rc = gl_dp_get_stats(dp, &s);
  check(rc == 0 && s->upcalls_delivered == 0 && drop_count(s, "no_port") == 0,
        "after clear: %llu upcalls delivered, %llu no_port drops",
        (unsigned long long)s->upcalls_delivered, (unsigned long long)drop_count(s, "no_port"));
  gl_dp_free(s);

  check(gl_dp_set_config(dp, "emc-insert-inv-prob", "100") == 0,
        "set_config emc-insert-inv-prob=100");
  check_err(dp, gl_dp_set_config(dp, "no-such-key", "1"), EINVAL, "unknown config key",
            "set_config of an unknown key");
  check_err(dp, gl_dp_set_config(dp, "emc-insert-inv-prob", "many"), EINVAL, "must be a number",
            "set_config with a bad value");
  check(gl_dp_set_config(dp, "miss-hold-ms", "20") == 0, "set_config miss-hold-ms=20");
  check_err(dp, gl_dp_set_config(dp, "miss-hold-ms", "10001"), EINVAL, "0..10000",
            "set_config miss-hold-ms out of range");
  check_err(dp, gl_dp_set_config(dp, "upcall-rate", "10"), ENOTSUP, "set at start",
            "set_config of a start-only key");
  /* last_error keeps the last failure even after a success. */
  check(gl_dp_set_config(dp, "emc-insert-inv-prob", "1") == 0 &&
            strstr(gl_dp_last_error(dp), "set at start") != NULL,
        "last_error still names the last failing call");
}

/* ---- connection tracking ------------------------------------------------------------------ */

static uint16_t csum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += (uint32_t)(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* Ethernet/IPv4 10.0.0.1 -> 10.0.0.2 with valid checksums: UDP sport -> 80 (no UDP
 * checksum) when icmp_id is 0, else an ICMP echo request with that identifier. */
static size_t build_ct_packet(uint8_t* p, uint16_t sport, uint16_t icmp_id) {
  static const uint8_t eth[14] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
  memset(p, 0, 64);
  memcpy(p, eth, sizeof eth);
  uint8_t* ip = p + 14;
  const uint8_t proto = icmp_id ? 1 : 17;
  const uint16_t l4_len = 8 + 18;
  ip[0] = 0x45;
  ip[2] = 0;
  ip[3] = (uint8_t)(20 + l4_len);
  ip[8] = 64;
  ip[9] = proto;
  const uint8_t addrs[8] = {10, 0, 0, 1, 10, 0, 0, 2};
  memcpy(ip + 12, addrs, 8);
  uint16_t c = csum(ip, 20);
  ip[10] = (uint8_t)(c >> 8);
  ip[11] = (uint8_t)c;
  uint8_t* l4 = ip + 20;
  if (icmp_id) {
    l4[0] = 8; /* echo request */
    l4[4] = (uint8_t)(icmp_id >> 8);
    l4[5] = (uint8_t)icmp_id;
    l4[7] = 1; /* sequence */
    c = csum(l4, l4_len);
    l4[2] = (uint8_t)(c >> 8);
    l4[3] = (uint8_t)c;
  } else {
    l4[0] = (uint8_t)(sport >> 8);
    l4[1] = (uint8_t)sport;
    l4[3] = 80;
    l4[5] = (uint8_t)l4_len;
  }
  return 64;
}

static bool ip_is(const uint8_t* a, uint8_t last) {
  static const uint8_t want[16] = {10, 0, 0, 0};
  return memcmp(a, want, 3) == 0 && a[3] == last && memcmp(a + 4, want + 4, 12) == 0;
}

/* Counts the connections of a full dump (zone NULL: all) and copies up to cap of them. */
static int ct_dump_all(struct gl_dp* dp, const uint32_t* zone, struct gl_ct_entry* out, size_t cap,
                       size_t* n) {
  struct gl_ct_dump* d = NULL;
  *n = 0;
  int rc = gl_dp_ct_dump_start(dp, zone, &d);
  if (rc != 0) return rc;
  struct gl_ct_entry e;
  while ((rc = gl_dp_ct_dump_next(d, &e)) == 0) {
    if (*n < cap) out[*n] = e;
    (*n)++;
  }
  int done = gl_dp_ct_dump_done(d);
  return rc == ENOENT ? done : rc;
}

static uint32_t ct_nconns(struct gl_dp* dp) {
  uint32_t n = UINT32_MAX;
  gl_dp_ct_get_nconns(dp, &n);
  return n;
}

static void test_conntrack(struct gl_dp* dp, uint32_t n2) {
  struct gl_dp_info info;
  memset(&info, 0, sizeof info);
  check(gl_dp_get_info(dp, &info) == 0 && (info.features & GL_DP_FEATURE_CONNTRACK),
        "info: features 0x%llx include conntrack", (unsigned long long)info.features);
  struct gl_ct_config cfg;
  int rc = gl_dp_ct_get_config(dp, &cfg);
  check(rc == 0 && cfg.n_conns == 0 && cfg.capacity > 0 && cfg.max_conns == cfg.capacity &&
            cfg.default_zone_limit == 0 && cfg.tcp_seq_check == 1,
        "ct config: %u conns, max %u, capacity %u, default limit %u, seq check %u", cfg.n_conns,
        cfg.max_conns, cfg.capacity, cfg.default_zone_limit, cfg.tcp_seq_check);
  const uint32_t capacity = cfg.capacity;

  /* Three UDP connections and a ping, committed in zone 5 by executes. */
  uint8_t acts[64], pkt[64];
  size_t alen = 0;
  char text[64], err[128];
  snprintf(text, sizeof text, "ct(commit,zone=5),%u", n2);
  gl_actions_parse(text, acts, sizeof acts, &alen, err, sizeof err);
  struct gl_flow_key md;
  memset(&md, 0, sizeof md);
  md.in_port = 1;
  for (uint16_t sport = 1000; sport < 1003; sport++) {
    size_t len = build_ct_packet(pkt, sport, 0);
    rc = gl_dp_execute(dp, &md, acts, alen, pkt, len);
    if (rc) check(false, "execute ct: %s", gl_dp_last_error(dp));
  }
  size_t len = build_ct_packet(pkt, 1000, 0);
  gl_dp_execute(dp, &md, acts, alen, pkt, len); /* a second packet of the first */
  len = build_ct_packet(pkt, 0, 0x4242);
  gl_dp_execute(dp, &md, acts, alen, pkt, len);
  for (int i = 0; i < 100 && ct_nconns(dp) < 4; i++) sleep_ms(10);
  uint32_t n_max = 0;
  rc = gl_dp_ct_get_maxconns(dp, &n_max);
  check(ct_nconns(dp) == 4 && rc == 0 && n_max == capacity,
        "4 connections after the executes (%u), maxconns %u", ct_nconns(dp), n_max);

  struct gl_ct_entry ents[8];
  size_t n = 0;
  rc = ct_dump_all(dp, NULL, ents, 8, &n);
  check(rc == 0 && n == 4, "dump: rc %d, %zu connections", rc, n);
  const struct gl_ct_entry *u = NULL, *icmp = NULL;
  for (size_t i = 0; i < n && i < 8; i++) {
    if (ents[i].orig.proto == 17 && ents[i].orig.sport == be16(1000)) u = &ents[i];
    if (ents[i].orig.proto == 1) icmp = &ents[i];
  }
  check(u != NULL && u->orig.family == 4 && ip_is(u->orig.src, 1) && ip_is(u->orig.dst, 2) &&
            u->orig.dport == be16(80) && ip_is(u->reply.src, 2) && ip_is(u->reply.dst, 1) &&
            u->reply.sport == be16(80) && u->reply.dport == be16(1000) && u->zone == 5,
        "UDP entry: tuples and zone");
  check(u != NULL && u->packets[0] == 2 && u->packets[1] == 0 && u->bytes[0] == 2 * 46 &&
            u->timeout_s > 0 && u->timeout_s <= 60 && u->mark == 0 && u->flags == 0 &&
            u->tcp_state_orig == 0,
        "UDP entry: %llu packets (%llu bytes), timeout %u",
        u ? (unsigned long long)u->packets[0] : 0, u ? (unsigned long long)u->bytes[0] : 0,
        u ? u->timeout_s : 0);
  check(icmp != NULL && icmp->orig.icmp_id == be16(0x4242) && icmp->orig.icmp_type == 8 &&
            icmp->orig.icmp_code == 0 && icmp->orig.sport == 0 &&
            icmp->reply.icmp_id == be16(0x4242) && icmp->reply.icmp_type == 0 &&
            ip_is(icmp->reply.src, 2),
        "ICMP entry: id 0x%x, types %u/%u", icmp ? be16(icmp->orig.icmp_id) : 0,
        icmp ? icmp->orig.icmp_type : 0, icmp ? icmp->reply.icmp_type : 0);
  uint32_t zone = 5;
  rc = ct_dump_all(dp, &zone, ents, 8, &n);
  check(rc == 0 && n == 4, "dump of zone 5: rc %d, %zu", rc, n);
  zone = 6;
  rc = ct_dump_all(dp, &zone, ents, 8, &n);
  check(rc == 0 && n == 0, "dump of zone 6: rc %d, %zu", rc, n);
  zone = 70000;
  struct gl_ct_dump* d = NULL;
  struct gl_ct_entry e;
  rc = gl_dp_ct_dump_start(dp, &zone, &d);
  int rc2 = gl_dp_ct_dump_next(d, &e);
  check(rc == 0 && rc2 == EINVAL && strstr(gl_dp_last_error(dp), "zone must be 0..65535") &&
            gl_dp_ct_dump_next(d, &e) == EINVAL && gl_dp_ct_dump_done(d) == EINVAL,
        "dump of zone 70000: %d '%s', the dump stays failed", rc2, gl_dp_last_error(dp));

  /* Flushing while a dump runs: each connection by its own original tuple. */
  rc = gl_dp_ct_dump_start(dp, NULL, &d);
  size_t flushed = 0;
  while (rc == 0 && (rc = gl_dp_ct_dump_next(d, &e)) == 0) {
    if (e.orig.proto != 17 || e.orig.sport == be16(1000)) continue;
    uint32_t z = e.zone, nf = 0;
    if (gl_dp_ct_flush(dp, &z, &e.orig, &nf) == 0 && nf == 1) flushed++;
  }
  check(rc == ENOENT && gl_dp_ct_dump_done(d) == 0 && flushed == 2 && ct_nconns(dp) == 2,
        "flushed %zu connections during a dump, %u left", flushed, ct_nconns(dp));
  struct gl_ct_tuple t = u->reply; /* the reply tuple names the connection too */
  uint32_t nf = 0;
  zone = 5;
  check_err(dp, gl_dp_ct_flush(dp, NULL, &t, &nf), ENOENT, "no connection udp,src=10.0.0.2",
            "flush of a zone 5 tuple in zone 0");
  rc = gl_dp_ct_flush(dp, &zone, &t, &nf);
  check(rc == 0 && nf == 1 && ct_nconns(dp) == 1, "flush by the reply tuple: rc %d, %u", rc, nf);
  t.family = 5;
  check_err(dp, gl_dp_ct_flush(dp, &zone, &t, &nf), EINVAL, "family 5", "flush: family 5");
  t.family = 4;
  t.icmp_type = 8;
  check_err(dp, gl_dp_ct_flush(dp, &zone, &t, &nf), EINVAL, "must leave them 0",
            "flush: a UDP tuple with an ICMP type");
  zone = 70000;
  check_err(dp, gl_dp_ct_flush(dp, &zone, NULL, &nf), EINVAL, "zone 70000: zone must be 0..65535",
            "flush of zone 70000");
  zone = 6;
  rc = gl_dp_ct_flush(dp, &zone, NULL, &nf);
  check(rc == 0 && nf == 0 && ct_nconns(dp) == 1, "flush of empty zone 6: %u", nf);

  /* Limits: global, per zone. */
  check_err(dp, gl_dp_ct_set_maxconns(dp, capacity + 1), EINVAL, "above the table's capacity",
            "maxconns above the capacity");
  rc = gl_dp_ct_set_maxconns(dp, 2);
  rc2 = gl_dp_ct_get_maxconns(dp, &n_max);
  check(rc == 0 && rc2 == 0 && n_max == 2, "maxconns 2: %u", n_max);
  for (uint16_t sport = 2000; sport < 2003; sport++) {
    len = build_ct_packet(pkt, sport, 0);
    gl_dp_execute(dp, &md, acts, alen, pkt, len);
  }
  check(ct_nconns(dp) == 2, "maxconns 2 holds: %u connections", ct_nconns(dp));
  gl_dp_ct_set_maxconns(dp, capacity);
  rc = gl_dp_ct_flush(dp, NULL, NULL, &nf);
  check(rc == 0 && nf == 2 && ct_nconns(dp) == 0, "flush all: %u", nf);

  uint32_t dflt = 10;
  struct gl_ct_zone_limit zl[2] = {{5, 3, 0, 0}, {6, 0, 0, 0}};
  rc = gl_dp_ct_set_limits(dp, &dflt, zl, 2);
  check(rc == 0, "set limits: default 10, zone 5 limit 3, zone 6 unlimited: rc %d", rc);
  for (uint16_t sport = 3000; sport < 3005; sport++) {
    len = build_ct_packet(pkt, sport, 0);
    gl_dp_execute(dp, &md, acts, alen, pkt, len);
  }
  struct gl_ct_zone_limit* out = NULL;
  size_t n_out = 0;
  dflt = 0;
  rc = gl_dp_ct_get_limits(dp, NULL, 0, &dflt, &out, &n_out);
  check(rc == 0 && dflt == 10 && n_out == 2 && out[0].zone == 5 && out[0].limit == 3 &&
            out[0].count == 3 && out[1].zone == 6 && out[1].limit == 0 && out[1].count == 0,
        "get limits: default %u, %zu zones", dflt, n_out);
  gl_dp_free(out);
  const uint32_t ask[2] = {5, 7};
  rc = gl_dp_ct_get_limits(dp, ask, 2, &dflt, &out, &n_out);
  check(rc == 0 && n_out == 2 && out[1].zone == 7 && out[1].limit == 10 && out[1].count == 0,
        "get limits of 5 and 7: zone 7 has the default");
  gl_dp_free(out);
  struct gl_ct_zone_limit bad[2] = {{8, 1, 0, 0}, {70000, 1, 0, 0}};
  check_err(dp, gl_dp_ct_set_limits(dp, NULL, bad, 2), EINVAL,
            "zone limit for zone 70000: zone must be 0..65535", "set limits with zone 70000");
  rc = gl_dp_ct_get_limits(dp, NULL, 0, &dflt, &out, &n_out);
  check(rc == 0 && n_out == 2, "a refused set changes nothing (%zu zones)", n_out);
  gl_dp_free(out);
  const uint32_t del[2] = {5, 6};
  check(gl_dp_ct_del_limits(dp, del, 2) == 0, "del limits");
  rc = gl_dp_ct_get_limits(dp, NULL, 0, &dflt, &out, &n_out);
  check(rc == 0 && n_out == 0 && out == NULL, "no zone limits left (%zu)", n_out);
  check_err(dp, gl_dp_ct_del_limits(dp, NULL, 0), EINVAL, "no zones", "del limits of nothing");
  check_err(dp, gl_dp_ct_get_limits(dp, NULL, 0, NULL, &out, &n_out), EINVAL, "NULL",
            "get limits with NULL out");
  dflt = 0;
  gl_dp_ct_set_limits(dp, &dflt, NULL, 0);

  /* TCP sequence checking. */
  bool on = true;
  check(gl_dp_ct_set_tcp_seq_chk(dp, false) == 0 && gl_dp_ct_get_tcp_seq_chk(dp, &on) == 0 && !on,
        "tcp seq check off");
  check(gl_dp_ct_set_tcp_seq_chk(dp, true) == 0 && gl_dp_ct_get_tcp_seq_chk(dp, &on) == 0 && on,
        "tcp seq check on");

  /* Counters. */
  struct gl_ct_stats* st = NULL;
  rc = gl_dp_ct_get_stats(dp, &st);
  check(rc == 0 && st != NULL, "ct stats: rc %d", rc);
  if (st != NULL) {
    bool names = st->n_invalid >= 10;
    for (uint32_t i = 0; i < st->n_invalid; i++) names &= st->invalid[i].name[0] != '\0';
    check(names && strcmp(st->invalid[0].name, "not_ip") == 0, "%u invalid reasons, first '%s'",
          st->n_invalid, st->n_invalid ? st->invalid[0].name : "");
    check(st->created == 8 && st->limit_global == 2 && st->limit_zone == 2 && st->found == 1 &&
              st->n_conns == 3 && st->capacity == capacity,
          "ct stats: created %llu, limit global %llu, zone %llu, found %llu, %u conns",
          (unsigned long long)st->created, (unsigned long long)st->limit_global,
          (unsigned long long)st->limit_zone, (unsigned long long)st->found, st->n_conns);
    check(st->n_protos == 1 && st->protos[0].proto == 17 && st->protos[0].count == 3,
          "per protocol: %u entries", st->n_protos);
    gl_dp_free(st);
  }
  rc = gl_dp_ct_stats_clear(dp);
  rc2 = gl_dp_ct_get_stats(dp, &st);
  check(rc == 0 && rc2 == 0 && st->created == 0 && st->n_conns == 3,
        "ct stats after clear: created %llu, %u conns",
        rc2 ? 99ULL : (unsigned long long)st->created, rc2 ? 0 : st->n_conns);
  gl_dp_free(st);
  zone = 5;
  rc = gl_dp_ct_flush(dp, &zone, NULL, &nf);
  check(rc == 0 && nf == 3, "flush zone 5: %u", nf);

  check(gl_dp_ct_dump_start(dp, NULL, NULL) == EINVAL, "dump_start(NULL out) is EINVAL");
  check(gl_dp_ct_dump_next(NULL, &e) == EINVAL && gl_dp_ct_dump_done(NULL) == 0,
        "dump_next(NULL) is EINVAL, dump_done(NULL) a no-op");
  check(gl_dp_ct_get_config(NULL, &cfg) == EINVAL, "ct_get_config(NULL handle) is EINVAL");
}

/* ---- timeout policies and fragment reassembly ---------------------------------------------- */

/* An IPv4 fragment 10.0.0.1 -> 10.0.0.2 of UDP datagram id 0x77 (1000 -> 80, 488 bytes):
 * the first (offset 0, MF, the UDP header and 472 bytes) or the last (offset 480, 8 bytes).
 * Valid header checksum; no UDP checksum. Returns the frame length. */
static size_t build_fragment(uint8_t* p, bool first) {
  static const uint8_t eth[14] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
  const size_t data = first ? 480 : 8;
  memset(p, 0, 14 + 20 + data);
  memcpy(p, eth, sizeof eth);
  uint8_t* ip = p + 14;
  ip[0] = 0x45;
  ip[2] = (uint8_t)((20 + data) >> 8);
  ip[3] = (uint8_t)(20 + data);
  ip[5] = 0x77;
  const uint16_t frag = first ? 0x2000 : 480 / 8; /* MF | offset in 8-byte units */
  ip[6] = (uint8_t)(frag >> 8);
  ip[7] = (uint8_t)frag;
  ip[8] = 64;
  ip[9] = 17;
  const uint8_t addrs[8] = {10, 0, 0, 1, 10, 0, 0, 2};
  memcpy(ip + 12, addrs, 8);
  uint16_t c = csum(ip, 20);
  ip[10] = (uint8_t)(c >> 8);
  ip[11] = (uint8_t)c;
  if (first) {
    uint8_t* udp = ip + 20;
    udp[0] = 1000 >> 8;
    udp[1] = 1000 & 0xff;
    udp[3] = 80;
    udp[4] = 488 >> 8;
    udp[5] = 488 & 0xff;
  }
  return 14 + 20 + data;
}

static void test_timeout_policies_ipf(struct gl_dp* dp, uint32_t n2) {
  /* Names. */
  check(gl_ct_tp_name(GL_CT_TP_UDP_FIRST) != NULL &&
            strcmp(gl_ct_tp_name(GL_CT_TP_UDP_FIRST), "udp_first") == 0 &&
            strcmp(gl_ct_tp_name(GL_CT_TP_TCP_SYN_SENT), "tcp_syn_sent") == 0 &&
            strcmp(gl_ct_tp_name(GL_CT_TP_ICMP_REPLY), "icmp_reply") == 0 &&
            gl_ct_tp_name(GL_CT_TP_COUNT) == NULL,
        "gl_ct_tp_name: udp_first, tcp_syn_sent, icmp_reply, NULL past the end");

  /* Set, get, the list. */
  struct gl_ct_timeout_policy tp;
  memset(&tp, 0, sizeof tp);
  tp.id = 7;
  tp.present = 1u << GL_CT_TP_UDP_FIRST;
  tp.sec[GL_CT_TP_UDP_FIRST] = 2;
  int rc = gl_dp_ct_set_timeout_policy(dp, &tp);
  check(rc == 0, "set timeout policy 7 udp_first=2: rc %d %s", rc, gl_dp_last_error(dp));
  struct gl_ct_timeout_policy got;
  memset(&got, 0xff, sizeof got);
  rc = gl_dp_ct_get_timeout_policy(dp, 7, &got);
  check(rc == 0 && got.id == 7 && got.present == GL_CT_TP_ALL && got.sec[GL_CT_TP_UDP_FIRST] == 2 &&
            got.sec[GL_CT_TP_UDP_SINGLE] == 60 && got.sec[GL_CT_TP_TCP_ESTABLISHED] == 86400 &&
            got.sec[GL_CT_TP_ICMP_REPLY] == 30 && got.sec[GL_CT_TP_COUNT] == 0,
        "get timeout policy 7: present 0x%x, udp_first %u, udp_single %u", got.present,
        got.sec[GL_CT_TP_UDP_FIRST], got.sec[GL_CT_TP_UDP_SINGLE]);
  check_err(dp, gl_dp_ct_get_timeout_policy(dp, 8, &got), ENOENT, "no timeout policy 8",
            "get of a missing policy");
  tp.id = GL_CT_MAX_TIMEOUT_POLICIES;
  check_err(dp, gl_dp_ct_set_timeout_policy(dp, &tp), EINVAL, "id must be below 1024",
            "set of policy 1024");
  tp.id = 8;
  tp.present = 1u << GL_CT_TP_COUNT;
  check_err(dp, gl_dp_ct_set_timeout_policy(dp, &tp), EINVAL, "unknown classes in the present mask",
            "set with an unknown class");
  tp.present = 1u << GL_CT_TP_UDP_FIRST;
  tp.sec[GL_CT_TP_UDP_FIRST] = GL_CT_TP_MAX_SEC + 1;
  check_err(dp, gl_dp_ct_set_timeout_policy(dp, &tp), EINVAL, "is more than 4000000 s",
            "set with too long a timeout");
  check_err(dp, gl_dp_ct_set_timeout_policy(dp, NULL), EINVAL, "NULL", "set of NULL");
  check_err(dp, gl_dp_ct_get_timeout_policy(dp, 7, NULL), EINVAL, "NULL", "get into NULL");
  struct gl_ct_timeout_policy* all = NULL;
  size_t n = 0;
  rc = gl_dp_ct_get_timeout_policies(dp, &all, &n);
  check(rc == 0 && n == 2 && all[0].id == 0 && all[0].sec[GL_CT_TP_UDP_FIRST] == 60 &&
            all[1].id == 7 && all[1].sec[GL_CT_TP_UDP_FIRST] == 2,
        "the policy list: %zu policies (the default and 7)", n);
  gl_dp_free(all);
  check_err(dp, gl_dp_ct_get_timeout_policies(dp, NULL, &n), EINVAL, "NULL", "list into NULL");

  /* A connection committed with timeout=7 gets policy 7's udp_first. */
  uint8_t acts[96], pkt[600];
  size_t alen = 0;
  char text[96], err[128];
  snprintf(text, sizeof text, "ct(commit,zone=11,timeout=7),%u", n2);
  rc = gl_actions_parse(text, acts, sizeof acts, &alen, err, sizeof err);
  check(rc == 0, "parse '%s': %s", text, rc ? err : "ok");
  struct gl_flow_key md;
  memset(&md, 0, sizeof md);
  md.in_port = 1;
  size_t len = build_ct_packet(pkt, 4321, 0);
  rc = gl_dp_execute(dp, &md, acts, alen, pkt, len);
  struct gl_ct_entry ents[4];
  uint32_t zone = 11;
  rc = ct_dump_all(dp, &zone, ents, 4, &n);
  check(rc == 0 && n == 1 && ents[0].timeout_s <= 2,
        "a connection committed with timeout=7: %zu in zone 11, timeout %u s", n,
        n ? ents[0].timeout_s : 0);
  uint32_t nf = 0;
  gl_dp_ct_flush(dp, &zone, NULL, &nf);

  /* Delete. */
  check(gl_dp_ct_del_timeout_policy(dp, 7) == 0, "del timeout policy 7");
  check_err(dp, gl_dp_ct_del_timeout_policy(dp, 7), ENOENT, "no timeout policy 7",
            "del of a deleted policy");
  check_err(dp, gl_dp_ct_del_timeout_policy(dp, 0), EINVAL, "cannot be deleted",
            "del of the default policy");
  rc = gl_dp_ct_get_timeout_policies(dp, &all, &n);
  check(rc == 0 && n == 1 && all[0].id == 0, "only the default policy is left (%zu)", n);
  gl_dp_free(all);

  /* Fragment reassembly settings. */
  struct gl_ipf_status* st = NULL;
  rc = gl_dp_ipf_get_status(dp, &st);
  check(rc == 0 && st->v4.enabled == 1 && st->v6.enabled == 1 && st->v4.min_frag_size == 1200 &&
            st->v6.min_frag_size == 1280 && st->nfrag_max == 1000 && st->nfrag == 0 &&
            st->timeout_ms == 15000 && st->n_invalid >= 5 && st->n_passed >= 4,
        "ipf status: defaults, %u + %u reason counters", rc ? 0 : st->n_invalid,
        rc ? 0 : st->n_passed);
  bool names = rc == 0;
  for (uint32_t i = 0; names && i < st->n_invalid; i++) names = st->invalid[i].name[0] != '\0';
  for (uint32_t i = 0; names && i < st->n_passed; i++) names = st->passed[i].name[0] != '\0';
  check(names && strcmp(st->passed[0].name, "disabled") == 0, "ipf counter names");
  gl_dp_free(st);
  check(gl_dp_ipf_set_enabled(dp, true, false) == 0, "ipf: disable v6");
  check(gl_dp_ipf_set_min_frag(dp, false, 400) == 0, "ipf: v4 min frag 400");
  check(gl_dp_ipf_set_min_frag(dp, true, 1300) == 0, "ipf: v6 min frag 1300");
  check(gl_dp_ipf_set_max_nfrags(dp, 500) == 0, "ipf: max nfrags 500");
  check_err(dp, gl_dp_ipf_set_min_frag(dp, false, GL_IPF_MIN_FRAG_LOWER_BOUND - 1), EINVAL, "399",
            "ipf: min frag 399");
  check_err(dp, gl_dp_ipf_set_max_nfrags(dp, GL_IPF_MAX_NFRAGS_UPPER_BOUND + 1), EINVAL, "5001",
            "ipf: max nfrags 5001");
  rc = gl_dp_ipf_get_status(dp, &st);
  check(rc == 0 && st->v4.enabled == 1 && st->v6.enabled == 0 && st->v4.min_frag_size == 400 &&
            st->v6.min_frag_size == 1300 && st->nfrag_max == 500,
        "ipf status after the settings");
  gl_dp_free(st);
  check(gl_dp_ipf_set_enabled(dp, true, true) == 0, "ipf: enable v6 again");
  check_err(dp, gl_dp_ipf_get_status(dp, NULL), EINVAL, "NULL", "ipf status into NULL");

  /* A first fragment through ct() is held and listed; the last one completes it. */
  snprintf(text, sizeof text, "ct(commit,zone=3),%u", n2);
  gl_actions_parse(text, acts, sizeof acts, &alen, err, sizeof err);
  len = build_fragment(pkt, true);
  rc = gl_dp_execute(dp, &md, acts, alen, pkt, len);
  check(rc == 0, "execute the first fragment: rc %d %s", rc, rc ? gl_dp_last_error(dp) : "");
  rc = gl_dp_ipf_get_status(dp, &st);
  check(rc == 0 && st->nfrag == 1 && st->nlists == 1 && st->v4.accepted == 1,
        "one fragment held: nfrag %u, accepted %llu", rc ? 0 : st->nfrag,
        rc ? 0ULL : (unsigned long long)st->v4.accepted);
  gl_dp_free(st);
  struct gl_ipf_dump* d = NULL;
  const char* line = NULL;
  rc = gl_dp_ipf_dump_start(dp, &d);
  int rc2 = rc == 0 ? gl_dp_ipf_dump_next(d, &line) : rc;
  check(rc2 == 0 && line != NULL &&
            strcmp(line,
                   "(src=10.0.0.1,dst=10.0.0.2,recirc_id=0,ip_id=119,dl_type=0x800,zone=3,"
                   "nw_proto=17,num_fragments=1,state=first frag)") == 0,
        "ipf dump line: '%s'", line ? line : "(none)");
  check(rc == 0 && gl_dp_ipf_dump_next(d, &line) == ENOENT && gl_dp_ipf_dump_done(d) == 0,
        "ipf dump ends after one list");
  check(gl_dp_ipf_dump_start(dp, NULL) == EINVAL && gl_dp_ipf_dump_next(NULL, &line) == EINVAL &&
            gl_dp_ipf_dump_done(NULL) == 0,
        "ipf dump with NULL arguments");
  len = build_fragment(pkt, false);
  gl_dp_execute(dp, &md, acts, alen, pkt, len);
  rc = gl_dp_ipf_get_status(dp, &st);
  check(rc == 0 && st->nfrag == 0 && st->v4.accepted == 2 && st->v4.completed_sent == 2,
        "the datagram completed: nfrag %u, completed %llu", rc ? 0 : st->nfrag,
        rc ? 0ULL : (unsigned long long)st->v4.completed_sent);
  gl_dp_free(st);
  zone = 3;
  rc = ct_dump_all(dp, &zone, ents, 4, &n);
  check(rc == 0 && n == 1 && ents[0].orig.sport == be16(1000) && ents[0].orig.dport == be16(80),
        "the reassembled datagram is tracked in zone 3 (%zu)", n);
  gl_dp_ct_flush(dp, &zone, NULL, &nf);
  rc = gl_dp_ipf_dump_start(dp, &d);
  check(rc == 0 && gl_dp_ipf_dump_next(d, &line) == ENOENT, "no lists left");
  gl_dp_ipf_dump_done(d);
  gl_dp_ipf_set_min_frag(dp, false, 1200);
  gl_dp_ipf_set_min_frag(dp, true, 1280);
  gl_dp_ipf_set_max_nfrags(dp, 1000);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
    return 2;
  }
  const char* sock = argv[1];
  struct gl_dp* dp = test_open(sock);
  if (dp != NULL) {
    uint32_t n1 = 0, n2 = 0;
    test_null_args(dp);
    test_info(dp, sock);
    test_ports(dp, &n1, &n2);
    test_text_helpers();
    test_flows(dp, n1, n2);
    test_execute(dp, n1, n2);
    test_upcalls(dp, sock, n1);
    test_miss_hold(dp, sock, n2);
    test_stats_config(dp);
    test_conntrack(dp, n2);
    test_timeout_policies_ipf(dp, n2);
    gl_dp_close(dp);
  }
  printf("%d passed, %d failed\n", n_passed, n_failed);
  return n_failed == 0 && n_passed > 0 ? 0 : 1;
}
