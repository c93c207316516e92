// server.hpp — gldp's datapath API server.
//
// Purpose: listens on a Unix SOCK_SEQPACKET socket (mode 0600: root only), accepts
// several clients, decodes and validates every request (message.hpp) and calls the
// Datapath (the connection tracker through Datapath::with_conntrack); delivers upcalls to
// subscribed clients. A malformed message gets an error reply naming what is wrong; a
// message that cannot be framed (bad magic, oversized) closes that connection only. gldp
// never exits because of a client.
// Thread-safety: runs on the control thread, the only thread that calls Datapath's
// public methods. Complexity: one poll() per loop iteration, O(clients).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/api/message.hpp"
#include "dataplane/datapath.hpp"

namespace gl::dp {

class Server {
 public:
  Server(Datapath& dp, std::string path);
  ~Server();

  bool listen(std::string& err);
  // Serves until `stop` becomes true.
  void run(const std::atomic<bool>& stop);

  struct Counters {
    uint64_t requests = 0;
    uint64_t bad_requests = 0;     // error replies for malformed requests
    uint64_t closed_protocol = 0;  // connections closed for unframeable input
    uint64_t replies_queued = 0;   // replies that waited for a client to read
    uint64_t closed_backlog = 0;   // connections closed: replies over kMaxBacklog unread
    uint64_t refused_peer = 0;     // connections refused: the peer is neither root nor us
  };
  // Bytes of replies a client may leave unread (sent since it last read anything, plus our
  // queue) before it is disconnected, as OVS's jsonrpc drops a session over its backlog:
  // the reply that would take it over is not sent. A reply the socket cannot take waits in
  // our queue, and the client's further requests are not read until it has been sent, so
  // the queue holds one reply at most; the backlog is in the socket (up to twice kSndBuf),
  // and gldp sees the client read from it by the socket's SIOCOUTQ going down. Upcall
  // subscribers are exempt: their socket holds upcalls too (dropped when it is full), and a
  // handler is not cut off in a burst.
  static constexpr size_t kMaxBacklog = 4u << 20;
  const Counters& counters() const { return ctr_; }

 private:
  // A firewall version being received (kFwBegin .. kFwCommit) on one connection.
  struct FwStaging {
    uint64_t generation = 0;
    uint32_t record = 0;  // fw::kRecord*
    std::vector<fw::Prefix> prefixes;
    std::vector<fw::PortFirewall> ports;          // policies empty until commit
    std::vector<std::string> quarantine;          // kFwQuarantine names
    std::vector<fw::HostAddr> hosts;              // kFwHosts, numbered from 1
    std::vector<fw::Action> defaults;             // per port: from, to
    std::vector<std::vector<fw::Entry>> entries;  // per port: from, to (2 per port)
    size_t total_entries = 0;
    bool delta = false;        // api::kFwBeginDelta: changes to the version `base`
    bool new_ipcache = false;  // api::kFwBeginNewIpcache
    uint64_t base = 0;
    std::vector<uint32_t> removed;  // kFwPortRemove
  };
  struct ClientConn {
    int fd = -1;
    std::shared_ptr<FwStaging> fw;  // an unfinished firewall transaction
    bool subscribed = false;
    bool misses = false;
    bool batch = false;  // kSubscribeBatch: upcalls as kUpcallBatch datagrams
    uint32_t pid = 0;
    // Replies the socket could not take yet, oldest first: the control thread never
    // waits for a client (it delivers upcalls, reclaims RCU memory, retires SAs).
    std::deque<std::vector<uint8_t>> out;
    size_t out_bytes = 0;
    // Bytes of replies sent since the client last read anything (seen as the socket's
    // SIOCOUTQ, the memory of what it has not read, going down from `outq` or to 0).
    size_t unread = 0;
    size_t outq = 0;
    bool overflow = false;  // a reply would take it over kMaxBacklog: closed, not sent
    pid_t peer_pid = 0;     // the client's process (SO_PEERCRED), for the log
  };

  void accept_clients();
  // Returns false when the connection must be closed.
  bool handle(ClientConn& c, std::span<const uint8_t> msg);
  // The connection-tracking requests (kCt*, timeout policies, kIpf* fragment reassembly):
  // decodes and checks the payload, runs the operation on the tracker (through
  // Datapath::with_conntrack; the ipf settings are atomics, read and set directly) and
  // appends the reply's payload to `out`; an error names what was wrong.
  // fw: kCtDump / kCtFlush on the firewall's tracker (kFwCtDump / kFwCtFlush).
  std::expected<void, api::Error> handle_ct(api::MsgType type, api::MessageReader& r,
                                            api::MessageBuilder& out, bool fw = false);
  // The firewall's transaction and status requests (kFw*).
  // ESTALE unless version `base` is the firewall in force (a delta's precondition).
  std::expected<void, api::Error> fw_delta_base(uint64_t base) const;
  std::expected<void, api::Error> handle_fw(ClientConn& c, api::MsgType type, api::MessageReader& r,
                                            api::MessageBuilder& out);
  size_t deliver_upcalls();  // returns how many were taken from the PMD queues
  // A request's port: its number, or (kPortAny) the port named `name`.
  std::expected<uint32_t, api::Error> resolve_port(uint32_t port_no,
                                                   const char (&name)[api::kNameLen]);
  // Sends a reply, queues it if the socket is full, or (over kMaxBacklog) drops it and
  // marks the client for closing.
  void send_reply(ClientConn& c, std::span<const uint8_t> msg);
  // Brings c.unread up to date with what the client has read since the last reply.
  void account_reads(ClientConn& c);
  // Records that `bytes` of reply went into c's socket.
  void account_sent(ClientConn& c, size_t bytes);
  // Sends what c.out holds, as far as the socket takes it; false when the client is gone.
  bool flush_replies(ClientConn& c);
  void close_client(size_t i);

  Datapath& dp_;
  std::string path_;
  int listen_fd_ = -1;
  std::vector<ClientConn> clients_;
  std::vector<uint8_t> rxbuf_;
  std::vector<uint8_t> upcall_pkt_;  // copy of a multi-segment upcall packet
  uint64_t upcall_delivered_ = 0, upcall_lost_ = 0;
  Counters ctr_;
};

}  // namespace gl::dp
