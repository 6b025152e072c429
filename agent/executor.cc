#include "agent/executor.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/child_process.h"
#include "common/logging.h"
#include "common/task_state.h"

namespace cairn::agent {
namespace {

constexpr char kApiPath[] = "/api/v1/executor";
constexpr char kProtobuf[] = "application/x-protobuf";
constexpr absl::Duration kDefaultKillGrace = absl::Seconds(3);
constexpr absl::Duration kHttpTimeout = absl::Seconds(5);
constexpr absl::Duration kTick = absl::Milliseconds(100);
// After SHUTDOWN, how long the terminal update may wait for its ACK.
constexpr absl::Duration kShutdownAckWait = absl::Seconds(5);

std::string RandomUuid() {
  thread_local absl::BitGen gen;
  std::string uuid(16, '\0');
  for (char& c : uuid) c = static_cast<char>(absl::Uniform<uint8_t>(gen));
  uuid[6] = static_cast<char>((uuid[6] & 0x0f) | 0x40);  // version 4
  uuid[8] = static_cast<char>((uuid[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return uuid;
}

absl::Duration FromDurationInfo(const v1::DurationInfo& info) {
  return absl::Nanoseconds(std::max<int64_t>(0, info.nanoseconds()));
}

}  // namespace

absl::StatusOr<absl::Duration> ParseMesosDuration(absl::string_view text) {
  size_t unit_start = 0;
  while (unit_start < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[unit_start])) ||
          text[unit_start] == '.')) {
    ++unit_start;
  }
  const absl::string_view number = text.substr(0, unit_start);
  const absl::string_view unit = text.substr(unit_start);
  double value;
  if (number.empty() || !absl::SimpleAtod(number, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid duration '", text, "': expected a number and a unit"));
  }
  absl::Duration scale;
  if (unit == "ns") {
    scale = absl::Nanoseconds(1);
  } else if (unit == "us") {
    scale = absl::Microseconds(1);
  } else if (unit == "ms") {
    scale = absl::Milliseconds(1);
  } else if (unit == "secs") {
    scale = absl::Seconds(1);
  } else if (unit == "mins") {
    scale = absl::Minutes(1);
  } else if (unit == "hrs") {
    scale = absl::Hours(1);
  } else if (unit == "days") {
    scale = absl::Hours(24);
  } else if (unit == "weeks") {
    scale = absl::Hours(24 * 7);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid duration '", text,
        "': unit must be one of ns, us, ms, secs, mins, hrs, days, weeks"));
  }
  return value * scale;
}

absl::StatusOr<ExecutorOptions> ExecutorOptions::FromEnvironment(
    const std::vector<std::string>& env) {
  auto get = [&env](absl::string_view name) -> std::optional<std::string> {
    const std::string prefix = absl::StrCat(name, "=");
    std::optional<std::string> value;
    for (const std::string& entry : env) {
      if (absl::StartsWith(entry, prefix)) value = entry.substr(prefix.size());
    }
    return value;
  };
  auto required =
      [&get](absl::string_view name) -> absl::StatusOr<std::string> {
    std::optional<std::string> value = get(name);
    if (!value.has_value() || value->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " is not set (it is set by the agent)"));
    }
    return *value;
  };
  auto duration = [&get](absl::string_view name,
                         absl::Duration* out) -> absl::Status {
    std::optional<std::string> value = get(name);
    if (!value.has_value() || value->empty()) return absl::OkStatus();
    absl::StatusOr<absl::Duration> parsed = ParseMesosDuration(*value);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": ", parsed.status().message()));
    }
    *out = *parsed;
    return absl::OkStatus();
  };

  ExecutorOptions options;
  options.environment = env;
  absl::StatusOr<std::string> endpoint = required("MESOS_AGENT_ENDPOINT");
  if (!endpoint.ok()) return endpoint.status();
  const size_t colon = endpoint->rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(endpoint->substr(colon + 1), &port) || port == 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MESOS_AGENT_ENDPOINT must be host:port, not '", *endpoint, "'"));
  }
  options.agent_host = endpoint->substr(0, colon);
  options.agent_port = static_cast<uint16_t>(port);

  absl::StatusOr<std::string> framework_id = required("MESOS_FRAMEWORK_ID");
  if (!framework_id.ok()) return framework_id.status();
  options.framework_id.set_value(*framework_id);
  absl::StatusOr<std::string> executor_id = required("MESOS_EXECUTOR_ID");
  if (!executor_id.ok()) return executor_id.status();
  options.executor_id.set_value(*executor_id);

  std::optional<std::string> sandbox = get("MESOS_SANDBOX");
  if (!sandbox.has_value() || sandbox->empty())
    sandbox = get("MESOS_DIRECTORY");
  if (!sandbox.has_value() || sandbox->empty()) {
    return absl::InvalidArgumentError(
        "MESOS_SANDBOX (or MESOS_DIRECTORY) is not set (it is set by the "
        "agent)");
  }
  options.sandbox = *sandbox;
  options.checkpoint = get("MESOS_CHECKPOINT").value_or("") == "1";

  if (absl::Status s =
          duration("MESOS_RECOVERY_TIMEOUT", &options.recovery_timeout);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = duration("MESOS_SUBSCRIPTION_BACKOFF_MAX",
                                &options.subscription_backoff_max);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = duration("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                                &options.shutdown_grace_period);
      !s.ok()) {
    return s;
  }
  return options;
}

// ---- Setup and the loop ----------------------------------------------------

Executor::Executor(ExecutorOptions options)
    : options_(std::move(options)),
      initial_backoff_(
          std::min(absl::Milliseconds(100), options_.subscription_backoff_max)),
      backoff_(initial_backoff_) {}

Executor::~Executor() {
  {
    std::lock_guard<std::mutex> lock(http_mu_);
    http_stop_ = true;
  }
  http_cv_.notify_all();
  if (http_thread_.joinable()) http_thread_.join();
}

void Executor::Post(Input input) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    inputs_.push_back(std::move(input));
  }
  cv_.notify_all();
}

void Executor::PostHttp(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(http_mu_);
    http_jobs_.push_back(std::move(job));
  }
  http_cv_.notify_all();
}

void Executor::HttpLoop() {
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(http_mu_);
      http_cv_.wait(lock, [this] { return http_stop_ || !http_jobs_.empty(); });
      if (http_stop_) return;
      job = std::move(http_jobs_.front());
      http_jobs_.pop_front();
    }
    job();
  }
}

int Executor::Run() {
  if (options_.subreaper) prctl(PR_SET_CHILD_SUBREAPER, 1);
  LOG(INFO) << "cairn-executor " << options_.executor_id.value()
            << " of framework " << options_.framework_id.value() << ", agent "
            << options_.agent_host << ":" << options_.agent_port << ", sandbox "
            << options_.sandbox
            << (options_.checkpoint ? ", checkpointing" : "");
  http_thread_ = std::thread([this] { HttpLoop(); });
  disconnected_since_ = absl::Now();

  while (!done_) {
    const absl::Time now = absl::Now();
    HandleTimers(now);
    if (done_) break;
    ReapStrays();

    absl::Time wake = std::min(now + kTick, exit_at_);
    for (const std::unique_ptr<TaskRun>& task : tasks_) {
      wake = std::min({wake, task->escalate_at, task->max_completion_at});
    }
    if (connection_ == Connection::kDisconnected) {
      wake = std::min(wake, next_subscribe_);
    }
    std::deque<Input> inputs;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (inputs_.empty()) {
        const absl::Duration left = wake - absl::Now();
        if (left > absl::ZeroDuration()) {
          cv_.wait_for(lock, absl::ToChronoMicroseconds(left));
        }
      }
      inputs.swap(inputs_);
    }
    for (Input& input : inputs) {
      if (done_) break;
      Handle(std::move(input));
    }
  }

  // Leave nothing behind.
  for (std::unique_ptr<TaskRun>& task : tasks_) {
    if (task->health_checker != nullptr) task->health_checker->Stop();
    if (task->running) {
      kill(-task->pid, SIGKILL);
      kill(task->pid, SIGKILL);
    }
  }
  for (std::unique_ptr<TaskRun>& task : tasks_) {
    if (task->waiter.joinable()) task->waiter.join();
    if (task->pid > 0) kill(-task->pid, SIGKILL);
  }
  KillStrayChildren();
  ReapStrays();
  if (reader_ != nullptr) reader_->Stop();
  reader_.reset();
  LOG(INFO) << "cairn-executor exiting with " << exit_code_;
  return exit_code_;
}

void Executor::HandleTimers(absl::Time now) {
  for (std::unique_ptr<TaskRun>& task : tasks_) {
    if (task->running && now >= task->escalate_at) {
      LOG(WARNING) << "task " << task->info.task_id().value() << " (pid "
                   << task->pid
                   << ") outlived its kill grace period: SIGKILL to its group";
      kill(-task->pid, SIGKILL);
      kill(task->pid, SIGKILL);
      task->escalate_at = absl::InfiniteFuture();
    }
    if (task->running && !task->killing && now >= task->max_completion_at) {
      LOG(WARNING) << "task " << task->info.task_id().value()
                   << " reached its max_completion_time: killing it";
      task->killed_by_max_completion = true;
      task->max_completion_at = absl::InfiniteFuture();
      Kill(*task, KillGrace(*task, nullptr));
    }
  }
  if (now >= exit_at_) {
    LOG(WARNING) << "no acknowledgement of the terminal update after "
                    "SHUTDOWN: exiting";
    Finish(0);
    return;
  }
  if (connection_ != Connection::kSubscribed && !recovery_timed_out_) {
    const absl::Duration limit = (options_.checkpoint || !ever_subscribed_)
                                     ? options_.recovery_timeout
                                     : absl::ZeroDuration();
    if (now - disconnected_since_ >= limit) {
      LOG(ERROR) << "no agent for " << (now - disconnected_since_)
                 << " (recovery timeout " << limit
                 << "): killing the tasks and exiting";
      recovery_timed_out_ = true;
      if (AnyRunning()) {
        KillAll(options_.shutdown_grace_period);
      } else {
        Finish(1);
        return;
      }
    }
  }
  if (connection_ == Connection::kDisconnected && now >= next_subscribe_ &&
      !recovery_timed_out_) {
    Subscribe();
  }
}

void Executor::Handle(Input input) {
  switch (input.kind) {
    case Input::Kind::kEvent: {
      if (input.generation != generation_) return;
      v1::executor::Event event;
      if (!event.ParseFromString(input.record)) {
        LOG(ERROR) << "dropping an unparsable event (" << input.record.size()
                   << " bytes)";
        return;
      }
      HandleEvent(event);
      return;
    }
    case Input::Kind::kStreamEnded:
      if (input.generation != generation_) return;
      Disconnected(
          absl::StrCat("the event stream ended: ", input.status.ToString()));
      return;
    case Input::Kind::kStreamOpened: {
      if (input.generation != generation_ ||
          connection_ != Connection::kSubscribing) {
        return;
      }
      const uint64_t generation = generation_;
      reader_ = std::make_unique<http::RecordStreamReader>(
          std::move(input.stream),
          [this, generation](std::string record) {
            Input event{Input::Kind::kEvent};
            event.generation = generation;
            event.record = std::move(record);
            Post(std::move(event));
          },
          [this, generation](absl::Status end) {
            Input ended{Input::Kind::kStreamEnded};
            ended.generation = generation;
            ended.status = std::move(end);
            Post(std::move(ended));
          });
      return;
    }
    case Input::Kind::kSubscribeFailed:
      if (input.generation != generation_) return;
      Disconnected(absl::StrCat("SUBSCRIBE failed: ", input.status.message()));
      return;
    case Input::Kind::kPostFailed:
      if (input.generation != generation_ ||
          connection_ == Connection::kDisconnected) {
        return;
      }
      Disconnected(absl::StrCat("UPDATE failed: ", input.status.message()));
      return;
    case Input::Kind::kTaskExited:
      TaskExited(input.task_id, input.wait_status);
      return;
    case Input::Kind::kHealth:
      HealthChanged(input.task_id, input.health);
      return;
  }
}

// ---- Connection
// --------------------------------------------------------------

v1::executor::Call Executor::NewCall(v1::executor::Call::Type type) const {
  v1::executor::Call call;
  *call.mutable_executor_id() = options_.executor_id;
  *call.mutable_framework_id() = options_.framework_id;
  call.set_type(type);
  return call;
}

void Executor::Subscribe() {
  ++generation_;
  connection_ = Connection::kSubscribing;
  v1::executor::Call call = NewCall(v1::executor::Call::SUBSCRIBE);
  v1::executor::Call::Subscribe* subscribe = call.mutable_subscribe();
  for (const std::unique_ptr<TaskRun>& task : tasks_) {
    if (!task->any_acknowledged) {
      *subscribe->add_unacknowledged_tasks() = task->info;
    }
  }
  for (PendingUpdate& update : unacked_) {
    *subscribe->add_unacknowledged_updates()->mutable_status() = update.status;
    update.sent_generation = generation_;
  }
  VLOG(1) << "subscribing (attempt " << generation_ << ") with "
          << unacked_.size() << " unacknowledged update(s)";
  const uint64_t generation = generation_;
  std::string body = call.SerializeAsString();
  PostHttp([this, generation, body = std::move(body)] {
    http::Client client;
    absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
        client.OpenStream("POST", options_.agent_host, options_.agent_port,
                          kApiPath,
                          {{"Content-Type", kProtobuf}, {"Accept", kProtobuf}},
                          body, kHttpTimeout);
    Input result{Input::Kind::kSubscribeFailed};
    result.generation = generation;
    if (!stream.ok()) {
      result.status = stream.status();
    } else if ((*stream)->status() != 200) {
      std::string answer;
      absl::StatusOr<std::optional<std::string>> chunk =
          (*stream)->NextChunk(absl::Seconds(1));
      if (chunk.ok() && chunk->has_value()) answer = **chunk;
      result.status = absl::UnavailableError(absl::StrCat(
          "status ", (*stream)->status(), " ", answer.substr(0, 200)));
    } else {
      result.kind = Input::Kind::kStreamOpened;
      result.stream = *std::move(stream);
    }
    Post(std::move(result));
  });
}

void Executor::Disconnected(absl::string_view why) {
  if (connection_ == Connection::kSubscribed) {
    LOG(WARNING) << "disconnected from the agent: " << why;
    disconnected_since_ = absl::Now();
    backoff_ = initial_backoff_;
  } else {
    VLOG(1) << "not subscribed: " << why;
  }
  if (reader_ != nullptr) {
    reader_->Stop();
    reader_.reset();
  }
  connection_ = Connection::kDisconnected;
  ++generation_;  // late inputs of the old attempt are dropped
  thread_local absl::BitGen gen;
  const absl::Duration wait =
      absl::Uniform(gen, 0.5, 1.0) *
      std::min(backoff_, options_.subscription_backoff_max);
  next_subscribe_ = absl::Now() + wait;
  backoff_ = std::min(backoff_ * 2, options_.subscription_backoff_max);
}

void Executor::HandleEvent(const v1::executor::Event& event) {
  switch (event.type()) {
    case v1::executor::Event::SUBSCRIBED: {
      LOG(INFO) << "subscribed to agent "
                << event.subscribed().agent_info().id().value();
      connection_ = Connection::kSubscribed;
      ever_subscribed_ = true;
      backoff_ = initial_backoff_;
      framework_info_ = event.subscribed().framework_info();
      // Updates made since the SUBSCRIBE call was built.
      for (PendingUpdate& update : unacked_) {
        if (update.sent_generation != generation_) PostUpdate(&update);
      }
      return;
    }
    case v1::executor::Event::LAUNCH:
      Launch(event.launch().task(), 0);
      return;
    case v1::executor::Event::LAUNCH_GROUP: {
      const v1::TaskGroupInfo& group = event.launch_group().task_group();
      if (group.tasks_size() == 0) {
        LOG(ERROR) << "ignoring LAUNCH_GROUP without "
                      "launch_group.task_group.tasks";
        return;
      }
      const int number = ++groups_;
      LOG(INFO) << "launching task group " << number << " of "
                << group.tasks_size() << " task(s)";
      for (const v1::TaskInfo& task : group.tasks()) Launch(task, number);
      return;
    }
    case v1::executor::Event::KILL: {
      TaskRun* task = FindTask(event.kill().task_id().value());
      if (task == nullptr) {
        LOG(WARNING) << "KILL of unknown task '"
                     << event.kill().task_id().value() << "'";
        return;
      }
      Kill(*task, KillGrace(*task, event.kill().has_kill_policy()
                                       ? &event.kill().kill_policy()
                                       : nullptr));
      return;
    }
    case v1::executor::Event::ACKNOWLEDGED:
      Acknowledged(event.acknowledged().uuid());
      return;
    case v1::executor::Event::MESSAGE:
      LOG(INFO) << "framework message of " << event.message().data().size()
                << " bytes (ignored by the command executor)";
      return;
    case v1::executor::Event::SHUTDOWN:
      LOG(INFO) << "SHUTDOWN from the agent";
      shutting_down_ = true;
      if (AnyRunning()) {
        KillAll(options_.shutdown_grace_period);
      } else {
        Finish(0);
      }
      return;
    case v1::executor::Event::ERROR:
      LOG(ERROR) << "agent error: " << event.error().message();
      return;
    case v1::executor::Event::HEARTBEAT:
      return;
    default:
      LOG(WARNING) << "ignoring an event of unknown type " << event.type();
      return;
  }
}

// ---- Status updates
// ------------------------------------------------------------

v1::TaskStatus Executor::NewStatus(const TaskRun& task,
                                   v1::TaskState state) const {
  v1::TaskStatus status;
  *status.mutable_task_id() = task.info.task_id();
  status.set_state(state);
  status.set_source(v1::TaskStatus::SOURCE_EXECUTOR);
  *status.mutable_executor_id() = options_.executor_id;
  if (task.info.has_agent_id()) {
    *status.mutable_agent_id() = task.info.agent_id();
  }
  status.set_timestamp(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  status.set_uuid(RandomUuid());
  return status;
}

void Executor::SendUpdate(v1::TaskStatus status) {
  LOG(INFO) << "task " << status.task_id().value() << ": "
            << v1::TaskState_Name(status.state())
            << (status.has_healthy()
                    ? (status.healthy() ? " (healthy)" : " (unhealthy)")
                    : "")
            << (status.message().empty() ? "" : ": ") << status.message();
  unacked_.push_back(PendingUpdate{std::move(status), 0});
  if (connection_ == Connection::kSubscribed) PostUpdate(&unacked_.back());
}

void Executor::PostUpdate(PendingUpdate* update) {
  update->sent_generation = generation_;
  v1::executor::Call call = NewCall(v1::executor::Call::UPDATE);
  *call.mutable_update()->mutable_status() = update->status;
  const uint64_t generation = generation_;
  std::string body = call.SerializeAsString();
  PostHttp([this, generation, body = std::move(body)] {
    thread_local http::Client client;
    absl::StatusOr<http::Response> response = client.Request(
        "POST", options_.agent_host, options_.agent_port, kApiPath,
        {{"Content-Type", kProtobuf}, {"Accept", kProtobuf}}, body,
        kHttpTimeout);
    if (response.ok() && response->status == 202) return;
    Input failed{Input::Kind::kPostFailed};
    failed.generation = generation;
    if (!response.ok()) {
      failed.status = response.status();
      client.CloseConnection();
    } else if (response->status >= 500) {
      // The agent could not take it now (e.g. its checkpoint failed): as a
      // lost connection, resubscribe and resend everything unacknowledged,
      // in order.
      failed.status = absl::UnavailableError(
          absl::StrCat("agent answered UPDATE with ", response->status, ": ",
                       response->body.substr(0, 300)));
    } else {
      // The agent refused it: resending the same bytes will not help; it
      // stays queued for the next subscription.
      LOG(ERROR) << "agent answered UPDATE with " << response->status << ": "
                 << response->body.substr(0, 300);
      return;
    }
    Post(std::move(failed));
  });
}

void Executor::Acknowledged(const std::string& uuid) {
  auto it = std::find_if(
      unacked_.begin(), unacked_.end(),
      [&uuid](const PendingUpdate& u) { return u.status.uuid() == uuid; });
  if (it == unacked_.end()) {
    VLOG(1) << "acknowledgement of an unknown update";
    return;
  }
  const bool terminal = IsTerminalState(it->status.state());
  VLOG(1) << "acknowledged " << it->status.task_id().value() << " "
          << v1::TaskState_Name(it->status.state());
  TaskRun* task = FindTask(it->status.task_id().value());
  unacked_.erase(it);
  if (task == nullptr) return;
  task->any_acknowledged = true;
  if (terminal) {
    task->terminal_acknowledged = true;
    MaybeFinish();
  }
}

// ---- The task
// ----------------------------------------------------------------

Executor::TaskRun* Executor::FindTask(const std::string& task_id) {
  for (std::unique_ptr<TaskRun>& task : tasks_) {
    if (task->info.task_id().value() == task_id) return task.get();
  }
  return nullptr;
}

bool Executor::AnyRunning() const {
  for (const std::unique_ptr<TaskRun>& task : tasks_) {
    if (task->running) return true;
  }
  return false;
}

absl::Duration Executor::KillGrace(
    const TaskRun& task, const v1::KillPolicy* override_policy) const {
  if (override_policy != nullptr && override_policy->has_grace_period()) {
    return FromDurationInfo(override_policy->grace_period());
  }
  if (task.info.has_kill_policy() &&
      task.info.kill_policy().has_grace_period()) {
    return FromDurationInfo(task.info.kill_policy().grace_period());
  }
  return kDefaultKillGrace;
}

void Executor::Launch(const v1::TaskInfo& info, int group) {
  if (!info.has_task_id() || info.task_id().value().empty()) {
    LOG(ERROR) << "ignoring LAUNCH without task.task_id";
    return;
  }
  if (FindTask(info.task_id().value()) != nullptr) {
    LOG(ERROR) << "ignoring a second LAUNCH of task '"
               << info.task_id().value() << "'";
    return;
  }
  if (shutting_down_ || recovery_timed_out_) {
    LOG(ERROR) << "ignoring LAUNCH of task '" << info.task_id().value()
               << "': the executor is shutting down";
    return;
  }
  tasks_.push_back(std::make_unique<TaskRun>());
  TaskRun& task = *tasks_.back();
  task.info = info;
  task.group = group;
  LOG(INFO) << "launching task " << info.task_id().value();
  SendUpdate(NewStatus(task, v1::TASK_STARTING));

  if (!info.has_command()) {
    FailLaunch(task, "task.command is required by cairn-executor");
    return;
  }
  absl::StatusOr<CommandLine> line =
      ResolveCommand(info.command(), "task.command");
  if (!line.ok()) {
    FailLaunch(task, std::string(line.status().message()));
    return;
  }
  absl::StatusOr<std::vector<std::string>> env =
      MergeEnvironment(options_.environment, info.command().environment(),
                       "task.command.environment");
  if (!env.ok()) {
    FailLaunch(task, std::string(env.status().message()));
    return;
  }
  if (info.has_health_check()) {
    if (absl::Status s =
            HealthChecker::Validate(info.health_check(), "task.health_check");
        !s.ok()) {
      FailLaunch(task, std::string(s.message()));
      return;
    }
  }
  LaunchSpec spec;
  spec.executable = line->executable;
  spec.argv = line->argv;
  spec.environment = *env;
  spec.working_directory = options_.sandbox;
  if (info.command().has_user() && geteuid() == 0) {
    absl::StatusOr<UserIds> user = ResolveUser(info.command().user());
    if (!user.ok()) {
      FailLaunch(task, absl::StrCat("task.command.user: ",
                                    user.status().message()));
      return;
    }
    spec.user = *std::move(user);
  }
  absl::StatusOr<pid_t> pid = agent::Launch(spec);
  if (!pid.ok()) {
    FailLaunch(task, std::string(pid.status().message()));
    return;
  }
  task.pid = *pid;
  task.running = true;
  task.waiter = std::thread([this, pid = task.pid, id = info.task_id().value()] {
    Input exited{Input::Kind::kTaskExited};
    exited.task_id = id;
    exited.wait_status = Wait(pid);
    Post(std::move(exited));
  });
  v1::TaskStatus running = NewStatus(task, v1::TASK_RUNNING);
  running.set_message(absl::StrCat("cairn-executor: pid ", task.pid));
  SendUpdate(std::move(running));
  if (group != 0 && std::find(killed_groups_.begin(), killed_groups_.end(),
                              group) != killed_groups_.end()) {
    Kill(task, KillGrace(task, nullptr));  // an earlier task of it failed
    return;
  }

  if (info.has_max_completion_time()) {
    task.max_completion_at =
        absl::Now() + FromDurationInfo(info.max_completion_time());
  }
  if (info.has_health_check()) {
    HealthCheckerOptions health_options;
    health_options.sandbox = options_.sandbox;
    health_options.environment = *std::move(env);
    absl::StatusOr<std::unique_ptr<HealthChecker>> checker =
        HealthChecker::Start(
            info.health_check(), std::move(health_options),
            [this, id = info.task_id().value()](const HealthUpdate& update) {
              Input health{Input::Kind::kHealth};
              health.task_id = id;
              health.health = update;
              Post(std::move(health));
            });
    if (checker.ok()) {
      task.health_checker = *std::move(checker);
    } else {
      LOG(ERROR) << "health checks of task " << info.task_id().value()
                 << " not started: " << checker.status();
    }
  }
}

void Executor::FailLaunch(TaskRun& task, const std::string& message) {
  LOG(ERROR) << "cannot launch task " << task.info.task_id().value() << ": "
             << message;
  v1::TaskStatus failed = NewStatus(task, v1::TASK_FAILED);
  failed.set_message(absl::StrCat("cairn-executor: ", message));
  failed.set_reason(v1::TaskStatus::REASON_COMMAND_EXECUTOR_FAILED);
  task.terminated = true;
  SendUpdate(std::move(failed));
  AfterTerminal(task, v1::TASK_FAILED);
}

void Executor::Kill(TaskRun& task, absl::Duration grace) {
  if (!task.running) return;
  const absl::Time now = absl::Now();
  if (task.killing) {
    task.escalate_at = std::min(task.escalate_at, now + grace);
    return;
  }
  task.killing = true;
  if (task.health_checker != nullptr) task.health_checker->Stop();
  bool killing_state = false;
  for (const auto& capability : framework_info_.capabilities()) {
    if (capability.type() ==
        v1::FrameworkInfo::Capability::TASK_KILLING_STATE) {
      killing_state = true;
    }
  }
  if (killing_state) SendUpdate(NewStatus(task, v1::TASK_KILLING));
  LOG(INFO) << "task " << task.info.task_id().value()
            << ": SIGTERM to process group " << task.pid << ", SIGKILL in "
            << grace;
  kill(-task.pid, SIGTERM);
  kill(task.pid, SIGTERM);
  task.escalate_at = now + grace;
}

void Executor::KillAll(absl::Duration grace) {
  for (std::unique_ptr<TaskRun>& task : tasks_) Kill(*task, grace);
}

void Executor::HealthChanged(const std::string& task_id,
                             const HealthUpdate& update) {
  TaskRun* task = FindTask(task_id);
  if (task == nullptr || !task->running || task->killing || task->terminated) {
    return;
  }
  v1::TaskStatus status = NewStatus(*task, v1::TASK_RUNNING);
  status.set_reason(v1::TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED);
  status.set_healthy(update.healthy);
  if (!update.healthy) status.set_message(update.message);
  SendUpdate(std::move(status));
  if (update.kill_task) {
    task->killed_by_health_check = true;
    task->last_health_failure = update;
    Kill(*task, KillGrace(*task, nullptr));
  }
}

void Executor::TaskExited(const std::string& task_id, int wait_status) {
  TaskRun* found = FindTask(task_id);
  CHECK(found != nullptr) << "exit of unknown task " << task_id;
  TaskRun& task = *found;
  task.running = false;
  if (task.waiter.joinable()) task.waiter.join();
  // Nothing of the task may survive it. Orphans that left its process group
  // are ours (subreaper) but of no known task: killed once no task runs.
  kill(-task.pid, SIGKILL);
  if (!AnyRunning()) KillStrayChildren();
  ReapStrays();
  if (task.health_checker != nullptr) task.health_checker->Stop();
  task.escalate_at = absl::InfiniteFuture();
  task.max_completion_at = absl::InfiniteFuture();

  v1::TaskState state;
  std::optional<v1::TaskStatus::Reason> reason;
  if (task.killed_by_max_completion) {
    state = v1::TASK_FAILED;
    reason = v1::TaskStatus::REASON_MAX_COMPLETION_TIME_REACHED;
  } else if (task.killing) {
    state = v1::TASK_KILLED;
  } else if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) {
    state = v1::TASK_FINISHED;
  } else {
    state = v1::TASK_FAILED;
  }
  v1::TaskStatus status = NewStatus(task, state);
  std::string message =
      absl::StrCat("Command ", DescribeWaitStatus(wait_status));
  if (task.killed_by_health_check) {
    status.set_healthy(false);
    message = absl::StrCat("Health check failed ",
                           task.last_health_failure.consecutive_failures,
                           " times in a row (",
                           task.last_health_failure.message, "); ", message);
  }
  status.set_message(message);
  if (reason.has_value()) status.set_reason(*reason);
  task.terminated = true;
  SendUpdate(std::move(status));
  AfterTerminal(task, state);
}

void Executor::AfterTerminal(const TaskRun& task, v1::TaskState state) {
  // The group policy (Mesos's default executor): a group whose task failed
  // or was killed is killed entirely, once.
  if (task.group != 0 && !shutting_down_ && !recovery_timed_out_ &&
      (state == v1::TASK_FAILED || state == v1::TASK_KILLED) &&
      std::find(killed_groups_.begin(), killed_groups_.end(), task.group) ==
          killed_groups_.end()) {
    killed_groups_.push_back(task.group);
    for (std::unique_ptr<TaskRun>& other : tasks_) {
      if (other->group != task.group || other.get() == &task ||
          !other->running || other->killing) {
        continue;
      }
      LOG(INFO) << "task " << task.info.task_id().value() << " ended "
                << v1::TaskState_Name(state) << ": killing task "
                << other->info.task_id().value() << " of its group";
      Kill(*other, KillGrace(*other, nullptr));
    }
  }
  if (AnyRunning()) return;
  if (recovery_timed_out_) {
    Finish(1);
  } else if (shutting_down_) {
    exit_at_ = absl::Now() + kShutdownAckWait;
  }
}

void Executor::MaybeFinish() {
  for (const std::unique_ptr<TaskRun>& task : tasks_) {
    if (!task->terminal_acknowledged) return;
  }
  Finish(0);
}

void Executor::Finish(int exit_code) {
  done_ = true;
  exit_code_ = exit_code;
}

}  // namespace cairn::agent
