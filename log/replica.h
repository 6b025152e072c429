// Replica: one acceptor + learner of the replicated log (sans-IO).
//
// Protocol (details in docs/log.md):
//  - Acceptor. Holds one promised ballot for every position (Multi-Paxos).
//    Grants a PromiseRequest whose ballot is >= promised and answers with
//    every action it holds from the requested position on; accepts an
//    AcceptRequest whose ballot is >= promised. Answers leave only after the
//    records they depend on are durable (see types.h).
//  - Learner. Stores chosen values (LearnedMessage, FetchResponse) and tracks
//    the contiguous learned prefix. A truncate entry, once learned, moves
//    `begin` and deletes every position before it.
//  - Catch-up. When a leader's heartbeat shows chosen positions this replica
//    has not learned, it fetches them in ranges, one fetch in flight, rate
//    limited. Fetching never involves ballots, so it never demotes a leader.
//  - Recovery. A replica without metadata is EMPTY and never votes. It asks
//    every peer for its status: a quorum of VOTING peers lets it recover
//    [begin, end] (RECOVERING, still not voting) and then vote; every replica
//    EMPTY (or STARTING) initialises a new log when auto_initialize is on;
//    anything else is refused with a clear status_detail(), and it keeps
//    asking. A checksum mismatch in its own records sends a replica back to
//    RECOVERING for its whole range.
//
// Thread safety: none; one thread owns a Replica.
//
// Invariants (checked by CheckInvariants()):
//  - promised never decreases (it is persisted before any reply uses it);
//  - a learned position is never changed;
//  - a replica whose status is not VOTING sends no PromiseResponse,
//    AcceptResponse or ok HeartbeatResponse.

#ifndef CAIRN_LOG_REPLICA_H_
#define CAIRN_LOG_REPLICA_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "log/storage.h"
#include "log/types.h"

namespace cairn::log {

class Replica {
 public:
  // `storage` must outlive the Replica.
  Replica(const Config& config, Storage* storage);

  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // Loads metadata and scans stored actions. A store without metadata starts
  // EMPTY; a checksum mismatch starts RECOVERING. Returns a non-OK status only
  // when storage itself fails (not for corruption, which is handled).
  absl::Status Start(absl::Time now, Effects* out);

  void Handle(const LogMessage& message, absl::Time now, Effects* out);
  void Tick(absl::Time now, Effects* out);

  Metadata::Status status() const { return metadata_.status(); }
  bool voting() const { return metadata_.status() == Metadata::VOTING; }
  const Ballot& promised() const { return metadata_.promised(); }
  uint64_t begin() const { return metadata_.begin(); }
  // Highest position holding any action (0: none).
  uint64_t end() const { return end_; }
  // Every position in [begin, learned_through] is learned (or truncated).
  uint64_t learned_through() const { return next_unlearned_ - 1; }
  uint64_t next_unlearned() const { return next_unlearned_; }
  // Highest position a leader has told us is chosen.
  uint64_t known_committed() const { return known_committed_; }
  // The leader we last heard a valid heartbeat from, and when.
  std::optional<uint32_t> leader() const { return leader_; }
  absl::Time last_leader_contact() const { return last_leader_contact_; }
  // Human-readable explanation of the current status (why not voting).
  const std::string& status_detail() const { return status_detail_; }
  // Highest ballot round seen in any message (for choosing a new ballot).
  uint64_t max_round_seen() const { return max_round_seen_; }

  // Reads learned actions in [from, to], at most `limit`. Unlearned positions
  // are skipped. kDataLoss on a checksum mismatch (and the replica starts
  // recovering).
  absl::StatusOr<std::vector<Action>> ReadLearned(uint64_t from, uint64_t to,
                                                  size_t limit);

  // Persists that this node's proposer uses ballot round `round`, so a
  // restarted proposer never reuses it. Call before the first
  // PromiseRequest of that round is sent (same Effects).
  void RecordProposerRound(uint64_t round, Effects* out);

  // While RECOVERING: the last position that must be learned before voting.
  uint64_t recover_end() const { return metadata_.recover_end(); }

  // CHECK-fails if an invariant of the in-memory state is broken.
  void CheckInvariants() const;

 private:
  void HandlePromise(const LogMessage& m, absl::Time now, Effects* out);
  void HandleAccept(const LogMessage& m, absl::Time now, Effects* out);
  void HandleLearned(const LogMessage& m, Effects* out);
  void HandleHeartbeat(const LogMessage& m, absl::Time now, Effects* out);
  void HandleFetch(const LogMessage& m, Effects* out);
  void HandleFetchResponse(const LogMessage& m, absl::Time now, Effects* out);
  void HandleRecover(const LogMessage& m, Effects* out);
  void HandleRecoverResponse(const LogMessage& m, absl::Time now,
                             Effects* out);

  // Stores a chosen action (idempotent) and applies truncation.
  void Learn(const Action& action, Effects* out);
  void AdvanceLearnedPrefix();
  void ApplyTruncation(uint64_t to, Effects* out);
  void ObserveBallot(const Ballot& b);
  void PersistMetadata(Effects* out);
  // A stored record failed its checksum: stop voting, re-fetch everything.
  void EnterRecoveryAfterCorruption(uint64_t position, Effects* out);
  void MaybeFinishRecovery(Effects* out);
  void MaybeFetch(absl::Time now, Effects* out);
  // Verifies the next scrub_batch records' checksums (see Config).
  void Scrub(absl::Time now, Effects* out);

  Config config_;
  Storage* storage_;

  Metadata metadata_;
  // First position >= begin that this replica has not learned.
  uint64_t next_unlearned_ = 1;
  // Learned positions >= next_unlearned_ (sparse, from out-of-order learning).
  std::set<uint64_t> learned_beyond_;
  uint64_t end_ = 0;
  uint64_t known_committed_ = 0;
  uint64_t max_round_seen_ = 0;

  std::optional<uint32_t> leader_;
  absl::Time last_leader_contact_ = absl::InfinitePast();

  // Catch-up.
  bool fetch_in_flight_ = false;
  absl::Time fetch_sent_ = absl::InfinitePast();
  uint32_t fetch_peer_index_ = 0;

  // Recovery round: answers from peers to our latest RecoverRequest.
  std::map<uint32_t, cairn::v1::RecoverResponse> recover_answers_;
  absl::Time last_recover_request_ = absl::InfinitePast();
  absl::Time recover_not_before_ = absl::InfinitePast();
  std::string status_detail_;

  // Scrubbing.
  uint64_t scrub_cursor_ = 0;
  absl::Time last_scrub_ = absl::InfinitePast();
};

}  // namespace cairn::log

#endif  // CAIRN_LOG_REPLICA_H_
