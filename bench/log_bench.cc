// log_bench: how fast is Cairn's replicated log, relative to what the machine
// allows and to well-known peers, all measured in one run.
//
//   bazel run -c opt //bench:log_bench -- [--quick]
//
// Starts three `cairn-log replica` processes on loopback (each with its own
// LevelDB directory under a scratch directory that is removed afterwards)
// and a three-member etcd cluster, waits for both to have a leader, then
// measures
//   1. serial append latency (one appender, HTTP keep-alive to the leader)
//      p50/p99, and the floor F = LevelDB sync-write p50 (256-byte Put,
//      sync=true, same file system) + loopback TCP round trip p50. The floor
//      probes are interleaved with the appends one for one, so both see the
//      same disk: on shared virtual machines fsync latency drifts by 10x
//      within seconds, and a floor measured a minute earlier means little;
//   2. append throughput with 1, 16 and 256 concurrent appenders, and the
//      same for LevelDB's own group commit (Put(sync=true) from 1/16/256
//      threads on one database) and for etcd (256-byte puts through its
//      HTTP/JSON gateway). The three systems take turns in short slices
//      (several rounds of LevelDB, Cairn, etcd), for the same reason.
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
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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
          "point and system instead of 5 s");
ABSL_FLAG(std::string, cairn_log, "",
          "path of the cairn-log binary (default: //log:cairn-log from the "
          "runfiles)");
ABSL_FLAG(std::string, etcd, "/usr/bin/etcd", "path of the etcd binary");
ABSL_FLAG(bool, skip_etcd, false, "do not run the etcd peer");
ABSL_FLAG(bool, keep_scratch, false,
          "keep the scratch directory (replica and etcd logs) afterwards");
ABSL_FLAG(int, value_bytes, 256, "bytes per appended entry / put value");
ABSL_FLAG(std::string, replica_flags, "",
          "extra flags for every cairn-log replica, space separated (for "
          "experiments, e.g. \"--max_in_flight=32 --group_commit=false\")");

namespace cairn::bench {
namespace {

constexpr char kHost[] = "127.0.0.1";
constexpr int kConcurrency[] = {1, 16, 256};

struct Plan {
  int serial_samples;              // appends (and floor probes) measured
  absl::Duration serial_time_cap;  // stop sampling after this long
  int rounds;                      // turns each system takes per level
  absl::Duration slice_warmup;     // not counted, before each turn
  absl::Duration slice;            // measured, per turn
};

Plan MakePlan(bool quick) {
  if (quick) {
    return {/*serial_samples=*/300, /*serial_time_cap=*/absl::Seconds(8),
            /*rounds=*/2, /*slice_warmup=*/absl::Milliseconds(250),
            /*slice=*/absl::Milliseconds(750)};
  }
  return {/*serial_samples=*/2000, /*serial_time_cap=*/absl::Seconds(40),
          /*rounds=*/5, /*slice_warmup=*/absl::Milliseconds(300),
          /*slice=*/absl::Seconds(1)};
}

// Acknowledged writes of one system at one concurrency, over all its turns.
struct Point {
  double seconds = 0;
  uint64_t acks = 0;
  LatencySamples latency_us;
  uint64_t failures = 0;

  double per_second() const { return seconds > 0 ? acks / seconds : 0; }
};

// What the Cairn replicas did during some phase, from their /log/status
// counters (warm-up and drain included).
struct Internals {
  double seconds = 0;
  uint64_t appends = 0;    // acknowledged by the leader
  uint64_t positions = 0;  // log positions used (entries are batched)
  uint64_t leader_syncs = 0;
  std::vector<uint64_t> follower_syncs;
};

struct Results {
  bool quick = false;
  int value_bytes = 256;
  // Interleaved with the serial appends.
  LatencySamples leveldb_sync;
  LatencySamples leveldb_sync3;  // 3 databases syncing at once
  LatencySamples tcp_rtt;
  LatencySamples serial;
  uint64_t serial_failures = 0;
  std::map<int, Point> cairn;
  std::map<int, Point> leveldb;
  std::map<int, Point> etcd;
  std::string etcd_put_target;
  std::vector<std::pair<std::string, Internals>> cairn_internals;
  std::vector<std::string> problems;

  double floor_us() {
    return leveldb_sync.Quantile(0.5) + tcp_rtt.Quantile(0.5);
  }
};

// Progress goes to stderr, so stdout is the report and the JSON line.
template <typename... Args>
void Progress(const absl::FormatSpec<Args...>& format, const Args&... args) {
  std::fprintf(stderr, "log_bench: %s\n",
               absl::StrFormat(format, args...).c_str());
  std::fflush(stderr);
}

// A value of `bytes` bytes that starts with a unique tag.
std::string Payload(absl::string_view tag, int bytes) {
  std::string value(tag);
  if (static_cast<int>(value.size()) < bytes) value.resize(bytes, 'x');
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

// ---- Cairn status counters --------------------------------------------------

struct ReplicaCounters {
  bool answered = false;
  uint64_t appends_ok = 0;
  uint64_t synced_writes = 0;
  uint64_t end = 0;  // highest position with an accepted value
  uint64_t elections_won = 0;
};

struct ClusterCounters {
  absl::Time at;
  std::vector<ReplicaCounters> replicas;
};

uint64_t Counter(const google::protobuf::Struct& s, absl::string_view path) {
  uint64_t v = 0;
  return absl::SimpleAtoi(JsonField(s, path).value_or("0"), &v) ? v : 0;
}

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

void AddInternals(int leader, const ClusterCounters& before,
                  const ClusterCounters& after, Internals* sum) {
  const ReplicaCounters& b = before.replicas[leader];
  const ReplicaCounters& a = after.replicas[leader];
  if (!a.answered || !b.answered) return;
  sum->seconds += absl::ToDoubleSeconds(after.at - before.at);
  sum->appends += a.appends_ok - b.appends_ok;
  sum->positions += a.end - b.end;
  sum->leader_syncs += a.synced_writes - b.synced_writes;
  sum->follower_syncs.resize(after.replicas.size() - 1);
  size_t f = 0;
  for (size_t i = 0; i < after.replicas.size(); ++i) {
    if (static_cast<int>(i) == leader) continue;
    sum->follower_syncs[f++] +=
        after.replicas[i].synced_writes - before.replicas[i].synced_writes;
  }
}

std::string DescribeInternals(absl::string_view phase, const Internals& in) {
  if (in.seconds <= 0)
    return absl::StrCat(phase, ": leader status unavailable");
  std::vector<std::string> followers;
  for (uint64_t syncs : in.follower_syncs) {
    followers.push_back(absl::StrFormat("%.0f", syncs / in.seconds));
  }
  return absl::StrFormat(
      "%-13s %7d appends in %6d positions (%5.1f entries/position); "
      "fsyncs/s leader %5.0f, followers %s; %.2f leader fsyncs/append",
      phase, in.appends, in.positions,
      in.positions > 0 ? static_cast<double>(in.appends) / in.positions : 0.0,
      in.leader_syncs / in.seconds, absl::StrJoin(followers, "/"),
      in.appends > 0 ? static_cast<double>(in.leader_syncs) / in.appends : 0.0);
}

uint64_t TotalElections(const ClusterCounters& c) {
  uint64_t total = 0;
  for (const ReplicaCounters& r : c.replicas) total += r.elections_won;
  return total;
}

// Who leads, by every replica's account: "1:follower(3) 2:... 3:leader(3)".
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
      " other failures [", absl::StrJoin(statuses, " "),
      "]; first: ", r.first_failure));
}

void AddLoad(const HttpLoadResult& r, Point* point) {
  point->seconds += r.seconds;
  point->acks += r.acks;
  point->latency_us.Merge(r.latency_us);
  point->failures += r.failures();
}

// ---- the measurements -------------------------------------------------------

// Serial appends, one for one with the floor probes: a LevelDB sync put, a
// loopback round trip, and three LevelDB sync puts at once (on three other
// databases: what a sync costs while the three replicas sync together).
absl::Status MeasureSerialAndFloor(CairnCluster& cairn, int leader,
                                   const ScratchDir& scratch, const Plan& plan,
                                   Results* results) {
  const int bytes = results->value_bytes;
  absl::StatusOr<std::unique_ptr<SyncWriteProbe>> probe =
      SyncWriteProbe::Open(scratch.Sub("floor-leveldb"), bytes);
  if (!probe.ok()) return probe.status();
  std::vector<std::unique_ptr<SyncWriteProbe>> parallel;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::unique_ptr<SyncWriteProbe>> p = SyncWriteProbe::Open(
        scratch.Sub(absl::StrCat("floor-leveldb-parallel-", i)), bytes);
    if (!p.ok()) return p.status();
    parallel.push_back(*std::move(p));
  }
  absl::StatusOr<std::unique_ptr<TcpEcho>> echo = TcpEcho::Start();
  if (!echo.ok()) return echo.status();

  http::ClientOptions client_options;
  client_options.follow_redirects = true;
  http::Client client(client_options);
  const http::Headers headers = {{"Content-Type", "application/octet-stream"}};
  const uint16_t port = cairn.http_port(leader);
  const int warmup = plan.serial_samples / 10;
  const absl::Time deadline = absl::Now() + plan.serial_time_cap;
  for (int i = 0; i < warmup + plan.serial_samples && absl::Now() < deadline;
       ++i) {
    const bool measured = i >= warmup;
    absl::StatusOr<double> put_us = (*probe)->TimedPut();
    if (!put_us.ok()) return put_us.status();
    absl::StatusOr<double> rtt_us = (*echo)->RoundTrip();
    if (!rtt_us.ok()) return rtt_us.status();
    std::vector<absl::StatusOr<double>> parallel_us(
        parallel.size(), absl::UnknownError("not run"));
    {
      std::vector<std::thread> threads;
      for (size_t p = 0; p < parallel.size(); ++p) {
        threads.emplace_back(
            [&, p] { parallel_us[p] = parallel[p]->TimedPut(); });
      }
      for (std::thread& t : threads) t.join();
    }
    const std::string body = Payload(absl::StrCat("serial-", i, "-"), bytes);
    const absl::Time start = absl::Now();
    absl::StatusOr<http::Response> r =
        client.Request("POST", kHost, port, "/log/append", headers, body);
    const double append_us = absl::ToDoubleMicroseconds(absl::Now() - start);
    if (!r.ok() || r->status != 200) {
      if (results->serial_failures++ == 0) {
        results->problems.push_back(
            absl::StrCat("cairn serial: first failed append: ",
                         r.ok() ? absl::StrCat(r->status, " ", r->body)
                                : r.status().ToString()));
      }
      continue;
    }
    if (!measured) continue;
    results->serial.Add(append_us);
    results->leveldb_sync.Add(*put_us);
    results->tcp_rtt.Add(*rtt_us);
    for (const absl::StatusOr<double>& us : parallel_us) {
      if (!us.ok()) return us.status();
      results->leveldb_sync3.Add(*us);
    }
  }
  if (client.connections_opened() > 1) {
    results->problems.push_back(absl::StrCat("cairn serial: keep-alive broke, ",
                                             client.connections_opened(),
                                             " connections opened"));
  }
  return absl::OkStatus();
}

HttpLoadSpec CairnLoad(CairnCluster& cairn, int leader, int n, const Plan& plan,
                       int bytes, int round) {
  HttpLoadSpec spec;
  spec.host = kHost;
  spec.port = cairn.http_port(leader);
  spec.target = "/log/append";
  spec.connections = n;
  spec.warmup = plan.slice_warmup;
  spec.duration = plan.slice;
  spec.body = [n, bytes, round](int conn, uint64_t seq) {
    return Payload(absl::StrCat("c", n, "-r", round, "-", conn, "-", seq, "-"),
                   bytes);
  };
  return spec;
}

HttpLoadSpec EtcdLoad(EtcdCluster& etcd, int leader, int n, const Plan& plan,
                      int bytes, int round) {
  HttpLoadSpec spec;
  spec.host = kHost;
  spec.port = etcd.client_port(leader);
  spec.target = etcd.put_target();
  spec.content_type = "application/json";
  spec.connections = n;
  spec.warmup = plan.slice_warmup;
  spec.duration = plan.slice;
  const std::string value = absl::Base64Escape(Payload("etcd-bench-", bytes));
  spec.body = [n, round, value](int conn, uint64_t seq) {
    return absl::StrCat("{\"key\":\"",
                        absl::Base64Escape(absl::StrCat(
                            "bench/c", n, "/r", round, "/", conn, "/", seq)),
                        "\",\"value\":\"", value, "\"}");
  };
  return spec;
}

// Throughput at each concurrency: LevelDB, Cairn and etcd take turns.
absl::Status MeasureThroughput(CairnCluster& cairn, int cairn_leader,
                               EtcdCluster* etcd, int etcd_leader,
                               const ScratchDir& scratch, const Plan& plan,
                               Results* results) {
  const int bytes = results->value_bytes;
  for (int n : kConcurrency) {
    Internals internals;
    for (int round = 0; round < plan.rounds; ++round) {
      Progress("throughput: %d concurrent writers, round %d of %d", n,
               round + 1, plan.rounds);
      absl::StatusOr<GroupCommitResult> db = MeasureLevelDbGroupCommit(
          scratch.Sub(absl::StrCat("leveldb-group-", n, "-", round)), n,
          plan.slice_warmup, plan.slice, bytes);
      if (!db.ok()) return db.status();
      Point& lp = results->leveldb[n];
      lp.seconds += db->seconds;
      lp.acks += db->writes;
      lp.latency_us.Merge(db->latency_us);

      const ClusterCounters before = SnapshotCounters(cairn);
      absl::StatusOr<HttpLoadResult> c =
          RunHttpLoad(CairnLoad(cairn, cairn_leader, n, plan, bytes, round));
      if (!c.ok()) return c.status();
      AddInternals(cairn_leader, before, SnapshotCounters(cairn), &internals);
      AddLoad(*c, &results->cairn[n]);
      NoteLoadFailures(absl::StrCat("cairn x", n, " round ", round + 1), *c,
                       results);

      if (etcd != nullptr) {
        absl::StatusOr<HttpLoadResult> e =
            RunHttpLoad(EtcdLoad(*etcd, etcd_leader, n, plan, bytes, round));
        if (!e.ok()) return e.status();
        AddLoad(*e, &results->etcd[n]);
        NoteLoadFailures(absl::StrCat("etcd x", n, " round ", round + 1), *e,
                         results);
      }
    }
    CheckCluster(cairn, cairn_leader, absl::StrCat("throughput x", n), results);
    results->cairn_internals.emplace_back(absl::StrCat(n, " appenders"),
                                          internals);
  }
  return absl::OkStatus();
}

absl::Status Run(const std::string& cairn_log, const ScratchDir& scratch,
                 const Plan& plan, Results* results) {
  Progress("cairn: starting 3 replicas (%s)", cairn_log);
  CairnClusterOptions cairn_options;
  cairn_options.cairn_log_binary = cairn_log;
  cairn_options.dir = scratch.Sub("cairn");
  cairn_options.extra_flags = absl::StrSplit(absl::GetFlag(FLAGS_replica_flags),
                                             ' ', absl::SkipEmpty());
  const absl::Time cairn_started = absl::Now();
  absl::StatusOr<std::unique_ptr<CairnCluster>> cairn =
      CairnCluster::Start(cairn_options);
  if (!cairn.ok()) return cairn.status();
  absl::StatusOr<int> cairn_leader = (*cairn)->LeaderIndex();
  if (!cairn_leader.ok()) return cairn_leader.status();
  Progress("cairn: leader is replica %d (http port %d), serving after %s",
           (*cairn)->id(*cairn_leader), (*cairn)->http_port(*cairn_leader),
           absl::FormatDuration(absl::Now() - cairn_started));

  std::unique_ptr<EtcdCluster> etcd;
  int etcd_leader = 0;
  uint64_t etcd_term = 0;
  if (!absl::GetFlag(FLAGS_skip_etcd)) {
    Progress("etcd: starting 3 members (%s)", absl::GetFlag(FLAGS_etcd));
    EtcdClusterOptions etcd_options;
    etcd_options.etcd_binary = absl::GetFlag(FLAGS_etcd);
    etcd_options.dir = scratch.path();
    absl::StatusOr<std::unique_ptr<EtcdCluster>> started =
        EtcdCluster::Start(etcd_options);
    if (started.ok()) {
      etcd = *std::move(started);
      absl::StatusOr<int> leader = etcd->LeaderIndex();
      if (leader.ok()) {
        etcd_leader = *leader;
      } else {
        results->problems.push_back(absl::StrCat(
            "etcd: leader unknown (", leader.status().ToString(),
            "); sending to member 1, which forwards to the leader"));
      }
      etcd_term = etcd->RaftTerm(etcd_leader);
      results->etcd_put_target = etcd->put_target();
      Progress("etcd: leader is member %d, puts go to %s", etcd_leader + 1,
               etcd->put_target());
    } else {
      // The peer is optional: report without it rather than not at all.
      results->problems.push_back(absl::StrCat("etcd peer not measured: ",
                                               started.status().ToString()));
      Progress("etcd failed: %s", started.status().ToString());
    }
  }

  const ClusterCounters at_start = SnapshotCounters(**cairn);
  Progress("serial: up to %d appends, each with its floor probes (at most %s)",
           plan.serial_samples, absl::FormatDuration(plan.serial_time_cap));
  absl::Status serial =
      MeasureSerialAndFloor(**cairn, *cairn_leader, scratch, plan, results);
  if (!serial.ok()) return serial;
  CheckCluster(**cairn, *cairn_leader, "serial appends", results);
  Internals serial_internals;
  AddInternals(*cairn_leader, at_start, SnapshotCounters(**cairn),
               &serial_internals);
  results->cairn_internals.emplace_back("serial", serial_internals);

  absl::Status throughput = MeasureThroughput(
      **cairn, *cairn_leader, etcd.get(), etcd_leader, scratch, plan, results);
  if (!throughput.ok()) return throughput;

  const ClusterCounters at_end = SnapshotCounters(**cairn);
  if (TotalElections(at_end) != TotalElections(at_start)) {
    results->problems.push_back(absl::StrCat(
        "cairn: ", TotalElections(at_end) - TotalElections(at_start),
        " election(s) won during the run"));
  }
  Progress("cairn: final view %s", LeadershipView(**cairn));
  if (etcd != nullptr) {
    const uint64_t term = etcd->RaftTerm(etcd_leader);
    if (term != etcd_term) {
      results->problems.push_back(absl::StrCat("etcd: raft term changed from ",
                                               etcd_term, " to ", term));
    }
    etcd->Stop();
    Progress("etcd: stopped");
  }
  std::vector<std::string> endings = (*cairn)->Stop();
  Progress("cairn: replicas stopped (%s)", absl::StrJoin(endings, ", "));
  for (size_t i = 0; i < endings.size(); ++i) {
    if (endings[i] != "exited 0") {
      results->problems.push_back(absl::StrCat(
          "cairn: replica ", i + 1, " did not stop cleanly: ", endings[i]));
    }
  }
  return absl::OkStatus();
}

// ---- the report
// ---------------------------------------------------------------

std::string Number(double v, int decimals) {
  return absl::StrFormat("%.*f", decimals, v);
}

// A JSON number, or null when the system was not measured.
std::string Rate(const std::map<int, Point>& points, int n) {
  auto it = points.find(n);
  return it == points.end() ? "null" : Number(it->second.per_second(), 1);
}

std::string Ratio(const std::map<int, Point>& ours,
                  const std::map<int, Point>& theirs, int n) {
  auto a = ours.find(n);
  auto b = theirs.find(n);
  if (a == ours.end() || b == theirs.end() || b->second.per_second() <= 0) {
    return "null";
  }
  return Number(a->second.per_second() / b->second.per_second(), 3);
}

void PrintReport(Results& r) {
  const double floor = r.floor_us();
  const double serial_p50 = r.serial.Quantile(0.5);
  const double serial_p99 = r.serial.Quantile(0.99);
  const double p50_over_floor = floor > 0 ? serial_p50 / floor : 0;
  const double p99_over_floor = floor > 0 ? serial_p99 / floor : 0;
  absl::PrintF("\nCairn replicated log benchmark (%s run, %d-byte entries)\n",
               r.quick ? "quick" : "full", r.value_bytes);
  if (!absl::GetFlag(FLAGS_replica_flags).empty()) {
    absl::PrintF("Replica flags: %s\n", absl::GetFlag(FLAGS_replica_flags));
  }
  absl::PrintF(
      "\nSerial appends and the floor (sampled one for one, same disk)\n");
  auto line = [](absl::string_view name, LatencySamples& s,
                 absl::string_view note) {
    absl::PrintF("  %-38s %9.1f us  (p99 %8.1f, n=%d)%s\n", name,
                 s.Quantile(0.5), s.Quantile(0.99), s.count(), note);
  };
  line("LevelDB sync put p50", r.leveldb_sync, "");
  line("loopback TCP round trip p50", r.tcp_rtt, "");
  absl::PrintF("  %-38s %9.1f us\n", "floor F", floor);
  line("Cairn serial append p50", r.serial, "");
  absl::PrintF("  %-38s %9.2f      (p99: %.2f F)\n", "p50 / F", p50_over_floor,
               p99_over_floor);
  line("LevelDB sync put p50, 3 DBs at once", r.leveldb_sync3, "  not in F");
  if (r.serial_failures > 0) {
    absl::PrintF("  %d serial appends failed\n", r.serial_failures);
  }

  absl::PrintF(
      "\nThroughput: acknowledged writes/s (latency p50/p99 ms); systems take "
      "turns\n");
  absl::PrintF("  %-22s", "concurrency");
  for (int n : kConcurrency) absl::PrintF(" %22d", n);
  absl::PrintF("\n");
  auto row = [](absl::string_view name, std::map<int, Point>& points) {
    absl::PrintF("  %-22s", name);
    for (int n : kConcurrency) {
      auto it = points.find(n);
      if (it == points.end()) {
        absl::PrintF(" %22s", "-");
        continue;
      }
      absl::PrintF(" %22s", absl::StrFormat(
                                "%.0f (%.1f/%.1f)", it->second.per_second(),
                                it->second.latency_us.Quantile(0.5) / 1000,
                                it->second.latency_us.Quantile(0.99) / 1000));
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
      absl::PrintF(" %22s", Ratio(r.cairn, theirs, n));
    }
    absl::PrintF("\n");
  };
  ratio_row("cairn / leveldb", r.leveldb);
  ratio_row("cairn / etcd", r.etcd);
  if (!r.etcd_put_target.empty()) {
    absl::PrintF("  (etcd puts through its HTTP/JSON gateway, %s)\n",
                 r.etcd_put_target);
  }

  absl::PrintF(
      "\nWhat the Cairn replicas did (their /log/status counters, warm-up "
      "and drain included)\n");
  for (const auto& [phase, internals] : r.cairn_internals) {
    absl::PrintF("  %s\n", DescribeInternals(phase, internals));
  }
  absl::PrintF("\nProblems observed: %s\n", r.problems.empty() ? "none" : "");
  for (const std::string& p : r.problems) absl::PrintF("  - %s\n", p);

  // The machine-readable summary: always the very last line.
  std::vector<std::string> fields = {
      absl::StrCat("\"p50_over_floor\":", Number(p50_over_floor, 3)),
      absl::StrCat("\"p99_over_floor\":", Number(p99_over_floor, 3)),
      absl::StrCat("\"floor_us\":", Number(floor, 1)),
      absl::StrCat("\"leveldb_sync_p50_us\":",
                   Number(r.leveldb_sync.Quantile(0.5), 1)),
      absl::StrCat("\"tcp_rtt_p50_us\":", Number(r.tcp_rtt.Quantile(0.5), 1)),
      absl::StrCat("\"leveldb_sync3_p50_us\":",
                   Number(r.leveldb_sync3.Quantile(0.5), 1)),
      absl::StrCat("\"serial_p50_us\":", Number(serial_p50, 1)),
      absl::StrCat("\"serial_p99_us\":", Number(serial_p99, 1)),
  };
  for (int n : kConcurrency) {
    fields.push_back(absl::StrCat("\"throughput_", n, "\":", Rate(r.cairn, n)));
  }
  for (int n : kConcurrency) {
    fields.push_back(
        absl::StrCat("\"leveldb_throughput_", n, "\":", Rate(r.leveldb, n)));
  }
  for (int n : kConcurrency) {
    fields.push_back(
        absl::StrCat("\"etcd_throughput_", n, "\":", Rate(r.etcd, n)));
  }
  for (int n : kConcurrency) {
    fields.push_back(
        absl::StrCat("\"ratio_vs_etcd_", n, "\":", Ratio(r.cairn, r.etcd, n)));
  }
  for (int n : kConcurrency) {
    fields.push_back(absl::StrCat("\"ratio_vs_leveldb_", n,
                                  "\":", Ratio(r.cairn, r.leveldb, n)));
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
  Progress("scratch directory%s: %s",
           absl::GetFlag(FLAGS_keep_scratch) ? " (kept)" : "",
           (*scratch)->path());
  absl::Status status = Run(cairn_log, **scratch, plan, &results);
  if (!status.ok()) {
    Progress("error: %s", status.ToString());
    return 1;
  }
  Progress("done in %s", absl::FormatDuration(absl::Now() - started));
  PrintReport(results);
  return 0;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
