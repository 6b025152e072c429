#include "tests/internal/agent_client.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/http_message.h"
#include "common/json.h"
#include "common/task_state.h"

namespace cairn::tests {
namespace {

constexpr char kStreamIdHeader[] = "X-Cairn-Stream-Id";
constexpr char kJson[] = "application/json";
constexpr size_t kMaxQueuedEvents = 10000;
constexpr absl::Duration kMaxUpdateRetry = absl::Minutes(10);

MasterChannelOptions ChannelOptions(const FakeAgentOptions& options) {
  MasterChannelOptions channel;
  channel.masters = options.masters;
  channel.path = options.path;
  channel.request_timeout = options.request_timeout;
  return channel;
}

// Waits on `cv` until notified or `deadline`. REQUIRES: `lock` held.
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

}  // namespace

v1::Resource ScalarResource(const std::string& name, double value) {
  v1::Resource resource;
  resource.set_name(name);
  resource.set_type(v1::MesosValue::SCALAR);
  resource.mutable_scalar()->set_value(value);
  return resource;
}

FakeAgent::FakeAgent(FakeAgentOptions options)
    : options_(std::move(options)),
      channel_(ChannelOptions(options_)),
      resubscribe_backoff_(options_.resubscribe_backoff),
      agent_id_(options_.agent_id),
      heartbeats_enabled_(options_.send_heartbeats) {
  std::random_device seed;
  random_.seed((uint64_t{seed()} << 32) ^ seed());
  worker_ = std::thread([this] { WorkerLoop(); });
}

FakeAgent::~FakeAgent() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  channel_.Cancel();
  worker_.join();
  std::lock_guard<std::mutex> subscribe_lock(subscribe_mu_);
  StopReader();
}

void FakeAgent::StopReader() {
  if (reader_ != nullptr) {
    reader_->Stop();
    reader_.reset();
  }
}

void FakeAgent::Changed() {
  ++changes_;
  cv_.notify_all();
}

// ---- Subscription -----------------------------------------------------------

absl::StatusOr<v1::AgentID> FakeAgent::Subscribe() {
  std::lock_guard<std::mutex> subscribe_lock(subscribe_mu_);
  return SubscribeLocked();
}

absl::StatusOr<v1::AgentID> FakeAgent::Resubscribe() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!agent_id_.has_value()) {
      return absl::FailedPreconditionError(
          "Resubscribe() without an agent id: Subscribe() first");
    }
  }
  return Subscribe();
}

v1::AgentCall FakeAgent::SubscribeCall() const {
  v1::AgentCall call;
  call.set_type(v1::AgentCall::SUBSCRIBE);
  v1::AgentCall::Subscribe* subscribe = call.mutable_subscribe();
  v1::AgentInfo* info = subscribe->mutable_agent_info();
  info->set_hostname(options_.hostname);
  info->set_port(options_.port);
  for (const v1::Resource& r : options_.resources) *info->add_resources() = r;
  for (const v1::Attribute& a : options_.attributes) {
    *info->add_attributes() = a;
  }
  subscribe->set_version(options_.version);
  for (v1::AgentInfo::Capability::Type type : options_.capabilities) {
    subscribe->add_capabilities()->set_type(type);
  }
  if (!agent_id_.has_value()) return call;

  // Reregistration: the id, and the report of what it runs.
  *call.mutable_agent_id() = *agent_id_;
  *info->mutable_id() = *agent_id_;
  std::set<std::string> frameworks;
  std::set<std::string> executors;
  for (const auto& [key, entry] : tasks_) {
    if (entry.task.completed) continue;
    const FakeTask& t = entry.task;
    v1::Task* task = subscribe->add_tasks();
    task->set_name(t.info.name());
    *task->mutable_task_id() = t.info.task_id();
    *task->mutable_framework_id() = t.framework_id;
    if (!entry.executor_id.value().empty()) {
      *task->mutable_executor_id() = entry.executor_id;
      executors.insert(entry.executor_id.value());
    }
    *task->mutable_agent_id() = *agent_id_;
    task->set_state(t.state);
    *task->mutable_resources() = t.info.resources();
    if (entry.latest.has_value()) *task->add_statuses() = *entry.latest;
    if (!entry.queue.empty()) {
      task->set_status_update_state(entry.queue.front().state());
      task->set_status_update_uuid(entry.queue.front().uuid());
    }
    *task->mutable_labels() = t.info.labels();
    frameworks.insert(t.framework_id.value());
  }
  for (const std::string& id : frameworks) {
    auto it = frameworks_.find(id);
    v1::FrameworkInfo* framework = subscribe->add_frameworks();
    if (it != frameworks_.end()) *framework = it->second;
    framework->mutable_id()->set_value(id);
  }
  for (const std::string& id : executors) {
    auto it = executors_.find(id);
    if (it != executors_.end()) *subscribe->add_executors() = it->second;
  }
  return call;
}

absl::StatusOr<v1::AgentID> FakeAgent::SubscribeLocked() {
  StopReader();
  const absl::Time deadline = absl::Now() + options_.subscribe_timeout;
  v1::AgentCall call;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::CancelledError("the agent is stopping");
    disconnected_ = false;
    resubscribe_at_ = absl::InfiniteFuture();
    call = SubscribeCall();
  }
  absl::StatusOr<std::string> body = ToJson(call);
  if (!body.ok()) return body.status();
  absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
      channel_.OpenStream({{"Content-Type", kJson}, {"Accept", kJson}}, *body,
                          deadline);
  if (!stream.ok()) {
    if (HttpStatusOf(stream.status()) == 403) {
      std::lock_guard<std::mutex> lock(mu_);
      removed_ = true;
      Changed();
    }
    return stream.status();
  }

  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation = ++generation_;
    subscribed_ = false;
    end_.reset();
    stream_id_ = (*stream)->headers().Get(kStreamIdHeader);
    Changed();
  }
  reader_ = std::make_unique<RecordStreamReader>(
      *std::move(stream),
      [this, generation](std::string record) { OnRecord(generation, record); },
      [this, generation](absl::Status end) { OnEnd(generation, end); });

  std::unique_lock<std::mutex> lock(mu_);
  while (!subscribed_ && !end_.has_value() && !stopping_ &&
         absl::Now() < deadline) {
    WaitUntilTime(cv_, lock, deadline);
  }
  if (subscribed_) return *agent_id_;
  if (end_.has_value()) {
    std::string error;
    if (!errors_.empty()) {
      error = absl::StrCat("; ERROR ", errors_.back().code(), ": ",
                           errors_.back().message());
    }
    return absl::UnavailableError(absl::StrCat(
        "the event stream ended before SUBSCRIBED: ", end_->ToString(), error));
  }
  const bool stopping = stopping_;
  lock.unlock();
  StopReader();
  if (stopping) return absl::CancelledError("the agent is stopping");
  return absl::DeadlineExceededError(
      "no SUBSCRIBED event within subscribe_timeout");
}

void FakeAgent::Disconnect() {
  std::lock_guard<std::mutex> subscribe_lock(subscribe_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    disconnected_ = true;
    resubscribe_at_ = absl::InfiniteFuture();
  }
  StopReader();
  std::lock_guard<std::mutex> lock(mu_);
  subscribed_ = false;
  Changed();
}

// ---- Reader thread ----------------------------------------------------------

void FakeAgent::OnRecord(uint64_t generation, const std::string& record) {
  v1::AgentEvent event;
  const absl::Status parsed =
      FromJson(record, &event, /*ignore_unknown_fields=*/true);
  std::lock_guard<std::mutex> lock(mu_);
  if (generation != generation_) return;
  if (!parsed.ok()) {
    ++malformed_records_;
    Changed();
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
      HandleShutdown(event.shutdown_framework());
      break;
    case v1::AgentEvent::RECONCILE:
      HandleReconcile(event.reconcile());
      break;
    case v1::AgentEvent::ERROR:
      errors_.push_back(event.error());
      if (event.error().code() == 403) removed_ = true;
      break;
    default:  // HEARTBEAT, and types this agent does not know
      break;
  }
  while (events_.size() >= kMaxQueuedEvents) events_.pop_front();
  events_.push_back(std::move(event));
  Changed();
}

void FakeAgent::OnEnd(uint64_t generation, absl::Status end) {
  std::lock_guard<std::mutex> lock(mu_);
  if (generation != generation_) return;
  if (options_.auto_resubscribe && !disconnected_ && !removed_ && !stopping_ &&
      end.code() != absl::StatusCode::kCancelled) {
    resubscribe_at_ = absl::Now() + resubscribe_backoff_;
  }
  end_ = std::move(end);
  subscribed_ = false;
  Changed();
}

void FakeAgent::HandleSubscribed(const v1::AgentEvent::Subscribed& subscribed) {
  subscribed_ = true;
  ++subscriptions_;
  agent_id_ = subscribed.agent_id();
  last_subscribed_ = subscribed;
  resubscribe_backoff_ = options_.resubscribe_backoff;
  if (options_.heartbeat_interval.has_value()) {
    heartbeat_interval_ = *options_.heartbeat_interval;
  } else if (subscribed.heartbeat_interval_seconds() > 0) {
    heartbeat_interval_ =
        absl::Seconds(subscribed.heartbeat_interval_seconds());
  } else {
    heartbeat_interval_ = absl::InfiniteDuration();
  }
  next_heartbeat_ = absl::Now() + heartbeat_interval_;
  // Resend the head of every queue at once.
  for (auto& [key, entry] : tasks_) {
    entry.head_sent = false;
    entry.backoff = options_.update_retry;
  }
}

void FakeAgent::HandleLaunch(const v1::AgentEvent::Launch& launch) {
  const v1::FrameworkID& framework_id = launch.framework_info().id();
  if (!framework_id.value().empty()) {
    frameworks_[framework_id.value()] = launch.framework_info();
  }
  if (launch.has_executor_info()) {
    executors_[launch.executor_info().executor_id().value()] =
        launch.executor_info();
  }
  for (const v1::TaskInfo& info : launch.tasks()) {
    const TaskKey key(framework_id.value(), info.task_id().value());
    if (tasks_.count(key) > 0) {  // idempotent by task id
      ++repeated_launches_;
      continue;
    }
    Entry& entry = tasks_[key];
    entry.task.framework_id = framework_id;
    entry.task.info = info;
    entry.task.state = v1::TASK_STAGING;
    entry.backoff = options_.update_retry;
    if (info.has_executor()) {
      entry.executor_id = info.executor().executor_id();
    } else if (launch.has_executor_info()) {
      entry.executor_id = launch.executor_info().executor_id();
    }
    launched_.push_back(info);
    if (options_.launch_state.has_value()) {
      QueueUpdateLocked(framework_id, info.task_id(), *options_.launch_state,
                        std::nullopt, "", v1::TaskStatus::SOURCE_EXECUTOR);
    }
  }
}

void FakeAgent::HandleKill(const v1::AgentEvent::Kill& kill) {
  kills_.push_back(kill);
  if (!options_.answer_kills) return;
  const TaskKey key(kill.framework_id().value(), kill.task_id().value());
  auto it = tasks_.find(key);
  if (it == tasks_.end()) {
    QueueUpdateLocked(kill.framework_id(), kill.task_id(), v1::TASK_LOST,
                      v1::TaskStatus::REASON_RECONCILIATION,
                      "task unknown to the agent",
                      v1::TaskStatus::SOURCE_AGENT);
    return;
  }
  const FakeTask& task = it->second.task;
  if (task.completed || IsTerminalState(task.state)) return;
  std::optional<v1::TaskStatus::Reason> reason;
  if (task.state == v1::TASK_STAGING) {
    reason = v1::TaskStatus::REASON_TASK_KILLED_DURING_LAUNCH;
  }
  QueueUpdateLocked(kill.framework_id(), kill.task_id(), v1::TASK_KILLED,
                    reason, "killed", v1::TaskStatus::SOURCE_EXECUTOR);
}

void FakeAgent::HandleAcknowledge(const v1::AgentEvent::Acknowledge& ack) {
  acks_.push_back(ack);
  const TaskKey key(ack.framework_id().value(), ack.task_id().value());
  auto it = tasks_.find(key);
  if (it == tasks_.end() || it->second.queue.empty() ||
      it->second.queue.front().uuid() != ack.uuid()) {
    ++stray_acks_;
    return;
  }
  Entry& entry = it->second;
  entry.queue.pop_front();
  entry.head_sent = false;  // the next one goes now
  entry.backoff = options_.update_retry;
  if (entry.queue.empty() && IsTerminalState(entry.task.state)) {
    entry.task.completed = true;
  }
}

void FakeAgent::HandleShutdown(
    const v1::AgentEvent::ShutdownFramework& shutdown) {
  shutdowns_.push_back(shutdown);
  if (!options_.answer_kills) return;
  for (auto& [key, entry] : tasks_) {
    if (key.first != shutdown.framework_id().value()) continue;
    if (entry.task.completed || IsTerminalState(entry.task.state)) continue;
    QueueUpdateLocked(entry.task.framework_id, entry.task.info.task_id(),
                      v1::TASK_KILLED, v1::TaskStatus::REASON_FRAMEWORK_REMOVED,
                      "framework shut down", v1::TaskStatus::SOURCE_AGENT);
  }
}

void FakeAgent::HandleReconcile(const v1::AgentEvent::Reconcile& reconcile) {
  reconciles_.push_back(reconcile);
  if (!options_.answer_reconcile) return;
  std::set<TaskKey> listed;
  for (const v1::AgentEvent::Reconcile::Task& t : reconcile.tasks()) {
    const TaskKey key(t.framework_id().value(), t.task_id().value());
    listed.insert(key);
    auto it = tasks_.find(key);
    if (it == tasks_.end()) {
      QueueUpdateLocked(t.framework_id(), t.task_id(), v1::TASK_LOST,
                        v1::TaskStatus::REASON_RECONCILIATION,
                        "task unknown to the agent",
                        v1::TaskStatus::SOURCE_AGENT);
    } else if (it->second.task.state != t.state() && it->second.queue.empty()) {
      // Ours is newer and nothing queued will tell: say it again (a
      // completed task's terminal state included).
      QueueUpdateLocked(t.framework_id(), t.task_id(), it->second.task.state,
                        v1::TaskStatus::REASON_RECONCILIATION, "",
                        v1::TaskStatus::SOURCE_AGENT);
    }
  }
  for (auto& [key, entry] : tasks_) {
    if (listed.count(key) > 0 || entry.task.completed ||
        IsTerminalState(entry.task.state)) {
      continue;
    }
    // The log says it is over: kill it.
    QueueUpdateLocked(entry.task.framework_id, entry.task.info.task_id(),
                      v1::TASK_KILLED, v1::TaskStatus::REASON_RECONCILIATION,
                      "not in the master's reconciliation list",
                      v1::TaskStatus::SOURCE_AGENT);
  }
}

// ---- Tasks and updates ------------------------------------------------------

std::string FakeAgent::QueueUpdateLocked(
    const v1::FrameworkID& framework_id, const v1::TaskID& task_id,
    v1::TaskState state, std::optional<v1::TaskStatus::Reason> reason,
    const std::string& message, v1::TaskStatus::Source source) {
  const TaskKey key(framework_id.value(), task_id.value());
  auto [it, added] = tasks_.try_emplace(key);
  Entry& entry = it->second;
  if (added) {
    entry.task.framework_id = framework_id;
    *entry.task.info.mutable_task_id() = task_id;
    entry.backoff = options_.update_retry;
  }
  entry.task.completed = false;
  entry.task.state = state;

  std::string uuid(16, '\0');
  for (size_t i = 0; i < uuid.size(); i += 8) {
    const uint64_t bits = random_();
    for (size_t j = 0; j < 8; ++j)
      uuid[i + j] = static_cast<char>(bits >> (8 * j));
  }
  v1::TaskStatus status;
  *status.mutable_task_id() = task_id;
  status.set_state(state);
  status.set_source(source);
  if (reason.has_value()) status.set_reason(*reason);
  if (!message.empty()) status.set_message(message);
  if (!entry.executor_id.value().empty()) {
    *status.mutable_executor_id() = entry.executor_id;
  }
  status.set_timestamp(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  status.set_uuid(uuid);
  entry.queue.push_back(status);
  entry.latest = std::move(status);
  Changed();
  return uuid;
}

void FakeAgent::AddTask(const v1::FrameworkID& framework_id,
                        const v1::TaskInfo& info, v1::TaskState state) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry entry;
  entry.task.framework_id = framework_id;
  entry.task.info = info;
  entry.task.state = state;
  entry.backoff = options_.update_retry;
  if (info.has_executor()) entry.executor_id = info.executor().executor_id();
  if (frameworks_.count(framework_id.value()) == 0) {
    frameworks_[framework_id.value()].mutable_id()->CopyFrom(framework_id);
  }
  tasks_[TaskKey(framework_id.value(), info.task_id().value())] =
      std::move(entry);
  Changed();
}

std::string FakeAgent::SendUpdate(const v1::FrameworkID& framework_id,
                                  const v1::TaskID& task_id,
                                  v1::TaskState state,
                                  std::optional<v1::TaskStatus::Reason> reason,
                                  const std::string& message,
                                  v1::TaskStatus::Source source) {
  std::lock_guard<std::mutex> lock(mu_);
  return QueueUpdateLocked(framework_id, task_id, state, reason, message,
                           source);
}

void FakeAgent::SetHeartbeatsEnabled(bool enabled) {
  std::lock_guard<std::mutex> lock(mu_);
  heartbeats_enabled_ = enabled;
  if (enabled) next_heartbeat_ = absl::Now();
  Changed();
}

absl::Status FakeAgent::Send(v1::AgentCall call) {
  std::string stream_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!call.has_agent_id() && agent_id_.has_value()) {
      *call.mutable_agent_id() = *agent_id_;
    }
    stream_id = stream_id_;
  }
  absl::StatusOr<std::string> body = ToJson(call);
  if (!body.ok()) return body.status();
  http::Headers headers = {{"Content-Type", kJson}};
  if (!stream_id.empty()) headers.Set(kStreamIdHeader, stream_id);
  absl::StatusOr<http::Response> response =
      channel_.Post(headers, *body, absl::Now() + options_.call_timeout);
  if (!response.ok()) return response.status();
  return StatusFromHttp(response->status, response->body);
}

// ---- Worker thread ----------------------------------------------------------

bool FakeAgent::WorkerPost(const v1::AgentCall& call,
                           const std::string& stream_id, http::Client* client) {
  absl::StatusOr<std::string> body = ToJson(call);
  if (!body.ok()) return false;
  absl::StatusOr<http::Response> response =
      channel_.Post({{"Content-Type", kJson}, {kStreamIdHeader, stream_id}},
                    *body, absl::Now() + options_.request_timeout,
                    /*retry_unavailable=*/false, client);
  return response.ok() && response->status == 202;
}

void FakeAgent::WorkerLoop() {
  http::Client client;  // keep-alive for the worker's calls
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const absl::Time now = absl::Now();

    if (options_.auto_resubscribe && !subscribed_ && now >= resubscribe_at_) {
      resubscribe_at_ = absl::InfiniteFuture();
      lock.unlock();
      absl::StatusOr<v1::AgentID> subscribed;
      {
        std::lock_guard<std::mutex> subscribe_lock(subscribe_mu_);
        subscribed = SubscribeLocked();
      }
      lock.lock();
      if (!subscribed.ok() && !removed_ && !stopping_ && !disconnected_ &&
          !subscribed_) {
        resubscribe_at_ = absl::Now() + resubscribe_backoff_;
        resubscribe_backoff_ = std::min(resubscribe_backoff_ * 2,
                                        options_.max_resubscribe_backoff);
      }
      continue;
    }

    bool heartbeat = false;
    std::vector<Outgoing> updates;
    absl::Time wake = resubscribe_at_;
    if (subscribed_ && !end_.has_value()) {
      if (heartbeats_enabled_ && now >= next_heartbeat_) {
        heartbeat = true;
        next_heartbeat_ = now + heartbeat_interval_;
      }
      if (heartbeats_enabled_) wake = std::min(wake, next_heartbeat_);
      for (auto& [key, entry] : tasks_) {
        if (entry.queue.empty()) continue;
        if (!entry.head_sent || now >= entry.retry_at) {
          updates.push_back({entry.task.framework_id, entry.queue.front()});
          entry.head_sent = true;
          entry.retry_at = now + entry.backoff;
          entry.backoff = std::min(entry.backoff * 2, kMaxUpdateRetry);
        }
        wake = std::min(wake, entry.retry_at);
      }
    }
    if (!heartbeat && updates.empty()) {
      const uint64_t seen = changes_;
      while (!stopping_ && changes_ == seen && absl::Now() < wake) {
        WaitUntilTime(cv_, lock, wake);
      }
      continue;
    }

    v1::AgentCall call;
    if (agent_id_.has_value()) *call.mutable_agent_id() = *agent_id_;
    const std::string stream_id = stream_id_;
    lock.unlock();
    uint64_t heartbeats = 0;
    uint64_t sent = 0;
    if (heartbeat) {
      v1::AgentCall beat = call;
      beat.set_type(v1::AgentCall::HEARTBEAT);
      heartbeats += WorkerPost(beat, stream_id, &client) ? 1 : 0;
    }
    for (Outgoing& update : updates) {
      v1::AgentCall send = call;
      send.set_type(v1::AgentCall::UPDATE);
      *send.mutable_update()->mutable_framework_id() = update.framework_id;
      *send.mutable_update()->mutable_status() = std::move(update.status);
      sent += WorkerPost(send, stream_id, &client) ? 1 : 0;
    }
    lock.lock();
    heartbeats_sent_ += heartbeats;
    updates_sent_ += sent;
    Changed();
  }
}

// ---- What it has seen
// ---------------------------------------------------------

bool FakeAgent::subscribed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return subscribed_ && !end_.has_value();
}

std::optional<absl::Status> FakeAgent::stream_end() const {
  std::lock_guard<std::mutex> lock(mu_);
  return end_;
}

std::optional<v1::AgentID> FakeAgent::agent_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return agent_id_;
}

std::string FakeAgent::stream_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stream_id_;
}

v1::AgentEvent::Subscribed FakeAgent::last_subscribed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_subscribed_;
}

int FakeAgent::subscriptions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return subscriptions_;
}

std::vector<FakeTask> FakeAgent::tasks() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<FakeTask> tasks;
  for (const auto& [key, entry] : tasks_) {
    tasks.push_back(entry.task);
    tasks.back().unacknowledged.assign(entry.queue.begin(), entry.queue.end());
  }
  return tasks;
}

std::optional<FakeTask> FakeAgent::task(const v1::FrameworkID& framework_id,
                                        const v1::TaskID& task_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(TaskKey(framework_id.value(), task_id.value()));
  if (it == tasks_.end()) return std::nullopt;
  FakeTask task = it->second.task;
  task.unacknowledged.assign(it->second.queue.begin(), it->second.queue.end());
  return task;
}

std::vector<v1::TaskInfo> FakeAgent::launched_tasks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return launched_;
}

uint64_t FakeAgent::repeated_launches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return repeated_launches_;
}

std::vector<v1::AgentEvent::Kill> FakeAgent::kills() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kills_;
}

std::vector<v1::AgentEvent::Acknowledge> FakeAgent::acknowledgements() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acks_;
}

std::vector<v1::AgentEvent::ShutdownFramework> FakeAgent::shutdowns() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutdowns_;
}

std::vector<v1::AgentEvent::Reconcile> FakeAgent::reconciles() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reconciles_;
}

std::vector<v1::AgentEvent::Error> FakeAgent::errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

size_t FakeAgent::unacknowledged_updates() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t count = 0;
  for (const auto& [key, entry] : tasks_) count += entry.queue.size();
  return count;
}

uint64_t FakeAgent::stray_acknowledgements() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stray_acks_;
}

uint64_t FakeAgent::heartbeats_sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return heartbeats_sent_;
}

uint64_t FakeAgent::updates_sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return updates_sent_;
}

uint64_t FakeAgent::malformed_records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return malformed_records_;
}

absl::StatusOr<v1::AgentEvent> FakeAgent::WaitForEvent(
    const std::function<bool(const v1::AgentEvent&)>& predicate,
    absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    auto it = std::find_if(events_.begin(), events_.end(), predicate);
    if (it != events_.end()) {
      v1::AgentEvent event = std::move(*it);
      events_.erase(it);
      return event;
    }
    std::vector<std::string> queued;
    for (const v1::AgentEvent& e : events_) {
      queued.push_back(v1::AgentEvent::Type_Name(e.type()));
    }
    const std::string what =
        queued.empty() ? "none" : absl::StrJoin(queued, ",");
    if (generation_ == 0) {
      return absl::FailedPreconditionError("not subscribed");
    }
    if (end_.has_value()) {
      return absl::UnavailableError(
          absl::StrCat("the event stream ended (", end_->ToString(),
                       ") and no queued event matches; queued: ", what));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no matching event before the deadline; queued: ", what));
    }
    WaitUntilTime(cv_, lock, deadline);
  }
}

absl::StatusOr<v1::AgentEvent> FakeAgent::NextEvent(v1::AgentEvent::Type type,
                                                    absl::Time deadline) {
  absl::StatusOr<v1::AgentEvent> event = WaitForEvent(
      [type](const v1::AgentEvent& e) { return e.type() == type; }, deadline);
  if (!event.ok()) {
    return absl::Status(
        event.status().code(),
        absl::StrCat("waiting for ", v1::AgentEvent::Type_Name(type), ": ",
                     event.status().message()));
  }
  return event;
}

bool FakeAgent::WaitUntil(const std::function<bool()>& condition,
                          absl::Time deadline) const {
  while (true) {
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen = changes_;
    }
    if (condition()) return true;
    std::unique_lock<std::mutex> lock(mu_);
    while (changes_ == seen) {
      if (absl::Now() >= deadline) return false;
      WaitUntilTime(cv_, lock, deadline);
    }
  }
}

}  // namespace cairn::tests
