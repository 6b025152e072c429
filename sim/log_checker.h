// LogChecker: the simulation's global invariants over everything the
// replicas write and send, checked as events happen (one thread).
//
//  1. Agreement: a position is never learned with two different values,
//     across every replica, every incarnation and every wipe. Fed from each
//     learned Action written to any storage and each LearnedMessage sent.
//  2. Acknowledged appends: an acknowledged (position, index) holds the
//     appended value in the globally learned value at that position; one
//     leader incarnation acknowledges in submission and position order.
//  3. Non-voting replicas never vote: a replica whose status was not VOTING
//     when it handled a message (or ticked) emits no PromiseResponse, no
//     AcceptResponse and no HeartbeatResponse with ok = true.
//  4. Promised never decreases in a storage's durable metadata, nor in what
//     a replica writes, except across a wipe.
//
// The first violation is kept (failure()); later ones are ignored, since
// they are usually consequences of the first.

#ifndef CAIRN_SIM_LOG_CHECKER_H_
#define CAIRN_SIM_LOG_CHECKER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cairn/v1/log.pb.h"
#include "log/types.h"

namespace cairn::sim {

// True when `a` and `b` are the same log value (kind, entries, truncate_to).
bool SameValue(const cairn::v1::Value& a, const cairn::v1::Value& b);
// A short human-readable form of a value, for failure messages.
std::string ValueString(const cairn::v1::Value& v);

class LogChecker {
 public:
  explicit LogChecker(const std::vector<uint32_t>& replicas);

  // ---- Agreement ----
  // `action` was stored as learned by `node` or announced as chosen in a
  // LearnedMessage from `node`; `source` names which, for the report.
  void OnLearned(uint32_t node, const cairn::v1::Action& action,
                 const char* source);

  // ---- Voting ----
  // `node` emitted `messages` while handling one input; `status_before` was
  // its replica's status when the input arrived.
  void OnEmitted(uint32_t node, cairn::v1::Metadata::Status status_before,
                 const std::vector<cairn::v1::LogMessage>& messages,
                 const char* input);

  // ---- Promised ----
  // `node` wrote `batch` to its storage with `sync`.
  void OnWrite(uint32_t node, const log::WriteBatch& batch, bool sync);
  // `node` lost power; `durable` is its storage's metadata after the crash.
  void OnCrash(uint32_t node, const std::optional<cairn::v1::Metadata>& durable);
  // `node`'s disk was replaced by an empty one.
  void OnWipe(uint32_t node);
  // `node` restarted; `promised` is what its replica loaded.
  void OnRestart(uint32_t node, const cairn::v1::Ballot& promised);

  // ---- Acknowledged appends ----
  // The leader incarnation `leader_key` acknowledged the append submitted to
  // it as its `submit_seq`-th request, holding `value`, at (position, index).
  void OnAppendAcked(uint64_t leader_key, uint64_t submit_seq,
                     const std::string& value, uint64_t position,
                     uint32_t index);

  // Records a failure found elsewhere (end-of-run checks, liveness).
  void Fail(const std::string& message);

  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }

  // Every position ever learned anywhere, with its value.
  const std::map<uint64_t, cairn::v1::Value>& learned() const {
    return learned_;
  }
  uint64_t max_learned_position() const {
    return learned_.empty() ? 0 : learned_.rbegin()->first;
  }
  // Votes (promise/accept responses, ok heartbeat responses) emitted by each
  // node while not VOTING (always 0 unless failed()), and the number of
  // inputs each node handled while not VOTING (to show the check ran).
  uint64_t inputs_while_not_voting(uint32_t node) const;

 private:
  struct PromisedMarks {
    cairn::v1::Ballot last_written;  // newest metadata written (maybe unsynced)
    cairn::v1::Ballot durable;       // newest metadata made durable
  };
  struct AckOrder {
    uint64_t submit_seq = 0;
    uint64_t position = 0;
    uint32_t index = 0;
  };

  std::map<uint64_t, cairn::v1::Value> learned_;
  std::map<uint64_t, std::string> learned_by_;  // who first learned it
  std::map<uint32_t, PromisedMarks> promised_;
  std::map<uint64_t, AckOrder> last_ack_;
  std::map<uint32_t, uint64_t> inputs_while_not_voting_;
  std::string failure_;
};

}  // namespace cairn::sim

#endif  // CAIRN_SIM_LOG_CHECKER_H_
