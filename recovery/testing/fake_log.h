// FakeLog: an in-memory EntrySource for tests: entries appended at
// (position, index), Truncate(to) drops positions < to, positions with no
// entries behave as the log's no-op positions. Not thread-safe.

#ifndef CAIRN_RECOVERY_TESTING_FAKE_LOG_H_
#define CAIRN_RECOVERY_TESTING_FAKE_LOG_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "cairn/v1/master.pb.h"
#include "recovery/history.h"

namespace cairn::recovery::testing {

class FakeLog : public EntrySource {
 public:
  // Stores `event` at its envelope's (position, index). With
  // `strip_envelope` the stored bytes leave position/index 0, as a leader
  // that appends before knowing the position would.
  void Append(const v1::Event& event, bool strip_envelope = false) {
    v1::Event stored = event;
    if (strip_envelope) {
      stored.clear_position();
      stored.clear_index();
    }
    entries_[{event.position(), event.index()}] = stored.SerializeAsString();
    last_ = std::max(last_, event.position());
  }
  // Marks positions through `position` as learned (no-ops included).
  void LearnThrough(uint64_t position) { last_ = std::max(last_, position); }
  // Deletes every position < `to`.
  void Truncate(uint64_t to) {
    entries_.erase(entries_.begin(), entries_.lower_bound({to, 0}));
    first_ = std::max(first_, to);
  }

  absl::StatusOr<std::vector<LogEntry>> Read(uint64_t from,
                                             uint64_t to) override {
    if (from < first_) {
      return absl::OutOfRangeError(
          absl::StrCat("positions before ", first_,
                       " were truncated; first retained ", first_));
    }
    std::vector<LogEntry> out;
    for (auto it = entries_.lower_bound({from, 0});
         it != entries_.end() && it->first.first <= std::min(to, last_); ++it) {
      out.push_back(LogEntry{it->first.first, it->first.second, it->second});
    }
    return out;
  }

  absl::StatusOr<LogBounds> Bounds() override {
    return LogBounds{first_, std::max(last_, first_ - 1)};
  }

  size_t size() const { return entries_.size(); }

 private:
  std::map<std::pair<uint64_t, uint32_t>, std::string> entries_;
  uint64_t first_ = 1;
  uint64_t last_ = 0;
};

}  // namespace cairn::recovery::testing

#endif  // CAIRN_RECOVERY_TESTING_FAKE_LOG_H_
