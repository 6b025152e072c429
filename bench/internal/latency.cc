#include "bench/internal/latency.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace cairn::bench {

void LatencySamples::Merge(const LatencySamples& other) {
  us_.insert(us_.end(), other.us_.begin(), other.us_.end());
  sorted_ = false;
}

double LatencySamples::Quantile(double q) {
  if (us_.empty()) return 0;
  if (!sorted_) {
    std::sort(us_.begin(), us_.end());
    sorted_ = true;
  }
  size_t rank = static_cast<size_t>(std::ceil(q * us_.size()));
  rank = std::clamp<size_t>(rank, 1, us_.size());
  return us_[rank - 1];
}

double LatencySamples::Mean() const {
  if (us_.empty()) return 0;
  return std::accumulate(us_.begin(), us_.end(), 0.0) / us_.size();
}

}  // namespace cairn::bench
