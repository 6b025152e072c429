// History: the master's state at any retained point, rebuilt from snapshots,
// the archive and the live log.
//
// Three sources hold the master's history (cairn.v1.Events, one per log
// entry):
//   - the SnapshotStore: the folded state at some positions;
//   - the Archive: entries of positions already truncated from the log;
//   - the live log tail, read through an EntrySource.
// The state at position P is the newest usable snapshot at or before P (or
// the empty state, when history reaches back to position 1), rolled forward
// by MasterState::Apply over the entries after it through P, taken from the
// archive where it covers them and from the log otherwise.
//
// The retained window is [OldestRetainedPosition(), latest]: every position
// in it can be rebuilt, except around the archive's gaps. Below it the
// history is gone (an API answers 410 Gone naming the oldest retained
// position); RebuildAt returns kOutOfRange there.
//
// Gaps (archive.h). A master that was away while the log was truncated past
// its archive continues from a snapshot (installed from a peer) and records
// the positions it never saw as a gap (RecordGap). The history before the
// gap stays queryable; a position inside it, or after it but before the
// first snapshot that follows it, answers kOutOfRange naming the gap, its
// reason, and that the other masters' archives hold that history (GapError;
// an API answers 410 with it). A time whose cut may fall inside a gap (the
// gap's event times are unknown) answers the same way. Positions missing
// with no gap recorded are a hole: kDataLoss when the end of the history
// cannot be reached, kOutOfRange "no longer retained" below it.
//
// Time T: the state at T is the log prefix before the first entry whose
// event time is after T (see archive.h for the clock assumption). It is
// answerable when the retained window starts at position 0 (the empty
// state), or when some retained entry is at or before T; otherwise the
// history that would say what happened before T is gone: kOutOfRange.
//
// Replay fills an event's envelope position/index from where its entry sits
// in the log when the serialized event left them 0, and rejects (kDataLoss)
// an event whose envelope names another place. An event that Apply rejects
// is skipped, exactly as the live fold leaves the state unchanged for it,
// and counted in RebuildResult::events_rejected.
//
// Thread safety: none; one thread uses a History and the stores it points to.

#ifndef CAIRN_RECOVERY_HISTORY_H_
#define CAIRN_RECOVERY_HISTORY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cairn/v1/master.pb.h"
#include "master/state.h"
#include "recovery/archive.h"
#include "recovery/snapshot_store.h"

namespace cairn::recovery {

// One entry of the live log.
struct LogEntry {
  uint64_t position = 0;
  uint32_t index = 0;
  std::string data;  // a serialized cairn.v1.Event
};

// Which positions the live log holds: [first, last]; first == last + 1 when
// it holds none (e.g. first == 1, last == 0 for a new log).
struct LogBounds {
  uint64_t first = 1;
  uint64_t last = 0;
};

// The live log as History reads it. The master adapts
// log::ReplicatedLog (Read(from, to); Status().begin / learned_through);
// tests use an in-memory fake.
class EntrySource {
 public:
  virtual ~EntrySource() = default;

  // The entries at positions [from, to] (to capped at the last learned
  // position), in order. kOutOfRange when positions >= from were truncated;
  // kDataLoss when a stored entry fails its checksum.
  virtual absl::StatusOr<std::vector<LogEntry>> Read(uint64_t from,
                                                     uint64_t to) = 0;

  // The positions the log holds now.
  virtual absl::StatusOr<LogBounds> Bounds() = 0;
};

// The rebuilt state and how it was obtained.
struct RebuildResult {
  master::MasterState state;
  // Every entry at positions <= position is folded in (for a time target,
  // the last position wholly before the cut).
  uint64_t position = 0;
  // The snapshot replay started from (0: the empty state).
  uint64_t snapshot_position = 0;
  uint64_t events_replayed = 0;
  uint64_t events_rejected = 0;
};

// Differences between two states, by id, sorted.
struct StateDiff {
  struct Ids {
    std::vector<std::string> added;
    std::vector<std::string> removed;
    std::vector<std::string> changed;  // present in both, record differs
    bool empty() const {
      return added.empty() && removed.empty() && changed.empty();
    }
  };
  Ids agents;
  Ids frameworks;
  // Live tasks, as "framework_id/task_id". A task that ended and was fully
  // acknowledged leaves the live tasks ("removed") and appears among its
  // framework's completed tasks (the framework is "changed").
  Ids tasks;
  bool empty() const {
    return agents.empty() && frameworks.empty() && tasks.empty();
  }
};

// Computes what changed from `before` to `after`.
StateDiff Diff(const master::MasterState& before,
               const master::MasterState& after);

// How much history to keep (the master's --history_retention and friends).
struct HistoryRetention {
  ArchiveRetention archive;
  // Snapshots to keep at most (newest first); 0 keeps every snapshot that
  // still has retained history after it.
  size_t max_snapshots = 0;
};

class History {
 public:
  // REQUIRES: the pointers outlive the History.
  History(SnapshotStore* snapshots, Archive* archive, EntrySource* log)
      : snapshots_(snapshots), archive_(archive), log_(log) {}

  // The first position whose state can be rebuilt (0: the empty state before
  // position 1 is still reachable), looking back from the end of the history
  // across gaps but not across holes (missing positions no gap names).
  // kDataLoss when no retained point can reach the end of the history (a
  // hole between the archive and the log).
  absl::StatusOr<uint64_t> OldestRetainedPosition();

  // The last position of the history (log, archive or snapshot).
  absl::StatusOr<uint64_t> LatestPosition();

  // The state with every entry at positions <= `position` folded in.
  // kOutOfRange when position is below OldestRetainedPosition() (the message
  // names it) or beyond LatestPosition(), or when a gap keeps it from being
  // rebuilt (GapError: the message names the gap); kDataLoss on corruption.
  absl::StatusOr<RebuildResult> RebuildAt(uint64_t position);

  // The state at time `time` (see the file comment). kOutOfRange when the
  // history before `time` is no longer retained, or when the state at
  // `time` may lie inside a gap (GapError); kDataLoss on corruption.
  absl::StatusOr<RebuildResult> RebuildAtTime(absl::Time time);

  // Diff(RebuildAt(from).state, RebuildAt(to).state).
  absl::StatusOr<StateDiff> DiffBetween(uint64_t from, uint64_t to);

  // Archives the log's entries from archive->next_position(log first) through
  // `through` as one sealed segment; the caller may then truncate the log
  // to through + 1. Returns kFailedPrecondition when the log no longer holds
  // the first position to archive (a hole would follow: see RecordGap) or
  // `through` is beyond the log; OK without writing when nothing is left to
  // archive.
  absl::Status ArchiveThrough(uint64_t through);

  // Records as a gap (Archive::RecordGap) the positions that neither the
  // archive nor the log holds, from the archive's end up to `through`:
  // [archive last + 1, min(through, log first - 1)]. Call it when this
  // master continues from a snapshot at or after `through` (installed from a
  // peer, or written while the log was truncated before it archived): the
  // archive then continues after the gap, and queries in it answer
  // kOutOfRange naming the gap. `reason` says what happened, for the
  // operator. Returns OK without writing when nothing is missing, or when
  // the archive is empty (it begins wherever the log does; what lies before
  // is simply not retained). kFailedPrecondition when no snapshot is at or
  // after `through` (nothing after the gap could be rebuilt); I/O errors.
  absl::Status RecordGap(uint64_t through, absl::string_view reason,
                         absl::Time now);

  // Applies retention: archive segments first (never beyond the newest
  // snapshot), then snapshots no retained history follows (never the
  // newest), then the snapshot count. Returns segments + snapshots deleted.
  absl::StatusOr<int> ApplyRetention(const HistoryRetention& policy,
                                     absl::Time now);

 private:
  struct Interval {
    uint64_t first = 0;
    uint64_t last = 0;
  };
  struct Window {
    uint64_t oldest = 0;  // oldest rebuildable position
    uint64_t latest = 0;  // last position of the history
    // Positions whose entries are at hand (archive segments other than gaps,
    // and the log), as merged runs, ascending.
    std::vector<Interval> available;
  };
  // Where replay could start for a target state: the snapshot, or the empty
  // state (no snapshot).
  struct Base {
    uint64_t position = 0;
    std::optional<StoredSnapshot> snapshot;
  };
  absl::StatusOr<Window> ComputeWindow();

  // The first position of the available run holding `position`, or
  // position + 1 when the position is not available.
  static uint64_t RunStart(const Window& window, uint64_t position);
  // Whether every position in [first, last] lies in a gap (true if empty).
  bool InGaps(uint64_t first, uint64_t last) const;
  // The newest base at or before `bound` from which every position through
  // `through` (>= bound) is available; nullopt when there is none.
  absl::StatusOr<std::optional<Base>> FindBase(uint64_t bound, uint64_t through,
                                               const Window& window);
  // Why the state at `position` cannot be rebuilt (no base): the gap that
  // holds it or precedes it (kOutOfRange), else kDataLoss.
  absl::Status Unrebuildable(uint64_t position, absl::string_view what);
  // The first entry at a position >= `position`, in the archive or the log.
  absl::StatusOr<std::optional<EntryLocation>> FirstEntryFrom(
      uint64_t position);

  // Folds into result->state the entries after result->snapshot_position
  // through `through`, stopping before `stop` when given. kDataLoss for a
  // position in neither the archive nor the log, or entries out of order.
  absl::Status Replay(uint64_t through, const EntryLocation* stop,
                      RebuildResult* result);
  // Starts from the newest usable base at or before `bound` (FindBase) and
  // replays through `through`; kOutOfRange (Unrebuildable) without one.
  absl::StatusOr<RebuildResult> RebuildFrom(uint64_t bound, uint64_t through,
                                            const EntryLocation* stop,
                                            const Window& window);

  SnapshotStore* snapshots_;
  Archive* archive_;
  EntrySource* log_;
};

// Decodes a log entry into an event with its envelope position/index set
// (see the file comment). kDataLoss when it does not parse or names another
// place.
absl::StatusOr<v1::Event> DecodeEntry(uint64_t position, uint32_t index,
                                      const std::string& data);

}  // namespace cairn::recovery

#endif  // CAIRN_RECOVERY_HISTORY_H_
