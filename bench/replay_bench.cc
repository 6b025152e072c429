// replay_bench: how fast the master's state is rebuilt from its log, against
// the floor of reading the same log.
//
// One run: N valid events, each serialized as a cairn.v1.Event and written
// to a fresh
// LevelDB (scratch directory, removed at the end) under its 8-byte
// big-endian ordinal (batched writes, no sync). The database is then closed,
// compacted and reopened so every pass reads SSTables, not the memtable.
// Four passes, interleaved per repetition, median reported:
//  - scan:    iterate all entries, touching every byte of every value;
//  - parse:   scan + Event::ParseFromArray (a breakdown, not the goal);
//  - rebuild: scan + parse + MasterState::Apply(const Event&) into a fresh
//             state (what the master's and recovery's replay loops call);
//  - rebuild_move: the same with Apply(Event&&), which moves the event's
//             parts into the state instead of copying them.
// The goal (issue): rebuild within 2x of scan. Both rebuilt states are
// checked against the generator's (operator==).
//
// Events come from SteadyEvents below by default: 100 agents and 10
// frameworks register, then tasks cycle through offer, launch, RUNNING, ack,
// FINISHED, ack, on 400 slots round-robin (a cluster in steady state: about
// 400 live tasks, completed tasks capped per framework). `--random_events`
// uses recovery/testing's RandomEvents instead (a wider mix, but its
// generation is quadratic in N: ~40 s for 1e5 events; hence testonly).
//
//   bazel run -c opt //bench:replay_bench -- [--quick] [--events=N] [--reps=N]
//       [--random_events]
//
// Prints a table, then a last line that is one JSON object of the figures.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/internal/scratch_dir.h"
#include "cairn/v1/master.pb.h"
#include "leveldb/db.h"
#include "leveldb/iterator.h"
#include "leveldb/options.h"
#include "leveldb/write_batch.h"
#include "master/resources.h"
#include "master/state.h"
#include "recovery/testing/random_events.h"

namespace cairn::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kSeed = 20261125;
constexpr int kBatchEntries = 1000;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string Key(uint64_t ordinal) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = char(ordinal & 0xff);
    ordinal >>= 8;
  }
  return std::string(buf, 8);
}

void Check(const leveldb::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

std::unique_ptr<leveldb::DB> Open(const std::string& path) {
  leveldb::Options options;
  options.create_if_missing = true;
  leveldb::DB* db = nullptr;
  Check(leveldb::DB::Open(options, path, &db), "open");
  return std::unique_ptr<leveldb::DB>(db);
}

// A generator of valid events for a cluster in steady state, linear in N.
// Every event is applied to state() before it is returned (a rejected one is
// a bug here: exit). Thread safety: none.
class SteadyEvents {
 public:
  static constexpr int kAgents = 100;
  static constexpr int kFrameworks = 10;
  static constexpr int kSlotsPerAgent = 4;

  SteadyEvents()
      : agent_resources_(*master::Resources::Parse("cpus:8;mem:8192")),
        offer_resources_(
            master::Resources::Parse("cpus:1;mem:512")->AllocatedTo("web")),
        slots_(kAgents * kSlotsPerAgent) {}

  v1::Event Next() {
    v1::Event e = Propose();
    e.set_position(++position_);
    e.set_index(0);
    *e.mutable_time() =
        master::FromTime(absl::FromUnixSeconds(1700000000) +
                         absl::Milliseconds(10 * int64_t(position_)));
    e.set_principal("bench");
    absl::Status s = state_.Apply(e);
    if (!s.ok()) {
      std::fprintf(stderr, "generated an invalid event: %s\n",
                   s.ToString().c_str());
      std::exit(1);
    }
    return e;
  }

  const master::MasterState& state() const { return state_; }

 private:
  struct Slot {
    int step = 0;  // 0 offer, 1 launch, 2 RUNNING, 3 ack, 4 FINISHED, 5 ack
    std::string offer_id;
    std::string task_id;
    std::string uuid;
  };

  static std::string AgentId(int i) { return absl::StrFormat("agent-%04d", i); }
  static std::string FrameworkId(int i) {
    return absl::StrFormat("fw-%03d", i);
  }

  v1::Event Propose() {
    v1::Event e;
    if (registered_agents_ < kAgents) {
      auto* info = e.mutable_agent_registered()->mutable_info();
      const std::string id = AgentId(registered_agents_++);
      info->mutable_id()->set_value(id);
      info->set_hostname(id + ".example");
      agent_resources_.ToProto(info->mutable_resources());
      e.mutable_agent_registered()->set_version("1.0");
      return e;
    }
    if (subscribed_frameworks_ < kFrameworks) {
      auto* info = e.mutable_framework_subscribed()->mutable_info();
      const std::string id = FrameworkId(subscribed_frameworks_++);
      info->mutable_id()->set_value(id);
      info->set_user("nobody");
      info->set_name(id);
      info->set_principal("p-" + id);
      info->set_failover_timeout(3600);
      info->add_roles("web");
      return e;
    }
    const size_t index = next_slot_;
    next_slot_ = (next_slot_ + 1) % slots_.size();
    Slot& slot = slots_[index];
    const std::string agent = AgentId(int(index / kSlotsPerAgent));
    const std::string framework = FrameworkId(int(index % kFrameworks));
    switch (slot.step) {
      case 0: {
        slot.offer_id = absl::StrFormat("offer-%d", next_id_++);
        e.mutable_offers_created()->set_allocation_cycle(next_id_++);
        v1::Offer* offer = e.mutable_offers_created()->add_offers();
        offer->mutable_id()->set_value(slot.offer_id);
        offer->mutable_framework_id()->set_value(framework);
        offer->mutable_agent_id()->set_value(agent);
        offer->set_hostname(agent + ".example");
        offer->mutable_allocation_info()->set_role("web");
        offer_resources_.ToProto(offer->mutable_resources());
        break;
      }
      case 1: {
        slot.task_id = absl::StrFormat("task-%d", next_id_++);
        auto* launch = e.mutable_tasks_launched();
        launch->mutable_framework_id()->set_value(framework);
        launch->add_offer_ids()->set_value(slot.offer_id);
        v1::TaskInfo* task = launch->add_tasks();
        task->set_name(slot.task_id);
        task->mutable_task_id()->set_value(slot.task_id);
        task->mutable_agent_id()->set_value(agent);
        task->mutable_command()->set_value("sleep 100");
        offer_resources_.ToProto(task->mutable_resources());
        break;
      }
      case 2:
      case 4: {
        slot.uuid = absl::StrFormat("uuid-%d", next_id_++);
        auto* u = e.mutable_task_status_updated();
        u->mutable_framework_id()->set_value(framework);
        v1::TaskStatus* s = u->mutable_status();
        s->mutable_task_id()->set_value(slot.task_id);
        s->set_state(slot.step == 2 ? v1::TASK_RUNNING : v1::TASK_FINISHED);
        s->set_source(v1::TaskStatus::SOURCE_EXECUTOR);
        s->set_uuid(slot.uuid);
        break;
      }
      default: {
        auto* a = e.mutable_task_status_acknowledged();
        a->mutable_framework_id()->set_value(framework);
        a->mutable_task_id()->set_value(slot.task_id);
        a->mutable_agent_id()->set_value(agent);
        a->set_uuid(slot.uuid);
        break;
      }
    }
    slot.step = (slot.step + 1) % 6;
    return e;
  }

  const master::Resources agent_resources_;
  const master::Resources offer_resources_;
  master::MasterState state_;
  std::vector<Slot> slots_;
  size_t next_slot_ = 0;
  int registered_agents_ = 0;
  int subscribed_frameworks_ = 0;
  uint64_t position_ = 0;
  uint64_t next_id_ = 1;
};

// Generates and writes `n` events from `events` (SteadyEvents or
// RandomEvents); returns the generator's final state (the expected result of
// a rebuild) and the bytes written via `bytes`.
template <typename Generator>
master::MasterState Populate(Generator& events, leveldb::DB* db, uint64_t n,
                             uint64_t* bytes) {
  leveldb::WriteOptions write_options;
  write_options.sync = false;
  leveldb::WriteBatch batch;
  std::string value;
  *bytes = 0;
  for (uint64_t i = 0; i < n; ++i) {
    v1::Event e = events.Next();
    value.clear();
    e.SerializeToString(&value);
    *bytes += value.size();
    batch.Put(Key(i + 1), value);
    if ((i + 1) % kBatchEntries == 0 || i + 1 == n) {
      Check(db->Write(write_options, &batch), "write");
      batch.Clear();
    }
  }
  return events.state();
}

// The three passes. Each returns seconds and fills a checksum so the
// compiler cannot drop the work.
double Scan(leveldb::DB* db, uint64_t* checksum) {
  Clock::time_point start = Clock::now();
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
  uint64_t sum = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    leveldb::Slice v = it->value();
    const unsigned char* p = reinterpret_cast<const unsigned char*>(v.data());
    for (size_t i = 0; i < v.size(); ++i) sum += p[i];
  }
  Check(it->status(), "scan");
  *checksum += sum;
  return SecondsSince(start);
}

double ScanParse(leveldb::DB* db, uint64_t* checksum) {
  Clock::time_point start = Clock::now();
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
  v1::Event event;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    leveldb::Slice v = it->value();
    if (!event.ParseFromArray(v.data(), int(v.size()))) {
      std::fprintf(stderr, "parse failed\n");
      std::exit(1);
    }
    *checksum += event.position();
  }
  Check(it->status(), "scan");
  return SecondsSince(start);
}

// `move`: Apply(Event&&) (the caller is done with each event) instead of
// Apply(const Event&).
double Rebuild(leveldb::DB* db, master::MasterState* state, bool move) {
  Clock::time_point start = Clock::now();
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
  v1::Event event;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    leveldb::Slice v = it->value();
    if (!event.ParseFromArray(v.data(), int(v.size()))) {
      std::fprintf(stderr, "parse failed\n");
      std::exit(1);
    }
    absl::Status s =
        move ? state->Apply(std::move(event)) : state->Apply(event);
    if (!s.ok()) {
      std::fprintf(stderr, "apply failed: %s\n", s.ToString().c_str());
      std::exit(1);
    }
  }
  Check(it->status(), "scan");
  return SecondsSince(start);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Main(int argc, char** argv) {
  bool quick = false;
  bool random_events = false;
  int64_t events = -1;
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strncmp(argv[i], "--events=", 9) == 0) {
      events = std::atoll(argv[i] + 9);
    } else if (std::strcmp(argv[i], "--random_events") == 0) {
      random_events = true;
    } else if (std::strncmp(argv[i], "--reps=", 7) == 0) {
      reps = std::max(1, std::atoi(argv[i] + 7));
    } else {
      std::fprintf(stderr,
                   "usage: replay_bench [--quick] [--events=N] [--reps=N] "
                   "[--random_events]\n");
      return 2;
    }
  }
  if (events <= 0) events = quick ? 100000 : 1000000;
  const uint64_t n = uint64_t(events);

  absl::StatusOr<std::unique_ptr<ScratchDir>> scratch =
      ScratchDir::Create("replay_bench.");
  if (!scratch.ok()) {
    std::fprintf(stderr, "%s\n", scratch.status().ToString().c_str());
    return 1;
  }
  const std::string path = (*scratch)->Sub("db");

  std::fprintf(stderr, "generating and writing %llu events...\n",
               (unsigned long long)n);
  Clock::time_point start = Clock::now();
  uint64_t bytes = 0;
  master::MasterState expected;
  {
    std::unique_ptr<leveldb::DB> db = Open(path);
    if (random_events) {
      recovery::testing::RandomEvents generator(
          kSeed, absl::FromUnixSeconds(1700000000));
      expected = Populate(generator, db.get(), n, &bytes);
    } else {
      SteadyEvents generator;
      expected = Populate(generator, db.get(), n, &bytes);
    }
    db->CompactRange(nullptr, nullptr);
  }
  std::fprintf(stderr, "  %.1f s, %.1f MB of events\n", SecondsSince(start),
               bytes / 1e6);
  std::unique_ptr<leveldb::DB> db = Open(path);

  uint64_t checksum = 0;
  Scan(db.get(), &checksum);  // warm the page cache and block cache alike
  std::vector<double> scan, parse, rebuild, rebuild_move;
  bool state_ok = true;
  for (int r = 0; r < reps; ++r) {
    scan.push_back(Scan(db.get(), &checksum));
    parse.push_back(ScanParse(db.get(), &checksum));
    master::MasterState state;
    rebuild.push_back(Rebuild(db.get(), &state, /*move=*/false));
    if (state.events_applied() != n || state != expected) state_ok = false;
    master::MasterState moved;
    rebuild_move.push_back(Rebuild(db.get(), &moved, /*move=*/true));
    if (moved.events_applied() != n || moved != expected) state_ok = false;
  }
  db.reset();
  if (!state_ok) {
    std::fprintf(stderr, "rebuilt state differs from the generator's\n");
    return 1;
  }

  const double s = Median(scan), p = Median(parse), b = Median(rebuild),
               m = Median(rebuild_move);
  std::printf("%10s %8s %9s %9s %11s %8s %11s %8s %10s\n", "events", "MB",
              "scan_ms", "parse_ms", "rebuild_ms", "/scan", "rebuild_mv",
              "/scan", "events/s");
  std::printf("%10llu %8.1f %9.1f %9.1f %11.1f %8.2f %11.1f %8.2f %10.0f\n",
              (unsigned long long)n, bytes / 1e6, s * 1e3, p * 1e3, b * 1e3,
              b / s, m * 1e3, m / s, n / b);
  std::printf(
      "(medians of %d; parse = scan + parse, rebuild = scan + parse + "
      "Apply(const Event&), rebuild_mv = the same with "
      "Apply(Event&&); goal: rebuild/scan <= 2; checksum %llu)\n",
      reps, (unsigned long long)(checksum % 1000));
  std::printf("%s\n",
              absl::StrFormat(
                  "{\"events\":%d,\"scan_ms\":%.1f,\"parse_ms\":%.1f,"
                  "\"rebuild_ms\":%.1f,\"rebuild_over_scan\":%.2f,"
                  "\"rebuild_move_ms\":%.1f,\"rebuild_move_over_scan\":%.2f,"
                  "\"events_per_s\":%.0f,\"generator\":\"%s\",\"quick\":%s}",
                  n, s * 1e3, p * 1e3, b * 1e3, b / s, m * 1e3, m / s, n / b,
                  random_events ? "random" : "steady", quick ? "true" : "false")
                  .c_str());
  return 0;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
