#include "sim/log_sim.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"

namespace cairn::sim {

using cairn::v1::Action;
using cairn::v1::Metadata;
using cairn::v1::Value;

namespace {

// The seed and replica count of the run in progress, for the CHECK reporter.
struct CurrentRun {
  bool active = false;
  SimOptions options;
  const LogCluster* cluster = nullptr;
};
CurrentRun current_run;

// Per-step probabilities of each fault, chosen once per seed.
struct FaultRates {
  double crash = 0;
  double wipe = 0;
  double corrupt = 0;
  double partition = 0;
  double campaign = 0;
  double truncate = 0;
  double client = 0;           // probability of a client burst per step
  double to_leader = 0.9;      // a request goes to the serving leader
  bool majority_crashes = false;  // crashes may take down a majority
};

template <typename T>
T Pick(std::mt19937_64& rng, std::initializer_list<T> choices) {
  std::vector<T> v(choices);
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}

constexpr size_t kMaxOutstanding = 64;

bool Chance(std::mt19937_64& rng, double p) {
  return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < p;
}

int64_t Uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, std::max(lo, hi))(rng);
}

absl::Duration UniformMs(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return absl::Milliseconds(Uniform(rng, lo, hi));
}

class Simulation {
 public:
  explicit Simulation(const SimOptions& options) : options_(options) {
    std::mt19937_64 params(options.seed ^ 0x5eed5eed5eed5eedull);
    ChooseConfiguration(params);
    cluster_ = std::make_unique<LogCluster>(options.seed, cluster_options_);
    damaged_.assign(options.replicas + 1, false);
    corrupt_.assign(options.replicas + 1, {});
    restart_at_.assign(options.replicas + 1, absl::InfiniteFuture());
  }

  SimResult Run();

 private:
  void ChooseConfiguration(std::mt19937_64& rng);
  void InjectFaults();
  void SubmitClientRequests();
  void UpdateDamage();
  void MaybeHealPartition();
  size_t Down() const;
  size_t DamagedOtherThan(uint32_t id) const;
  size_t HealthyOtherThan(uint32_t id) const;
  uint32_t RandomNode();
  std::vector<uint32_t> LiveNodes() const;
  void Heal();
  void RestartStalled(std::map<uint32_t, std::pair<uint64_t, int>>& progress,
                      std::set<uint32_t>& restarted);
  bool Converged(std::string* why);
  void Scrub();
  void FinalChecks();
  std::string ClusterState();

  std::mt19937_64& rng() { return cluster_->rng(); }
  size_t f() const { return (options_.replicas - 1) / 2; }

  const SimOptions options_;
  ClusterOptions cluster_options_;
  FaultRates rates_;
  std::string description_;
  std::unique_ptr<LogCluster> cluster_;

  std::vector<bool> damaged_;                    // wiped, not yet VOTING again
  std::vector<std::set<uint64_t>> corrupt_;      // damaged records per node
  std::vector<absl::Time> restart_at_;           // when a down node restarts
  absl::Time partition_heals_ = absl::InfinitePast();
};

void Simulation::ChooseConfiguration(std::mt19937_64& rng) {
  log::Config& c = cluster_options_.config;
  c.heartbeat_interval = UniformMs(rng, 20, 60);
  c.lease_duration = UniformMs(rng, 200, 400);
  c.election_timeout = c.lease_duration + UniformMs(rng, 50, 300);
  c.retransmit_interval = UniformMs(rng, 30, 100);
  c.fetch_interval = UniformMs(rng, 2, 10);
  c.fetch_timeout = UniformMs(rng, 50, 200);
  c.fetch_max_actions = Pick<uint32_t>(rng, {4, 16, 64, 512});
  c.recover_interval = UniformMs(rng, 30, 120);
  c.sticky_leader = Chance(rng, 0.5);
  c.max_in_flight = Pick<size_t>(rng, {1, 3, 8});
  c.max_batch_entries = Pick<size_t>(rng, {1, 4, 64});
  c.promise_page_actions = Pick<uint32_t>(rng, {2, 16, 1024});
  if (options_.tolerate.phase1_paging && c.promise_page_actions < 16) {
    c.promise_page_actions = 16;
  }

  NetworkFaults& n = cluster_options_.network;
  n.drop = Pick<double>(rng, {0.0, 0.01, 0.05, 0.15});
  n.duplicate = Pick<double>(rng, {0.0, 0.02, 0.1});
  n.min_delay = absl::Milliseconds(1);
  n.max_delay = UniformMs(rng, 2, 30);

  if (options_.hostile_network) {
    // From a separate stream, so the choices above stay those of the seed.
    std::mt19937_64 hostile(options_.seed ^ 0x4057113ull);
    n.spike = Pick<double>(hostile, {0.0, 0.005, 0.02});
    n.spike_delay = UniformMs(hostile, 100, 600);
    const int lossy = static_cast<int>(Uniform(hostile, 0, options_.replicas));
    for (int i = 0; i < lossy; ++i) {
      const uint32_t a = Uniform(hostile, 1, options_.replicas);
      const uint32_t b = Uniform(hostile, 1, options_.replicas);
      if (a != b) n.lossy_links[{a, b}] = Pick<double>(hostile, {0.3, 0.6, 0.9});
    }
  }

  // Half the seeds give each node its own clock rate, as far apart as the
  // configuration allows (the lease's safety margin).
  std::mt19937_64 clocks(options_.seed ^ 0xd21f7ull);
  cluster_options_.clock_drift = Chance(clocks, 0.5) ? c.max_clock_drift : 0.0;

  cluster_options_.replicas = options_.replicas;
  cluster_options_.trace = options_.trace;

  // How stormy: 0 calm (no node or disk faults), 1 normal, 2 heavy.
  const int storm = Pick<int>(rng, {0, 1, 1, 1, 2});
  const double k = storm == 0 ? 0.0 : storm == 1 ? 1.0 : 3.0;
  rates_.crash = 0.002 * k;
  rates_.wipe = 0.0006 * k;
  rates_.corrupt = 0.0006 * k;
  rates_.partition = 0.002 * k;
  rates_.campaign = (c.sticky_leader ? 0.001 : 0.004) * (storm == 0 ? 1 : k);
  rates_.truncate = Pick<double>(rng, {0.0, 0.002, 0.01});
  rates_.client = Pick<double>(rng, {0.1, 0.3, 0.6});
  rates_.to_leader = Pick<double>(rng, {0.7, 0.95});
  rates_.majority_crashes = Chance(rng, 0.25);

  std::string hostile;
  if (options_.hostile_network) {
    hostile = absl::StrFormat(" spike=%.3f/%dms lossy_links=%d", n.spike,
                              absl::ToInt64Milliseconds(n.spike_delay),
                              n.lossy_links.size());
  }
  description_ = absl::StrFormat(
      "n=%d storm=%d sticky=%d hb=%dms lease=%dms election=%dms "
      "retransmit=%dms fetch_max=%d page=%d in_flight=%d batch=%d "
      "drop=%.2f dup=%.2f delay<=%dms truncate=%.3f client=%.1f "
      "majority_crashes=%d",
      options_.replicas, storm, c.sticky_leader,
      absl::ToInt64Milliseconds(c.heartbeat_interval),
      absl::ToInt64Milliseconds(c.lease_duration),
      absl::ToInt64Milliseconds(c.election_timeout),
      absl::ToInt64Milliseconds(c.retransmit_interval), c.fetch_max_actions,
      c.promise_page_actions, c.max_in_flight, c.max_batch_entries, n.drop,
      n.duplicate, absl::ToInt64Milliseconds(n.max_delay), rates_.truncate,
      rates_.client, rates_.majority_crashes) +
                 absl::StrFormat(" clock_drift=%.2f",
                                 cluster_options_.clock_drift) +
                 hostile;
}

std::vector<uint32_t> Simulation::LiveNodes() const {
  std::vector<uint32_t> live;
  for (uint32_t id : cluster_->ids()) {
    if (cluster_->up(id)) live.push_back(id);
  }
  return live;
}

uint32_t Simulation::RandomNode() {
  return static_cast<uint32_t>(Uniform(rng(), 1, options_.replicas));
}

size_t Simulation::Down() const {
  return options_.replicas - LiveNodes().size();
}

size_t Simulation::DamagedOtherThan(uint32_t id) const {
  size_t n = 0;
  for (uint32_t i : cluster_->ids()) {
    if (i != id && (damaged_[i] || !corrupt_[i].empty())) ++n;
  }
  return n;
}

// Healthy: VOTING (as last seen, if down) with an intact disk. Disk faults
// are injected only while the other healthy nodes still form a quorum: losing
// the disks (or votes) of a majority is refused by design, not a bug.
size_t Simulation::HealthyOtherThan(uint32_t id) const {
  size_t n = 0;
  for (uint32_t i : cluster_->ids()) {
    if (i != id && !damaged_[i] && corrupt_[i].empty() &&
        cluster_->status(i) == Metadata::VOTING) {
      ++n;
    }
  }
  return n;
}

// A wiped node is damaged until it votes again; a corrupted record is
// damage until it reads back fine (rewritten or truncated away).
void Simulation::UpdateDamage() {
  for (uint32_t id : cluster_->ids()) {
    if (damaged_[id] && cluster_->up(id) &&
        cluster_->status(id) == Metadata::VOTING) {
      damaged_[id] = false;
    }
    // Under F2 a record below `begin` may linger; the replica never reads it.
    const uint64_t ignore_below =
        options_.tolerate.records_below_begin && cluster_->up(id)
            ? cluster_->node(id)->replica().begin()
            : 0;
    // Healed only once both what the replica reads now and what a crash
    // would leave read back fine: an unsynced rewrite is undone by a crash,
    // and a damaged unsynced write becomes durable with the next sync.
    auto fine = [](const auto& read) {
      return read.ok() || read.status().code() != absl::StatusCode::kDataLoss;
    };
    for (auto it = corrupt_[id].begin(); it != corrupt_[id].end();) {
      const bool healed =
          *it < ignore_below ||
          (fine(cluster_->storage(id).Read(*it)) &&
           fine(cluster_->storage(id).TEST_ReadDurable(*it)));
      it = healed ? corrupt_[id].erase(it) : std::next(it);
    }
  }
}

void Simulation::MaybeHealPartition() {
  if (cluster_->network().partitioned() &&
      cluster_->now() >= partition_heals_) {
    cluster_->network().HealAll();
    if (options_.trace != nullptr) *options_.trace << "network heals\n";
  }
}

void Simulation::InjectFaults() {
  const absl::Time now = cluster_->now();
  // Restarts.
  for (uint32_t id : cluster_->ids()) {
    if (!cluster_->up(id) && now >= restart_at_[id]) {
      restart_at_[id] = absl::InfiniteFuture();
      cluster_->Restart(id);
    }
  }
  MaybeHealPartition();

  if (Chance(rng(), rates_.crash)) {
    const uint32_t id = RandomNode();
    const size_t limit = rates_.majority_crashes ? options_.replicas - 1 : f();
    if (cluster_->up(id) && Down() + 1 <= limit) {
      const CrashPoint point =
          Pick(rng(), {CrashPoint::kNow, CrashPoint::kBeforeWrite,
                       CrashPoint::kAfterWrite});
      const size_t keep = Pick<size_t>(rng(), {0, 0, 1, 3});
      cluster_->Crash(id, point, keep);
      restart_at_[id] = now + UniformMs(rng(), 20, 1500);
    }
  }
  if (Chance(rng(), rates_.wipe)) {
    const uint32_t id = RandomNode();
    // A majority of lost disks is refused by design. One damaged disk at a
    // time, and a minority down at most.
    const size_t down_after = Down() + (cluster_->up(id) ? 1 : 0);
    if (DamagedOtherThan(id) == 0 && down_after <= f() &&
        HealthyOtherThan(id) >= options_.replicas - f()) {
      cluster_->Wipe(id);
      damaged_[id] = true;
      corrupt_[id].clear();
      restart_at_[id] = now + UniformMs(rng(), 10, 800);
    }
  }
  if (Chance(rng(), rates_.corrupt)) {
    const uint32_t id = RandomNode();
    auto last = cluster_->storage(id).LastPosition();
    if (last.ok() && *last > 0 &&
        HealthyOtherThan(id) >= options_.replicas - f()) {
      for (int attempt = 0; attempt < 4; ++attempt) {
        const uint64_t p = Uniform(rng(), 1, *last);
        if (cluster_->Corrupt(id, p).ok()) {
          corrupt_[id].insert(p);
          break;
        }
      }
    }
  }
  if (!cluster_->network().partitioned() && Chance(rng(), rates_.partition)) {
    SimNetwork& net = cluster_->network();
    if (Chance(rng(), 0.5)) {
      // Symmetric: a random non-empty proper subset against the rest.
      std::vector<bool> side(options_.replicas + 1);
      size_t in = 0;
      for (uint32_t id : cluster_->ids()) {
        side[id] = Chance(rng(), 0.5);
        in += side[id];
      }
      if (in == 0) side[RandomNode()] = true;
      if (in == cluster_->ids().size()) side[RandomNode()] = false;
      for (uint32_t a : cluster_->ids()) {
        for (uint32_t b : cluster_->ids()) {
          if (side[a] && !side[b]) net.CutBoth(a, b);
        }
      }
    } else {
      // One-way: a few directed links.
      const int links = static_cast<int>(Uniform(rng(), 1, options_.replicas));
      for (int i = 0; i < links; ++i) {
        const uint32_t a = RandomNode(), b = RandomNode();
        if (a != b) net.Cut(a, b);
      }
    }
    partition_heals_ = now + UniformMs(rng(), 50, 1500);
    if (options_.trace != nullptr) *options_.trace << "network partitions\n";
  }
  if (Chance(rng(), rates_.campaign)) {
    const uint32_t id = RandomNode();
    // Node::MaybeCampaign only campaigns from a voting replica; so do we.
    if (cluster_->up(id) && cluster_->status(id) == Metadata::VOTING) {
      cluster_->Campaign(id);
    }
  }
  if (Chance(rng(), rates_.truncate)) {
    if (auto leader = cluster_->ServingLeader()) {
      log::Node* node = cluster_->node(*leader);
      const uint64_t committed = node->proposer().committed();
      const uint64_t begin = node->replica().begin();
      if (committed >= begin) {
        cluster_->Truncate(*leader, Uniform(rng(), begin, committed));
      }
    }
  }
}

void Simulation::SubmitClientRequests() {
  if (!Chance(rng(), rates_.client)) return;
  // Clients have bounded concurrency (the Proposer queues without limit).
  if (cluster_->pending_requests() >= kMaxOutstanding) return;
  const int burst = static_cast<int>(Uniform(rng(), 1, 3));
  for (int i = 0; i < burst; ++i) {
    std::optional<uint32_t> leader = cluster_->ServingLeader();
    uint32_t target = RandomNode();
    if (leader.has_value() && Chance(rng(), rates_.to_leader)) target = *leader;
    cluster_->Append(target);
  }
}

std::string Simulation::ClusterState() {
  std::vector<std::string> lines;
  for (uint32_t id : cluster_->ids()) {
    log::Node* node = cluster_->node(id);
    if (node == nullptr) {
      lines.push_back(absl::StrCat("node ", id, ": down"));
      continue;
    }
    const log::Replica& r = node->replica();
    lines.push_back(absl::StrCat(
        "node ", id, ": ", Metadata::Status_Name(r.status()), " begin ",
        r.begin(), " learned_through ", r.learned_through(), " end ", r.end(),
        " promised ", log::BallotString(r.promised()), " role ",
        static_cast<int>(node->proposer().role()), " serving ",
        node->IsServingLeader(cluster_->NodeNow(id)), " committed ",
        node->proposer().committed(), " detail '", r.status_detail(), "'"));
  }
  return absl::StrJoin(lines, "; ");
}

// Reads every replica's learned log the way an application would, so that
// a record corrupted after it was learned is noticed (and re-fetched).
void Simulation::Scrub() {
  for (uint32_t id : LiveNodes()) {
    log::Node* node = cluster_->node(id);
    if (node->replica().status() != Metadata::VOTING) continue;
    (void)node->Read(node->replica().begin(),
                     std::numeric_limits<uint64_t>::max(),
                     std::numeric_limits<size_t>::max());
  }
}

bool Simulation::Converged(std::string* why) {
  uint64_t target = cluster_->checker().max_learned_position();
  for (uint32_t id : cluster_->ids()) {
    log::Node* node = cluster_->node(id);
    if (node == nullptr) {
      *why = absl::StrCat("node ", id, " is down");
      return false;
    }
    if (node->replica().status() != Metadata::VOTING) {
      *why = absl::StrCat("node ", id, " is not VOTING");
      return false;
    }
    target = std::max(target, node->proposer().committed());
  }
  for (uint32_t id : cluster_->ids()) {
    const log::Replica& r = cluster_->node(id)->replica();
    if (r.learned_through() < target) {
      *why = absl::StrCat("node ", id, " learned through ", r.learned_through(),
                          " < ", target);
      return false;
    }
    if (!corrupt_[id].empty()) {
      *why = absl::StrCat("node ", id, " still has a corrupted record at ",
                          *corrupt_[id].begin());
      return false;
    }
  }
  return true;
}

// Known issue F1: a replica whose learned prefix has not moved for 2000
// steps while behind the leader is restarted once (which resets its choice
// of fetch peer).
void Simulation::RestartStalled(
    std::map<uint32_t, std::pair<uint64_t, int>>& progress,
    std::set<uint32_t>& restarted) {
  LogCluster& c = *cluster_;
  const int now_step = static_cast<int>(c.step());
  for (uint32_t id : c.ids()) {
    log::Node* node = c.node(id);
    if (node == nullptr) continue;
    const log::Replica& r = node->replica();
    auto [it, inserted] = progress.try_emplace(
        id, std::make_pair(r.learned_through(), now_step));
    if (inserted || r.learned_through() != it->second.first ||
        r.known_committed() <= r.learned_through()) {
      it->second = {r.learned_through(), now_step};
      continue;
    }
    if (now_step - it->second.second >= 2000 && !restarted.count(id)) {
      restarted.insert(id);
      if (options_.trace != nullptr) {
        *options_.trace << "tolerating F1: restarting stalled node " << id
                        << "\n";
      }
      c.Crash(id, CrashPoint::kNow);
      c.Restart(id);
      it->second = {0, now_step};
    }
  }
}

void Simulation::Heal() {
  LogCluster& c = *cluster_;
  if (options_.trace != nullptr) *options_.trace << "=== HEALING ===\n";
  c.network().HealAll();
  NetworkFaults calm = c.network().faults();
  calm.drop = 0;
  calm.duplicate = 0;
  calm.spike = 0;
  calm.lossy_links.clear();
  c.network().set_faults(calm);
  for (uint32_t id : c.ids()) {
    c.Disarm(id);
    if (c.up(id)) continue;
    restart_at_[id] = absl::InfiniteFuture();
    c.Restart(id);
  }

  const int budget = options_.heal_steps;
  const uint64_t start = c.step();
  auto elapsed = [&] { return static_cast<int>(c.step() - start); };

  // 1. A leader, and an append that succeeds through it.
  std::set<std::string> probes;
  size_t acked_before = c.acks().size();
  bool probe_acked = false;
  int last_probe = -1000;
  while (elapsed() < budget && !c.failed()) {
    for (size_t i = acked_before; i < c.acks().size(); ++i) {
      if (probes.count(c.acks()[i].value)) probe_acked = true;
    }
    acked_before = c.acks().size();
    if (probe_acked) break;
    if (auto leader = c.ServingLeader()) {
      if (elapsed() - last_probe >= 200) {
        probes.insert(c.Append(*leader));
        last_probe = elapsed();
      }
    }
    UpdateDamage();
    if (elapsed() % 20 == 0) Scrub();
    c.Step();
  }
  if (c.failed()) return;
  if (!probe_acked) {
    c.Fail(absl::StrCat("LIVENESS: no append succeeded within ", budget,
                        " steps after healing: ", ClusterState()));
    return;
  }
  // 2. Every replica votes and has learned everything chosen.
  std::string why;
  std::map<uint32_t, std::pair<uint64_t, int>> progress;  // learned, since
  std::set<uint32_t> restarted;
  while (elapsed() < budget && !c.failed()) {
    UpdateDamage();
    if (Converged(&why)) break;
    if (elapsed() % 20 == 0) Scrub();
    if (options_.tolerate.fetch_stall) RestartStalled(progress, restarted);
    if (options_.tolerate.idle_recovery && elapsed() % 100 == 0) {
      if (auto leader = c.ServingLeader()) c.Append(*leader);
    }
    c.Step();
  }
  if (c.failed()) return;
  UpdateDamage();
  if (!Converged(&why)) {
    c.Fail(absl::StrCat("LIVENESS: replicas did not converge within ", budget,
                        " steps after healing (", why, "): ", ClusterState()));
  }
}

void Simulation::FinalChecks() {
  LogCluster& c = *cluster_;
  const auto& learned = c.checker().learned();
  const uint64_t max_position = c.checker().max_learned_position();

  // Where the log now begins: the highest chosen truncation point.
  uint64_t expected_begin = 1;
  for (const auto& [p, v] : learned) {
    if (v.kind() == Value::TRUNCATE) {
      expected_begin = std::max<uint64_t>(expected_begin, v.truncate_to());
    }
  }
  // Every position of the global log from expected_begin on was learned.
  for (uint64_t p = expected_begin; p <= max_position; ++p) {
    if (learned.count(p) == 0) {
      c.Fail(absl::StrCat("FINAL: position ", p,
                          " was never learned by any replica (log ends at ",
                          max_position, ")"));
      return;
    }
  }
  for (uint32_t id : c.ids()) {
    log::Node* node = c.node(id);
    const log::Replica& r = node->replica();
    if (r.begin() != expected_begin) {
      c.Fail(absl::StrCat("FINAL: node ", id, " begins at ", r.begin(),
                          " but the chosen truncations put the log's start at ",
                          expected_begin));
      return;
    }
    auto below = c.storage(id).ReadRange(0, expected_begin - 1, 1);
    if (!options_.tolerate.records_below_begin &&
        (!below.ok() || !below->empty())) {
      c.Fail(absl::StrCat("FINAL: node ", id,
                          " still stores positions below its begin ",
                          expected_begin));
      return;
    }
    auto actions = c.storage(id).ReadRange(expected_begin, max_position,
                                           std::numeric_limits<size_t>::max());
    if (!actions.ok()) {
      c.Fail(absl::StrCat("FINAL: node ", id,
                          " cannot read its log: ", actions.status().ToString()));
      return;
    }
    uint64_t expect = expected_begin;
    for (const Action& a : *actions) {
      if (a.position() != expect || !a.learned()) {
        c.Fail(absl::StrCat("FINAL: node ", id, " lacks a learned record at ",
                            expect, " (next stored: ", a.ShortDebugString(),
                            ")"));
        return;
      }
      if (!SameValue(a.value(), learned.at(expect))) {
        c.Fail(absl::StrCat("FINAL: node ", id, " stores ",
                            ValueString(a.value()), " at ", expect,
                            " but the log holds ",
                            ValueString(learned.at(expect))));
        return;
      }
      ++expect;
    }
    if (expect != max_position + 1) {
      c.Fail(absl::StrCat("FINAL: node ", id, " stores learned positions only "
                          "up to ", expect - 1, " of ", max_position));
      return;
    }
  }
  // No entry appears twice anywhere in the log's history; every acknowledged
  // append not truncated away appears exactly once, where it was acked.
  std::map<std::string, std::pair<uint64_t, int>> where;  // value -> pos,index
  for (const auto& [p, v] : learned) {
    for (int i = 0; i < v.entries_size(); ++i) {
      auto [it, inserted] = where.emplace(v.entries(i), std::make_pair(p, i));
      if (!inserted) {
        c.Fail(absl::StrCat("DUPLICATE: '", v.entries(i), "' is at (",
                            it->second.first, ", ", it->second.second,
                            ") and at (", p, ", ", i, ")"));
        return;
      }
    }
  }
  for (const Ack& ack : c.acks()) {
    if (ack.position < expected_begin) continue;
    auto it = where.find(ack.value);
    if (it == where.end() || it->second.first != ack.position ||
        it->second.second != static_cast<int>(ack.index)) {
      c.Fail(absl::StrCat("LOST ACK: '", ack.value, "' acknowledged at (",
                          ack.position, ", ", ack.index,
                          ") is not there in the final log"));
      return;
    }
  }
}

SimResult Simulation::Run() {
  LogCluster& c = *cluster_;
  current_run.cluster = &c;
  if (options_.trace != nullptr) {
    *options_.trace << "seed=" << options_.seed << " " << description_ << "\n";
  }
  c.Start();
  for (int i = 0; i < options_.steps && !c.failed(); ++i) {
    InjectFaults();
    if (c.failed()) break;
    SubmitClientRequests();
    if (c.failed()) break;
    c.Step();
    UpdateDamage();
  }
  if (!c.failed()) Heal();
  if (!c.failed()) FinalChecks();
  current_run.cluster = nullptr;

  SimResult result;
  result.seed = options_.seed;
  result.replicas = options_.replicas;
  result.ok = !c.failed();
  result.failure = c.failure();
  result.description = description_;
  result.trace_hash = c.trace_hash();
  result.stats = c.stats();
  result.max_position = c.checker().max_learned_position();
  return result;
}

}  // namespace

SimResult RunLogSimulation(const SimOptions& options) {
  current_run.active = true;
  current_run.options = options;
  current_run.options.trace = nullptr;
  SimResult result = Simulation(options).Run();
  result.options = current_run.options;
  current_run.active = false;
  return result;
}

std::string TolerateFlag(const KnownIssues& t) {
  std::vector<std::string> ids;
  if (t.fetch_stall) ids.push_back("F1");
  if (t.records_below_begin) ids.push_back("F2");
  if (t.phase1_paging) ids.push_back("F3");
  if (t.idle_recovery) ids.push_back("F4");
  return absl::StrJoin(ids, ",");
}

std::string ReplayCommand(const SimOptions& o) {
  const SimOptions defaults;
  std::string command =
      absl::StrCat("bazel run //sim:log_sim -- --seed=", o.seed,
                   " --replicas=", o.replicas);
  if (o.steps != defaults.steps) absl::StrAppend(&command, " --steps=", o.steps);
  if (o.heal_steps != defaults.heal_steps) {
    absl::StrAppend(&command, " --heal_steps=", o.heal_steps);
  }
  const std::string tolerate = TolerateFlag(o.tolerate);
  if (!tolerate.empty()) absl::StrAppend(&command, " --tolerate=", tolerate);
  if (o.hostile_network) absl::StrAppend(&command, " --hostile_network");
  absl::StrAppend(&command, " --trace");
  return command;
}

std::string FailureLine(const SimResult& r) {
  return absl::StrCat("FAILED seed=", r.seed, " (replay: ",
                      ReplayCommand(r.options), "): ", r.failure);
}

std::string SummaryLine(const SimResult& r) {
  const ClusterStats& s = r.stats;
  return absl::StrFormat(
      "seed=%d %s steps=%d appends=%d acked=%d failed=%d truncates=%d "
      "crashes=%d wipes=%d corruptions=%d campaigns=%d elections=%d "
      "log_end=%d hash=%016x [%s]",
      r.seed, r.ok ? "ok" : "FAILED", s.steps, s.appends_submitted,
      s.appends_acked, s.appends_failed, s.truncates_acked, s.crashes, s.wipes,
      s.corruptions, s.campaigns, s.elections, r.max_position, r.trace_hash,
      r.description);
}

void InstallFailureReporter() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  logging::SetSinkForTesting([](const logging::LogLine& line) {
    if (line.severity != logging::Severity::kFatal || !current_run.active) {
      return;
    }
    std::string step;
    if (current_run.cluster != nullptr) {
      step = absl::StrCat(" at step ", current_run.cluster->step());
    }
    std::fprintf(
        stderr, "FAILED seed=%llu (replay: %s): CHECK failed in the log core%s: %s\n",
        static_cast<unsigned long long>(current_run.options.seed),
        ReplayCommand(current_run.options).c_str(), step.c_str(),
        line.message.c_str());
    std::fflush(stderr);
  });
}

}  // namespace cairn::sim
