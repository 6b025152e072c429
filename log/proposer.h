// Proposer: the Multi-Paxos coordinator run by the node that wants to lead
// (sans-IO; see types.h for the Effects contract and docs/log.md).
//
// Lifecycle:
//   kFollower --Campaign()--> kCandidate: phase 1 with a fresh ballot
//     (round above every round seen, node id = ours) for every position from
//     the first one our replica has not learned. Answers may come in pages.
//   kCandidate --quorum of promises--> kFilling: every position up to the
//     highest one any promiser holds is decided: a learned value is kept; else
//     the highest-ballot accepted value is re-proposed; else a NOOP. These go
//     through phase 2 with our ballot.
//   kFilling --all filled--> kLeader: appends are served once the previous
//     leader's lease has certainly expired (we wait lease_duration * (1 +
//     drift) after winning) and while our own lease, renewed by heartbeats a
//     quorum acknowledges, is valid.
//   any --rejection carrying a higher ballot, lease lost, timeout--> kFollower.
//     Demotion is for good: that ballot is never used again; leading again
//     takes a new Campaign() with a higher ballot.
//
// Appends are batched (group commit: one position carries many entries) and
// pipelined (up to max_in_flight positions in phase 2 at once). An append is
// acknowledged when its position and every position before it are chosen.
//
// Thread safety: none; one thread owns a Proposer.

#ifndef CAIRN_LOG_PROPOSER_H_
#define CAIRN_LOG_PROPOSER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "log/types.h"

namespace cairn::log {

class Proposer {
 public:
  enum class Role { kFollower, kCandidate, kFilling, kLeader };

  explicit Proposer(const Config& config);

  Proposer(const Proposer&) = delete;
  Proposer& operator=(const Proposer&) = delete;

  // Starts phase 1 with a ballot whose round exceeds `round_floor` and every
  // round this proposer has seen. `from_position` is the first position our
  // replica has not learned.
  void Campaign(uint64_t from_position, uint64_t round_floor, absl::Time now,
                Effects* out);

  // PromiseResponse, AcceptResponse and HeartbeatResponse messages.
  void Handle(const LogMessage& message, absl::Time now, Effects* out);

  // Retransmits, heartbeats, lease checks, flushes queued appends.
  void Tick(absl::Time now, Effects* out);

  // Queues `entry`; its AppendResult comes later (or at once, kUnavailable,
  // when not serving).
  void Append(uint64_t id, std::string entry, absl::Time now, Effects* out);

  // Queues a truncate entry deleting every position before `to`. Fails with
  // kFailedPrecondition when `to` is past the chosen prefix + 1.
  void Truncate(uint64_t id, uint64_t to, absl::Time now, Effects* out);

  // Makes sure every position up to `position` gets a value: positions past
  // the last proposed one are proposed as NOOPs. Safe because phase 1 showed
  // no value can have been chosen there; needed so a recovering replica that
  // saw a stale accepted value past the chosen prefix can finish. At most
  // `max_fill` positions per call. No-op unless serving.
  void FillThrough(uint64_t position, uint64_t max_fill, absl::Time now,
                   Effects* out);

  // Gives up leadership/candidacy (e.g. our replica promised a higher
  // ballot). Pending appends fail with kUnavailable.
  void StepDown(const std::string& reason, Effects* out);

  Role role() const { return role_; }
  const Ballot& ballot() const { return ballot_; }
  // True when appends are accepted: leader, holes filled, the old lease has
  // expired and our lease is valid.
  bool serving(absl::Time now) const;
  // Every position <= committed() is chosen (leader's view).
  uint64_t committed() const { return committed_; }
  // The next position a new value would take.
  uint64_t next_position() const { return next_position_; }
  uint64_t max_round_seen() const { return max_round_seen_; }
  size_t in_flight() const { return slots_.size(); }
  size_t queued() const { return queue_.size(); }
  absl::Time lease_expiry() const { return lease_expiry_; }
  uint64_t elections_won() const { return elections_won_; }
  // A recovering replica asked for a ballot above ours: the node should
  // campaign again.
  bool recampaign_requested() const { return recampaign_requested_; }

 private:
  struct Pending {
    uint64_t id = 0;
    std::string entry;
    bool truncate = false;
    uint64_t truncate_to = 0;
  };
  struct Slot {
    Action action;  // position, our ballot, value
    std::set<uint32_t> acks;
    bool chosen = false;
    absl::Time last_sent = absl::InfinitePast();
    std::vector<uint64_t> append_ids;  // index i = entry i of the batch
  };

  void HandlePromiseResponse(const LogMessage& m, absl::Time now,
                             Effects* out);
  void HandleAcceptResponse(const LogMessage& m, absl::Time now, Effects* out);
  void HandleHeartbeatResponse(const LogMessage& m, absl::Time now,
                               Effects* out);
  // A reply carried a ballot above ours: this ballot is dead.
  void Demote(const Ballot& higher, Effects* out);
  void StartFilling(absl::Time now, Effects* out);
  void BecomeLeader(absl::Time now, Effects* out);
  void SendAccepts(const std::vector<uint64_t>& positions,
                   const std::set<uint32_t>* skip_acked, absl::Time now,
                   Effects* out);
  void Chosen(const std::vector<uint64_t>& positions, absl::Time now,
              Effects* out);
  void AdvanceCommitted(Effects* out);
  void Flush(absl::Time now, Effects* out);
  void SendHeartbeat(absl::Time now, Effects* out);
  void FailAll(const absl::Status& status, Effects* out);

  Config config_;
  Role role_ = Role::kFollower;
  Ballot ballot_;  // current (or last) ballot; never reused once demoted
  uint64_t max_round_seen_ = 0;

  // Phase 1.
  uint64_t phase1_from_ = 0;
  absl::Time phase1_started_ = absl::InfinitePast();
  std::map<uint32_t, uint64_t> page_from_;  // replica -> outstanding page
  std::map<uint32_t, absl::Time> page_sent_;
  std::set<uint32_t> promised_by_;          // replicas whose answer is whole
  std::map<uint64_t, Action> best_;         // per position, what to propose
  uint64_t fill_end_ = 0;
  uint64_t max_begin_ = 0;

  // Phase 2. Slots are contiguous: committed_ + 1 ... next_position_ - 1.
  std::map<uint64_t, Slot> slots_;
  uint64_t next_position_ = 1;
  uint64_t committed_ = 0;
  absl::Time last_progress_ = absl::InfinitePast();
  std::deque<Pending> queue_;

  // Leadership and lease.
  absl::Time elected_at_ = absl::InfinitePast();
  absl::Time serve_after_ = absl::InfiniteFuture();
  absl::Time lease_expiry_ = absl::InfinitePast();
  bool announced_ = false;
  uint64_t heartbeat_sequence_ = 0;
  absl::Time last_heartbeat_ = absl::InfinitePast();
  std::map<uint64_t, std::pair<absl::Time, std::set<uint32_t>>> heartbeats_;
  uint64_t elections_won_ = 0;
  bool recampaign_requested_ = false;
};

}  // namespace cairn::log

#endif  // CAIRN_LOG_PROPOSER_H_
