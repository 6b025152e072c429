#include "log/server.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace cairn::log {

namespace {

// Inputs merged into one Effects before it is flushed regardless: bounds the
// size of one write and the delay of the first answer in a large round.
constexpr size_t kMaxMergedInputs = 1024;
constexpr absl::Duration kTransportStatsInterval = absl::Milliseconds(50);
constexpr absl::Duration kBytesOnDiskInterval = absl::Seconds(1);

// The core's clock: monotonic, since an arbitrary epoch.
absl::Time MonotonicNow() {
  return absl::UnixEpoch() +
         absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

constexpr absl::string_view kNotAppendedPayload = "cairn.log/not-appended";

AppendResult Failed(uint64_t id, absl::Status status) {
  AppendResult result;
  result.id = id;
  result.status = std::move(status);
  return result;
}

}  // namespace

absl::Status NotAppendedError(absl::string_view message) {
  absl::Status status = absl::UnavailableError(message);
  status.SetPayload(kNotAppendedPayload, absl::Cord("1"));
  return status;
}

bool IsNotAppended(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable &&
         status.GetPayload(kNotAppendedPayload).has_value();
}

std::string ReplicaStatusName(cairn::v1::Metadata::Status status) {
  switch (status) {
    case cairn::v1::Metadata::VOTING:
      return "VOTING";
    case cairn::v1::Metadata::EMPTY:
      return "EMPTY";
    case cairn::v1::Metadata::RECOVERING:
      return "RECOVERING";
    case cairn::v1::Metadata::STARTING:
      return "STARTING";
    default:
      return "UNKNOWN";
  }
}

std::string RoleName(Proposer::Role role) {
  switch (role) {
    case Proposer::Role::kFollower:
      return "follower";
    case Proposer::Role::kCandidate:
      return "candidate";
    case Proposer::Role::kFilling:
      return "filling";
    case Proposer::Role::kLeader:
      return "leader";
  }
  return "unknown";
}

// A client read handed to the node thread; the caller may give up waiting
// (timeout), so the node thread and the caller share it.
struct LogServer::ReadRequest {
  uint64_t from = 0;
  uint64_t to = 0;
  size_t limit = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;                           // guarded by mu
  absl::StatusOr<std::vector<Action>> result;  // guarded by mu

  void Finish(absl::StatusOr<std::vector<Action>> r) {
    std::lock_guard<std::mutex> lock(mu);
    result = std::move(r);
    done = true;
    cv.notify_all();
  }
};

absl::StatusOr<std::unique_ptr<LogServer>> LogServer::Create(
    LogServerOptions options) {
  const Config& config = options.config;
  if (std::find(config.replicas.begin(), config.replicas.end(),
                config.node_id) == config.replicas.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node id ", config.node_id, " is not one of the configured replicas"));
  }
  for (const auto& [id, address] : options.peers) {
    if (std::find(config.replicas.begin(), config.replicas.end(), id) ==
        config.replicas.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "peer address given for replica ", id, " (", address.ToString(),
          ") which is not one of the configured replicas"));
    }
  }
  auto storage = LevelDbStorage::Open(options.dir, options.storage);
  if (!storage.ok()) return storage.status();
  std::unique_ptr<LogServer> server(
      new LogServer(std::move(options), *std::move(storage)));
  absl::Status started = server->transport_->Start();
  if (!started.ok()) return started;
  return server;
}

LogServer::LogServer(LogServerOptions options,
                     std::unique_ptr<LevelDbStorage> storage)
    : options_(std::move(options)), storage_(std::move(storage)) {
  node_ = std::make_unique<Node>(options_.config, storage_.get());
  TransportOptions transport;
  transport.node_id = options_.config.node_id;
  transport.listen_address = options_.listen_address;
  transport.listen_port = options_.peer_port;
  transport.peers = options_.peers;
  transport.max_frame_bytes = options_.max_frame_bytes;
  transport.max_queued_messages = options_.max_queued_messages_per_peer;
  transport_ = std::make_unique<Transport>(
      std::move(transport),
      [this](LogMessage message) { Post(std::move(message)); });
  status_.id = options_.config.node_id;
}

LogServer::~LogServer() { Stop(); }

absl::Status LogServer::Start() {
  std::lock_guard<std::mutex> lifecycle_lock(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_ || stopping_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "log server ", options_.config.node_id, " already started"));
    }
    started_ = true;
  }
  std::promise<absl::Status> loaded;
  std::future<absl::Status> loaded_status = loaded.get_future();
  // The node thread is the transport's I/O thread (running since Create()).
  const bool posted = transport_->Post([this, &loaded] {
    Effects effects;
    absl::Status s = node_->Start(MonotonicNow(), &effects);
    if (s.ok()) {
      node_running_ = true;
      Flush(&effects);
      Publish(MonotonicNow());
      next_tick_ = MonotonicNow() + options_.tick_interval;
      ScheduleTick();
      // Peer messages may have arrived before the node started.
      ScheduleRound();
    } else {
      {
        // Unusable from now on: refuse work instead of queueing it forever.
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
      }
      FailEverything();
    }
    loaded.set_value(s);  // `loaded` is gone after this
  });
  const absl::Status start_status =
      posted ? loaded_status.get()
             : absl::FailedPreconditionError(
                   absl::StrCat("log server ", options_.config.node_id,
                                ": transport not running"));
  if (!start_status.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    LOG(ERROR) << "log server " << options_.config.node_id
               << " cannot load its state from " << options_.dir << ": "
               << start_status;
    return start_status;
  }
  LOG(INFO) << "log server " << options_.config.node_id << " started: dir "
            << options_.dir << ", peer port " << transport_->port();
  return absl::OkStatus();
}

void LogServer::Stop() {
  std::lock_guard<std::mutex> lifecycle_lock(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopping_ = true;
    status_cv_.notify_all();
  }
  // Fail what is left on the node thread, then stop that thread.
  std::promise<void> failed;
  if (transport_->Post([this, &failed] {
        node_running_ = false;
        FailEverything();
        failed.set_value();
      })) {
    failed.get_future().wait();
  } else {
    FailEverything();  // no thread runs the node
  }
  transport_->Stop();
  std::lock_guard<std::mutex> lock(mu_);
  LOG(INFO) << "log server " << options_.config.node_id << " stopped";
  stopped_ = true;
  status_.running = false;
}

void LogServer::SetPeerAddress(uint32_t id, const PeerAddress& address) {
  transport_->SetPeerAddress(id, address);
}

bool LogServer::OnNodeThread() const { return transport_->InIoThread(); }

void LogServer::Post(Work work) {
  const bool is_message = std::holds_alternative<LogMessage>(work);
  bool accepted = false;
  bool post_round = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool accepting = !stopping_ && (started_ || is_message);
    if (accepting) {
      if (is_message) {
        if (mailbox_messages_ >= options_.max_mailbox_messages) {
          ++mailbox_dropped_;
          return;
        }
        ++mailbox_messages_;
      }
      mailbox_.push_back(std::move(work));
      accepted = true;
      post_round = !round_posted_;
      round_posted_ = true;
    }
  }
  if (accepted) {
    // From the node thread itself (a peer message just read) this queues
    // the round behind the other ready handlers, without a wake-up. Refused
    // only once the transport stops, after Stop() failed the mailbox.
    if (post_round) transport_->Post([this] { RunRound(); });
    return;
  }
  // Not running: answer at once, on the caller's thread.
  const absl::Status unavailable = NotAppendedError(
      absl::StrCat("log server ", options_.config.node_id, " is not running"));
  if (auto* append = std::get_if<AppendWork>(&work)) {
    append->done(Failed(0, unavailable));
  } else if (auto* truncate = std::get_if<TruncateWork>(&work)) {
    truncate->done(Failed(0, unavailable));
  } else if (auto* read = std::get_if<std::shared_ptr<ReadRequest>>(&work)) {
    (*read)->Finish(unavailable);
  }
}

void LogServer::Append(std::string entry, AppendCallback done) {
  Post(AppendWork{std::move(entry), std::move(done)});
}

void LogServer::Truncate(uint64_t to, AppendCallback done) {
  Post(TruncateWork{to, std::move(done)});
}

absl::StatusOr<std::vector<Action>> LogServer::Read(uint64_t from, uint64_t to,
                                                    size_t limit,
                                                    absl::Duration timeout) {
  if (OnNodeThread()) {
    // From a callback: every earlier write is already durable.
    ++counters_.reads;
    return node_->Read(from, to, limit);
  }
  auto request = std::make_shared<ReadRequest>();
  request->from = from;
  request->to = to;
  request->limit = limit;
  Post(request);
  std::unique_lock<std::mutex> lock(request->mu);
  if (!request->cv.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                            [&request] { return request->done; })) {
    return absl::DeadlineExceededError(absl::StrCat(
        "log server ", options_.config.node_id, " did not answer a read of [",
        from, ", ", to, "] within ", absl::FormatDuration(timeout)));
  }
  return std::move(request->result);
}

LogServerStatus LogServer::GetStatus() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

absl::StatusOr<uint64_t> LogServer::WaitForLearned(uint64_t position,
                                                   absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto steady_deadline =
      std::chrono::steady_clock::now() +
      absl::ToChronoNanoseconds(
          std::max(deadline - absl::Now(), absl::ZeroDuration()));
  status_cv_.wait_until(lock, steady_deadline, [this, position] {
    return status_.learned_through >= position || stopping_;
  });
  if (status_.learned_through >= position) return status_.learned_through;
  if (stopping_) {
    return absl::UnavailableError(
        absl::StrCat("log server ", options_.config.node_id,
                     " stopped at learned ", status_.learned_through));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("position ", position, " not learned by the deadline; ",
                   "learned through ", status_.learned_through));
}

void LogServer::SetLeadershipListener(LeadershipListener listener) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  leadership_listener_ = std::move(listener);
}

void LogServer::TEST_SetStatusObserver(StatusObserver observer) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  status_observer_ = std::move(observer);
}

void LogServer::ScheduleRound() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (round_posted_) return;
    round_posted_ = true;
  }
  transport_->Post([this] { RunRound(); });
}

void LogServer::ScheduleTick() {
  const absl::Duration until_tick = next_tick_ - MonotonicNow();
  // (Not due although just handled: stopping, or the round did not tick.)
  transport_->PostAfter(
      until_tick > absl::ZeroDuration() ? until_tick : options_.tick_interval,
      [this] {
        if (!node_running_) return;
        RunRound();
        ScheduleTick();
      });
}

void LogServer::RunRound() {
  std::deque<Work> round;
  round.swap(self_inbox_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    round_posted_ = false;
    if (stopping_ || !node_running_) return;
    for (Work& work : mailbox_) round.push_back(std::move(work));
    mailbox_.clear();
    mailbox_messages_ = 0;
    counters_.messages_dropped = mailbox_dropped_;
  }
  absl::Time now = MonotonicNow();
  const bool tick = now >= next_tick_;
  if (round.empty() && !tick) return;
  Effects pending;
  size_t merged = 0;
  for (Work& work : round) {
    if (ReadsStorage(work) || merged >= kMaxMergedInputs) {
      Flush(&pending);
      merged = 0;
    }
    Handle(work, &pending);
    ++merged;
    if (!options_.group_commit) {
      Flush(&pending);
      merged = 0;
    }
  }
  if (tick) {
    now = MonotonicNow();
    ++counters_.inputs;
    node_->Tick(now, &pending);
    next_tick_ = now + options_.tick_interval;
  }
  Flush(&pending);
  Publish(MonotonicNow());
  // Messages to ourselves go in the next round, after what else is ready.
  if (!self_inbox_.empty()) ScheduleRound();
}

bool LogServer::ReadsStorage(const Work& work) {
  if (std::holds_alternative<std::shared_ptr<ReadRequest>>(work)) return true;
  const LogMessage* message = std::get_if<LogMessage>(&work);
  if (message == nullptr) return false;
  switch (message->body_case()) {
    case LogMessage::kPromiseRequest:
    case LogMessage::kFetchRequest:
    case LogMessage::kRecoverRequest:
      return true;
    default:
      return false;
  }
}

void LogServer::Handle(Work& work, Effects* pending) {
  ++counters_.inputs;
  const absl::Time now = MonotonicNow();
  if (auto* message = std::get_if<LogMessage>(&work)) {
    ++counters_.messages_received;
    node_->Handle(*message, now, pending);
  } else if (auto* append = std::get_if<AppendWork>(&work)) {
    const uint64_t id = next_append_id_++;
    callbacks_[id] = std::move(append->done);
    ++counters_.appends_requested;
    if (node_->IsServingLeader(now)) {
      node_->Append(id, std::move(append->entry), now, pending);
    } else {
      pending->append_results.push_back(
          Failed(id, NotAppendedError(NotLeaderMessage())));
    }
  } else if (auto* truncate = std::get_if<TruncateWork>(&work)) {
    const uint64_t id = next_append_id_++;
    callbacks_[id] = std::move(truncate->done);
    ++counters_.truncates_requested;
    if (node_->IsServingLeader(now)) {
      node_->Truncate(id, truncate->to, now, pending);
    } else {
      pending->append_results.push_back(
          Failed(id, NotAppendedError(NotLeaderMessage())));
    }
  } else if (auto* read = std::get_if<std::shared_ptr<ReadRequest>>(&work)) {
    ++counters_.reads;
    ReadRequest& request = **read;
    request.Finish(node_->Read(request.from, request.to, request.limit));
  }
}

void LogServer::Flush(Effects* effects) {
  const uint32_t self = options_.config.node_id;
  // Our own replica learns what our proposer saw chosen before the appends
  // complete, in the same write: a Read() right after a successful Append
  // sees the entry. (Learning reads no storage and sends nothing, so it
  // merges like any other storage-free input.)
  for (bool again = true; again;) {
    std::vector<LogMessage> learned;
    auto& messages = effects->messages;
    for (auto it = messages.begin(); it != messages.end();) {
      if (it->to() == self && it->has_learned()) {
        learned.push_back(std::move(*it));
        it = messages.erase(it);
      } else {
        ++it;
      }
    }
    again = !learned.empty();
    for (const LogMessage& message : learned) {
      ++counters_.messages_sent;
      ++counters_.messages_received;
      node_->Handle(message, MonotonicNow(), effects);
    }
  }
  if (!effects->write.empty()) {
    const absl::Status written = storage_->Write(effects->write, effects->sync);
    // An acceptor that cannot persist must not answer: stop the process.
    CHECK(written.ok()) << "replica " << self << " cannot write to "
                        << options_.dir << ": " << written;
    ++counters_.writes;
    if (effects->sync) ++counters_.synced_writes;
  }
  // Appends complete before the messages go out: sending to a peer costs a
  // system call (and on loopback, the peer's wake-up), and nothing sent here
  // is needed for the appends' outcome, which is durable already.
  for (const AppendResult& result : effects->append_results) Complete(result);
  for (LogMessage& message : effects->messages) {
    ++counters_.messages_sent;
    switch (message.body_case()) {
      case LogMessage::kPromiseResponse:
      case LogMessage::kAcceptResponse:
        ++counters_.votes_sent;
        break;
      case LogMessage::kFetchRequest:
        ++counters_.fetches_sent;
        break;
      case LogMessage::kFetchResponse:
        ++counters_.fetches_served;
        break;
      default:
        break;
    }
    if (message.to() == self) {
      self_inbox_.push_back(std::move(message));
    } else {
      transport_->Send(message);
    }
  }
  if (!effects->leadership.empty()) {
    LeadershipListener listener;
    {
      std::lock_guard<std::mutex> lock(listeners_mu_);
      listener = leadership_listener_;
    }
    for (const LeadershipChange& change : effects->leadership) {
      LOG(INFO) << "replica " << self
                << (change.became_leader ? " is now the serving leader"
                                         : " is no longer the leader")
                << " (ballot " << BallotString(change.ballot)
                << "): " << change.reason;
      if (listener) listener(change);
    }
  }
  *effects = Effects();
}

void LogServer::Complete(const AppendResult& result) {
  auto it = callbacks_.find(result.id);
  if (it == callbacks_.end()) return;
  AppendCallback done = std::move(it->second);
  callbacks_.erase(it);
  if (result.status.ok()) {
    ++counters_.appends_ok;
  } else {
    ++counters_.appends_failed;
  }
  if (done) done(result);
}

std::string LogServer::NotLeaderMessage() const {
  const uint32_t self = options_.config.node_id;
  const Proposer& proposer = node_->proposer();
  if (proposer.role() == Proposer::Role::kLeader) {
    return absl::StrCat("replica ", self,
                        " leads but is not serving yet (waiting out the "
                        "previous leader's lease or renewing its own)");
  }
  const std::optional<uint32_t> hint = node_->LeaderHint();
  if (hint.has_value() && *hint != self) {
    return absl::StrCat("replica ", self,
                        " is not the leader; the leader is replica ", *hint);
  }
  return absl::StrCat("replica ", self,
                      " is not the leader and no leader is known");
}

void LogServer::Publish(absl::Time now) {
  const Replica& replica = node_->replica();
  const Proposer& proposer = node_->proposer();
  LogServerStatus s;
  s.id = options_.config.node_id;
  s.running = true;
  s.status = replica.status();
  s.status_detail = replica.status_detail();
  s.promised = replica.promised();
  s.begin = replica.begin();
  s.end = replica.end();
  s.learned_through = replica.learned_through();
  s.known_committed = replica.known_committed();
  const bool leading = proposer.role() == Proposer::Role::kLeader;
  // A hint older than an election timeout is as good as none.
  if (leading ||
      now - replica.last_leader_contact() < options_.config.election_timeout) {
    s.leader = node_->LeaderHint();
  }
  s.role = proposer.role();
  s.serving = proposer.serving(now);
  s.ballot = proposer.ballot();
  s.lease_remaining =
      leading ? std::max(proposer.lease_expiry() - now, absl::ZeroDuration())
              : absl::ZeroDuration();
  s.committed = proposer.committed();
  s.in_flight = proposer.in_flight();
  s.queued = proposer.queued();
  s.elections_won = proposer.elections_won();
  if (now - bytes_measured_ >= kBytesOnDiskInterval) {
    bytes_on_disk_ = storage_->ApproximateBytes();
    bytes_measured_ = now;
  }
  s.bytes_on_disk = bytes_on_disk_;
  s.counters = counters_;
  if (now - transport_measured_ >= kTransportStatsInterval) {
    transport_stats_ = transport_->Stats();
    transport_measured_ = now;
  }
  s.transport = transport_stats_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = s;
    status_cv_.notify_all();
  }
  StatusObserver observer;
  {
    std::lock_guard<std::mutex> lock(listeners_mu_);
    observer = status_observer_;
  }
  if (observer) observer(s);
}

void LogServer::FailEverything() {
  std::deque<Work> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(mailbox_);
    mailbox_messages_ = 0;
  }
  const absl::Status not_started = NotAppendedError(
      absl::StrCat("log server ", options_.config.node_id, " stopped"));
  for (Work& work : left) {
    if (auto* append = std::get_if<AppendWork>(&work)) {
      if (append->done) append->done(Failed(0, not_started));
    } else if (auto* truncate = std::get_if<TruncateWork>(&work)) {
      if (truncate->done) truncate->done(Failed(0, not_started));
    } else if (auto* read = std::get_if<std::shared_ptr<ReadRequest>>(&work)) {
      (*read)->Finish(not_started);
    }
  }
  const absl::Status stopped = absl::UnavailableError(
      absl::StrCat("log server ", options_.config.node_id,
                   " stopped; the entry may or may not be in the log"));
  auto callbacks = std::move(callbacks_);
  callbacks_.clear();
  for (auto& [id, done] : callbacks) {
    ++counters_.appends_failed;
    if (done) done(Failed(id, stopped));
  }
  self_inbox_.clear();
}

}  // namespace cairn::log
