// Interoperability with an independent ESP implementation: scapy's SecurityAssociation
// (/usr/bin/python3, esp_interop.py). Our encap output is decrypted by scapy; scapy's
// output is decrypted by us and is byte-identical to ours from the SPI on (same key, same
// sequence number, same IV); sequence numbers straddle the 2^32 ESN boundary.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "test_util.hpp"

#ifndef GL_ESP_INTEROP_SCRIPT
#error "GL_ESP_INTEROP_SCRIPT must name esp_interop.py"
#endif

using namespace gl::crypto;
using namespace gl::crypto::test;

namespace {

struct PyResult {
  int status = -1;
  std::vector<std::string> lines;
};

PyResult run_python(const std::string& request) {
  char path[] = "/tmp/gl-esp-interop-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream f(path);
    f << request;
  }
  const std::string cmd = std::string("/usr/bin/python3 ") + GL_ESP_INTEROP_SCRIPT + " " + path;
  PyResult r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  unlink(path);
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) r.lines.push_back(line);
  }
  return r;
}

std::string hexv(const std::vector<uint8_t>& v) {
  return hex(v);
}

}  // namespace

TEST_CASE("esp interop: scapy decrypts ours and we decrypt scapy's, both ciphers, ESN wrap") {
  if (access("/usr/bin/python3", X_OK) != 0) {
    WARN("no /usr/bin/python3: interop skipped");
    return;
  }
  auto w = make_worker();
  constexpr uint64_t kStart = (uint64_t{1} << 32) - 3;
  for (const Combo& combo : available_combos()) {
    for (int shape_kind = 0; shape_kind < 4; ++shape_kind) {
      SaShape s;
      s.backend = combo.backend;
      s.cipher = combo.cipher;
      s.mode = shape_kind < 2 ? Mode::tunnel : Mode::transport;
      s.v6 = shape_kind == 1 || shape_kind == 3;
      s.seq_start = kStart;
      s.spi = 0x00c0ffee;
      INFO(name(s.backend) << " " << name(s.cipher) << " shape " << shape_kind);
      auto sa = make_pair(s);
      const SaConfig cfg = sa_config(s, Direction::outbound);
      std::ostringstream req;
      req << "sa " << (s.cipher == Cipher::aes256_gcm ? "AES-GCM" : "CHACHA20-POLY1305") << " "
          << hexv(test_keymat()) << " " << s.spi << " 1 "
          << (s.mode == Mode::tunnel ? "tunnel" : "transport") << " " << cfg.local.to_string()
          << " " << cfg.remote.to_string() << "\n";
      std::vector<std::vector<uint8_t>> clear, ours;
      const size_t sizes[] = {0, 1, 2, 3, 17, 100, 333, 1400};
      uint64_t seq = kStart;
      for (size_t i = 0; i < std::size(sizes); ++i) {
        const bool inner_v6 = s.mode == Mode::tunnel ? (i % 2 == 1) : s.v6;
        clear.push_back(inner_v6 ? ipv6_packet(17, sizes[i] + 8) : ipv4_packet(17, sizes[i] + 8));
        Buf b(clear.back());
        REQUIRE(run1(*sa.out, *w, b) == Result::ok);
        ours.push_back(b.bytes());
        ++seq;
        req << "dec " << seq << " " << hexv(ours.back()) << "\n";
        req << "enc " << seq << " " << hexv(clear.back()) << "\n";
      }
      const PyResult py = run_python(req.str());
      if (py.status == 77) {
        WARN("scapy not importable: interop skipped");
        return;
      }
      REQUIRE(py.status == 0);
      REQUIRE(py.lines.size() == 2 * clear.size());
      for (size_t i = 0; i < clear.size(); ++i) {
        INFO("packet " << i << " size " << clear[i].size());
        const std::string& dec = py.lines[2 * i];
        const std::string& enc = py.lines[2 * i + 1];
        REQUIRE(dec.rfind("ok ", 0) == 0);
        REQUIRE(enc.rfind("ok ", 0) == 0);
        // 1. scapy decrypted our packet to the clear packet.
        CHECK(dec.substr(3) == hexv(clear[i]));
        // 2. scapy's packet equals ours from the ESP header on.
        const auto theirs = unhex(enc.substr(3));
        const size_t ip_ours = (ours[i][0] >> 4) == 6 ? 40 : 20;
        const size_t ip_theirs = (theirs[0] >> 4) == 6 ? 40 : 20;
        REQUIRE(theirs.size() - ip_theirs == ours[i].size() - ip_ours);
        CHECK(hex(theirs.data() + ip_theirs, theirs.size() - ip_theirs) ==
              hex(ours[i].data() + ip_ours, ours[i].size() - ip_ours));
      }
      // 3. We decrypt scapy's packets (a fresh inbound SA: these sequence numbers are new
      // to it), in reverse order to exercise the window across the wrap.
      auto in2 = make_pair(s).in;
      for (size_t k = clear.size(); k-- > 0;) {
        INFO("scapy packet " << k);
        Buf b(unhex(py.lines[2 * k + 1].substr(3)));
        REQUIRE(run1(*in2, *w, b) == Result::ok);
        CHECK(b.bytes() == clear[k]);
      }
    }
  }
}
