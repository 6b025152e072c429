#include "monitoring/metrics.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/http_message.h"
#include "common/json_value.h"
#include "gtest/gtest.h"
#include "monitoring/metrics_http.h"

namespace cairn::monitoring {
namespace {

// A clock the test moves by hand.
class FakeClock {
 public:
  absl::Time Now() const { return now_.load(); }
  void Advance(absl::Duration d) { now_.store(now_.load() + d); }
  std::function<absl::Time()> AsFunction() {
    return [this] { return Now(); };
  }

 private:
  std::atomic<absl::Time> now_{absl::FromUnixSeconds(1700000000)};
};

JsonValue ParseSnapshot(const Registry& registry) {
  absl::StatusOr<JsonValue> json = ParseJson(registry.Snapshot());
  EXPECT_TRUE(json.ok()) << json.status();
  return json.ok() ? *json : JsonValue{};
}

// The number a snapshot key holds; NaN when absent or not a number.
double Number(const JsonValue& json, const std::string& key) {
  const JsonValue* v = json.Find(key);
  if (v == nullptr || v->kind != JsonValue::Kind::kNumber) return std::nan("");
  return std::strtod(v->text.c_str(), nullptr);
}

bool HasLine(const std::string& text, const std::string& line) {
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    if (l == line) return true;
  }
  return false;
}

TEST(PrometheusNameTest, DerivesNamesDeterministically) {
  EXPECT_EQ(PrometheusName("master/tasks_running", MetricKind::kGauge),
            "cairn_master_tasks_running");
  EXPECT_EQ(
      PrometheusName("allocator/mesos/allocation_runs", MetricKind::kCounter),
      "cairn_allocator_mesos_allocation_runs_total");
  EXPECT_EQ(PrometheusName("master/messages_total", MetricKind::kCounter),
            "cairn_master_messages_total");
  EXPECT_EQ(PrometheusName("registrar/state_store_ms", MetricKind::kTimer),
            "cairn_registrar_state_store_seconds");
  EXPECT_EQ(PrometheusName("master/uptime_secs", MetricKind::kGauge),
            "cairn_master_uptime_seconds");
  EXPECT_EQ(PrometheusName("allocator/mesos/offer_filters/roles/<role>/active",
                           MetricKind::kGauge),
            "cairn_allocator_mesos_offer_filters_roles_active");
  EXPECT_EQ(PrometheusName("a.b-c/d", MetricKind::kGauge), "cairn_a_b_c_d");
  // `_total` is the counters' suffix: a gauge's becomes `_capacity`.
  EXPECT_EQ(PrometheusName("slave/cpus_total", MetricKind::kGauge),
            "cairn_slave_cpus_capacity");
}

TEST(CounterTest, IncrementsAndAdvanceToNeverLowers) {
  Registry registry;
  Counter* c = registry.AddCounter("x/events", "Events.");
  c->Increment();
  c->Increment(4);
  EXPECT_EQ(c->value(), 5u);
  c->AdvanceTo(3);
  EXPECT_EQ(c->value(), 5u);
  c->AdvanceTo(9);
  EXPECT_EQ(c->value(), 9u);
  // Registering again returns the same counter.
  EXPECT_EQ(registry.AddCounter("x/events", "ignored"), c);
}

TEST(GaugeTest, CallbackIsEvaluatedAtEveryScrape) {
  Registry registry;
  std::atomic<int> reads{0};
  registry.AddGaugeCallback("x/answer", "The answer.", [&] {
    ++reads;
    return 42.5;
  });
  Gauge* set = registry.AddGauge("x/level", "A level.");
  set->Set(2);
  set->Add(-0.5);
  JsonValue json = ParseSnapshot(registry);
  EXPECT_EQ(Number(json, "x/answer"), 42.5);
  EXPECT_EQ(Number(json, "x/level"), 1.5);
  EXPECT_EQ(reads.load(), 1);
  registry.Prometheus();
  EXPECT_EQ(reads.load(), 2);
}

TEST(GaugeTest, NonFiniteValuesAreNullInJsonAndSpelledInPrometheus) {
  Registry registry;
  registry.AddGaugeCallback("x/nan", "NaN.", [] { return std::nan(""); });
  registry.AddGaugeCallback("x/inf", "Inf.", [] { return 1.0 / 0.0; });
  const std::string json = registry.Snapshot();
  EXPECT_TRUE(absl::StrContains(json, "\"x/nan\":null")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"x/inf\":null")) << json;
  const std::string text = registry.Prometheus();
  EXPECT_TRUE(HasLine(text, "cairn_x_nan NaN")) << text;
  EXPECT_TRUE(HasLine(text, "cairn_x_inf +Inf")) << text;
}

TEST(TimerTest, PercentilesInterpolateBetweenClosestRanks) {
  FakeClock clock;
  Registry registry(RegistryOptions{clock.AsFunction()});
  Timer* t = registry.AddTimer("x/latency_ms", "Latency.");
  for (int i = 100; i >= 1; --i) t->Record(absl::Milliseconds(i));
  const TimerStats s = t->Stats();
  EXPECT_EQ(s.count, 100u);
  EXPECT_DOUBLE_EQ(s.last_ms, 1);
  EXPECT_DOUBLE_EQ(s.min_ms, 1);
  EXPECT_DOUBLE_EQ(s.max_ms, 100);
  // Rank q * (n - 1) between sorted values 1..100.
  EXPECT_DOUBLE_EQ(s.p50_ms, 50.5);
  EXPECT_DOUBLE_EQ(s.p90_ms, 90.1);
  EXPECT_DOUBLE_EQ(s.p99_ms, 99.01);
  EXPECT_NEAR(s.p999_ms, 99.901, 1e-9);
}

TEST(TimerTest, OneSampleIsEveryPercentile) {
  Registry registry;
  Timer* t = registry.AddTimer("x/latency_ms", "Latency.");
  t->Record(absl::Microseconds(2500));
  const TimerStats s = t->Stats();
  EXPECT_EQ(s.count, 1u);
  EXPECT_DOUBLE_EQ(s.p50_ms, 2.5);
  EXPECT_DOUBLE_EQ(s.p9999_ms, 2.5);
}

TEST(TimerTest, WindowKeepsOnlyTheLatestSamples) {
  Registry registry;
  TimerOptions options;
  options.window_samples = 10;
  Timer* t = registry.AddTimer("x/latency_ms", "Latency.", {}, options);
  for (int i = 1; i <= 25; ++i) t->Record(absl::Milliseconds(i));
  const TimerStats s = t->Stats();
  EXPECT_EQ(s.count, 10u);
  EXPECT_DOUBLE_EQ(s.min_ms, 16);
  EXPECT_DOUBLE_EQ(s.max_ms, 25);
  // The histogram still counts every sample.
  EXPECT_EQ(t->GetHistogram().count, 25u);
}

TEST(TimerTest, WindowDropsSamplesOlderThanItsDuration) {
  FakeClock clock;
  Registry registry(RegistryOptions{clock.AsFunction()});
  TimerOptions options;
  options.window = absl::Minutes(1);
  Timer* t = registry.AddTimer("x/latency_ms", "Latency.", {}, options);
  t->Record(absl::Milliseconds(500));
  clock.Advance(absl::Seconds(45));
  t->Record(absl::Milliseconds(7));
  EXPECT_EQ(t->Stats().count, 2u);
  clock.Advance(absl::Seconds(30));  // the first is 75 s old now
  TimerStats s = t->Stats();
  EXPECT_EQ(s.count, 1u);
  EXPECT_DOUBLE_EQ(s.max_ms, 7);
  clock.Advance(absl::Minutes(5));
  s = t->Stats();
  EXPECT_EQ(s.count, 0u);
  EXPECT_DOUBLE_EQ(s.last_ms, 7);  // the latest sample is still known
}

TEST(SnapshotTest, IsFlatJsonWithMesosTimerKeys) {
  Registry registry;
  registry.AddCounter("allocator/mesos/allocation_runs", "Runs.")->Increment(3);
  registry.AddGauge("master/elected", "Elected.")->Set(1);
  Timer* t = registry.AddTimer("registrar/state_store_ms", "Store latency.");
  t->Record(absl::Milliseconds(4));
  t->Record(absl::Milliseconds(6));
  JsonValue json = ParseSnapshot(registry);
  ASSERT_EQ(json.kind, JsonValue::Kind::kObject);
  for (const auto& [key, value] : json.fields) {
    EXPECT_EQ(value.kind, JsonValue::Kind::kNumber) << key;
  }
  EXPECT_EQ(json.Find("allocator/mesos/allocation_runs")->text, "3");
  EXPECT_EQ(json.Find("master/elected")->text, "1");
  EXPECT_EQ(Number(json, "registrar/state_store_ms"), 6);
  EXPECT_EQ(Number(json, "registrar/state_store_ms/count"), 2);
  EXPECT_EQ(Number(json, "registrar/state_store_ms/min"), 4);
  EXPECT_EQ(Number(json, "registrar/state_store_ms/max"), 6);
  EXPECT_EQ(Number(json, "registrar/state_store_ms/p50"), 5);
  for (const char* suffix : {"/p90", "/p95", "/p99", "/p999", "/p9999"}) {
    EXPECT_NE(json.Find(absl::StrCat("registrar/state_store_ms", suffix)),
              nullptr)
        << suffix;
  }
  // Keys are sorted.
  for (size_t i = 1; i < json.fields.size(); ++i) {
    EXPECT_LT(json.fields[i - 1].first, json.fields[i].first);
  }
}

TEST(SnapshotTest, EmptyTimerHasOnlyItsCount) {
  Registry registry;
  registry.AddTimer("registrar/state_store_ms", "Store latency.");
  JsonValue json = ParseSnapshot(registry);
  EXPECT_EQ(Number(json, "registrar/state_store_ms/count"), 0);
  EXPECT_EQ(json.Find("registrar/state_store_ms"), nullptr);
  EXPECT_EQ(json.Find("registrar/state_store_ms/p99"), nullptr);
}

TEST(LabelsTest, BecomePathSegmentsInJsonAndLabelsInPrometheus) {
  Registry registry;
  const std::string name = "allocator/mesos/offer_filters/roles/<role>/active";
  registry.AddGauge(name, "Filters.", {{"role", "web"}})->Set(2);
  registry.AddGauge(name, "Filters.", {{"role", "a/b%c"}})->Set(1);
  JsonValue json = ParseSnapshot(registry);
  EXPECT_EQ(Number(json, "allocator/mesos/offer_filters/roles/web/active"), 2);
  EXPECT_EQ(
      Number(json, "allocator/mesos/offer_filters/roles/a%2Fb%25c/active"), 1);
  const std::string text = registry.Prometheus();
  const std::string family = "cairn_allocator_mesos_offer_filters_roles_active";
  EXPECT_TRUE(HasLine(text, family + "{role=\"a/b%c\"} 1")) << text;
  EXPECT_TRUE(HasLine(text, family + "{role=\"web\"} 2")) << text;
  // One HELP and one TYPE line for the family.
  EXPECT_EQ(text.find("# TYPE " + family), text.rfind("# TYPE " + family));
  EXPECT_EQ(text.find("# HELP " + family), text.rfind("# HELP " + family));
}

TEST(PrometheusTest, EscapesLabelValuesAndHelpText) {
  Registry registry;
  registry
      .AddGauge("x/<name>/size", "Size of \\ things\nper name \"quoted\".",
                {{"name", "a\"b\\c\nd"}})
      ->Set(1);
  const std::string text = registry.Prometheus();
  EXPECT_TRUE(HasLine(
      text, "# HELP cairn_x_size Size of \\\\ things\\nper name \"quoted\"."))
      << text;
  EXPECT_TRUE(HasLine(text, "cairn_x_size{name=\"a\\\"b\\\\c\\nd\"} 1"))
      << text;
  EXPECT_EQ(EscapePrometheus("\"\\\n", /*help=*/false), "\\\"\\\\\\n");
  EXPECT_EQ(EscapePrometheus("\"\\\n", /*help=*/true), "\"\\\\\\n");
}

TEST(PrometheusTest, TimerIsACumulativeHistogramInSeconds) {
  Registry registry;
  TimerOptions options;
  options.buckets_seconds = {0.001, 0.01, 0.1};
  Timer* t = registry.AddTimer("x/op_ms", "Op latency.", {}, options);
  t->Record(absl::Microseconds(500));
  t->Record(absl::Milliseconds(1));  // on a bound: counted in it (le)
  t->Record(absl::Milliseconds(50));
  t->Record(absl::Seconds(2));
  const std::string text = registry.Prometheus();
  EXPECT_TRUE(HasLine(text, "# TYPE cairn_x_op_seconds histogram")) << text;
  EXPECT_TRUE(HasLine(text, "cairn_x_op_seconds_bucket{le=\"0.001\"} 2"));
  EXPECT_TRUE(HasLine(text, "cairn_x_op_seconds_bucket{le=\"0.01\"} 2"));
  EXPECT_TRUE(HasLine(text, "cairn_x_op_seconds_bucket{le=\"0.1\"} 3"));
  EXPECT_TRUE(HasLine(text, "cairn_x_op_seconds_bucket{le=\"+Inf\"} 4"));
  EXPECT_TRUE(HasLine(text, "cairn_x_op_seconds_sum 2.0515")) << text;
  EXPECT_TRUE(HasLine(text, "cairn_x_op_seconds_count 4"));
}

TEST(PrometheusTest, CounterGetsTotalSuffixAndFamiliesAreSorted) {
  Registry registry;
  registry.AddCounter("b/events", "B.")->Increment(7);
  registry.AddGauge("a/level", "A.")->Set(0.25);
  const std::string text = registry.Prometheus();
  EXPECT_EQ(text,
            "# HELP cairn_a_level A.\n# TYPE cairn_a_level gauge\n"
            "cairn_a_level 0.25\n"
            "# HELP cairn_b_events_total B.\n"
            "# TYPE cairn_b_events_total counter\n"
            "cairn_b_events_total 7\n");
}

TEST(PrometheusTest, FormatsValuesSoTheyReadBack) {
  EXPECT_EQ(FormatPrometheusValue(3), "3");
  EXPECT_EQ(FormatPrometheusValue(-2), "-2");
  EXPECT_EQ(FormatPrometheusValue(0.1), "0.1");
  EXPECT_EQ(FormatPrometheusValue(1.0 / 3), "0.33333333333333331");
  EXPECT_EQ(FormatPrometheusValue(1e300), "1e+300");
}

TEST(RegistryTest, ScrapeHooksRunBeforeValuesAreRead) {
  Registry registry;
  Gauge* g = registry.AddGauge("x/refreshed", "Refreshed by the hook.");
  int calls = 0;
  registry.AddScrapeHook([&] { g->Set(++calls); });
  EXPECT_EQ(Number(ParseSnapshot(registry), "x/refreshed"), 1);
  EXPECT_TRUE(HasLine(registry.Prometheus(), "cairn_x_refreshed 2"));
}

TEST(RegistryDeathTest, KindConflictIsAProgrammingError) {
  Registry registry;
  registry.AddCounter("x/thing", "A counter.");
  EXPECT_DEATH(registry.AddGauge("x/thing", "Now a gauge."), "different kinds");
}

TEST(RegistryDeathTest, LabelWithoutPlaceholderIsAProgrammingError) {
  Registry registry;
  EXPECT_DEATH(registry.AddGauge("x/thing", "G.", {{"role", "web"}}),
               "needs a <label> segment");
}

TEST(RegistryDeathTest, TimerNameMustEndInMs) {
  Registry registry;
  EXPECT_DEATH(registry.AddTimer("x/latency", "T."), "ends in _ms");
}

// Smoke test for the thread-safety claims (meaningful under --config=tsan):
// writers on every kind of metric while others register and scrape.
TEST(RegistryConcurrencyTest, UpdatesRegistrationsAndScrapesMayOverlap) {
  Registry registry;
  Counter* counter = registry.AddCounter("x/events", "Events.");
  Gauge* gauge = registry.AddGauge("x/level", "Level.");
  Timer* timer = registry.AddTimer("x/latency_ms", "Latency.");
  std::atomic<int> hook_runs{0};
  registry.AddScrapeHook([&] { ++hook_runs; });
  constexpr int kWriters = 4;
  constexpr int kPerWriter = 2000;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        counter->Increment();
        gauge->Add(1);
        timer->Record(absl::Microseconds(i));
        if (i % 200 == 0) {
          registry
              .AddCounter("x/per_writer/<writer>/events", "Per writer.",
                          {{"writer", absl::StrCat(w)}})
              ->Increment();
        }
      }
    });
  }
  std::atomic<bool> done{false};
  // At least one scrape, however the threads are scheduled (on a loaded
  // machine the writers may all finish before the scraper first runs).
  std::thread scraper([&] {
    do {
      ASSERT_TRUE(ParseJson(registry.Snapshot()).ok());
      ASSERT_FALSE(registry.Prometheus().empty());
    } while (!done.load());
  });
  for (std::thread& t : threads) t.join();
  done.store(true);
  scraper.join();
  EXPECT_EQ(counter->value(), uint64_t{kWriters * kPerWriter});
  EXPECT_EQ(gauge->value(), kWriters * kPerWriter);
  EXPECT_EQ(timer->GetHistogram().count, uint64_t{kWriters * kPerWriter});
  EXPECT_GT(hook_runs.load(), 0);
  JsonValue json = ParseSnapshot(registry);
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_EQ(Number(json, absl::StrCat("x/per_writer/", w, "/events")), 10);
  }
}

// `promtool check metrics` (Debian package prometheus) on an exposition
// with every kind of metric, labels that need escaping, and histograms.
TEST(PrometheusTest, PromtoolAcceptsTheExposition) {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0) {
    GTEST_SKIP() << promtool
                 << " is absent (apt-get install prometheus; tools/setup.sh "
                    "installs it)";
  }
  Registry registry;
  registry.AddCounter("master/messages_launch_tasks", "LAUNCH calls.")
      ->Increment(2);
  registry.AddGauge("master/uptime_secs", "Uptime in seconds.")->Set(12.5);
  registry
      .AddGauge("allocator/mesos/offer_filters/roles/<role>/active",
                "Active decline filters per role.",
                {{"role", "we\"ird\\ro\nle"}})
      ->Set(1);
  registry
      .AddGauge("allocator/mesos/offer_filters/roles/<role>/active",
                "Active decline filters per role.", {{"role", "web"}})
      ->Set(2);
  Timer* t = registry.AddTimer("registrar/state_store_ms",
                               "Append-to-commit latency of master events.");
  t->Record(absl::Milliseconds(3));
  t->Record(absl::Seconds(20));
  registry.AddTimer("allocator/mesos/allocation_run_ms", "Allocation runs.");
  const std::string path = absl::StrCat(
      std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp",
      "/metrics_", getpid(), ".txt");
  {
    std::ofstream out(path);
    out << registry.Prometheus();
  }
  const std::string command = absl::StrCat(promtool, " check metrics < ", path,
                                           " > ", path, ".out 2>&1");
  const int rc = std::system(command.c_str());
  std::ifstream result(path + ".out");
  const std::string output((std::istreambuf_iterator<char>(result)),
                           std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << output << "\n--- exposition:\n" << registry.Prometheus();
}

TEST(MetricsHttpTest, SnapshotAnswersJsonOrJsonp) {
  Registry registry;
  registry.AddGauge("master/elected", "Elected.")->Set(1);
  http::Request request;
  http::Response plain = SnapshotResponse(registry, request);
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.body, "{\"master/elected\":1}");
  request.query["jsonp"] = "window.cb_1";
  http::Response jsonp = SnapshotResponse(registry, request);
  EXPECT_EQ(jsonp.status, 200);
  EXPECT_EQ(jsonp.headers.Get("Content-Type"), "text/javascript");
  EXPECT_EQ(jsonp.body, "window.cb_1({\"master/elected\":1});");
  request.query["jsonp"] = "alert(1)//";
  EXPECT_EQ(SnapshotResponse(registry, request).status, 400);
  http::Response text = PrometheusResponse(registry);
  EXPECT_EQ(text.headers.Get("Content-Type"), kPrometheusContentType);
}

}  // namespace
}  // namespace cairn::monitoring
