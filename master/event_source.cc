#include "master/event_source.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace cairn::master {

const recovery::SegmentInfo* HistoryEventSource::SegmentAt(
    uint64_t position) const {
  for (const recovery::SegmentInfo& s : archive_->segments()) {
    if (s.first_position <= position && position <= s.last_position) return &s;
  }
  return nullptr;
}

uint64_t HistoryEventSource::Oldest(const recovery::LogBounds& bounds) const {
  uint64_t oldest = bounds.first;
  for (const recovery::SegmentInfo& s : archive_->segments()) {
    if (!s.gap.has_value()) oldest = std::min(oldest, s.first_position);
  }
  return oldest;
}

absl::StatusOr<uint64_t> HistoryEventSource::OldestRetained() {
  ASSIGN_OR_RETURN(recovery::LogBounds bounds, log_->Bounds());
  return Oldest(bounds);
}

LostPositions HistoryEventSource::LostFrom(
    uint64_t position, uint64_t through,
    const recovery::LogBounds& bounds) const {
  // The loss ends where the next retained range begins.
  std::optional<uint64_t> next_retained;
  auto consider = [&](uint64_t first) {
    if (first > position && (!next_retained || first < *next_retained)) {
      next_retained = first;
    }
  };
  for (const recovery::SegmentInfo& s : archive_->segments()) {
    if (!s.gap.has_value()) consider(s.first_position);
  }
  if (bounds.first <= bounds.last) consider(bounds.first);

  LostPositions lost;
  lost.first = position;
  lost.last = next_retained ? *next_retained - 1 : std::max(position, through);
  lost.oldest_retained = Oldest(bounds);
  lost.below_oldest = position < lost.oldest_retained;
  if (!lost.below_oldest) {
    // Name the whole gap: it begins after the retained range before it.
    uint64_t previous_end = 0;
    for (const recovery::SegmentInfo& s : archive_->segments()) {
      if (!s.gap.has_value() && s.last_position < position) {
        previous_end = std::max(previous_end, s.last_position);
      }
    }
    if (bounds.first <= bounds.last && bounds.last < position) {
      previous_end = std::max(previous_end, bounds.last);
    }
    if (previous_end > 0) lost.first = previous_end + 1;
  }
  const recovery::SegmentInfo* gap = SegmentAt(position);
  if (gap != nullptr && gap->gap.has_value()) {
    // A gap the archive recorded says why and where the history is instead.
    lost.message =
        std::string(recovery::GapError(
                        *gap, absl::StrCat("events from position ", position))
                        .message());
  } else if (lost.below_oldest) {
    lost.message = absl::StrCat(
        "positions ", lost.first, "..", lost.last,
        " are no longer retained on this master (deleted by history "
        "retention or log truncation); the oldest retained position is ",
        lost.oldest_retained);
  } else {
    lost.message = absl::StrCat(
        "positions ", lost.first, "..", lost.last,
        " are a gap in this master's history (in neither its archive nor its "
        "log, e.g. it installed a peer's snapshot after missing them); the "
        "other masters' archives may still hold them");
  }
  return lost;
}

absl::StatusOr<EventPage> HistoryEventSource::Read(uint64_t from,
                                                   uint64_t through,
                                                   size_t max_positions) {
  EventPage page;
  page.applied = Applied();
  page.next = from;
  through = std::min(through, page.applied);
  if (from == 0 || from > through) return page;
  const uint64_t span = std::max<size_t>(max_positions, 1) - 1;
  const uint64_t end = through - from > span ? from + span : through;

  ASSIGN_OR_RETURN(recovery::LogBounds bounds, log_->Bounds());
  bool refreshed = false;
  uint64_t cursor = from;
  while (cursor <= end) {
    // The archive first: it is immutable, and holds what was truncated. A
    // gap segment holds nothing: its positions are lost (below) unless the
    // log still has them.
    const recovery::SegmentInfo* segment = SegmentAt(cursor);
    if (segment != nullptr && !segment->gap.has_value()) {
      const uint64_t to = std::min(end, segment->last_position);
      ASSIGN_OR_RETURN(std::vector<recovery::ArchivedEntry> entries,
                       archive_->Read(cursor, to));
      for (recovery::ArchivedEntry& e : entries) {
        page.entries.push_back({e.position, e.index, std::move(e.data)});
      }
      cursor = to + 1;
      continue;
    }
    if (bounds.first <= cursor && cursor <= bounds.last) {
      const uint64_t to = std::min(end, bounds.last);
      absl::StatusOr<std::vector<recovery::LogEntry>> entries =
          log_->Read(cursor, to);
      if (absl::IsOutOfRange(entries.status())) {
        // Truncated meanwhile (the log's own thread truncates): the archive
        // took those positions first; look again, once.
        if (refreshed) {
          page.lost = LostFrom(cursor, through, bounds);
          break;
        }
        refreshed = true;
        ASSIGN_OR_RETURN(bounds, log_->Bounds());
        continue;
      }
      if (!entries.ok()) return entries.status();
      for (recovery::LogEntry& e : *entries) {
        page.entries.push_back(std::move(e));
      }
      cursor = to + 1;
      continue;
    }
    page.lost = LostFrom(cursor, through, bounds);
    break;
  }
  page.next = cursor;
  return page;
}

}  // namespace cairn::master
