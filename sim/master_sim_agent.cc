// SimAgent: a simulated cairn-agent speaking docs/agent-protocol.md.

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "sim/master_sim_internal.h"

namespace cairn::sim::msim {

namespace {

constexpr absl::Duration kCallTimeout = absl::Seconds(3);
constexpr absl::Duration kUpdateRetry = absl::Seconds(2);
constexpr absl::Duration kMaxBackoff = absl::Seconds(2);

master::Resources ParseResources(const std::string& text) {
  absl::StatusOr<master::Resources> r = master::Resources::Parse(text);
  return r.ok() ? *r : master::Resources();
}

master::Resources TaskResources(const v1::TaskInfo& info) {
  absl::StatusOr<master::Resources> r =
      master::Resources::FromProto(info.resources());
  return r.ok() ? r->WithoutAllocationInfo() : master::Resources();
}

}  // namespace

SimAgent::SimAgent(Simulation* sim, int index, std::string hostname,
                   std::string resources)
    : sim_(sim),
      index_(index),
      hostname_(std::move(hostname)),
      total_(ParseResources(resources)),
      total_proto_(total_.ToProto()) {}

std::string SimAgent::Describe() const {
  return absl::StrFormat(
      "a%d id=%s up=%d partitioned=%d subscribing=%d subscribed=%d tasks=%d",
      index_, agent_id_, up_, partitioned(sim_->Now()), subscribing_,
      subscribed_, tasks_.size());
}

bool SimAgent::SubscribedTo(int master, uint64_t master_incarnation) const {
  return up_ && subscribed_ && channel_ != nullptr && !channel_->ended() &&
         channel_->master() == master &&
         channel_->master_incarnation() == master_incarnation &&
         !partitioned(sim_->Now());
}

bool SimAgent::HasQueuedUpdates() const {
  for (const auto& [key, task] : tasks_) {
    if (!task.queue.empty()) return true;
  }
  return false;
}

master::Resources SimAgent::Used() const {
  master::Resources used;
  for (const auto& [key, task] : tasks_) {
    if (!master::IsTerminalState(task.state)) used += TaskResources(task.info);
  }
  return used;
}

// ---- Lifecycle --------------------------------------------------------------

void SimAgent::Start() {
  if (up_) return;
  up_ = true;
  ++incarnation_;
  channel_.reset();
  subscribing_ = false;
  subscribed_ = false;
  stream_id_.clear();
  calls_.clear();
  for (auto& [key, task] : tasks_) task.head_sent = false;
  backoff_ = absl::Milliseconds(200);
  resubscribe_at_ = sim_->Now() + sim_->UniformMs(0, 300);
  next_master_ = static_cast<int>(sim_->Uniform(0, sim_->master_count() - 1));
  sim_->Trace(absl::StrCat("a", index_, " starts", agent_id_.empty() ? "" : " as ",
                           agent_id_));
  const uint64_t incarnation = incarnation_;
  sim_->After(sim_->UniformMs(50, 150), [this, incarnation] { Tick(incarnation); });
}

void SimAgent::Crash(bool lose_checkpoint) {
  if (!up_) return;
  if (lose_checkpoint) {
    // The work_dir is gone: no id, no tasks (their executors die with it).
    sim_->Trace(absl::StrCat("a", index_, " loses its checkpoint"));
    agent_id_.clear();
    tasks_.clear();
  }
  if (channel_ != nullptr) sim_->NotifyStreamClosed(channel_, stream_id_);
  up_ = false;
  ++incarnation_;
  channel_.reset();
  subscribing_ = false;
  subscribed_ = false;
  stream_id_.clear();
  calls_.clear();
}

void SimAgent::Partition(absl::Time until) { partitioned_until_ = until; }

void SimAgent::Tick(uint64_t incarnation) {
  if (!up_ || incarnation != incarnation_) return;
  const absl::Time now = sim_->Now();
  const bool partitioned_now = partitioned(now);

  // Calls without an answer fail (the HTTP client's timeout).
  std::vector<uint64_t> expired;
  for (const auto& [id, call] : calls_) {
    if (call.deadline <= now) expired.push_back(id);
  }
  for (uint64_t id : expired) {
    OnCallAnswer(id, Answer::Error(504, "timed out"));
    if (!up_ || incarnation != incarnation_) return;
  }

  if (subscribing_ && now - subscribe_sent_ > kCallTimeout) {
    AbandonStream("SUBSCRIBE timed out");
  }
  if (subscribed_) {
    const absl::Duration silence = heartbeat_interval_ * max_ping_timeouts_;
    if (now - last_record_ > silence) {
      AbandonStream("no record from the master");
    } else {
      if (now - last_call_ >= heartbeat_interval_) {
        v1::AgentCall call;
        call.set_type(v1::AgentCall::HEARTBEAT);
        call.mutable_agent_id()->set_value(agent_id_);
        SendCall(std::move(call), [](const Answer&) {});
      }
      for (auto& [key, task] : tasks_) {
        if (task.head_sent && now - task.head_sent_at > kUpdateRetry) {
          task.head_sent = false;
        }
      }
      SendAllHeads();
    }
  }
  if (!subscribed_ && !subscribing_ && now >= resubscribe_at_ &&
      !partitioned_now) {
    Subscribe();
  }
  if (!calm_) {
    std::vector<TaskKey> finished;
    for (const auto& [key, task] : tasks_) {
      if (!master::IsTerminalState(task.state) && task.finish_at <= now) {
        finished.push_back(key);
      }
    }
    for (const TaskKey& key : finished) {
      QueueUpdate(key, sim_->Chance(0.8) ? v1::TASK_FINISHED : v1::TASK_FAILED,
                  v1::TaskStatus::REASON_COMMAND_EXECUTOR_FAILED,
                  v1::TaskStatus::SOURCE_EXECUTOR, "the task ended");
    }
  }
  sim_->After(sim_->UniformMs(80, 150), [this, incarnation] { Tick(incarnation); });
}

// ---- Streams ----------------------------------------------------------------

void SimAgent::Subscribe() {
  subscribing_ = true;
  subscribed_ = false;
  subscribe_sent_ = sim_->Now();
  stream_id_.clear();
  ++serial_;
  channel_ = std::make_shared<Channel>(
      sim_, Endpoint{Endpoint::Kind::kAgent, index_, incarnation_, serial_});

  v1::AgentCall call;
  call.set_type(v1::AgentCall::SUBSCRIBE);
  v1::AgentCall::Subscribe* s = call.mutable_subscribe();
  v1::AgentInfo* info = s->mutable_agent_info();
  info->set_hostname(hostname_);
  info->set_port(5051);
  for (const v1::Resource& r : total_proto_) *info->add_resources() = r;
  s->set_version("sim");
  if (!agent_id_.empty()) {
    info->mutable_id()->set_value(agent_id_);
    call.mutable_agent_id()->set_value(agent_id_);
    std::set<std::string> frameworks;
    for (const auto& [key, task] : tasks_) {
      v1::Task* t = s->add_tasks();
      t->set_name(task.info.name());
      *t->mutable_task_id() = task.info.task_id();
      t->mutable_framework_id()->set_value(key.first);
      t->mutable_agent_id()->set_value(agent_id_);
      t->set_state(task.state);
      *t->mutable_resources() = task.info.resources();
      *t->add_statuses() = task.latest;
      if (!task.queue.empty()) {
        t->set_status_update_state(task.queue.front().state());
        t->set_status_update_uuid(task.queue.front().uuid());
      }
      if (task.framework.has_id() && frameworks.insert(key.first).second) {
        *s->add_frameworks() = task.framework;
      }
    }
  }
  const int m = next_master_;
  next_master_ = (next_master_ + 1) % sim_->master_count();
  sim_->SendAgentSubscribe(index_, m, call, channel_);
}

void SimAgent::AbandonStream(absl::string_view why) {
  sim_->Trace(absl::StrCat("a", index_, "#", serial_, " leaves its stream: ",
                           why));
  if (channel_ != nullptr) sim_->NotifyStreamClosed(channel_, stream_id_);
  channel_.reset();
  subscribing_ = false;
  subscribed_ = false;
  stream_id_.clear();
  for (auto& [key, task] : tasks_) task.head_sent = false;
  ScheduleResubscribe();
}

void SimAgent::ScheduleResubscribe() {
  const double jitter = 0.5 + sim_->Uniform(0, 1000) / 1000.0;
  resubscribe_at_ = sim_->Now() + backoff_ * jitter;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

void SimAgent::OnSubscribeAnswer(uint64_t serial, const Answer& answer) {
  if (serial != serial_ || !subscribing_) return;
  sim_->Trace(absl::StrCat("a", index_, "#", serial, " SUBSCRIBE answered ",
                           Short(answer)));
  if (answer.code == 200) {
    stream_id_ = answer.stream_id;
    last_record_ = sim_->Now();
    return;  // SUBSCRIBED follows on the stream
  }
  if (answer.code == 403) {
    sim_->Fail(absl::StrCat("agent ", index_, " (", agent_id_,
                            ") was refused with 403: ", answer.message));
    return;
  }
  if (answer.code == 400) {
    sim_->Fail(absl::StrCat("agent ", index_, "'s SUBSCRIBE was refused (400, ",
                            answer.field, "): ", answer.message));
    return;
  }
  if (answer.code == 307) {
    // Follow the redirect at once.
    int leader = 0;
    if (absl::SimpleAtoi(answer.field, &leader)) next_master_ = leader;
    AbandonStream("redirected");
    resubscribe_at_ = sim_->Now();
    return;
  }
  AbandonStream(absl::StrCat("SUBSCRIBE answered ", answer.code));
}

void SimAgent::OnStreamEnded(uint64_t serial) {
  if (serial != serial_ || channel_ == nullptr) return;
  sim_->Trace(absl::StrCat("a", index_, "#", serial, " stream ended"));
  channel_.reset();  // the master ended it: nothing to notify
  AbandonStream("the stream ended");
}

void SimAgent::OnEvent(uint64_t serial, const v1::AgentEvent& event) {
  if (serial != serial_ || channel_ == nullptr) return;
  last_record_ = sim_->Now();
  switch (event.type()) {
    case v1::AgentEvent::SUBSCRIBED: {
      const std::string& id = event.subscribed().agent_id().value();
      if (!agent_id_.empty() && id != agent_id_) {
        sim_->Fail(absl::StrCat("agent ", index_, " checkpointed ", agent_id_,
                                " but SUBSCRIBED names ", id));
        return;
      }
      agent_id_ = id;
      subscribing_ = false;
      subscribed_ = true;
      backoff_ = absl::Milliseconds(200);
      heartbeat_interval_ =
          absl::Seconds(event.subscribed().heartbeat_interval_seconds());
      if (heartbeat_interval_ <= absl::ZeroDuration()) {
        heartbeat_interval_ = absl::Seconds(1);
      }
      max_ping_timeouts_ =
          std::max<uint32_t>(1, event.subscribed().max_agent_ping_timeouts());
      for (auto& [key, task] : tasks_) task.head_sent = false;
      SendAllHeads();
      return;
    }
    case v1::AgentEvent::LAUNCH:
      if (subscribed_) Launch(event.launch());
      return;
    case v1::AgentEvent::KILL:
      if (subscribed_) {
        Kill(event.kill().framework_id().value(),
             event.kill().task_id().value(), v1::TaskStatus::REASON_TASK_KILLED_DURING_LAUNCH);
      }
      return;
    case v1::AgentEvent::ACKNOWLEDGE:
      if (subscribed_) Acknowledge(event.acknowledge());
      return;
    case v1::AgentEvent::SHUTDOWN_FRAMEWORK: {
      if (!subscribed_) return;
      const std::string& framework_id =
          event.shutdown_framework().framework_id().value();
      std::vector<TaskKey> keys;
      for (const auto& [key, task] : tasks_) {
        if (key.first == framework_id && !master::IsTerminalState(task.state)) {
          keys.push_back(key);
        }
      }
      for (const TaskKey& key : keys) {
        QueueUpdate(key, v1::TASK_KILLED, v1::TaskStatus::REASON_FRAMEWORK_REMOVED,
                    v1::TaskStatus::SOURCE_AGENT, "framework shut down");
      }
      return;
    }
    case v1::AgentEvent::RECONCILE:
      if (subscribed_) Reconcile(event.reconcile());
      return;
    case v1::AgentEvent::HEARTBEAT:
      return;
    case v1::AgentEvent::ERROR:
      if (event.error().code() == 403) {
        sim_->Fail(absl::StrCat("agent ", index_, " (", agent_id_,
                                ") got ERROR 403: ", event.error().message()));
        return;
      }
      AbandonStream(absl::StrCat("ERROR ", event.error().code(), ": ",
                                 event.error().message()));
      return;
    default:
      return;
  }
}

// ---- Calls ------------------------------------------------------------------

void SimAgent::SendCall(v1::AgentCall call,
                        std::function<void(const Answer&)> then) {
  if (channel_ == nullptr || stream_id_.empty() || channel_->master() < 0) {
    return;
  }
  const uint64_t id = next_call_++;
  calls_[id] = PendingCall{sim_->Now() + kCallTimeout, std::move(then)};
  last_call_ = sim_->Now();
  sim_->SendAgentCall(index_, channel_->master(), call, stream_id_, id);
}

void SimAgent::OnCallAnswer(uint64_t id, const Answer& answer) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  std::function<void(const Answer&)> then = std::move(it->second.then);
  calls_.erase(it);
  if (answer.code == 400) {
    sim_->Fail(absl::StrCat("agent ", index_, ": a call was refused (400, ",
                            answer.field, "): ", answer.message));
    return;
  }
  then(answer);
  if (answer.code == 409 && subscribed_) {
    AbandonStream("409: not the current stream");
  }
}

// ---- Tasks ------------------------------------------------------------------

void SimAgent::QueueUpdate(const TaskKey& key, v1::TaskState state,
                           v1::TaskStatus::Reason reason,
                           v1::TaskStatus::Source source,
                           absl::string_view message) {
  Task& task = tasks_.at(key);
  v1::TaskStatus status;
  *status.mutable_task_id() = task.info.task_id();
  status.set_state(state);
  status.set_source(source);
  status.set_reason(reason);
  status.set_message(std::string(message));
  if (!agent_id_.empty()) status.mutable_agent_id()->set_value(agent_id_);
  status.set_timestamp(absl::ToDoubleSeconds(sim_->Now() - absl::UnixEpoch()));
  status.set_uuid(sim_->RandomUuid());
  task.state = state;
  task.latest = status;
  if (master::IsTerminalState(state)) task.finish_at = absl::InfiniteFuture();
  task.queue.push_back(std::move(status));
  sim_->Trace(absl::StrCat("a", index_, " task ", key.second, " -> ",
                           v1::TaskState_Name(state), " (queued ",
                           task.queue.size(), ")"));
  if (task.queue.size() == 1) SendHead(key);
}

void SimAgent::SendHead(const TaskKey& key) {
  auto it = tasks_.find(key);
  if (it == tasks_.end() || !subscribed_) return;
  Task& task = it->second;
  if (task.queue.empty() || task.head_sent) return;
  task.head_sent = true;
  task.head_sent_at = sim_->Now();
  v1::AgentCall call;
  call.set_type(v1::AgentCall::UPDATE);
  call.mutable_agent_id()->set_value(agent_id_);
  call.mutable_update()->mutable_framework_id()->set_value(key.first);
  *call.mutable_update()->mutable_status() = task.queue.front();
  call.mutable_update()->mutable_status()->mutable_agent_id()->set_value(
      agent_id_);
  const std::string uuid = task.queue.front().uuid();
  SendCall(std::move(call), [this, key, uuid](const Answer& answer) {
    if (answer.ok()) return;  // ACKNOWLEDGE follows on the stream
    auto it = tasks_.find(key);
    if (it != tasks_.end() && !it->second.queue.empty() &&
        it->second.queue.front().uuid() == uuid) {
      it->second.head_sent = false;  // resent by the next tick
    }
  });
}

void SimAgent::SendAllHeads() {
  std::vector<TaskKey> keys;
  for (const auto& [key, task] : tasks_) {
    if (!task.queue.empty() && !task.head_sent) keys.push_back(key);
  }
  for (const TaskKey& key : keys) SendHead(key);
}

void SimAgent::Launch(const v1::AgentEvent::Launch& launch) {
  const std::string& framework_id = launch.framework_info().id().value();
  for (const v1::TaskInfo& info : launch.tasks()) {
    const TaskKey key{framework_id, info.task_id().value()};
    const bool known = tasks_.count(key) > 0;
    sim_->checker().OnLaunchReceived(index_, agent_id_, key,
                                     !known && ever_known_.count(key) > 0);
    if (known || ever_known_.count(key) > 0) continue;  // idempotent
    ever_known_.insert(key);
    Task task;
    task.info = info;
    task.framework = launch.framework_info();
    task.state = v1::TASK_STAGING;
    tasks_[key] = std::move(task);
    const master::Resources needs = TaskResources(info);
    if (!total_.Contains(Used() + needs)) {
      QueueUpdate(key, v1::TASK_ERROR, v1::TaskStatus::REASON_TASK_INVALID,
                  v1::TaskStatus::SOURCE_AGENT,
                  "the task does not fit in the agent's free resources");
      continue;
    }
    Task& t = tasks_.at(key);
    t.finish_at = sim_->Chance(0.3) ? absl::InfiniteFuture()
                                    : sim_->Now() + sim_->UniformMs(2000, 25000);
    QueueUpdate(key, v1::TASK_RUNNING, v1::TaskStatus::REASON_COMMAND_EXECUTOR_FAILED,
                v1::TaskStatus::SOURCE_EXECUTOR, "running");
  }
}

void SimAgent::Kill(const std::string& framework_id, const std::string& task_id,
                    v1::TaskStatus::Reason reason) {
  const TaskKey key{framework_id, task_id};
  auto it = tasks_.find(key);
  if (it == tasks_.end()) {
    ReportUnknown(framework_id, task_id);
    return;
  }
  if (master::IsTerminalState(it->second.state)) return;  // update queued
  QueueUpdate(key, v1::TASK_KILLED,
              it->second.state == v1::TASK_STAGING
                  ? reason
                  : v1::TaskStatus::REASON_EXECUTOR_TERMINATED,
              v1::TaskStatus::SOURCE_EXECUTOR, "killed");
}

void SimAgent::ReportUnknown(const std::string& framework_id,
                             const std::string& task_id) {
  const TaskKey key{framework_id, task_id};
  if (tasks_.count(key) > 0) return;
  // A record only to carry the update (no executor runs it).
  Task task;
  task.info.mutable_task_id()->set_value(task_id);
  task.state = v1::TASK_LOST;
  tasks_[key] = std::move(task);
  ever_known_.insert(key);
  QueueUpdate(key, v1::TASK_LOST, v1::TaskStatus::REASON_RECONCILIATION,
              v1::TaskStatus::SOURCE_AGENT, "task unknown to the agent");
}

void SimAgent::Acknowledge(const v1::AgentEvent::Acknowledge& ack) {
  const TaskKey key{ack.framework_id().value(), ack.task_id().value()};
  auto it = tasks_.find(key);
  if (it == tasks_.end()) return;
  Task& task = it->second;
  if (task.queue.empty() || task.queue.front().uuid() != ack.uuid()) return;
  task.queue.pop_front();
  task.head_sent = false;
  ForgetIfDone(key);
  SendHead(key);
}

void SimAgent::ForgetIfDone(const TaskKey& key) {
  auto it = tasks_.find(key);
  if (it == tasks_.end()) return;
  if (master::IsTerminalState(it->second.state) && it->second.queue.empty()) {
    sim_->Trace(absl::StrCat("a", index_, " forgets task ", key.second));
    tasks_.erase(it);
  }
}

void SimAgent::Reconcile(const v1::AgentEvent::Reconcile& reconcile) {
  std::set<TaskKey> listed;
  for (const auto& t : reconcile.tasks()) {
    const TaskKey key{t.framework_id().value(), t.task_id().value()};
    listed.insert(key);
    auto it = tasks_.find(key);
    if (it == tasks_.end()) {
      ReportUnknown(key.first, key.second);
      continue;
    }
    Task& task = it->second;
    if (master::IsTerminalState(task.state)) continue;  // its update is queued
    if (task.state != t.state() && task.queue.empty()) {
      QueueUpdate(key, task.state, v1::TaskStatus::REASON_RECONCILIATION,
                  v1::TaskStatus::SOURCE_AGENT, "reconciliation");
    }
  }
  std::vector<TaskKey> unlisted;
  for (const auto& [key, task] : tasks_) {
    if (!master::IsTerminalState(task.state) && listed.count(key) == 0) {
      unlisted.push_back(key);
    }
  }
  for (const TaskKey& key : unlisted) {
    sim_->Trace(absl::StrCat("a", index_, " kills unlisted task ", key.second));
    QueueUpdate(key, v1::TASK_KILLED, v1::TaskStatus::REASON_RECONCILIATION,
                v1::TaskStatus::SOURCE_AGENT, "not listed by the master");
  }
}

}  // namespace cairn::sim::msim
