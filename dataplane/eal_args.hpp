// eal_args.hpp — how every Goldilocks DPDK process starts its EAL.
//
// Purpose: one place that decides hugepages vs. --no-huge --in-memory, a unique
// --file-prefix per process, and log level, so that gldp, gl-pktgen and the benchmarks
// all behave the same on a machine with or without hugepages.
// Thread-safety: call before rte_eal_init, from the main thread. Complexity: trivial.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gl::dp {

// True when /dev/hugepages (or another hugetlbfs mount) exists and has free pages.
bool hugepages_usable();

// EAL arguments for a process called `prog` whose PMD/worker cores are `lcores`
// (DPDK list syntax, e.g. "0,1"; the first is the main lcore). Adds a unique
// --file-prefix ("gl-<prog>-<pid>"), --in-memory when hugepages are usable and
// --no-huge --no-shconf -m <mem_mb> when not, when `extra` has --no-huge, or when the
// environment sets GL_NO_HUGE=1 (so no runtime files are left behind either way),
// --no-pci unless `want_pci`, and the user's extra arguments last so they win.
std::vector<std::string> eal_args(std::string_view prog, std::string_view lcores,
                                  const std::vector<std::string>& extra, bool want_pci = false,
                                  unsigned mem_mb = 1024);

// True when `extra` sets the cores itself (-l, -c or --lcores, e.g. --lcores 0@0,1@1,2@1 to
// map several lcores onto one CPU); eal_args() then leaves out its own -l.
bool user_sets_cores(const std::vector<std::string>& extra);

// rte_eal_cleanup() plus removal of the empty runtime directory the EAL leaves.
void eal_cleanup();

// argv-style view over a vector of strings (valid while `args` lives).
std::vector<char*> to_argv(std::vector<std::string>& args);

}  // namespace gl::dp
