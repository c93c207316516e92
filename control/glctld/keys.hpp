// keys.hpp — glctld's key manager: the host key, the handshake with every peer host over
// UDP, and the ESP SAs it installs into gldp and rotates.
//
// Purpose: SAs without anyone typing a key. For every host of the Host table (not this
// one, not revoked, with a valid underlay address and public key) whose ESP port gldp has
// (a gl_esp port with local = this host's underlay address and remote = the peer's), the
// manager keeps a session: a Noise IK handshake (crypto/handshake.hpp) gives the two
// transport keys, from which each SA's key is derived; it installs one inbound SA per
// sending context of the peer and one outbound SA per context of this gldp (its PMDs and
// the control thread) into the ESP port's group, and starts again every rekey_seconds
// (and ahead of rekey_packets / sequence exhaustion). Order, so that nothing is lost:
//
//   initiator                                   responder
//   init ─────────────────────────────────────► checks (mac1, cookie under load, key
//                                               registered, timestamp), installs its
//                                               inbound SAs, then
//   installs inbound + outbound (replacing) ◄── response
//   confirm (retried until acked) ────────────► installs its outbound (replacing),
//                                               retires the older inbound SAs (grace)
//   retires the older inbound SAs (grace) ◄──── confirm-ack
//
// Each side switches its outbound SAs only when the other side's inbound SAs are in
// place, and old inbound SAs stay for a grace period after the switch, so a rekey under
// load loses no packet. Every SA has a hard lifetime (sa_lifetime(rekey_seconds)) that gldp
// itself enforces: each install is followed by an sa-del with that grace, so an SA nobody
// replaces (glctld dead or stopped, the peer unreachable) is removed by gldp on time and
// its traffic dropped (esp_no_sa / esp_unknown_spi), not sent on under an old key. A peer
// removed, revoked or given another key or address loses every SA at once (gldp then drops
// its traffic: esp_no_sa; fail closed); this host's own row revoked removes all of them.
//
// Host keys: a file with the base64 X25519 private key, mode 0600 (refused when group or
// others may read it); `glctld --gen-key FILE` makes one and prints the public key for
// `glctl add-host`. Keys are never logged; key material is wiped after use (requests to
// gldp included).
//
// Thread-safety: the KeyManager lives on the daemon's io_context thread (create, update,
// status, stop there); gldp is driven from its own DpQueryThread, whose results are posted
// back. Complexity: per message O(log peers); per tick O(peers).
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "control/glctld/dp_query.hpp"
#include "control/glctld/log.hpp"
#include "control/glctld/state.hpp"
#include "crypto/handshake.hpp"

namespace gl::glctld {

inline constexpr uint16_t kDefaultKeyPort = 4797;

// The hard lifetime of an SA installed under `rekey_seconds`: 1.5 times it, at least
// rekey_seconds + 30 s (room for the responder's fallback rekey 15 s after the initiator's
// and for retries), at most an hour (gldp's longest sa-del grace). An SA gets older than
// rekey_seconds only when no rekey can happen; sessions are rekeyed kLifetimeMargin before
// their lifetime runs out in any case (a lifetime capped at an hour, a setting lengthened).
std::chrono::milliseconds sa_lifetime(uint32_t rekey_seconds);
inline constexpr std::chrono::seconds kLifetimeMargin{10};

// Host keys.
std::string key_to_base64(const crypto::noise::Key& k);
std::optional<crypto::noise::Key> key_from_base64(std::string_view text);
// Reads a private key file (base64, 0600); the error names the file and the reason.
std::expected<crypto::noise::KeyPair, std::string> load_host_key(const std::string& path);
// Creates a new key file (refuses to overwrite one), mode 0600.
std::expected<crypto::noise::KeyPair, std::string> create_host_key(const std::string& path);

struct KeyOptions {
  std::string key_file;  // empty: no key manager
  uint16_t port = kDefaultKeyPort;
  crypto::Cipher cipher = crypto::Cipher::aes256_gcm;
  std::chrono::milliseconds tick{100};
  std::chrono::milliseconds init_retry{1000};    // a handshake without answer is retried
  std::chrono::milliseconds confirm_retry{200};  // a confirm without ack is resent
  unsigned confirm_tries = 25;                   // then the handshake starts again
  std::chrono::milliseconds grace{3000};         // older inbound SAs kept after a switch
  std::chrono::milliseconds refresh{1000};       // gldp's ESP ports and SAs read again
  std::chrono::seconds pending_timeout{30};      // a responder's unconfirmed session
  double handshakes_per_second = 200;            // inits answered; more: under load
  std::string arp_file = "/proc/net/arp";        // the peers' underlay MACs (IPv4)
};

// What the manager counts (status "keys").
struct KeyCounters {
  uint64_t rx = 0, tx = 0;
  uint64_t inits_sent = 0, responses_sent = 0, cookies_sent = 0, cookies_received = 0;
  uint64_t sessions = 0;  // handshakes completed (either role)
  uint64_t rekeys = 0;    // of them, replacing a session
  uint64_t revocations = 0;
  uint64_t refused[static_cast<size_t>(crypto::hs::Error::kCount)] = {};
  uint64_t wrong_source = 0;  // an init from another address than the peer's underlay_ip
  uint64_t crossed = 0;       // an init that crossed ours, left to ours (lower key wins)
  uint64_t rate_limited = 0;  // inits dropped over the handshake budget
  uint64_t no_esp_port = 0;   // an init from a peer without an ESP port here
  uint64_t bad_confirm = 0;
  uint64_t unknown_message = 0;
  uint64_t install_errors = 0;
};

class KeyManager {
 public:
  // Loads the host key; the error says what is wrong. Binds nothing yet.
  static std::expected<std::unique_ptr<KeyManager>, std::string> create(boost::asio::io_context& io,
                                                                        KeyOptions options,
                                                                        std::string host,
                                                                        std::string gldp_socket,
                                                                        Logger& log);
  ~KeyManager();
  KeyManager(const KeyManager&) = delete;
  KeyManager& operator=(const KeyManager&) = delete;

  void start();
  // Closes the socket and ends the gldp thread; installed SAs stay in gldp (traffic keeps
  // flowing on them until a restarted glctld replaces them). Idempotent.
  void stop();
  // The Host table and settings changed (or were loaded).
  void update(const HostTable& hosts, const KeySettings& settings);
  // {"cmd":"keys"}: this host, its public key, the socket, every peer and its session.
  nlohmann::json status() const;
  const crypto::noise::Key& public_key() const { return self_.pub; }

 private:
  struct Session;
  struct Peer;
  struct EspPort {
    std::string name;
    uint32_t port_no = 0;
    uint32_t group = 0;
    std::string local, remote;  // as in the devargs
    std::string underlay;       // name or number
    std::array<uint8_t, 6> underlay_mac{};
    bool underlay_found = false;
  };
  struct DpView;
  // SA requests carrying keys, wiped when the last copy of the job holding them goes.
  struct KeyedRequests {
    std::vector<api::SaAddRequest> reqs;
    ~KeyedRequests();
  };
  using Clock = std::chrono::steady_clock;

  KeyManager(boost::asio::io_context& io, KeyOptions options, std::string host,
             std::string gldp_socket, Logger& log, const crypto::noise::KeyPair& self);

  void bind_socket();
  void open_esp_sink();
  void receive();
  void on_datagram(size_t n);
  void send(const Peer& p, const std::vector<uint8_t>& msg);
  void send_to(const boost::asio::ip::udp::endpoint& to, const std::vector<uint8_t>& msg);
  void arm_tick();
  void tick();
  void refresh();
  void on_refresh(std::shared_ptr<DpView> view);

  void on_init(const boost::asio::ip::udp::endpoint& from, std::span<const uint8_t> msg);
  void on_response(std::span<const uint8_t> msg);
  void on_cookie(std::span<const uint8_t> msg);
  void on_confirm(std::span<const uint8_t> msg);
  void on_ack(std::span<const uint8_t> msg);

  void start_handshake(Peer& p, const char* why);
  void installed_initiator(const std::string& peer, uint32_t index, std::string error);
  void installed_in_responder(const std::string& peer, uint32_t index, std::string error);
  void installed_out_responder(const std::string& peer, uint32_t index, std::string error);
  void retire_others(Peer& p, uint32_t keep_block);
  void revoke(Peer& p, const char* why);
  void clear_peer(Peer& p);
  void delete_sas(const std::string& local, const std::string& remote, const std::string& what);
  // Adds the SAs in order, then gives each the hard lifetime `lifetime_ms` (sa-del with
  // that grace).
  static std::function<std::string(api::Client&, bool&)> install_job(
      std::shared_ptr<KeyedRequests> reqs, uint32_t lifetime_ms);
  // Milliseconds left of a session's lifetime (at least 1 s), for SAs installed now.
  uint32_t lifetime_left_ms(const Session& s) const;
  void add_outbound(KeyedRequests& reqs, const crypto::hs::SaPair& sa, uint32_t group,
                    const EspPort& esp, const std::array<uint8_t, 6>& peer_mac,
                    const std::string& remote) const;
  void revoke_all(const char* why);
  void forget_sessions();
  const EspPort* esp_port(const Peer& p) const;
  std::optional<std::array<uint8_t, 6>> peer_mac(const Peer& p) const;
  uint32_t new_index();
  uint32_t new_block();
  void free_block(uint32_t block);
  Peer* peer_by_index(uint32_t index);
  Peer* peer_by_key(const crypto::noise::Key& k);
  uint32_t n_contexts() const { return n_pmds_ + 1; }
  // Runs `job` on the gldp thread; `done` gets its error ("" = success) on the io_context.
  void dp_job(std::function<std::string(api::Client&, bool& link_ok)> job,
              std::function<void(std::string)> done);

  boost::asio::io_context& io_;
  KeyOptions opt_;
  std::string host_;
  Logger& log_;
  crypto::noise::KeyPair self_;
  std::string self_b64_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::unique_ptr<crypto::hs::Responder> responder_;
  std::unique_ptr<DpQueryThread> dp_;
  boost::asio::ip::udp::socket socket_;
  int esp_sink_ = -1;  // raw IPPROTO_ESP socket, filter drops all (see open_esp_sink)
  boost::asio::ip::udp::endpoint from_;
  std::array<uint8_t, 512> buf_{};
  boost::asio::steady_timer timer_;
  bool started_ = false, stopped_ = false;

  // This host, as the Host table says it.
  std::string local_ip_;  // empty: no usable row for this host
  std::string self_problem_;
  bool self_revoked_ = false;
  std::string bound_ip_;
  std::string bind_error_;
  std::chrono::steady_clock::time_point next_bind_{};
  KeySettings settings_;

  std::map<std::string, std::unique_ptr<Peer>> peers_;  // by host name
  std::map<uint32_t, std::string> index_peer_;          // handshake index -> peer
  std::set<uint32_t> blocks_;                           // inbound SPI blocks in use here

  // gldp as last read.
  bool dp_known_ = false;
  uint64_t boot_id_ = 0;
  uint32_t n_pmds_ = 0;
  std::vector<EspPort> esp_ports_;
  std::string dp_error_;
  bool refresh_busy_ = false;
  Clock::time_point next_refresh_{};
  std::map<uint32_t, uint64_t> out_seq_;    // outbound SPI -> last sequence number used
  std::map<uint32_t, uint64_t> out_bytes_;  // outbound SPI -> clear-text bytes sent

  // The handshake budget (inits answered per second).
  double budget_ = 0;
  Clock::time_point budget_at_{};

  KeyCounters c_;
};

}  // namespace gl::glctld
