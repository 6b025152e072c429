// Node: one member of the replicated log — its Replica (acceptor + learner),
// its Proposer (used when it leads), and the election timer that decides
// when to campaign. Sans-IO like its parts: an adapter feeds it messages,
// ticks and appends with the current (monotonic) time, and carries out the
// returned Effects (see types.h). The server adapter is log/server.h; the
// deterministic simulation drives Nodes directly (sim/).
//
// Thread safety: none; one thread owns a Node.

#ifndef CAIRN_LOG_NODE_H_
#define CAIRN_LOG_NODE_H_

#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "log/proposer.h"
#include "log/replica.h"
#include "log/storage.h"
#include "log/types.h"

namespace cairn::log {

class Node {
 public:
  // `storage` must outlive the Node.
  Node(const Config& config, Storage* storage);

  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Loads durable state. Returns a storage error (not corruption: that puts
  // the replica into recovery instead).
  absl::Status Start(absl::Time now, Effects* out);

  // A message from a peer (or from this node to itself).
  void Handle(const LogMessage& message, absl::Time now, Effects* out);

  // Call often (every few milliseconds in a server, every step in a
  // simulation): timers live here.
  void Tick(absl::Time now, Effects* out);

  // Appends one entry (the caller's batch of records) to the log. The result,
  // with the entry's position, arrives in Effects::append_results (id = `id`)
  // once the position and all before it are chosen, i.e. durable on a quorum.
  void Append(uint64_t id, std::string entry, absl::Time now, Effects* out);

  // Appends a truncate entry: once chosen, positions < `to` are deleted on
  // every replica.
  void Truncate(uint64_t id, uint64_t to, absl::Time now, Effects* out);

  // Reads learned (chosen) entries in [from, to], at most `limit` positions.
  absl::StatusOr<std::vector<Action>> Read(uint64_t from, uint64_t to,
                                           size_t limit);

  // True while this node is the leader and may serve appends (and reads
  // that must be linearizable): see Proposer::serving().
  bool IsServingLeader(absl::Time now) const {
    return proposer_.serving(now);
  }
  // The node we believe leads (possibly ourselves), if any.
  std::optional<uint32_t> LeaderHint() const;

  const Replica& replica() const { return replica_; }
  const Proposer& proposer() const { return proposer_; }
  const Config& config() const { return config_; }

  // Starts an election now (simulations use this to make proposers duel).
  void TEST_Campaign(absl::Time now, Effects* out);

 private:
  void MaybeCampaign(absl::Time now, Effects* out);
  // Starts an election if our replica votes (else gives up leading).
  void Campaign(absl::Time now, Effects* out);
  absl::Duration RandomElectionTimeout();

  Config config_;
  Replica replica_;
  Proposer proposer_;
  std::mt19937_64 rng_;
  absl::Time started_ = absl::InfinitePast();
  absl::Time last_campaign_ = absl::InfinitePast();
  absl::Duration election_timeout_;
};

}  // namespace cairn::log

#endif  // CAIRN_LOG_NODE_H_
