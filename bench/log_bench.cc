// log_bench: how fast is Cairn's replicated log, relative to what the machine
// allows and to a well-known peer, measured in one run.
//
//   bazel run -c opt //bench:log_bench -- [--quick]
//
// Starts three `cairn-log replica` processes on loopback (each with its own
// LevelDB directory under a scratch directory that is removed afterwards),
// waits for a serving leader, and measures
//   1. the floor F: LevelDB sync-write p50 (256-byte Put, sync=true, on the
//      same file system) + loopback TCP round trip p50;
//   2. serial append latency (one appender over HTTP keep-alive) p50/p99,
//      reported as multiples of F;
//   3. append throughput with 1, 16 and 256 concurrent appenders;
//   4. LevelDB's own group-commit rate (Put(sync=true) from 1/16/256
//      threads on one database);
//   5. a three-member etcd cluster on loopback (Debian's etcd-server) doing
//      the same 256-byte puts through its HTTP/JSON gateway at 1/16/256.
// It prints a table, then one JSON object as the very last line of stdout.
// See bench/README.md for what the ratios mean and the figures measured.
//
// No process outlives the benchmark: children are killed on return, on
// exit(), on SIGINT/SIGTERM/SIGHUP, and by the kernel (PR_SET_PDEATHSIG) if
// the benchmark crashes.

#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/internal/cairn_cluster.h"
#include "bench/internal/cleanup.h"
#include "bench/internal/etcd_cluster.h"
#include "bench/internal/http_load.h"
#include "bench/internal/json_fields.h"
#include "bench/internal/latency.h"
#include "bench/internal/leveldb_probe.h"
#include "bench/internal/loopback.h"
#include "bench/internal/scratch_dir.h"
#include "common/flags.h"
#include "common/http_client.h"
#include "tools/cpp/runfiles/runfiles.h"

ABSL_FLAG(bool, quick, false,
          "short run (under a minute): fewer samples, 1.5 s per throughput "
          "point instead of 5 s");
ABSL_FLAG(std::string, cairn_log, "",
          "path of the cairn-log binary (default: //log:cairn-log from the "
          "runfiles)");
ABSL_FLAG(std::string, etcd, "/usr/bin/etcd", "path of the etcd binary");
ABSL_FLAG(bool, skip_etcd, false, "do not run the etcd peer");
ABSL_FLAG(bool, skip_cairn, false,
          "measure only the floor and the peers (checks the harness itself)");
ABSL_FLAG(bool, keep_scratch, false,
          "keep the scratch directory (replica and etcd logs) afterwards");
ABSL_FLAG(int, value_bytes, 256, "bytes per appended entry / put value");

namespace cairn::bench {
namespace {

constexpr char kHost[] = "127.0.0.1";
constexpr int kConcurrency[] = {1, 16, 256};

struct Plan {
  int leveldb_samples;
  int tcp_samples;
  int serial_samples;
  absl::Duration serial_time_cap;
  absl::Duration warmup;
  absl::Duration duration;
};

Plan MakePlan(bool quick) {
  if (quick) {
    return {/*leveldb_samples=*/200, /*tcp_samples=*/2000,
            /*serial_samples=*/300, /*serial_time_cap=*/absl::Seconds(5),
            /*warmup=*/absl::Milliseconds(300),
            /*duration=*/absl::Milliseconds(1500)};
  }
  return {/*leveldb_samples=*/1000, /*tcp_samples=*/20000,
          /*serial_samples=*/2000, /*serial_time_cap=*/absl::Seconds(30),
          /*warmup=*/absl::Seconds(1), /*duration=*/absl::Seconds(5)};
}

// One throughput point: rate and latency percentiles of the acknowledged
// requests, and whether anything failed.
struct Point {
  double per_second = 0;
  double p50_us = 0;
  double p99_us = 0;
  uint64_t failures = 0;
};

struct Results {
  bool quick = false;
  int value_bytes = 256;
  LatencySamples leveldb_sync;
  LatencySamples tcp_rtt;
  double floor_us = 0;
  LatencySamples serial;
  uint64_t serial_failures = 0;
  std::map<int, Point> cairn;
  std::map<int, Point> leveldb;
  std::map<int, Point> etcd;
  std::string etcd_put_target;
  // What the replicas did during each Cairn phase (from /log/status).
  std::vector<std::string> cairn_internals;
  std::vector<std::string> problems;
};

// Prints to stderr, so stdout stays the table and the JSON line.
template <typename... Args>
void Progress(const absl::FormatSpec<Args...>& format, const Args&... args) {
  std::fprintf(stderr, "log_bench: %s\n",
               absl::StrFormat(format, args...).c_str());
  std::fflush(stderr);
}

// A value of `bytes` bytes that starts with a unique tag.
std::string Payload(absl::string_view tag, int bytes) {
  std::string value(tag);
  if (static_cast<int>(value.size()) < bytes) {
    value.resize(bytes, 'x');
  }
  return value;
}

std::string ResolveCairnLog(const char* argv0) {
  std::string flag = absl::GetFlag(FLAGS_cairn_log);
  if (!flag.empty()) return flag;
  std::string error;
  std::unique_ptr<bazel::tools::cpp::runfiles::Runfiles> runfiles(
      bazel::tools::cpp::runfiles::Runfiles::Create(argv0, &error));
  if (runfiles == nullptr) {
    Progress("no runfiles (%s); pass --cairn_log=PATH", error);
    return "log/cairn-log";
  }
  return runfiles->Rlocation("cairn/log/cairn-log");
}

absl::Status MeasureFloor(const ScratchDir& scratch, const Plan& plan,
                          Results* results) {
  Progress("floor: %d LevelDB sync puts in %s", plan.leveldb_samples,
           scratch.path());
  absl::StatusOr<LatencySamples> sync = MeasureLevelDbSyncWrites(
      scratch.Sub("leveldb-floor"), plan.leveldb_samples, results->value_bytes);
  if (!sync.ok()) return sync.status();
  results->leveldb_sync = *std::move(sync);
  Progress("floor: %d loopback TCP round trips", plan.tcp_samples);
  absl::StatusOr<LatencySamples> rtt = MeasureTcpRoundTrips(plan.tcp_samples);
  if (!rtt.ok()) return rtt.status();
  results->tcp_rtt = *std::move(rtt);
  results->floor_us =
      results->leveldb_sync.Quantile(0.5) + results->tcp_rtt.Quantile(0.5);
  return absl::OkStatus();
}

absl::Status MeasureLevelDbPeer(const ScratchDir& scratch, const Plan& plan,
                                Results* results) {
  for (int threads : kConcurrency) {
    Progress("leveldb group commit: %d threads", threads);
    absl::StatusOr<GroupCommitResult> r = MeasureLevelDbGroupCommit(
        scratch.Sub(absl::StrCat("leveldb-group-", threads)), threads,
        plan.warmup, plan.duration, results->value_bytes);
    if (!r.ok()) return r.status();
    Point& p = results->leveldb[threads];
    p.per_second = r->writes_per_second;
    p.p50_us = r->latency_us.Quantile(0.5);
    p.p99_us = r->latency_us.Quantile(0.99);
  }
  return absl::OkStatus();
}

// The /log/status counters the report explains Cairn's numbers with.
struct ReplicaCounters {
  bool answered = false;
  uint64_t appends_ok = 0;
  uint64_t synced_writes = 0;
  uint64_t end = 0;  // highest position with an accepted value
  uint64_t elections_won = 0;
};

uint64_t Counter(const google::protobuf::Struct& s, absl::string_view path) {
  uint64_t v = 0;
  return absl::SimpleAtoi(JsonField(s, path).value_or("0"), &v) ? v : 0;
}

struct ClusterCounters {
  absl::Time at;
  std::vector<ReplicaCounters> replicas;
};

ClusterCounters SnapshotCounters(CairnCluster& cluster) {
  ClusterCounters snapshot;
  snapshot.at = absl::Now();
  for (int i = 0; i < cluster.size(); ++i) {
    ReplicaCounters c;
    if (std::optional<google::protobuf::Struct> s = cluster.Status(i)) {
      c.answered = true;
      c.appends_ok = Counter(*s, "counters.appends_ok");
      c.synced_writes = Counter(*s, "counters.synced_writes");
      c.end = Counter(*s, "end");
      c.elections_won = Counter(*s, "elections_won");
    }
    snapshot.replicas.push_back(c);
  }
  return snapshot;
}

// One line of "what the replicas did" between two snapshots: appends the
// leader acknowledged, positions they used (entries per position = the
// batching), and synced writes on the leader and on each follower.
std::string DescribeInternals(absl::string_view phase, int leader,
                              const ClusterCounters& before,
                              const ClusterCounters& after) {
  const ReplicaCounters& b = before.replicas[leader];
  const ReplicaCounters& a = after.replicas[leader];
  if (!a.answered || !b.answered) {
    return absl::StrCat(phase, ": leader status unavailable");
  }
  const double seconds = absl::ToDoubleSeconds(after.at - before.at);
  const uint64_t appends = a.appends_ok - b.appends_ok;
  const uint64_t positions = a.end - b.end;
  const uint64_t leader_syncs = a.synced_writes - b.synced_writes;
  std::vector<std::string> followers;
  for (size_t i = 0; i < after.replicas.size(); ++i) {
    if (static_cast<int>(i) == leader) continue;
    const ReplicaCounters& fb = before.replicas[i];
    const ReplicaCounters& fa = after.replicas[i];
    followers.push_back(
        fa.answered && fb.answered
            ? absl::StrFormat("%.0f", (fa.synced_writes - fb.synced_writes) /
                                          seconds)
            : std::string("?"));
  }
  return absl::StrFormat(
      "%-14s %8d appends %7d positions (%6.1f entries/position)  "
      "fsyncs/s: leader %5.0f, followers %s  (%.2f fsyncs per append on the "
      "leader)",
      phase, appends, positions,
      positions > 0 ? static_cast<double>(appends) / positions : 0.0,
      leader_syncs / seconds, absl::StrJoin(followers, "/"),
      appends > 0 ? static_cast<double>(leader_syncs) / appends : 0.0);
}

uint64_t TotalElections(const ClusterCounters& c) {
  uint64_t total = 0;
  for (const ReplicaCounters& r : c.replicas) total += r.elections_won;
  return total;
}

// Who leads, by every replica's account: "1:leader(1) 2:follower(1) ...".
std::string LeadershipView(CairnCluster& cluster) {
  std::vector<std::string> parts;
  for (int i = 0; i < cluster.size(); ++i) {
    std::optional<google::protobuf::Struct> s = cluster.Status(i);
    if (!s.has_value()) {
      parts.push_back(absl::StrCat(cluster.id(i), ":no-answer"));
      continue;
    }
    parts.push_back(absl::StrCat(cluster.id(i), ":",
                                 JsonField(*s, "role").value_or("?"), "(",
                                 JsonField(*s, "leader").value_or("-"), ")"));
  }
  return absl::StrJoin(parts, " ");
}

// Notes a problem if the leader changed or a replica died during `phase`.
void CheckCluster(CairnCluster& cluster, int leader_before,
                  absl::string_view phase, Results* results) {
  if (!cluster.AllRunning()) {
    results->problems.push_back(
        absl::StrCat("cairn: a replica exited during ", phase));
  }
  absl::StatusOr<int> leader = cluster.LeaderIndex();
  if (!leader.ok() || *leader != leader_before) {
    results->problems.push_back(absl::StrCat(
        "cairn: leadership changed during ", phase, ": was ",
        cluster.id(leader_before), ", now ", LeadershipView(cluster)));
  }
}

void NoteLoadFailures(absl::string_view what, const HttpLoadResult& r,
                      Results* results) {
  if (r.failures() == 0 && r.redirects == 0) return;
  std::vector<std::string> statuses;
  for (const auto& [status, count] : r.failure_statuses) {
    statuses.push_back(absl::StrCat(status, "x", count));
  }
  results->problems.push_back(absl::StrCat(
      what, ": ", r.redirects, " redirects, ", r.unavailable, " x 503, ",
      r.transport_errors, " transport errors, ", r.other_failures,
      " other failures [", absl::StrJoin(statuses, " "), "]; first: ",
      r.first_failure));
}

absl::Status MeasureCairn(const std::string& binary, const ScratchDir& scratch,
                          const Plan& plan, Results* results) {
  Progress("cairn: starting 3 replicas (%s)", binary);
  CairnClusterOptions options;
  options.cairn_log_binary = binary;
  options.dir = scratch.Sub("cairn");
  absl::Time started = absl::Now();
  absl::StatusOr<std::unique_ptr<CairnCluster>> cluster =
      CairnCluster::Start(options);
  if (!cluster.ok()) return cluster.status();
  absl::StatusOr<int> leader = (*cluster)->LeaderIndex();
  if (!leader.ok()) return leader.status();
  const uint16_t port = (*cluster)->http_port(*leader);
  Progress("cairn: leader is replica %d (port %d), serving after %s",
           (*cluster)->id(*leader), port,
           absl::FormatDuration(absl::Now() - started));

  const ClusterCounters at_start = SnapshotCounters(**cluster);
  ClusterCounters before = at_start;

  // Serial appends over one keep-alive connection.
  Progress("cairn: serial appends (up to %d, at most %s)", plan.serial_samples,
           absl::FormatDuration(plan.serial_time_cap));
  {
    http::ClientOptions client_options;
    client_options.follow_redirects = true;
    http::Client client(client_options);
    const http::Headers headers = {
        {"Content-Type", "application/octet-stream"}};
    const int warmup = plan.serial_samples / 10;
    const absl::Time deadline = absl::Now() + plan.serial_time_cap;
    results->serial.Reserve(plan.serial_samples);
    for (int i = 0; i < warmup + plan.serial_samples && absl::Now() < deadline;
         ++i) {
      std::string body =
          Payload(absl::StrCat("serial-", i, "-"), results->value_bytes);
      absl::Time start = absl::Now();
      absl::StatusOr<http::Response> r =
          client.Request("POST", kHost, port, "/log/append", headers, body);
      double us = absl::ToDoubleMicroseconds(absl::Now() - start);
      if (!r.ok() || r->status != 200) {
        if (results->serial_failures++ == 0) {
          results->problems.push_back(absl::StrCat(
              "cairn serial: first failed append: ",
              r.ok() ? absl::StrCat(r->status, " ", r->body)
                     : r.status().ToString()));
        }
        continue;
      }
      if (i >= warmup) results->serial.Add(us);
    }
    if (client.connections_opened() > 1) {
      results->problems.push_back(absl::StrCat(
          "cairn serial: keep-alive broke, ", client.connections_opened(),
          " connections opened"));
    }
  }
  CheckCluster(**cluster, *leader, "serial appends", results);
  ClusterCounters after = SnapshotCounters(**cluster);
  results->cairn_internals.push_back(
      DescribeInternals("serial", *leader, before, after));
  before = after;

  for (int n : kConcurrency) {
    Progress("cairn: %d concurrent appenders", n);
    HttpLoadSpec spec;
    spec.host = kHost;
    spec.port = port;
    spec.target = "/log/append";
    spec.connections = n;
    spec.warmup = plan.warmup;
    spec.duration = plan.duration;
    const int bytes = results->value_bytes;
    spec.body = [n, bytes](int conn, uint64_t seq) {
      return Payload(absl::StrCat("c", n, "-", conn, "-", seq, "-"), bytes);
    };
    absl::StatusOr<HttpLoadResult> r = RunHttpLoad(spec);
    if (!r.ok()) return r.status();
    Point& p = results->cairn[n];
    p.per_second = r->acks_per_second;
    p.p50_us = r->latency_us.Quantile(0.5);
    p.p99_us = r->latency_us.Quantile(0.99);
    p.failures = r->failures();
    NoteLoadFailures(absl::StrCat("cairn x", n), *r, results);
    CheckCluster(**cluster, *leader, absl::StrCat("throughput x", n), results);
    after = SnapshotCounters(**cluster);
    results->cairn_internals.push_back(DescribeInternals(
        absl::StrCat(n, " appenders"), *leader, before, after));
    before = after;
  }
  if (TotalElections(after) != TotalElections(at_start)) {
    results->problems.push_back(absl::StrCat(
        "cairn: ", TotalElections(after) - TotalElections(at_start),
        " election(s) won during the run"));
  }
  Progress("cairn: final view %s", LeadershipView(**cluster));
  std::vector<std::string> endings = (*cluster)->Stop();
  Progress("cairn: replicas stopped (%s)", absl::StrJoin(endings, ", "));
  return absl::OkStatus();
}

absl::Status MeasureEtcd(const ScratchDir& scratch, const Plan& plan,
                         Results* results) {
  Progress("etcd: starting 3 members (%s)", absl::GetFlag(FLAGS_etcd));
  EtcdClusterOptions options;
  options.etcd_binary = absl::GetFlag(FLAGS_etcd);
  options.dir = scratch.path();
  absl::StatusOr<std::unique_ptr<EtcdCluster>> cluster =
      EtcdCluster::Start(options);
  if (!cluster.ok()) return cluster.status();
  absl::StatusOr<int> leader = (*cluster)->LeaderIndex();
  if (!leader.ok()) {
    results->problems.push_back(absl::StrCat(
        "etcd: leader unknown (", leader.status().ToString(),
        "); using member 1"));
    leader = 0;
  }
  results->etcd_put_target = (*cluster)->put_target();
  const uint64_t term_before = (*cluster)->RaftTerm(*leader);
  Progress("etcd: leader is member %d, puts go to %s", *leader + 1,
           results->etcd_put_target);
  for (int n : kConcurrency) {
    Progress("etcd: %d concurrent clients", n);
    HttpLoadSpec spec;
    spec.host = kHost;
    spec.port = (*cluster)->client_port(*leader);
    spec.target = (*cluster)->put_target();
    spec.content_type = "application/json";
    spec.connections = n;
    spec.warmup = plan.warmup;
    spec.duration = plan.duration;
    const std::string value =
        absl::Base64Escape(Payload("etcd-bench-", results->value_bytes));
    spec.body = [n, value](int conn, uint64_t seq) {
      return absl::StrCat(
          "{\"key\":\"",
          absl::Base64Escape(absl::StrCat("bench/c", n, "/", conn, "/", seq)),
          "\",\"value\":\"", value, "\"}");
    };
    absl::StatusOr<HttpLoadResult> r = RunHttpLoad(spec);
    if (!r.ok()) return r.status();
    Point& p = results->etcd[n];
    p.per_second = r->acks_per_second;
    p.p50_us = r->latency_us.Quantile(0.5);
    p.p99_us = r->latency_us.Quantile(0.99);
    p.failures = r->failures();
    NoteLoadFailures(absl::StrCat("etcd x", n), *r, results);
  }
  const uint64_t term_after = (*cluster)->RaftTerm(*leader);
  if (term_before != term_after) {
    results->problems.push_back(absl::StrCat(
        "etcd: raft term changed from ", term_before, " to ", term_after));
  }
  (*cluster)->Stop();
  Progress("etcd: stopped");
  return absl::OkStatus();
}

std::string Number(double v, int decimals) {
  return absl::StrFormat("%.*f", decimals, v);
}

// A JSON number, or null when the peer was not measured.
std::string OptionalNumber(const std::map<int, Point>& points, int n,
                           int decimals) {
  auto it = points.find(n);
  return it == points.end() ? "null" : Number(it->second.per_second, decimals);
}

std::string OptionalRatio(const std::map<int, Point>& ours,
                          const std::map<int, Point>& theirs, int n) {
  auto a = ours.find(n);
  auto b = theirs.find(n);
  if (a == ours.end() || b == theirs.end() || b->second.per_second <= 0) {
    return "null";
  }
  return Number(a->second.per_second / b->second.per_second, 3);
}

void PrintReport(Results& r) {
  const double floor = r.floor_us;
  const double serial_p50 = r.serial.Quantile(0.5);
  const double serial_p99 = r.serial.Quantile(0.99);
  absl::PrintF("\nCairn replicated log benchmark (%s run, %d-byte entries)\n",
               r.quick ? "quick" : "full", r.value_bytes);
  absl::PrintF("\nFloor (same run, same file system)\n");
  absl::PrintF("  %-36s %10.1f us  (p99 %.1f, n=%d)\n",
               "LevelDB sync put p50", r.leveldb_sync.Quantile(0.5),
               r.leveldb_sync.Quantile(0.99), r.leveldb_sync.count());
  absl::PrintF("  %-36s %10.1f us  (p99 %.1f, n=%d)\n",
               "loopback TCP round trip p50", r.tcp_rtt.Quantile(0.5),
               r.tcp_rtt.Quantile(0.99), r.tcp_rtt.count());
  absl::PrintF("  %-36s %10.1f us\n", "floor F", floor);
  absl::PrintF("\nSerial appends (1 appender, HTTP keep-alive to the leader)\n");
  absl::PrintF("  %-36s %10.1f us  = %.2f F\n", "p50", serial_p50,
               floor > 0 ? serial_p50 / floor : 0);
  absl::PrintF("  %-36s %10.1f us  = %.2f F\n", "p99", serial_p99,
               floor > 0 ? serial_p99 / floor : 0);
  absl::PrintF("  %-36s %10d (%d failed)\n", "samples", r.serial.count(),
               r.serial_failures);
  absl::PrintF("\nThroughput (acknowledged writes per second; p50/p99 "
               "latency in ms)\n");
  absl::PrintF("  %-22s", "concurrency");
  for (int n : kConcurrency) absl::PrintF(" %22d", n);
  absl::PrintF("\n");
  auto row = [](absl::string_view name, const std::map<int, Point>& points) {
    absl::PrintF("  %-22s", name);
    for (int n : kConcurrency) {
      auto it = points.find(n);
      if (it == points.end()) {
        absl::PrintF(" %22s", "-");
        continue;
      }
      absl::PrintF(" %22s",
                   absl::StrFormat("%.0f (%.1f/%.1f)", it->second.per_second,
                                   it->second.p50_us / 1000,
                                   it->second.p99_us / 1000));
    }
    absl::PrintF("\n");
  };
  row("cairn (3 replicas)", r.cairn);
  row("leveldb group commit", r.leveldb);
  row("etcd (3 members)", r.etcd);
  auto ratio_row = [&r](absl::string_view name,
                        const std::map<int, Point>& theirs) {
    absl::PrintF("  %-22s", name);
    for (int n : kConcurrency) {
      absl::PrintF(" %22s", OptionalRatio(r.cairn, theirs, n));
    }
    absl::PrintF("\n");
  };
  ratio_row("cairn / leveldb", r.leveldb);
  ratio_row("cairn / etcd", r.etcd);
  if (!r.etcd_put_target.empty()) {
    absl::PrintF("  (etcd puts via HTTP/JSON gateway %s)\n", r.etcd_put_target);
  }
  if (!r.cairn_internals.empty()) {
    absl::PrintF("\nWhat the Cairn replicas did (their /log/status counters, "
                 "warm-up and drain included)\n");
    for (const std::string& line : r.cairn_internals) {
      absl::PrintF("  %s\n", line);
    }
  }
  absl::PrintF("\nProblems observed: %s\n",
               r.problems.empty() ? "none" : "");
  for (const std::string& p : r.problems) absl::PrintF("  - %s\n", p);

  // The machine-readable summary: always the very last line.
  std::vector<std::string> fields = {
      absl::StrCat("\"p50_over_floor\":",
                   Number(floor > 0 ? serial_p50 / floor : 0, 3)),
      absl::StrCat("\"p99_over_floor\":",
                   Number(floor > 0 ? serial_p99 / floor : 0, 3)),
      absl::StrCat("\"floor_us\":", Number(floor, 1)),
      absl::StrCat("\"leveldb_sync_p50_us\":",
                   Number(r.leveldb_sync.Quantile(0.5), 1)),
      absl::StrCat("\"tcp_rtt_p50_us\":", Number(r.tcp_rtt.Quantile(0.5), 1)),
      absl::StrCat("\"serial_p50_us\":", Number(serial_p50, 1)),
      absl::StrCat("\"serial_p99_us\":", Number(serial_p99, 1)),
  };
  for (int n : kConcurrency) {
    fields.push_back(absl::StrCat("\"throughput_", n,
                                  "\":", OptionalNumber(r.cairn, n, 1)));
  }
  for (int n : kConcurrency) {
    fields.push_back(absl::StrCat("\"leveldb_throughput_", n,
                                  "\":", OptionalNumber(r.leveldb, n, 1)));
  }
  for (int n : kConcurrency) {
    fields.push_back(absl::StrCat("\"etcd_throughput_", n,
                                  "\":", OptionalNumber(r.etcd, n, 1)));
  }
  for (int n : kConcurrency) {
    fields.push_back(absl::StrCat("\"ratio_vs_etcd_", n,
                                  "\":", OptionalRatio(r.cairn, r.etcd, n)));
  }
  for (int n : kConcurrency) {
    fields.push_back(absl::StrCat("\"ratio_vs_leveldb_", n, "\":",
                                  OptionalRatio(r.cairn, r.leveldb, n)));
  }
  fields.push_back(absl::StrCat("\"serial_samples\":", r.serial.count()));
  fields.push_back(absl::StrCat("\"problems\":", r.problems.size()));
  fields.push_back(absl::StrCat("\"quick\":", r.quick ? "true" : "false"));
  absl::PrintF("\n{%s}\n", absl::StrJoin(fields, ","));
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  InstallSignalCleanup();
  ParseCommandLine(argc, argv,
                   "Benchmarks Cairn's replicated log against a latency floor, "
                   "LevelDB group commit and etcd.\n"
                   "  bazel run -c opt //bench:log_bench -- [--quick]");
  Results results;
  results.quick = absl::GetFlag(FLAGS_quick);
  results.value_bytes = absl::GetFlag(FLAGS_value_bytes);
  const Plan plan = MakePlan(results.quick);
  const std::string cairn_log = ResolveCairnLog(argv[0]);
  const absl::Time started = absl::Now();

  absl::StatusOr<std::unique_ptr<ScratchDir>> scratch =
      ScratchDir::Create("cairn-log-bench-", absl::GetFlag(FLAGS_keep_scratch));
  if (!scratch.ok()) {
    Progress("error: %s", scratch.status().ToString());
    return 1;
  }
  if (absl::GetFlag(FLAGS_keep_scratch)) {
    Progress("scratch directory (kept): %s", (*scratch)->path());
  }

  absl::Status status = MeasureFloor(**scratch, plan, &results);
  if (status.ok()) status = MeasureLevelDbPeer(**scratch, plan, &results);
  if (status.ok() && !absl::GetFlag(FLAGS_skip_cairn)) {
    status = MeasureCairn(cairn_log, **scratch, plan, &results);
  }
  if (!status.ok()) {
    Progress("error: %s", status.ToString());
    return 1;
  }
  if (!absl::GetFlag(FLAGS_skip_etcd)) {
    absl::Status etcd = MeasureEtcd(**scratch, plan, &results);
    if (!etcd.ok()) {
      // The peer is optional: report without it rather than not at all.
      results.etcd.clear();
      results.problems.push_back(
          absl::StrCat("etcd peer not measured: ", etcd.ToString()));
      Progress("etcd failed: %s", etcd.ToString());
    }
  }
  Progress("done in %s", absl::FormatDuration(absl::Now() - started));
  PrintReport(results);
  return 0;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
