// conn_table.hpp — the connection table: connections, their two keys, allocation, expiry.
//
// Purpose: storage for the connection tracker (conntrack.hpp). A connection (Conn) lives in
// one preallocated arena slot and is found by either of its keys: the originator's tuple
// (key[0]) and the tuple replies carry (key[1], after NAT). The hash index is an array of
// 64-byte buckets of 7 slots {32-bit hash, connection index, direction}; a key goes into
// its first candidate bucket while that has room to spare, else the less loaded of its two
// (two-choice hashing; one cuckoo step when both are full: make_room()), so a lookup reads
// at most two cache lines before the connection itself.
//
// Thread-safety: lookups are lock-free from any context (a PMD or the control thread);
// insert and remove lock only the (at most four) buckets they touch, in ascending order;
// a connection's mutable state is guarded by its own byte lock (Conn::lock). Memory is
// reclaimed with QSBR: a removed connection is marked dead, its owner (the context that
// created it) moves it to a limbo list at its next sweep, and reuses its slot after every
// context has passed a quiescent point (rcu()). Each context calls quiescent() between
// batches. Allocation takes from the context's own free cache first; a shared free list
// (spinlock, batches of kFreeBatch) balances contexts.
// Complexity: lookup, insert, remove O(1); sweep O(budget).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "dataplane/conntrack/tcp.hpp"
#include "flowtables/flow_key.hpp"
#include "flowtables/rcu.hpp"

namespace gl::ct {

// One direction's tuple. Addresses and ports are network order; IPv4 uses src[0]/dst[0]
// (the other words zero). ICMP/ICMPv6 queries: sport = the identifier, dport = type << 8 |
// code of the packet (host order), so that the reply's key is the request's reversed
// with the reply type (reverse_key()).
struct alignas(8) ConnKey {
  uint32_t src[4];
  uint32_t dst[4];
  uint16_t sport;
  uint16_t dport;
  uint16_t zone;
  uint8_t proto;
  uint8_t family;  // 4 or 6

  friend bool operator==(const ConnKey& a, const ConnKey& b) {
    return std::memcmp(&a, &b, sizeof(ConnKey)) == 0;
  }
};
static_assert(sizeof(ConnKey) == 40);

// Per-protocol state of non-TCP connections (OVS's OTHERS_* and ICMPS_*).
enum class OtherState : uint8_t { kFirst, kMultiple, kBidir };

// Conn::flags.
inline constexpr uint8_t kConnSnat = 0x01;       // the source was translated (reply: dst)
inline constexpr uint8_t kConnDnat = 0x02;       // the destination was translated
inline constexpr uint8_t kConnAlgFtp = 0x04;     // FTP control connection (helper=ftp)
inline constexpr uint8_t kConnAlgTftp = 0x08;    // TFTP (helper=tftp)
inline constexpr uint8_t kConnRelated = 0x10;    // an expected (ALG) connection: +rel
inline constexpr uint8_t kConnReplySeen = 0x20;  // a reply passed (TCP/other/ICMP)
inline constexpr uint8_t kConnSkewReply = 0x40;  // FTP NAT: seq_adj applies to replies
inline constexpr uint8_t kConnUncounted = 0x80;  // not counted in its zone (Action::uncounted)
// A helper's control connection: kConnAlgFtp/kConnAlgTftp on a connection that is not
// itself expected (an expected one committed with a helper shows it, as OVS, but its
// seq_adj is its parent check, not a skew, and it makes no expectations).
inline constexpr bool alg_control(uint8_t flags) {
  return (flags & (kConnAlgFtp | kConnAlgTftp)) != 0 && (flags & kConnRelated) == 0;
}

// A connection. 192 bytes, plus its two keys' share of the index (sized for the table's
// capacity: 32-64 bytes when full); see DESIGN.md for what was measured.
struct alignas(64) Conn {
  // flags once the connection is published: every context reads them without the lock,
  // the lock holder changes kConnReplySeen / kConnSkewReply: relaxed atomic accesses
  // (found by ThreadSanitizer, tools/sanitize.sh tsan).
  uint8_t flags_now() const {
    return std::atomic_ref<uint8_t>(const_cast<uint8_t&>(flags)).load(std::memory_order_relaxed);
  }
  void flags_store(uint8_t v) {  // with the lock held
    std::atomic_ref<uint8_t>(flags).store(v, std::memory_order_relaxed);
  }
  // mark and label likewise: the lock holder changes them (ct(commit) with set_mark /
  // set_label, the firewall relabelling a connection for a new policy generation) while
  // the established path, a second ct() and the metadata read them without the lock:
  // relaxed atomic accesses, and read_mark_label() for a consistent copy of both.
  // (The seqlock without fences, which ThreadSanitizer cannot check: the stores release
  // and the reader's loads acquire, so a reader that sees a store sees the odd sequence
  // taken before it. Plain moves on x86.)
  void mark_store(uint32_t v) {
    std::atomic_ref<uint32_t>(mark).store(v, std::memory_order_release);
  }
  void label_store(const uint8_t in[16]) {
    uint64_t w[2];
    std::memcpy(w, in, 16);
    std::atomic_ref<uint64_t>(label[0]).store(w[0], std::memory_order_release);
    std::atomic_ref<uint64_t>(label[1]).store(w[1], std::memory_order_release);
  }
  // Mark and label as one lock holder left them (the lock's sequence is a seqlock for
  // them); false when one was changing them meanwhile: the caller reads again, or takes
  // the lock. (A relabel between a label's two words would otherwise pair a firewall
  // generation with another generation's rule slot: found by the [threads] test.)
  [[gnu::always_inline]] bool read_mark_label(uint32_t& m, uint8_t out[16]) const {
    const uint8_t s1 = lock.load(std::memory_order_acquire);
    if ((s1 & 1) != 0) return false;
    m = std::atomic_ref<uint32_t>(const_cast<uint32_t&>(mark)).load(std::memory_order_acquire);
    uint64_t w[2];
    w[0] =
        std::atomic_ref<uint64_t>(const_cast<uint64_t&>(label[0])).load(std::memory_order_acquire);
    w[1] =
        std::atomic_ref<uint64_t>(const_cast<uint64_t&>(label[1])).load(std::memory_order_acquire);
    std::memcpy(out, w, 16);
    return lock.load(std::memory_order_relaxed) == s1;
  }
  // The same, waiting out a lock holder.
  void load_mark_label(uint32_t& m, uint8_t out[16]) const {
    while (!read_mark_label(m, out)) __builtin_ia32_pause();
  }
  ConnKey key[2];                    // [0] originator -> responder, [1] the reply tuple
  std::atomic<uint64_t> expires{0};  // ms (the tracker's clock)
  // Guards everything below that changes. A sequence: odd while held (acquire() makes
  // it odd, release() even again), so that read_mark_label() can tell a change happened.
  std::atomic<uint8_t> lock{0};
  // 1 while linked. 0 in a slot never used (the arena's untouched zero pages), one being
  // built, and one unlinked (its owner frees it after a grace period): a walker (dump,
  // stats) skips the slot unless it reads 1, which orders its reads after the insert.
  std::atomic<uint8_t> live{0};
  uint8_t flags = 0;  // kConn*: written plainly only before publication
  uint8_t tmo = 0;    // timeout class (Timeout) of the last update
  OtherState other = OtherState::kFirst;
  uint8_t owner = 0;         // context that created it (expires and frees it)
  uint16_t policy = 0;       // timeout policy index (0 = the defaults)
  uint32_t mark = 0;         // mark_store() / read_mark_label() once published
  uint32_t owner_pos = 0;    // index in the owner's list
  uint64_t label[2] = {};    // 16 bytes in memory order; label_store() / read_mark_label()
  TcpConn tcp{};             // TCP only
  uint64_t packets[2] = {};  // per direction (orig, reply)
  uint64_t bytes[2] = {};
  uint32_t master = 0;  // the connection that expected this one (ALG, kConnRelated)
  // FTP control connection with NAT: the payload length change so far (int32; direction:
  // kConnSkewReply). A related connection: Conntrack::parent_check() of its parent's key.
  uint32_t seq_adj = 0;

  // Makes a reused slot a fresh, unlinked connection (not live until inserted). The atomics
  // are stored, not constructed: a concurrent dump may read them.
  void reset(uint8_t owner_ctx) {
    live.store(0, std::memory_order_relaxed);
    expires.store(0, std::memory_order_relaxed);
    lock.store(0, std::memory_order_relaxed);
    std::memset(static_cast<void*>(key), 0, sizeof key);
    flags = 0;
    tmo = 0;
    other = OtherState::kFirst;
    owner = owner_ctx;
    policy = 0;
    mark = 0;
    owner_pos = 0;
    std::memset(label, 0, sizeof label);
    tcp = TcpConn{};
    packets[0] = packets[1] = bytes[0] = bytes[1] = 0;
    master = 0;
    seq_adj = 0;
  }
  void acquire() {
    for (;;) {
      uint8_t v = lock.load(std::memory_order_relaxed);
      if ((v & 1) == 0 &&
          lock.compare_exchange_weak(v, static_cast<uint8_t>(v + 1), std::memory_order_acquire,
                                     std::memory_order_relaxed))
        break;
      __builtin_ia32_pause();
    }
  }
  void release() {
    lock.store(static_cast<uint8_t>(lock.load(std::memory_order_relaxed) + 1),
               std::memory_order_release);
  }
};
static_assert(sizeof(Conn) == 192, "keep a connection in three cache lines");

// The reply direction's key of `k` without NAT: addresses and ports swapped; ICMP queries
// get the reply type (echo 8 -> 0, timestamp 13 -> 14, info 15 -> 16, address mask 17 ->
// 18; ICMPv6 echo 128 -> 129).
ConnKey reverse_key(const ConnKey& k);

class ConnTable {
 public:
  // capacity: the most connections the arena holds; contexts: PMDs + the control thread.
  // populate_index: back the whole index at once (MADV_POPULATE_WRITE) rather than as
  // keys land on its pages. Keys hash to random pages, so the index is all resident after
  // a few thousand connections anyway; backing it up front keeps the first-touch faults
  // (2 MiB zeroed each, milliseconds in a VM) off the PMDs.
  ConnTable(uint32_t capacity, unsigned contexts, bool populate_index = false);
  // Bytes of the index (resident once populated or used) and of one connection's slot.
  size_t index_bytes() const { return index_.load(std::memory_order_acquire)->bytes; }
  // The index's most bytes (its size at `capacity` connections).
  size_t index_max_bytes() const { return max_buckets_ * sizeof(Bucket); }
  ~ConnTable();
  ConnTable(const ConnTable&) = delete;
  ConnTable& operator=(const ConnTable&) = delete;

  uint32_t capacity() const { return capacity_; }
  unsigned contexts() const { return contexts_; }

  static uint64_t hash(const ConnKey& k) {
    uint64_t w[5];
    std::memcpy(w, &k, sizeof w);
    return hash_words(w[0], w[1], w[2], w[3], w[4]);
  }
  // The same from the key's five little-endian 64-bit words (a key built in registers).
  static uint64_t hash_words(uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t w4) {
    // One CRC32-C over the key's 40 bytes, word by word (no two words are XORed together
    // first: that lost the source address's last octet against the source port, 30000
    // keys of 10.0.x.y:1000+z had 540 distinct hashes), then a finisher, because a CRC
    // is linear: keys differing in a few bits would map to a subspace whose low bits
    // (the bucket) need not spread. The upper half is what the index uses (signature and
    // bucket); the lower half is the CRC itself (NAT and the helpers fold both halves).
    uint32_t c = flow::hash_add64(0x2545f491u, w0);
    c = flow::hash_add64(c, w1);
    c = flow::hash_add64(c, w2);
    c = flow::hash_add64(c, w3);
    c = flow::hash_add64(c, w4);
    return (uint64_t(flow::hash_finish(c)) << 32) | c;
  }
  // The index: 64-byte buckets of 7 slots, a key in one of its two candidate buckets.
  // Both candidates come from the hash's upper half (the signature, the part a slot
  // stores), so an index can be rebuilt at another size from its slots alone (grow()).
  // The first is the signature scaled to the bucket count (multiply-shift: the count need
  // not be a power of two, so the index can grow by less than doubling); the second is
  // the first XOR the signature's low bits, within the first's 4 KiB page (64 buckets;
  // the count is a multiple of 64, or a power of two below that), so that a lookup costs
  // one TLB entry, not two.
  // A key goes to its first bucket unless that one is crowded (link_key()), and the first
  // bucket counts its keys held by their second (spill): a lookup reads the second only
  // when that count is not 0, so that most lookups (and misses) read one line, not two.
  struct alignas(64) Bucket {
    std::atomic<uint32_t> lock;
    std::atomic<uint32_t> spill;    // keys whose first bucket this is, in their second
    std::atomic<uint64_t> slot[7];  // hash >> 32 : 32 | idx:31 | reply:1 (0 = empty)
  };
  static_assert(sizeof(Bucket) == 64);
  struct Index {
    Bucket* b = nullptr;
    uint64_t n = 0;     // buckets (< 2^32)
    uint64_t near = 0;  // the second bucket's offset mask: min(n, 64) - 1
    size_t bytes = 0;
    uint64_t bucket1(uint64_t h) const { return ((h >> 32) * n) >> 32; }
    uint64_t bucket2(uint64_t h) const { return bucket1(h) ^ (((h >> 32) & near) | 1); }
  };
  // The bucket count for `keys` keys filling at most fill_pct% of the slots: a multiple
  // of 64 (a power of two below 64 buckets).
  static uint64_t buckets_for(uint64_t keys, uint64_t fill_pct);
  // The key's first bucket (the second is read only when the first has spilled).
  [[gnu::always_inline]] void prefetch(uint64_t h) const {
    const Index& ix = *index_.load(std::memory_order_acquire);
    __builtin_prefetch(&ix.b[ix.bucket1(h)]);
  }
  // The buckets an insert of a connection with original key k locks (both candidates of
  // k and of its reply key), fetched for writing: a caller about to commit several
  // connections fetches them all first, so that their misses overlap.
  // h: k's hash.
  void prefetch_insert(const ConnKey& k, uint64_t h) const {
    const Index& ix = *index_.load(std::memory_order_acquire);
    for (const uint64_t hk : {h, hash(reverse_key(k))}) {
      __builtin_prefetch(&ix.b[ix.bucket1(hk)], 1);
      __builtin_prefetch(&ix.b[ix.bucket2(hk)], 1);
    }
  }
  // The connection with key k (index, 0 when none) and whether k is its reply key. Dead
  // connections are skipped. Lock-free; the result stays valid until the caller's next
  // quiescent point.
  uint32_t find(const ConnKey& k, uint64_t h, bool& reply) const {
    return find_in(*index_.load(std::memory_order_acquire), k, h, reply);
  }
  // The first connection whose slot carries h's signature (0: none): a hint to prefetch
  // before find() verifies the key (the lookup's second dependent miss overlapped with
  // the other packets' lookups).
  // The result is the slot (index << 1 | reply; 0 = none): find_at() verifies it.
  uint32_t candidate(uint64_t h) const {
    const uint32_t sig = static_cast<uint32_t>(h >> 32);
    const Index& ix = *index_.load(std::memory_order_acquire);
    auto scan = [sig](const Bucket& b) -> uint32_t {
      for (const auto& s : b.slot) {
        const uint64_t v = s.load(std::memory_order_relaxed);
        if (v != 0 && static_cast<uint32_t>(v >> 32) == sig)
          return static_cast<uint32_t>(v & 0xffffffffu);
      }
      return 0;
    };
    const Bucket& b1 = ix.b[ix.bucket1(h)];
    if (const uint32_t c = scan(b1); c != 0) return c;
    return b1.spill.load(std::memory_order_relaxed) == 0 ? 0 : scan(ix.b[ix.bucket2(h)]);
  }
  // find() starting from candidate()'s slot `cand`: when its connection has key k (the
  // usual case) no bucket is read again; otherwise find().
  uint32_t find_at(const ConnKey& k, uint64_t h, uint32_t cand, bool& reply) const {
    if (cand != 0) {
      const Conn& cn = arena_[cand >> 1];
      if (cn.key[cand & 1] == k && cn.live.load(std::memory_order_acquire) != 0) {
        reply = (cand & 1) != 0;
        return cand >> 1;
      }
    }
    return find(k, h, reply);
  }
  [[gnu::always_inline]] void prefetch_conn(uint32_t cand) const {
    if (cand != 0) {
      const char* c = reinterpret_cast<const char*>(&arena_[cand >> 1]);
      __builtin_prefetch(c);        // key[0], most of key[1]
      __builtin_prefetch(c + 64);   // the rest of key[1], expiry, lock, mark, label
      __builtin_prefetch(c + 128);  // TCP state, counters
    }
  }

  Conn& conn(uint32_t idx) { return arena_[idx]; }
  const Conn& conn(uint32_t idx) const { return arena_[idx]; }

  // A free slot for context ctx (0 when the arena is exhausted); constructed empty, owned
  // by ctx. Free it with abandon() if it is never inserted.
  uint32_t alloc(unsigned ctx);
  void abandon(unsigned ctx, uint32_t idx);
  // Links both keys of conn(idx) into the index and the owner's list. Fails (false, and
  // `existing` set when one of the keys is taken by a live connection) when a key exists
  // or its buckets are full.
  bool insert(unsigned ctx, uint32_t idx, uint32_t& existing);
  // Unlinks conn(idx) and marks it dead (any context); false when it was already dead.
  // The owner frees it at a later sweep.
  bool remove(uint32_t idx);

  // Owner side: examines up to `budget` of ctx's connections: unlinks those whose
  // expiry is before now_ms (each reported to on_expire(idx) once unlinked here) and
  // moves dead ones to limbo, each reported to on_retire(idx, expired_here) first (every
  // connection exactly once, however it was removed; its contents are intact until its
  // slot is reused); frees limbo entries whose grace period is over.
  // Returns how many expired.
  template <typename OnExpire, typename OnRetire>
  uint32_t sweep(unsigned ctx, uint64_t now_ms, uint32_t budget, OnExpire&& on_expire,
                 OnRetire&& on_retire);

  // Context registration with the table's QSBR (one slot per context).
  flow::Qsbr& rcu() { return rcu_; }

  // Connections linked now (any thread; approximate while others insert).
  uint32_t live() const { return live_.load(std::memory_order_relaxed); }
  // Removed connections whose slots wait for a QSBR grace period (in their owners' limbo;
  // one removed by another context gets there at its owner's next sweep).
  uint32_t pending_free() const;
  // Visits every live connection (control thread; concurrent changes may or may not be
  // seen). fn(idx) returns false to stop; returns the index to resume from (0: done).
  template <typename Fn>
  uint32_t for_each(uint32_t from, Fn&& fn) const;
  // Control thread: backs the arena's pages for the next `ahead` never-used slots
  // (MADV_POPULATE_WRITE, which leaves contents as they are), so that commits on a PMD do
  // not take the first-touch page faults. Returns the bytes newly backed (0: nothing to
  // do, or the kernel cannot; then PMDs fault the pages in themselves, as before).
  size_t prefault(uint32_t ahead);
  // Control thread: the index starts at 8 MiB (kInitialIndexBytes: a growth is due at 200k
  // connections, and 250k fit without one, so that a late growth does not refuse a
  // burst's commits) and grows while the keys fill more than 44% of its slots
  // (kGrowAtPct), to where they fill 33% (kGrowToPct): by ~1.33x, not doubling, so that
  // the index's share of a connection stays 41-56 B wherever the count falls (a
  // connection: at most 248 B), up to its size at `capacity` (45%, kFullPct). (Growing
  // by ~1.17x, 42% to 36%, took a cold burst of 1M new connections from ~1.65 to ~1.5M/s:
  // inserts wait for each growth's copy.) A lookup costs more the more pages the index
  // spreads its keys over (1k connections: 225 cycles a packet through the firewall stage
  // with a 512 KiB index, 255 with 32 MiB), so it is only as large as the connections
  // need. Growing holds every bucket lock of
  // the index in force while its slots are copied into the new one: inserts and removals
  // wait that long (about 1 ms per 100k connections), lookups do not. Replaced indexes
  // are freed here once no reader can hold them, and a thread that inserts or removes
  // holds the index it locks: it must be a registered reader (rcu()), online, as every
  // context is. Returns true when it grew.
  bool grow();
  uint32_t grows() const { return grows_; }
  // Changes writers applied to an index while grow() was filling it (diagnostics: each is
  // an insert or removal that did not wait for the grow).
  uint64_t mirrored() const { return mirrored_.load(std::memory_order_relaxed); }
  // Slots in use in the index in force (control thread; O(buckets)): twice live() when
  // nothing is changing.
  uint64_t index_slots_used() const;
  // Buckets whose both candidates were full at an insert (diagnostics).
  uint64_t insert_collisions() const { return collisions_.load(std::memory_order_relaxed); }
  // Keys moved to their second bucket to make room for another (make_room()).
  uint64_t insert_moves() const { return moves_.load(std::memory_order_relaxed); }

 private:
  struct Limbo {
    uint64_t token;
    uint32_t idx;
  };
  struct alignas(64) Ctx {
    std::vector<uint32_t> owned;  // connections this context created
    size_t cursor = 0;            // sweep position in owned
    std::vector<uint32_t> free;   // freed slots ready for reuse
    std::vector<Limbo> limbo;     // freed slots waiting for a grace period (FIFO)
    size_t limbo_head = 0;
    std::atomic<uint32_t> n_limbo{0};
  };
  static constexpr uint32_t kFreeBatch = 256;
  static constexpr size_t kInitialIndexBytes = size_t{8} << 20;  // four huge pages
  static constexpr uint64_t kGrowAtPct = 44;                     // of the slots, keys (grow())
  static constexpr uint64_t kGrowToPct = 33;
  static constexpr uint64_t kFullPct = 45;  // at capacity

  uint32_t find_in(const Index& ix, const ConnKey& k, uint64_t h, bool& reply) const;
  // held: the n buckets the caller has locked (make_room() try-locks any other). moved:
  // receives the slot a cuckoo step moved (kSlotEmpty when none), for a grow in progress.
  bool link_key(const Index& ix, uint64_t h, uint64_t slotval, const uint32_t* held, int n,
                uint64_t* moved = nullptr);
  std::atomic<uint64_t>* make_room(const Index& ix, uint64_t bucket, const uint32_t* held, int n,
                                   uint64_t* moved);
  static void unlink_key(const Index& ix, uint64_t h, uint64_t slotval);
  // Locks the candidate buckets of hashes h0 and h1 in the index in force (retrying when
  // grow() replaced it meanwhile); b receives them for unlock_buckets(). nx: the index a
  // grow is filling meanwhile (nullptr when none), which the caller's change must reach
  // too (mirror_link(), mirror_unlink()), after the index in force, with these locks held.
  const Index& lock_keys(uint64_t h0, uint64_t h1, uint32_t* b, Index*& nx);
  // A slot in the index being filled (nx) unless it is there already; under the locks of
  // its two buckets there. A failure (both full) makes the grow give that index up.
  void mirror_link(Index& nx, uint64_t slotval);
  void mirror_unlink(Index& nx, uint64_t slotval);
  static void lock_buckets(const Index& ix, uint32_t* b, int n);
  static void unlock_buckets(const Index& ix, const uint32_t* b, int n);
  Index* make_index(uint64_t buckets) const;
  static void free_index(Index* ix);
  void owned_remove(Ctx& c, uint32_t idx);
  void reclaim(unsigned ctx);
  void release(unsigned ctx, uint32_t idx);

  uint32_t capacity_;
  uint32_t slots_;  // arena size: capacity_ plus what the contexts' free caches may hold
  unsigned contexts_;
  Conn* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  uint64_t max_buckets_ = 0;  // the index's size at capacity_ connections
  bool populate_index_ = false;
  std::atomic<Index*> index_{nullptr};
  struct Retired {
    uint64_t token;
    Index* ix;
  };
  std::vector<Retired> retired_;  // replaced indexes waiting for a grace period (grow())
  // The index grow() is filling, from the moment it starts copying until the new index is
  // in force (nullptr otherwise): writers apply their changes to it too, so that no
  // insert or removal waits for a grow (a PMD committing a connection used to wait for
  // the whole copy: 7 ms at 200k connections, 65 ms at 1.5M).
  std::atomic<Index*> next_{nullptr};
  std::atomic<bool> next_failed_{false};  // a key did not fit in next_: not put in force
  std::atomic<uint64_t> mirrored_{0};
  uint32_t grows_ = 0;
  std::unique_ptr<Ctx[]> ctx_;
  std::atomic<uint32_t> bump_{1};  // next never-used slot (0 is "none")
  size_t prefaulted_ = 0;          // arena bytes prefault() has backed (control thread)
  bool prefault_ok_ = true;        // the kernel has MADV_POPULATE_WRITE
  std::atomic<uint32_t> live_{0};
  std::atomic<uint64_t> collisions_{0};
  std::atomic<uint64_t> moves_{0};
  std::atomic<uint8_t> free_lock_{0};
  std::vector<uint32_t> shared_free_;       // under free_lock_
  std::atomic<uint32_t> shared_free_n_{0};  // its size, read without the lock
  flow::Qsbr rcu_;
};

// ---- templates ----------------------------------------------------------------------

template <typename OnExpire, typename OnRetire>
uint32_t ConnTable::sweep(unsigned ctx, uint64_t now_ms, uint32_t budget, OnExpire&& on_expire,
                          OnRetire&& on_retire) {
  Ctx& c = ctx_[ctx];
  uint32_t expired = 0;
  bool moved = false;
  const size_t first_new = c.limbo.size();
  for (uint32_t i = 0; i < budget && !c.owned.empty(); ++i) {
    if (c.cursor >= c.owned.size()) c.cursor = 0;
    const uint32_t idx = c.owned[c.cursor];
    Conn& cn = arena_[idx];
    bool gone = cn.live.load(std::memory_order_acquire) == 0;
    bool expired_here = false;
    if (!gone && cn.expires.load(std::memory_order_relaxed) <= now_ms) {
      if (remove(idx)) {
        on_expire(idx);
        ++expired;
        expired_here = true;
      }
      gone = true;  // removed here or by another context meanwhile: dead either way
    }
    if (!gone) {
      ++c.cursor;
      continue;
    }
    on_retire(idx, expired_here);
    owned_remove(c, idx);  // the last entry moves to cursor: examined next
    c.limbo.push_back({0, idx});
    moved = true;
  }
  if (moved) {
    const uint64_t token = rcu_.start_grace();
    for (size_t j = first_new; j < c.limbo.size(); ++j) c.limbo[j].token = token;
    c.n_limbo.store(static_cast<uint32_t>(c.limbo.size() - c.limbo_head),
                    std::memory_order_relaxed);
  }
  if (c.limbo_head < c.limbo.size()) reclaim(ctx);
  return expired;
}

template <typename Fn>
uint32_t ConnTable::for_each(uint32_t from, Fn&& fn) const {
  const uint32_t end = bump_.load(std::memory_order_acquire);
  for (uint32_t idx = from == 0 ? 1 : from; idx < end; ++idx) {
    const Conn& cn = arena_[idx];
    if (cn.live.load(std::memory_order_acquire) == 0) continue;
    if (!fn(idx)) return idx;
  }
  return 0;
}

}  // namespace gl::ct
