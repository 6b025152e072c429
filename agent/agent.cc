#include "agent/agent.h"

#include <signal.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/json.h"
#include "common/json_quote.h"
#include "common/logging.h"
#include "common/recordio.h"
#include "common/status_macros.h"
#include "common/task_state.h"
#include "monitoring/logging_http.h"
#include "monitoring/metrics_http.h"
#include "monitoring/process_metrics.h"

namespace cairn::agent {
namespace {

constexpr char kStreamIdHeader[] = "X-Cairn-Stream-Id";
constexpr size_t kMaxCompletedExecutors = 150;  // as Mesos's default
constexpr double kExecutorCpus = 0.1;           // command executor overhead
constexpr uint64_t kExecutorMemBytes = 32ull << 20;
constexpr absl::Duration kDefaultKillGrace = absl::Seconds(3);
constexpr char kVersion[] = "1.11.0";  // the Mesos API version we speak

double NowSecs() {
  return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
}

// Mesos's duration syntax, as executors parse it ("15mins", "2secs").
std::string MesosDuration(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Milliseconds(d), "ms");
}

http::MasterChannelOptions ChannelOptions(const AgentOptions& options) {
  http::MasterChannelOptions channel;
  channel.masters = options.masters;
  channel.path = "/api/v1/agent";
  channel.request_timeout = options.request_timeout;
  channel.max_backoff = absl::Seconds(2);
  return channel;
}

void WaitUntilTime(std::condition_variable& cv,
                   std::unique_lock<std::mutex>& lock, absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) {
    cv.wait(lock);
    return;
  }
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return;
  cv.wait_for(lock, absl::ToChronoNanoseconds(left));
}

std::string ReadBootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

// True while `pid` is a live process (not a zombie).
bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat;
  std::getline(in, stat);
  if (stat.empty()) return false;
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  const char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

// Field 22 of /proc/<pid>/stat: the start time in clock ticks since boot
// (tells a process from a later one that reused its pid). 0 if unknown.
uint64_t ProcessStartTime(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat;
  std::getline(in, stat);
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat).substr(paren + 2), ' ');
  // fields[0] is field 3 (state); field 22 is fields[19].
  uint64_t start = 0;
  if (fields.size() > 19 && absl::SimpleAtoi(fields[19], &start)) return start;
  return 0;
}

constexpr char kCommandExecutorLabel[] = "cairn.command_executor";

bool IsCommandExecutor(const v1::ExecutorInfo& info) {
  for (const v1::Label& label : info.labels().labels()) {
    if (label.key() == kCommandExecutorLabel) return true;
  }
  return false;
}

// A default executor (Mesos's ExecutorInfo.type DEFAULT, or no command)
// runs task groups: it is cairn-executor, sent LAUNCH_GROUP.
bool IsDefaultExecutor(const v1::ExecutorInfo& info) {
  return !IsCommandExecutor(info) &&
         (info.type() == v1::ExecutorInfo::DEFAULT || !info.has_command());
}

// LAUNCH_GROUP of `tasks` for a default executor.
v1::executor::Event LaunchGroupEvent(const std::vector<v1::TaskInfo>& tasks) {
  v1::executor::Event event;
  event.set_type(v1::executor::Event::LAUNCH_GROUP);
  for (const v1::TaskInfo& task : tasks) {
    *event.mutable_launch_group()->mutable_task_group()->add_tasks() = task;
  }
  return event;
}

// A command executor is named after its task, as in Mesos.
v1::ExecutorID ExecutorIdFor(const v1::TaskInfo& task) {
  v1::ExecutorID id;
  id.set_value(task.task_id().value());
  return id;
}

v1::ContainerID ContainerIdOf(const std::string& value) {
  v1::ContainerID id;
  id.set_value(value);
  return id;
}

// 8-4-4-4-12 lowercase hex.
std::string FormatUuid(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[(static_cast<unsigned char>(bytes[i]) >> 4) & 0xF]);
    out.push_back(kHex[static_cast<unsigned char>(bytes[i]) & 0xF]);
  }
  return out;
}

v1::Resource Scalar(const std::string& name, double value) {
  v1::Resource r;
  r.set_name(name);
  r.set_type(v1::MesosValue::SCALAR);
  r.mutable_scalar()->set_value(value);
  return r;
}

}  // namespace

// ---- Flags helpers
// ------------------------------------------------------------

absl::StatusOr<std::vector<v1::Attribute>> ParseAttributes(
    absl::string_view text) {
  std::vector<v1::Attribute> attributes;
  for (absl::string_view part :
       absl::StrSplit(text, ';', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    const size_t colon = part.find(':');
    if (colon == absl::string_view::npos || colon == 0 ||
        colon + 1 == part.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("attribute '", part, "' is not name:value"));
    }
    v1::Attribute a;
    a.set_name(std::string(absl::StripAsciiWhitespace(part.substr(0, colon))));
    absl::string_view value =
        absl::StripAsciiWhitespace(part.substr(colon + 1));
    double scalar;
    if (absl::SimpleAtod(value, &scalar)) {
      a.set_type(v1::MesosValue::SCALAR);
      a.mutable_scalar()->set_value(scalar);
    } else if (value.size() >= 2 && value.front() == '[' &&
               value.back() == ']') {
      a.set_type(v1::MesosValue::RANGES);
      for (absl::string_view range :
           absl::StrSplit(value.substr(1, value.size() - 2), ',',
                          absl::SkipWhitespace())) {
        std::pair<std::string, std::string> bounds =
            absl::StrSplit(absl::StripAsciiWhitespace(range), '-');
        uint64_t begin, end;
        if (!absl::SimpleAtoi(bounds.first, &begin) ||
            !absl::SimpleAtoi(bounds.second, &end) || begin > end) {
          return absl::InvalidArgumentError(
              absl::StrCat("attribute '", part, "': bad range '", range, "'"));
        }
        v1::MesosValue::Range* r = a.mutable_ranges()->add_range();
        r->set_begin(begin);
        r->set_end(end);
      }
    } else {
      a.set_type(v1::MesosValue::TEXT);
      a.mutable_text()->set_value(std::string(value));
    }
    attributes.push_back(std::move(a));
  }
  return attributes;
}

std::vector<v1::Resource> DefaultResources(
    const std::vector<v1::Resource>& given, const std::string& work_dir) {
  std::set<std::string> named;
  for (const v1::Resource& r : given) named.insert(r.name());
  std::vector<v1::Resource> resources = given;
  if (named.count("cpus") == 0) {
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    resources.push_back(Scalar("cpus", cpus > 0 ? cpus : 1));
  }
  // Mesos keeps back 1 GiB or half of the memory (the smaller) for the
  // system, and the same rule for disk with 5 GiB.
  if (named.count("mem") == 0) {
    const double total_mb = static_cast<double>(sysconf(_SC_PHYS_PAGES)) *
                            sysconf(_SC_PAGESIZE) / (1 << 20);
    resources.push_back(Scalar(
        "mem",
        std::floor(std::max(32.0, total_mb - std::min(1024.0, total_mb / 2)))));
  }
  if (named.count("disk") == 0) {
    struct statvfs fs;
    double disk_mb = 1024;
    if (statvfs(work_dir.c_str(), &fs) == 0) {
      const double total =
          static_cast<double>(fs.f_blocks) * fs.f_frsize / (1 << 20);
      disk_mb = std::max(0.0, total - std::min(5120.0, total / 2));
    }
    resources.push_back(Scalar("disk", std::floor(disk_mb)));
  }
  if (named.count("ports") == 0) {
    v1::Resource ports;
    ports.set_name("ports");
    ports.set_type(v1::MesosValue::RANGES);
    v1::MesosValue::Range* range = ports.mutable_ranges()->add_range();
    range->set_begin(31000);
    range->set_end(32000);
    resources.push_back(ports);
  }
  return resources;
}

// ---- Construction, start, stop
// -------------------------------------------------

namespace {
master::Resources TotalOf(const AgentOptions& options) {
  google::protobuf::RepeatedPtrField<v1::Resource> field(
      options.resources.begin(), options.resources.end());
  absl::StatusOr<master::Resources> total = master::Resources::FromProto(field);
  CHECK(total.ok()) << "agent resources: " << total.status();
  return *total;
}
}  // namespace

Agent::Agent(AgentOptions options)
    : options_(std::move(options)),
      total_(TotalOf(options_)),
      channel_(ChannelOptions(options_)),
      start_time_(absl::Now()),
      boot_id_(ReadBootId()) {
  resubscribe_backoff_ = options_.registration_backoff_factor;
  std::random_device seed;
  random_.seed((uint64_t{seed()} << 32) ^ seed());
}

Agent::~Agent() { Stop(); }

uint16_t Agent::port() const { return http_ != nullptr ? http_->port() : 0; }

std::optional<v1::AgentID> Agent::agent_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return agent_id_;
}

absl::Status Agent::Start() {
  if (options_.work_dir.empty()) {
    return absl::InvalidArgumentError("--work_dir is required");
  }
  std::error_code error;
  std::filesystem::create_directories(options_.work_dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat(
        "cannot create --work_dir ", options_.work_dir, ": ", error.message()));
  }
  // Two agents on one machine must never touch each other's containers.
  // (By the canonical path, so `dir` and `dir/` name the same agent.)
  const std::string root = absl::StrCat(
      "cairn/",
      std::hash<std::string>()(
          std::filesystem::weakly_canonical(options_.work_dir).string()));
  absl::StatusOr<std::unique_ptr<Containerizer>> containerizer =
      Containerizer::Create(options_.isolation, root,
                            options_.work_dir + "/containers");
  if (!containerizer.ok()) return containerizer.status();
  containerizer_ = *std::move(containerizer);
  LOG(INFO) << "isolation: " << containerizer_->isolation();

  FetcherOptions fetcher;
  fetcher.cache_dir = options_.fetcher_cache_dir.empty()
                          ? options_.work_dir + "/fetch_cache"
                          : options_.fetcher_cache_dir;
  fetcher.cache_size_bytes = options_.fetcher_cache_size_bytes;
  fetcher_ = std::make_unique<Fetcher>(fetcher, &metrics_);

  meta_ = std::make_unique<MetaStore>(options_.work_dir + "/meta");
  StatusUpdateManagerOptions sum;
  sum.meta_dir = options_.work_dir + "/meta";
  sum.strict = options_.strict;
  sum.initial_retry = options_.update_retry;
  updates_ = std::make_unique<StatusUpdateManager>(sum);

  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time began = absl::Now();
    if (options_.recover == "cleanup") {
      absl::Status cleaned = CleanupAndForget();
      if (!cleaned.ok()) return cleaned;
      return absl::CancelledError(
          "--recover=cleanup: killed every executor of the checkpoint and "
          "removed it");
    }
    absl::Status recovered = Recover();
    if (!recovered.ok()) return recovered;
    recovery_secs_ = absl::ToDoubleSeconds(absl::Now() - began);
  }

  http::ServerOptions server;
  server.address = options_.ip;
  server.port = options_.port;
  server.num_threads = 4;
  // The masters' dashboard reads /state and /files from the browser.
  server.get_allow_origin = "*";
  http_ = std::make_unique<http::Server>(server);
  InitMetrics();
  RegisterRoutes();
  RETURN_IF_ERROR(http_->Start());
  LOG(INFO) << "cairn-agent listening on " << options_.ip << ":"
            << http_->port();

  std::lock_guard<std::mutex> lock(mu_);
  started_ = true;
  subscriber_ = std::thread([this] { SubscriberLoop(); });
  worker_ = std::thread([this] { WorkerLoop(); });
  return absl::OkStatus();
}

absl::Status Agent::Wait() {
  absl::Status exit;
  std::vector<std::string> containers;
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (!exit_status_.has_value()) cv_.wait(lock);
    exit = *exit_status_;
    if (absl::IsPermissionDenied(exit)) {
      // Removed (or unknown) for good: the log says every task here is
      // over, so nothing may keep running (docs/agent-protocol.md section 8).
      for (const auto& [fid, framework] : frameworks_) {
        for (const auto& [eid, executor] : framework.executors) {
          containers.push_back(executor.container_id);
        }
      }
    }
  }
  for (const std::string& container : containers) {
    const absl::Status destroyed = containerizer_->Destroy(container);
    if (!destroyed.ok()) {
      LOG(ERROR) << "destroying " << container << ": " << destroyed;
    }
  }
  if (!containers.empty()) {
    LOG(WARNING) << "killed the " << containers.size()
                 << " executor(s) of an agent the master removed";
  }
  return exit;
}

void Agent::Stop() {
  // Concurrent callers (a signal's thread, main, the destructor) all return
  // once the first has stopped everything.
  std::call_once(stop_once_, [this] { StopOnce(); });
}

void Agent::StopOnce() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (!exit_status_.has_value()) exit_status_ = absl::OkStatus();
    Changed();
  }
  channel_.Cancel();
  if (subscriber_.joinable()) subscriber_.join();
  if (worker_.joinable()) worker_.join();
  std::vector<std::thread> launchers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    launchers.swap(launchers_);
  }
  for (std::thread& t : launchers) t.join();
  if (reader_ != nullptr) reader_->Stop();
  if (http_ != nullptr) http_->Stop();
  // Executors outlive the agent; an agent without any leaves no cgroup.
  // One last look first: an executor that exited since the last check is
  // reaped and its container destroyed (what that writes is checkpointed
  // and sent after a restart).
  if (containerizer_ != nullptr && started_) {
    CheckContainers();
    containerizer_->ReleaseRoot();
  }
}

void Agent::Changed() { cv_.notify_all(); }

std::string Agent::NewUuid() {
  std::string uuid(16, '\0');
  for (size_t i = 0; i < uuid.size(); i += 8) {
    const uint64_t bits = random_();
    for (size_t j = 0; j < 8; ++j)
      uuid[i + j] = static_cast<char>(bits >> (8 * j));
  }
  // RFC 4122 version 4 layout, as Mesos's UUIDs.
  uuid[6] = static_cast<char>((uuid[6] & 0x0F) | 0x40);
  uuid[8] = static_cast<char>((uuid[8] & 0x3F) | 0x80);
  return uuid;
}

// ---- Recovery
// ------------------------------------------------------------------

absl::Status Agent::CleanupAndForget() {
  absl::StatusOr<RecoveredState> state = meta_->Recover(/*strict=*/false);
  std::map<std::string, pid_t> none;
  if (state.ok()) {
    for (const auto& framework : state->frameworks) {
      for (const auto& executor : framework.executors) {
        const std::string& cid = executor.latest_run.container_id.value();
        if (!cid.empty()) {
          absl::Status destroyed = containerizer_->Destroy(cid);
          if (!destroyed.ok()) LOG(WARNING) << destroyed;
        }
      }
    }
  }
  // Whatever is left under our cgroup root goes too.
  absl::Status orphans = containerizer_->Recover(none);
  if (!orphans.ok()) LOG(WARNING) << orphans;
  std::error_code error;
  std::filesystem::remove_all(options_.work_dir + "/meta", error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot remove the checkpoint: ", error.message()));
  }
  return absl::OkStatus();
}

absl::Status Agent::Recover() {
  absl::StatusOr<RecoveredState> state = meta_->Recover(options_.strict);
  if (!state.ok()) {
    ++recovery_errors_;
    return absl::Status(state.status().code(),
                        absl::StrCat("recovering the checkpoint (use "
                                     "--strict=false to skip damaged "
                                     "entries): ",
                                     state.status().message()));
  }
  recovery_errors_ += state->warnings.size();
  absl::StatusOr<std::vector<std::string>> streams = updates_->Recover();
  if (!streams.ok()) {
    ++recovery_errors_;
    return streams.status();
  }
  recovery_errors_ += streams->size();

  if (state->agent_info.has_value() && state->agent_info->has_id()) {
    agent_id_ = state->agent_info->id();
    LOG(INFO) << "recovering agent " << agent_id_->value();
  }
  const bool rebooted = state->boot_id.has_value() && !boot_id_.empty() &&
                        *state->boot_id != boot_id_;
  if (rebooted) LOG(WARNING) << "the machine rebooted: no executor survived";
  absl::Status boot = meta_->CheckpointBootId(boot_id_);
  if (!boot.ok()) return boot;

  std::map<std::string, pid_t> wanted;
  const absl::Time now = absl::Now();
  for (const RecoveredFramework& rf : state->frameworks) {
    Framework& framework = frameworks_[rf.info.id().value()];
    framework.info = rf.info;
    for (const RecoveredExecutor& re : rf.executors) {
      const RecoveredExecutorRun& run = re.latest_run;
      const std::string sandbox =
          SandboxPath(rf.info.id(), re.executor_id, run.container_id);
      if (run.completed) {
        CompletedExecutor done;
        done.framework_id = rf.info.id();
        done.info = run.executor_info;
        done.container_id = run.container_id.value();
        done.sandbox = sandbox;
        for (const v1::TaskInfo& info : run.tasks) {
          Task task;
          task.framework_id = rf.info.id();
          task.executor_id = re.executor_id;
          task.info = info;
          done.tasks.push_back(std::move(task));
        }
        completed_.push_back(std::move(done));
        gc_[sandbox] = {now + options_.gc_delay, rf.info.id(), re.executor_id};
        continue;
      }
      Executor& executor = framework.executors[re.executor_id.value()];
      executor.framework_id = rf.info.id();
      executor.info = run.executor_info;
      executor.command_executor = IsCommandExecutor(run.executor_info);
      executor.container_id = run.container_id.value();
      executor.sandbox = sandbox;
      executor.pid = run.pid.value_or(-1);
      executor.started = now;
      AttachSandbox(rf.info.id(), re.executor_id, sandbox);
      for (const v1::TaskInfo& info : run.tasks) {
        Task& task = executor.tasks[info.task_id().value()];
        task.framework_id = rf.info.id();
        task.executor_id = re.executor_id;
        task.info = info;
        task.launched = true;  // the executor says otherwise on subscribe
        std::optional<v1::TaskStatus> latest =
            updates_->Latest(rf.info.id(), info.task_id());
        if (latest.has_value()) {
          task.state = latest->state();
          task.latest = latest;
        }
      }
      const bool alive = !rebooted && run.pid.has_value() &&
                         ProcessStartTime(*run.pid) == run.start_time &&
                         ProcessAlive(*run.pid);
      if (alive) {
        executor.state = ExecutorState::kRunning;
        executor.registration_deadline =
            now + options_.executor_reregistration_timeout;
        wanted[executor.container_id] = *run.pid;
        LOG(INFO) << "executor " << re.executor_id.value() << " (pid "
                  << *run.pid << ") is alive; waiting for it to resubscribe";
      } else {
        executor.state = ExecutorState::kTerminated;
        LOG(INFO) << "executor " << re.executor_id.value()
                  << " ended while the agent was down";
      }
    }
  }
  while (completed_.size() > kMaxCompletedExecutors) completed_.pop_front();
  // Frameworks whose executors had all completed: nothing runs for them.
  for (auto it = frameworks_.begin(); it != frameworks_.end();) {
    it = it->second.executors.empty() ? frameworks_.erase(it) : std::next(it);
  }
  absl::Status containers = containerizer_->Recover(wanted);
  if (!containers.ok()) LOG(WARNING) << "container recovery: " << containers;
  // Executors that died while we were away: complete their tasks now
  // (which may erase them: collect first).
  std::vector<std::pair<std::string, std::string>> dead;
  for (auto& [fid, framework] : frameworks_) {
    for (auto& [eid, executor] : framework.executors) {
      if (executor.state == ExecutorState::kTerminated)
        dead.emplace_back(fid, eid);
    }
  }
  for (const auto& [fid, eid] : dead) {
    Executor* executor = FindExecutor(fid, eid);
    if (executor != nullptr) ExecutorTerminated(*executor);
  }
  return absl::OkStatus();
}

// ---- Master: subscription
// ---------------------------------------------------------

v1::AgentCall Agent::SubscribeCall() const {
  v1::AgentCall call;
  call.set_type(v1::AgentCall::SUBSCRIBE);
  v1::AgentCall::Subscribe* subscribe = call.mutable_subscribe();
  v1::AgentInfo* info = subscribe->mutable_agent_info();
  info->set_hostname(options_.hostname.empty() ? options_.ip
                                               : options_.hostname);
  info->set_port(http_ != nullptr ? http_->port() : options_.port);
  for (const v1::Resource& r : options_.resources) *info->add_resources() = r;
  for (const v1::Attribute& a : options_.attributes)
    *info->add_attributes() = a;
  subscribe->set_version(kVersion);
  for (v1::AgentInfo::Capability::Type type :
       {v1::AgentInfo::Capability::MULTI_ROLE,
        v1::AgentInfo::Capability::HIERARCHICAL_ROLE,
        v1::AgentInfo::Capability::RESERVATION_REFINEMENT}) {
    subscribe->add_capabilities()->set_type(type);
  }
  if (!agent_id_.has_value()) return call;

  *call.mutable_agent_id() = *agent_id_;
  *info->mutable_id() = *agent_id_;
  std::set<std::string> reported_frameworks;
  std::set<std::pair<std::string, std::string>> reported_tasks;
  for (const auto& [fid, framework] : frameworks_) {
    bool any = false;
    for (const auto& [eid, executor] : framework.executors) {
      if (executor.state != ExecutorState::kTerminated) {
        *subscribe->add_executors() = executor.info;
      }
      for (const auto& [tid, task] : executor.tasks) {
        v1::Task* t = subscribe->add_tasks();
        t->set_name(task.info.name());
        *t->mutable_task_id() = task.info.task_id();
        *t->mutable_framework_id() = task.framework_id;
        *t->mutable_executor_id() = task.executor_id;
        *t->mutable_agent_id() = *agent_id_;
        t->set_state(task.state);
        *t->mutable_resources() = task.info.resources();
        if (task.latest.has_value()) *t->add_statuses() = *task.latest;
        std::optional<v1::TaskStatus> head =
            updates_->Head(task.framework_id, task.info.task_id());
        if (head.has_value()) {
          t->set_status_update_state(head->state());
          t->set_status_update_uuid(head->uuid());
        }
        *t->mutable_labels() = task.info.labels();
        reported_tasks.insert({fid, tid});
        any = true;
      }
    }
    if (any) reported_frameworks.insert(fid);
  }
  // Streams of tasks the agent no longer runs (e.g. an answer to a KILL of
  // an unknown task) are reported through their head update.
  for (const auto& [framework_id, task_id] : updates_->Streams()) {
    if (reported_tasks.count({framework_id.value(), task_id.value()}) > 0) {
      continue;
    }
    std::optional<v1::TaskStatus> head = updates_->Head(framework_id, task_id);
    std::optional<v1::TaskStatus> latest =
        updates_->Latest(framework_id, task_id);
    if (!head.has_value() || !latest.has_value()) continue;
    v1::Task* t = subscribe->add_tasks();
    *t->mutable_task_id() = task_id;
    *t->mutable_framework_id() = framework_id;
    *t->mutable_agent_id() = *agent_id_;
    t->set_state(latest->state());
    *t->add_statuses() = *latest;
    t->set_status_update_state(head->state());
    t->set_status_update_uuid(head->uuid());
    reported_frameworks.insert(framework_id.value());
  }
  for (const std::string& fid : reported_frameworks) {
    v1::FrameworkInfo* f = subscribe->add_frameworks();
    auto it = frameworks_.find(fid);
    if (it != frameworks_.end()) *f = it->second.info;
    f->mutable_id()->set_value(fid);
  }
  return call;
}

void Agent::SubscriberLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const absl::Time now = absl::Now();
    if (stream_open_ && now - last_record_ > stream_timeout_) {
      LOG(WARNING) << "no record from the master for "
                   << absl::FormatDuration(now - last_record_)
                   << ": resubscribing";
      stream_open_ = false;
      subscribed_ = false;
    }
    if (stream_open_) {
      WaitUntilTime(cv_, lock, last_record_ + stream_timeout_);
      continue;
    }
    lock.unlock();
    if (reader_ != nullptr) {
      reader_->Stop();
      reader_.reset();
    }
    const absl::Status subscribed = SubscribeOnce();
    lock.lock();
    if (subscribed.ok()) {
      resubscribe_backoff_ = options_.registration_backoff_factor;
      continue;
    }
    if (stopping_) break;
    if (http::HttpStatusOf(subscribed) == 403) {
      LOG(ERROR) << "the master refuses this agent for good (" << subscribed
                 << "); an operator must restart it with a clean --work_dir";
      exit_status_ = absl::PermissionDeniedError(subscribed.message());
      Changed();
      break;
    }
    LOG(WARNING) << "subscribing to the master failed: " << subscribed
                 << "; retrying in "
                 << absl::FormatDuration(resubscribe_backoff_);
    // Backoff with jitter: [b/2, b).
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    const absl::Time retry =
        absl::Now() + resubscribe_backoff_ * jitter(random_);
    resubscribe_backoff_ =
        std::min(resubscribe_backoff_ * 2, options_.max_resubscribe_backoff);
    while (!stopping_ && absl::Now() < retry) WaitUntilTime(cv_, lock, retry);
  }
}

absl::Status Agent::SubscribeOnce() {
  v1::AgentCall call;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::CancelledError("stopping");
    call = SubscribeCall();
  }
  absl::StatusOr<std::string> body = ToJson(call);
  if (!body.ok()) return body.status();
  const absl::Time deadline = absl::Now() + options_.request_timeout * 3;
  absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
      channel_.OpenStream({{"Content-Type", "application/json"},
                           {"Accept", "application/json"}},
                          *body, deadline);
  if (!stream.ok()) return stream.status();
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation = ++generation_;
    stream_open_ = true;
    subscribed_ = false;
    stream_id_ = (*stream)->headers().Get(kStreamIdHeader);
    last_record_ = absl::Now();
    // Until SUBSCRIBED says otherwise.
    stream_timeout_ = options_.request_timeout * 3;
  }
  reader_ = std::make_unique<http::RecordStreamReader>(
      *std::move(stream),
      [this, generation](std::string record) {
        OnMasterRecord(generation, record);
      },
      [this, generation](absl::Status end) { OnMasterEnd(generation, end); });
  return absl::OkStatus();
}

void Agent::OnMasterEnd(uint64_t generation, absl::Status end) {
  std::lock_guard<std::mutex> lock(mu_);
  if (generation != generation_) return;
  LOG(INFO) << "the master's stream ended: " << end;
  stream_open_ = false;
  subscribed_ = false;
  next_heartbeat_ = absl::InfiniteFuture();
  Changed();
}

void Agent::OnMasterRecord(uint64_t generation, const std::string& record) {
  v1::AgentEvent event;
  const absl::Status parsed =
      FromJson(record, &event, /*ignore_unknown_fields=*/true);
  std::lock_guard<std::mutex> lock(mu_);
  if (generation != generation_) return;
  last_record_ = absl::Now();
  if (!parsed.ok()) {
    LOG(ERROR) << "malformed record from the master: " << parsed;
    return;
  }
  if (event.type() != v1::AgentEvent::SUBSCRIBED && !subscribed_) {
    LOG(ERROR) << "event " << v1::AgentEvent::Type_Name(event.type())
               << " before SUBSCRIBED; ignored";
    return;
  }
  switch (event.type()) {
    case v1::AgentEvent::SUBSCRIBED:
      HandleSubscribed(event.subscribed());
      break;
    case v1::AgentEvent::LAUNCH:
      HandleLaunch(event.launch());
      break;
    case v1::AgentEvent::KILL:
      HandleKill(event.kill());
      break;
    case v1::AgentEvent::ACKNOWLEDGE:
      HandleAcknowledge(event.acknowledge());
      break;
    case v1::AgentEvent::SHUTDOWN_FRAMEWORK:
      HandleShutdownFramework(event.shutdown_framework().framework_id());
      break;
    case v1::AgentEvent::SHUTDOWN_EXECUTOR:
      HandleShutdownExecutor(event.shutdown_executor().framework_id(),
                             event.shutdown_executor().executor_id());
      break;
    case v1::AgentEvent::FRAMEWORK_MESSAGE:
      HandleFrameworkMessage(event.framework_message());
      break;
    case v1::AgentEvent::RECONCILE:
      HandleReconcile(event.reconcile());
      break;
    case v1::AgentEvent::ERROR:
      LOG(ERROR) << "the master: ERROR " << event.error().code() << ": "
                 << event.error().message();
      if (event.error().code() == 403) {
        exit_status_ = absl::PermissionDeniedError(event.error().message());
      }
      break;
    case v1::AgentEvent::HEARTBEAT:
      break;
    default:
      LOG(WARNING) << "ignoring an event of unknown type " << event.type();
      break;
  }
  Changed();
}

void Agent::HandleSubscribed(const v1::AgentEvent::Subscribed& subscribed) {
  if (!agent_id_.has_value() ||
      agent_id_->value() != subscribed.agent_id().value()) {
    // Checkpoint the id before acting on anything else.
    v1::AgentInfo info = SubscribeCall().subscribe().agent_info();
    *info.mutable_id() = subscribed.agent_id();
    const absl::Status saved = meta_->CheckpointAgentInfo(info);
    if (!saved.ok()) {
      LOG(ERROR) << "cannot checkpoint the agent id: " << saved;
      exit_status_ = saved;
      Changed();
      return;
    }
    agent_id_ = subscribed.agent_id();
    LOG(INFO) << "registered as agent " << agent_id_->value();
  } else {
    LOG(INFO) << "reregistered as agent " << agent_id_->value();
  }
  subscribed_ = true;
  ++subscriptions_;
  if (subscribed.has_master_info()) master_info_ = subscribed.master_info();
  heartbeat_interval_ =
      subscribed.heartbeat_interval_seconds() > 0
          ? absl::Seconds(subscribed.heartbeat_interval_seconds())
          : absl::Seconds(15);
  const uint32_t timeouts = subscribed.max_agent_ping_timeouts() > 0
                                ? subscribed.max_agent_ping_timeouts()
                                : 5;
  stream_timeout_ = heartbeat_interval_ * timeouts;
  next_heartbeat_ = absl::Now() + heartbeat_interval_;
  updates_->ResetRetries();
}

// ---- Master: commands
// ------------------------------------------------------------

std::string Agent::SandboxPath(const v1::FrameworkID& framework_id,
                               const v1::ExecutorID& executor_id,
                               const v1::ContainerID& container_id) const {
  // Mesos's layout, so operators find sandboxes where they expect them.
  auto escaped = [](const std::string& id) {
    absl::StatusOr<std::string> e = EscapeId(id);
    return e.ok() ? *e : std::string("_");
  };
  return absl::StrCat(
      options_.work_dir, "/slaves/",
      escaped(agent_id_.has_value() ? agent_id_->value() : "unregistered"),
      "/frameworks/", escaped(framework_id.value()), "/executors/",
      escaped(executor_id.value()), "/runs/", escaped(container_id.value()));
}

void Agent::AttachSandbox(const v1::FrameworkID& framework_id,
                          const v1::ExecutorID& executor_id,
                          const std::string& sandbox) {
  // As Mesos: the real path, and the executor's latest run under a path
  // that does not change across runs (what UIs link to).
  absl::Status attached = files_.Attach(sandbox, sandbox);
  if (!attached.ok())
    LOG(WARNING) << "attaching " << sandbox << ": " << attached;
  const std::string latest =
      absl::StrCat("/frameworks/", framework_id.value(), "/executors/",
                   executor_id.value(), "/runs/latest");
  if (files_.Attach(sandbox, latest).ok()) latest_links_[latest] = sandbox;
}

Agent::Executor* Agent::FindExecutor(const std::string& framework_id,
                                     const std::string& executor_id) {
  auto f = frameworks_.find(framework_id);
  if (f == frameworks_.end()) return nullptr;
  auto e = f->second.executors.find(executor_id);
  return e == f->second.executors.end() ? nullptr : &e->second;
}

std::pair<Agent::Executor*, Agent::Task*> Agent::FindTask(
    const std::string& framework_id, const std::string& task_id) {
  auto f = frameworks_.find(framework_id);
  if (f == frameworks_.end()) return {nullptr, nullptr};
  for (auto& [eid, executor] : f->second.executors) {
    auto t = executor.tasks.find(task_id);
    if (t != executor.tasks.end()) return {&executor, &t->second};
  }
  return {nullptr, nullptr};
}

master::Resources Agent::UsedResources() const {
  master::Resources used;
  for (const auto& [fid, framework] : frameworks_) {
    for (const auto& [eid, executor] : framework.executors) {
      if (executor.state == ExecutorState::kTerminated) continue;
      bool live = false;
      for (const auto& [tid, task] : executor.tasks) {
        if (IsTerminalState(task.state)) continue;
        live = true;
        absl::StatusOr<master::Resources> r =
            master::Resources::FromProto(task.info.resources());
        if (r.ok()) used += r->WithoutAllocationInfo();
      }
      // A custom executor's own resources, while it runs a task (as the
      // master counts them: once, until its last task ends).
      if (!executor.command_executor && live) {
        absl::StatusOr<master::Resources> r =
            master::Resources::FromProto(executor.info.resources());
        if (r.ok()) used += r->WithoutAllocationInfo();
      }
    }
  }
  return used;
}

void Agent::HandleLaunch(const v1::AgentEvent::Launch& launch) {
  const v1::FrameworkInfo& framework_info = launch.framework_info();
  const v1::FrameworkID& framework_id = framework_info.id();
  if (framework_id.value().empty()) {
    LOG(ERROR) << "LAUNCH without framework_info.id; ignored";
    return;
  }
  Framework& framework = frameworks_[framework_id.value()];
  // Checkpointed at every launch: the framework's info may have changed.
  framework.info = framework_info;
  const absl::Status saved = meta_->CheckpointFramework(framework_info);
  if (!saved.ok()) {
    ++checkpoint_errors_;
    LOG(ERROR) << "checkpointing framework: " << saved;
  }

  // Does it fit what is free? (The master only offers what is free, so a
  // shortfall means the two disagree: refuse rather than overcommit.)
  master::Resources wanted;
  absl::StatusOr<master::Resources> requested =
      master::Resources::FromProto(launch.resources());
  if (requested.ok()) wanted = requested->WithoutAllocationInfo();
  const master::Resources free = total_ - UsedResources();
  const bool fits = requested.ok() && free.Contains(wanted);
  // The tasks of this launch for subscribed default executors, by executor
  // id: one LAUNCH_GROUP each, after the loop.
  std::map<std::string, std::vector<v1::TaskInfo>> groups;

  for (const v1::TaskInfo& info : launch.tasks()) {
    const std::string& tid = info.task_id().value();
    if (FindTask(framework_id.value(), tid).second != nullptr ||
        updates_->HasPending(framework_id, info.task_id())) {
      VLOG(1) << "task " << tid << " is known: LAUNCH ignored";
      continue;
    }
    auto reject = [&](v1::TaskState state, v1::TaskStatus::Reason reason,
                      const std::string& message) {
      LOG(WARNING) << "task " << tid << ": " << message;
      GenerateStatus(framework_id, info.task_id(), v1::ExecutorID(), state,
                     reason, message, v1::TaskStatus::SOURCE_AGENT);
    };
    if (!fits) {
      reject(
          v1::TASK_ERROR, v1::TaskStatus::REASON_TASK_INVALID,
          absl::StrCat("the launch needs ", wanted.ToString(),
                       " but the agent has only ", free.ToString(), " free"));
      continue;
    }
    // Which executor: the task's own (custom), the launch's, or a command
    // executor of its own named after the task (as Mesos does).
    v1::ExecutorInfo executor_info;
    bool command_executor = false;
    if (info.has_executor()) {
      executor_info = info.executor();
    } else if (launch.has_executor_info() &&
               launch.executor_info().has_command()) {
      executor_info = launch.executor_info();
    } else if (info.has_command()) {
      command_executor = true;
      *executor_info.mutable_executor_id() = ExecutorIdFor(info);
      executor_info.set_name(
          absl::StrCat("Command Executor (Task: ", tid,
                       ") (Command: ", info.command().value(), ")"));
      executor_info.mutable_command()->set_value(options_.executor_path);
      executor_info.mutable_command()->set_shell(false);
      v1::Label* label = executor_info.mutable_labels()->add_labels();
      label->set_key(kCommandExecutorLabel);
      label->set_value("true");
    } else {
      reject(v1::TASK_ERROR, v1::TaskStatus::REASON_TASK_INVALID,
             "the task has neither a command nor an executor");
      continue;
    }
    *executor_info.mutable_framework_id() = framework_id;
    const std::string eid = executor_info.executor_id().value();
    if (eid.empty()) {
      reject(v1::TASK_ERROR, v1::TaskStatus::REASON_TASK_INVALID,
             "executor_info.executor_id is empty");
      continue;
    }

    Executor* executor = FindExecutor(framework_id.value(), eid);
    if (executor != nullptr && executor->state == ExecutorState::kTerminated) {
      reject(v1::TASK_FAILED, v1::TaskStatus::REASON_EXECUTOR_TERMINATED,
             absl::StrCat("executor ", eid, " has terminated"));
      continue;
    }
    if (executor != nullptr &&
        (executor->state == ExecutorState::kTerminating ||
         executor->shutdown_requested)) {
      reject(v1::TASK_FAILED, v1::TaskStatus::REASON_EXECUTOR_TERMINATED,
             absl::StrCat("executor ", eid, " is shutting down"));
      continue;
    }
    const bool new_executor = executor == nullptr;
    if (new_executor) {
      executor = &framework.executors[eid];
      executor->framework_id = framework_id;
      executor->info = executor_info;
      executor->command_executor = command_executor;
      v1::ContainerID container_id;
      container_id.set_value(FormatUuid(NewUuid()));
      executor->container_id = container_id.value();
      executor->sandbox =
          SandboxPath(framework_id, executor_info.executor_id(), container_id);
      executor->state = ExecutorState::kLaunching;
      executor->started = absl::Now();
      absl::Status saved =
          meta_->CheckpointExecutor(framework_id, executor_info, container_id);
      if (!saved.ok()) {
        ++checkpoint_errors_;
        LOG(ERROR) << "checkpointing executor " << eid << ": " << saved;
      }
      // Limits: the task's (or the executor's) resources plus the command
      // executor's own overhead; a default executor's: its own and all its
      // tasks' in this launch (its group).
      absl::StatusOr<master::Resources> own = master::Resources::FromProto(
          command_executor ? info.resources() : executor_info.resources());
      double cpus = 0, mem_mb = 0;
      if (own.ok()) {
        cpus = own->ScalarSum("cpus");
        mem_mb = own->ScalarSum("mem");
      }
      if (!command_executor) {
        for (const v1::TaskInfo& t : launch.tasks()) {
          if (&t != &info && (!IsDefaultExecutor(executor_info) ||
                              t.executor().executor_id().value() != eid)) {
            continue;
          }
          absl::StatusOr<master::Resources> task_r =
              master::Resources::FromProto(t.resources());
          if (task_r.ok()) {
            cpus += task_r->ScalarSum("cpus");
            mem_mb += task_r->ScalarSum("mem");
          }
        }
      }
      executor->limits.cpus = cpus + kExecutorCpus;
      executor->limits.mem_bytes =
          static_cast<uint64_t>(mem_mb * (1 << 20)) + kExecutorMemBytes;
    }
    Task& task = executor->tasks[tid];
    task.framework_id = framework_id;
    task.executor_id = executor_info.executor_id();
    task.info = info;
    task.state = v1::TASK_STAGING;
    const absl::Status saved =
        meta_->CheckpointTask(framework_id, executor_info.executor_id(),
                              ContainerIdOf(executor->container_id), info);
    if (!saved.ok()) {
      ++checkpoint_errors_;
      LOG(ERROR) << "checkpointing task " << tid << ": " << saved;
    }
    ++tasks_launched_;
    if (new_executor) {
      StartLaunch(framework_id.value(), eid);
    } else if (executor->state == ExecutorState::kSubscribed &&
               IsDefaultExecutor(executor->info)) {
      task.launched = true;
      groups[eid].push_back(info);
    } else if (executor->state == ExecutorState::kSubscribed) {
      v1::executor::Event event;
      event.set_type(v1::executor::Event::LAUNCH);
      *event.mutable_launch()->mutable_task() = info;
      task.launched = true;
      SendToExecutor(*executor, event);
    }
    // Otherwise the LAUNCH goes out when the executor subscribes.
  }
  for (const auto& [eid, tasks] : groups) {
    Executor* executor = FindExecutor(framework_id.value(), eid);
    if (executor != nullptr) SendToExecutor(*executor, LaunchGroupEvent(tasks));
  }
}

void Agent::StartLaunch(const std::string& framework_id,
                        const std::string& executor_id) {
  Executor* executor = FindExecutor(framework_id, executor_id);
  if (executor == nullptr) return;
  // What to fetch: the task's URIs for a command executor (the executor
  // binary is ours), the executor's own otherwise.
  v1::CommandInfo fetch;
  if (executor->command_executor) {
    for (const auto& [tid, task] : executor->tasks) {
      fetch = task.info.command();
      break;
    }
  } else if (IsDefaultExecutor(executor->info)) {
    // Every task's URIs, into the one sandbox they share.
    for (const auto& [tid, task] : executor->tasks) {
      for (const v1::CommandInfo::URI& uri : task.info.command().uris()) {
        *fetch.add_uris() = uri;
      }
    }
  } else {
    fetch = executor->info.command();
  }
  std::error_code error;
  std::filesystem::create_directories(executor->sandbox, error);
  if (error) {
    LOG(ERROR) << "cannot create sandbox " << executor->sandbox << ": "
               << error.message();
  }
  AttachSandbox(executor->framework_id, executor->info.executor_id(),
                executor->sandbox);
  ++executors_registering_;
  launchers_.emplace_back(
      [this, fid = executor->framework_id, info = executor->info,
       command = executor->command_executor ||
                 IsDefaultExecutor(executor->info),
       cid = executor->container_id,
       sandbox = executor->sandbox, fetch, limits = executor->limits] {
        LaunchContainer(fid, info, command, cid, sandbox, fetch, limits);
      });
}

std::vector<std::string> Agent::ExecutorEnvironment(
    const Executor& executor) const {
  std::vector<std::string> env;
  const char* path = getenv("PATH");
  env.push_back(absl::StrCat(
      "PATH=", path != nullptr ? path
                               : "/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                 "/usr/bin:/sbin:/bin"));
  env.push_back("HOME=" + executor.sandbox);
  env.push_back(
      absl::StrCat("MESOS_AGENT_ENDPOINT=",
                   options_.ip == "0.0.0.0" ? "127.0.0.1" : options_.ip, ":",
                   http_->port()));
  env.push_back("MESOS_FRAMEWORK_ID=" + executor.framework_id.value());
  env.push_back("MESOS_EXECUTOR_ID=" + executor.info.executor_id().value());
  env.push_back("MESOS_DIRECTORY=" + executor.sandbox);
  env.push_back("MESOS_SANDBOX=" + executor.sandbox);
  env.push_back("MESOS_CHECKPOINT=1");
  env.push_back("MESOS_HTTP_COMMAND_EXECUTOR=1");
  env.push_back("MESOS_RECOVERY_TIMEOUT=" +
                MesosDuration(options_.recovery_timeout));
  env.push_back("MESOS_SUBSCRIPTION_BACKOFF_MAX=2secs");
  env.push_back("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=" +
                MesosDuration(options_.executor_shutdown_grace_period));
  if (agent_id_.has_value()) {
    env.push_back("MESOS_SLAVE_ID=" + agent_id_->value());
    env.push_back("MESOS_AGENT_ID=" + agent_id_->value());
  }
  env.push_back("CAIRN_CONTAINER_ID=" + executor.container_id);
  if (!executor.command_executor) {
    for (const v1::Environment::Variable& v :
         executor.info.command().environment().variables()) {
      env.push_back(absl::StrCat(v.name(), "=", v.value()));
    }
  }
  return env;
}

void Agent::LaunchContainer(v1::FrameworkID framework_id, v1::ExecutorInfo info,
                            bool command_executor, std::string container_id,
                            std::string sandbox, v1::CommandInfo fetch,
                            ContainerLimits limits) {
  const std::string eid = info.executor_id().value();
  absl::Status status = fetcher_->Fetch(fetch, sandbox);
  if (!status.ok()) {
    status = absl::Status(
        status.code(), absl::StrCat("Failed to fetch all URIs for container '",
                                    container_id, "': ", status.message()));
  }
  std::vector<std::string> env;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Executor* executor = FindExecutor(framework_id.value(), eid);
    if (executor == nullptr || executor->container_id != container_id) return;
    if (executor->shutdown_requested && status.ok()) {
      status = absl::CancelledError("the executor was shut down during launch");
    }
    if (status.ok()) env = ExecutorEnvironment(*executor);
  }
  absl::StatusOr<pid_t> pid = absl::UnknownError("not launched");
  if (status.ok()) {
    ContainerLaunchSpec spec;
    spec.container_id = container_id;
    spec.sandbox = sandbox;
    if (command_executor) {
      spec.argv = {options_.executor_path};
    } else if (info.command().shell()) {
      spec.argv = {"/bin/sh", "-c", info.command().value()};
    } else {
      spec.argv.push_back(info.command().value());
      for (const std::string& a : info.command().arguments()) {
        spec.argv.push_back(a);
      }
      if (spec.argv.size() > 1) spec.argv.erase(spec.argv.begin() + 1);
    }
    spec.env = std::move(env);
    spec.limits = limits;
    pid = containerizer_->Launch(spec);
    if (!pid.ok()) status = pid.status();
  }

  std::lock_guard<std::mutex> lock(mu_);
  Executor* executor = FindExecutor(framework_id.value(), eid);
  --executors_registering_;
  if (executor == nullptr || executor->container_id != container_id) {
    if (pid.ok()) containerizer_->Destroy(container_id).IgnoreError();
    return;
  }
  if (!status.ok()) {
    ++container_launch_errors_;
    LOG(WARNING) << "launching executor " << eid << " failed: " << status;
    containerizer_->Destroy(container_id).IgnoreError();
    const bool killed = executor->shutdown_requested;
    for (auto& [tid, task] : executor->tasks) {
      if (IsTerminalState(task.state)) continue;
      if (killed) {
        GenerateStatus(framework_id, task.info.task_id(),
                       executor->info.executor_id(), v1::TASK_KILLED,
                       v1::TaskStatus::REASON_TASK_KILLED_DURING_LAUNCH,
                       "killed during launch", v1::TaskStatus::SOURCE_AGENT);
      } else {
        GenerateStatus(
            framework_id, task.info.task_id(), executor->info.executor_id(),
            v1::TASK_FAILED, v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED,
            std::string(status.message()), v1::TaskStatus::SOURCE_AGENT);
      }
    }
    executor->state = ExecutorState::kTerminated;
    ExecutorTerminated(*executor);
    Changed();
    return;
  }
  executor->pid = *pid;
  executor->our_child = true;
  executor->state = ExecutorState::kRunning;
  executor->registration_deadline =
      absl::Now() + options_.executor_registration_timeout;
  const absl::Status saved = meta_->CheckpointExecutorPid(
      framework_id, info.executor_id(), ContainerIdOf(container_id), *pid,
      ProcessStartTime(*pid));
  if (!saved.ok()) {
    ++checkpoint_errors_;
    LOG(ERROR) << "checkpointing executor pid: " << saved;
  }
  LOG(INFO) << "launched executor " << eid << " of framework "
            << framework_id.value() << " (pid " << *pid << ") in " << sandbox;
  Changed();
}

void Agent::HandleKill(const v1::AgentEvent::Kill& kill) {
  auto [executor, task] =
      FindTask(kill.framework_id().value(), kill.task_id().value());
  if (task == nullptr) {
    // Unknown here: report it missing (docs/agent-protocol.md 7.3), unless
    // an update stream still speaks for it.
    if (!updates_->HasPending(kill.framework_id(), kill.task_id())) {
      GenerateStatus(kill.framework_id(), kill.task_id(), v1::ExecutorID(),
                     v1::TASK_LOST, v1::TaskStatus::REASON_RECONCILIATION,
                     "task unknown to the agent", v1::TaskStatus::SOURCE_AGENT);
    }
    return;
  }
  std::optional<v1::KillPolicy> policy;
  if (kill.has_kill_policy()) policy = kill.kill_policy();
  KillTask(*executor, *task, policy);
}

void Agent::KillTask(Executor& executor, Task& task,
                     const std::optional<v1::KillPolicy>& policy) {
  if (IsTerminalState(task.state)) return;
  if (!task.launched || executor.state == ExecutorState::kLaunching) {
    // Not yet with an executor: it never runs.
    task.launched = true;  // never send it now
    GenerateStatus(
        task.framework_id, task.info.task_id(), task.executor_id,
        v1::TASK_KILLED, v1::TaskStatus::REASON_TASK_KILLED_DURING_LAUNCH,
        "killed before it was started", v1::TaskStatus::SOURCE_AGENT);
    bool live = false;
    for (const auto& [tid, t] : executor.tasks)
      live |= !IsTerminalState(t.state);
    if (!live) ShutdownExecutor(executor);
    return;
  }
  if (executor.state != ExecutorState::kSubscribed) {
    task.pending_kill = policy.value_or(task.info.kill_policy());
    return;  // sent when it (re)subscribes
  }
  v1::executor::Event event;
  event.set_type(v1::executor::Event::KILL);
  *event.mutable_kill()->mutable_task_id() = task.info.task_id();
  if (policy.has_value())
    *event.mutable_kill()->mutable_kill_policy() = *policy;
  task.kill_sent = true;
  SendToExecutor(executor, event);
}

void Agent::ShutdownExecutor(Executor& executor) {
  if (executor.state == ExecutorState::kTerminated) return;
  executor.shutdown_requested = true;
  if (executor.state == ExecutorState::kSubscribed) {
    v1::executor::Event event;
    event.set_type(v1::executor::Event::SHUTDOWN);
    SendToExecutor(executor, event);
  }
  if (executor.state != ExecutorState::kLaunching) {
    executor.state = ExecutorState::kTerminating;
    // The executor's own grace, then ours: destroy the container.
    executor.shutdown_deadline = absl::Now() +
                                 options_.executor_shutdown_grace_period +
                                 absl::Seconds(3);
  }
}

void Agent::HandleShutdownFramework(const v1::FrameworkID& framework_id) {
  auto f = frameworks_.find(framework_id.value());
  if (f == frameworks_.end()) return;
  LOG(INFO) << "shutting down framework " << framework_id.value();
  for (auto& [eid, executor] : f->second.executors) {
    for (auto& [tid, task] : executor.tasks) {
      if (!task.launched && !IsTerminalState(task.state)) {
        task.launched = true;
        GenerateStatus(framework_id, task.info.task_id(), task.executor_id,
                       v1::TASK_KILLED,
                       v1::TaskStatus::REASON_FRAMEWORK_REMOVED,
                       "framework shut down", v1::TaskStatus::SOURCE_AGENT);
      }
    }
    ShutdownExecutor(executor);
  }
}

void Agent::HandleShutdownExecutor(const v1::FrameworkID& framework_id,
                                   const v1::ExecutorID& executor_id) {
  Executor* executor = FindExecutor(framework_id.value(), executor_id.value());
  if (executor == nullptr) return;
  ShutdownExecutor(*executor);
}

void Agent::HandleFrameworkMessage(
    const v1::AgentEvent::FrameworkMessage& message) {
  Executor* executor = FindExecutor(message.framework_id().value(),
                                    message.executor_id().value());
  if (executor == nullptr || executor->state != ExecutorState::kSubscribed) {
    VLOG(1) << "framework message for an executor not running; dropped";
    return;
  }
  v1::executor::Event event;
  event.set_type(v1::executor::Event::MESSAGE);
  event.mutable_message()->set_data(message.data());
  SendToExecutor(*executor, event);
}

void Agent::HandleAcknowledge(const v1::AgentEvent::Acknowledge& ack) {
  absl::StatusOr<bool> acked =
      updates_->Acknowledge(ack.framework_id(), ack.task_id(), ack.uuid());
  if (!acked.ok()) {
    ++checkpoint_errors_;
    LOG(ERROR) << "checkpointing an acknowledgement: " << acked.status();
    return;
  }
  if (!*acked) return;
  auto [executor, task] =
      FindTask(ack.framework_id().value(), ack.task_id().value());
  if (executor != nullptr && executor->state == ExecutorState::kTerminated) {
    MaybeCompleteExecutor(ack.framework_id().value(),
                          executor->info.executor_id().value());
  }
}

void Agent::HandleReconcile(const v1::AgentEvent::Reconcile& reconcile) {
  std::set<std::pair<std::string, std::string>> listed;
  for (const v1::AgentEvent::Reconcile::Task& t : reconcile.tasks()) {
    listed.insert({t.framework_id().value(), t.task_id().value()});
    auto [executor, task] =
        FindTask(t.framework_id().value(), t.task_id().value());
    if (task == nullptr) {
      if (updates_->HasPending(t.framework_id(), t.task_id())) continue;
      GenerateStatus(t.framework_id(), t.task_id(), v1::ExecutorID(),
                     v1::TASK_LOST, v1::TaskStatus::REASON_RECONCILIATION,
                     "task unknown to the agent", v1::TaskStatus::SOURCE_AGENT);
    } else if (task->state != t.state() &&
               !updates_->HasPending(t.framework_id(), t.task_id())) {
      GenerateStatus(t.framework_id(), t.task_id(), task->executor_id,
                     task->state, v1::TaskStatus::REASON_RECONCILIATION,
                     task->latest.has_value() ? task->latest->message() : "",
                     v1::TaskStatus::SOURCE_AGENT);
    }
  }
  for (auto& [fid, framework] : frameworks_) {
    for (auto& [eid, executor] : framework.executors) {
      for (auto& [tid, task] : executor.tasks) {
        if (IsTerminalState(task.state) || listed.count({fid, tid}) > 0)
          continue;
        LOG(WARNING) << "task " << tid << " is not in the master's "
                     << "reconciliation list: killing it";
        KillTask(executor, task, std::nullopt);
      }
    }
  }
}

// ---- Executor API (POST /api/v1/executor)
// -----------------------------------------

void Agent::SendToExecutor(Executor& executor,
                           const v1::executor::Event& event) {
  if (executor.stream == nullptr) return;
  absl::StatusOr<std::string> bytes =
      master::EncodeMessage(event, executor.encoding);
  if (!bytes.ok()) {
    LOG(ERROR) << "cannot encode an executor event: " << bytes.status();
    return;
  }
  executor.stream->WriteChunk(recordio::Encode(*bytes));
}

void Agent::HandleExecutorApi(http::Request request,
                              std::shared_ptr<http::Responder> responder) {
  v1::executor::Call call;
  master::Encoding encoding;
  if (std::optional<http::Response> error =
          master::ParseCall(request, &call, &encoding)) {
    responder->Respond(*std::move(error));
    return;
  }
  if (call.framework_id().value().empty()) {
    responder->Respond(
        master::ApiError(400, "framework_id is required", "framework_id"));
    return;
  }
  if (call.executor_id().value().empty()) {
    responder->Respond(
        master::ApiError(400, "executor_id is required", "executor_id"));
    return;
  }
  std::optional<http::Response> answer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Executor* executor =
        FindExecutor(call.framework_id().value(), call.executor_id().value());
    if (executor == nullptr || executor->state == ExecutorState::kTerminated) {
      answer = master::ApiError(
          404,
          absl::StrCat("executor ", call.executor_id().value(),
                       " of framework ", call.framework_id().value(),
                       " is not known to this agent"),
          "executor_id");
    } else {
      switch (call.type()) {
        case v1::executor::Call::SUBSCRIBE: {
          std::optional<master::Encoding> accept =
              master::NegotiateAccept(request.headers.Get("Accept"), encoding);
          if (!accept.has_value()) {
            answer = master::ApiError(406,
                                      "Accept must be application/json or "
                                      "application/x-protobuf",
                                      "Accept");
          } else {
            answer = ExecutorSubscribe(call, *accept, responder);
          }
          break;
        }
        case v1::executor::Call::UPDATE:
          answer = ExecutorUpdate(call);
          break;
        case v1::executor::Call::MESSAGE: {
          if (!call.has_message() || !call.message().has_data()) {
            answer = master::ApiError(400, "message.data is required",
                                      "message.data");
            break;
          }
          PendingCall pending;
          pending.call.set_type(v1::AgentCall::EXECUTOR_MESSAGE);
          v1::AgentCall::ExecutorMessage* m =
              pending.call.mutable_executor_message();
          *m->mutable_framework_id() = call.framework_id();
          *m->mutable_executor_id() = call.executor_id();
          m->set_data(call.message().data());
          calls_.push_back(std::move(pending));
          Changed();
          answer = http::Response{202, {}, ""};
          break;
        }
        case v1::executor::Call::HEARTBEAT:
          answer = http::Response{202, {}, ""};
          break;
        default:
          answer = master::ApiError(400, "unknown call type", "type");
      }
    }
  }
  if (answer.has_value()) responder->Respond(*std::move(answer));
}

std::optional<http::Response> Agent::ExecutorSubscribe(
    const v1::executor::Call& call, master::Encoding encoding,
    std::shared_ptr<http::Responder> responder) {
  Executor& executor =
      *FindExecutor(call.framework_id().value(), call.executor_id().value());
  if (executor.stream != nullptr) executor.stream->Close();
  http::Headers headers;
  headers.Set("Content-Type", "application/recordio");
  headers.Set("Message-Content-Type", master::MediaType(encoding));
  if (!responder->StartStream(200, headers)) return std::nullopt;
  executor.stream = responder;
  executor.encoding = encoding;
  const bool resubscribed =
      executor.state != ExecutorState::kRunning || executor.our_child == false;
  if (executor.state == ExecutorState::kRunning ||
      executor.state == ExecutorState::kLaunching) {
    executor.state = ExecutorState::kSubscribed;
  }
  executor.registration_deadline = absl::InfiniteFuture();
  executor.ever_subscribed = true;
  std::weak_ptr<http::Responder> weak = responder;
  const std::string fid = call.framework_id().value();
  const std::string eid = call.executor_id().value();
  responder->OnClose([this, weak, fid, eid] {
    std::lock_guard<std::mutex> lock(mu_);
    Executor* e = FindExecutor(fid, eid);
    if (e == nullptr) return;
    std::shared_ptr<http::Responder> closed = weak.lock();
    if (closed == nullptr || e->stream == closed) {
      e->stream.reset();
      if (e->state == ExecutorState::kSubscribed) {
        // It may come back (its own restart of the connection); if the
        // process is gone, CheckContainers finds out.
        e->state = ExecutorState::kRunning;
        e->registration_deadline =
            absl::Now() + options_.executor_reregistration_timeout;
      }
    }
  });
  LOG(INFO) << "executor " << eid << " of framework " << fid
            << (resubscribed ? " resubscribed" : " subscribed");

  v1::executor::Event subscribed;
  subscribed.set_type(v1::executor::Event::SUBSCRIBED);
  v1::executor::Event::Subscribed* s = subscribed.mutable_subscribed();
  *s->mutable_executor_info() = executor.info;
  auto f = frameworks_.find(fid);
  if (f != frameworks_.end()) *s->mutable_framework_info() = f->second.info;
  v1::AgentInfo* agent_info = s->mutable_agent_info();
  *agent_info = SubscribeCall().subscribe().agent_info();
  agent_info->clear_resources();
  s->mutable_container_id()->set_value(executor.container_id);
  SendToExecutor(executor, subscribed);

  // Updates the executor holds that we may not have (it resends them until
  // we ACKNOWLEDGE); the manager drops duplicates by uuid.
  for (const v1::executor::Call::Update& update :
       call.subscribe().unacknowledged_updates()) {
    v1::executor::Call as_call;
    *as_call.mutable_framework_id() = call.framework_id();
    *as_call.mutable_executor_id() = call.executor_id();
    as_call.set_type(v1::executor::Call::UPDATE);
    *as_call.mutable_update() = update;
    std::optional<http::Response> error = ExecutorUpdate(as_call);
    if (error.has_value() && error->status >= 400) {
      LOG(WARNING) << "executor " << eid
                   << " resent a bad update: " << error->body;
    }
  }
  std::set<std::string> executor_has;
  for (const v1::TaskInfo& t : call.subscribe().unacknowledged_tasks()) {
    executor_has.insert(t.task_id().value());
  }
  // A default executor gets its tasks not yet sent as one LAUNCH_GROUP
  // (launches that arrived before it subscribed form one group).
  const bool default_executor = IsDefaultExecutor(executor.info);
  std::vector<v1::TaskInfo> group;
  for (auto& [tid, task] : executor.tasks) {
    if (IsTerminalState(task.state)) continue;
    // A recovered executor that neither reports the task nor sent any update
    // of it never got it: launch it now.
    if (resubscribed && task.launched && task.state == v1::TASK_STAGING &&
        executor_has.count(tid) == 0 &&
        !updates_->HasPending(task.framework_id, task.info.task_id())) {
      task.launched = false;
    }
    if (!task.launched && default_executor) {
      task.launched = true;
      group.push_back(task.info);
    } else if (!task.launched) {
      v1::executor::Event launch;
      launch.set_type(v1::executor::Event::LAUNCH);
      *launch.mutable_launch()->mutable_task() = task.info;
      task.launched = true;
      SendToExecutor(executor, launch);
    }
  }
  if (!group.empty()) SendToExecutor(executor, LaunchGroupEvent(group));
  for (auto& [tid, task] : executor.tasks) {
    if (IsTerminalState(task.state)) continue;
    if (task.pending_kill.has_value()) {
      v1::executor::Event kill;
      kill.set_type(v1::executor::Event::KILL);
      *kill.mutable_kill()->mutable_task_id() = task.info.task_id();
      *kill.mutable_kill()->mutable_kill_policy() = *task.pending_kill;
      task.pending_kill.reset();
      task.kill_sent = true;
      SendToExecutor(executor, kill);
    }
  }
  if (executor.shutdown_requested) {
    v1::executor::Event shutdown;
    shutdown.set_type(v1::executor::Event::SHUTDOWN);
    SendToExecutor(executor, shutdown);
  }
  Changed();
  return std::nullopt;
}

std::optional<http::Response> Agent::ExecutorUpdate(
    const v1::executor::Call& call) {
  if (!call.has_update() || !call.update().has_status()) {
    ++invalid_status_updates_;
    return master::ApiError(400, "update.status is required", "update.status");
  }
  v1::TaskStatus status = call.update().status();
  if (status.uuid().size() != 16) {
    ++invalid_status_updates_;
    return master::ApiError(400, "update.status.uuid must be 16 bytes",
                            "update.status.uuid");
  }
  if (!status.has_state()) {
    ++invalid_status_updates_;
    return master::ApiError(400, "update.status.state is required",
                            "update.status.state");
  }
  if (status.data().size() > (64 << 10)) {
    ++invalid_status_updates_;
    return master::ApiError(400, "update.status.data is over 64 KiB",
                            "update.status.data");
  }
  Executor& executor =
      *FindExecutor(call.framework_id().value(), call.executor_id().value());
  auto t = executor.tasks.find(status.task_id().value());
  if (t == executor.tasks.end()) {
    ++invalid_status_updates_;
    return master::ApiError(400,
                            absl::StrCat("task ", status.task_id().value(),
                                         " does not belong to executor ",
                                         call.executor_id().value()),
                            "update.status.task_id");
  }
  Task& task = t->second;
  status.set_source(v1::TaskStatus::SOURCE_EXECUTOR);
  *status.mutable_executor_id() = call.executor_id();
  if (!status.has_timestamp()) status.set_timestamp(NowSecs());
  if (IsTerminalState(status.state()) && status.state() != v1::TASK_FINISHED) {
    // A task that died because its container hit a limit says so.
    if (!executor.limitation.has_value()) {
      executor.limitation =
          containerizer_->CheckLimitation(executor.container_id);
    }
    if (executor.limitation.has_value()) {
      status.set_state(v1::TASK_FAILED);
      status.set_reason(executor.limitation->reason);
      status.set_message(executor.limitation->message);
    }
  }
  const absl::Status recorded = RecordStatus(call.framework_id(), status);
  if (!recorded.ok()) {
    // Not durable: the executor keeps it and resends it.
    return master::ApiError(503, absl::StrCat("cannot checkpoint the update: ",
                                              recorded.message()));
  }
  // Checkpointed: the executor may forget it.
  v1::executor::Event ack;
  ack.set_type(v1::executor::Event::ACKNOWLEDGED);
  *ack.mutable_acknowledged()->mutable_task_id() = status.task_id();
  ack.mutable_acknowledged()->set_uuid(status.uuid());
  SendToExecutor(executor, ack);
  (void)task;
  return http::Response{202, {}, ""};
}

// ---- Status updates
// ----------------------------------------------------------------

absl::Status Agent::RecordStatus(const v1::FrameworkID& framework_id,
                                 const v1::TaskStatus& status) {
  absl::StatusOr<bool> added = updates_->Update(framework_id, status);
  if (!added.ok()) {
    ++checkpoint_errors_;
    LOG(ERROR) << "cannot checkpoint a status update of task "
               << status.task_id().value() << ": " << added.status();
    return added.status();
  }
  if (!*added) return absl::OkStatus();  // a duplicate
  ++valid_status_updates_;
  auto [executor, task] =
      FindTask(framework_id.value(), status.task_id().value());
  if (task != nullptr) {
    // A late non-terminal status never takes a terminal task back.
    if (!IsTerminalState(task->state) || IsTerminalState(status.state())) {
      if (!IsTerminalState(task->state) && IsTerminalState(status.state())) {
        ++terminal_counts_[status.state()];
      }
      task->state = status.state();
    }
    task->latest = status;
  }
  LOG(INFO) << "task " << status.task_id().value() << " of framework "
            << framework_id.value() << ": "
            << v1::TaskState_Name(status.state())
            << (status.message().empty() ? "" : " (" + status.message() + ")");
  Changed();
  return absl::OkStatus();
}

std::string Agent::GenerateStatus(const v1::FrameworkID& framework_id,
                                  const v1::TaskID& task_id,
                                  const v1::ExecutorID& executor_id,
                                  v1::TaskState state,
                                  std::optional<v1::TaskStatus::Reason> reason,
                                  const std::string& message,
                                  v1::TaskStatus::Source source) {
  v1::TaskStatus status;
  *status.mutable_task_id() = task_id;
  status.set_state(state);
  status.set_source(source);
  if (reason.has_value()) status.set_reason(*reason);
  if (!message.empty()) status.set_message(message);
  if (!executor_id.value().empty()) *status.mutable_executor_id() = executor_id;
  status.set_timestamp(NowSecs());
  status.set_uuid(NewUuid());
  RecordStatus(framework_id, status).IgnoreError();  // logged and counted
  return status.uuid();
}

// ---- Executors: exits, limits, timeouts
// ----------------------------------------------

void Agent::ExecutorTerminated(Executor& executor) {
  executor.state = ExecutorState::kTerminated;
  executor.registration_deadline = absl::InfiniteFuture();
  executor.shutdown_deadline = absl::InfiniteFuture();
  if (executor.stream != nullptr) {
    executor.stream->Close();
    executor.stream.reset();
  }
  ++executors_terminated_;
  std::string why = "Executor terminated";
  if (executor.wait_status.has_value()) {
    const int ws = *executor.wait_status;
    if (WIFEXITED(ws)) {
      why = absl::StrCat("Executor exited with status ", WEXITSTATUS(ws));
    } else if (WIFSIGNALED(ws)) {
      why = absl::StrCat("Executor terminated by signal ",
                         strsignal(WTERMSIG(ws)));
    }
  }
  for (auto& [tid, task] : executor.tasks) {
    if (IsTerminalState(task.state)) continue;
    if (executor.limitation.has_value()) {
      GenerateStatus(task.framework_id, task.info.task_id(), task.executor_id,
                     v1::TASK_FAILED, executor.limitation->reason,
                     executor.limitation->message,
                     v1::TaskStatus::SOURCE_AGENT);
    } else if (executor.shutdown_requested || task.kill_sent) {
      GenerateStatus(task.framework_id, task.info.task_id(), task.executor_id,
                     v1::TASK_KILLED,
                     v1::TaskStatus::REASON_EXECUTOR_TERMINATED, why,
                     v1::TaskStatus::SOURCE_AGENT);
    } else {
      GenerateStatus(task.framework_id, task.info.task_id(), task.executor_id,
                     v1::TASK_FAILED,
                     v1::TaskStatus::REASON_EXECUTOR_TERMINATED, why,
                     v1::TaskStatus::SOURCE_AGENT);
    }
  }
  PendingCall exited;
  exited.call.set_type(v1::AgentCall::EXITED_EXECUTOR);
  v1::AgentCall::ExitedExecutor* e = exited.call.mutable_exited_executor();
  *e->mutable_framework_id() = executor.framework_id;
  *e->mutable_executor_id() = executor.info.executor_id();
  e->set_status(executor.wait_status.value_or(0));
  e->set_message(why);
  calls_.push_back(std::move(exited));
  MaybeCompleteExecutor(executor.framework_id.value(),
                        executor.info.executor_id().value());
  Changed();
}

void Agent::MaybeCompleteExecutor(std::string framework_id,
                                  std::string executor_id) {
  // By value: callers pass ids held by the executor this may erase.
  auto f = frameworks_.find(framework_id);
  if (f == frameworks_.end()) return;
  auto e = f->second.executors.find(executor_id);
  if (e == f->second.executors.end()) return;
  Executor& executor = e->second;
  if (executor.state != ExecutorState::kTerminated) return;
  for (const auto& [tid, task] : executor.tasks) {
    if (!IsTerminalState(task.state)) return;
    if (updates_->HasPending(task.framework_id, task.info.task_id())) return;
  }
  // Every task is over and its updates acknowledged: the run is complete.
  const absl::Status marked = meta_->MarkExecutorRunCompleted(
      executor.framework_id, executor.info.executor_id(),
      ContainerIdOf(executor.container_id));
  if (!marked.ok()) {
    ++checkpoint_errors_;
    LOG(ERROR) << "checkpointing a completed run: " << marked;
  }
  CompletedExecutor done;
  done.framework_id = executor.framework_id;
  done.info = executor.info;
  done.container_id = executor.container_id;
  done.sandbox = executor.sandbox;
  for (auto& [tid, task] : executor.tasks) done.tasks.push_back(task);
  completed_.push_back(std::move(done));
  while (completed_.size() > kMaxCompletedExecutors) completed_.pop_front();
  gc_[executor.sandbox] = {absl::Now() + options_.gc_delay,
                           executor.framework_id, executor.info.executor_id()};
  f->second.executors.erase(e);

  if (f->second.executors.empty()) {
    bool streams = false;
    for (const auto& [fid, tid] : updates_->Streams()) {
      streams |= fid.value() == framework_id;
    }
    if (!streams) {
      const absl::Status removed = meta_->RemoveFramework(f->second.info.id());
      if (!removed.ok())
        LOG(ERROR) << "removing framework checkpoint: " << removed;
      frameworks_.erase(f);
    }
  }
}

void Agent::CheckContainers() {
  struct Check {
    std::string framework_id, executor_id, container_id;
    pid_t pid;
    bool our_child;
    bool destroy;  // timed out: destroy before anything else
    std::optional<v1::TaskStatus::Reason> timeout_reason;
  };
  std::vector<Check> checks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = absl::Now();
    for (auto& [fid, framework] : frameworks_) {
      for (auto& [eid, executor] : framework.executors) {
        if (executor.state == ExecutorState::kLaunching ||
            executor.state == ExecutorState::kTerminated) {
          continue;
        }
        Check check{fid,
                    eid,
                    executor.container_id,
                    executor.pid,
                    executor.our_child,
                    false,
                    std::nullopt};
        if (executor.state == ExecutorState::kRunning &&
            now >= executor.registration_deadline) {
          check.destroy = true;
          check.timeout_reason =
              executor.ever_subscribed || !executor.our_child
                  ? v1::TaskStatus::REASON_EXECUTOR_REREGISTRATION_TIMEOUT
                  : v1::TaskStatus::REASON_EXECUTOR_REGISTRATION_TIMEOUT;
          LOG(WARNING) << "executor " << eid << " did not (re)subscribe in "
                       << "time: destroying its container";
        }
        if (executor.state == ExecutorState::kTerminating &&
            now >= executor.shutdown_deadline) {
          check.destroy = true;
        }
        checks.push_back(std::move(check));
      }
    }
  }
  for (Check& check : checks) {
    std::optional<Limitation> limitation;
    std::optional<v1::ResourceStatistics> usage;
    std::optional<int> wait_status;
    bool gone = false;
    if (!check.destroy) {
      limitation = containerizer_->CheckLimitation(check.container_id);
      if (limitation.has_value()) {
        LOG(WARNING) << "container " << check.container_id
                     << " hit a limit: " << limitation->message;
        check.destroy = true;
      }
    }
    if (check.destroy) {
      const absl::Status destroyed =
          containerizer_->Destroy(check.container_id);
      if (!destroyed.ok()) LOG(ERROR) << "destroying container: " << destroyed;
    }
    if (check.our_child) {
      int status = 0;
      const pid_t r = waitpid(check.pid, &status, WNOHANG);
      if (r == check.pid) {
        wait_status = status;
        gone = true;
      } else if (r < 0 && errno == ECHILD) {
        gone = !ProcessAlive(check.pid);
      }
    } else {
      gone = !ProcessAlive(check.pid);
    }
    if (!gone) {
      absl::StatusOr<v1::ResourceStatistics> u =
          containerizer_->Usage(check.container_id);
      if (u.ok()) usage = *u;
    }
    std::lock_guard<std::mutex> lock(mu_);
    Executor* executor = FindExecutor(check.framework_id, check.executor_id);
    if (executor == nullptr || executor->container_id != check.container_id ||
        executor->state == ExecutorState::kTerminated) {
      continue;
    }
    if (limitation.has_value() && !executor->limitation.has_value()) {
      executor->limitation = limitation;
    }
    if (usage.has_value()) executor->usage = usage;
    if (gone || check.destroy) {
      if (wait_status.has_value()) executor->wait_status = wait_status;
      if (check.timeout_reason.has_value()) {
        for (auto& [tid, task] : executor->tasks) {
          if (IsTerminalState(task.state)) continue;
          GenerateStatus(task.framework_id, task.info.task_id(),
                         task.executor_id, v1::TASK_FAILED,
                         *check.timeout_reason,
                         "the executor did not subscribe in time",
                         v1::TaskStatus::SOURCE_AGENT);
        }
      }
      if (gone || !ProcessAlive(check.pid)) {
        if (check.our_child && !wait_status.has_value()) {
          int status = 0;
          if (waitpid(check.pid, &status, WNOHANG) == check.pid) {
            executor->wait_status = status;
          }
        }
        LOG(INFO) << "executor " << check.executor_id << " has terminated";
        containerizer_->Destroy(check.container_id).IgnoreError();
        ExecutorTerminated(*executor);
      }
    }
  }
  // Sandboxes past their time, with their executors' checkpoints.
  std::vector<std::string> collect;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = absl::Now();
    for (auto it = gc_.begin(); it != gc_.end();) {
      if (it->second.at > now) {
        ++it;
        continue;
      }
      const std::string sandbox = it->first;
      const GcEntry entry = it->second;
      it = gc_.erase(it);
      collect.push_back(sandbox);
      files_.Detach(sandbox);
      for (auto l = latest_links_.begin(); l != latest_links_.end();) {
        if (l->second == sandbox) {
          files_.Detach(l->first);
          l = latest_links_.erase(l);
        } else {
          ++l;
        }
      }
      completed_.erase(std::remove_if(completed_.begin(), completed_.end(),
                                      [&](const CompletedExecutor& c) {
                                        return c.sandbox == sandbox;
                                      }),
                       completed_.end());
      // Its checkpoint goes too, unless the executor runs again.
      if (FindExecutor(entry.framework_id.value(), entry.executor_id.value()) ==
          nullptr) {
        const absl::Status removed =
            meta_->RemoveExecutor(entry.framework_id, entry.executor_id);
        if (!removed.ok()) LOG(WARNING) << "removing a checkpoint: " << removed;
      }
      bool framework_in_use = frameworks_.count(entry.framework_id.value()) > 0;
      for (const auto& [other_sandbox, other] : gc_) {
        framework_in_use |=
            other.framework_id.value() == entry.framework_id.value();
      }
      if (!framework_in_use) {
        const absl::Status removed = meta_->RemoveFramework(entry.framework_id);
        if (!removed.ok()) LOG(WARNING) << "removing a checkpoint: " << removed;
      }
    }
  }
  for (const std::string& sandbox : collect) {
    std::error_code error;
    std::filesystem::remove_all(sandbox, error);
    LOG(INFO) << "garbage collected sandbox " << sandbox
              << (error ? " (" + error.message() + ")" : "");
  }
}

// ---- Worker
// ---------------------------------------------------------------------------

bool Agent::PostToMaster(const v1::AgentCall& call,
                         const std::string& stream_id, http::Client* client) {
  absl::StatusOr<std::string> body = ToJson(call);
  if (!body.ok()) return false;
  absl::StatusOr<http::Response> response = channel_.Post(
      {{"Content-Type", "application/json"}, {kStreamIdHeader, stream_id}},
      *body, absl::Now() + options_.request_timeout,
      /*retry_unavailable=*/false, client);
  if (!response.ok()) {
    VLOG(1) << "call to the master failed: " << response.status();
    return false;
  }
  if (response->status == 409) {
    // Our stream is not the master's current one: resubscribe.
    std::lock_guard<std::mutex> lock(mu_);
    if (stream_id_ == stream_id) {
      stream_open_ = false;
      subscribed_ = false;
      Changed();
    }
  }
  if (response->status >= 400) {
    LOG(WARNING) << v1::AgentCall::Type_Name(call.type()) << " answered "
                 << response->status << ": " << response->body;
  }
  return response->status == 202;
}

void Agent::WorkerLoop() {
  http::Client client;
  absl::Time next_check = absl::Now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const absl::Time now = absl::Now();
    if (now >= next_check) {
      lock.unlock();
      CheckContainers();
      lock.lock();
      next_check = absl::Now() + options_.container_check_interval;
      // Launcher threads that are done.
      continue;
    }
    bool heartbeat = false;
    std::vector<v1::AgentCall::Update> due;
    std::deque<PendingCall> calls;
    absl::Time wake = next_check;
    if (subscribed_ && stream_open_) {
      if (now >= next_heartbeat_) {
        heartbeat = true;
        next_heartbeat_ = now + heartbeat_interval_;
      }
      wake = std::min(wake, next_heartbeat_);
      due = updates_->Due(now);
      wake = std::min(wake, updates_->NextDue());
      calls.swap(calls_);
    }
    if (!heartbeat && due.empty() && calls.empty()) {
      WaitUntilTime(cv_, lock, wake);
      continue;
    }
    v1::AgentCall base;
    if (agent_id_.has_value()) *base.mutable_agent_id() = *agent_id_;
    const std::string stream_id = stream_id_;
    lock.unlock();
    for (v1::AgentCall::Update& update : due) {
      v1::AgentCall call = base;
      call.set_type(v1::AgentCall::UPDATE);
      *call.mutable_update() = std::move(update);
      PostToMaster(call, stream_id, &client);  // retried by the manager
    }
    for (PendingCall& pending : calls) {
      v1::AgentCall call = std::move(pending.call);
      call.mutable_agent_id()->CopyFrom(base.agent_id());
      PostToMaster(call, stream_id, &client);  // best effort, as Mesos
    }
    if (heartbeat) {
      v1::AgentCall call = base;
      call.set_type(v1::AgentCall::HEARTBEAT);
      PostToMaster(call, stream_id, &client);
    }
    lock.lock();
  }
}

// ---- Endpoints
// ----------------------------------------------------------------------

namespace {

// A JSON object written key by key.
class JsonObject {
 public:
  JsonObject& Raw(absl::string_view key, absl::string_view json) {
    out_ += out_.empty() ? "{" : ",";
    AppendJsonQuoted(key, &out_);
    absl::StrAppend(&out_, ":", json);
    return *this;
  }
  JsonObject& Str(absl::string_view key, absl::string_view value) {
    return Raw(key, JsonQuoted(value));
  }
  JsonObject& Num(absl::string_view key, double value) {
    // Enough digits for a time in seconds with microseconds.
    return Raw(key, absl::StrFormat("%.16g", value));
  }
  std::string Done() { return out_.empty() ? "{}" : out_ + "}"; }

 private:
  std::string out_;
};

std::string ResourcesJson(
    const google::protobuf::RepeatedPtrField<v1::Resource>& r) {
  absl::StatusOr<master::Resources> resources = master::Resources::FromProto(r);
  return resources.ok() ? resources->WithoutAllocationInfo().ToFlattenedJson()
                        : "{}";
}

std::string AttributesJson(const std::vector<v1::Attribute>& attributes) {
  JsonObject o;
  for (const v1::Attribute& a : attributes) {
    if (a.type() == v1::MesosValue::SCALAR) {
      o.Num(a.name(), a.scalar().value());
    } else if (a.type() == v1::MesosValue::RANGES) {
      o.Str(a.name(), master::RangesToString(a.ranges()));
    } else {
      o.Str(a.name(), a.text().value());
    }
  }
  return o.Done();
}

std::string StatusesJson(const std::optional<v1::TaskStatus>& latest) {
  if (!latest.has_value()) return "[]";
  JsonObject s;
  s.Str("state", v1::TaskState_Name(latest->state()));
  s.Num("timestamp", latest->timestamp());
  if (latest->has_healthy())
    s.Raw("healthy", latest->healthy() ? "true" : "false");
  if (!latest->message().empty()) s.Str("message", latest->message());
  return absl::StrCat("[", s.Done(), "]");
}

}  // namespace

std::string Agent::StateJson() const {
  const std::string aid = agent_id_.has_value() ? agent_id_->value() : "";
  auto task_json = [&](const Task& task) {
    JsonObject t;
    t.Str("id", task.info.task_id().value());
    t.Str("name", task.info.name());
    t.Str("framework_id", task.framework_id.value());
    t.Str("executor_id", task.executor_id.value());
    t.Str("slave_id", aid);
    t.Str("agent_id", aid);
    t.Str("state", v1::TaskState_Name(task.state));
    t.Raw("resources", ResourcesJson(task.info.resources()));
    t.Raw("statuses", StatusesJson(task.latest));
    if (task.info.has_labels() && task.info.labels().labels_size() > 0) {
      t.Raw("labels", MesosJson(task.info.labels()));
    }
    return t.Done();
  };
  auto executor_json = [&](const v1::ExecutorInfo& info, const std::string& cid,
                           const std::string& sandbox, const std::string& tasks,
                           const std::string& completed_tasks,
                           const std::string& queued,
                           const std::optional<v1::ResourceStatistics>& usage,
                           const std::string& resources) {
    JsonObject e;
    e.Str("id", info.executor_id().value());
    e.Str("name", info.name());
    e.Str("source", info.executor_id().value());
    e.Str("container", cid);
    e.Str("directory", sandbox);
    e.Raw("resources", resources);
    e.Raw("tasks", tasks);
    e.Raw("queued_tasks", queued);
    e.Raw("completed_tasks", completed_tasks);
    if (usage.has_value()) e.Raw("statistics", MesosJson(*usage));
    return e.Done();
  };
  auto framework_json = [&](const v1::FrameworkInfo& info,
                            const std::string& executors,
                            const std::string& completed) {
    JsonObject f;
    f.Str("id", info.id().value());
    f.Str("name", info.name());
    f.Str("user", info.user());
    f.Str("role", info.roles_size() > 0 ? info.roles(0) : "*");
    f.Num("failover_timeout", info.failover_timeout());
    f.Raw("checkpoint", info.checkpoint() ? "true" : "false");
    f.Str("hostname", info.hostname());
    f.Raw("executors", executors);
    f.Raw("completed_executors", completed);
    return f.Done();
  };

  std::map<std::string, std::vector<std::string>> completed_by_framework;
  for (const CompletedExecutor& done : completed_) {
    std::vector<std::string> tasks;
    for (const Task& t : done.tasks) tasks.push_back(task_json(t));
    completed_by_framework[done.framework_id.value()].push_back(
        executor_json(done.info, done.container_id, done.sandbox, "[]",
                      absl::StrCat("[", absl::StrJoin(tasks, ","), "]"), "[]",
                      std::nullopt, "{}"));
  }
  std::vector<std::string> frameworks;
  std::set<std::string> listed;
  for (const auto& [fid, framework] : frameworks_) {
    std::vector<std::string> executors;
    for (const auto& [eid, executor] : framework.executors) {
      std::vector<std::string> live, done, queued;
      master::Resources used;
      for (const auto& [tid, task] : executor.tasks) {
        if (IsTerminalState(task.state)) {
          done.push_back(task_json(task));
        } else if (!task.launched) {
          queued.push_back(task_json(task));
        } else {
          live.push_back(task_json(task));
        }
        absl::StatusOr<master::Resources> r =
            master::Resources::FromProto(task.info.resources());
        if (r.ok() && !IsTerminalState(task.state))
          used += r->WithoutAllocationInfo();
      }
      executors.push_back(
          executor_json(executor.info, executor.container_id, executor.sandbox,
                        absl::StrCat("[", absl::StrJoin(live, ","), "]"),
                        absl::StrCat("[", absl::StrJoin(done, ","), "]"),
                        absl::StrCat("[", absl::StrJoin(queued, ","), "]"),
                        executor.usage, used.ToFlattenedJson()));
    }
    const std::vector<std::string>& completed = completed_by_framework[fid];
    frameworks.push_back(framework_json(
        framework.info, absl::StrCat("[", absl::StrJoin(executors, ","), "]"),
        absl::StrCat("[", absl::StrJoin(completed, ","), "]")));
    listed.insert(fid);
  }
  std::vector<std::string> completed_frameworks;
  for (const auto& [fid, executors] : completed_by_framework) {
    if (listed.count(fid) > 0 || executors.empty()) continue;
    v1::FrameworkInfo info;
    info.mutable_id()->set_value(fid);
    completed_frameworks.push_back(framework_json(
        info, "[]", absl::StrCat("[", absl::StrJoin(executors, ","), "]")));
  }

  const std::string host =
      options_.hostname.empty() ? options_.ip : options_.hostname;
  const uint16_t port = http_ != nullptr ? http_->port() : options_.port;
  const master::Resources used = UsedResources();
  JsonObject state;
  state.Str("version", kVersion);
  state.Str("build_version", "cairn");
  state.Num("start_time",
            absl::ToDoubleSeconds(start_time_ - absl::UnixEpoch()));
  state.Str("id", aid);
  state.Str("pid", absl::StrCat("slave(1)@", options_.ip, ":", port));
  state.Str("hostname", host);
  state.Num("port", port);
  state.Raw("resources", total_.ToFlattenedJson());
  state.Raw("unreserved_resources", total_.Unreserved().ToFlattenedJson());
  state.Raw("used_resources", used.ToFlattenedJson());
  state.Raw("attributes", AttributesJson(options_.attributes));
  if (master_info_.has_value()) {
    state.Str("master_hostname", master_info_->hostname());
  }
  state.Str("isolation",
            containerizer_ != nullptr ? containerizer_->isolation() : "");
  state.Raw("registered", subscribed_ ? "true" : "false");
  if (!options_.log_dir.empty()) state.Str("log_dir", options_.log_dir);
  JsonObject flags;
  for (const auto& [name, value] : options_.flags) flags.Str(name, value);
  state.Raw("flags", flags.Done());
  state.Raw("frameworks",
            absl::StrCat("[", absl::StrJoin(frameworks, ","), "]"));
  state.Raw("completed_frameworks",
            absl::StrCat("[", absl::StrJoin(completed_frameworks, ","), "]"));
  return state.Done();
}

http::Response Agent::StateResponse(const http::Request& request) {
  std::string body;
  {
    std::lock_guard<std::mutex> lock(mu_);
    body = StateJson();
  }
  const std::map<std::string, std::string>& query = request.query;
  auto jsonp = query.find("jsonp");
  if (jsonp != query.end() && !jsonp->second.empty()) {
    http::Response r{200, {}, absl::StrCat(jsonp->second, "(", body, ");")};
    r.headers.Set("Content-Type", "text/javascript");
    return r;
  }
  return http::Response::Json(200, std::move(body));
}

http::Response Agent::MonitorStatistics(const http::Request&) {
  std::vector<std::string> entries;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [fid, framework] : frameworks_) {
    for (const auto& [eid, executor] : framework.executors) {
      if (!executor.usage.has_value()) continue;
      JsonObject e;
      e.Str("executor_id", eid);
      e.Str("executor_name", executor.info.name());
      e.Str("framework_id", fid);
      e.Str("source", eid);
      e.Str("container_id", executor.container_id);
      e.Raw("statistics", MesosJson(*executor.usage));
      entries.push_back(e.Done());
    }
  }
  return http::Response::Json(
      200, absl::StrCat("[", absl::StrJoin(entries, ","), "]"));
}

void Agent::RegisterRoutes() {
  http_->Handle(
      "POST", "/api/v1/executor",
      [this](http::Request request, std::shared_ptr<http::Responder> r) {
        HandleExecutorApi(std::move(request), std::move(r));
      });
  for (const char* path :
       {"/state", "/state.json", "/slave(1)/state", "/slave(1)/state.json"}) {
    http_->HandleSync("GET", path, [this](const http::Request& request) {
      return StateResponse(request);
    });
  }
  for (const char* path : {"/monitor/statistics", "/monitor/statistics.json"}) {
    http_->HandleSync("GET", path, [this](const http::Request& request) {
      return MonitorStatistics(request);
    });
  }
  http_->HandleSync("GET", "/health", [](const http::Request&) {
    return http::Response{200, {}, ""};
  });
  http_->HandleSync("GET", "/version", [](const http::Request&) {
    return http::Response::Json(
        200, absl::StrCat("{\"version\":\"", kVersion,
                          "\",\"build_version\":\"cairn\"}"));
  });
  http_->HandleSync("GET", "/flags", [this](const http::Request&) {
    JsonObject flags;
    for (const auto& [name, value] : options_.flags) flags.Str(name, value);
    return http::Response::Json(200,
                                absl::StrCat("{\"flags\":", flags.Done(), "}"));
  });
  monitoring::ServeMetrics(http_.get(), &metrics_);
  monitoring::ServeLoggingToggle(http_.get());
  if (!options_.log_dir.empty()) {
    // Mesos's name for it, and ours.
    files_.Attach(options_.log_dir, "/slave/log").IgnoreError();
    files_.Attach(options_.log_dir, "/agent/log").IgnoreError();
  }
  files_.Register(*http_);
}

void Agent::InitMetrics() {
  struct Gauges {
    monitoring::Gauge* registered;
    monitoring::Gauge* frameworks_active;
    std::map<v1::TaskState, monitoring::Gauge*> tasks;
    monitoring::Gauge* executors_registering;
    monitoring::Gauge* executors_running;
    monitoring::Gauge* executors_terminating;
    monitoring::Gauge* executors_terminated;
    monitoring::Gauge* valid_updates;
    monitoring::Gauge* invalid_updates;
    monitoring::Gauge* launch_errors;
    monitoring::Gauge* updates_pending;
    std::map<std::string, std::pair<monitoring::Gauge*, monitoring::Gauge*>>
        res;
  };
  auto g = std::make_shared<Gauges>();
  monitoring::Registry& r = metrics_;
  monitoring::RegisterProcessMetrics(&r);
  g->registered = r.AddGauge("slave/registered",
                             "1 while the agent is subscribed to a master.");
  r.AddGaugeCallback(
      "slave/uptime_secs", "Uptime of this agent in seconds.",
      [this] { return absl::ToDoubleSeconds(absl::Now() - start_time_); });
  r.AddGaugeCallback("slave/recovery_errors",
                     "Checkpoint entries skipped or repaired at recovery.",
                     [this] {
                       std::lock_guard<std::mutex> lock(mu_);
                       return static_cast<double>(recovery_errors_);
                     });
  r.AddGaugeCallback("slave/checkpoint_errors",
                     "Checkpoint writes that failed since the agent started.",
                     [this] {
                       std::lock_guard<std::mutex> lock(mu_);
                       return static_cast<double>(checkpoint_errors_);
                     });
  r.AddGaugeCallback("slave/recovery_time_secs",
                     "How long recovering the checkpoint took at start.",
                     [this] {
                       std::lock_guard<std::mutex> lock(mu_);
                       return recovery_secs_;
                     });
  g->frameworks_active = r.AddGauge("slave/frameworks_active",
                                    "Frameworks with executors on this agent.");
  const std::vector<std::pair<v1::TaskState, const char*>> states = {
      {v1::TASK_STAGING, "staging"},   {v1::TASK_STARTING, "starting"},
      {v1::TASK_RUNNING, "running"},   {v1::TASK_KILLING, "killing"},
      {v1::TASK_FINISHED, "finished"}, {v1::TASK_FAILED, "failed"},
      {v1::TASK_KILLED, "killed"},     {v1::TASK_LOST, "lost"},
      {v1::TASK_ERROR, "error"},       {v1::TASK_GONE, "gone"}};
  for (const auto& [state, name] : states) {
    g->tasks[state] = r.AddGauge(
        absl::StrCat("slave/tasks_", name),
        IsTerminalState(state)
            ? absl::StrCat("Tasks that ended ", name, " on this agent.")
            : absl::StrCat("Tasks now ", name, " on this agent."));
  }
  g->executors_registering =
      r.AddGauge("slave/executors_registering", "Executors being launched.");
  g->executors_running =
      r.AddGauge("slave/executors_running", "Executors running.");
  g->executors_terminating =
      r.AddGauge("slave/executors_terminating", "Executors being shut down.");
  g->executors_terminated =
      r.AddGauge("slave/executors_terminated", "Executors that terminated.");
  g->valid_updates = r.AddGauge("slave/valid_status_updates",
                                "Status updates accepted and checkpointed.");
  g->invalid_updates = r.AddGauge("slave/invalid_status_updates",
                                  "Status updates refused as invalid.");
  g->launch_errors = r.AddGauge("slave/container_launch_errors",
                                "Executors whose fetch or launch failed.");
  g->updates_pending = r.AddGauge(
      "slave/status_updates_pending",
      "Tasks with a status update not yet acknowledged by the master.");
  for (const char* name : {"cpus", "mem", "disk"}) {
    g->res[name] = {r.AddGauge(absl::StrCat("slave/", name, "_total"),
                               absl::StrCat("Total ", name, " of this agent.")),
                    r.AddGauge(absl::StrCat("slave/", name, "_used"),
                               absl::StrCat("Used ", name, " of this agent."))};
  }
  r.AddScrapeHook([this, g] {
    std::lock_guard<std::mutex> lock(mu_);
    g->registered->Set(subscribed_ ? 1 : 0);
    g->frameworks_active->Set(frameworks_.size());
    std::map<v1::TaskState, double> live;
    double registering = 0, running = 0, terminating = 0;
    for (const auto& [fid, framework] : frameworks_) {
      for (const auto& [eid, executor] : framework.executors) {
        switch (executor.state) {
          case ExecutorState::kLaunching:
          case ExecutorState::kRunning:
            ++registering;
            break;
          case ExecutorState::kSubscribed:
            ++running;
            break;
          case ExecutorState::kTerminating:
            ++terminating;
            break;
          default:
            break;
        }
        for (const auto& [tid, task] : executor.tasks) {
          if (!IsTerminalState(task.state)) ++live[task.state];
        }
      }
    }
    for (const auto& [state, gauge] : g->tasks) {
      if (IsTerminalState(state)) {
        auto it = terminal_counts_.find(state);
        gauge->Set(it == terminal_counts_.end() ? 0 : it->second);
      } else {
        gauge->Set(live[state]);
      }
    }
    g->executors_registering->Set(registering);
    g->executors_running->Set(running);
    g->executors_terminating->Set(terminating);
    g->executors_terminated->Set(executors_terminated_);
    g->valid_updates->Set(valid_status_updates_);
    g->invalid_updates->Set(invalid_status_updates_);
    g->launch_errors->Set(container_launch_errors_);
    g->updates_pending->Set(updates_->PendingCount());
    const master::Resources used = UsedResources();
    for (auto& [name, gauges] : g->res) {
      gauges.first->Set(total_.ScalarSum(name));
      gauges.second->Set(used.ScalarSum(name));
    }
  });
}

}  // namespace cairn::agent
