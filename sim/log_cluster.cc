#include "sim/log_cluster.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"

namespace cairn::sim {

using cairn::v1::LogMessage;
using cairn::v1::Metadata;

namespace {

const char* BodyName(const LogMessage& m) {
  switch (m.body_case()) {
    case LogMessage::kPromiseRequest:
      return "PromiseRequest";
    case LogMessage::kPromiseResponse:
      return "PromiseResponse";
    case LogMessage::kAcceptRequest:
      return "AcceptRequest";
    case LogMessage::kAcceptResponse:
      return "AcceptResponse";
    case LogMessage::kLearned:
      return "Learned";
    case LogMessage::kHeartbeat:
      return "Heartbeat";
    case LogMessage::kHeartbeatResponse:
      return "HeartbeatResponse";
    case LogMessage::kFetchRequest:
      return "FetchRequest";
    case LogMessage::kFetchResponse:
      return "FetchResponse";
    case LogMessage::kRecoverRequest:
      return "RecoverRequest";
    case LogMessage::kRecoverResponse:
      return "RecoverResponse";
    default:
      return "Unknown";
  }
}

}  // namespace

const char* CrashPointName(CrashPoint point) {
  switch (point) {
    case CrashPoint::kNow:
      return "now";
    case CrashPoint::kBeforeWrite:
      return "before-write";
    case CrashPoint::kAfterWrite:
      return "after-write";
  }
  return "?";
}

LogCluster::LogCluster(uint64_t seed, const ClusterOptions& options)
    : seed_(seed),
      options_(options),
      rng_(seed),
      start_(absl::UnixEpoch() + absl::Seconds(1000)),
      now_(start_),
      network_(&rng_),
      checker_([&] {
        std::vector<uint32_t> ids;
        for (int i = 1; i <= options.replicas; ++i) ids.push_back(i);
        return ids;
      }()) {
  for (int i = 1; i <= options_.replicas; ++i) ids_.push_back(i);
  members_.resize(ids_.size());
  // Clock rates from their own stream: the seed's other choices stay put.
  std::mt19937_64 clocks(seed ^ 0xc10c4ull);
  for (uint32_t id : ids_) {
    member(id).id = id;
    member(id).storage = std::make_unique<log::MemoryStorage>();
    member(id).clock_rate =
        1.0 + std::uniform_real_distribution<double>(
                  0.0, std::max(0.0, options_.clock_drift))(clocks);
    if (id <= options_.clock_rates.size()) {
      member(id).clock_rate = options_.clock_rates[id - 1];
    }
  }
  network_.set_faults(options_.network);
}

LogCluster::~LogCluster() = default;

// ---- events and trace -------------------------------------------------------

void LogCluster::Mix(uint64_t x) {
  for (int i = 0; i < 8; ++i) {
    trace_hash_ ^= (x >> (8 * i)) & 0xff;
    trace_hash_ *= 1099511628211ull;
  }
}

void LogCluster::Event(const char* kind, uint64_t a, uint64_t b, uint64_t c) {
  for (const char* p = kind; *p != '\0'; ++p) Mix(static_cast<uint8_t>(*p));
  Mix(absl::ToInt64Microseconds(now_ - absl::UnixEpoch()));
  Mix(a);
  Mix(b);
  Mix(c);
}

std::ostream& LogCluster::TraceLine() {
  std::ostream& out = *options_.trace;
  out << "[" << stats_.steps << " +"
      << absl::ToDoubleMilliseconds(now_ - absl::UnixEpoch() -
                                    absl::Seconds(1000))
      << "ms] ";
  return out;
}

void LogCluster::Fail(const std::string& message) {
  checker_.Fail(message);
  if (failure_.empty()) failure_ = failure();
}

std::string LogCluster::failure() const {
  if (!failure_.empty()) return failure_;
  if (!checker_.failed()) return "";
  return absl::StrCat(
      "step ", stats_.steps, " (t=+",
      absl::ToDoubleMilliseconds(now_ - absl::UnixEpoch() -
                                 absl::Seconds(1000)),
      "ms): ", checker_.failure());
}

// ---- nodes ------------------------------------------------------------------

log::Config LogCluster::NodeConfig(uint32_t id) {
  log::Config config = options_.config;
  config.node_id = id;
  config.replicas = ids_;
  config.seed = rng_();
  return config;
}

void LogCluster::CreateNode(Member& m) {
  m.node = std::make_unique<log::Node>(NodeConfig(m.id), m.storage.get());
  m.submitted = 0;
  log::Effects effects;
  absl::Status s = m.node->Start(NodeNow(m), &effects);
  CHECK_OK(s) << "node " << m.id << " failed to start";
  checker_.OnRestart(m.id, m.node->replica().promised());
  m.last_status = m.node->replica().status();
  Event("start", m.id, m.incarnation, m.last_status);
  if (tracing()) {
    TraceLine() << "node " << m.id << " starts (incarnation " << m.incarnation
                << "): " << Metadata::Status_Name(m.last_status) << " "
                << m.node->replica().status_detail() << "\n";
  }
  Apply(m, std::move(effects), m.last_status, "Start");
}

void LogCluster::Start() {
  for (uint32_t id : ids_) CreateNode(member(id));
}

Metadata::Status LogCluster::status(uint32_t id) const {
  const Member& m = member(id);
  return m.node != nullptr ? m.node->replica().status() : m.last_status;
}

std::vector<uint32_t> LogCluster::ServingLeaders() const {
  std::vector<uint32_t> leaders;
  for (const Member& m : members_) {
    if (m.node != nullptr && m.node->IsServingLeader(NodeNow(m))) {
      leaders.push_back(m.id);
    }
  }
  return leaders;
}

std::optional<uint32_t> LogCluster::ServingLeader() const {
  std::vector<uint32_t> leaders = ServingLeaders();
  if (leaders.size() != 1) return std::nullopt;
  return leaders[0];
}

// ---- the Effects contract ---------------------------------------------------

void LogCluster::Apply(Member& m, log::Effects effects,
                       Metadata::Status status_before, const char* input) {
  checker_.OnEmitted(m.id, status_before, effects.messages, input);
  const bool writes = !effects.write.empty();
  if (writes && m.armed_crash == CrashPoint::kBeforeWrite) {
    DoCrash(m, m.armed_keep_unsynced, "before its write");
    return;
  }
  if (writes) {
    absl::Status s = m.storage->Write(effects.write, effects.sync);
    CHECK_OK(s) << "simulated disk write failed";
    ++stats_.writes;
    checker_.OnWrite(m.id, effects.write, effects.sync);
    Event("write", m.id, effects.write.actions.size(), effects.sync);
    if (tracing()) {
      auto& out = TraceLine() << "node " << m.id << " writes"
                              << (effects.sync ? " (sync)" : "");
      if (effects.write.metadata.has_value()) {
        out << " metadata{" << effects.write.metadata->ShortDebugString()
            << "}";
      }
      for (const auto& a : effects.write.actions) {
        out << " action{" << a.ShortDebugString() << "}";
      }
      if (effects.write.delete_before.has_value()) {
        out << " delete_before=" << *effects.write.delete_before;
      }
      out << "\n";
    }
  }
  if (writes && m.armed_crash == CrashPoint::kAfterWrite) {
    DoCrash(m, m.armed_keep_unsynced, "after its write");
    return;
  }
  for (LogMessage& msg : effects.messages) {
    if (msg.has_learned()) {
      for (const auto& a : msg.learned().actions()) {
        checker_.OnLearned(m.id, a, "LearnedMessage");
      }
    }
    if (msg.to() == m.id) {
      local_.push_back(LocalMessage{m.id, m.incarnation, std::move(msg)});
      continue;
    }
    if (drop_filter_ && drop_filter_(msg)) {
      Event("filtered", msg.from(), msg.to(), msg.body_case());
      if (tracing()) {
        TraceLine() << "filter drops " << msg.from() << "->" << msg.to()
                    << " " << BodyName(msg) << "\n";
      }
      continue;
    }
    network_.Send(msg, now_);
  }
  for (const log::AppendResult& r : effects.append_results) {
    HandleResult(m, r);
  }
  for (const log::LeadershipChange& c : effects.leadership) {
    if (c.became_leader) ++stats_.elections;
    Event("leadership", m.id, c.became_leader, c.ballot.round());
    if (tracing()) {
      TraceLine() << "node " << m.id
                  << (c.became_leader ? " LEADS" : " stops leading")
                  << " at ballot " << log::BallotString(c.ballot) << ": "
                  << c.reason << "\n";
    }
  }
  if (checker_.failed() && failure_.empty()) failure_ = failure();
  if (!draining_) DrainLocal();
}

void LogCluster::DrainLocal() {
  draining_ = true;
  while (local_next_ < local_.size() && !failed()) {
    LocalMessage lm = std::move(local_[local_next_++]);
    Member& m = member(lm.node);
    if (m.node == nullptr || m.incarnation != lm.incarnation) continue;
    Deliver(m, lm.message);
  }
  local_.clear();
  local_next_ = 0;
  draining_ = false;
}

void LogCluster::Deliver(Member& m, const LogMessage& message) {
  Event("deliver", message.from(), message.to(),
        message.body_case() * 1000003ull + message.ByteSizeLong());
  if (tracing()) {
    TraceLine() << message.from() << "->" << message.to() << " "
                << BodyName(message) << " {" << message.ShortDebugString()
                << "}\n";
  }
  const Metadata::Status before = m.node->replica().status();
  log::Effects effects;
  m.node->Handle(message, NodeNow(m), &effects);
  Apply(m, std::move(effects), before, BodyName(message));
}

void LogCluster::HandleResult(Member& m, const log::AppendResult& r) {
  auto it = pending_.find(r.id);
  if (it == pending_.end()) {
    Fail(absl::StrCat("node ", m.id, " returned a result for request ", r.id,
                      " which is not pending (duplicate result?)"));
    return;
  }
  PendingAppend p = std::move(it->second);
  pending_.erase(it);
  Event("result", r.id, r.status.raw_code(), r.position * 65536 + r.index);
  if (tracing()) {
    TraceLine() << "node " << m.id << " result for request " << r.id << " ("
                << (p.truncate ? "truncate" : p.value) << "): " << r.status
                << " position " << r.position << " index " << r.index << "\n";
  }
  if (p.truncate) {
    if (r.status.ok()) ++stats_.truncates_acked;
    return;
  }
  if (!r.status.ok()) {
    ++stats_.appends_failed;
    if (r.status.code() != absl::StatusCode::kUnavailable) {
      Fail(absl::StrCat("append '", p.value, "' to node ", m.id,
                        " failed with an unexpected code: ",
                        r.status.ToString()));
    }
    return;
  }
  ++stats_.appends_acked;
  checker_.OnAppendAcked((uint64_t{m.id} << 40) | m.incarnation, p.submit_seq,
                         p.value, r.position, r.index);
  acks_.push_back(Ack{p.value, r.position, r.index});
}

// ---- steps ------------------------------------------------------------------

void LogCluster::Step() {
  if (failed()) return;
  const int64_t lo = absl::ToInt64Microseconds(options_.min_step);
  const int64_t hi = absl::ToInt64Microseconds(options_.max_step);
  now_ += absl::Microseconds(
      std::uniform_int_distribution<int64_t>(lo, std::max(lo, hi))(rng_));
  ++stats_.steps;

  while (!failed()) {
    std::optional<LogMessage> message = network_.Pop(now_);
    if (!message.has_value()) break;
    Member& to = member(message->to());
    if (to.node == nullptr) {
      Event("undeliverable", message->from(), message->to());
      continue;
    }
    Deliver(to, *message);
  }
  for (Member& m : members_) {
    if (failed()) return;
    if (m.node == nullptr) continue;
    const Metadata::Status before = m.node->replica().status();
    log::Effects effects;
    m.node->Tick(NodeNow(m), &effects);
    Apply(m, std::move(effects), before, "Tick");
  }
  if (failed()) return;
  for (Member& m : members_) {
    if (m.node == nullptr) continue;
    m.node->replica().CheckInvariants();
    const Metadata::Status s = m.node->replica().status();
    if (s != m.last_status && tracing()) {
      TraceLine() << "node " << m.id << " is now " << Metadata::Status_Name(s)
                  << " " << m.node->replica().status_detail() << "\n";
    }
    m.last_status = s;
  }
  const std::vector<uint32_t> leaders = ServingLeaders();
  if (leaders.size() > 1) {
    Fail(absl::StrCat("LEASE violated: nodes ", absl::StrJoin(leaders, ", "),
                      " all serve as leader at once"));
  }
}

bool LogCluster::RunUntil(const std::function<bool()>& done, int max_steps) {
  for (int i = 0; i < max_steps && !failed(); ++i) {
    if (done()) return true;
    Step();
  }
  return !failed() && done();
}

// ---- faults -----------------------------------------------------------------

void LogCluster::DoCrash(Member& m, size_t keep_unsynced, const char* how) {
  const size_t unsynced = m.storage->unsynced_batches();
  m.storage->SimulateCrash(keep_unsynced);
  auto metadata = m.storage->ReadMetadata();
  checker_.OnCrash(m.id, metadata.ok() ? *metadata : std::nullopt);
  // While down, a node's status is what its disk says (the in-memory one
  // may never have been written).
  m.last_status = metadata.ok() && metadata->has_value()
                      ? (*metadata)->status()
                      : Metadata::EMPTY;
  m.node.reset();
  ++m.incarnation;
  m.armed_crash.reset();
  ++stats_.crashes;
  for (auto it = pending_.begin(); it != pending_.end();) {
    // The client never hears back; the entry may or may not be in the log.
    it = it->second.node == m.id ? pending_.erase(it) : std::next(it);
  }
  Event("crash", m.id, keep_unsynced, unsynced);
  if (tracing()) {
    TraceLine() << "node " << m.id << " CRASHES " << how << " ("
                << std::min(keep_unsynced, unsynced) << " of " << unsynced
                << " unsynced batches survive)\n";
  }
  if (checker_.failed() && failure_.empty()) failure_ = failure();
}

void LogCluster::Crash(uint32_t id, CrashPoint point, size_t keep_unsynced) {
  Member& m = member(id);
  if (m.node == nullptr) return;
  if (point == CrashPoint::kNow) {
    DoCrash(m, keep_unsynced, "now");
    return;
  }
  m.armed_crash = point;
  m.armed_keep_unsynced = keep_unsynced;
  Event("arm-crash", id, static_cast<uint64_t>(point), keep_unsynced);
  if (tracing()) {
    TraceLine() << "node " << id << " will crash at its next write, "
                << CrashPointName(point) << "\n";
  }
}

void LogCluster::Restart(uint32_t id) {
  Member& m = member(id);
  CHECK(m.node == nullptr) << "node " << id << " is up";
  CreateNode(m);
}

void LogCluster::Wipe(uint32_t id) {
  Member& m = member(id);
  if (m.node != nullptr) DoCrash(m, 0, "to have its disk wiped");
  m.storage->Wipe();
  checker_.OnWipe(id);
  m.last_status = Metadata::EMPTY;
  ++stats_.wipes;
  Event("wipe", id);
  if (tracing()) TraceLine() << "node " << id << " DISK WIPED\n";
}

absl::Status LogCluster::Corrupt(uint32_t id, uint64_t position) {
  absl::Status s = member(id).storage->CorruptAction(position);
  if (s.ok()) {
    ++stats_.corruptions;
    Event("corrupt", id, position);
    if (tracing()) {
      TraceLine() << "node " << id << " record at position " << position
                  << " CORRUPTED\n";
    }
  }
  return s;
}

void LogCluster::Campaign(uint32_t id) {
  Member& m = member(id);
  if (m.node == nullptr) return;
  ++stats_.campaigns;
  Event("campaign", id);
  if (tracing()) TraceLine() << "node " << id << " forced to CAMPAIGN\n";
  const Metadata::Status before = m.node->replica().status();
  log::Effects effects;
  m.node->TEST_Campaign(NodeNow(m), &effects);
  Apply(m, std::move(effects), before, "TEST_Campaign");
}

// ---- clients ----------------------------------------------------------------

std::string LogCluster::Append(uint32_t id) {
  Member& m = member(id);
  if (m.node == nullptr) return "";
  const uint64_t request = next_request_id_++;
  std::string value = absl::StrCat("s", seed_, ".v", request);
  pending_[request] =
      PendingAppend{value, id, m.incarnation, ++m.submitted, false};
  ++stats_.appends_submitted;
  Event("append", id, request);
  if (tracing()) {
    TraceLine() << "client appends " << value << " at node " << id << "\n";
  }
  const Metadata::Status before = m.node->replica().status();
  log::Effects effects;
  m.node->Append(request, value, NodeNow(m), &effects);
  Apply(m, std::move(effects), before, "Append");
  return value;
}

void LogCluster::Truncate(uint32_t id, uint64_t to) {
  Member& m = member(id);
  if (m.node == nullptr) return;
  const uint64_t request = next_request_id_++;
  pending_[request] = PendingAppend{"", id, m.incarnation, ++m.submitted, true};
  Event("truncate", id, request, to);
  if (tracing()) {
    TraceLine() << "client truncates to " << to << " at node " << id << "\n";
  }
  const Metadata::Status before = m.node->replica().status();
  log::Effects effects;
  m.node->Truncate(request, to, NodeNow(m), &effects);
  Apply(m, std::move(effects), before, "Truncate");
}

}  // namespace cairn::sim
