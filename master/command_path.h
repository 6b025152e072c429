// CommandPath: how the leading master turns a request into committed events.
//
//   validate against the speculative view -> events (stamped with the
//   envelope: principal, request id, cause, time from the leader's clock)
//   -> one log entry per event, appended in order (the log batches
//   concurrent appends into one position: group commit) -> the owner folds
//   the committed entries into its MasterState (the same Apply a standby
//   runs, in log order) and calls OnApplied() -> the request is answered.
//
// The speculative view is the committed state plus every event proposed but
// not yet applied, in proposal order. Proposals are validated (and the
// allocator runs) against it, so two requests in flight never consume the
// same resources: the second sees what the first took. When nothing is in
// flight the view is reset to a copy of the committed state.
//
// Fail-stop: a failed append (the entry may or may not be in the log) makes
// the path unusable until the owner calls StepDown() and later
// BecomeLeader() with a state rebuilt from the log; it never guesses.
// Pending requests then fail with kUnavailable (outcome unknown).
//
// Thread safety: none. One thread (the master's) owns a CommandPath, and
// EventLog::Append must run its callback on that thread (the master posts
// the log's completion back to its own thread).
//
// Invariants:
//  - speculative view == committed state + in-flight events, in order;
//  - a request is answered OK only when every one of its events was
//    appended and the owner applied the log through their positions.

#ifndef CAIRN_MASTER_COMMAND_PATH_H_
#define CAIRN_MASTER_COMMAND_PATH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cairn/v1/master.pb.h"
#include "master/state.h"

namespace cairn::master {

// Where an appended entry was chosen (mirrors log::Position).
struct AppendedAt {
  uint64_t position = 0;
  uint32_t index = 0;
};

// The log as the command path sees it (the master adapts ReplicatedLog;
// tests use a fake).
class EventLog {
 public:
  using AppendDone = std::function<void(absl::StatusOr<AppendedAt>)>;
  virtual ~EventLog() = default;
  // Appends `entry`; `done` runs once, on the CommandPath's thread, in
  // append order: OK with the entry's place once chosen, or an error (the
  // entry may or may not be in the log).
  virtual void Append(std::string entry, AppendDone done) = 0;
};

// Who asked, for the event envelope.
struct CommandContext {
  std::string principal;   // "master" for the master's own decisions
  std::string request_id;  // empty when there is none
  std::optional<v1::EventId> cause;
};

class CommandPath {
 public:
  // Answers one request: OK once its events are committed and applied;
  // kUnavailable when leadership was lost or the log failed first (the
  // events may or may not be in the log).
  using Reply = std::function<void(absl::Status)>;
  // Validates a request against `view` and returns its events (without
  // envelope), or the error to answer with (kInvalidArgument,
  // kFailedPrecondition, ...). An empty list is a barrier: the request is
  // answered once every event proposed before it is applied (at once when
  // nothing is in flight), so an answer that read the view never reveals
  // an event that might still be lost.
  using Decide =
      std::function<absl::StatusOr<std::vector<v1::Event>>(const MasterState&)>;
  // Called once when an append fails; the owner steps down.
  using OnLogFailure = std::function<void(absl::Status)>;

  // REQUIRES: `log` outlives the CommandPath.
  CommandPath(EventLog* log, std::function<absl::Time()> clock,
              OnLogFailure on_log_failure);

  // Starts serving on top of `committed` (the state folded through the
  // log's end). Event times are never earlier than `time_floor` (the latest
  // event time in the log), so they do not go backwards along the log.
  void BecomeLeader(const MasterState& committed, absl::Time time_floor);

  // Stops serving: every pending request gets kUnavailable with `why`.
  void StepDown(const absl::Status& why);

  bool leading() const { return view_.has_value() && !failed_; }

  // The speculative view. REQUIRES: leading().
  const MasterState& view() const { return *view_; }

  // Runs `decide` against the view, stamps and appends its events, and
  // answers through `reply` later (or now, on error). Returns OK when the
  // request was accepted (the reply comes later), or the error `reply`
  // was already called with: kUnavailable when not leading, the decision's
  // error, or kInternal when the view rejects a decided event.
  absl::Status Submit(const CommandContext& context, const Decide& decide,
                      Reply reply);

  // The owner applied every log position <= `position` to its committed
  // state `committed`. Answers the requests now fully applied.
  void OnApplied(uint64_t position, const MasterState& committed);

  // Events appended or in the append queue, not yet applied by the owner.
  size_t in_flight_events() const;
  size_t pending_requests() const { return pending_.size(); }
  uint64_t events_proposed() const { return events_proposed_; }

 private:
  struct Pending {
    Reply reply;
    size_t events = 0;  // 0: a barrier
    size_t appended = 0;        // append callbacks received OK
    uint64_t max_position = 0;  // highest position of its entries
  };

  void OnAppended(uint64_t request, absl::StatusOr<AppendedAt> result);
  // Removes and returns the barriers (requests without events) at the head
  // of pending_: every request before them is done.
  std::vector<Reply> TakeReadyBarriers();
  void Fail(const absl::Status& why);
  absl::Time NextTime();

  EventLog* const log_;
  const std::function<absl::Time()> clock_;
  const OnLogFailure on_log_failure_;

  std::optional<MasterState> view_;  // set while leading
  bool failed_ = false;              // an append failed; awaiting StepDown
  // Bumped by StepDown so late append callbacks of a past term are ignored.
  uint64_t term_ = 0;
  absl::Time last_time_ = absl::InfinitePast();
  uint64_t applied_through_ = 0;
  uint64_t next_request_ = 1;
  std::map<uint64_t, Pending> pending_;  // by request number
  uint64_t events_proposed_ = 0;
};

}  // namespace cairn::master

#endif  // CAIRN_MASTER_COMMAND_PATH_H_
