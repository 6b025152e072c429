// EventSource: the master's events by log position, as the history API
// (events_api.h) pages through them: from the archive of truncated history
// and from the live log, capped at what this master has folded.
//
// Retention: a master retains the events of positions [OldestRetained(),
// Applied()] except for gaps: positions this master's archive and log both
// lack (e.g. a master that was down long installed a peer's snapshot and
// never saw the positions before it). Read() never skips lost positions
// silently: a page ends where they begin and names them (EventPage::lost).
//
// Thread safety: none. The master calls every method on its master thread,
// which owns the archive (recovery/archive.h is not thread-safe either).

#ifndef CAIRN_MASTER_EVENT_SOURCE_H_
#define CAIRN_MASTER_EVENT_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "recovery/archive.h"
#include "recovery/history.h"

namespace cairn::master {

// Positions [first, last] whose events this master does not hold.
struct LostPositions {
  uint64_t first = 0;
  uint64_t last = 0;
  // The oldest position this master retains, when the read was made.
  uint64_t oldest_retained = 0;
  // True when the positions are below oldest_retained (deleted by retention
  // or truncation); false for a gap between retained positions.
  bool below_oldest = false;
  // Says which, for an error answer.
  std::string message;
};

// A bounded read of the events of positions [from, next).
struct EventPage {
  // Serialized cairn.v1.Events in log order (no-op positions hold none).
  std::vector<recovery::LogEntry> entries;
  // The first position not covered by this page: read on from here.
  uint64_t next = 0;
  // The master's applied position when the page was read.
  uint64_t applied = 0;
  // Set when the positions from `next` on are lost; the page stops there.
  std::optional<LostPositions> lost;
};

class EventSource {
 public:
  virtual ~EventSource() = default;

  // Every position <= Applied() is folded into this master's state.
  virtual uint64_t Applied() = 0;

  // The first position whose events this master still holds (Applied() + 1
  // when it holds none; 1 when nothing was ever deleted). Errors: the log's
  // (kUnavailable when it is stopping).
  virtual absl::StatusOr<uint64_t> OldestRetained() = 0;

  // The events of positions [from, min(through, Applied())], at most
  // `max_positions` (>= 1) positions of them. `next` is from when the range
  // is empty. Errors: kDataLoss when a stored entry fails its checksum, the
  // log's kUnavailable / kDeadlineExceeded when it is busy or stopping.
  virtual absl::StatusOr<EventPage> Read(uint64_t from, uint64_t through,
                                         size_t max_positions) = 0;
};

// The master's EventSource: its archive and its log replica.
class HistoryEventSource : public EventSource {
 public:
  // `applied` returns the master's applied position (called on the master
  // thread). REQUIRES: the pointers outlive this object.
  HistoryEventSource(recovery::Archive* archive, recovery::EntrySource* log,
                     std::function<uint64_t()> applied)
      : archive_(archive), log_(log), applied_(std::move(applied)) {}

  uint64_t Applied() override { return applied_(); }
  absl::StatusOr<uint64_t> OldestRetained() override;
  absl::StatusOr<EventPage> Read(uint64_t from, uint64_t through,
                                 size_t max_positions) override;

 private:
  // The sealed segment covering `position`, or nullptr.
  const recovery::SegmentInfo* SegmentAt(uint64_t position) const;
  // Describes the lost positions starting at `position`.
  LostPositions LostFrom(uint64_t position, uint64_t through,
                         const recovery::LogBounds& bounds) const;
  uint64_t Oldest(const recovery::LogBounds& bounds) const;

  recovery::Archive* const archive_;
  recovery::EntrySource* const log_;
  const std::function<uint64_t()> applied_;
};

}  // namespace cairn::master

#endif  // CAIRN_MASTER_EVENT_SOURCE_H_
