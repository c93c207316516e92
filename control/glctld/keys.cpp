// keys.cpp — glctld's key manager (see keys.hpp; the protocol in control/DESIGN.md, "Host
// keys and the handshake" and "The key manager").
#include "control/glctld/keys.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <boost/asio/post.hpp>

namespace gl::glctld {

namespace asio = boost::asio;
using asio::ip::udp;
using Json = nlohmann::json;
namespace hs = crypto::hs;
namespace noise = crypto::noise;

// ---- host keys --------------------------------------------------------------------------

std::string key_to_base64(const noise::Key& k) {
  char out[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(out, sizeof out, k.data(), k.size(), sodium_base64_VARIANT_ORIGINAL);
  return out;
}

std::optional<noise::Key> key_from_base64(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.remove_suffix(1);
  noise::Key k{};
  size_t len = 0;
  const char* end = nullptr;
  if (text.size() != 44 ||
      sodium_base642bin(k.data(), k.size(), text.data(), text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len != k.size() || end != text.data() + text.size())
    return std::nullopt;
  return k;
}

std::expected<noise::KeyPair, std::string> load_host_key(const std::string& path) {
  if (sodium_init() < 0) return std::unexpected("libsodium failed to initialise");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return std::unexpected(path + ": " + std::strerror(errno) +
                           (errno == ENOENT ? " (make one with glctld --gen-key FILE)" : ""));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return std::unexpected(path + ": not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 0777));
    return std::unexpected(path + ": readable by others (mode " + mode + "); chmod 600 it");
  }
  char text[128] = {};
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n < 0) return std::unexpected(path + ": " + std::strerror(errno));
  auto priv = key_from_base64(std::string_view(text, static_cast<size_t>(n)));
  sodium_memzero(text, sizeof text);
  if (!priv) return std::unexpected(path + ": not a base64 X25519 private key (44 characters)");
  noise::KeyPair kp = noise::KeyPair::from_private(*priv);
  sodium_memzero(priv->data(), priv->size());
  return kp;
}

std::expected<noise::KeyPair, std::string> create_host_key(const std::string& path) {
  if (sodium_init() < 0) return std::unexpected("libsodium failed to initialise");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return std::unexpected(path + ": " + std::strerror(errno) +
                           (errno == EEXIST ? " (a key is there already: not overwritten)" : ""));
  noise::KeyPair kp = noise::KeyPair::generate();
  std::string text = key_to_base64(kp.priv) + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  const int err = errno;
  sodium_memzero(text.data(), text.size());
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return std::unexpected(path + ": " + std::strerror(err));
  }
  return kp;
}

std::chrono::milliseconds sa_lifetime(uint32_t rekey_seconds) {
  const std::chrono::milliseconds rekey = std::chrono::seconds(rekey_seconds);
  return std::min(std::max(rekey * 3 / 2, rekey + std::chrono::seconds(30)),
                  std::chrono::milliseconds(api::kSaMaxGraceMs));
}

// ---- internals ------------------------------------------------------------------------

struct KeyManager::Session {
  hs::SaPair sa;
  bool initiator = false;
  enum class State : uint8_t { kInstalling, kAwaitConfirm, kAwaitAck, kActive } state{};
  bool acked = false;  // initiator: the peer confirmed the switch
  Clock::time_point created{}, activated{};
  // When gldp removes the session's SAs (their hard lifetime, from `created`): each
  // install gives its SAs what is left of it, so that all of a session's SAs go together.
  Clock::time_point expires{};
  unsigned confirms = 0;
  Clock::time_point next_confirm{};
  uint32_t group = 0;
  std::vector<uint8_t> response;  // responder: sent once the inbound SAs are in
};

struct KeyManager::Peer {
  HostEntry row;
  bool valid = false;
  std::string problem;  // why there is no session (invalid row, revoked, no ESP port...)
  noise::Key pub{};
  udp::endpoint ep;  // underlay_ip : key port
  hs::Tai64n last_ts{};
  std::unique_ptr<hs::Initiator> init;
  uint32_t init_block = 0;
  unsigned init_tries = 0;
  Clock::time_point next_init{};
  std::unique_ptr<Session> active;   // carries this host's outbound traffic
  std::unique_ptr<Session> pending;  // being set up
  struct Block {
    uint32_t spi, n;
  };
  std::vector<Block> blocks;  // inbound SAs installed for this peer
  uint64_t sessions = 0;
  std::string last_error;
  std::chrono::system_clock::time_point last_session{};
};

KeyManager::KeyedRequests::~KeyedRequests() {
  if (!reqs.empty()) sodium_memzero(reqs.data(), reqs.size() * sizeof(api::SaAddRequest));
}

struct KeyManager::DpView {
  std::string error;
  uint64_t boot_id = 0;
  uint32_t n_pmds = 0;
  std::vector<EspPort> esp;
  std::vector<api::SaInfo> sas;
};

namespace {

constexpr uint32_t kMinBlock = 0x100;

std::optional<std::pair<bool, std::array<uint8_t, 16>>> parse_ip(const std::string& s) {
  std::array<uint8_t, 16> a{};
  if (inet_pton(AF_INET, s.c_str(), a.data()) == 1) return std::make_pair(false, a);
  if (inet_pton(AF_INET6, s.c_str(), a.data()) == 1) return std::make_pair(true, a);
  return std::nullopt;
}

std::string ip_text(const uint8_t* a, bool v6) {
  char b[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, a, b, sizeof b);
  return b;
}

bool is_transport(const api::Error& e) {
  return e.code == ECONNRESET || e.code == EPIPE || e.code == ETIMEDOUT || e.code == EPROTO ||
         e.code == ENOTCONN || e.code == ECONNREFUSED || e.code == ENOENT;
}

api::SaAddRequest sa_request(const hs::SaKeys& k, bool out, crypto::Cipher cipher,
                             const std::string& local, const std::string& remote) {
  api::SaAddRequest r{};
  auto& c = r.cfg;
  c.spi = k.spi;
  c.dir = static_cast<uint8_t>(out ? api::SaDir::kOut : api::SaDir::kIn);
  c.mode = static_cast<uint8_t>(api::SaMode::kTunnel);
  c.cipher = static_cast<uint8_t>(cipher);
  c.esn = 1;
  c.ttl = 64;
  c.df = 1;
  auto l = parse_ip(local), rm = parse_ip(remote);
  if (l && rm) {
    c.addr_v6 = l->first ? 1 : 0;
    std::memcpy(c.local, l->second.data(), 16);
    std::memcpy(c.remote, rm->second.data(), 16);
  }
  // Inbound: PMD 0 owns the SA (its replay window is single-writer); a packet that
  // another context receives (another PMD, or the control thread executing an upcalled
  // packet for OVS) is handed to PMD 0. Outbound: the caller names the context.
  c.pmd = 0;
  std::memcpy(r.keymat, k.key.data(), 32);
  std::memcpy(r.keymat + 32, k.salt.data(), 4);
  return r;
}

// "gl_esp,underlay=ul,group=1,local=...,remote=..." -> its fields.
std::optional<std::map<std::string, std::string>> esp_args(const std::string& devargs) {
  if (devargs.rfind("gl_esp", 0) != 0) return std::nullopt;
  std::map<std::string, std::string> out;
  std::stringstream ss(devargs);
  std::string kv;
  std::getline(ss, kv, ',');  // gl_esp
  while (std::getline(ss, kv, ',')) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) return std::nullopt;
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

bool same_ip(const std::string& a, const std::string& b) {
  auto x = parse_ip(a), y = parse_ip(b);
  return x && y && x->first == y->first && x->second == y->second;
}

}  // namespace

// ---- life -------------------------------------------------------------------------------

std::expected<std::unique_ptr<KeyManager>, std::string> KeyManager::create(asio::io_context& io,
                                                                           KeyOptions options,
                                                                           std::string host,
                                                                           std::string gldp_socket,
                                                                           Logger& log) {
  auto kp = load_host_key(options.key_file);
  if (!kp) return std::unexpected(kp.error());
  if (options.handshakes_per_second <= 0)
    return std::unexpected("handshakes per second must be positive");
  return std::unique_ptr<KeyManager>(
      new KeyManager(io, std::move(options), std::move(host), std::move(gldp_socket), log, *kp));
}

KeyManager::KeyManager(asio::io_context& io, KeyOptions options, std::string host,
                       std::string gldp_socket, Logger& log, const noise::KeyPair& self)
    : io_(io),
      opt_(std::move(options)),
      host_(std::move(host)),
      log_(log),
      self_(self),
      self_b64_(key_to_base64(self.pub)),
      responder_(std::make_unique<hs::Responder>(self)),
      dp_(std::make_unique<DpQueryThread>(std::move(gldp_socket))),
      socket_(io),
      timer_(io) {
  budget_ = opt_.handshakes_per_second;
}

KeyManager::~KeyManager() {
  stop();
  *alive_ = false;
}

void KeyManager::start() {
  if (started_) return;
  started_ = true;
  open_esp_sink();
  log_.info("keys: host key " + self_b64_ + ", handshakes on UDP port " +
            std::to_string(opt_.port));
  arm_tick();
}

void KeyManager::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ec;
  timer_.cancel();
  socket_.close(ec);
  if (esp_sink_ >= 0) ::close(esp_sink_);
  esp_sink_ = -1;
  if (dp_) dp_->stop();
}

// ESP to this host's address reaches gldp (af_packet, a tap) *and* the host's kernel when
// both share the underlay interface; a kernel without an IPsec state for it answers every
// packet with ICMP "protocol unreachable". A raw socket for protocol 50 makes the kernel
// consider ESP delivered; its filter drops everything, so nothing is queued.
void KeyManager::open_esp_sink() {
  const int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ESP);
  if (fd < 0) {
    log_.warn(std::string("keys: no raw ESP socket (") + std::strerror(errno) +
              "): the host's kernel may answer ESP with ICMP protocol unreachable");
    return;
  }
  sock_filter drop_all[] = {{BPF_RET | BPF_K, 0, 0, 0}};
  sock_fprog prog{1, drop_all};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) {
    log_.warn(std::string("keys: raw ESP socket filter: ") + std::strerror(errno));
    ::close(fd);
    return;
  }
  esp_sink_ = fd;
}

// ---- the Host table -----------------------------------------------------------------------

void KeyManager::update(const HostTable& hosts, const KeySettings& settings) {
  settings_ = settings;
  const HostEntry* me = nullptr;
  for (const HostEntry& h : hosts.hosts)
    if (h.name == host_) me = &h;
  std::string problem;
  std::string ip;
  bool revoked = false;
  if (me == nullptr) {
    problem = "no Host row named " + host_ + " (glctl add-host " + host_ + " IP " + self_b64_ + ")";
  } else if (me->pubkey != self_b64_) {
    problem = "Host " + host_ + ": pubkey is not this host's key (" + self_b64_ + ")";
  } else if (me->revoked) {
    problem = "Host " + host_ + " is revoked";
    revoked = true;
  } else if (auto a = parse_ip(me->underlay_ip); !a) {
    problem = "Host " + host_ + ": underlay_ip \"" + me->underlay_ip + "\" is not an address";
  } else if (a->first) {
    problem = "Host " + host_ +
              ": IPv6 underlay addresses are not supported by the key "
              "manager yet";
  } else {
    ip = me->underlay_ip;
  }
  if (problem != self_problem_ && !problem.empty()) log_.warn("keys: " + problem);
  self_problem_ = problem;
  self_revoked_ = revoked;
  if (ip != local_ip_) {
    if (!local_ip_.empty())
      revoke_all(ip.empty() ? "this host has no usable Host row"
                            : "this host's underlay address changed");
    local_ip_ = ip;
    boost::system::error_code ec;
    socket_.close(ec);
    bound_ip_.clear();
    if (!local_ip_.empty() && started_) bind_socket();
  }

  // Peers.
  std::set<std::string> seen;
  for (const HostEntry& h : hosts.hosts) {
    if (h.name == host_) continue;
    seen.insert(h.name);
    auto& slot = peers_[h.name];
    if (!slot) slot = std::make_unique<Peer>();
    Peer& p = *slot;
    const bool changed = !(p.row == h);
    const HostEntry old = p.row;
    p.row = h;
    if (!changed && (p.valid || !p.problem.empty())) continue;
    std::string why;
    auto key = key_from_base64(h.pubkey);
    auto a = parse_ip(h.underlay_ip);
    const bool was = p.valid;
    p.valid = false;
    if (h.revoked) {
      p.problem = "revoked";
      why = "revoked";
    } else if (!key) {
      p.problem = "pubkey is not a base64 X25519 public key";
      why = "invalid pubkey";
    } else if (!a) {
      p.problem = "underlay_ip \"" + h.underlay_ip + "\" is not an address";
      why = "invalid underlay_ip";
    } else if (a->first) {
      p.problem = "IPv6 underlay addresses are not supported by the key manager yet";
      why = "IPv6 underlay";
    } else {
      p.problem.clear();
      if (was && (old.pubkey != h.pubkey || old.underlay_ip != h.underlay_ip))
        why = old.pubkey != h.pubkey ? "its key changed" : "its underlay address changed";
      p.valid = true;
      p.pub = *key;
      p.ep = udp::endpoint(asio::ip::make_address(h.underlay_ip), opt_.port);
    }
    if (was && !why.empty()) revoke(p, why.c_str());
    if (p.valid) p.next_init = Clock::now();
  }
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (seen.count(it->first) != 0) {
      ++it;
      continue;
    }
    revoke(*it->second, "its Host row was removed");
    it = peers_.erase(it);
  }
  if (started_ && !stopped_) tick();  // a new peer: its handshake starts now, not next tick
}

// ---- the socket ---------------------------------------------------------------------------

void KeyManager::bind_socket() {
  if (local_ip_.empty() || stopped_) return;
  boost::system::error_code ec;
  socket_.close(ec);
  const udp::endpoint at(asio::ip::make_address(local_ip_), opt_.port);
  socket_.open(at.protocol(), ec);
  if (!ec) socket_.bind(at, ec);
  if (ec) {
    const std::string e = local_ip_ + ":" + std::to_string(opt_.port) + ": " + ec.message();
    if (e != bind_error_) log_.warn("keys: cannot listen on " + e + " (retrying)");
    bind_error_ = e;
    socket_.close(ec);
    return;
  }
  bind_error_.clear();
  bound_ip_ = local_ip_;
  log_.info("keys: listening on " + local_ip_ + ":" + std::to_string(opt_.port));
  receive();
}

void KeyManager::receive() {
  std::weak_ptr<bool> alive = alive_;
  socket_.async_receive_from(asio::buffer(buf_), from_,
                             [this, alive](const boost::system::error_code& ec, size_t n) {
                               if (auto a = alive.lock(); !a || !*a || stopped_) return;
                               if (ec == asio::error::operation_aborted) return;
                               if (!ec) on_datagram(n);
                               if (socket_.is_open()) receive();
                             });
}

void KeyManager::send_to(const udp::endpoint& to, const std::vector<uint8_t>& msg) {
  if (!socket_.is_open()) return;
  auto buf = std::make_shared<std::vector<uint8_t>>(msg);
  ++c_.tx;
  socket_.async_send_to(asio::buffer(*buf), to, [buf](const boost::system::error_code&, size_t) {});
}

void KeyManager::send(const Peer& p, const std::vector<uint8_t>& msg) {
  send_to(p.ep, msg);
}

void KeyManager::on_datagram(size_t n) {
  ++c_.rx;
  const std::span<const uint8_t> msg(buf_.data(), n);
  switch (hs::message_type(msg)) {
    case hs::kTypeInit:
      return on_init(from_, msg);
    case hs::kTypeResponse:
      return on_response(msg);
    case hs::kTypeCookie:
      return on_cookie(msg);
    case hs::kTypeConfirm:
      return on_confirm(msg);
    case hs::kTypeConfirmAck:
      return on_ack(msg);
    default:
      ++c_.unknown_message;
  }
}

// ---- indexes, SPI blocks ------------------------------------------------------------------

uint32_t KeyManager::new_index() {
  for (;;) {
    const uint32_t i = randombytes_random();
    if (i != 0 && index_peer_.count(i) == 0) return i;
  }
}

uint32_t KeyManager::new_block() {
  for (;;) {
    const uint32_t b = randombytes_random() & ~(hs::kMaxSenders - 1);
    if (b >= kMinBlock && b <= 0xffffffffu - hs::kMaxSenders && blocks_.insert(b).second) return b;
  }
}

void KeyManager::free_block(uint32_t block) {
  blocks_.erase(block);
}

KeyManager::Peer* KeyManager::peer_by_index(uint32_t index) {
  auto it = index_peer_.find(index);
  if (it == index_peer_.end()) return nullptr;
  auto p = peers_.find(it->second);
  return p == peers_.end() ? nullptr : p->second.get();
}

KeyManager::Peer* KeyManager::peer_by_key(const noise::Key& k) {
  for (auto& [name, p] : peers_)
    if (p->valid && p->pub == k) return p.get();
  return nullptr;
}

const KeyManager::EspPort* KeyManager::esp_port(const Peer& p) const {
  for (const EspPort& e : esp_ports_)
    if (same_ip(e.local, local_ip_) && same_ip(e.remote, p.row.underlay_ip)) return &e;
  return nullptr;
}

std::optional<std::array<uint8_t, 6>> KeyManager::peer_mac(const Peer& p) const {
  std::ifstream f(opt_.arp_file);
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string ip, type, flags, mac;
    if (!(ss >> ip >> type >> flags >> mac)) continue;
    if (ip != p.row.underlay_ip || (std::strtoul(flags.c_str(), nullptr, 0) & 0x2) == 0) continue;
    std::array<uint8_t, 6> m{};
    unsigned v[6];
    if (std::sscanf(mac.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) !=
        6)
      continue;
    for (int i = 0; i < 6; ++i) m[i] = static_cast<uint8_t>(v[i]);
    if (m == std::array<uint8_t, 6>{}) continue;
    return m;
  }
  return std::nullopt;
}

// ---- gldp -------------------------------------------------------------------------------

void KeyManager::dp_job(std::function<std::string(api::Client&, bool& link_ok)> job,
                        std::function<void(std::string)> done) {
  std::weak_ptr<bool> alive = alive_;
  auto deliver = [this, alive, done](std::string e) {
    asio::post(io_, [alive, done, e = std::move(e)] {
      if (auto a = alive.lock(); a && *a) done(e);
    });
  };
  dp_->submit(
      [job = std::move(job), deliver](api::Client& c) {
        bool ok = true;
        std::string e;
        try {
          e = job(c, ok);
        } catch (const std::exception& ex) {
          e = std::string("internal error: ") + ex.what();
        }
        deliver(std::move(e));
        return ok;
      },
      [deliver](const std::string& error) { deliver(error.empty() ? "gldp unreachable" : error); });
}

void KeyManager::refresh() {
  if (refresh_busy_ || stopped_) return;
  refresh_busy_ = true;
  auto view = std::make_shared<DpView>();
  dp_job(
      [view](api::Client& c, bool& ok) -> std::string {
        auto fail = [&](const char* what, const api::Error& e) {
          ok = !is_transport(e);
          view->error = std::string("gldp: ") + what + ": " + e.message;
          return view->error;
        };
        auto info = c.info();
        if (!info) return fail("info", info.error());
        view->boot_id = info->boot_id;
        view->n_pmds = info->n_pmds;
        auto ports = c.port_list();
        if (!ports) return fail("port list", ports.error());
        for (const api::PortInfo& pi : *ports) {
          const std::string devargs(pi.devargs, strnlen(pi.devargs, sizeof pi.devargs));
          auto args = esp_args(devargs);
          if (!args) continue;
          EspPort e;
          e.name.assign(pi.name, strnlen(pi.name, sizeof pi.name));
          e.port_no = pi.port_no;
          e.group = static_cast<uint32_t>(std::strtoul((*args)["group"].c_str(), nullptr, 0));
          e.local = (*args)["local"];
          e.remote = (*args)["remote"];
          e.underlay = (*args)["underlay"];
          for (const api::PortInfo& u : *ports) {
            const std::string un(u.name, strnlen(u.name, sizeof u.name));
            if (un == e.underlay || std::to_string(u.port_no) == e.underlay) {
              std::memcpy(e.underlay_mac.data(), u.mac, 6);
              e.underlay_found = true;
            }
          }
          view->esp.push_back(std::move(e));
        }
        auto sas = c.sa_dump(false);
        if (!sas) return fail("sa dump", sas.error());
        view->sas = std::move(*sas);
        return {};
      },
      [this, view](std::string error) {
        refresh_busy_ = false;
        if (view->error.empty()) view->error = error;
        on_refresh(view);
      });
}

void KeyManager::on_refresh(std::shared_ptr<DpView> v) {
  if (!v->error.empty()) {
    if (v->error != dp_error_) log_.warn("keys: " + v->error);
    dp_error_ = v->error;
    dp_known_ = false;
    return;
  }
  if (!dp_error_.empty()) log_.info("keys: gldp reachable again");
  dp_error_.clear();
  const bool first = boot_id_ == 0;
  if (!first && v->boot_id != boot_id_) {
    log_.warn("keys: gldp restarted (it has none of our SAs): handshaking with every peer");
    forget_sessions();
  } else if (!first && v->n_pmds != n_pmds_) {
    log_.info("keys: gldp's PMD count changed: handshaking with every peer");
    forget_sessions();
  }
  boot_id_ = v->boot_id;
  n_pmds_ = v->n_pmds;
  esp_ports_ = std::move(v->esp);
  dp_known_ = true;
  out_seq_.clear();
  out_bytes_.clear();
  for (const api::SaInfo& s : v->sas)
    if (s.cfg.dir == static_cast<uint8_t>(api::SaDir::kOut)) {
      out_seq_[s.cfg.spi] = s.seq;
      out_bytes_[s.cfg.spi] = s.bytes;
    }
  if (!first || local_ip_.empty()) return;
  // First look at this gldp: SAs a previous glctld installed keep carrying traffic until
  // new sessions replace them; their inbound SPI blocks are reserved and retired then.
  // Those of revoked or unknown peers go now (fail closed).
  std::vector<std::pair<uint32_t, uint8_t>> stale;
  for (const api::SaInfo& s : v->sas) {
    const bool v6 = s.cfg.addr_v6 != 0;
    if (v6 || !same_ip(ip_text(s.cfg.local, false), local_ip_)) continue;
    const std::string remote = ip_text(s.cfg.remote, v6);
    Peer* owner = nullptr;
    bool revoked = false;
    for (auto& [name, p] : peers_)
      if (same_ip(p->row.underlay_ip, remote)) {
        if (p->valid)
          owner = p.get();
        else
          revoked = p->row.revoked;
      }
    if (owner == nullptr) {
      if (revoked) stale.emplace_back(s.cfg.spi, s.cfg.dir);
      continue;
    }
    if (s.cfg.dir != static_cast<uint8_t>(api::SaDir::kIn)) continue;
    const uint32_t block = s.cfg.spi & ~(hs::kMaxSenders - 1);
    blocks_.insert(block);
    auto it = std::find_if(owner->blocks.begin(), owner->blocks.end(),
                           [&](const Peer::Block& b) { return b.spi == block; });
    if (it == owner->blocks.end())
      owner->blocks.push_back({block, s.cfg.spi - block + 1});
    else
      it->n = std::max(it->n, s.cfg.spi - block + 1);
  }
  if (!stale.empty()) {
    log_.info("keys: removing " + std::to_string(stale.size()) +
              " SAs of revoked hosts found in gldp");
    dp_job(
        [stale](api::Client& c, bool& ok) -> std::string {
          for (auto [spi, dir] : stale)
            if (auto r = c.sa_del(spi, static_cast<api::SaDir>(dir));
                !r && is_transport(r.error())) {
              ok = false;
              return r.error().message;
            }
          return {};
        },
        [](std::string) {});
  }
}

// Forgets a peer's handshake and sessions, their indexes and SPI blocks (gldp is not told).
void KeyManager::clear_peer(Peer& p) {
  if (p.init) index_peer_.erase(p.init->index());
  if (p.active) index_peer_.erase(p.active->sa.index);
  if (p.pending) index_peer_.erase(p.pending->sa.index);
  for (const auto& b : p.blocks) free_block(b.spi);
  if (p.init) free_block(p.init_block);
  p.init.reset();
  p.active.reset();
  p.pending.reset();
  p.blocks.clear();
  p.init_tries = 0;
  p.next_init = Clock::now();
}

void KeyManager::forget_sessions() {
  for (auto& [name, p] : peers_) clear_peer(*p);
}

// Deletes (no grace) every SA in gldp with this local address and, unless empty, this
// remote address.
void KeyManager::delete_sas(const std::string& local, const std::string& remote,
                            const std::string& what) {
  dp_job(
      [local, remote](api::Client& c, bool& ok) -> std::string {
        auto sas = c.sa_dump(false);
        if (!sas) {
          ok = !is_transport(sas.error());
          return sas.error().message;
        }
        for (const api::SaInfo& s : *sas) {
          const bool v6 = s.cfg.addr_v6 != 0;
          if (!same_ip(ip_text(s.cfg.local, v6), local) ||
              (!remote.empty() && !same_ip(ip_text(s.cfg.remote, v6), remote)))
            continue;
          if (auto r = c.sa_del(s.cfg.spi, static_cast<api::SaDir>(s.cfg.dir)); !r) {
            ok = !is_transport(r.error());
            if (!ok) return r.error().message;
          }
        }
        return {};
      },
      [this, what](std::string e) {
        if (!e.empty()) log_.error("keys: removing " + what + ": " + e);
      });
}

// Removes every SA between this host and `p` at once (no grace) and forgets its sessions.
void KeyManager::revoke(Peer& p, const char* why) {
  const bool had = p.active || p.pending || p.init || !p.blocks.empty();
  clear_peer(p);
  p.last_ts = {};
  ++c_.revocations;
  log_.info("keys: peer " + p.row.name + " (" + p.row.underlay_ip + "): " + why +
            "; removing its SAs" + (had ? "" : " (none known)"));
  if (!local_ip_.empty()) delete_sas(local_ip_, p.row.underlay_ip, p.row.name + "'s SAs");
}

void KeyManager::revoke_all(const char* why) {
  for (auto& [name, p] : peers_) clear_peer(*p);
  ++c_.revocations;
  log_.warn(std::string("keys: ") + why + ": removing every SA of " + local_ip_);
  if (!local_ip_.empty()) delete_sas(local_ip_, "", "SAs");
}

// Old inbound SAs of `p` go after the grace period (packets sent under them may still be
// in flight); `keep` stays.
void KeyManager::retire_others(Peer& p, uint32_t keep) {
  std::vector<Peer::Block> old;
  for (const auto& b : p.blocks)
    if (b.spi != keep) old.push_back(b);
  if (old.empty()) return;
  std::erase_if(p.blocks, [&](const Peer::Block& b) { return b.spi != keep; });
  const uint32_t grace = static_cast<uint32_t>(opt_.grace.count());
  const std::string name = p.row.name;
  dp_job(
      [old, grace](api::Client& c, bool& ok) -> std::string {
        for (const auto& b : old)
          for (uint32_t i = 0; i < b.n; ++i)
            if (auto r = c.sa_del(b.spi + i, api::SaDir::kIn, grace); !r) {
              if (is_transport(r.error())) {
                ok = false;
                return r.error().message;
              }
            }
        return {};
      },
      [this, old, name](std::string e) {
        if (!e.empty()) log_.warn("keys: retiring " + name + "'s old SAs: " + e);
        // The blocks stay reserved until gldp has removed them.
        auto t = std::make_shared<asio::steady_timer>(io_, opt_.grace + std::chrono::seconds(1));
        std::weak_ptr<bool> alive = alive_;
        t->async_wait([this, t, old, alive](const boost::system::error_code&) {
          if (auto a = alive.lock(); !a || !*a) return;
          for (const auto& b : old) free_block(b.spi);
        });
      });
}

// ---- handshakes -------------------------------------------------------------------------

// A gldp job adding the SAs in order; the error names the first SA refused.
std::function<std::string(api::Client&, bool&)> KeyManager::install_job(
    std::shared_ptr<KeyedRequests> reqs, uint32_t lifetime_ms) {
  return [reqs, lifetime_ms](api::Client& c, bool& ok) -> std::string {
    for (const api::SaAddRequest& r : reqs->reqs)
      if (auto e = c.sa_add(r); !e) {
        ok = !is_transport(e.error());
        return std::string("sa-add ") + (r.cfg.dir == 0 ? "outbound" : "inbound") + " spi " +
               std::to_string(r.cfg.spi) + ": " + e.error().message;
      }
    // The hard lifetime, kept by gldp: the SAs go then unless replaced (outbound) or
    // retired (inbound, a shorter grace) first. A later sa-del reschedules.
    for (const api::SaAddRequest& r : reqs->reqs)
      if (auto e = c.sa_del(r.cfg.spi, static_cast<api::SaDir>(r.cfg.dir), lifetime_ms); !e) {
        ok = !is_transport(e.error());
        return std::string("lifetime of ") + (r.cfg.dir == 0 ? "outbound" : "inbound") + " spi " +
               std::to_string(r.cfg.spi) + ": " + e.error().message;
      }
    return {};
  };
}

uint32_t KeyManager::lifetime_left_ms(const Session& s) const {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(s.expires - Clock::now()).count();
  return static_cast<uint32_t>(
      std::clamp<int64_t>(left, 1000, static_cast<int64_t>(api::kSaMaxGraceMs)));
}

// This host's outbound SAs of a session: one per context (i == n_pmds: the control
// thread), in the ESP port's group, replacing what the slots hold.
void KeyManager::add_outbound(KeyedRequests& reqs, const hs::SaPair& sa, uint32_t group,
                              const EspPort& esp, const std::array<uint8_t, 6>& peer_mac,
                              const std::string& remote) const {
  for (uint32_t i = 0; i < sa.n_out; ++i) {
    api::SaAddRequest r = sa_request(sa.out_sa(i), true, sa.cipher, local_ip_, remote);
    r.cfg.group = group;
    r.cfg.pmd = i;
    std::memcpy(r.cfg.src_mac, esp.underlay_mac.data(), 6);
    std::memcpy(r.cfg.dst_mac, peer_mac.data(), 6);
    r.flags = api::kSaAddReplace;
    reqs.reqs.push_back(r);
  }
}

void KeyManager::start_handshake(Peer& p, const char* why) {
  const Clock::time_point now = Clock::now();
  auto not_now = [&](std::string problem) {
    p.problem = std::move(problem);
    p.next_init = now + std::chrono::seconds(1);
  };
  if (!socket_.is_open()) return not_now("not listening (" + bind_error_ + ")");
  if (!dp_known_)
    return not_now("gldp not reachable" + (dp_error_.empty() ? "" : ": " + dp_error_));
  if (esp_port(p) == nullptr)
    return not_now("no ESP port in gldp with local=" + local_ip_ + " remote=" + p.row.underlay_ip);
  if (n_contexts() > hs::kMaxSenders)
    return not_now("gldp has more than " + std::to_string(hs::kMaxSenders - 1) + " PMDs");
  p.problem.clear();
  if (p.init) {
    index_peer_.erase(p.init->index());
    free_block(p.init_block);
  }
  const uint32_t index = new_index();
  p.init_block = new_block();
  p.init = std::make_unique<hs::Initiator>(self_, p.pub, index, p.init_block, n_contexts(),
                                           opt_.cipher, hs::tai64n_now());
  index_peer_[index] = p.row.name;
  if (p.init_tries == 0)
    log_.info(std::string("keys: handshake with ") + p.row.name + " (" + why + ")");
  ++p.init_tries;
  ++c_.inits_sent;
  send(p, p.init->message());
  // Retries: 125 ms, doubling up to init_retry (a peer that just appeared may not listen
  // yet), then every init_retry; after ten tries five times slower.
  const auto first = std::chrono::milliseconds(125) * (1u << std::min(p.init_tries - 1, 5u));
  p.next_init = now + (p.init_tries >= 10 ? 5 * opt_.init_retry : std::min(first, opt_.init_retry));
}

void KeyManager::on_init(const udp::endpoint& from, std::span<const uint8_t> msg) {
  const Clock::time_point now = Clock::now();
  // The budget: handshakes_per_second tokens, refilled continuously. Without tokens the
  // responder asks for a cookie (no DH for senders that do not receive at their address);
  // far past it (a flood of valid cookies) inits are dropped.
  const double rate = opt_.handshakes_per_second;
  if (budget_at_ != Clock::time_point{})
    budget_ =
        std::min(rate, budget_ + rate * std::chrono::duration<double>(now - budget_at_).count());
  budget_at_ = now;
  if (budget_ < -rate) {
    ++c_.rate_limited;
    return;
  }
  const bool under_load = budget_ < 1;
  uint8_t source[18] = {};
  const auto addr = from.address();
  if (addr.is_v4()) {
    const auto b = addr.to_v4().to_bytes();
    std::memcpy(source, b.data(), 4);
  } else {
    const auto b = addr.to_v6().to_bytes();
    std::memcpy(source, b.data(), 16);
  }
  source[16] = static_cast<uint8_t>(from.port() >> 8);
  source[17] = static_cast<uint8_t>(from.port());
  const uint32_t index = new_index();
  const uint32_t block = new_block();
  std::vector<uint8_t> reply;
  auto lookup = [this](const noise::Key& k) -> std::optional<hs::Responder::PeerState> {
    Peer* p = peer_by_key(k);
    if (p == nullptr) return std::nullopt;
    return hs::Responder::PeerState{p->last_ts};
  };
  auto acc = responder_->consume_init(msg, source, under_load, lookup, index, block,
                                      n_contexts() <= hs::kMaxSenders ? n_contexts() : 0, reply);
  if (!under_load || acc || acc.error() != hs::Error::kCookieSent) budget_ -= 1;
  if (!acc) {
    free_block(block);
    if (acc.error() == hs::Error::kCookieSent) {
      ++c_.cookies_sent;
      send_to(from, reply);
    } else {
      ++c_.refused[static_cast<size_t>(acc.error())];
    }
    return;
  }
  Peer* p = peer_by_key(acc->sa.peer);
  if (p == nullptr) {  // cannot happen: lookup found it
    free_block(block);
    return;
  }
  if (from.address() != p->ep.address()) {
    ++c_.wrong_source;
    free_block(block);
    return;
  }
  const EspPort* esp = esp_port(*p);
  if (esp == nullptr || !dp_known_) {
    ++c_.no_esp_port;
    free_block(block);
    return;
  }
  p->last_ts = acc->timestamp;
  if (p->init) {
    // Two inits crossed: the lower public key's handshake goes on, the other is dropped.
    if (std::lexicographical_compare(self_.pub.begin(), self_.pub.end(), p->pub.begin(),
                                     p->pub.end())) {
      ++c_.crossed;
      free_block(block);
      return;
    }
    index_peer_.erase(p->init->index());
    free_block(p->init_block);
    p->init.reset();
  }
  if (p->pending) index_peer_.erase(p->pending->sa.index);  // superseded (its SAs retire later)
  auto s = std::make_unique<Session>();
  s->sa = acc->sa;
  s->initiator = false;
  s->state = Session::State::kInstalling;
  s->created = now;
  s->expires = now + sa_lifetime(settings_.rekey_seconds);
  s->group = esp->group;
  s->response = std::move(acc->response);
  p->blocks.push_back({block, s->sa.n_in});
  index_peer_[index] = p->row.name;
  auto reqs = std::make_shared<KeyedRequests>();
  for (uint32_t i = 0; i < s->sa.n_in; ++i)
    reqs->reqs.push_back(
        sa_request(s->sa.in_sa(i), false, s->sa.cipher, local_ip_, p->row.underlay_ip));
  const uint32_t lifetime = lifetime_left_ms(*s);
  p->pending = std::move(s);
  const std::string name = p->row.name;
  dp_job(install_job(reqs, lifetime),
         [this, name, index](std::string e) { installed_in_responder(name, index, std::move(e)); });
}

void KeyManager::installed_in_responder(const std::string& name, uint32_t index, std::string e) {
  auto it = peers_.find(name);
  if (it == peers_.end()) return;
  Peer& p = *it->second;
  Session* s = p.pending.get();
  if (s == nullptr || s->sa.index != index) return;  // superseded or revoked meanwhile
  if (!e.empty()) {
    ++c_.install_errors;
    p.last_error = e;
    log_.error("keys: " + name + ": " + e);
    index_peer_.erase(index);
    p.pending.reset();
    return;
  }
  s->state = Session::State::kAwaitConfirm;
  ++c_.responses_sent;
  send(p, s->response);
}

void KeyManager::on_response(std::span<const uint8_t> msg) {
  const uint32_t idx = hs::receiver_index(msg);
  Peer* p = peer_by_index(idx);
  if (p == nullptr || !p->init || p->init->index() != idx) {
    ++c_.refused[static_cast<size_t>(hs::Error::kBadIndex)];
    return;
  }
  auto sa = p->init->consume_response(msg);
  if (!sa) {
    ++c_.refused[static_cast<size_t>(sa.error())];
    return;
  }
  const EspPort* esp = esp_port(*p);
  if (esp == nullptr) {
    p->problem = "its ESP port went away";
    return;
  }
  const auto mac = peer_mac(*p);
  if (!mac || !esp->underlay_found) {
    p->last_error = !mac ? "no ARP entry for " + p->row.underlay_ip + " in " + opt_.arp_file
                         : "ESP port " + esp->name + ": underlay " + esp->underlay + " not in gldp";
    log_.warn("keys: " + p->row.name + ": " + p->last_error);
    return;  // the init is retried
  }
  if (p->pending) index_peer_.erase(p->pending->sa.index);
  auto s = std::make_unique<Session>();
  s->sa = std::move(*sa);
  s->initiator = true;
  s->state = Session::State::kInstalling;
  s->created = Clock::now();
  s->expires = s->created + sa_lifetime(settings_.rekey_seconds);
  s->group = esp->group;
  p->blocks.push_back({p->init_block, s->sa.n_in});
  p->init.reset();  // its index now names the session
  p->init_tries = 0;
  auto reqs = std::make_shared<KeyedRequests>();
  for (uint32_t i = 0; i < s->sa.n_in; ++i)
    reqs->reqs.push_back(
        sa_request(s->sa.in_sa(i), false, s->sa.cipher, local_ip_, p->row.underlay_ip));
  add_outbound(*reqs, s->sa, s->group, *esp, *mac, p->row.underlay_ip);
  const uint32_t lifetime = lifetime_left_ms(*s);
  p->pending = std::move(s);
  const std::string name = p->row.name;
  dp_job(install_job(reqs, lifetime),
         [this, name, idx](std::string e) { installed_initiator(name, idx, std::move(e)); });
}

void KeyManager::installed_initiator(const std::string& name, uint32_t index, std::string e) {
  auto it = peers_.find(name);
  if (it == peers_.end()) return;
  Peer& p = *it->second;
  if (!p.pending || p.pending->sa.index != index) return;
  const Clock::time_point now = Clock::now();
  if (!e.empty()) {
    ++c_.install_errors;
    p.last_error = e;
    log_.error("keys: " + name + ": " + e);
    index_peer_.erase(index);
    p.pending.reset();
    p.next_init = now + opt_.init_retry;
    return;
  }
  // Our outbound SAs use the new keys from now on: the session is the active one.
  const bool rekey = p.active != nullptr;
  if (p.active) index_peer_.erase(p.active->sa.index);
  p.active = std::move(p.pending);
  Session& s = *p.active;
  s.state = Session::State::kAwaitAck;
  s.activated = now;
  s.confirms = 1;
  s.next_confirm = now + opt_.confirm_retry;
  ++p.sessions;
  ++c_.sessions;
  if (rekey) ++c_.rekeys;
  p.last_session = std::chrono::system_clock::now();
  p.last_error.clear();
  log_.info("keys: " + name + ": " + (rekey ? "rekeyed" : "session up") + " (initiator, SPIs in " +
            std::to_string(s.sa.spi_in) + "+" + std::to_string(s.sa.n_in) + ", out " +
            std::to_string(s.sa.spi_out) + "+" + std::to_string(s.sa.n_out) + ")");
  send(p, s.sa.confirm());
}

void KeyManager::on_cookie(std::span<const uint8_t> msg) {
  const uint32_t idx = hs::receiver_index(msg);
  Peer* p = peer_by_index(idx);
  if (p == nullptr || !p->init || p->init->index() != idx || !p->init->consume_cookie(msg)) {
    ++c_.refused[static_cast<size_t>(hs::Error::kBadIndex)];
    return;
  }
  ++c_.cookies_received;
  send(*p, p->init->message());  // again, with mac2
}

void KeyManager::on_confirm(std::span<const uint8_t> msg) {
  const uint32_t idx = hs::receiver_index(msg);
  Peer* p = peer_by_index(idx);
  if (p == nullptr) {
    ++c_.bad_confirm;
    return;
  }
  Session* s = p->pending && p->pending->sa.index == idx ? p->pending.get()
               : p->active && p->active->sa.index == idx ? p->active.get()
                                                         : nullptr;
  if (s == nullptr || s->initiator || !s->sa.check_confirm(msg)) {
    ++c_.bad_confirm;
    return;
  }
  if (s == p->active.get()) {  // our ack was lost
    send(*p, s->sa.confirm());
    return;
  }
  if (s->state != Session::State::kAwaitConfirm) return;  // installing
  const EspPort* esp = esp_port(*p);
  const auto mac = peer_mac(*p);
  if (esp == nullptr || !esp->underlay_found || !mac) {
    p->last_error = esp == nullptr ? "its ESP port went away"
                    : !mac         ? "no ARP entry for " + p->row.underlay_ip
                                   : "ESP port " + esp->name + ": underlay not in gldp";
    log_.warn("keys: " + p->row.name + ": " + p->last_error);
    return;  // the confirm is resent
  }
  s->state = Session::State::kInstalling;
  auto reqs = std::make_shared<KeyedRequests>();
  add_outbound(*reqs, s->sa, esp->group, *esp, *mac, p->row.underlay_ip);
  const std::string name = p->row.name;
  dp_job(install_job(reqs, lifetime_left_ms(*s)),
         [this, name, idx](std::string e) { installed_out_responder(name, idx, std::move(e)); });
}

void KeyManager::installed_out_responder(const std::string& name, uint32_t index, std::string e) {
  auto it = peers_.find(name);
  if (it == peers_.end()) return;
  Peer& p = *it->second;
  if (!p.pending || p.pending->sa.index != index) return;
  if (!e.empty()) {
    ++c_.install_errors;
    p.last_error = e;
    log_.error("keys: " + name + ": " + e);
    p.pending->state = Session::State::kAwaitConfirm;  // the next confirm tries again
    return;
  }
  const bool rekey = p.active != nullptr;
  if (p.active) index_peer_.erase(p.active->sa.index);
  p.active = std::move(p.pending);
  Session& s = *p.active;
  s.state = Session::State::kActive;
  s.activated = Clock::now();
  s.response.clear();
  ++p.sessions;
  ++c_.sessions;
  if (rekey) ++c_.rekeys;
  p.last_session = std::chrono::system_clock::now();
  p.last_error.clear();
  p.init_tries = 0;
  send(p, s.sa.confirm());  // the ack
  retire_others(p, s.sa.spi_in);
  log_.info("keys: " + name + ": " + (rekey ? "rekeyed" : "session up") + " (responder, SPIs in " +
            std::to_string(s.sa.spi_in) + "+" + std::to_string(s.sa.n_in) + ", out " +
            std::to_string(s.sa.spi_out) + "+" + std::to_string(s.sa.n_out) + ")");
}

void KeyManager::on_ack(std::span<const uint8_t> msg) {
  const uint32_t idx = hs::receiver_index(msg);
  Peer* p = peer_by_index(idx);
  if (p == nullptr || !p->active || p->active->sa.index != idx || !p->active->initiator ||
      !p->active->sa.check_confirm(msg)) {
    ++c_.bad_confirm;
    return;
  }
  Session& s = *p->active;
  if (s.acked) return;
  s.acked = true;
  s.state = Session::State::kActive;
  retire_others(*p, s.sa.spi_in);
}

// ---- the clock --------------------------------------------------------------------------

void KeyManager::arm_tick() {
  if (stopped_) return;
  std::weak_ptr<bool> alive = alive_;
  timer_.expires_after(opt_.tick);
  timer_.async_wait([this, alive](const boost::system::error_code& ec) {
    if (auto a = alive.lock(); !a || !*a || ec || stopped_) return;
    tick();
    arm_tick();
  });
}

void KeyManager::tick() {
  const Clock::time_point now = Clock::now();
  if (now >= next_refresh_) {
    // gldp away (restarting?): look every 100 ms, so that the handshakes that give it
    // SAs again start as soon as it is back, not up to a refresh period later.
    next_refresh_ = now + (dp_error_.empty() ? opt_.refresh
                                             : std::min<std::chrono::milliseconds>(
                                                   opt_.refresh, std::chrono::milliseconds(100)));
    refresh();
  }
  responder_->tick(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count()));
  if (!local_ip_.empty() && !socket_.is_open()) {
    if (now >= next_bind_) {
      next_bind_ = now + std::chrono::seconds(1);
      bind_socket();
    }
  }
  if (local_ip_.empty() || self_revoked_) return;
  const auto rekey = std::chrono::seconds(settings_.rekey_seconds);
  for (auto& [name, pp] : peers_) {
    Peer& p = *pp;
    if (!p.valid) continue;
    // A confirm without ack is resent; after confirm_tries the handshake starts again
    // (the older inbound SAs stay until some session is acknowledged).
    if (p.active && p.active->state == Session::State::kAwaitAck && now >= p.active->next_confirm) {
      Session& s = *p.active;
      if (s.confirms < opt_.confirm_tries) {
        ++s.confirms;
        s.next_confirm = now + opt_.confirm_retry;
        send(p, s.sa.confirm());
      } else {
        s.state = Session::State::kActive;  // unacknowledged
        log_.warn("keys: " + name + ": no confirm-ack; handshaking again");
        if (!p.init && !p.pending) start_handshake(p, "no confirm-ack");
      }
    }
    // A responder's session that is never confirmed goes (with its inbound SAs).
    if (p.pending && !p.pending->initiator && p.pending->state == Session::State::kAwaitConfirm &&
        now - p.pending->created > opt_.pending_timeout) {
      index_peer_.erase(p.pending->sa.index);
      const uint32_t keep = p.active ? p.active->sa.spi_in : 0;
      p.pending.reset();
      retire_others(p, keep);
    }
    if (p.init) {
      if (now >= p.next_init) start_handshake(p, "retry");
      continue;
    }
    if (p.pending) continue;
    const char* why = nullptr;
    if (!p.active) {
      why = "no session";
    } else {
      const Session& s = *p.active;
      const auto age = now - s.activated;
      if (s.initiator && age >= rekey)
        why = "rekey by time";
      else if (age >= rekey + std::chrono::seconds(15))
        why = "rekey by time (the peer did not)";
      else if (now + kLifetimeMargin >= s.expires)
        why = "rekey ahead of the SAs' lifetime";
      else {
        const uint64_t limit =
            settings_.rekey_packets != 0 ? settings_.rekey_packets : (uint64_t{1} << 62);
        for (uint32_t i = 0; i < s.sa.n_out && why == nullptr && age >= std::chrono::seconds(1);
             ++i) {
          auto it = out_seq_.find(s.sa.spi_out + i);
          if (it != out_seq_.end() && it->second >= limit) why = "rekey by packets";
          auto b = out_bytes_.find(s.sa.spi_out + i);
          if (settings_.rekey_bytes != 0 && b != out_bytes_.end() &&
              b->second >= settings_.rekey_bytes)
            why = "rekey by bytes";
        }
      }
    }
    if (why != nullptr && now >= p.next_init) start_handshake(p, why);
  }
}

// ---- status -------------------------------------------------------------------------------

Json KeyManager::status() const {
  const Clock::time_point now = Clock::now();
  Json peers = Json::array();
  auto session_json = [&](const Session& s) {
    static constexpr const char* kStates[] = {"installing", "await-confirm", "await-ack", "active"};
    return Json{{"role", s.initiator ? "initiator" : "responder"},
                {"state", kStates[static_cast<int>(s.state)]},
                {"spi_in", s.sa.spi_in},
                {"n_in", s.sa.n_in},
                {"spi_out", s.sa.spi_out},
                {"n_out", s.sa.n_out},
                {"cipher", std::string(crypto::name(s.sa.cipher))},
                {"group", s.group},
                {"lifetime_left_s", std::chrono::duration<double>(s.expires - now).count()},
                {"age_s", std::chrono::duration<double>(
                              now - (s.activated != Clock::time_point{} ? s.activated : s.created))
                              .count()}};
  };
  for (const auto& [name, p] : peers_) {
    Json j{{"name", name},
           {"underlay_ip", p->row.underlay_ip},
           {"pubkey", p->row.pubkey},
           {"revoked", p->row.revoked},
           {"valid", p->valid},
           {"problem", p->problem},
           {"last_error", p->last_error},
           {"sessions", p->sessions},
           {"handshaking", p->init != nullptr},
           {"handshake_tries", p->init_tries},
           {"active", p->active ? session_json(*p->active) : Json(nullptr)},
           {"pending", p->pending ? session_json(*p->pending) : Json(nullptr)}};
    Json blocks = Json::array();
    for (const auto& b : p->blocks) blocks.push_back({{"spi", b.spi}, {"n", b.n}});
    j["inbound_blocks"] = blocks;
    if (p->last_session != std::chrono::system_clock::time_point{})
      j["last_session"] = iso8601_utc(p->last_session);
    if (const EspPort* e = esp_port(*p)) j["esp_port"] = e->name;
    peers.push_back(std::move(j));
  }
  Json refused = Json::object();
  for (size_t i = 0; i < static_cast<size_t>(hs::Error::kCount); ++i)
    if (i != static_cast<size_t>(hs::Error::kCookieSent))
      refused[std::string(hs::kErrorNames[i])] = c_.refused[i];
  return Json{{"host", host_},
              {"pubkey", self_b64_},
              {"underlay_ip", local_ip_},
              {"port", opt_.port},
              {"listening", socket_.is_open()},
              {"problem", self_problem_.empty() ? bind_error_ : self_problem_},
              {"rekey_seconds", settings_.rekey_seconds},
              {"rekey_packets", settings_.rekey_packets},
              {"rekey_bytes", settings_.rekey_bytes},
              {"sa_lifetime_seconds",
               std::chrono::duration<double>(sa_lifetime(settings_.rekey_seconds)).count()},
              {"gldp", {{"reachable", dp_known_}, {"error", dp_error_}, {"n_pmds", n_pmds_}}},
              {"peers", peers},
              {"counters",
               {{"rx", c_.rx},
                {"tx", c_.tx},
                {"inits_sent", c_.inits_sent},
                {"responses_sent", c_.responses_sent},
                {"cookies_sent", c_.cookies_sent},
                {"cookies_received", c_.cookies_received},
                {"sessions", c_.sessions},
                {"rekeys", c_.rekeys},
                {"revocations", c_.revocations},
                {"refused", refused},
                {"wrong_source", c_.wrong_source},
                {"crossed", c_.crossed},
                {"rate_limited", c_.rate_limited},
                {"no_esp_port", c_.no_esp_port},
                {"bad_confirm", c_.bad_confirm},
                {"unknown_message", c_.unknown_message},
                {"install_errors", c_.install_errors}}}};
}

}  // namespace gl::glctld
