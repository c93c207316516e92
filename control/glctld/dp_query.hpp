// dp_query.hpp — glctld's second line to gldp: runtime questions (rule counters, the
// firewall's connections, trace, flush) and the firewall's events, off the daemon's thread.
//
// Purpose: the dpapi client blocks (up to its reply timeout on a hung gldp), and the daemon's
// io_context must keep serving OVSDB and the management API. DpSyncThread owns the line
// that installs policy; this one answers what the management API and the flow exporters
// ask, so a long conntrack dump never delays an install and the other way round. Jobs run
// one at a time, in order, on the thread; each gets a connected api::Client (connected on
// demand, so a glctld without flow export and without questions never connects) or the
// reason there is none. A job that met a transport error (is_transport_error) returns
// false: the client is dropped and the next job connects again.
//
// Thread-safety: submit() and stop() from any thread; jobs run on the query thread and
// hand their results back themselves (glctld posts them to its io_context). Complexity:
// O(1) per submit; the queue is bounded (kMaxQueuedJobs, further jobs fail at once).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "dataplane/api/client.hpp"

namespace gl::glctld {

inline constexpr size_t kMaxQueuedJobs = 256;

class DpQueryThread {
 public:
  // Runs with a connected client; returns false when the link is broken (reconnect).
  using Job = std::function<bool(api::Client& client)>;
  // Runs instead of the job when gldp cannot be reached or the queue is full.
  using Fail = std::function<void(const std::string& error)>;

  explicit DpQueryThread(std::string socket_path);
  ~DpQueryThread();  // stop()
  DpQueryThread(const DpQueryThread&) = delete;
  DpQueryThread& operator=(const DpQueryThread&) = delete;

  // Queues a job (fail runs on the caller's thread when the queue is full or stopped).
  void submit(Job job, Fail fail);
  // Ends the thread after the job in progress; queued jobs are failed ("glctld is
  // stopping"). Idempotent.
  void stop();
  size_t queued() const;

 private:
  void run();

  std::string path_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Job, Fail>> jobs_;
  bool stop_ = false;
  std::optional<api::Client> client_;  // the thread's
  std::thread thread_;
};

}  // namespace gl::glctld
