// TestCluster: a few log Nodes on MemoryStorage wired by an in-memory,
// manually driven network, for unit tests of the protocol core. Time moves
// only when a test advances it; messages move only when a test delivers them,
// optionally through a drop filter. (The randomized, seeded simulation with
// crashes and partitions lives in sim/.)

#ifndef CAIRN_LOG_INTERNAL_TEST_CLUSTER_H_
#define CAIRN_LOG_INTERNAL_TEST_CLUSTER_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/logging.h"
#include "log/memory_storage.h"
#include "log/node.h"

namespace cairn::log::testing {

inline Config FastConfig() {
  Config c;
  c.heartbeat_interval = absl::Milliseconds(20);
  c.lease_duration = absl::Milliseconds(100);
  c.election_timeout = absl::Milliseconds(150);
  c.retransmit_interval = absl::Milliseconds(40);
  c.fetch_interval = absl::Milliseconds(1);
  c.fetch_timeout = absl::Milliseconds(50);
  c.recover_interval = absl::Milliseconds(30);
  // One position per append unless a test says otherwise.
  c.pipeline_min_entries = 1;
  return c;
}

class TestCluster {
 public:
  explicit TestCluster(int n, Config base = FastConfig()) : base_(base) {
    for (int i = 1; i <= n; ++i) base_.replicas.push_back(i);
    for (int i = 1; i <= n; ++i) {
      storage_[i] = std::make_unique<MemoryStorage>();
      Restart(i);
    }
  }

  absl::Time now = absl::UnixEpoch() + absl::Seconds(1000);
  std::deque<LogMessage> network;
  std::map<uint64_t, AppendResult> results;
  std::vector<std::pair<uint32_t, LeadershipChange>> leadership;
  // Returns true to drop a message; consulted when a message is delivered.
  std::function<bool(const LogMessage&)> drop;
  // Every message ever delivered, for assertions.
  std::vector<LogMessage> delivered;
  // Called after each delivered message has been handled.
  std::function<void(const LogMessage&)> observer;

  Node& node(uint32_t id) { return *nodes_.at(id); }
  MemoryStorage& storage(uint32_t id) { return *storage_.at(id); }
  bool alive(uint32_t id) const { return nodes_.count(id) > 0; }
  const Config& config() const { return base_; }

  // Carries out Effects per the contract: write, then send.
  void Apply(uint32_t id, Effects e) {
    if (!e.write.empty()) CHECK_OK(storage_[id]->Write(e.write, e.sync));
    for (auto& m : e.messages) network.push_back(std::move(m));
    for (auto& r : e.append_results) results[r.id] = r;
    for (auto& l : e.leadership) leadership.push_back({id, l});
  }

  void Crash(uint32_t id) {
    nodes_.erase(id);
    storage_[id]->SimulateCrash();
  }

  void Restart(uint32_t id) {
    Config c = base_;
    c.node_id = id;
    c.seed = id;
    nodes_[id] = std::make_unique<Node>(c, storage_[id].get());
    Effects e;
    CHECK_OK(nodes_[id]->Start(now, &e));
    Apply(id, std::move(e));
  }

  // Delivers queued messages (and those they cause) until none are left.
  void DeliverAll(int max_messages = 1000000) {
    while (!network.empty() && max_messages-- > 0) {
      LogMessage m = std::move(network.front());
      network.pop_front();
      if (drop && drop(m)) continue;
      if (!alive(m.to())) continue;
      delivered.push_back(m);
      Effects e;
      nodes_[m.to()]->Handle(m, now, &e);
      Apply(m.to(), std::move(e));
      if (observer) observer(m);
    }
  }

  void TickAll() {
    for (auto& [id, n] : nodes_) {
      Effects e;
      n->Tick(now, &e);
      Apply(id, std::move(e));
    }
  }

  // Advances time by `d` in `step`s, ticking and delivering at each step.
  void Advance(absl::Duration d, absl::Duration step = absl::Milliseconds(5)) {
    const absl::Time until = now + d;
    while (now < until) {
      now += step;
      TickAll();
      DeliverAll();
    }
  }

  // Runs until some node serves as leader; returns its id (0 if none within
  // `limit`).
  uint32_t WaitForLeader(absl::Duration limit = absl::Seconds(10)) {
    const absl::Time until = now + limit;
    while (now < until) {
      for (auto& [id, n] : nodes_) {
        if (n->IsServingLeader(now)) return id;
      }
      Advance(absl::Milliseconds(5));
    }
    return 0;
  }

  uint64_t Append(uint32_t id, std::string entry) {
    const uint64_t append_id = ++next_append_id_;
    Effects e;
    nodes_[id]->Append(append_id, std::move(entry), now, &e);
    Apply(id, std::move(e));
    return append_id;
  }

  // The chosen values a replica has learned, by reading its storage.
  std::vector<Action> Learned(uint32_t id) {
    auto r = storage_[id]->ReadRange(0, ~0ull, 1 << 20);
    CHECK_OK(r.status());
    std::vector<Action> out;
    for (auto& a : *r) {
      if (a.learned()) out.push_back(a);
    }
    return out;
  }

 private:
  Config base_;
  std::map<uint32_t, std::unique_ptr<MemoryStorage>> storage_;
  std::map<uint32_t, std::unique_ptr<Node>> nodes_;
  uint64_t next_append_id_ = 0;
};

}  // namespace cairn::log::testing

#endif  // CAIRN_LOG_INTERNAL_TEST_CLUSTER_H_
