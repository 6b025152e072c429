#include "monitoring/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"

namespace cairn::monitoring {

namespace {

constexpr char kPrefix[] = "cairn_";

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '.' || c == '-';
}

bool IsPlaceholder(absl::string_view segment) {
  return segment.size() > 2 && segment.front() == '<' && segment.back() == '>';
}

bool IsValidLabelName(absl::string_view name) {
  if (name.empty() || absl::StartsWith(name, "__") || name == "le") {
    return false;
  }
  if (!(absl::ascii_isalpha(static_cast<unsigned char>(name[0])) ||
        name[0] == '_')) {
    return false;
  }
  for (char c : name) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

// A label value inside a JSON key's path: '%' and '/' percent-encoded.
std::string EncodeSegment(absl::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '%' || c == '/') {
      absl::StrAppendFormat(&out, "%%%02X", static_cast<unsigned char>(c));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out += "\"";
  return out;
}

std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  return FormatPrometheusValue(value);
}

const char* TypeName(MetricKind kind) {
  switch (kind) {
    case MetricKind::kCounter:
      return "counter";
    case MetricKind::kGauge:
      return "gauge";
    case MetricKind::kTimer:
      return "histogram";
  }
  return "untyped";
}

// R-7 percentile of sorted, non-empty `v`: linear between closest ranks.
double Percentile(const std::vector<double>& v, double q) {
  if (v.size() == 1 || q <= 0) return v.front();
  if (q >= 1) return v.back();
  const double rank = q * static_cast<double>(v.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(rank));
  if (below + 1 >= v.size()) return v.back();
  return v[below] +
         (rank - static_cast<double>(below)) * (v[below + 1] - v[below]);
}

// `{a="x",b="y"}` (empty for no labels), with `extra` (e.g. le) last.
std::string LabelText(const Labels& labels, absl::string_view extra_name = "",
                      absl::string_view extra_value = "") {
  std::vector<std::string> parts;
  for (const auto& [name, value] : labels) {
    parts.push_back(absl::StrCat(name, "=\"", EscapePrometheus(value), "\""));
  }
  if (!extra_name.empty()) {
    parts.push_back(
        absl::StrCat(extra_name, "=\"", EscapePrometheus(extra_value), "\""));
  }
  if (parts.empty()) return "";
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

}  // namespace

// ---- names and formatting ---------------------------------------------------

std::string PrometheusName(absl::string_view name, MetricKind kind) {
  std::vector<std::string> kept;
  for (absl::string_view segment : absl::StrSplit(name, '/')) {
    if (IsPlaceholder(segment)) continue;
    std::string s(segment);
    for (char& c : s) {
      if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_')) {
        c = '_';
      }
    }
    kept.push_back(std::move(s));
  }
  std::string out = absl::StrCat(kPrefix, absl::StrJoin(kept, "_"));
  if (absl::EndsWith(out, "_secs")) {
    out.resize(out.size() - 5);
    out += "_seconds";
  }
  if (kind == MetricKind::kTimer && absl::EndsWith(out, "_ms")) {
    out.resize(out.size() - 3);
    out += "_seconds";
  }
  if (kind == MetricKind::kCounter && !absl::EndsWith(out, "_total")) {
    out += "_total";
  }
  // Prometheus reserves `_total` for counters (promtool rejects it on a
  // gauge); Mesos's resource totals (slave/cpus_total) are capacities.
  if (kind != MetricKind::kCounter && absl::EndsWith(out, "_total")) {
    out.resize(out.size() - 6);
    out += "_capacity";
  }
  return out;
}

std::string FormatPrometheusValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 9.007199254740992e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  // The shortest of %.15g / %.17g that reads back as the same double.
  std::string text = absl::StrFormat("%.15g", value);
  if (std::strtod(text.c_str(), nullptr) != value) {
    text = absl::StrFormat("%.17g", value);
  }
  return text;
}

std::string EscapePrometheus(absl::string_view text, bool help) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && !help) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// ---- Counter, Gauge
// ----------------------------------------------------------

void Counter::AdvanceTo(uint64_t total) {
  uint64_t current = value_.load(std::memory_order_relaxed);
  while (current < total && !value_.compare_exchange_weak(
                                current, total, std::memory_order_relaxed)) {
  }
}

void Gauge::Add(double delta) {
  double current = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(current, current + delta,
                                       std::memory_order_relaxed)) {
  }
}

double Gauge::value() const {
  if (read_) return read_();
  return value_.load(std::memory_order_relaxed);
}

// ---- Timer ------------------------------------------------------------------

std::vector<double> TimerOptions::DefaultBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

Timer::Timer(TimerOptions options, std::function<absl::Time()> clock)
    : options_(std::move(options)),
      clock_(std::move(clock)),
      buckets_(options_.buckets_seconds.size(), 0) {
  CHECK(options_.window_samples > 0) << "a timer needs window_samples > 0";
  for (size_t i = 0; i < options_.buckets_seconds.size(); ++i) {
    CHECK(std::isfinite(options_.buckets_seconds[i]))
        << "histogram bounds must be finite";
    CHECK(i == 0 ||
          options_.buckets_seconds[i - 1] < options_.buckets_seconds[i])
        << "histogram bounds must increase";
  }
  ring_.reserve(std::min<size_t>(options_.window_samples, 1024));
}

void Timer::Record(absl::Duration duration) {
  if (duration < absl::ZeroDuration()) duration = absl::ZeroDuration();
  const double ms = absl::ToDoubleMilliseconds(duration);
  const double seconds = absl::ToDoubleSeconds(duration);
  const absl::Time now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  if (ring_.size() < options_.window_samples) {
    ring_.push_back({now, ms});
  } else {
    ring_[next_] = {now, ms};
    next_ = (next_ + 1) % ring_.size();
  }
  last_ms_ = ms;
  ++count_;
  sum_seconds_ += seconds;
  const auto bound = std::lower_bound(options_.buckets_seconds.begin(),
                                      options_.buckets_seconds.end(), seconds);
  if (bound != options_.buckets_seconds.end()) {
    ++buckets_[bound - options_.buckets_seconds.begin()];
  }
}

TimerStats Timer::Stats() const {
  const absl::Time oldest = clock_() - options_.window;
  std::vector<double> values;
  TimerStats stats;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats.last_ms = last_ms_;
    values.reserve(ring_.size());
    for (const Sample& s : ring_) {
      if (s.time >= oldest) values.push_back(s.ms);
    }
  }
  if (values.empty()) return stats;
  std::sort(values.begin(), values.end());
  stats.count = values.size();
  stats.min_ms = values.front();
  stats.max_ms = values.back();
  stats.p50_ms = Percentile(values, 0.5);
  stats.p90_ms = Percentile(values, 0.9);
  stats.p95_ms = Percentile(values, 0.95);
  stats.p99_ms = Percentile(values, 0.99);
  stats.p999_ms = Percentile(values, 0.999);
  stats.p9999_ms = Percentile(values, 0.9999);
  return stats;
}

Timer::Histogram Timer::GetHistogram() const {
  Histogram h;
  h.bounds_seconds = options_.buckets_seconds;
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t running = 0;
  for (uint64_t n : buckets_) {
    running += n;
    h.bucket_counts.push_back(running);
  }
  h.count = count_;
  h.sum_seconds = sum_seconds_;
  return h;
}

// ---- Registry ---------------------------------------------------------------

Registry::Registry(RegistryOptions options) : options_(std::move(options)) {}

Registry::~Registry() = default;

Registry::Entry* Registry::FindOrAdd(MetricKind kind, absl::string_view name,
                                     absl::string_view help,
                                     const Labels& labels,
                                     const std::function<void(Entry*)>& make) {
  // Validate the name and substitute label values for placeholders.
  CHECK(!name.empty()) << "a metric needs a name";
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    CHECK(IsValidLabelName(sorted[i].first))
        << "metric " << name << ": bad label name '" << sorted[i].first << "'";
    CHECK(i == 0 || sorted[i - 1].first != sorted[i].first)
        << "metric " << name << ": label '" << sorted[i].first << "' twice";
  }
  std::vector<std::string> key_segments;
  size_t placeholders = 0;
  for (absl::string_view segment : absl::StrSplit(name, '/')) {
    CHECK(!segment.empty()) << "metric " << name << ": empty path segment";
    if (IsPlaceholder(segment)) {
      const absl::string_view label = segment.substr(1, segment.size() - 2);
      auto it = std::find_if(sorted.begin(), sorted.end(),
                             [&](const auto& l) { return l.first == label; });
      CHECK(it != sorted.end())
          << "metric " << name << ": no value for label '" << label << "'";
      key_segments.push_back(EncodeSegment(it->second));
      ++placeholders;
      continue;
    }
    for (char c : segment) {
      CHECK(IsNameChar(c)) << "metric " << name << ": bad character '" << c
                           << "'";
    }
    key_segments.emplace_back(segment);
  }
  CHECK(placeholders == sorted.size())
      << "metric " << name << ": every label needs a <label> segment";
  if (kind == MetricKind::kTimer) {
    CHECK(absl::EndsWith(name, "_ms"))
        << "timer " << name << ": a timer's name ends in _ms";
  }
  std::string key = absl::StrJoin(key_segments, "/");
  std::string family = PrometheusName(name, kind);
  std::vector<std::string> label_names;
  for (const auto& l : sorted) label_names.push_back(l.first);

  std::lock_guard<std::mutex> lock(mu_);
  auto found = entries_.find(key);
  if (found != entries_.end()) {
    Entry* entry = found->second.get();
    CHECK(entry->kind == kind && entry->name == name)
        << "metric " << key << " registered twice with different kinds or "
        << "names (" << entry->name << ", " << name << ")";
    return entry;
  }
  auto [fam, inserted] =
      families_.emplace(family, std::make_pair(kind, label_names));
  CHECK(inserted ||
        (fam->second.first == kind && fam->second.second == label_names))
      << "metric " << name << ": Prometheus family " << family
      << " already holds a different kind or label names";
  auto entry = std::make_unique<Entry>();
  entry->kind = kind;
  entry->name = std::string(name);
  entry->json_key = key;
  entry->prometheus_name = family;
  entry->help = std::string(help);
  entry->labels = std::move(sorted);
  make(entry.get());
  Entry* raw = entry.get();
  entries_.emplace(std::move(key), std::move(entry));
  return raw;
}

Counter* Registry::AddCounter(absl::string_view name, absl::string_view help,
                              const Labels& labels) {
  return FindOrAdd(MetricKind::kCounter, name, help, labels,
                   [](Entry* e) { e->counter = std::make_unique<Counter>(); })
      ->counter.get();
}

Gauge* Registry::AddGauge(absl::string_view name, absl::string_view help,
                          const Labels& labels) {
  return FindOrAdd(MetricKind::kGauge, name, help, labels,
                   [](Entry* e) { e->gauge = std::make_unique<Gauge>(); })
      ->gauge.get();
}

Gauge* Registry::AddGaugeCallback(absl::string_view name,
                                  absl::string_view help,
                                  std::function<double()> read,
                                  const Labels& labels) {
  return FindOrAdd(MetricKind::kGauge, name, help, labels,
                   [&read](Entry* e) {
                     e->gauge = std::make_unique<Gauge>(std::move(read));
                   })
      ->gauge.get();
}

Timer* Registry::AddTimer(absl::string_view name, absl::string_view help,
                          const Labels& labels, TimerOptions options) {
  return FindOrAdd(MetricKind::kTimer, name, help, labels,
                   [&](Entry* e) {
                     e->timer = std::make_unique<Timer>(std::move(options),
                                                        options_.clock);
                   })
      ->timer.get();
}

void Registry::AddScrapeHook(std::function<void()> hook) {
  auto shared = std::make_shared<const std::function<void()>>(std::move(hook));
  std::lock_guard<std::mutex> lock(mu_);
  hooks_.push_back(std::move(shared));
}

std::vector<const Registry::Entry*> Registry::Collect() const {
  std::vector<std::shared_ptr<const std::function<void()>>> hooks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hooks = hooks_;
  }
  for (const auto& hook : hooks) (*hook)();
  std::vector<const Entry*> entries;
  std::lock_guard<std::mutex> lock(mu_);
  entries.reserve(entries_.size());
  for (const auto& [key, entry] : entries_) entries.push_back(entry.get());
  return entries;
}

std::string Registry::Snapshot() const {
  // Entries come sorted by key; a timer's "/..." keys sort right after its
  // own, but another metric's key may sort between them, so sort the whole.
  std::vector<std::pair<std::string, std::string>> items;
  for (const Entry* e : Collect()) {
    switch (e->kind) {
      case MetricKind::kCounter:
        items.emplace_back(e->json_key, absl::StrCat(e->counter->value()));
        break;
      case MetricKind::kGauge:
        items.emplace_back(e->json_key, JsonNumber(e->gauge->value()));
        break;
      case MetricKind::kTimer: {
        const TimerStats s = e->timer->Stats();
        const std::string& k = e->json_key;
        items.emplace_back(k + "/count", absl::StrCat(s.count));
        if (s.count == 0) break;
        items.emplace_back(k, JsonNumber(s.last_ms));
        items.emplace_back(k + "/min", JsonNumber(s.min_ms));
        items.emplace_back(k + "/max", JsonNumber(s.max_ms));
        items.emplace_back(k + "/p50", JsonNumber(s.p50_ms));
        items.emplace_back(k + "/p90", JsonNumber(s.p90_ms));
        items.emplace_back(k + "/p95", JsonNumber(s.p95_ms));
        items.emplace_back(k + "/p99", JsonNumber(s.p99_ms));
        items.emplace_back(k + "/p999", JsonNumber(s.p999_ms));
        items.emplace_back(k + "/p9999", JsonNumber(s.p9999_ms));
        break;
      }
    }
  }
  std::sort(items.begin(), items.end());
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ",";
    absl::StrAppend(&out, JsonString(items[i].first), ":", items[i].second);
  }
  out += "}";
  return out;
}

std::string Registry::Prometheus() const {
  std::vector<const Entry*> entries = Collect();
  // Group by family, then by labels.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry* a, const Entry* b) {
                     if (a->prometheus_name != b->prometheus_name) {
                       return a->prometheus_name < b->prometheus_name;
                     }
                     return a->labels < b->labels;
                   });
  std::string out;
  const std::string* family = nullptr;
  for (const Entry* e : entries) {
    const std::string& name = e->prometheus_name;
    if (family == nullptr || *family != name) {
      family = &e->prometheus_name;
      absl::StrAppend(&out, "# HELP ", name, " ",
                      EscapePrometheus(e->help.empty() ? e->name : e->help,
                                       /*help=*/true),
                      "\n# TYPE ", name, " ", TypeName(e->kind), "\n");
    }
    switch (e->kind) {
      case MetricKind::kCounter:
        absl::StrAppend(&out, name, LabelText(e->labels), " ",
                        e->counter->value(), "\n");
        break;
      case MetricKind::kGauge:
        absl::StrAppend(&out, name, LabelText(e->labels), " ",
                        FormatPrometheusValue(e->gauge->value()), "\n");
        break;
      case MetricKind::kTimer: {
        const Timer::Histogram h = e->timer->GetHistogram();
        for (size_t i = 0; i < h.bounds_seconds.size(); ++i) {
          absl::StrAppend(&out, name, "_bucket",
                          LabelText(e->labels, "le",
                                    FormatPrometheusValue(h.bounds_seconds[i])),
                          " ", h.bucket_counts[i], "\n");
        }
        absl::StrAppend(&out, name, "_bucket",
                        LabelText(e->labels, "le", "+Inf"), " ", h.count, "\n");
        absl::StrAppend(&out, name, "_sum", LabelText(e->labels), " ",
                        FormatPrometheusValue(h.sum_seconds), "\n");
        absl::StrAppend(&out, name, "_count", LabelText(e->labels), " ",
                        h.count, "\n");
        break;
      }
    }
  }
  return out;
}

}  // namespace cairn::monitoring
