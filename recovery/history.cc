#include "recovery/history.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace cairn::recovery {
namespace {

// Positions read from the live log per call.
constexpr uint64_t kLogChunkPositions = 1024;

bool Before(uint64_t p1, uint32_t i1, uint64_t p2, uint32_t i2) {
  return p1 < p2 || (p1 == p2 && i1 < i2);
}

std::string Deterministic(const google::protobuf::Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

void DiffMaps(const std::map<std::string, std::string>& before,
              const std::map<std::string, std::string>& after,
              StateDiff::Ids* out) {
  for (const auto& [id, bytes] : after) {
    auto it = before.find(id);
    if (it == before.end()) {
      out->added.push_back(id);
    } else if (it->second != bytes) {
      out->changed.push_back(id);
    }
  }
  for (const auto& [id, bytes] : before) {
    if (after.count(id) == 0) out->removed.push_back(id);
  }
}

struct Keyed {
  std::map<std::string, std::string> agents, frameworks, tasks;
};

Keyed KeyRecords(const master::MasterState& state) {
  const v1::MasterSnapshot snapshot = state.ToSnapshot();
  Keyed out;
  for (const auto& a : snapshot.agents()) {
    out.agents[a.info().id().value()] = Deterministic(a);
  }
  for (const auto& f : snapshot.frameworks()) {
    out.frameworks[f.info().id().value()] = Deterministic(f);
  }
  for (const auto& t : snapshot.tasks()) {
    out.tasks[absl::StrCat(t.task().framework_id().value(), "/",
                           t.task().task_id().value())] = Deterministic(t);
  }
  return out;
}

}  // namespace

StateDiff Diff(const master::MasterState& before,
               const master::MasterState& after) {
  Keyed b = KeyRecords(before);
  Keyed a = KeyRecords(after);
  StateDiff diff;
  DiffMaps(b.agents, a.agents, &diff.agents);
  DiffMaps(b.frameworks, a.frameworks, &diff.frameworks);
  DiffMaps(b.tasks, a.tasks, &diff.tasks);
  return diff;
}

absl::StatusOr<v1::Event> DecodeEntry(uint64_t position, uint32_t index,
                                      const std::string& data) {
  v1::Event event;
  if (!event.ParseFromString(data)) {
    return absl::DataLossError(absl::StrCat("entry ", position, ":", index,
                                            " is not a cairn.v1.Event"));
  }
  if (event.position() == 0 && event.index() == 0) {
    event.set_position(position);
    event.set_index(index);
  } else if (event.position() != position || event.index() != index) {
    return absl::DataLossError(absl::StrCat(
        "entry ", position, ":", index, " holds an event that names ",
        event.position(), ":", event.index()));
  }
  return event;
}

// ---- The retained window
// ------------------------------------------------------

absl::StatusOr<History::Window> History::ComputeWindow() {
  ASSIGN_OR_RETURN(LogBounds bounds, log_->Bounds());
  absl::StatusOr<StoredSnapshot> newest = snapshots_->Latest();
  if (!newest.ok() && newest.status().code() != absl::StatusCode::kNotFound) {
    return newest.status();
  }
  Window window;
  window.latest = bounds.last;
  if (!archive_->empty()) {
    window.latest = std::max(window.latest, archive_->last_position());
  }
  if (newest.ok()) window.latest = std::max(window.latest, newest->position);

  std::vector<Interval> intervals;
  for (const SegmentInfo& s : archive_->segments()) {
    if (!s.gap.has_value()) {
      intervals.push_back({s.first_position, s.last_position});
    }
  }
  if (bounds.first <= bounds.last) {
    intervals.push_back({bounds.first, bounds.last});
  }
  std::sort(
      intervals.begin(), intervals.end(),
      [](const Interval& a, const Interval& b) { return a.first < b.first; });
  for (const Interval& i : intervals) {
    if (!window.available.empty() &&
        i.first <= window.available.back().last + 1) {
      window.available.back().last =
          std::max(window.available.back().last, i.last);
    } else {
      window.available.push_back(i);
    }
  }

  // Walk down from the end of the history. Every position in [top + 1,
  // latest] is rebuildable, available (waiting for a base further down) or
  // in a gap; `oldest` is the lowest rebuildable one found so far.
  ASSIGN_OR_RETURN(std::vector<uint64_t> positions, snapshots_->Positions());
  auto usable = [&](uint64_t p) -> absl::StatusOr<bool> {
    absl::StatusOr<StoredSnapshot> snapshot = snapshots_->Read(p);
    if (snapshot.ok()) return true;
    if (snapshot.status().code() == absl::StatusCode::kDataLoss) return false;
    return snapshot.status();
  };
  std::optional<uint64_t> oldest;
  uint64_t top = window.latest;
  for (;;) {
    // [run_start, top] is available; replay from the empty state reaches it
    // when it starts at position 1.
    const uint64_t run_start = RunStart(window, top);
    if (run_start <= 1) {
      oldest = 0;
      break;
    }
    // The oldest usable snapshot from which [.., top] is all available.
    for (uint64_t p : positions) {
      if (p + 1 < run_start || p > top) continue;
      ASSIGN_OR_RETURN(bool ok, usable(p));
      if (ok) {
        oldest = p;
        break;
      }
    }
    if (!oldest.has_value()) {
      return absl::DataLossError(absl::StrCat(
          "no point of the history can be rebuilt: positions ", run_start, "..",
          window.latest, " are retained but no usable snapshot is at or after ",
          run_start - 1));
    }
    // Below run_start: missing positions down to the previous run. Cross
    // them only where they are gaps; a usable snapshot among them is a
    // rebuildable point of its own.
    auto below = std::partition_point(
        window.available.begin(), window.available.end(),
        [&](const Interval& i) { return i.last < run_start - 1; });
    const uint64_t previous_end =
        below == window.available.begin() ? 0 : std::prev(below)->last;
    uint64_t x = run_start - 1;  // [x + 1, run_start - 1] crossed
    bool blocked = false;
    for (auto it = positions.rbegin(); it != positions.rend(); ++it) {
      const uint64_t p = *it;
      if (p > x || p <= previous_end) continue;
      if (!InGaps(p + 1, x)) {
        blocked = true;
        break;
      }
      ASSIGN_OR_RETURN(bool ok, usable(p));
      if (!ok) continue;
      oldest = p;
      x = p - 1;
    }
    if (blocked || !InGaps(previous_end + 1, x)) break;
    if (previous_end == 0) {
      oldest = 0;  // only gaps before: the empty state at 0 is known
      break;
    }
    top = previous_end;
  }
  window.oldest = *oldest;
  return window;
}

uint64_t History::RunStart(const Window& window, uint64_t position) {
  auto it = std::partition_point(
      window.available.begin(), window.available.end(),
      [&](const Interval& i) { return i.last < position; });
  if (it == window.available.end() || it->first > position) {
    return position + 1;
  }
  return it->first;
}

bool History::InGaps(uint64_t first, uint64_t last) const {
  uint64_t next = first;  // [first, next - 1] is in gaps
  for (const SegmentInfo& s : archive_->segments()) {
    if (next > last) break;
    if (!s.gap.has_value() || s.last_position < next) continue;
    if (s.first_position > next) return false;
    next = s.last_position + 1;
  }
  return next > last;
}

absl::StatusOr<std::optional<History::Base>> History::FindBase(
    uint64_t bound, uint64_t through, const Window& window) {
  const uint64_t run_start = RunStart(window, through);
  absl::StatusOr<StoredSnapshot> snapshot = snapshots_->AtOrBefore(bound);
  if (snapshot.ok() && snapshot->position + 1 >= run_start) {
    const uint64_t position = snapshot->position;
    return std::optional<Base>(Base{position, *std::move(snapshot)});
  }
  if (!snapshot.ok() &&
      snapshot.status().code() != absl::StatusCode::kNotFound) {
    return snapshot.status();
  }
  if (run_start <= 1) return std::optional<Base>(Base{});
  return std::optional<Base>();
}

absl::Status History::Unrebuildable(uint64_t position, absl::string_view what) {
  if (const SegmentInfo* gap = archive_->GapAt(position); gap != nullptr) {
    return GapError(*gap, what);
  }
  const SegmentInfo* before = nullptr;
  for (const SegmentInfo& s : archive_->segments()) {
    if (s.gap.has_value() && s.last_position < position) before = &s;
  }
  if (before != nullptr) {
    return GapError(*before, absl::StrCat(what,
                                          " (no snapshot lies between "
                                          "the gap and it)"));
  }
  return absl::DataLossError(absl::StrCat(
      what,
      ": no usable snapshot and no archived or logged entries lead to "
      "it"));
}

absl::StatusOr<std::optional<EntryLocation>> History::FirstEntryFrom(
    uint64_t position) {
  ASSIGN_OR_RETURN(std::optional<EntryLocation> archived,
                   archive_->FirstEntryFrom(position));
  if (archived.has_value()) return archived;
  ASSIGN_OR_RETURN(LogBounds bounds, log_->Bounds());
  for (uint64_t from = std::max(position, bounds.first); from <= bounds.last;
       from += kLogChunkPositions) {
    const uint64_t to = std::min(bounds.last, from + kLogChunkPositions - 1);
    ASSIGN_OR_RETURN(std::vector<LogEntry> entries, log_->Read(from, to));
    if (!entries.empty()) {
      return std::optional<EntryLocation>(
          EntryLocation{entries.front().position, entries.front().index});
    }
  }
  return std::optional<EntryLocation>();
}

absl::StatusOr<uint64_t> History::OldestRetainedPosition() {
  ASSIGN_OR_RETURN(Window window, ComputeWindow());
  return window.oldest;
}

absl::StatusOr<uint64_t> History::LatestPosition() {
  ASSIGN_OR_RETURN(Window window, ComputeWindow());
  return window.latest;
}

// ---- Rebuilding
// -----------------------------------------------------------------

absl::StatusOr<RebuildResult> History::RebuildAt(uint64_t position) {
  ASSIGN_OR_RETURN(Window window, ComputeWindow());
  if (position < window.oldest) {
    if (const SegmentInfo* gap = archive_->GapAt(position); gap != nullptr) {
      return GapError(*gap, absl::StrCat("position ", position));
    }
    return absl::OutOfRangeError(
        absl::StrCat("position ", position,
                     " is no longer retained; the oldest retained position is ",
                     window.oldest));
  }
  if (position > window.latest) {
    return absl::OutOfRangeError(
        absl::StrCat("position ", position,
                     " is beyond the history's last position ", window.latest));
  }
  return RebuildFrom(position, position, nullptr, window);
}

absl::StatusOr<RebuildResult> History::RebuildAtTime(absl::Time time) {
  ASSIGN_OR_RETURN(Window window, ComputeWindow());
  // The first retained entry, and the first one after `time` (the cut).
  ASSIGN_OR_RETURN(std::optional<EntryLocation> first,
                   archive_->FirstEntryAfter(absl::InfinitePast()));
  ASSIGN_OR_RETURN(std::optional<EntryLocation> cut,
                   archive_->FirstEntryAfter(time));
  if (!first.has_value() || !cut.has_value()) {
    ASSIGN_OR_RETURN(LogBounds bounds, log_->Bounds());
    uint64_t from = std::max(bounds.first, archive_->next_position(1));
    while (!cut.has_value() && from <= bounds.last) {
      uint64_t to = std::min(bounds.last, from + kLogChunkPositions - 1);
      ASSIGN_OR_RETURN(std::vector<LogEntry> entries, log_->Read(from, to));
      for (const LogEntry& entry : entries) {
        ASSIGN_OR_RETURN(v1::Event event,
                         DecodeEntry(entry.position, entry.index, entry.data));
        if (!first.has_value())
          first = EntryLocation{entry.position, entry.index};
        if (master::ToTime(event.time()) > time) {
          cut = EntryLocation{entry.position, entry.index};
          break;
        }
      }
      from = to + 1;
    }
  }
  const bool witnessed =
      first.has_value() &&
      (!cut.has_value() ||
       Before(first->position, first->index, cut->position, cut->index));
  if (window.oldest > 0 && !witnessed) {
    return absl::OutOfRangeError(
        absl::StrCat("the history before ", absl::FormatTime(time),
                     " is no longer retained; the oldest retained position is ",
                     window.oldest));
  }
  // The events of a gap before the cut have unknown times: the cut may
  // belong inside it. It does not when an entry after the gap (and before
  // the cut) is at or before `time`, or the gap was recorded by then.
  const uint64_t cut_position =
      cut.has_value() ? cut->position : window.latest + 1;
  const SegmentInfo* gap = nullptr;
  for (const SegmentInfo& s : archive_->segments()) {
    if (s.gap.has_value() && s.last_position < cut_position) gap = &s;
  }
  if (gap != nullptr && gap->gap->recorded > time) {
    ASSIGN_OR_RETURN(std::optional<EntryLocation> after,
                     FirstEntryFrom(gap->last_position + 1));
    const bool resolved =
        after.has_value() &&
        (!cut.has_value() ||
         Before(after->position, after->index, cut->position, cut->index));
    if (!resolved) {
      return GapError(*gap,
                      absl::StrCat("the state at ", absl::FormatTime(time),
                                   " may fall inside the gap"));
    }
  }
  if (!cut.has_value()) {
    return RebuildFrom(window.latest, window.latest, nullptr, window);
  }
  if (cut->position - 1 < window.oldest) {
    return absl::OutOfRangeError(absl::StrCat(
        "the state at ", absl::FormatTime(time), " is before position ",
        cut->position, "; the oldest retained position is ", window.oldest));
  }
  const EntryLocation stop = *cut;
  ASSIGN_OR_RETURN(
      RebuildResult result,
      RebuildFrom(stop.position - 1, stop.position, &stop, window));
  result.position = stop.position - 1;
  return result;
}

absl::StatusOr<RebuildResult> History::RebuildFrom(uint64_t bound,
                                                   uint64_t through,
                                                   const EntryLocation* stop,
                                                   const Window& window) {
  RebuildResult result;
  ASSIGN_OR_RETURN(std::optional<Base> base, FindBase(bound, through, window));
  if (!base.has_value()) {
    return Unrebuildable(bound, absl::StrCat("the state at position ", bound));
  }
  if (base->snapshot.has_value()) {
    absl::StatusOr<master::MasterState> state =
        master::MasterState::FromSnapshot(base->snapshot->snapshot);
    if (!state.ok()) {
      return absl::DataLossError(absl::StrCat("snapshot at ", base->position,
                                              ": ", state.status().message()));
    }
    result.state = *std::move(state);
    result.snapshot_position = base->position;
  }
  RETURN_IF_ERROR(Replay(through, stop, &result));
  result.position = through;
  return result;
}

absl::Status History::Replay(uint64_t through, const EntryLocation* stop,
                             RebuildResult* result) {
  uint64_t cursor = result->snapshot_position + 1;
  uint64_t last_position = 0;
  uint32_t last_index = 0;
  bool any = false;
  bool stopped = false;
  auto fold = [&](uint64_t position, uint32_t index,
                  const std::string& data) -> absl::Status {
    if (stop != nullptr &&
        !Before(position, index, stop->position, stop->index)) {
      stopped = true;
      return absl::OkStatus();
    }
    if (any && !Before(last_position, last_index, position, index)) {
      return absl::DataLossError(absl::StrCat("entry ", position, ":", index,
                                              " follows ", last_position, ":",
                                              last_index, " out of order"));
    }
    any = true;
    last_position = position;
    last_index = index;
    ASSIGN_OR_RETURN(v1::Event event, DecodeEntry(position, index, data));
    if (result->state.Apply(event).ok()) {
      ++result->events_replayed;
    } else {
      ++result->events_rejected;  // the live fold skipped it too
    }
    return absl::OkStatus();
  };

  ASSIGN_OR_RETURN(LogBounds bounds, log_->Bounds());
  bool refreshed = false;
  while (cursor <= through && !stopped) {
    // The archive first: it is immutable, and covers what was truncated.
    const SegmentInfo* segment = nullptr;
    for (const SegmentInfo& s : archive_->segments()) {
      if (!s.gap.has_value() && s.first_position <= cursor &&
          cursor <= s.last_position) {
        segment = &s;
        break;
      }
    }
    if (segment != nullptr) {
      const uint64_t to = std::min(through, segment->last_position);
      ASSIGN_OR_RETURN(std::vector<ArchivedEntry> entries,
                       archive_->Read(cursor, to));
      for (const ArchivedEntry& e : entries) {
        RETURN_IF_ERROR(fold(e.position, e.index, e.data));
        if (stopped) break;
      }
      cursor = to + 1;
      continue;
    }
    if (bounds.first <= cursor && cursor <= bounds.last) {
      const uint64_t to =
          std::min({through, bounds.last, cursor + kLogChunkPositions - 1});
      absl::StatusOr<std::vector<LogEntry>> entries = log_->Read(cursor, to);
      if (!entries.ok() &&
          entries.status().code() == absl::StatusCode::kOutOfRange &&
          !refreshed) {
        // Truncated meanwhile: it was archived first; look again.
        refreshed = true;
        ASSIGN_OR_RETURN(bounds, log_->Bounds());
        continue;
      }
      if (!entries.ok()) return entries.status();
      for (const LogEntry& e : *entries) {
        RETURN_IF_ERROR(fold(e.position, e.index, e.data));
        if (stopped) break;
      }
      cursor = to + 1;
      continue;
    }
    if (const SegmentInfo* gap = archive_->GapAt(cursor); gap != nullptr) {
      return GapError(*gap, absl::StrCat("replaying position ", cursor));
    }
    return absl::DataLossError(absl::StrCat(
        "position ", cursor, " is in neither the archive nor the log (",
        bounds.first, "..", bounds.last, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<StateDiff> History::DiffBetween(uint64_t from, uint64_t to) {
  ASSIGN_OR_RETURN(RebuildResult before, RebuildAt(from));
  ASSIGN_OR_RETURN(RebuildResult after, RebuildAt(to));
  return Diff(before.state, after.state);
}

// ---- Archiving and retention
// ------------------------------------------------------

absl::Status History::ArchiveThrough(uint64_t through) {
  ASSIGN_OR_RETURN(LogBounds bounds, log_->Bounds());
  const uint64_t next = archive_->next_position(bounds.first);
  if (through < next) return absl::OkStatus();
  if (next < bounds.first) {
    return absl::FailedPreconditionError(
        absl::StrCat("the archive ends at ", next - 1,
                     " but the log begins at ", bounds.first,
                     ": positions in between are in neither (record them as "
                     "a gap once a snapshot covers them)"));
  }
  if (through > bounds.last) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot archive through ", through, ": the log ends at ", bounds.last));
  }
  RETURN_IF_ERROR(archive_->BeginSegment(next));
  for (uint64_t from = next; from <= through; from += kLogChunkPositions) {
    const uint64_t to = std::min(through, from + kLogChunkPositions - 1);
    absl::StatusOr<std::vector<LogEntry>> entries = log_->Read(from, to);
    absl::Status status = entries.status();
    for (size_t i = 0; status.ok() && i < entries->size(); ++i) {
      const LogEntry& entry = (*entries)[i];
      absl::StatusOr<v1::Event> event =
          DecodeEntry(entry.position, entry.index, entry.data);
      status = event.status();
      if (status.ok()) {
        status = archive_->Add(ArchivedEntry{entry.position, entry.index,
                                             master::ToTime(event->time()),
                                             entry.data});
      }
    }
    if (!status.ok()) {
      archive_->Abandon();
      return status;
    }
  }
  return archive_->Seal(through);
}

absl::Status History::RecordGap(uint64_t through, absl::string_view reason,
                                absl::Time now) {
  if (archive_->empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(LogBounds bounds, log_->Bounds());
  const uint64_t first = archive_->last_position() + 1;
  const uint64_t last = std::min(through, bounds.first - 1);
  if (last < first) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<uint64_t> positions, snapshots_->Positions());
  if (positions.empty() || positions.back() < through) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no snapshot at or after position ", through,
        ": the history after a gap through it could not be rebuilt"));
  }
  return archive_->RecordGap(first, last, reason, now);
}

absl::StatusOr<int> History::ApplyRetention(const HistoryRetention& policy,
                                            absl::Time now) {
  absl::StatusOr<StoredSnapshot> newest = snapshots_->Latest();
  if (!newest.ok() && newest.status().code() != absl::StatusCode::kNotFound) {
    return newest.status();
  }
  const uint64_t protect_after = newest.ok() ? newest->position : 0;
  ASSIGN_OR_RETURN(int deleted, archive_->ApplyRetention(policy.archive, now,
                                                         protect_after));
  // Snapshots older than the first retained position (minus one) cannot be
  // rolled forward any more.
  ASSIGN_OR_RETURN(LogBounds bounds, log_->Bounds());
  uint64_t first_retained = bounds.first;
  if (!archive_->empty()) {
    first_retained = std::min(first_retained, archive_->first_position());
  }
  if (first_retained > 1) {
    ASSIGN_OR_RETURN(int n, snapshots_->DeleteBefore(first_retained - 1));
    deleted += n;
  }
  if (policy.max_snapshots > 0) {
    ASSIGN_OR_RETURN(int n, snapshots_->Retain(policy.max_snapshots));
    deleted += n;
  }
  return deleted;
}

}  // namespace cairn::recovery
