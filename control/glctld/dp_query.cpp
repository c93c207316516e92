#include "control/glctld/dp_query.hpp"

#include <utility>

namespace gl::glctld {

DpQueryThread::DpQueryThread(std::string socket_path) : path_(std::move(socket_path)) {
  thread_ = std::thread([this] { run(); });
}

DpQueryThread::~DpQueryThread() {
  stop();
}

void DpQueryThread::submit(Job job, Fail fail) {
  bool stopping = false;
  {
    std::lock_guard lock(mu_);
    stopping = stop_;
    if (!stop_ && jobs_.size() < kMaxQueuedJobs) {
      jobs_.emplace_back(std::move(job), std::move(fail));
      cv_.notify_one();
      return;
    }
  }
  if (fail) fail(stopping ? "glctld is stopping" : "too many gldp requests queued; try again");
}

size_t DpQueryThread::queued() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void DpQueryThread::stop() {
  std::deque<std::pair<Job, Fail>> left;
  {
    std::lock_guard lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mu_);
    left.swap(jobs_);
  }
  for (auto& [job, fail] : left)
    if (fail) fail("glctld is stopping");
}

void DpQueryThread::run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    auto [job, fail] = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    if (!client_) {
      auto c = api::Client::connect(path_);
      if (c) {
        client_.emplace(std::move(*c));
      } else if (fail) {
        fail("gldp at " + path_ + ": " + c.error().message);
      }
    }
    if (client_ && !job(*client_)) client_.reset();
    lock.lock();
  }
}

}  // namespace gl::glctld
