// glctld — the Goldilocks security control daemon: compiles the desired state in OVSDB into
// gldp's firewall for this host and serves the management API (control/DESIGN.md).
#include <signal.h>

#include <unistd.h>
#include <functional>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "control/glctld/daemon.hpp"
#include "control/ovsdb/remote.hpp"

namespace {

constexpr const char* kUsage = R"(usage: glctld [OPTION]...

The Goldilocks security control daemon. Reads the cluster's desired state (settings,
workloads, groups, rules) from the Goldilocks OVSDB database, compiles the rules for the
workloads of this host and installs them in gldp's firewall; recompiles on every change.
A rejected desired state leaves the running policy in force (glctl status shows why).
gldp keeps enforcing the last policy while glctld or the database is away.

Options:
  --db REMOTE[,REMOTE...]  the database (unix:PATH or tcp:IP:PORT; several: tried in turn)
                           (default unix:/run/goldilocks/db.sock)
  --host NAME              this host's name in Workload.host (default: the hostname)
  --gldp-socket PATH       gldp's API socket (default $GLDP_SOCKET or /run/gldp/gldp.sock)
  --mgmt-socket PATH       the management socket glctl talks to, created 0600
                           (default /run/goldilocks/glctld.sock)
  --log-file PATH          append the log there (default: stderr)

Keys (ESP between hosts, negotiated and rotated; off without --key-file):
  --key-file PATH          this host's private key (base64 X25519, mode 0600); the Host
                           row named --host must carry its public key (glctl add-host)
  --key-port N             UDP port of the host handshakes (default 4797), on the
                           Host row's underlay_ip
  --cipher NAME            aes256-gcm (default) or chacha20-poly1305
  --gen-key PATH           make a new private key file (0600, never overwritten), print
                           its public key and exit
  --pubkey PATH            print the public key of a private key file and exit

  -v, --verbose            log debug messages too
  -h, --help               this text

With keys, glctld runs a Noise IK handshake with every other host of the Host table whose
ESP port gldp has (a gl_esp port from this host's underlay_ip to the peer's), installs
the ESP SAs, rekeys every rekey_seconds (glctl set-rekey) without losing packets, and
removes a host's SAs at once when its row is revoked or deleted.

Flow records go where the Goldilocks settings row says (glctl set-flow-log, set-ipfix).
SIGHUP opens the log file and the flow log again (after logrotate moved them).
Stops cleanly on SIGINT or SIGTERM. Exit status: 0 after a signal, 1 when it cannot start,
2 for a usage error.
)";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "glctld: %s\n(try glctld --help)\n", msg.c_str());
  return 2;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = s.find(',', pos);
    const std::string item = s.substr(pos, comma == std::string::npos ? comma : comma - pos);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  gl::glctld::DaemonOptions opt;
  if (const char* s = std::getenv("GLDP_SOCKET"); s != nullptr && *s != '\0') opt.gldp_socket = s;
  std::string log_file;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "-v" || a == "--verbose") {
      verbose = true;
      continue;
    }
    std::string value;
    std::string name = a;
    if (const size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
    } else if (a == "--db" || a == "--host" || a == "--gldp-socket" || a == "--mgmt-socket" ||
               a == "--log-file" || a == "--key-file" || a == "--key-port" || a == "--cipher" ||
               a == "--gen-key" || a == "--pubkey") {
      if (i + 1 >= argc) return usage_error(a + " needs a value");
      value = argv[++i];
    } else {
      return usage_error("unknown argument '" + a + "'");
    }
    if (value.empty()) return usage_error(name + ": empty value");
    if (name == "--db") {
      opt.db_remotes = split_commas(value);
      if (opt.db_remotes.empty()) return usage_error("--db: no remote given");
      if (auto r = gl::ovsdb::RemoteSet::parse(opt.db_remotes); !r)
        return usage_error("--db: " + r.error().message);
    } else if (name == "--host") {
      opt.host = value;
    } else if (name == "--gldp-socket") {
      opt.gldp_socket = value;
    } else if (name == "--mgmt-socket") {
      opt.mgmt_socket = value;
    } else if (name == "--log-file") {
      log_file = value;
    } else if (name == "--key-file") {
      opt.keys.key_file = value;
    } else if (name == "--key-port") {
      char* end = nullptr;
      const unsigned long n = std::strtoul(value.c_str(), &end, 10);
      if (*end != '\0' || n == 0 || n > 65535)
        return usage_error("--key-port: '" + value + "' is not a port number 1..65535");
      opt.keys.port = static_cast<uint16_t>(n);
    } else if (name == "--cipher") {
      if (value == "aes256-gcm")
        opt.keys.cipher = gl::crypto::Cipher::aes256_gcm;
      else if (value == "chacha20-poly1305")
        opt.keys.cipher = gl::crypto::Cipher::chacha20_poly1305;
      else
        return usage_error("--cipher: '" + value + "' (aes256-gcm or chacha20-poly1305)");
    } else if (name == "--gen-key") {
      auto kp = gl::glctld::create_host_key(value);
      if (!kp) {
        std::fprintf(stderr, "glctld: %s\n", kp.error().c_str());
        return 1;
      }
      std::printf("%s\n", gl::glctld::key_to_base64(kp->pub).c_str());
      return 0;
    } else if (name == "--pubkey") {
      auto kp = gl::glctld::load_host_key(value);
      if (!kp) {
        std::fprintf(stderr, "glctld: %s\n", kp.error().c_str());
        return 1;
      }
      std::printf("%s\n", gl::glctld::key_to_base64(kp->pub).c_str());
      return 0;
    } else {
      return usage_error("unknown option '" + name + "'");
    }
  }
  if (opt.host.empty()) {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0')
      return usage_error("cannot tell the hostname; give --host NAME");
    opt.host = buf;
  }

  gl::glctld::Logger log;
  if (verbose) log.set_min_level(gl::glctld::LogLevel::kDebug);
  if (!log_file.empty()) {
    if (auto ok = log.open(log_file); !ok) {
      std::fprintf(stderr, "glctld: %s\n", ok.error().c_str());
      return 1;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);

  boost::asio::io_context io;
  auto daemon = gl::glctld::Daemon::create(io, opt, log);
  if (!daemon) {
    log.error("cannot start: " + daemon.error());
    if (!log_file.empty())
      std::fprintf(stderr, "glctld: cannot start: %s\n", daemon.error().c_str());
    return 1;
  }
  // SIGHUP: logrotate moved the log files; open them again.
  boost::asio::signal_set hup(io, SIGHUP);
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (!log_file.empty()) {
        if (auto ok = log.open(log_file); !ok) log.error("SIGHUP: " + ok.error());
      }
      (*daemon)->reopen_logs();
      log.info("SIGHUP: log files reopened");
      wait_hup();
    });
  };
  wait_hup();
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log.info(std::string("exiting on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
             "; gldp keeps enforcing the last policy");
    (*daemon)->stop();
    hup.cancel();
  });
  (*daemon)->start();
  try {
    io.run();
  } catch (const std::exception& e) {  // a handler must not throw; say so if one did
    log.error(std::string("fatal: ") + e.what());
    (*daemon)->stop();
    return 1;
  }
  daemon->reset();
  log.info("stopped");
  return 0;
}
