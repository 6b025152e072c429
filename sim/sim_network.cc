#include "sim/sim_network.h"

namespace cairn::sim {

bool SimNetwork::Chance(double p) {
  if (p <= 0.0) return false;
  return std::uniform_real_distribution<double>(0.0, 1.0)(*rng_) < p;
}

absl::Duration SimNetwork::RandomDelay() {
  const int64_t lo = absl::ToInt64Microseconds(faults_.min_delay);
  const int64_t hi = absl::ToInt64Microseconds(faults_.max_delay);
  if (hi <= lo) return faults_.min_delay;
  return absl::Microseconds(std::uniform_int_distribution<int64_t>(lo, hi)(*rng_));
}

void SimNetwork::Enqueue(const cairn::v1::LogMessage& message, absl::Time now) {
  absl::Duration delay = RandomDelay();
  if (Chance(faults_.spike)) {
    delay = absl::Microseconds(std::uniform_int_distribution<int64_t>(
        0, absl::ToInt64Microseconds(faults_.spike_delay))(*rng_));
  }
  queue_.push(InFlight{now + delay, next_sequence_++, message});
}

void SimNetwork::Send(const cairn::v1::LogMessage& message, absl::Time now) {
  ++sent_;
  auto lossy = faults_.lossy_links.find({message.from(), message.to()});
  if (IsCut(message.from(), message.to()) || Chance(faults_.drop) ||
      (lossy != faults_.lossy_links.end() && Chance(lossy->second))) {
    ++dropped_;
    return;
  }
  Enqueue(message, now);
  if (Chance(faults_.duplicate)) {
    ++duplicated_;
    Enqueue(message, now);
  }
}

std::optional<cairn::v1::LogMessage> SimNetwork::Pop(absl::Time now) {
  while (!queue_.empty() && queue_.top().due <= now) {
    // priority_queue::top() is const; the copy is the price of std's API.
    cairn::v1::LogMessage message = queue_.top().message;
    queue_.pop();
    if (IsCut(message.from(), message.to())) {
      ++dropped_;
      continue;
    }
    ++delivered_;
    return message;
  }
  return std::nullopt;
}

}  // namespace cairn::sim
