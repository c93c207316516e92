#include "dataplane/eal_args.hpp"

#include <rte_eal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace gl::dp {

bool hugepages_usable() {
  bool mounted = false;
  std::ifstream mounts("/proc/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream ls(line);
    std::string dev, dir, type;
    ls >> dev >> dir >> type;
    if (type == "hugetlbfs") mounted = true;
  }
  if (!mounted) return false;
  std::ifstream meminfo("/proc/meminfo");
  while (std::getline(meminfo, line)) {
    if (line.rfind("HugePages_Free:", 0) == 0) {
      return std::stol(line.substr(15)) > 0;
    }
  }
  return false;
}

bool user_sets_cores(const std::vector<std::string>& extra) {
  for (const auto& e : extra)
    if (e.rfind("-l", 0) == 0 || e.rfind("-c", 0) == 0 || e.rfind("--lcores", 0) == 0) return true;
  return false;
}

std::vector<std::string> eal_args(std::string_view prog, std::string_view lcores,
                                  const std::vector<std::string>& extra, bool want_pci,
                                  unsigned mem_mb) {
  std::vector<std::string> a;
  a.emplace_back(prog);
  auto given = [&](std::string_view opt) {
    for (const auto& e : extra)
      if (e == opt) return true;
    return false;
  };
  if (!user_sets_cores(extra)) {
    a.emplace_back("-l");
    a.emplace_back(lcores);
  }
  a.emplace_back("--file-prefix=gl-" + std::string(prog) + "-" + std::to_string(getpid()));
  const char* force = std::getenv("GL_NO_HUGE");  // tests take CI's path on any machine
  const bool user_no_huge = given("--no-huge");
  if (!user_no_huge && (force == nullptr || *force == '\0' || *force == '0') &&
      hugepages_usable()) {
    a.emplace_back("--in-memory");  // hugepages, but no runtime files left behind
  } else {
    // DPDK 22.11 refuses --in-memory with --no-huge (which implies --legacy-mem);
    // --no-shconf gives the same "nothing shared, nothing left behind" there.
    if (!user_no_huge) a.emplace_back("--no-huge");
    a.emplace_back("--no-shconf");
    if (!given("-m")) {
      a.emplace_back("-m");
      a.emplace_back(std::to_string(mem_mb));
    }
  }
  if (!want_pci) a.emplace_back("--no-pci");
  a.emplace_back("--log-level=lib.eal:error");
  // No telemetry socket: nothing uses it, and its file is unlinked only at process exit,
  // after eal_cleanup() tried to remove the runtime directory.
  if (!given("--telemetry")) a.emplace_back("--no-telemetry");
  for (const auto& e : extra) a.push_back(e);
  return a;
}

void eal_cleanup() {
  // Even with --in-memory the EAL leaves an empty runtime directory behind.
  const std::string dir = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  if (!dir.empty()) ::rmdir(dir.c_str());
}

std::vector<char*> to_argv(std::vector<std::string>& args) {
  std::vector<char*> v;
  v.reserve(args.size() + 1);
  for (auto& s : args) v.push_back(s.data());
  v.push_back(nullptr);
  return v;
}

}  // namespace gl::dp
