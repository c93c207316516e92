// ipf.hpp — IP fragment reassembly in front of the connection tracker (OVS's "ipf").
//
// Purpose: OVS userspace conntrack reassembles IPv4 and IPv6 fragments before tracking
// them. A valid fragment is taken out of the batch and held in a list keyed by (src, dst,
// IP id, protocol (IPv4 only), zone, recirc_id, IP version). When a list holds the whole
// datagram, add() writes the reassembled packet into the caller's scratch buffer and gives
// back the handles of every fragment, in offset order. The caller tracks the reassembled
// packet (ct(), maybe NAT), copies its conntrack metadata to each fragment, calls apply()
// (addresses after NAT and the first fragment's L4 bytes written back into the fragments)
// and sends the fragments, not the reassembled packet, on through the pipeline.
//
// Fragments are refused (kInvalid, counted) for a bad IPv4 header checksum, inconsistent
// lengths, a non-last fragment smaller than min_frag ("too small"), or overlapping or
// duplicate data ("overlapped"). They pass through un-reassembled (kPass: conntrack marks
// them +inv) when reassembly of their family is off, when max_nfrags fragments are held,
// when their list has failed or is being expired, or is full. A list expires timeout_ms
// (15 s) after its first fragment: expire() gives its fragments back to be sent as +inv
// ("expired"), or, more than kIpfPurgeDelayMs after that, to be dropped ("purged").
// Differences from OVS 3.1's lib/ipf.c: the reassembled IPv6 packet is well formed — the
// fragment header removed, its next header in the previous header (OVS keeps the header,
// zeroed, puts the upper-layer protocol in the base header and sets a payload length 8
// short, which only its conntrack's saved L4 offset copes with); any overlap is refused
// (OVS misses a fragment that covers a held one); a second last fragment, data past the
// last one, a non-last fragment whose data is not a multiple of 8 and data past 65535
// bytes are refused at once (OVS holds them until the list expires); the reassembled
// packet is produced synchronously by the completing add() (OVS: in the same batch, so a
// fragment of a just-completed datagram later in that batch passes there, and starts a
// new list here); an IPv6 list holds at most kIpfMaxFragsPerList fragments (OVS 65535);
// expire() gives back up to max_handles fragments per call from any number of lists
// (OVS: one list per batch, as the batch has room); the IPv4 header checksum is always
// verified (OVS trusts a NIC's verdict).
//
// Thread-safety: add(), expire(), drain(), dump() take one internal spinlock (fragments
// are rare; the critical section is bookkeeping only — the reassembled packet is copied
// after the lock is released); status(), config() and the setters use atomics and never
// lock. apply() and parse_fragment() are pure functions on caller-owned memory. No
// allocation, syscall or log line after construction (dump() allocates on the control
// thread).
// Complexity: add() O(fragments in the list) (at most kIpfMaxFragsPerList) plus the
// datagram's bytes once on completion; expire() O(max_handles); status() O(1).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "flowtables/enum_names.hpp"

namespace gl::ct {

// OVS's bounds and defaults (lib/ipf.c).
inline constexpr uint32_t kIpfMinFragLowerBound = 400;  // set_min_frag refuses less
inline constexpr uint32_t kIpfDefaultMinFragV4 = 1200;
inline constexpr uint32_t kIpfDefaultMinFragV6 = 1280;
inline constexpr uint32_t kIpfDefaultMaxNfrags = 1000;
inline constexpr uint32_t kIpfMaxNfragsUpperBound = 5000;  // set_max_nfrags refuses more
inline constexpr uint32_t kIpfDefaultTimeoutMs = 15000;
inline constexpr uint32_t kIpfPurgeDelayMs = 10000;  // expired this long: purged
// Fragments per list: with min_frag >= 400 a datagram has at most 193 (OVS's IPv4 bound
// ceil(65475 / (min_frag - 60)) is applied too); more pass through.
inline constexpr uint32_t kIpfMaxFragsPerList = 256;
// The longest L2 header (l3_ofs) accepted, and the scratch buffer add() needs.
inline constexpr uint32_t kIpfMaxL2Len = 128;
inline constexpr uint32_t kIpfScratchBytes = 65536 + 256;

enum class IpfFamily : uint8_t { kV4, kV6 };

struct IpfConfig {
  bool v4_enabled = true;
  bool v6_enabled = true;
  uint32_t v4_min_frag = kIpfDefaultMinFragV4;  // IP packet bytes (header included)
  uint32_t v6_min_frag = kIpfDefaultMinFragV6;
  uint32_t max_nfrags = kIpfDefaultMaxNfrags;  // fragments held at once, all lists
  uint32_t timeout_ms = kIpfDefaultTimeoutMs;  // list lifetime from its first fragment

  // The setters' checks on every field; the error names the first bad one.
  std::expected<void, std::string> validate() const;
};

// Why add() refused a fragment (kInvalid). Counted per family.
enum class IpfDrop : uint8_t {
  kL3Checksum,  // bad IPv4 header checksum
  kHeader,      // truncated or malformed IP header / extension-header chain, L2 too long
  kLength,      // inconsistent lengths: no data, a non-last fragment's data not a
                // multiple of 8, past 65535 bytes, past the last fragment, a second last
  kTooSmall,    // a non-last fragment below min_frag (OVS "too small")
  kOverlap,     // overlaps or duplicates data held (OVS "overlapped")
  kCount
};
inline constexpr size_t kIpfDropCount = static_cast<size_t>(IpfDrop::kCount);
inline constexpr flow::EnumName<IpfDrop> kIpfDropTable[] = {
    {IpfDrop::kL3Checksum, "l3_checksum"}, {IpfDrop::kHeader, "bad_header"},
    {IpfDrop::kLength, "bad_length"},      {IpfDrop::kTooSmall, "too_small"},
    {IpfDrop::kOverlap, "overlap"},
};
inline constexpr auto kIpfDropNames = flow::enum_names(kIpfDropTable);
static_assert(kIpfDropNames.size() == kIpfDropCount);

// Why add() let a fragment through un-reassembled (kPass). Counted per family.
enum class IpfPass : uint8_t {
  kDisabled,     // reassembly of this family is off
  kFull,         // max_nfrags fragments held
  kListDone,     // its list failed reassembly or is being expired
  kListFull,     // its list holds the most fragments a list may
  kNotFragment,  // not a fragment at all (the caller's mistake; nothing counted)
  kCount
};
inline constexpr size_t kIpfPassCount = static_cast<size_t>(IpfPass::kCount);
inline constexpr flow::EnumName<IpfPass> kIpfPassTable[] = {
    {IpfPass::kDisabled, "disabled"},        {IpfPass::kFull, "full"},
    {IpfPass::kListDone, "list_done"},       {IpfPass::kListFull, "list_full"},
    {IpfPass::kNotFragment, "not_fragment"},
};
inline constexpr auto kIpfPassNames = flow::enum_names(kIpfPassTable);
static_assert(kIpfPassNames.size() == kIpfPassCount);

// dpif_ipf_status's per-family half, plus gldp's breakdowns.
struct IpfFamilyStatus {
  bool enabled = false;
  uint32_t min_frag_size = 0;
  uint64_t accepted = 0;        // fragments held
  uint64_t completed_sent = 0;  // ... given back reassembled (kComplete)
  uint64_t expired_sent = 0;    // ... given back by expire() (IpfRelease::kExpired)
  uint64_t too_small = 0;       // == invalid[kTooSmall]
  uint64_t overlap = 0;         // == invalid[kOverlap]
  uint64_t purged = 0;          // ... given back by expire() (IpfRelease::kPurged)
  std::array<uint64_t, kIpfDropCount> invalid{};
  std::array<uint64_t, kIpfPassCount> passed{};
};

// What `ovs-appctl dpctl/ipf-get-status` shows.
struct IpfStatus {
  IpfFamilyStatus v4, v6;
  uint32_t nfrag = 0;      // fragments held now
  uint32_t nfrag_max = 0;  // max_nfrags
  uint32_t nlists = 0;     // lists now
};

// One fragment for add(): the frame as received (contiguous, writable: apply() rewrites
// it later) and the metadata the list key takes from it. `handle` is the caller's (its
// mbuf): held by the Ipf from kHeld until given back by kComplete, expire() or drain().
struct FragIn {
  uint8_t* frame = nullptr;
  uint32_t len = 0;
  uint16_t l3_ofs = 0;  // PacketLayout::l3_ofs
  uint16_t zone = 0;    // the ct() zone
  uint32_t recirc_id = 0;
  void* handle = nullptr;
};

// What parse_fragment() finds in a frame. Offsets are from the frame start unless noted.
struct FragInfo {
  uint8_t version = 0;  // 4 or 6
  uint8_t proto = 0;    // IPv4: the protocol; IPv6: the fragment header's next header
  bool more = false;    // MF / M
  uint32_t id = 0;      // host order: IPv4 16-bit, IPv6 32-bit
  uint8_t src[16] = {}, dst[16] = {};  // as in the packet; IPv4 in the first 4 bytes
  uint32_t offset = 0;                 // fragment offset, bytes
  uint32_t l3_len = 0;                 // the IP packet: headers + data (Ethernet padding excluded)
  uint32_t unfrag_len = 0;             // from l3: IPv4 IHL; IPv6 40 + headers before the fragment
                                       // header (where the fragment header starts)
  uint32_t nh_ofs = 0;                 // IPv6, from l3: the next-header byte naming the fragment
                                       // header (6 in the base header, or an extension header's 0)
  uint32_t data_ofs = 0;  // the fragment's data (after the IPv4 header / fragment header)
  uint32_t data_len = 0;
};

enum class FragParse : uint8_t {
  kFragment,     // fi filled
  kNotFragment,  // IPv4 MF = 0 and offset 0; IPv6 without a fragment header or with an
                 // atomic one (offset 0, M 0)
  kBadHeader,    // truncated / inconsistent header or extension chain
  kBadChecksum,  // IPv4 header checksum
};

// Parses the IP packet at frame + l3_ofs (version from its first nibble). IPv6 extension
// headers walked to the fragment header: hop-by-hop, routing, destination options, AH
// (as OVS), at most 8. Never reads past len.
FragParse parse_fragment(const uint8_t* frame, uint32_t len, uint16_t l3_ofs, FragInfo& fi);

// A fragment given back by add() on completion.
struct CompletedFrag {
  void* handle;
  uint8_t* frame;
  uint32_t l3_ofs;
  uint32_t data_ofs;  // its data in its frame
  uint32_t data_len;
};

// add()'s output on kComplete. The caller sets `scratch` (>= kIpfScratchBytes, reused
// from call to call); add() fills the rest.
struct Completed {
  std::span<uint8_t> scratch;  // in
  uint8_t* pkt = nullptr;      // the reassembled frame (== scratch.data())
  uint32_t len = 0;
  uint32_t l3_ofs = 0;    // as the first fragment's
  uint32_t data_ofs = 0;  // where the reassembled data (the L4 header) starts in pkt
  uint8_t version = 0;
  uint32_t n = 0;  // fragments, in offset order (frags[0] has offset 0)
  std::array<CompletedFrag, kIpfMaxFragsPerList> frags;
};

enum class AddResult : uint8_t {
  kHeld,      // the Ipf owns the handle now
  kComplete,  // this fragment completed its datagram: `out` holds it and every handle
  kPass,      // not reassembled: the caller keeps the packet (conntrack makes it +inv)
  kInvalid,   // refused and counted: the caller keeps it and marks it +inv
};

// Why expire() gives a handle back.
enum class IpfRelease : uint8_t {
  kExpired,  // its list timed out: send it on as +inv (OVS "expired")
  kPurged,   // its list timed out kIpfPurgeDelayMs ago: drop it (OVS "purged")
};

// A list as dpctl/ipf-get-status -m shows it.
struct IpfListInfo {
  uint8_t version;
  uint8_t src[16], dst[16];
  uint32_t recirc_id;
  uint32_t id;
  uint16_t zone;
  uint8_t proto;  // 0 for IPv6
  uint32_t nfrags;
  std::string_view state;  // OVS's names: "other frag", "first frag", "last frag",
                           // "first/last frag", "reassemble fail"
};
// OVS's text: "(src=...,dst=...,recirc_id=..,ip_id=..,dl_type=0x800,zone=..,nw_proto=..,
// num_fragments=..,state=...)".
std::string format_ipf_list(const IpfListInfo& l);

class Ipf {
 public:
  // `c` must pass validate() (fatal otherwise). seed: the list hash's (0: random).
  explicit Ipf(const IpfConfig& c = {}, uint64_t seed = 0);
  // Handles still held are forgotten, not freed: drain() them first.
  ~Ipf();
  Ipf(const Ipf&) = delete;
  Ipf& operator=(const Ipf&) = delete;

  // ---- packet path (any thread) ----
  // Offers one fragment (the caller found PacketLayout::is_fragment()) at time now_ms.
  // On kComplete, out holds the datagram and the handles of all its fragments (this one
  // included); out.scratch must be set. `why` (optional) gets the reason of kInvalid, and
  // `pass` that of kPass.
  AddResult add(const FragIn& f, uint64_t now_ms, Completed& out, IpfDrop* why = nullptr,
                IpfPass* pass = nullptr);

  // After the caller tracked (maybe NAT'd) the reassembled frame `reassembled` (same L2
  // length as out.pkt; by default out.pkt itself): writes its IP addresses into every
  // fragment (IPv4: header checksum updated), and into the first fragment the bytes of
  // the reassembled data that it carries (L4 header: ports, checksum). The conntrack
  // metadata is the caller's to copy.
  static void apply(const Completed& c, const uint8_t* reassembled);
  static void apply(const Completed& c) { apply(c, c.pkt); }

  // Gives back up to max_handles fragments of lists past their timeout (oldest list
  // first; a list may be given back over several calls, and takes no fragment meanwhile):
  // fn(void* handle, IpfRelease why). Returns how many were given back.
  template <class Fn>
  uint32_t expire(uint64_t now_ms, Fn&& fn, uint32_t max_handles = 32) {
    return expire_impl(now_ms, max_handles, &Ipf::thunk<Fn>, as_ctx(fn));
  }
  // Gives back every fragment held (shutdown, tests) as fn(handle, IpfRelease::kPurged),
  // counting nothing.
  template <class Fn>
  uint32_t drain(Fn&& fn) {
    return drain_impl(&Ipf::thunk<Fn>, as_ctx(fn));
  }

  // ---- operator (control thread) ----
  // OVS: ipf_set_enabled / ipf_set_min_frag / ipf_set_max_nfrags (always, < 400, > 5000).
  std::expected<void, std::string> set_enabled(IpfFamily fam, bool on);
  std::expected<void, std::string> set_min_frag(IpfFamily fam, uint32_t bytes);
  std::expected<void, std::string> set_max_nfrags(uint32_t n);
  // Lists created from now on (no OVS equivalent; 15000 in OVS). 0 refused.
  std::expected<void, std::string> set_timeout_ms(uint32_t ms);
  IpfConfig config() const;
  IpfStatus status() const;
  // The lists now (copied under the lock, then returned).
  std::vector<IpfListInfo> dump() const;

 private:
  using ReleaseFn = void (*)(void* ctx, void* handle, IpfRelease why);
  template <class Fn>
  static void* as_ctx(Fn& fn) {
    return const_cast<void*>(static_cast<const void*>(&fn));
  }
  template <class Fn>
  static void thunk(void* ctx, void* handle, IpfRelease why) {
    (*static_cast<std::remove_reference_t<Fn>*>(ctx))(handle, why);
  }
  uint32_t expire_impl(uint64_t now_ms, uint32_t max_handles, ReleaseFn fn, void* ctx);
  uint32_t drain_impl(ReleaseFn fn, void* ctx);

  struct Key;
  struct Slot;
  struct List;
  struct Counters;
  class Guard;

  void lock() const;
  void unlock() const;
  uint32_t hash(const Key& k) const;
  uint32_t find(const Key& k, uint32_t h) const;
  void unlink_list(uint32_t li);  // hash chain + expiry FIFO; frees the list slot
  void* pop_frag(List& l);        // the list's first fragment's handle; frees its slot
  uint32_t max_list_frags(bool v6) const;
  Counters& ctr(bool v6) const;

  uint64_t seed_;
  std::atomic<bool> enabled_[2];
  std::atomic<uint32_t> min_frag_[2];
  std::atomic<uint32_t> max_nfrags_;
  std::atomic<uint32_t> timeout_ms_;
  std::atomic<uint32_t> nfrag_{0};
  std::atomic<uint32_t> nlists_{0};
  std::unique_ptr<Counters[]> ctr_;  // [0] IPv4, [1] IPv6

  mutable std::atomic<uint8_t> lock_{0};
  // Under lock_:
  std::unique_ptr<Slot[]> slots_;  // kIpfMaxNfragsUpperBound fragments
  std::unique_ptr<List[]> lists_;  // as many lists (each holds >= 1 fragment)
  std::unique_ptr<uint32_t[]> buckets_;
  uint32_t bucket_mask_ = 0;
  uint32_t free_slot_;  // free chains, linked through Slot::next / List::hnext
  uint32_t free_list_;
  uint32_t exp_head_, exp_tail_;  // the expiry FIFO (creation order)
};

}  // namespace gl::ct
