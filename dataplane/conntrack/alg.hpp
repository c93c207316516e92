// alg.hpp — the FTP and TFTP helpers (ALGs) of the connection tracker: expectations.
//
// Purpose: a control connection committed with ct(commit,helper=ftp|tftp) announces data
// connections (FTP PORT / 227 / EPRT / 229 replies; every TFTP request); each becomes an
// expectation: the data connection's key with a wildcard source port, plus what the data
// connection inherits from its parent (mark, label, originator tuple, the NAT address).
// A new connection whose key matches one is +rel. The parsing and packet rewriting live
// in alg.cpp as members of Conntrack; this header holds the expectation table.
// Semantics: OVS 3.1 lib/conntrack.c (expectation_create/lookup/clean); DESIGN.md "ALGs".
//
// Thread-safety: every call takes one spinlock (ALG packets and new-connection lookups
// while any expectation exists: any() is a relaxed atomic read that keeps the common path
// free of the lock). Expectations live as long as their parent connection: the tracker
// calls remove_parent() when it unlinks one.
// Complexity: add and find O(chain) (hashed, 1024 chains); remove_parent O(kCapacity).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "dataplane/conntrack/conn_table.hpp"

namespace gl::ct {

// ct(helper=...) values (ct::Action::helper).
inline constexpr uint8_t kHelperNone = 0;
inline constexpr uint8_t kHelperFtp = 1;
inline constexpr uint8_t kHelperTftp = 2;

struct Expectation {
  ConnKey key;          // the data connection's originator tuple; sport 0 = any
  ConnKey parent_key;   // the control connection's originator tuple (ct_orig_tuple)
  uint32_t parent = 0;  // the control connection's index
  uint32_t mark = 0;    // the parent's mark and label when the expectation was made
  uint8_t label[16] = {};
  // With ct(nat) on the data connection: the reply tuple's destination (nat_rpl_dst: the
  // data connection is SNAT'd) or source (DNAT'd) becomes this address.
  uint32_t nat_addr[4] = {};
  bool nat_rpl_dst = false;
};

class Expectations {
 public:
  static constexpr uint32_t kCapacity = 4096;  // in total
  static constexpr uint32_t kPerParent = 64;   // per control connection

  Expectations();
  Expectations(const Expectations&) = delete;
  Expectations& operator=(const Expectations&) = delete;

  // Whether any expectation exists (relaxed; checked before find()).
  bool any() const { return live_.load(std::memory_order_relaxed) != 0; }
  uint32_t live() const { return live_.load(std::memory_order_relaxed); }
  // Adds e unless one with its key exists (true: added or present). Refused (false,
  // counted) when the table or the parent's share is full, or `parent_live` is 0 (the
  // parent was unlinked meanwhile: its remove_parent() may have run already).
  bool add(const Expectation& e, const std::atomic<uint8_t>& parent_live);
  // The expectation matching k (k.sport is ignored); false when none.
  bool find(const ConnKey& k, Expectation& out) const;
  // Removes the expectations of a parent connection; returns how many.
  uint32_t remove_parent(uint32_t parent);

  uint64_t created() const { return created_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  static constexpr uint32_t kBuckets = 1024;
  static constexpr uint32_t kNil = UINT32_MAX;
  uint32_t find_locked(const ConnKey& k, uint32_t b) const;
  static uint32_t bucket(const ConnKey& k);
  void lock() const {
    while (lock_.exchange(1, std::memory_order_acquire) != 0)
      while (lock_.load(std::memory_order_relaxed) != 0) __builtin_ia32_pause();
  }
  void unlock() const { lock_.store(0, std::memory_order_release); }

  mutable std::atomic<uint8_t> lock_{0};
  std::atomic<uint32_t> live_{0};
  std::atomic<uint64_t> created_{0}, refused_{0};
  std::unique_ptr<Expectation[]> pool_;  // kCapacity
  std::unique_ptr<uint32_t[]> parent_;   // kCapacity; 0 = free slot (index 0 is no conn)
  std::unique_ptr<uint32_t[]> next_;     // kCapacity; chain in a bucket
  std::unique_ptr<uint32_t[]> head_;     // kBuckets
  uint32_t free_ = kNil;                 // free slots chained through next_
};

}  // namespace gl::ct
