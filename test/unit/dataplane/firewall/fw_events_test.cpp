// The firewall's event ring (fw_events.hpp): a PMD pushes, the control thread drains.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <thread>

#include "dataplane/firewall/fw_events.hpp"

using gl::fw::EventRing;
using gl::fw::FwEvent;

namespace {

// An event whose every field follows from seq, so that a torn copy shows.
FwEvent event(uint64_t seq) {
  FwEvent e{};
  e.time_ms = seq;
  e.start_ms = seq * 3;
  e.packets[0] = ~seq;
  e.bytes[1] = seq ^ 0x5555;
  e.src[0] = static_cast<uint32_t>(seq);
  e.dst[3] = static_cast<uint32_t>(seq >> 7);
  e.port_no = static_cast<uint32_t>(seq * 7);
  e.suppressed = static_cast<uint32_t>(seq + 1);
  return e;
}

bool consistent(const FwEvent& e) {
  const uint64_t s = e.time_ms;
  return e.start_ms == s * 3 && e.packets[0] == ~s && e.bytes[1] == (s ^ 0x5555) &&
         e.src[0] == static_cast<uint32_t>(s) && e.dst[3] == static_cast<uint32_t>(s >> 7) &&
         e.port_no == static_cast<uint32_t>(s * 7) && e.suppressed == static_cast<uint32_t>(s + 1);
}

}  // namespace

TEST_CASE("EventRing: bounded, in order, what does not fit is counted lost", "[firewall]") {
  EventRing r(8);
  for (uint64_t i = 0; i < 8; ++i) REQUIRE(r.push(event(i)));
  CHECK_FALSE(r.push(event(8)));
  CHECK(r.lost() == 1);
  uint64_t next = 0;
  CHECK(r.drain([&](const FwEvent& e) { CHECK(e.time_ms == next++); }) == 8);
  CHECK(r.drain([](const FwEvent&) { FAIL("empty"); }) == 0);
  REQUIRE(r.push(event(9)));  // room again
  CHECK(r.drain([](const FwEvent& e) { CHECK(e.time_ms == 9); }) == 1);
}

TEST_CASE("EventRing: a producer and a consumer thread lose, tear or reorder nothing",
          "[firewall][threads]") {
  constexpr uint64_t kEvents = 200000;
  EventRing r(256);
  std::atomic<bool> done{false};
  uint64_t pushed = 0;
  std::thread producer([&] {
    for (uint64_t i = 0; i < kEvents; ++i)
      if (r.push(event(i))) ++pushed;
    done.store(true, std::memory_order_release);
  });
  uint64_t seen = 0, torn = 0, out_of_order = 0;
  int64_t last = -1;
  auto take = [&](const FwEvent& e) {
    ++seen;
    if (!consistent(e)) ++torn;
    if (static_cast<int64_t>(e.time_ms) <= last) ++out_of_order;
    last = static_cast<int64_t>(e.time_ms);
  };
  while (!done.load(std::memory_order_acquire)) r.drain(take);
  producer.join();
  r.drain(take);
  CHECK(torn == 0);
  CHECK(out_of_order == 0);
  CHECK(seen == pushed);
  CHECK(pushed + r.lost() == kEvents);
  CHECK(pushed > 0);
}
