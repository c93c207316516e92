#include "dataplane/conntrack/conn_table.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <new>
#include <stdexcept>

#include "flowtables/flow_key.hpp"

namespace gl::ct {

namespace {

constexpr uint64_t kSlotEmpty = 0;

inline uint64_t make_slot(uint64_t h, uint32_t idx, uint32_t reply) {
  return (h & 0xffffffff00000000ULL) | (uint64_t(idx) << 1) | reply;
}
inline uint32_t slot_idx(uint64_t s) {
  return static_cast<uint32_t>(s & 0xffffffffu) >> 1;
}

// Anonymous zero pages, reserved but only backed once touched: a table sized for millions
// of connections costs memory in proportion to what is used. huge: ask for transparent
// huge pages.
void* map_zeroed(size_t bytes, bool huge) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  if (huge) madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

uint8_t reverse_icmp_type(uint8_t family, uint8_t type) {
  if (family == 4) {
    switch (type) {
      case 8:
        return 0;
      case 0:
        return 8;
      case 13:
        return 14;
      case 14:
        return 13;
      case 15:
        return 16;
      case 16:
        return 15;
      case 17:
        return 18;
      case 18:
        return 17;
      default:
        return type;
    }
  }
  switch (type) {
    case 128:
      return 129;
    case 129:
      return 128;
    default:
      return type;
  }
}

}  // namespace

ConnKey reverse_key(const ConnKey& k) {
  ConnKey r = k;
  std::memcpy(r.src, k.dst, 16);
  std::memcpy(r.dst, k.src, 16);
  if (k.proto == 1 || k.proto == 58) {
    const uint8_t type = static_cast<uint8_t>(k.dport >> 8);
    r.dport = static_cast<uint16_t>(reverse_icmp_type(k.family, type) << 8 | (k.dport & 0xff));
  } else {
    r.sport = k.dport;
    r.dport = k.sport;
  }
  return r;
}

ConnTable::ConnTable(uint32_t capacity, unsigned contexts, bool populate_index)
    : capacity_(std::max<uint32_t>(capacity, 16)), contexts_(contexts) {
  // Two keys per connection into 7-slot buckets: at most 45% of the slots in use at
  // capacity; the index starts smaller and grows (grow()).
  max_buckets_ = buckets_for(uint64_t{capacity_} * 2, kFullPct);
  populate_index_ = populate_index;
  index_.store(make_index(std::min<uint64_t>(max_buckets_, kInitialIndexBytes / sizeof(Bucket))),
               std::memory_order_release);
  // Freed slots wait in their context's cache (up to 2 * kFreeBatch) before the shared
  // list: the arena has room for those beside the capacity, so that `capacity`
  // connections always fit whichever contexts freed what.
  slots_ = capacity_ + contexts_ * 2 * kFreeBatch;
  arena_bytes_ = (size_t(slots_) + 1) * sizeof(Conn);
  arena_ = static_cast<Conn*>(map_zeroed(arena_bytes_, false));
  ctx_ = std::make_unique<Ctx[]>(contexts_);
  shared_free_.reserve(slots_);
  for (unsigned i = 0; i < contexts_; ++i) {
    ctx_[i].owned.reserve(slots_);  // address space; pages are touched as it fills
    ctx_[i].free.reserve(2 * kFreeBatch);
    ctx_[i].limbo.reserve(slots_);
  }
}

ConnTable::~ConnTable() {
  munmap(arena_, arena_bytes_);
  free_index(index_.load(std::memory_order_relaxed));
  for (const Retired& r : retired_) free_index(r.ix);
}

uint64_t ConnTable::buckets_for(uint64_t keys, uint64_t fill_pct) {
  constexpr uint64_t kPage = 4096 / sizeof(Bucket);  // bucket2()'s reach
  const uint64_t want = std::max<uint64_t>((keys * 100 + 7 * fill_pct - 1) / (7 * fill_pct), 1);
  if (want >= kPage) return (want + kPage - 1) / kPage * kPage;
  return std::bit_ceil(want);
}

ConnTable::Index* ConnTable::make_index(uint64_t buckets) const {
  auto ix = std::make_unique<Index>();
  ix->n = buckets;
  ix->near = std::min<uint64_t>(buckets, 4096 / sizeof(Bucket)) - 1;
  ix->bytes = buckets * sizeof(Bucket);
  // On transparent huge pages (where the kernel offers them): lookups land on random
  // lines of it, and with 4 KiB pages most were TLB misses (the index load was 80% of
  // the lookup at 100k connections). The arena stays on small pages: a commit's first
  // touch of a huge page zeroes 2 MiB (measured: new connections 0.97 -> 0.60 M/s).
  ix->b = static_cast<Bucket*>(map_zeroed(ix->bytes, true));
  if (populate_index_) madvise(ix->b, ix->bytes, MADV_POPULATE_WRITE);  // best effort
  return ix.release();
}

void ConnTable::free_index(Index* ix) {
  if (ix == nullptr) return;
  munmap(ix->b, ix->bytes);
  delete ix;
}

bool ConnTable::grow() {
  while (!retired_.empty() && rcu_.grace_done(retired_.front().token)) {
    free_index(retired_.front().ix);
    retired_.erase(retired_.begin());
  }
  Index* old = index_.load(std::memory_order_acquire);
  const uint64_t nb = old->n;
  const uint64_t keys = uint64_t{live_.load(std::memory_order_relaxed)} * 2;
  if (nb >= max_buckets_ || keys * 100 <= nb * 7 * kGrowAtPct) return false;
  // The new size: keys at most kGrowToPct of its slots, within the maximum. Backed (when
  // populating) before any lock is taken.
  const uint64_t want = std::min(buckets_for(keys, kGrowToPct), max_buckets_);
  if (want <= nb) return false;
  Index* ix = make_index(want);
  // Writers keep going while the keys are copied: from here on each applies its change to
  // both indexes (lock_keys() hands them this one), and each old bucket is copied under
  // its own lock, so that a change is copied or mirrored, whichever comes second finding
  // it done (mirror_link() adds a slot only where it is missing). Lock order: old buckets
  // before new ones, each set ascending; this thread holds one old bucket at a time.
  next_failed_.store(false, std::memory_order_relaxed);
  next_.store(ix, std::memory_order_seq_cst);
  uint64_t copy[7];
  for (uint64_t b = 0; b < nb; ++b) {
    auto& l = old->b[b].lock;
    while (l.exchange(1, std::memory_order_acquire) != 0)
      while (l.load(std::memory_order_relaxed) != 0) __builtin_ia32_pause();
    int k = 0;
    for (const auto& sl : old->b[b].slot) {
      const uint64_t v = sl.load(std::memory_order_relaxed);
      if (v != kSlotEmpty) copy[k++] = v;
    }
    if (b + 1 < nb) __builtin_prefetch(&old->b[b + 1]);
    for (int i = 0; i < k; ++i) mirror_link(*ix, copy[i]);
    l.store(0, std::memory_order_release);
  }
  // Both candidates full at 33%: practically never; the writers may still hold the index
  // they were given, so it is retired like a replaced one.
  const bool ok = !next_failed_.load(std::memory_order_acquire);
  if (ok) index_.store(ix, std::memory_order_seq_cst);
  next_.store(nullptr, std::memory_order_seq_cst);
  // Readers may still be in the old index (its slots stay as they were: a lookup there
  // may miss a connection inserted since, and execute() then finds it when it commits).
  retired_.push_back({rcu_.start_grace(), ok ? old : ix});
  if (ok) ++grows_;
  return ok;
}

uint64_t ConnTable::index_slots_used() const {
  const Index& ix = *index_.load(std::memory_order_acquire);
  uint64_t n = 0;
  for (uint64_t b = 0; b < ix.n; ++b)
    for (const auto& s : ix.b[b].slot) n += s.load(std::memory_order_relaxed) != kSlotEmpty;
  return n;
}

void ConnTable::mirror_link(Index& nx, uint64_t slotval) {
  uint32_t b[2] = {static_cast<uint32_t>(nx.bucket1(slotval)),
                   static_cast<uint32_t>(nx.bucket2(slotval))};
  lock_buckets(nx, b, 2);
  bool there = false;
  for (const uint32_t bi : b)
    for (const auto& s : nx.b[bi].slot)
      there = there || s.load(std::memory_order_relaxed) == slotval;
  if (!there && !link_key(nx, slotval, slotval, b, 2))
    next_failed_.store(true, std::memory_order_release);
  unlock_buckets(nx, b, 2);
}

void ConnTable::mirror_unlink(Index& nx, uint64_t slotval) {
  uint32_t b[2] = {static_cast<uint32_t>(nx.bucket1(slotval)),
                   static_cast<uint32_t>(nx.bucket2(slotval))};
  lock_buckets(nx, b, 2);
  unlink_key(nx, slotval, slotval);
  unlock_buckets(nx, b, 2);
}

uint32_t ConnTable::find_in(const Index& ix, const ConnKey& k, uint64_t h, bool& reply) const {
  const uint32_t sig = static_cast<uint32_t>(h >> 32);
  const uint64_t bs[2] = {ix.bucket1(h), ix.bucket2(h)};
  for (uint64_t b : bs) {
    const Bucket& bk = ix.b[b];
    // The second bucket holds none of the first's keys (link_key() counts them there
    // before it stores one, unlink_key() after it clears one).
    if (b == bs[1] && ix.b[bs[0]].spill.load(std::memory_order_acquire) == 0) break;
    for (const auto& s : bk.slot) {
      const uint64_t v = s.load(std::memory_order_acquire);
      if (v == kSlotEmpty || static_cast<uint32_t>(v >> 32) != sig) continue;
      const uint32_t idx = slot_idx(v);
      const Conn& cn = arena_[idx];
      const uint32_t r = static_cast<uint32_t>(v & 1);
      if (cn.key[r] == k && cn.live.load(std::memory_order_acquire) != 0) {
        reply = r != 0;
        return idx;
      }
    }
  }
  return 0;
}

uint32_t ConnTable::alloc(unsigned ctx) {
  Ctx& c = ctx_[ctx];
  // Slots used before come first (their memory is already backed), then never-used ones.
  if (c.free.empty() && shared_free_n_.load(std::memory_order_relaxed) != 0) {
    while (free_lock_.exchange(1, std::memory_order_acquire) != 0) __builtin_ia32_pause();
    const size_t take = std::min<size_t>(kFreeBatch, shared_free_.size());
    c.free.insert(c.free.end(), shared_free_.end() - static_cast<ptrdiff_t>(take),
                  shared_free_.end());
    shared_free_.resize(shared_free_.size() - take);
    shared_free_n_.store(static_cast<uint32_t>(shared_free_.size()), std::memory_order_relaxed);
    free_lock_.store(0, std::memory_order_release);
  }
  uint32_t idx = 0;
  if (!c.free.empty()) {
    idx = c.free.back();
    c.free.pop_back();
  } else if (bump_.load(std::memory_order_relaxed) <= slots_ &&
             (idx = bump_.fetch_add(1, std::memory_order_acq_rel)) <= slots_) {
    // a never-used slot
  } else {
    reclaim(ctx);  // maybe our own limbo is ready
    if (c.free.empty()) return 0;
    idx = c.free.back();
    c.free.pop_back();
  }
  arena_[idx].reset(static_cast<uint8_t>(ctx));
  return idx;
}

size_t ConnTable::prefault(uint32_t ahead) {
  if (!prefault_ok_) return 0;
  constexpr size_t kPage = 4096;
  const uint64_t next = bump_.load(std::memory_order_relaxed);
  const uint64_t last = std::min<uint64_t>(next + ahead, uint64_t(slots_) + 1);
  const size_t want = std::min((last * sizeof(Conn) + kPage - 1) / kPage * kPage, arena_bytes_);
  size_t from = std::max(prefaulted_, next * sizeof(Conn) / kPage * kPage);
  if (want <= from) return 0;
  char* base = reinterpret_cast<char*>(arena_);
  if (madvise(base + from, want - from, MADV_POPULATE_WRITE) != 0) {
    prefault_ok_ = errno != EINVAL;  // an old kernel: stop asking
    return 0;
  }
  prefaulted_ = want;
  return want - from;
}

void ConnTable::abandon(unsigned ctx, uint32_t idx) {
  ctx_[ctx].free.push_back(idx);  // never published: no grace period needed
}

void ConnTable::lock_buckets(const Index& ix, uint32_t* b, int n) {
  std::sort(b, b + n);
  for (int i = 0; i < n; ++i) {
    if (i > 0 && b[i] == b[i - 1]) continue;
    auto& l = ix.b[b[i]].lock;
    while (l.exchange(1, std::memory_order_acquire) != 0)
      while (l.load(std::memory_order_relaxed) != 0) __builtin_ia32_pause();
  }
}

void ConnTable::unlock_buckets(const Index& ix, const uint32_t* b, int n) {
  for (int i = 0; i < n; ++i) {
    if (i > 0 && b[i] == b[i - 1]) continue;
    ix.b[b[i]].lock.store(0, std::memory_order_release);
  }
}

const ConnTable::Index& ConnTable::lock_keys(uint64_t h0, uint64_t h1, uint32_t* b, Index*& nx) {
  for (;;) {
    const Index* ix = index_.load(std::memory_order_acquire);
    b[0] = static_cast<uint32_t>(ix->bucket1(h0));
    b[1] = static_cast<uint32_t>(ix->bucket2(h0));
    b[2] = static_cast<uint32_t>(ix->bucket1(h1));
    b[3] = static_cast<uint32_t>(ix->bucket2(h1));
    // The four lines fetched at once before the first lock: a locked exchange on a line
    // not in the cache waits for it alone, and the four misses (the reply key's buckets
    // are cold: no lookup read them) came one after another, most of a commit's time.
    for (int i = 0; i < 4; ++i) __builtin_prefetch(&ix->b[b[i]], 1);
    lock_buckets(*ix, b, 4);
    // The index a grow is filling, read with these buckets held: a grow that starts later
    // copies them after this change; one that started already gets the change mirrored.
    // Then the index in force again: once grow() has put its new index in force (before it
    // clears next_), a writer still in the old one starts over in the new one.
    nx = next_.load(std::memory_order_seq_cst);
    if (index_.load(std::memory_order_seq_cst) == ix) {
      if (nx == ix) nx = nullptr;  // in force already
      return *ix;
    }
    unlock_buckets(*ix, b, 4);
  }
}

// Both candidate buckets of a key full: makes room in `bucket` by moving one of its keys
// that sits in its first bucket (this one) to its own second, one cuckoo step; returns the
// freed slot, or nullptr. Only that direction: a lookup reads a key's first bucket, then
// its second when the first has spilled, and here the spill count goes up before the key
// appears in its second bucket and the key leaves its first only after that, so a lookup
// meanwhile finds it in one or both (moving a key back to its first bucket could hide it
// from a lookup between the two reads). The second bucket is locked too: already, when it
// is one of the caller's, else by a try-lock (the caller holds locks out of ascending
// order from here on; a busy bucket is skipped, never waited for).
std::atomic<uint64_t>* ConnTable::make_room(const Index& ix, uint64_t bucket, const uint32_t* held,
                                            int n, uint64_t* moved) {
  Bucket& bk = ix.b[bucket];
  for (auto& s : bk.slot) {
    const uint64_t v = s.load(std::memory_order_relaxed);
    const uint64_t hh = v & 0xffffffff00000000ull;  // the slot keeps the hash's upper half
    if (v == kSlotEmpty || ix.bucket1(hh) != bucket) continue;  // spilled here from elsewhere
    const uint64_t alt = ix.bucket2(hh);
    Bucket& ab = ix.b[alt];
    const bool have = std::find(held, held + n, static_cast<uint32_t>(alt)) != held + n;
    if (!have && ab.lock.exchange(1, std::memory_order_acquire) != 0) continue;
    std::atomic<uint64_t>* to = nullptr;
    for (auto& a : ab.slot)
      if (a.load(std::memory_order_relaxed) == kSlotEmpty) {
        to = &a;
        break;
      }
    if (to != nullptr) {
      bk.spill.store(bk.spill.load(std::memory_order_relaxed) + 1, std::memory_order_release);
      to->store(v, std::memory_order_release);
      s.store(kSlotEmpty, std::memory_order_release);
      moves_.fetch_add(1, std::memory_order_relaxed);
      if (moved != nullptr) *moved = v;
    }
    if (!have) ab.lock.store(0, std::memory_order_release);
    if (to != nullptr) return &s;
  }
  return nullptr;
}

bool ConnTable::link_key(const Index& ix, uint64_t h, uint64_t slotval, const uint32_t* held, int n,
                         uint64_t* moved) {
  if (moved != nullptr) *moved = kSlotEmpty;
  auto free_slot = [&](Bucket& bk, int& used) -> std::atomic<uint64_t>* {
    std::atomic<uint64_t>* f = nullptr;
    used = 0;
    for (auto& s : bk.slot) {
      if (s.load(std::memory_order_relaxed) != kSlotEmpty)
        ++used;
      else if (f == nullptr)
        f = &s;
    }
    return f;
  };
  // The first bucket while it has room to spare (a lookup then reads one line), else the
  // less loaded (two-choice balance where the index is crowded).
  constexpr int kFirstUpTo = 6;  // of 7
  Bucket& b1 = ix.b[ix.bucket1(h)];
  int u1 = 0, u2 = 0;
  std::atomic<uint64_t>* s1 = free_slot(b1, u1);
  if (s1 != nullptr && u1 < kFirstUpTo) {
    s1->store(slotval, std::memory_order_release);
    return true;
  }
  std::atomic<uint64_t>* s2 = free_slot(ix.b[ix.bucket2(h)], u2);
  if (s1 != nullptr && (s2 == nullptr || u1 <= u2)) {
    s1->store(slotval, std::memory_order_release);
    return true;
  }
  if (s1 == nullptr && s2 == nullptr) {  // both full: one cuckoo step, into either
    s1 = make_room(ix, ix.bucket1(h), held, n, moved);
    if (s1 != nullptr) {
      s1->store(slotval, std::memory_order_release);
      return true;
    }
    s2 = make_room(ix, ix.bucket2(h), held, n, moved);
  }
  if (s2 == nullptr) return false;
  // Counted before the slot is visible: a lookup that finds the slot has seen the count.
  b1.spill.store(b1.spill.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  s2->store(slotval, std::memory_order_release);
  return true;
}

void ConnTable::unlink_key(const Index& ix, uint64_t h, uint64_t slotval) {
  Bucket& b1 = ix.b[ix.bucket1(h)];
  for (auto& s : b1.slot) {
    if (s.load(std::memory_order_relaxed) == slotval) {
      s.store(kSlotEmpty, std::memory_order_release);
      return;
    }
  }
  for (auto& s : ix.b[ix.bucket2(h)].slot) {
    if (s.load(std::memory_order_relaxed) == slotval) {
      s.store(kSlotEmpty, std::memory_order_release);
      b1.spill.store(b1.spill.load(std::memory_order_relaxed) - 1, std::memory_order_release);
      return;
    }
  }
}

bool ConnTable::insert(unsigned ctx, uint32_t idx, uint32_t& existing) {
  Conn& cn = arena_[idx];
  existing = 0;
  const uint64_t h0 = hash(cn.key[0]);
  const uint64_t h1 = hash(cn.key[1]);
  uint32_t b[4];
  Index* nx;
  const Index& ix = lock_keys(h0, h1, b, nx);
  bool ok = false;
  bool r;
  // Under the bucket locks no other insert of these keys can run: check, then link.
  if (uint32_t e = find_in(ix, cn.key[0], h0, r); e != 0) {
    existing = e;
  } else if (uint32_t e2 = find_in(ix, cn.key[1], h1, r); e2 != 0) {
    existing = e2;
  } else {
    const uint64_t s0 = make_slot(h0, idx, 0), s1 = make_slot(h1, idx, 1);
    uint64_t moved[2];  // keys a cuckoo step moved meanwhile: a grow in progress may have
                        // copied their new bucket already and not their old one yet
    if (link_key(ix, h0, s0, b, 4, &moved[0])) {
      if (link_key(ix, h1, s1, b, 4, &moved[1])) {
        ok = true;
      } else {
        unlink_key(ix, h0, s0);
      }
    } else {
      moved[1] = kSlotEmpty;
    }
    if (nx != nullptr) {
      for (const uint64_t m : moved)
        if (m != kSlotEmpty) mirror_link(*nx, m);
      if (ok) {
        mirror_link(*nx, s0);
        mirror_link(*nx, s1);
      }
      mirrored_.fetch_add(1, std::memory_order_relaxed);
    }
    // Live only once both keys are linked (still under the bucket locks, so no other
    // insert of these keys can look meanwhile; a lock-free lookup that finds a slot
    // first sees it dead and misses, as it would a moment earlier). A slot that failed
    // to link was never live: abandon() may hand it out again at once without a walker
    // (dump, stats) reading it while it is rebuilt (found by ThreadSanitizer).
    if (ok)
      cn.live.store(1, std::memory_order_release);
    else
      collisions_.fetch_add(1, std::memory_order_relaxed);
  }
  unlock_buckets(ix, b, 4);
  if (!ok) return false;
  live_.fetch_add(1, std::memory_order_relaxed);
  Ctx& c = ctx_[ctx];
  cn.owner_pos = static_cast<uint32_t>(c.owned.size());
  c.owned.push_back(idx);
  return true;
}

bool ConnTable::remove(uint32_t idx) {
  Conn& cn = arena_[idx];
  const uint64_t h0 = hash(cn.key[0]);
  const uint64_t h1 = hash(cn.key[1]);
  uint32_t b[4];
  Index* nx;
  const Index& ix = lock_keys(h0, h1, b, nx);
  uint8_t expect = 1;
  const bool was_live = cn.live.compare_exchange_strong(expect, 0, std::memory_order_acq_rel);
  if (was_live) {
    unlink_key(ix, h0, make_slot(h0, idx, 0));
    unlink_key(ix, h1, make_slot(h1, idx, 1));
    if (nx != nullptr) {
      mirror_unlink(*nx, make_slot(h0, idx, 0));
      mirror_unlink(*nx, make_slot(h1, idx, 1));
      mirrored_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  unlock_buckets(ix, b, 4);
  if (was_live) live_.fetch_sub(1, std::memory_order_relaxed);
  return was_live;
}

void ConnTable::owned_remove(Ctx& c, uint32_t idx) {
  const uint32_t pos = arena_[idx].owner_pos;
  const uint32_t last = c.owned.back();
  c.owned[pos] = last;
  arena_[last].owner_pos = pos;
  c.owned.pop_back();
}

void ConnTable::reclaim(unsigned ctx) {
  Ctx& c = ctx_[ctx];
  while (c.limbo_head < c.limbo.size() && rcu_.grace_done(c.limbo[c.limbo_head].token)) {
    release(ctx, c.limbo[c.limbo_head].idx);
    ++c.limbo_head;
  }
  if (c.limbo_head == c.limbo.size()) {
    c.limbo.clear();
    c.limbo_head = 0;
  } else if (c.limbo_head > 4096 && c.limbo_head * 2 > c.limbo.size()) {
    c.limbo.erase(c.limbo.begin(), c.limbo.begin() + static_cast<ptrdiff_t>(c.limbo_head));
    c.limbo_head = 0;
  }
  c.n_limbo.store(static_cast<uint32_t>(c.limbo.size() - c.limbo_head), std::memory_order_relaxed);
}

void ConnTable::release(unsigned ctx, uint32_t idx) {
  Ctx& c = ctx_[ctx];
  c.free.push_back(idx);
  if (c.free.size() >= 2 * kFreeBatch) {
    while (free_lock_.exchange(1, std::memory_order_acquire) != 0) __builtin_ia32_pause();
    shared_free_.insert(shared_free_.end(), c.free.end() - kFreeBatch, c.free.end());
    shared_free_n_.store(static_cast<uint32_t>(shared_free_.size()), std::memory_order_relaxed);
    free_lock_.store(0, std::memory_order_release);
    c.free.resize(c.free.size() - kFreeBatch);
  }
}

uint32_t ConnTable::pending_free() const {
  uint32_t n = 0;
  for (unsigned i = 0; i < contexts_; ++i) n += ctx_[i].n_limbo.load(std::memory_order_relaxed);
  return n;
}

}  // namespace gl::ct
