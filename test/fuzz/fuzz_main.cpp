// The driver of the fuzz targets: feeds a target `--runs N` inputs made by mutating its
// built-in seeds with a fixed-seed PRNG (byte flips, truncation, splices, random bytes),
// so a CI run is repeatable; `--seed S` explores other inputs. The targets keep
// libFuzzer's entry point, so a coverage-guided fuzzer drives them too (tools/fuzz.sh);
// `--write-seeds DIR` writes the seeds as files, the start of a libFuzzer corpus.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Seeds supplied by each target.
std::vector<std::vector<uint8_t>> fuzz_seeds();

int main(int argc, char** argv) {
  unsigned long runs = 100000;
  uint32_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    } else if (a == "--write-seeds" && i + 1 < argc) {
      const std::string dir = argv[++i];
      const auto seeds = fuzz_seeds();
      for (size_t k = 0; k < seeds.size(); ++k) {
        const std::string path = dir + "/seed-" + std::to_string(k);
        std::ofstream f(path, std::ios::binary);
        f.write(reinterpret_cast<const char*>(seeds[k].data()),
                static_cast<std::streamsize>(seeds[k].size()));
        if (!f) {
          std::fprintf(stderr, "%s: cannot write %s\n", argv[0], path.c_str());
          return 1;
        }
      }
      std::printf("%zu seeds written to %s\n", seeds.size(), dir.c_str());
      return 0;
    } else {
      std::fprintf(stderr, "usage: %s [--runs N] [--seed S] [--write-seeds DIR]\n", argv[0]);
      return 2;
    }
  }
  std::mt19937 rng(seed);
  auto seeds = fuzz_seeds();
  std::vector<uint8_t> buf;
  for (unsigned long r = 0; r < runs; ++r) {
    const auto& s = seeds[rng() % seeds.size()];
    buf = s;
    switch (rng() % 5) {
      case 0:  // random bytes
        buf.resize(rng() % 256);
        for (auto& b : buf) b = static_cast<uint8_t>(rng());
        break;
      case 1:  // truncate
        buf.resize(buf.empty() ? 0 : rng() % (buf.size() + 1));
        break;
      case 2:  // splice two seeds
        if (!seeds.empty()) {
          const auto& t = seeds[rng() % seeds.size()];
          buf.resize(buf.empty() ? 0 : rng() % (buf.size() + 1));
          size_t from = t.empty() ? 0 : rng() % t.size();
          buf.insert(buf.end(), t.begin() + from, t.end());
        }
        break;
      default:  // flip a few bytes
        for (int k = 0, n = 1 + rng() % 4; k < n && !buf.empty(); ++k)
          buf[rng() % buf.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    }
    LLVMFuzzerTestOneInput(buf.data(), buf.size());
  }
  std::printf("%lu inputs, no crash\n", runs);
  return 0;
}
