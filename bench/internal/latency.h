// Latency samples and their percentiles.
//
// Percentiles use the nearest-rank method on the sorted samples: p50 of
// {1,2,3,4} is 2, p99 of 100 samples is the 99th smallest.
//
// Thread safety: a plain value; one thread at a time.

#ifndef CAIRN_BENCH_INTERNAL_LATENCY_H_
#define CAIRN_BENCH_INTERNAL_LATENCY_H_

#include <cstddef>
#include <vector>

namespace cairn::bench {

class LatencySamples {
 public:
  void Reserve(size_t n) { us_.reserve(n); }
  void Add(double us) {
    us_.push_back(us);
    sorted_ = false;
  }
  void Merge(const LatencySamples& other);

  size_t count() const { return us_.size(); }
  // Returns the q-th quantile (0 < q <= 1) in microseconds, or 0 when empty.
  double Quantile(double q);
  double Mean() const;

 private:
  std::vector<double> us_;
  bool sorted_ = true;
};

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_INTERNAL_LATENCY_H_
