// SimNetwork: the simulated network between log replicas. One thread owns it;
// every decision (delay, drop, duplicate) is drawn from the simulation's one
// seeded generator, so a seed replays the same deliveries in the same order.
//
// Model:
//  - Each message sent gets a delay drawn uniformly from
//    [min_delay, max_delay]; messages are delivered in (due time, send order)
//    order, so random delays reorder them.
//  - A message may be dropped (probability `drop`) or duplicated (the copy
//    gets its own delay).
//  - Links can be cut per direction (a symmetric partition cuts both). A cut
//    link drops what is sent on it and what is still in flight on it when it
//    is due.
//  - Messages a node sends to itself never enter the network: the cluster
//    delivers them reliably (see log_cluster.h).
//
// Invariant: Pop() never returns a message due after `now`, and returns
// messages in non-decreasing due time.

#ifndef CAIRN_SIM_SIM_NETWORK_H_
#define CAIRN_SIM_SIM_NETWORK_H_

#include <cstdint>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "cairn/v1/log.pb.h"

namespace cairn::sim {

struct NetworkFaults {
  double drop = 0.0;       // probability a message is lost
  double duplicate = 0.0;  // probability a message is delivered twice
  absl::Duration min_delay = absl::Milliseconds(1);
  absl::Duration max_delay = absl::Milliseconds(10);
  // Rare long delays (a retransmission timeout, a stalled connection): with
  // probability `spike` a message takes up to `spike_delay` instead.
  double spike = 0.0;
  absl::Duration spike_delay = absl::Milliseconds(500);
  // Directed links that lose far more than `drop` (from, to) -> probability.
  std::map<std::pair<uint32_t, uint32_t>, double> lossy_links;
};

class SimNetwork {
 public:
  // `rng` must outlive the network.
  explicit SimNetwork(std::mt19937_64* rng) : rng_(rng) {}

  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  void set_faults(const NetworkFaults& faults) { faults_ = faults; }
  const NetworkFaults& faults() const { return faults_; }

  // Puts `message` in flight (or drops it). REQUIRES: from != to.
  void Send(const cairn::v1::LogMessage& message, absl::Time now);

  // Returns the next message due at or before `now`, if any. Messages on a
  // link cut since they were sent are silently dropped.
  std::optional<cairn::v1::LogMessage> Pop(absl::Time now);

  // Partitions: a cut link (from -> to) drops every message on it.
  void Cut(uint32_t from, uint32_t to) { cut_.insert({from, to}); }
  void CutBoth(uint32_t a, uint32_t b) {
    Cut(a, b);
    Cut(b, a);
  }
  void HealAll() { cut_.clear(); }
  bool IsCut(uint32_t from, uint32_t to) const {
    return cut_.count({from, to}) > 0;
  }
  bool partitioned() const { return !cut_.empty(); }

  size_t in_flight() const { return queue_.size(); }
  uint64_t sent() const { return sent_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t duplicated() const { return duplicated_; }
  uint64_t delivered() const { return delivered_; }

 private:
  struct InFlight {
    absl::Time due;
    uint64_t sequence = 0;  // send order: ties in `due` keep it
    cairn::v1::LogMessage message;
  };
  struct Later {
    bool operator()(const InFlight& a, const InFlight& b) const {
      return a.due != b.due ? a.due > b.due : a.sequence > b.sequence;
    }
  };

  absl::Duration RandomDelay();
  bool Chance(double p);
  void Enqueue(const cairn::v1::LogMessage& message, absl::Time now);

  std::mt19937_64* rng_;
  NetworkFaults faults_;
  std::priority_queue<InFlight, std::vector<InFlight>, Later> queue_;
  std::set<std::pair<uint32_t, uint32_t>> cut_;
  uint64_t next_sequence_ = 0;
  uint64_t sent_ = 0;
  uint64_t dropped_ = 0;
  uint64_t duplicated_ = 0;
  uint64_t delivered_ = 0;
};

}  // namespace cairn::sim

#endif  // CAIRN_SIM_SIM_NETWORK_H_
