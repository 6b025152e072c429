// SimFramework: a simulated scheduler on the Mesos v1 scheduler API.

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "sim/master_sim_internal.h"

namespace cairn::sim::msim {

namespace {

constexpr absl::Duration kCallTimeout = absl::Seconds(3);
constexpr absl::Duration kMaxBackoff = absl::Seconds(2);
// A scheduler keeps at most this many tasks alive.
constexpr int kMaxLiveTasks = 8;

v1::scheduler::Call NewCall(v1::scheduler::Call::Type type,
                            const std::string& framework_id) {
  v1::scheduler::Call call;
  call.set_type(type);
  if (!framework_id.empty()) {
    call.mutable_framework_id()->set_value(framework_id);
  }
  return call;
}

}  // namespace

SimFramework::SimFramework(Simulation* sim, int index, std::string name,
                           Kind kind, double failover_timeout,
                           bool partition_aware)
    : sim_(sim),
      index_(index),
      name_(std::move(name)),
      kind_(kind),
      failover_timeout_(failover_timeout),
      partition_aware_(partition_aware) {}

std::string SimFramework::Describe() const {
  return absl::StrFormat(
      "f%d id=%s gone=%d torn_down=%d away=%d subscribing=%d subscribed=%d "
      "offers=%d acks=%d",
      index_, framework_id_, gone_, torn_down_, away_, subscribing_,
      subscribed_,
      offers_.size(), acks_.size());
}

bool SimFramework::SubscribedTo(int master, uint64_t master_incarnation) const {
  return subscribed_ && channel_ != nullptr && !channel_->ended() &&
         channel_->master() == master &&
         channel_->master_incarnation() == master_incarnation;
}

void SimFramework::Start() {
  ++incarnation_;
  resubscribe_at_ = sim_->Now() + sim_->UniformMs(0, 500);
  next_master_ = static_cast<int>(sim_->Uniform(0, sim_->master_count() - 1));
  const absl::Time now = sim_->Now();
  switch (kind_) {
    case Kind::kTeardown:
      teardown_at_ = now + sim_->UniformMs(5000, 25000);
      break;
    case Kind::kVanishing:
      disconnect_at_ = now + sim_->UniformMs(3000, 20000);
      break;
    case Kind::kFlaky:
      disconnect_at_ = now + sim_->UniformMs(2000, 10000);
      break;
    case Kind::kSteady:
      break;
  }
  sim_->After(sim_->UniformMs(50, 150), [this] { Tick(); });
}

void SimFramework::Tick() {
  if (gone_) return;
  const absl::Time now = sim_->Now();

  std::vector<uint64_t> expired;
  for (const auto& [id, call] : calls_) {
    if (call.deadline <= now) expired.push_back(id);
  }
  for (uint64_t id : expired) OnCallAnswer(id, Answer::Error(504, "timed out"));
  if (gone_) return;

  if (away_) {
    if (now >= return_at_) {
      away_ = false;
      resubscribe_at_ = now;
      sim_->Trace(absl::StrCat("f", index_, " comes back"));
    }
  } else {
    if (subscribing_ && now - subscribe_sent_ > kCallTimeout) {
      Disconnect("SUBSCRIBE timed out", /*notify=*/true);
      ScheduleResubscribe();
    }
    if (!subscribed_ && !subscribing_ && now >= resubscribe_at_) Subscribe();
    if (subscribed_) {
      if (!calm_ && now >= teardown_at_) {
        teardown_at_ = absl::InfiniteFuture();
        want_teardown_ = true;
      }
      if (want_teardown_ && !teardown_in_flight_) {
        teardown_in_flight_ = true;
        sim_->checker().OnTeardownSent(framework_id_);
        SendCall(NewCall(v1::scheduler::Call::TEARDOWN, framework_id_),
                 [this](const Answer& answer) {
                   teardown_in_flight_ = false;
                   if (answer.ok()) {
                     torn_down_ = true;
                     gone_ = true;
                     sim_->Trace(absl::StrCat("f", index_, " is torn down"));
                     Disconnect("torn down", /*notify=*/true);
                   }
                 });
      }
    }
    if (subscribed_ && !calm_ && now >= disconnect_at_) {
      disconnect_at_ = absl::InfiniteFuture();
      if (kind_ == Kind::kVanishing) {
        sim_->Trace(absl::StrCat("f", index_, " vanishes for good"));
        Disconnect("vanishing", /*notify=*/true);
        gone_ = true;
        return;
      }
      // Flaky: back before its failover timeout, mostly.
      const double factor = sim_->Chance(0.7)
                                ? 0.2 + sim_->Uniform(0, 500) / 1000.0
                                : 1.3 + sim_->Uniform(0, 700) / 1000.0;
      const absl::Duration away = absl::Seconds(failover_timeout_ * factor);
      sim_->Trace(absl::StrFormat("f%d disconnects for %.2fs (failover %gs)",
                                  index_, absl::ToDoubleSeconds(away),
                                  failover_timeout_));
      Disconnect("going away", /*notify=*/true);
      away_ = true;
      return_at_ = now + away;
      disconnect_at_ = return_at_ + sim_->UniformMs(3000, 12000);
    }
    if (subscribed_) {
      std::vector<std::string> due;
      for (const auto& [id, held] : offers_) {
        if (held.decide_at <= now) due.push_back(id);
      }
      for (const std::string& id : due) {
        if (!subscribed_) break;
        DecideOffer(id);
      }
      while (subscribed_ && !acks_.empty()) {
        auto it = std::min_element(
            acks_.begin(), acks_.end(),
            [](const PendingAck& a, const PendingAck& b) { return a.due < b.due; });
        if (it->due > now) break;
        const v1::TaskStatus status = it->status;
        acks_.erase(it);
        v1::scheduler::Call call =
            NewCall(v1::scheduler::Call::ACKNOWLEDGE, framework_id_);
        v1::scheduler::Call::Acknowledge* ack = call.mutable_acknowledge();
        *ack->mutable_agent_id() = status.agent_id();
        *ack->mutable_task_id() = status.task_id();
        ack->set_uuid(status.uuid());
        SendCall(std::move(call), [](const Answer&) {});
      }
      if (!calm_ && subscribed_) {
        MaybeKill();
        MaybeReconcile();
      }
    }
  }
  sim_->After(sim_->UniformMs(80, 200), [this] { Tick(); });
}

// ---- Streams ----------------------------------------------------------------

void SimFramework::Subscribe() {
  subscribing_ = true;
  subscribed_ = false;
  subscribe_sent_ = sim_->Now();
  stream_id_.clear();
  ++serial_;
  channel_ = std::make_shared<Channel>(
      sim_, Endpoint{Endpoint::Kind::kFramework, index_, incarnation_, serial_});
  v1::scheduler::Call call =
      NewCall(v1::scheduler::Call::SUBSCRIBE, framework_id_);
  v1::FrameworkInfo* info = call.mutable_subscribe()->mutable_framework_info();
  info->set_user("sim");
  info->set_name(name_);
  info->set_principal(absl::StrCat("principal-", name_));
  info->set_failover_timeout(failover_timeout_);
  info->set_checkpoint(true);
  if (partition_aware_) {
    info->add_capabilities()->set_type(
        v1::FrameworkInfo::Capability::PARTITION_AWARE);
  }
  if (!framework_id_.empty()) info->mutable_id()->set_value(framework_id_);
  const int m = next_master_;
  next_master_ = (next_master_ + 1) % sim_->master_count();
  sim_->SendFrameworkSubscribe(index_, m, call, channel_);
}

void SimFramework::Disconnect(absl::string_view why, bool notify) {
  sim_->Trace(absl::StrCat("f", index_, "#", serial_, " leaves its stream: ",
                           why));
  if (channel_ != nullptr) {
    if (notify) {
      sim_->NotifyStreamClosed(channel_, stream_id_);
    } else {
      channel_->Abandon();
    }
  }
  channel_.reset();
  subscribing_ = false;
  subscribed_ = false;
  stream_id_.clear();
  DropOffers();
  // The master redelivers what was not acknowledged.
  acks_.clear();
  calls_.clear();
  teardown_in_flight_ = false;
  ++incarnation_;
}

void SimFramework::ScheduleResubscribe() {
  const double jitter = 0.5 + sim_->Uniform(0, 1000) / 1000.0;
  resubscribe_at_ = sim_->Now() + backoff_ * jitter;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

void SimFramework::DropOffers() {
  for (const auto& [id, held] : offers_) sim_->checker().OnOfferUsed(id);
  offers_.clear();
}

void SimFramework::OnSubscribeAnswer(uint64_t serial, const Answer& answer) {
  if (serial != serial_ || !subscribing_) return;
  sim_->Trace(absl::StrCat("f", index_, "#", serial, " SUBSCRIBE answered ",
                           Short(answer)));
  if (answer.code == 200) {
    stream_id_ = answer.stream_id;
    return;  // SUBSCRIBED follows on the stream
  }
  if (answer.code == 403 && !framework_id_.empty()) {
    // The framework is gone (removed after its failover timeout).
    refused_ = true;
    sim_->Trace(absl::StrCat("f", index_, " is refused: ", answer.message));
    Disconnect("refused", /*notify=*/false);
    gone_ = true;
    return;
  }
  if (answer.code >= 400 && answer.code < 500) {
    sim_->Fail(absl::StrCat("framework ", index_, "'s SUBSCRIBE was refused (",
                            answer.code, ", ", answer.field,
                            "): ", answer.message));
    return;
  }
  Disconnect(absl::StrCat("SUBSCRIBE answered ", answer.code),
             /*notify=*/false);
  if (answer.code == 307) {
    // Follow the redirect at once.
    int leader = 0;
    if (absl::SimpleAtoi(answer.field, &leader)) next_master_ = leader;
    resubscribe_at_ = sim_->Now();
    return;
  }
  ScheduleResubscribe();
}

void SimFramework::OnStreamEnded(uint64_t serial) {
  if (serial != serial_ || channel_ == nullptr) return;
  Disconnect("the stream ended", /*notify=*/false);
  ScheduleResubscribe();
}

void SimFramework::OnEvent(uint64_t serial, const v1::scheduler::Event& event) {
  if (serial != serial_ || channel_ == nullptr) return;
  switch (event.type()) {
    case v1::scheduler::Event::SUBSCRIBED: {
      const std::string& id = event.subscribed().framework_id().value();
      if (!framework_id_.empty() && id != framework_id_) {
        sim_->Fail(absl::StrCat("framework ", index_, " resubscribed as ",
                                framework_id_, " but SUBSCRIBED names ", id));
        return;
      }
      framework_id_ = id;
      subscribing_ = false;
      subscribed_ = true;
      backoff_ = absl::Milliseconds(200);
      next_reconcile_ = sim_->Now() + sim_->UniformMs(0, 1000);
      return;
    }
    case v1::scheduler::Event::OFFERS:
      for (const v1::Offer& offer : event.offers().offers()) {
        sim_->checker().OnOfferReceived(index_, offer);
        const absl::Duration hold = sim_->Chance(0.1)
                                        ? sim_->UniformMs(1500, 5000)
                                        : sim_->UniformMs(0, 400);
        offers_[offer.id().value()] = HeldOffer{offer, sim_->Now() + hold};
      }
      return;
    case v1::scheduler::Event::RESCIND:
      offers_.erase(event.rescind().offer_id().value());
      return;
    case v1::scheduler::Event::UPDATE:
      OnUpdate(event.update().status());
      return;
    case v1::scheduler::Event::ERROR:
      Disconnect(absl::StrCat("ERROR: ", event.error().message()),
                 /*notify=*/true);
      ScheduleResubscribe();
      return;
    default:
      return;
  }
}

// ---- Calls ------------------------------------------------------------------

void SimFramework::SendCall(v1::scheduler::Call call,
                            std::function<void(const Answer&)> then) {
  if (channel_ == nullptr || stream_id_.empty() || channel_->master() < 0) {
    return;
  }
  const uint64_t id = next_call_++;
  calls_[id] = PendingCall{sim_->Now() + kCallTimeout, std::move(then)};
  sim_->SendFrameworkCall(index_, channel_->master(), call, stream_id_, id);
}

void SimFramework::OnCallAnswer(uint64_t id, const Answer& answer) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  std::function<void(const Answer&)> then = std::move(it->second.then);
  calls_.erase(it);
  then(answer);
  if (gone_) return;
  const bool stale_stream =
      answer.code == 403 ||
      (answer.code == 400 && answer.field == "Mesos-Stream-Id");
  if (stale_stream) {
    if (subscribed_) {
      Disconnect(absl::StrCat(answer.code, ": ", answer.message),
                 /*notify=*/true);
      ScheduleResubscribe();
    }
    return;
  }
  if (answer.code == 400) {
    sim_->Fail(absl::StrCat("framework ", index_, ": a call was refused (400, ",
                            answer.field, "): ", answer.message));
  }
}

// ---- Behaviour --------------------------------------------------------------

void SimFramework::DecideOffer(const std::string& offer_id) {
  auto found = offers_.find(offer_id);
  if (found == offers_.end()) return;
  const v1::Offer offer = found->second.offer;
  offers_.erase(found);
  sim_->checker().OnOfferUsed(offer_id);

  int live = 0;
  for (const auto& [id, task] : tasks_) {
    if (!task.terminal && !task.transient_terminal) ++live;
  }
  v1::scheduler::Call call;
  if (!calm_ && live < kMaxLiveTasks && sim_->Chance(0.7)) {
    // Launch 1-3 small tasks from the offer's cpus and mem.
    const v1::Resource* cpus = nullptr;
    const v1::Resource* mem = nullptr;
    for (const v1::Resource& r : offer.resources()) {
      if (r.name() == "cpus") cpus = &r;
      if (r.name() == "mem") mem = &r;
    }
    double cpus_left = cpus != nullptr ? cpus->scalar().value() : 0;
    double mem_left = mem != nullptr ? mem->scalar().value() : 0;
    call = NewCall(v1::scheduler::Call::ACCEPT, framework_id_);
    v1::scheduler::Call::Accept* accept = call.mutable_accept();
    *accept->add_offer_ids() = offer.id();
    accept->mutable_filters()->set_refuse_seconds(
        sim_->Uniform(1, 10) / 10.0);
    v1::Offer::Operation* op = accept->add_operations();
    op->set_type(v1::Offer::Operation::LAUNCH);
    std::vector<std::string> ids;
    const int64_t n = sim_->Uniform(1, 3);
    for (int64_t i = 0; i < n && cpus != nullptr && mem != nullptr; ++i) {
      const double c = sim_->Uniform(1, 10) / 10.0;
      const double m = 32.0 * sim_->Uniform(1, 8);
      if (c > cpus_left + 1e-9 || m > mem_left + 1e-9) break;
      cpus_left -= c;
      mem_left -= m;
      v1::TaskInfo* task = op->mutable_launch()->add_task_infos();
      const std::string task_id = absl::StrCat(name_, "-t", next_task_++);
      task->set_name(task_id);
      task->mutable_task_id()->set_value(task_id);
      *task->mutable_agent_id() = offer.agent_id();
      v1::Resource* rc = task->add_resources();
      *rc = *cpus;
      rc->mutable_scalar()->set_value(c);
      v1::Resource* rm = task->add_resources();
      *rm = *mem;
      rm->mutable_scalar()->set_value(m);
      task->mutable_command()->set_value("sleep 1000");
      ids.push_back(task_id);
      TaskView& view = tasks_[task_id];
      view.agent_id = offer.agent_id().value();
    }
    if (!ids.empty()) {
      sim_->Trace(absl::StrCat("f", index_, " launches ", ids.size(),
                               " tasks on ", offer.agent_id().value()));
      SendCall(std::move(call), [this, ids](const Answer& answer) {
        if (!answer.ok()) return;  // outcome unknown: updates will tell
        for (const std::string& id : ids) tasks_[id].accepted = true;
        sim_->checker().OnAcceptAnswered(index_, framework_id_, ids);
      });
      return;
    }
  }
  if (sim_->Chance(0.5)) {
    call = NewCall(v1::scheduler::Call::DECLINE, framework_id_);
    *call.mutable_decline()->add_offer_ids() = offer.id();
    call.mutable_decline()->mutable_filters()->set_refuse_seconds(
        sim_->Uniform(1, 20) / 10.0);
  } else {
    // ACCEPT without operations: a decline.
    call = NewCall(v1::scheduler::Call::ACCEPT, framework_id_);
    *call.mutable_accept()->add_offer_ids() = offer.id();
  }
  SendCall(std::move(call), [](const Answer&) {});
}

void SimFramework::OnUpdate(const v1::TaskStatus& status) {
  sim_->checker().OnUpdateReceived(index_, framework_id_, status);
  TaskView& view = tasks_[status.task_id().value()];
  const bool terminal = master::IsTerminalState(status.state());
  if (status.uuid().empty()) {
    if (terminal) view.transient_terminal = true;
    return;
  }
  view.last_state = status.state();
  if (terminal && !view.terminal) {
    view.terminal = true;
    view.terminal_state = status.state();
  }
  // Acknowledge, usually soon, sometimes late, sometimes only a later copy.
  const double r = sim_->Uniform(0, 99) / 100.0;
  if (r < 0.1) return;
  const absl::Duration delay =
      r < 0.8 ? sim_->UniformMs(0, 200) : sim_->UniformMs(1000, 3000);
  acks_.push_back(PendingAck{sim_->Now() + delay, status});
}

void SimFramework::MaybeKill() {
  const absl::Time now = sim_->Now();
  if (now < next_kill_) return;
  next_kill_ = now + sim_->UniformMs(1000, 4000);
  if (!sim_->Chance(0.4)) return;
  std::vector<std::string> candidates;
  for (const auto& [id, task] : tasks_) {
    // Running, or launched and not heard of yet (a kill during launch).
    if (!task.terminal && !task.transient_terminal &&
        (task.last_state == v1::TASK_RUNNING || task.accepted)) {
      candidates.push_back(id);
    }
  }
  if (candidates.empty()) return;
  const std::string id =
      candidates[sim_->Uniform(0, static_cast<int64_t>(candidates.size()) - 1)];
  const TaskView& task = tasks_[id];
  v1::scheduler::Call call = NewCall(v1::scheduler::Call::KILL, framework_id_);
  call.mutable_kill()->mutable_task_id()->set_value(id);
  call.mutable_kill()->mutable_agent_id()->set_value(task.agent_id);
  SendCall(std::move(call), [](const Answer&) {});
}

void SimFramework::MaybeReconcile() {
  const absl::Time now = sim_->Now();
  if (now < next_reconcile_) return;
  next_reconcile_ = now + sim_->UniformMs(3000, 8000);
  v1::scheduler::Call call =
      NewCall(v1::scheduler::Call::RECONCILE, framework_id_);
  if (sim_->Chance(0.5)) {
    for (const auto& [id, task] : tasks_) {
      if (task.terminal) continue;
      v1::scheduler::Call::Reconcile::Task* t =
          call.mutable_reconcile()->add_tasks();
      t->mutable_task_id()->set_value(id);
      if (!task.agent_id.empty()) t->mutable_agent_id()->set_value(task.agent_id);
    }
  }
  SendCall(std::move(call), [](const Answer&) {});
}

}  // namespace cairn::sim::msim
