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

  // The covered run of positions ending at `latest`: [covered_from, latest].
  std::vector<std::pair<uint64_t, uint64_t>> intervals;
  for (const SegmentInfo& s : archive_->segments()) {
    intervals.emplace_back(s.first_position, s.last_position);
  }
  if (bounds.first <= bounds.last) {
    intervals.emplace_back(bounds.first, bounds.last);
  }
  std::sort(intervals.begin(), intervals.end());
  uint64_t covered_from = window.latest + 1;
  for (auto it = intervals.rbegin(); it != intervals.rend(); ++it) {
    if (it->first < covered_from && it->second + 1 >= covered_from) {
      covered_from = it->first;
    }
  }
  // The oldest base replay can start from: the empty state (when history
  // reaches position 1) or a usable snapshot with nothing missing after it.
  if (covered_from <= 1) {
    window.oldest = 0;
    return window;
  }
  ASSIGN_OR_RETURN(std::vector<uint64_t> positions, snapshots_->Positions());
  for (uint64_t p : positions) {
    if (p + 1 < covered_from || p > window.latest) continue;
    absl::StatusOr<StoredSnapshot> snapshot = snapshots_->Read(p);
    if (snapshot.ok()) {
      window.oldest = p;
      return window;
    }
    if (snapshot.status().code() != absl::StatusCode::kDataLoss) {
      return snapshot.status();
    }
  }
  return absl::DataLossError(absl::StrCat(
      "no point of the history can be rebuilt: positions ", covered_from, "..",
      window.latest, " are retained but no usable snapshot is at or after ",
      covered_from - 1));
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
  absl::StatusOr<StoredSnapshot> base = snapshots_->AtOrBefore(bound);
  if (base.ok() && base->position >= window.oldest) {
    absl::StatusOr<master::MasterState> state =
        master::MasterState::FromSnapshot(base->snapshot);
    if (!state.ok()) {
      return absl::DataLossError(absl::StrCat("snapshot at ", base->position,
                                              ": ", state.status().message()));
    }
    result.state = *std::move(state);
    result.snapshot_position = base->position;
  } else if (!base.ok() &&
             base.status().code() != absl::StatusCode::kNotFound) {
    return base.status();
  } else if (window.oldest != 0) {
    return absl::DataLossError(absl::StrCat("no usable snapshot between ",
                                            window.oldest, " and ", bound));
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
      if (s.first_position <= cursor && cursor <= s.last_position) {
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
    return absl::FailedPreconditionError(absl::StrCat(
        "the archive ends at ", next - 1, " but the log begins at ",
        bounds.first, ": positions in between are lost"));
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
