#include "master/master.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <system_error>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/crc32c.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/recordio.h"
#include "cairn/v1/agent.pb.h"
#include "cairn/v1/scheduler.pb.h"
#include "log/transport.h"
#include "master/api_http.h"
#include "master/operator_api.h"
#include "monitoring/dashboard.h"
#include "monitoring/logging_http.h"
#include "monitoring/metrics_http.h"
#include "monitoring/process_metrics.h"

namespace cairn::master {

namespace {

constexpr char kVersion[] = "0.1.0";
// Positions read per page while folding the log.
constexpr size_t kFoldPagePositions = 256;
// How long a new leader waits for its replica to learn the log's end.
constexpr absl::Duration kRecoverTimeout = absl::Seconds(10);
// The tail thread's wait granularity (also bounds Stop()).
constexpr absl::Duration kTailWait = absl::Milliseconds(200);

const char* RoleName(Master::Role role) {
  switch (role) {
    case Master::Role::kStandby:
      return "standby";
    case Master::Role::kRecovering:
      return "recovering";
    case Master::Role::kLeading:
      return "leading";
  }
  return "unknown";
}

std::string WeightsJson(const std::map<std::string, double>& weights) {
  std::vector<std::string> items;
  for (const auto& [role, weight] : weights) {
    items.push_back(absl::StrCat("{\"role\":", http::JsonQuote(role),
                                 ",\"weight\":", weight, "}"));
  }
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

// /master/replica's "archive": the positions this master's archive covers
// and its gaps (positions it never saw; recovery/archive.h).
std::string ArchiveJson(const recovery::Archive& archive) {
  std::vector<std::string> gaps;
  for (const recovery::SegmentInfo& s : archive.segments()) {
    if (!s.gap.has_value()) continue;
    gaps.push_back(absl::StrCat("{\"first\":\"", s.first_position,
                                "\",\"last\":\"", s.last_position, "\"}"));
  }
  return absl::StrCat(
      "{\"first\":\"", archive.empty() ? 0 : archive.first_position(),
      "\",\"last\":\"", archive.empty() ? 0 : archive.last_position(),
      "\",\"gaps\":[", absl::StrJoin(gaps, ","), "]}");
}


// Event streams over chunked responses (master/api_http.h).
using HttpAgentStream = HttpEventStream<AgentStream, v1::AgentEvent>;
using HttpFrameworkStream =
    HttpEventStream<FrameworkStream, v1::scheduler::Event>;

}  // namespace

// ---- addresses --------------------------------------------------------------

std::string MasterAddress::ToString() const {
  return host.find(':') != std::string::npos
             ? absl::StrCat("[", host, "]:", port)
             : absl::StrCat(host, ":", port);
}

absl::StatusOr<std::vector<MasterAddress>> ParseMasters(
    absl::string_view text) {
  std::vector<MasterAddress> masters;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    absl::string_view hostport = item;
    std::optional<uint32_t> log_port;
    const size_t slash = item.rfind('/');
    if (slash != absl::string_view::npos) {
      uint32_t value = 0;
      if (!absl::SimpleAtoi(item.substr(slash + 1), &value) || value == 0 ||
          value > 65535) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad --masters item '", item, "': bad log port"));
      }
      log_port = value;
      hostport = item.substr(0, slash);
    }
    absl::StatusOr<log::PeerAddress> address = log::ParsePeerAddress(hostport);
    if (!address.ok() || address->port == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad --masters item '", item, "': expected host:port[/log_port]"));
    }
    MasterAddress master;
    master.host = address->host;
    master.port = address->port;
    const uint32_t derived =
        log_port.value_or(uint32_t{address->port} + kLogPortOffset);
    if (derived > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("--masters item '", item, "': port + ", kLogPortOffset,
                       " is not a port; give one as host:port/log_port"));
    }
    master.log_port = static_cast<uint16_t>(derived);
    masters.push_back(master);
  }
  if (masters.empty()) return absl::InvalidArgumentError("--masters is empty");
  std::sort(masters.begin(), masters.end(),
            [](const MasterAddress& a, const MasterAddress& b) {
              return std::tie(a.host, a.port) < std::tie(b.host, b.port);
            });
  for (size_t i = 1; i < masters.size(); ++i) {
    if (masters[i].host == masters[i - 1].host &&
        masters[i].port == masters[i - 1].port) {
      return absl::InvalidArgumentError(
          absl::StrCat(masters[i].ToString(), " appears twice in --masters"));
    }
  }
  return masters;
}

// ---- adapters ---------------------------------------------------------------

// The CommandPath's log: appends to the replica and posts each completion
// to the master thread (in completion order, which is append order).
class Master::LogAdapter : public EventLog {
 public:
  explicit LogAdapter(Master* master) : master_(master) {}
  void Append(std::string entry, AppendDone done) override {
    Master* master = master_;
    const absl::Time start = absl::Now();  // registrar/state_store_ms
    master_->log_->Append(
        std::move(entry),
        [master, start,
         done = std::move(done)](absl::StatusOr<log::Position> p) {
          if (p.ok()) master->metrics_->RecordAppend(absl::Now() - start);
          master->Post([done, p] {
            if (!p.ok()) {
              done(p.status());
            } else {
              done(AppendedAt{p->position, p->index});
            }
          });
        });
  }

 private:
  Master* const master_;
};

// History's view of the live log.
class Master::SourceAdapter : public recovery::EntrySource {
 public:
  explicit SourceAdapter(log::ReplicatedLog* log) : log_(log) {}
  absl::StatusOr<std::vector<recovery::LogEntry>> Read(uint64_t from,
                                                       uint64_t to) override {
    absl::StatusOr<std::vector<log::Entry>> entries = log_->Read(from, to);
    if (!entries.ok()) return entries.status();
    std::vector<recovery::LogEntry> out;
    out.reserve(entries->size());
    for (log::Entry& e : *entries) {
      out.push_back({e.position, e.index, std::move(e.data)});
    }
    return out;
  }
  absl::StatusOr<recovery::LogBounds> Bounds() override {
    const log::LogServerStatus status = log_->Status();
    return recovery::LogBounds{status.begin, status.learned_through};
  }

 private:
  log::ReplicatedLog* const log_;
};

// ---- lifecycle --------------------------------------------------------------

Master::Master(MasterOptions options, size_t self_index)
    : options_(std::move(options)), self_index_(self_index) {}

absl::StatusOr<std::unique_ptr<Master>> Master::Start(MasterOptions options) {
  if (options.work_dir.empty()) {
    return absl::InvalidArgumentError("--work_dir is required");
  }
  if (options.masters.empty()) {
    // Alone: port 0 (tests) takes an ephemeral log port as well.
    const uint32_t log_port = options.log_port != 0 ? options.log_port
                              : options.port == 0
                                  ? 0
                                  : uint32_t{options.port} + kLogPortOffset;
    if (log_port > 65535) {
      return absl::InvalidArgumentError(
          "--port + 1000 is not a port; "
          "set --log_port");
    }
    options.masters.push_back(
        {options.ip, options.port, static_cast<uint16_t>(log_port)});
  }
  if (options.hostname.empty()) options.hostname = options.ip;
  std::optional<size_t> self;
  std::vector<size_t> same_port;
  for (size_t i = 0; i < options.masters.size(); ++i) {
    const MasterAddress& m = options.masters[i];
    if (m.port != options.port) continue;
    same_port.push_back(i);
    if (m.host == options.ip || m.host == options.hostname) self = i;
  }
  if (!self.has_value() && same_port.size() == 1) self = same_port.front();
  if (!self.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("this master (", options.hostname, ":", options.port,
                     ") is not one of --masters"));
  }
  if (options.log_port != 0) options.masters[*self].log_port = options.log_port;
  std::unique_ptr<Master> master(new Master(std::move(options), *self));
  absl::Status init = master->Init();
  if (!init.ok()) {
    master->Stop();
    return init;
  }
  return master;
}

absl::Status Master::Init() {
  std::error_code error;
  std::filesystem::create_directories(options_.work_dir, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create ", options_.work_dir, ": ", error.message()));
  }
  absl::StatusOr<std::unique_ptr<recovery::SnapshotStore>> snapshots =
      recovery::SnapshotStore::Open(options_.work_dir + "/snapshots");
  if (!snapshots.ok()) return snapshots.status();
  snapshots_ = *std::move(snapshots);
  absl::StatusOr<std::unique_ptr<recovery::Archive>> archive =
      recovery::Archive::Open(options_.work_dir + "/archive");
  if (!archive.ok()) return archive.status();
  archive_ = *std::move(archive);

  log::LogServerOptions log_options;
  const uint32_t id = static_cast<uint32_t>(self_index_ + 1);
  log_options.config.node_id = id;
  for (size_t i = 0; i < options_.masters.size(); ++i) {
    const uint32_t replica = static_cast<uint32_t>(i + 1);
    log_options.config.replicas.push_back(replica);
    if (replica != id) {
      log_options.peers[replica] = {options_.masters[i].host,
                                    options_.masters[i].log_port};
    }
  }
  log_options.config.election_timeout = options_.election_timeout;
  log_options.config.lease_duration = options_.lease;
  log_options.config.heartbeat_interval = options_.heartbeat_interval;
  log_options.config.max_in_flight = 1;  // see log/cairn_log_main.cc
  log_options.config.seed = id;
  log_options.dir = options_.work_dir + "/log";
  log_options.listen_address = options_.ip;
  log_options.peer_port = options_.masters[self_index_].log_port;
  absl::StatusOr<std::unique_ptr<log::ReplicatedLog>> log =
      log::ReplicatedLog::Open(log_options,
                               [this](bool leader, const log::Ballot&) {
                                 Post([this, leader] { OnLeadership(leader); });
                               });
  if (!log.ok()) return log.status();
  log_ = *std::move(log);

  log_adapter_ = std::make_unique<LogAdapter>(this);
  source_adapter_ = std::make_unique<SourceAdapter>(log_.get());
  history_ = std::make_unique<recovery::History>(
      snapshots_.get(), archive_.get(), source_adapter_.get());
  commands_ = std::make_unique<CommandPath>(
      log_adapter_.get(), [] { return absl::Now(); },
      [this](absl::Status why) { Post([this, why] { StepDown(why); }); });

  // GET /api/v1/events (master/events_api.h): any master serves it from
  // its own fold; it follows new events through an applied observer.
  EventsApiOptions events_options;
  events_options.master_address = options_.masters[self_index_].ToString();
  events_api_ = std::make_unique<EventsApi>(
      std::move(events_options),
      std::make_unique<HistoryEventSource>(archive_.get(),
                                           source_adapter_.get(),
                                           [this] { return applied_; }),
      [this](std::function<void()> work) { Post(std::move(work)); },
      [this] { return std::string(RoleName(role_.load())); });
  applied_observers_.push_back(
      [this](const v1::Event& event) { events_api_->OnApplied(event); });

  InitMetrics();

  // ---- Operator API: answers, SUBSCRIBE streams, and their hooks ----
  OperatorApiContext operator_context;
  operator_context.version = kVersion;
  operator_context.flags = options_.flags;
  operator_context.start_time = start_time_;
  operator_context.metrics_snapshot = [this] {
    return metrics_registry_.Snapshot();
  };
  operator_context.post = [this](std::function<void()> work) {
    Post(std::move(work));
  };
  operator_context.clock = [] { return absl::Now(); };
  operator_api_ = std::make_unique<OperatorApi>(
      options_.operator_api, std::move(operator_context), &state_);
  applied_observers_.push_back(
      [this](const v1::Event& event) { operator_api_->OnApplied(event); });
  stepdown_observers_.push_back([this] { operator_api_->OnStepDown(); });

  // Recovery: the newest snapshot plus whatever this replica has learned;
  // the tail thread folds the rest as it arrives.
  Rebuild();

  http::ServerOptions http_options;
  http_options.address = options_.ip;
  http_options.port = options_.port;
  http_options.num_threads = options_.http_threads;
  // The dashboard (monitoring/dashboard.h) reads every master's GET
  // endpoints from the page one master served.
  http_options.get_allow_origin = "*";
  http_ = std::make_unique<http::Server>(http_options);
  RegisterRoutes();

  master_thread_ = std::thread([this] { RunLoop(); });
  tail_thread_ = std::thread([this] { TailLoop(); });
  tick_thread_ = std::thread([this] { TickLoop(); });
  absl::Status serving = http_->Start();
  if (!serving.ok()) return serving;
  LOG(INFO) << "cairn-master " << options_.masters[self_index_].ToString()
            << " (log replica " << id << " of " << options_.masters.size()
            << ", peers on " << options_.ip << ":" << log_->peer_port()
            << ") recovered through position " << applied_;
  return absl::OkStatus();
}

Master::~Master() { Stop(); }

void Master::Stop() {
  std::call_once(stop_once_, [this] {
    if (http_) http_->Stop();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (log_) log_->Stop();
    if (tail_thread_.joinable()) tail_thread_.join();
    if (tick_thread_.joinable()) tick_thread_.join();
    if (master_thread_.joinable()) master_thread_.join();
    if (commands_) commands_->StepDown(absl::UnavailableError("stopping"));
    leader_.reset();
  });
}

uint16_t Master::http_port() const { return http_->port(); }

// ---- master thread ----------------------------------------------------------

void Master::Post(std::function<void()> work) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    queue_.push_back(std::move(work));
  }
  cv_.notify_all();
}

void Master::RunLoop() {
  for (;;) {
    std::function<void()> work;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

void Master::Rebuild() {
  state_ = MasterState();
  applied_ = 0;
  events_since_snapshot_ = 0;
  last_snapshot_ = 0;
  previous_snapshot_ = 0;
  absl::StatusOr<recovery::StoredSnapshot> latest = snapshots_->Latest();
  if (latest.ok()) {
    absl::StatusOr<MasterState> restored =
        MasterState::FromSnapshot(latest->snapshot);
    if (restored.ok()) {
      state_ = *std::move(restored);
      applied_ = latest->position;
      last_snapshot_ = latest->position;
    } else {
      LOG(ERROR) << "snapshot at " << latest->position
                 << " does not restore, folding the log from the start: "
                 << restored.status();
    }
  } else if (!absl::IsNotFound(latest.status())) {
    LOG(ERROR) << "snapshots: " << latest.status();
  }
  absl::StatusOr<std::vector<uint64_t>> positions = snapshots_->Positions();
  if (positions.ok()) {
    for (uint64_t p : *positions) {
      if (p < last_snapshot_) previous_snapshot_ = p;
    }
  }
  applied_published_.store(applied_);
  CatchUp();
}

void Master::CatchUp() {
  for (;;) {
    absl::StatusOr<log::ReadPage> page = log_->Read(
        applied_ + 1, std::numeric_limits<uint64_t>::max(), kFoldPagePositions);
    if (!page.ok()) {
      if (absl::IsOutOfRange(page.status())) {
        MaybeFetchSnapshot();
        if (absl::Now() - last_fold_error_ < absl::Seconds(10)) return;
        last_fold_error_ = absl::Now();
        LOG(ERROR) << "cannot fold the log after position " << applied_ << ": "
                   << page.status()
                   << " (no snapshot of this master covers the gap)";
      } else if (!absl::IsUnavailable(page.status())) {
        LOG(WARNING) << "reading the log: " << page.status();
      }
      return;
    }
    if (page->next <= applied_ + 1) return;  // nothing new
    for (const log::Entry& entry : page->entries) {
      absl::StatusOr<v1::Event> event =
          recovery::DecodeEntry(entry.position, entry.index, entry.data);
      if (!event.ok()) {
        LOG(ERROR) << "skipping undecodable entry " << entry.position << ":"
                   << entry.index << ": " << event.status();
        continue;
      }
      const logging::ScopedContext log_context(
          {{"event", absl::StrCat(entry.position, ":", entry.index)},
           {"request_id", event->request_id()}});
      absl::Status applied = state_.Apply(*event);
      if (!applied.ok()) {
        // Every master skips the same event (Apply is deterministic).
        LOG(WARNING) << "event " << entry.position << ":" << entry.index
                     << " rejected by the fold: " << applied;
        continue;
      }
      ++events_since_snapshot_;
      if (event->has_time()) {
        last_event_time_ = std::max(last_event_time_, ToTime(event->time()));
      }
      for (const auto& observer : applied_observers_) observer(*event);
    }
    applied_ = page->next - 1;
    applied_published_.store(applied_);
    cv_.notify_all();
    commands_->OnApplied(applied_, state_);
    MaybeSnapshot();
  }
}

void Master::MaybeSnapshot() {
  if (options_.snapshot_interval == 0 ||
      events_since_snapshot_ < options_.snapshot_interval) {
    return;
  }
  absl::Status written = snapshots_->Write(applied_, state_.ToSnapshot());
  if (!written.ok()) {
    LOG(ERROR) << "snapshot at " << applied_ << ": " << written;
    return;
  }
  events_since_snapshot_ = 0;
  previous_snapshot_ = last_snapshot_;
  last_snapshot_ = applied_;
  absl::Status archived = history_->ArchiveThrough(applied_);
  if (absl::IsFailedPrecondition(archived)) {
    // The log was truncated past the archive's end before this master
    // archived those positions (it was behind): the archive records them as
    // a gap and goes on, so the log can still be truncated.
    absl::Status gap = history_->RecordGap(
        applied_,
        "the log was truncated past them before this master archived them",
        absl::Now());
    archived = gap.ok() ? history_->ArchiveThrough(applied_) : gap;
  }
  if (!archived.ok()) {
    LOG(WARNING) << "archiving through " << applied_ << ": " << archived
                 << " (the log is not truncated)";
  } else if (role_.load() == Role::kLeading && previous_snapshot_ > 0) {
    const uint64_t to = previous_snapshot_ + 1;
    log_->Truncate(to, [to](absl::StatusOr<uint64_t> result) {
      if (!result.ok()) {
        LOG(WARNING) << "truncating the log below " << to << ": "
                     << result.status();
      }
    });
  }
  absl::StatusOr<int> deleted =
      history_->ApplyRetention(options_.retention, absl::Now());
  if (!deleted.ok()) LOG(WARNING) << "history retention: " << deleted.status();
  LOG(INFO) << "snapshot at position " << applied_ << " ("
            << state_.events_applied() << " events applied)";
}

void Master::MaybeFetchSnapshot() {
  if (options_.masters.size() < 2) return;
  if (absl::Now() < next_snapshot_fetch_) return;
  const uint64_t begin = log_->Status().begin;
  if (begin <= applied_ + 1) return;
  if (snapshot_fetcher_ == nullptr) {
    std::vector<recovery::SnapshotPeer> peers;
    for (size_t i = 0; i < options_.masters.size(); ++i) {
      if (i == self_index_) continue;
      peers.push_back({options_.masters[i].host, options_.masters[i].port});
    }
    snapshot_fetcher_ =
        std::make_unique<recovery::SnapshotFetcher>(std::move(peers));
  }
  const bool started = snapshot_fetcher_->Start(
      begin - 1, [this](absl::StatusOr<recovery::FetchedSnapshot> fetched) {
        Post([this, fetched = std::move(fetched)]() mutable {
          OnSnapshotFetched(std::move(fetched));
        });
      });
  if (!started) return;  // one is in progress
  LOG(INFO) << "the log begins at position " << begin
            << " but this master applied only through " << applied_
            << ": fetching a snapshot at or after position " << begin - 1
            << " from the other masters";
}

void Master::OnSnapshotFetched(
    absl::StatusOr<recovery::FetchedSnapshot> fetched) {
  absl::Status installed = fetched.status();
  if (installed.ok() && role_.load() == Role::kStandby &&
      fetched->position > applied_) {
    installed = recovery::InstallSnapshot(*fetched, snapshots_.get());
  }
  if (!installed.ok()) {
    next_snapshot_fetch_ = absl::Now() + snapshot_fetch_backoff_;
    LOG(WARNING) << "snapshot transfer: " << installed << " (retrying in "
                 << absl::FormatDuration(snapshot_fetch_backoff_) << ")";
    snapshot_fetch_backoff_ =
        std::min(2 * snapshot_fetch_backoff_, absl::Seconds(8));
    return;
  }
  snapshot_fetch_backoff_ = absl::Milliseconds(250);
  if (role_.load() != Role::kStandby || fetched->position <= applied_) return;
  LOG(INFO) << "installed the snapshot at position " << fetched->position
            << " from " << fetched->peer << "; rebuilding from it";
  // What this master's archive lacks up to the snapshot is in no file of its
  // own: recorded as a gap (the peers' archives hold it), archiving goes on
  // after it, and this master can truncate the log when it leads.
  absl::Status gap = history_->RecordGap(
      fetched->position,
      absl::StrCat("this master was away while the log was truncated past "
                   "them, and installed the snapshot at position ",
                   fetched->position, " from ", fetched->peer),
      absl::Now());
  if (!gap.ok()) LOG(WARNING) << "recording the archive's gap: " << gap;
  Rebuild();
  // Our replica may have been elected while the gap kept us from serving.
  if (log_leader_ && role_.load() == Role::kStandby) OnLeadership(true);
}

void Master::OnLeadership(bool leader) {
  log_leader_ = leader;
  if (!leader) {
    if (role_.load() != Role::kStandby) {
      StepDown(absl::UnavailableError("this master lost the log's leadership"));
    }
    return;
  }
  role_.store(Role::kRecovering);
  const log::LogServerStatus status = log_->Status();
  const uint64_t end = std::max(status.committed, status.learned_through);
  LOG(INFO) << "elected: folding the log through position " << end;
  absl::StatusOr<uint64_t> learned =
      log_->WaitForLearned(end, absl::Now() + kRecoverTimeout);
  if (!learned.ok()) {
    StepDown(learned.status());
    return;
  }
  CatchUp();
  if (applied_ < end) {
    LOG(ERROR) << "elected but could fold the log only through " << applied_
               << " of " << end << "; not serving";
    StepDown(absl::DataLossError("cannot fold the log"));
    return;
  }
  commands_->BecomeLeader(state_, last_event_time_);
  LeaderOptions leader_options = options_.leader;
  leader_options.on_allocation_run = [this](absl::Duration run) {
    metrics_->RecordAllocationRun(run);
  };
  leader_options.seed = std::random_device()() ^
                        (uint64_t{std::random_device()()} << 32) ^ applied_;
  v1::MasterInfo* info = &leader_options.master_info;
  info->set_id(absl::StrCat(options_.cluster.empty() ? "cairn" : options_.cluster,
                            "-", self_index_ + 1, "-", applied_));
  info->set_hostname(options_.hostname);
  info->set_port(options_.masters[self_index_].port);
  info->mutable_address()->set_hostname(options_.hostname);
  info->mutable_address()->set_ip(options_.ip);
  info->mutable_address()->set_port(options_.masters[self_index_].port);
  info->set_version(kVersion);
  OnElected(*info);  // before leader_options moves
  leader_ = std::make_unique<Leader>(std::move(leader_options), commands_.get(),
                                     &state_, [] { return absl::Now(); });
  role_.store(Role::kLeading);
  LOG(INFO) << "leading at position " << applied_;
}

void Master::StepDown(const absl::Status& why) {
  const bool was_standby = role_.load() == Role::kStandby;
  // Pending requests are answered (503) while the Leader still exists; then
  // it ends every agent and scheduler stream.
  commands_->StepDown(why);
  if (leader_ != nullptr) metrics_->OnLeaderEnding(*leader_);
  leader_.reset();
  for (const auto& observer : stepdown_observers_) observer();
  role_.store(Role::kStandby);
  if (was_standby) return;
  LOG(WARNING) << "stepping down (" << why << "); rebuilding from the log";
  Rebuild();
}

// ---- tail thread ------------------------------------------------------------

void Master::TickLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.tick_interval),
                     [this] { return stopping_; })) {
      return;
    }
    if (tick_posted_) continue;
    tick_posted_ = true;
    queue_.push_back([this] {
      {
        std::lock_guard<std::mutex> inner(mu_);
        tick_posted_ = false;
      }
      if (leader_ != nullptr) leader_->Tick(absl::Now());
      operator_api_->Tick(absl::Now());  // operator stream heartbeats
      PublishMetrics();
    });
    cv_.notify_all();
  }
}

void Master::TailLoop() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    const uint64_t next = applied_published_.load() + 1;
    absl::StatusOr<uint64_t> learned =
        log_->WaitForLearned(next, absl::Now() + kTailWait);
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) return;
    if (!learned.ok()) {
      if (!absl::IsDeadlineExceeded(learned.status())) {
        cv_.wait_for(lock, absl::ToChronoMilliseconds(kTailWait));
      }
      continue;
    }
    if (!catch_up_posted_) {
      catch_up_posted_ = true;
      queue_.push_back([this] {
        {
          std::lock_guard<std::mutex> inner(mu_);
          catch_up_posted_ = false;
        }
        CatchUp();
      });
      cv_.notify_all();
    }
    // Wait for the master thread to fold it (or give up after a while: the
    // fold may be stuck, see CatchUp()).
    cv_.wait_for(lock, absl::ToChronoMilliseconds(kTailWait), [&] {
      return stopping_ || applied_published_.load() >= next;
    });
  }
}

// ---- metrics ----------------------------------------------------------------

void Master::InitMetrics() {
  MasterMetrics::Sources sources;
  sources.elected = [this] { return role_.load() == Role::kLeading; };
  sources.event_queue_length = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  };
  sources.log_status = [this] { return log_->Status(); };
  sources.applied = [this] { return applied_published_.load(); };
  sources.replica_id = static_cast<uint32_t>(self_index_ + 1);
  sources.ensemble_size = options_.masters.size();
  sources.start_time = start_time_;
  metrics_ = std::make_unique<MasterMetrics>(&metrics_registry_,
                                             std::move(sources));
  monitoring::RegisterProcessMetrics(&metrics_registry_);
  applied_observers_.push_back(
      [this](const v1::Event& event) { metrics_->OnEventApplied(event); });
}

void Master::PublishMetrics() {
  metrics_->Publish(state_, applied_, leader_.get());
}

// ---- HTTP -------------------------------------------------------------------

std::optional<MasterAddress> Master::KnownLeader() const {
  if (role_.load() == Role::kLeading) return options_.masters[self_index_];
  const log::LogServerStatus status = log_->Status();
  if (!status.leader.has_value() || *status.leader == 0 ||
      *status.leader > options_.masters.size()) {
    return std::nullopt;
  }
  return options_.masters[*status.leader - 1];
}

bool Master::RedirectUnlessLeading(const http::Request& request,
                                   const std::shared_ptr<http::Responder>& r) {
  const Role role = role_.load();
  if (role == Role::kLeading) return false;
  if (role == Role::kRecovering) {
    r->Respond(http::Response::Error(503, "the master is recovering"));
    return true;
  }
  std::optional<MasterAddress> leader = KnownLeader();
  if (!leader.has_value() ||
      (leader->host == options_.masters[self_index_].host &&
       leader->port == options_.masters[self_index_].port)) {
    r->Respond(http::Response::Error(503, "no leading master is known"));
    return true;
  }
  http::Response response = http::Response::Error(307, "not the leader");
  response.headers.Set("Location",
                       absl::StrCat("//", leader->ToString(), request.target));
  r->Respond(std::move(response));
  return true;
}

void Master::RegisterRoutes() {
  monitoring::ServeMetrics(http_.get(), &metrics_registry_);
  monitoring::ServeDashboard(http_.get());
  http_->HandleSync("GET", "/health", [](const http::Request&) {
    return http::Response::Text(200, "");
  });
  http_->HandleSync("GET", "/version", [](const http::Request&) {
    return http::Response::Json(
        200, absl::StrCat("{\"version\":\"", kVersion, "\"}"));
  });
  // /logging/toggle and /logging/level (monitoring/logging_http.h).
  monitoring::ServeLoggingToggle(http_.get());
  // Mesos's /files/*, with the log directory as /master/log.
  if (const std::string log_dir = logging::LogDirectory(); !log_dir.empty()) {
    const absl::Status attached = files_.Attach(log_dir, "/master/log");
    if (!attached.ok()) LOG(WARNING) << "/files: " << attached;
  }
  files_.Register(*http_);
  http_->Handle(
      "GET", "/master/redirect",
      [this](http::Request request, std::shared_ptr<http::Responder> r) {
        HandleRedirect(request, std::move(r));
      });
  // Mesos's read-only endpoints (master/state_json.h); /master/flags is
  // answered by any master, as in Mesos.
  const std::pair<const char*, ReadOnlyEndpoint> read_only[] = {
      {"/master/state", ReadOnlyEndpoint::kState},
      {"/master/state.json", ReadOnlyEndpoint::kState},
      {"/master/state-summary", ReadOnlyEndpoint::kStateSummary},
      {"/master/frameworks", ReadOnlyEndpoint::kFrameworks},
      {"/master/slaves", ReadOnlyEndpoint::kSlaves},
      {"/master/tasks", ReadOnlyEndpoint::kTasks},
      {"/master/tasks.json", ReadOnlyEndpoint::kTasks},
  };
  for (const auto& [path, endpoint] : read_only) {
    http_->Handle(
        "GET", path,
        [this, endpoint = endpoint](http::Request request,
                                    std::shared_ptr<http::Responder> r) {
          if (RedirectUnlessLeading(request, r)) return;
          HandleReadOnly(endpoint, request, std::move(r));
        });
  }
  http_->Handle(
      "GET", "/master/flags",
      [this](http::Request request, std::shared_ptr<http::Responder> r) {
        HandleFlags(request, std::move(r));
      });
  http_->Handle("GET", "/master/replica",
                [this](http::Request, std::shared_ptr<http::Responder> r) {
                  HandleReplica(std::move(r));
                });
  http_->Handle(
      "GET", recovery::kSnapshotPath,
      [this](http::Request request, std::shared_ptr<http::Responder> r) {
        HandleSnapshot(request, std::move(r));
      });
  http_->Handle(
      "POST", "/api/v1/agent",
      [this](http::Request request, std::shared_ptr<http::Responder> r) {
        if (RedirectUnlessLeading(request, r)) return;
        HandleAgentApi(std::move(request), std::move(r));
      });
  http_->Handle(
      "POST", "/api/v1/scheduler",
      [this](http::Request request, std::shared_ptr<http::Responder> r) {
        if (RedirectUnlessLeading(request, r)) return;
        HandleSchedulerApi(std::move(request), std::move(r));
      });
  http_->Handle(
      "POST", "/api/v1",
      [this](http::Request request, std::shared_ptr<http::Responder> r) {
        if (RedirectUnlessLeading(request, r)) return;
        HandleApi(std::move(request), std::move(r));
      });
  // The v1 POST APIs answer other methods 405 with Allow: POST (as Mesos)
  // and their own error body, naming the method.
  for (const char* path : {"/api/v1/scheduler", "/api/v1/agent", "/api/v1"}) {
    http_->HandleSync("*", path, [path](const http::Request& request) {
      http::Response response =
          ApiError(405,
                   absl::StrCat("method ", request.method,
                                " not allowed: ", path, " takes POST"),
                   "method");
      response.headers.Set("Allow", "POST");
      return response;
    });
  }
  // Any master, leader or standby (events_api.h).
  http_->Handle(
      "GET", "/api/v1/events",
      [this](http::Request request, std::shared_ptr<http::Responder> r) {
        events_api_->Handle(std::move(request), std::move(r));
      });
}

void Master::HandleRedirect(const http::Request&,
                            std::shared_ptr<http::Responder> r) {
  std::optional<MasterAddress> leader = KnownLeader();
  if (!leader.has_value()) {
    r->Respond(http::Response::Error(503, "no leading master is known"));
    return;
  }
  http::Response response;
  response.status = 307;
  response.headers.Set("Location", absl::StrCat("//", leader->ToString()));
  r->Respond(std::move(response));
}

void Master::HandleReplica(std::shared_ptr<http::Responder> r) {
  Post([this, r] {
    std::optional<MasterAddress> leader = KnownLeader();
    const log::LogServerStatus status = log_->Status();
    r->Respond(http::Response::Json(
        200,
        absl::StrCat(
            "{\"address\":",
            http::JsonQuote(options_.masters[self_index_].ToString()),
            ",\"role\":\"", RoleName(role_.load()), "\",\"leader\":",
            leader.has_value() ? http::JsonQuote(leader->ToString())
                               : std::string("null"),
            ",\"applied\":\"", applied_, "\",\"events_applied\":\"",
            state_.events_applied(), "\",\"agents\":", state_.AgentIds().size(),
            ",\"frameworks\":", state_.FrameworkIds().size(), ",\"tasks\":",
            state_.task_count(), ",\"weights\":", WeightsJson(state_.weights()),
            ",\"state_crc32c\":\"",
            absl::StrFormat("%08x", Crc32c(state_.SerializeCanonical())),
            "\",\"snapshot_position\":\"", last_snapshot_,
            "\",\"archive\":", ArchiveJson(*archive_), ",\"log\":{\"begin\":\"",
            status.begin, "\",\"learned_through\":\"", status.learned_through,
            "\",\"serving\":", status.serving ? "true" : "false", "}}")));
  });
}

void Master::HandleSnapshot(const http::Request& request,
                            std::shared_ptr<http::Responder> r) {
  // On the master thread: it alone uses the store (a read must not overlap
  // a snapshot being written).
  Post([this, query = request.query, r] {
    r->Respond(recovery::SnapshotResponse(*snapshots_, query));
  });
}

void Master::HandleApi(http::Request request,
                       std::shared_ptr<http::Responder> r) {
  // ---- Operator API (master/operator_api.h) ----
  OperatorRequest parsed;
  if (std::optional<http::Response> bad =
          ParseOperatorRequest(request, &parsed)) {
    r->Respond(*std::move(bad));
    return;
  }
  Post([this, parsed = std::move(parsed), r] {
    const logging::ScopedContext log_context(
        {{"request_id", parsed.context.request_id}});
    VLOG(3) << "operator API call "
            << v1::master_api::Call::Type_Name(parsed.call.type());
    operator_api_->Handle(parsed, leader_.get(), r);
  });
}

void Master::HandleAgentApi(http::Request request,
                            std::shared_ptr<http::Responder> r) {
  v1::AgentCall call;
  Encoding encoding = Encoding::kJson;
  if (std::optional<http::Response> bad = ParseCall(request, &call, &encoding)) {
    r->Respond(*std::move(bad));
    return;
  }
  metrics_->OnAgentCall(call);
  const std::string stream_id = request.headers.Get("X-Cairn-Stream-Id");
  const CommandContext context = ContextOf(request);
  if (call.type() != v1::AgentCall::SUBSCRIBE) {
    Post([this, call = std::move(call), stream_id, context, r] {
      const logging::ScopedContext log_context(
          {{"request_id", context.request_id}});
      VLOG(3) << "agent API call " << v1::AgentCall::Type_Name(call.type());
      if (leader_ == nullptr) {
        r->Respond(ApiError(503, "not the leading master"));
        return;
      }
      leader_->AgentCall(call, stream_id, context, [r](Answer answer) {
        r->Respond(AnswerResponse(answer));
      });
    });
    return;
  }
  if (!stream_id.empty()) {
    r->Respond(ApiError(400, "a SUBSCRIBE must not carry a stream id",
                        "X-Cairn-Stream-Id"));
    return;
  }
  const std::optional<Encoding> accept =
      NegotiateAccept(request.headers.Get("Accept"), encoding);
  if (!accept.has_value()) {
    r->Respond(ApiError(406, "Accept must allow application/json or "
                             "application/x-protobuf",
                        "Accept"));
    return;
  }
  Post([this, call = std::move(call), context, r, encoding = *accept,
        peer_ip = request.remote_address] {
    if (leader_ == nullptr) {
      r->Respond(ApiError(503, "not the leading master"));
      return;
    }
    auto stream = std::make_shared<HttpAgentStream>(r, encoding);
    stream->set_peer_ip(peer_ip);  // offers' url.address.ip (leader.h)
    leader_->AgentSubscribe(
        call, context, stream, [this, r, encoding](Answer answer) {
          if (answer.code != 200) {
            r->Respond(AnswerResponse(answer));
            return;
          }
          http::Headers headers;
          headers.Set("Content-Type", "application/recordio");
          headers.Set("Message-Content-Type", MediaType(encoding));
          headers.Set("X-Cairn-Stream-Id", answer.stream_id);
          r->StartStream(200, std::move(headers));
          r->OnClose([this, id = answer.stream_id] {
            Post([this, id] {
              if (leader_ != nullptr) leader_->AgentStreamClosed(id);
            });
          });
        });
  });
}

void Master::HandleSchedulerApi(http::Request request,
                                std::shared_ptr<http::Responder> r) {
  v1::scheduler::Call call;
  Encoding encoding = Encoding::kJson;
  if (std::optional<http::Response> bad = ParseCall(request, &call, &encoding)) {
    r->Respond(*std::move(bad));
    return;
  }
  metrics_->OnSchedulerCall(call);
  const CommandContext context = ContextOf(request);
  if (call.type() != v1::scheduler::Call::SUBSCRIBE) {
    const std::string stream_id = request.headers.Get("Mesos-Stream-Id");
    Post([this, call = std::move(call), stream_id, context, r] {
      const logging::ScopedContext log_context(
          {{"request_id", context.request_id}});
      VLOG(3) << "scheduler API call "
              << v1::scheduler::Call::Type_Name(call.type());
      if (leader_ == nullptr) {
        r->Respond(ApiError(503, "not the leading master"));
        return;
      }
      leader_->FrameworkCall(call, stream_id, context, [r](Answer answer) {
        r->Respond(AnswerResponse(answer));
      });
    });
    return;
  }
  // As Mesos: the master hands out stream ids, a SUBSCRIBE brings none.
  if (request.headers.Has("Mesos-Stream-Id")) {
    r->Respond(ApiError(400, "a SUBSCRIBE must not carry a Mesos-Stream-Id",
                        "Mesos-Stream-Id"));
    return;
  }
  // A missing Accept means JSON (what Mesos's clients expect).
  const std::optional<Encoding> accept =
      NegotiateAccept(request.headers.Get("Accept"), Encoding::kJson);
  if (!accept.has_value()) {
    r->Respond(ApiError(406, "Accept must allow application/json or "
                             "application/x-protobuf",
                        "Accept"));
    return;
  }
  Post([this, call = std::move(call), context, r, encoding = *accept] {
    if (leader_ == nullptr) {
      r->Respond(ApiError(503, "not the leading master"));
      return;
    }
    auto stream = std::make_shared<HttpFrameworkStream>(r, encoding);
    leader_->FrameworkSubscribe(
        call, context, stream, [this, r, encoding](Answer answer) {
          if (answer.code != 200) {
            r->Respond(AnswerResponse(answer));
            return;
          }
          http::Headers headers;
          // Mesos names the records' encoding in Content-Type.
          headers.Set("Content-Type", MediaType(encoding));
          headers.Set("Mesos-Stream-Id", answer.stream_id);
          r->StartStream(200, std::move(headers));
          r->OnClose([this, id = answer.stream_id] {
            Post([this, id] {
              if (leader_ != nullptr) leader_->FrameworkStreamClosed(id);
            });
          });
        });
  });
}

// ---- Mesos's read-only endpoints (master/state_json.h) ---------------------

namespace {

// A read-only endpoint's 200 answer, wrapped for ?jsonp= as Mesos does; 400
// for a callback that is not an identifier.
http::Response ReadOnlyResponse(
    std::string json, const std::map<std::string, std::string>& query) {
  absl::StatusOr<JsonBody> body = WrapJsonp(std::move(json), query);
  if (!body.ok()) return http::Response::Error(400, body.status().message());
  http::Response response;
  response.headers.Set("Content-Type", body->content_type);
  response.body = std::move(body->body);
  return response;
}

std::optional<std::string> QueryValue(
    const std::map<std::string, std::string>& query, const std::string& key) {
  auto it = query.find(key);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

}  // namespace

void Master::OnElected(const v1::MasterInfo& info) {
  elected_info_ = info;
  elected_time_ = absl::Now();
}

MasterIdentity Master::Identity() const {
  MasterIdentity identity;
  const MasterAddress& self = options_.masters[self_index_];
  identity.self = {elected_info_.id(), options_.hostname, options_.ip,
                   self.port};
  if (std::optional<MasterAddress> leader = KnownLeader()) {
    if (leader->host == self.host && leader->port == self.port) {
      identity.leader = identity.self;
    } else {
      identity.leader =
          MasterEndpoint{"", leader->host, leader->host, leader->port};
    }
  }
  identity.version = kVersion;
  identity.cluster = options_.cluster;
  if (auto log_dir = options_.flags.find("log_dir");
      log_dir != options_.flags.end()) {
    identity.log_dir = log_dir->second;
  }
  for (const auto& capability : elected_info_.capabilities()) {
    identity.capabilities.push_back(capability.type());
  }
  identity.start_time = start_time_;
  if (role_.load() == Role::kLeading) identity.elected_time = elected_time_;
  identity.flags = options_.flags;
  for (const MasterAddress& m : options_.masters) {
    identity.cairn.masters.push_back(m.ToString());
  }
  identity.cairn.log_position = applied_;
  identity.cairn.log_begin = log_->Status().begin;
  identity.cairn.snapshot_position = last_snapshot_;
  return identity;
}

void Master::HandleReadOnly(ReadOnlyEndpoint endpoint,
                            const http::Request& request,
                            std::shared_ptr<http::Responder> r) {
  Post([this, endpoint, query = request.query, r] {
    if (!commands_->leading()) {
      r->Respond(http::Response::Error(503, "not the leading master"));
      return;
    }
    std::string json;
    switch (endpoint) {
      case ReadOnlyEndpoint::kState:
        json = StateJson(state_, Identity());
        break;
      case ReadOnlyEndpoint::kStateSummary:
        json = StateSummaryJson(state_, Identity());
        break;
      case ReadOnlyEndpoint::kFrameworks:
        json = FrameworksJson(state_, QueryValue(query, "framework_id"));
        break;
      case ReadOnlyEndpoint::kSlaves:
        json = SlavesJson(state_, QueryValue(query, "slave_id"));
        break;
      case ReadOnlyEndpoint::kTasks:
        json = TasksJson(state_, TasksQuery::FromQuery(query));
        break;
    }
    r->Respond(ReadOnlyResponse(std::move(json), query));
  });
}

void Master::HandleFlags(const http::Request& request,
                         std::shared_ptr<http::Responder> r) {
  r->Respond(ReadOnlyResponse(FlagsJson(options_.flags), request.query));
}

}  // namespace cairn::master
