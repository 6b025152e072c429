// RandomEvents: a seeded generator of valid master event sequences for the
// recovery tests (agents come and go, frameworks subscribe, fail over and
// leave, offers are made and declined, tasks launch, change state and are
// acknowledged).
//
// Smaller than master/state_random_test.cc's generator (which is private to
// that test): it covers the event kinds whose effects a point-in-time
// rebuild must reproduce, not every corner of Apply. Every event it returns
// applies cleanly to the state it was generated against; the generator
// applies it itself and keeps that state.
//
// Envelope: positions advance by one entry per event or group several
// events in one position (index 0, 1, ...), times advance by 0..`max_step`
// per position, never backwards.
//
// Thread safety: none.

#ifndef CAIRN_RECOVERY_TESTING_RANDOM_EVENTS_H_
#define CAIRN_RECOVERY_TESTING_RANDOM_EVENTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cairn/v1/master.pb.h"
#include "master/state.h"

namespace cairn::recovery::testing {

// splitmix64: the same sequence on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n). REQUIRES: n > 0.
  uint64_t Uniform(uint64_t n) { return Next() % n; }
  bool Chance(int percent) { return Uniform(100) < uint64_t(percent); }

 private:
  uint64_t state_;
};

class RandomEvents {
 public:
  RandomEvents(uint64_t seed, absl::Time start,
               absl::Duration max_step = absl::Seconds(5));

  // The next valid event, with position, index and time set, already
  // applied to state(). Positions start at `first_position` (1 by default).
  v1::Event Next();

  // Ends the current position: the next event starts a new one.
  void EndPosition() { end_position_ = true; }
  // Skips `count` positions that hold no entry (no-ops in the log).
  void SkipPositions(uint64_t count) {
    position_ += count;
    end_position_ = true;
  }
  void set_first_position(uint64_t position) { position_ = position - 1; }

  const master::MasterState& state() const { return state_; }
  uint64_t position() const { return position_; }

 private:
  std::optional<v1::Event> Propose();
  std::optional<v1::Event> RegisterAgent();
  std::optional<v1::Event> AgentGoesAway();
  std::optional<v1::Event> ReregisterAgent();
  std::optional<v1::Event> Subscribe();
  std::optional<v1::Event> FrameworkTransition();
  std::optional<v1::Event> CreateOffer();
  std::optional<v1::Event> DeclineOffer();
  std::optional<v1::Event> Launch();
  std::optional<v1::Event> UpdateStatus();
  std::optional<v1::Event> Acknowledge();

  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[rng_.Uniform(items.size())];
  }
  std::vector<std::string> AgentsIn(v1::AgentRecord::State state) const;
  std::vector<std::string> FrameworksIn(v1::FrameworkRecord::State state) const;
  std::vector<master::TaskKey> LiveTasks() const;

  Rng rng_;
  master::MasterState state_;
  uint64_t position_ = 0;
  uint32_t index_ = 0;
  bool end_position_ = true;
  absl::Time now_;
  absl::Duration max_step_;
  uint64_t next_id_ = 1;
};

}  // namespace cairn::recovery::testing

#endif  // CAIRN_RECOVERY_TESTING_RANDOM_EVENTS_H_
