// Metrics: one registry of counters, gauges and timers per process, shared
// by every component of that process (master, allocator, log adapter, agent),
// exported two ways:
//
//   - Snapshot(): a flat JSON object in the shape of Mesos's
//     /metrics/snapshot — Mesos-style path names ("master/tasks_running")
//     as keys, numbers as JSON numbers, and for a timer "<name>" (the latest
//     sample) plus "<name>/count", "/min", "/max", "/p50", "/p90", "/p95",
//     "/p99", "/p999" and "/p9999" over its window, in milliseconds (like
//     Mesos's "registrar/state_store_ms/p99").
//   - Prometheus(): the Prometheus text exposition format 0.0.4, with HELP
//     and TYPE lines, labels instead of name-encoded ids, and timers as
//     histograms in seconds (_bucket{le=...} cumulative, le="+Inf", _sum,
//     _count).
//
// docs/metrics.md describes the endpoints and the master's keys.
//
//   monitoring::Registry registry;
//   monitoring::Counter* runs = registry.AddCounter(
//       "allocator/mesos/allocation_runs", "Allocation runs.");
//   monitoring::Timer* store = registry.AddTimer(
//       "registrar/state_store_ms", "Append-to-commit latency.");
//   registry.AddGaugeCallback("master/elected", "1 on the leader.",
//                             [&] { return leading.load() ? 1 : 0; });
//   registry.AddGauge("allocator/mesos/offer_filters/roles/<role>/active",
//                     "Active decline filters.", {{"role", "web"}})->Set(3);
//   runs->Increment();
//   store->Record(absl::Milliseconds(4));
//   std::string json = registry.Snapshot();
//   std::string text = registry.Prometheus();
//
// Names. A metric's name is a Mesos-style path: segments separated by '/',
// each made of [A-Za-z0-9_.-], or a whole segment "<label>" naming one of
// the metric's labels. In the JSON key the placeholder becomes the label's
// value ('%' and '/' in it percent-encoded so the path stays unambiguous);
// in Prometheus the placeholder segment is dropped and the value travels as
// a label. Every label must have a placeholder, so JSON keys are unique.
// The Prometheus name is derived deterministically by PrometheusName().
//
// Invariants (a violation is a programming error and CHECK-fails): a name
// is registered with one kind and one label-name set; two names never map
// to one Prometheus family with different kinds or label names; a timer's
// name ends in "_ms"; label names match [A-Za-z_][A-Za-z0-9_]*, do not start
// with "__" and are not "le".
//
// Thread safety: every method of Registry, Counter, Gauge and Timer is safe
// from any thread. Metrics are never removed: the pointers Add*() return
// stay valid for the registry's lifetime. Gauge callbacks and scrape hooks
// run on whichever thread scrapes (an HTTP thread, typically), without any
// registry lock held; they must be thread-safe themselves (read atomics, or
// take a short lock) and must not block for long. They may read other
// metrics, but must not outlive what they capture: the owner stops the
// scrapers (its HTTP server) before destroying what callbacks read.
//
// Uses std::mutex, not absl::Mutex: Debian's abseil is not instrumented
// for ThreadSanitizer.

#ifndef CAIRN_MONITORING_METRICS_H_
#define CAIRN_MONITORING_METRICS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cairn::monitoring {

// Label name -> value, e.g. {{"role", "web"}}. Order does not matter.
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class MetricKind { kCounter, kGauge, kTimer };

// The Prometheus name of a metric named `name` (see the file comment):
// "cairn_" + the path without "<label>" segments, '/' and every character
// outside [A-Za-z0-9_] turned into '_'; then a final "_secs" becomes
// "_seconds", a timer's final "_ms" becomes "_seconds", and a counter gets
// "_total" unless it already ends so.
//   "master/tasks_running"                 -> cairn_master_tasks_running
//   "allocator/mesos/allocation_runs"      -> ..._allocation_runs_total
//   "registrar/state_store_ms" (timer)     ->
//   cairn_registrar_state_store_seconds
//   "allocator/mesos/offer_filters/roles/<role>/active"
//                                 ->
//                                 cairn_allocator_mesos_offer_filters_roles_active
std::string PrometheusName(absl::string_view name, MetricKind kind);

// A monotonically increasing count. Lock-free.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment(uint64_t n = 1) {
    value_.fetch_add(n, std::memory_order_relaxed);
  }
  // Raises the count to `total` if that is higher; never lowers it. For
  // counts kept elsewhere (a component's own monotonic counters) that are
  // copied in from a scrape hook.
  void AdvanceTo(uint64_t total);
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// An instantaneous value: either set (Set/Add, lock-free) or, for a gauge
// made by AddGaugeCallback, computed by its callback at every scrape.
class Gauge {
 public:
  Gauge() = default;
  explicit Gauge(std::function<double()> read) : read_(std::move(read)) {}
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  // Ignored by callback gauges.
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta);
  // The set value, or the callback's answer (computed now, on this thread).
  double value() const;

 private:
  const std::function<double()> read_;  // immutable after construction
  std::atomic<double> value_{0};
};

struct TimerOptions {
  // Percentiles cover at most the latest `window_samples` samples, and of
  // those only the ones recorded within `window` of the scrape.
  size_t window_samples = 1000;
  absl::Duration window = absl::Hours(1);
  // Upper bounds of the Prometheus histogram buckets, in seconds, strictly
  // increasing and finite (+Inf is implied).
  std::vector<double> buckets_seconds = DefaultBuckets();

  // 100 us .. 10 s, roughly 1-2.5-5 per decade.
  static std::vector<double> DefaultBuckets();
};

// Windowed statistics of a timer, in milliseconds. Percentiles interpolate
// linearly between the two closest ranks of the sorted samples.
struct TimerStats {
  uint64_t count = 0;  // samples in the window; the rest is 0 when 0
  double last_ms = 0;  // the latest sample (in or out of the window)
  double min_ms = 0;
  double max_ms = 0;
  double p50_ms = 0;
  double p90_ms = 0;
  double p95_ms = 0;
  double p99_ms = 0;
  double p999_ms = 0;
  double p9999_ms = 0;
};

// Durations: windowed percentiles (for the JSON snapshot) and a histogram
// over the whole lifetime (for Prometheus). Record() takes a short lock.
class Timer {
 public:
  // REQUIRES: options.window_samples > 0; buckets as TimerOptions says.
  Timer(TimerOptions options, std::function<absl::Time()> clock);
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Records one duration (negative ones count as zero).
  void Record(absl::Duration duration);

  TimerStats Stats() const;

  // The lifetime histogram: bucket_counts[i] counts samples <= bounds[i]
  // (cumulative, as Prometheus wants), then count and sum.
  struct Histogram {
    std::vector<double> bounds_seconds;
    std::vector<uint64_t> bucket_counts;  // cumulative, one per bound
    uint64_t count = 0;                   // the +Inf bucket
    double sum_seconds = 0;
  };
  Histogram GetHistogram() const;

 private:
  struct Sample {
    absl::Time time;
    double ms = 0;
  };

  const TimerOptions options_;
  const std::function<absl::Time()> clock_;
  mutable std::mutex mu_;
  // Guarded by mu_. A ring of the latest samples: ring_[next_] is the
  // oldest once the ring is full.
  std::vector<Sample> ring_;
  size_t next_ = 0;
  double last_ms_ = 0;
  std::vector<uint64_t> buckets_;  // not cumulative; one per bound
  uint64_t count_ = 0;
  double sum_seconds_ = 0;
};

struct RegistryOptions {
  // Timers' windows are measured against this clock.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

class Registry {
 public:
  explicit Registry(RegistryOptions options = {});
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  // Each returns the metric registered under (name, label values), creating
  // it (with `help`, used for the Prometheus HELP line; the first
  // registration's wins) if there is none. CHECK-fails on a broken
  // invariant of the file comment (bad name or label, kind conflict).
  Counter* AddCounter(absl::string_view name, absl::string_view help,
                      const Labels& labels = {});
  Gauge* AddGauge(absl::string_view name, absl::string_view help,
                  const Labels& labels = {});
  // A gauge computed by `read` at every scrape (see Thread safety above).
  // A second registration under the same name and labels keeps the first
  // callback.
  Gauge* AddGaugeCallback(absl::string_view name, absl::string_view help,
                          std::function<double()> read,
                          const Labels& labels = {});
  Timer* AddTimer(absl::string_view name, absl::string_view help,
                  const Labels& labels = {}, TimerOptions options = {});

  // Runs `hook` at the start of every scrape (Snapshot or Prometheus), on
  // the scraping thread, before any value is read: for refreshing many
  // gauges from one source (one status call) at once. Hooks run in the
  // order added; concurrent scrapes may run them concurrently.
  void AddScrapeHook(std::function<void()> hook);

  // The flat JSON object described in the file comment, keys sorted.
  // Non-finite gauge values are written as null.
  std::string Snapshot() const;
  // The Prometheus text exposition (format 0.0.4): families sorted by
  // name, each with HELP and TYPE; label values and HELP text escaped.
  std::string Prometheus() const;

 private:
  struct Entry {
    MetricKind kind = MetricKind::kGauge;
    std::string name;             // the Mesos path, with placeholders
    std::string json_key;         // placeholders replaced
    std::string prometheus_name;  // the family
    std::string help;
    Labels labels;  // sorted by label name
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Timer> timer;
  };

  // Finds or creates the entry; `make` fills in a new entry's metric.
  Entry* FindOrAdd(MetricKind kind, absl::string_view name,
                   absl::string_view help, const Labels& labels,
                   const std::function<void(Entry*)>& make);
  // Runs the scrape hooks and returns the entries (stable pointers).
  std::vector<const Entry*> Collect() const;

  const RegistryOptions options_;
  mutable std::mutex mu_;
  // Guarded by mu_. Keyed by JSON key (unique per name + label values).
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  // Guarded by mu_. Prometheus family -> (kind, sorted label names).
  std::map<std::string, std::pair<MetricKind, std::vector<std::string>>>
      families_;
  std::vector<std::shared_ptr<const std::function<void()>>> hooks_;
};

// The text Prometheus expects for a sample value: integers without a
// fraction, others round-tripping, and "NaN", "+Inf", "-Inf".
std::string FormatPrometheusValue(double value);

// Escapes a label value ('\\', '"', newline) or, with `help`, HELP text
// ('\\', newline) for the Prometheus text format.
std::string EscapePrometheus(absl::string_view text, bool help = false);

}  // namespace cairn::monitoring

#endif  // CAIRN_MONITORING_METRICS_H_
