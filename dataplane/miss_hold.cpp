#include "dataplane/miss_hold.hpp"

namespace gl::dp {

bool MissHold::on_miss(const flow::FlowKey& key, rte_mbuf* pkt, uint64_t now) {
  if (!enabled()) return false;
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    if (keys_.size() >= cfg_.max_keys) {
      ++ctr_.overflow;
      return false;
    }
    it = keys_.emplace(key, Entry{}).first;
    it->second.first = now;
    order_.push_back(&*it);
    return false;  // the first miss goes up and opens the window
  }
  Entry& e = it->second;
  if (e.uncached_until != 0) {
    if (now < e.uncached_until) return false;
    // The uncached period is over: this miss opens a new window.
    e.uncached_until = 0;
    e.first = now;
    return false;
  }
  if (window_over(e, now)) return false;  // sweep will close it; do not hold more
  if (e.held.size() >= cfg_.per_key || n_held_ >= cfg_.max_held) {
    ++ctr_.overflow;
    return false;
  }
  e.held.push_back(pkt);
  ++n_held_;
  ++ctr_.held;
  return true;
}

void MissHold::sweep(uint64_t now, size_t budget,
                     const std::function<bool(const flow::FlowKey&)>& has_flow,
                     const std::function<void(const flow::FlowKey&, Packets)>& run,
                     const std::function<void(const flow::FlowKey&, Packets)>& send_up) {
  for (size_t visited = 0; visited < budget && !order_.empty(); ++visited) {
    Map::value_type* it = order_.front();
    order_.pop_front();
    Entry& e = it->second;
    bool forget = false;
    if (e.uncached_until != 0) {
      forget = now >= e.uncached_until;
    } else if (has_flow(it->first)) {
      if (e.held.empty()) {
        forget = true;
      } else if (e.flow_seen == 0) {
        e.flow_seen = now;  // run them at a later sweep, after the first packet's execute
      } else if (now - e.flow_seen >= cfg_.settle) {
        ctr_.run += e.held.size();
        n_held_ -= e.held.size();
        run(it->first, e.held);
        forget = true;
      }
    } else if (!enabled() || window_over(e, now)) {
      if (e.held.empty()) {
        forget = true;  // no repeats: nothing to learn about this key
      } else {
        ctr_.sent_up += e.held.size();
        n_held_ -= e.held.size();
        send_up(it->first, e.held);
        e.held.clear();
        e.uncached_until = now + (cfg_.uncached_for ? cfg_.uncached_for : 1);
      }
    }
    if (forget) {
      keys_.erase(it->first);
    } else {
      order_.push_back(it);
    }
  }
}

void MissHold::release_all(const std::function<void(const flow::FlowKey&, Packets)>& send_up) {
  for (auto& [key, e] : keys_) {
    if (e.held.empty()) continue;
    ctr_.sent_up += e.held.size();
    send_up(key, e.held);
  }
  keys_.clear();
  order_.clear();
  n_held_ = 0;
}

}  // namespace gl::dp
