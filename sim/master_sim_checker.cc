// Checker: the master simulation's invariants (see master_sim.h).
//
//  1. No resources offered twice: per agent, the offers frameworks hold
//     (sent by a leader, not yet rescinded, used or dropped with their
//     stream) plus what the log's live tasks use never exceed the agent's
//     total; no offer id is sent or received twice; an offer is sent only
//     once its OffersCreated is committed.
//  2. No task lost or duplicated: a task is launched by at most one
//     TasksLaunched; LAUNCH is sent only for committed, live tasks and to
//     their agent; no task runs on two agents, nor twice on one; at the
//     quiet end every task the log says is live runs on exactly its agent
//     in the log's state, every task the log says ended runs nowhere, and
//     every connected framework was told each of its tasks' last state.
//  3. Per framework and task, reliable UPDATEs (with a uuid) are
//     consistent: never TASK_STAGING, a uuid always with one state, after a
//     terminal update only that same update again; no reconciliation
//     answer says a task lives after a terminal update; a reliable update
//     is sent only while the log holds it unacknowledged.
//  4. failover_timeout: a framework is removed only if it tore itself down
//     or was disconnected in the log past its deadline and, as far as the
//     simulation saw, disconnected for at least failover_timeout (never
//     while connected); one disconnected for good is removed within
//     failover_timeout + slack once a leader exists.
//  5. (In the world) every master's state equals the fold of its prefix,
//     and invariants hold.

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sim/master_sim_internal.h"

namespace cairn::sim::msim {

namespace {

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.3fs", absl::ToDoubleSeconds(d));
}

master::Resources Stripped(
    const google::protobuf::RepeatedPtrField<v1::Resource>& resources) {
  absl::StatusOr<master::Resources> r = master::Resources::FromProto(resources);
  return r.ok() ? r->WithoutAllocationInfo() : master::Resources();
}

}  // namespace

// ---- The log ----------------------------------------------------------------

void Checker::BeforeApply(const v1::Event& event, const MasterState& before) {
  removing_.reset();
  if (event.has_framework_removed()) {
    const v1::FrameworkRecord* f =
        before.FindFramework(event.framework_removed().framework_id().value());
    if (f != nullptr) removing_ = *f;
  }
}

void Checker::ReplayLog(const std::vector<const v1::Event*>& applied) {
  launched_.clear();
  log_state_.clear();
  replaying_ = true;
  for (const v1::Event* event : applied) AfterApply(*event, true);
  replaying_ = false;
}

void Checker::AfterApply(const v1::Event& event, bool applied) {
  offers_dirty_ = true;
  if (!applied) return;
  log_changed_ = true;
  if (replaying_) {
    if (event.has_tasks_launched()) {
      for (const v1::TaskInfo& task : event.tasks_launched().tasks()) {
        const TaskKey key{event.tasks_launched().framework_id().value(),
                          task.task_id().value()};
        launched_[key] = task.agent_id().value();
        log_state_[key] = v1::TASK_STAGING;
      }
    } else if (event.has_task_status_updated()) {
      const v1::TaskStatusUpdated& u = event.task_status_updated();
      log_state_[{u.framework_id().value(), u.status().task_id().value()}] =
          u.status().state();
    }
    return;
  }
  MasterSimStats& stats = sim_->stats();
  const absl::Time time = master::ToTime(event.time());
  if (event.has_tasks_launched()) {
    const v1::TasksLaunched& launched = event.tasks_launched();
    for (const v1::TaskInfo& task : launched.tasks()) {
      const TaskKey key{launched.framework_id().value(),
                        task.task_id().value()};
      if (launched_.count(key) > 0) {
        sim_->Fail(absl::StrCat("task ", key.second, " of ", key.first,
                                " is launched a second time at position ",
                                event.position()));
        return;
      }
      launched_[key] = task.agent_id().value();
      log_state_[key] = v1::TASK_STAGING;
      accepted_unlaunched_.erase(key);
      ++stats.tasks_launched;
    }
  } else if (event.has_task_status_updated()) {
    const v1::TaskStatusUpdated& u = event.task_status_updated();
    const TaskKey key{u.framework_id().value(), u.status().task_id().value()};
    log_state_[key] = u.status().state();
    if (master::IsTerminalState(u.status().state())) ++stats.tasks_terminal;
  } else if (event.has_agent_unreachable()) {
    ++stats.agents_unreachable;
  } else if (event.has_framework_removed()) {
    ++stats.frameworks_removed;
    const std::string& id = event.framework_removed().framework_id().value();
    auto life = lives_.find(id);
    if (life != lives_.end() && life->second.teardown_sent <= time) return;
    // Log-level: removed only past its failover deadline, disconnected.
    if (!removing_.has_value() ||
        removing_->state() != v1::FrameworkRecord::DISCONNECTED) {
      sim_->Fail(absl::StrCat("framework ", id,
                              " is removed without a teardown while not "
                              "disconnected in the log"));
      return;
    }
    const absl::Time deadline = master::ToTime(removing_->failover_deadline());
    if (time < deadline) {
      sim_->Fail(absl::StrCat("framework ", id, " is removed ",
                              Seconds(deadline - time),
                              " before its failover deadline"));
      return;
    }
    if (life == lives_.end() || life->second.index < 0) return;
    // Simulation-level: disconnected for failover_timeout, as the
    // simulation saw its streams.
    const double timeout =
        sim_->framework(life->second.index)->failover_timeout();
    absl::Time disconnected = absl::InfinitePast();
    for (const auto& [open, close] : life->second.intervals) {
      if (open <= time && time < close) {
        sim_->Fail(absl::StrCat("framework ", id,
                                " is removed while connected (since ",
                                Seconds(time - open), ")"));
        return;
      }
      if (close <= time) disconnected = std::max(disconnected, close);
    }
    if (time - disconnected < absl::Seconds(timeout)) {
      sim_->Fail(absl::StrCat("framework ", id, " is removed ",
                              Seconds(time - disconnected),
                              " after it disconnected; failover_timeout is ",
                              timeout, "s"));
    }
  }
}

// ---- Master -> actor --------------------------------------------------------

void Checker::OnAgentEventSent(const MasterState& committed, int agent,
                               const std::string& agent_id,
                               const v1::AgentEvent& event) {
  if (event.type() == v1::AgentEvent::LAUNCH) {
    const std::string& framework_id =
        event.launch().framework_info().id().value();
    for (const v1::TaskInfo& task : event.launch().tasks()) {
      const v1::TaskRecord* t =
          committed.FindTask(framework_id, task.task_id().value());
      if (t == nullptr) {
        sim_->Fail(absl::StrCat("LAUNCH of ", task.task_id().value(),
                                " to agent ", agent,
                                " before its TasksLaunched is committed"));
        return;
      }
      if (master::IsTerminalState(t->task().state())) {
        sim_->Fail(absl::StrCat("LAUNCH of ", task.task_id().value(),
                                ", which the log says ended as ",
                                v1::TaskState_Name(t->task().state())));
        return;
      }
      if (t->task().agent_id().value() != agent_id) {
        sim_->Fail(absl::StrCat("LAUNCH of ", task.task_id().value(),
                                " to agent ", agent_id, "; the log places it on ",
                                t->task().agent_id().value()));
        return;
      }
    }
  } else if (event.type() == v1::AgentEvent::ACKNOWLEDGE) {
    const v1::AgentEvent::Acknowledge& ack = event.acknowledge();
    const v1::TaskRecord* t =
        committed.FindTask(ack.framework_id().value(), ack.task_id().value());
    if (t == nullptr || master::IsTerminalState(t->task().state())) return;
    if (t->task().agent_id().value() != agent_id) return;  // rule 3/4
    bool in_log = t->latest_agent_uuid() == ack.uuid();
    for (const auto& s : t->unacknowledged()) in_log |= s.uuid() == ack.uuid();
    for (const auto& s : t->task().statuses()) in_log |= s.uuid() == ack.uuid();
    if (!in_log) {
      sim_->Fail(absl::StrCat("ACKNOWLEDGE of update ", UuidHex(ack.uuid()),
                              " of live task ", ack.task_id().value(),
                              " to agent ", agent,
                              ", which the committed log does not hold"));
    }
  }
}

std::string Checker::FrameworkIdOf(const Channel* channel) const {
  auto it = channel_framework_id_.find(channel);
  return it == channel_framework_id_.end() ? "" : it->second;
}

void Checker::OnFrameworkEventSent(const MasterState& committed,
                                   const Channel* channel, int framework,
                                   const v1::scheduler::Event& event) {
  switch (event.type()) {
    case v1::scheduler::Event::SUBSCRIBED: {
      const std::string& id = event.subscribed().framework_id().value();
      auto [it, inserted] = framework_index_.emplace(id, framework);
      if (!inserted && it->second != framework) {
        sim_->Fail(absl::StrCat("framework id ", id, " given to schedulers ",
                                it->second, " and ", framework));
        return;
      }
      channel_framework_id_[channel] = id;
      if (!channel->ended()) {
        FrameworkLife& life = lives_[id];
        life.index = framework;
        life.open.insert(channel);
        intervals_of_[channel] = {id, life.intervals.size()};
        life.intervals.emplace_back(sim_->Now(), absl::InfiniteFuture());
      }
      const v1::FrameworkRecord* f = committed.FindFramework(id);
      if (f == nullptr || f->state() != v1::FrameworkRecord::CONNECTED) {
        sim_->Fail(absl::StrCat("SUBSCRIBED for framework ", id,
                                " before its subscription is committed"));
      }
      return;
    }
    case v1::scheduler::Event::OFFERS:
      for (const v1::Offer& offer : event.offers().offers()) {
        const std::string& id = offer.id().value();
        if (!offers_sent_.insert(id).second) {
          sim_->Fail(absl::StrCat("offer id ", id, " is sent twice"));
          return;
        }
        ++sim_->stats().offers_sent;
        const v1::OfferRecord* record = committed.FindOffer(id);
        if (record == nullptr) {
          sim_->Fail(absl::StrCat("offer ", id,
                                  " is sent before OffersCreated is committed"));
          return;
        }
        if (record->offer().framework_id().value() != FrameworkIdOf(channel) ||
            record->offer().agent_id().value() != offer.agent_id().value()) {
          sim_->Fail(absl::StrCat("offer ", id,
                                  " is sent to the wrong framework or differs "
                                  "from the log"));
          return;
        }
        if (channel->ended()) continue;
        held_[id] = HeldOffer{offer.agent_id().value(),
                              Stripped(offer.resources()), channel};
        offers_dirty_ = true;
      }
      return;
    case v1::scheduler::Event::RESCIND:
      ReleaseOffer(event.rescind().offer_id().value());
      return;
    case v1::scheduler::Event::UPDATE: {
      const v1::TaskStatus& status = event.update().status();
      if (status.uuid().empty()) return;  // not recorded
      const std::string framework_id = FrameworkIdOf(channel);
      const v1::TaskRecord* t =
          committed.FindTask(framework_id, status.task_id().value());
      bool pending = false;
      if (t != nullptr) {
        for (const auto& s : t->unacknowledged()) {
          pending |= s.uuid() == status.uuid();
        }
      }
      if (!pending) {
        sim_->Fail(absl::StrCat("UPDATE ", UuidHex(status.uuid()), " (",
                                v1::TaskState_Name(status.state()),
                                ") of task ", status.task_id().value(),
                                " is sent while the committed log does not "
                                "hold it unacknowledged"));
      }
      return;
    }
    default:
      return;
  }
}

void Checker::OnChannelClosed(const Channel* channel) {
  std::vector<std::string> released;
  for (const auto& [id, held] : held_) {
    if (held.channel == channel) released.push_back(id);
  }
  for (const std::string& id : released) ReleaseOffer(id);
  auto it = intervals_of_.find(channel);
  if (it == intervals_of_.end()) return;
  const auto [id, index] = it->second;
  intervals_of_.erase(it);
  FrameworkLife& life = lives_[id];
  life.intervals[index].second = sim_->Now();
  life.open.erase(channel);
  if (life.open.empty()) life.disconnected_at = sim_->Now();
}


// ---- Actor side ---------------------------------------------------------------

void Checker::ReleaseOffer(const std::string& offer_id) {
  if (held_.erase(offer_id) > 0) offers_dirty_ = true;
}

void Checker::OnOfferReceived(int framework, const v1::Offer& offer) {
  if (!offers_received_[framework].insert(offer.id().value()).second) {
    sim_->Fail(absl::StrCat("framework ", framework, " received offer ",
                            offer.id().value(), " twice"));
  }
}

void Checker::OnOfferUsed(const std::string& offer_id) {
  ReleaseOffer(offer_id);
}

void Checker::OnUpdateReceived(int framework, const std::string& framework_id,
                               const v1::TaskStatus& status) {
  ++sim_->stats().updates_delivered;
  UpdateSequence& seq = sequences_[{framework, status.task_id().value()}];
  const std::string what =
      absl::StrCat("framework ", framework, " (", framework_id, ") task ",
                   status.task_id().value(), ": ");
  const v1::TaskState state = status.state();
  if (status.uuid().empty()) {
    // A reconciliation answer or a refused launch: never "alive" after a
    // terminal update.
    if (!seq.terminal_uuid.empty() && !master::IsTerminalState(state) &&
        state != v1::TASK_UNKNOWN) {
      sim_->Fail(absl::StrCat(what, "reported ", v1::TaskState_Name(state),
                              " after the terminal ",
                              v1::TaskState_Name(seq.terminal_state)));
    }
    return;
  }
  if (state == v1::TASK_STAGING) {
    sim_->Fail(absl::StrCat(what, "an UPDATE reports TASK_STAGING"));
    return;
  }
  auto [it, inserted] = seq.uuids.emplace(status.uuid(), state);
  if (!inserted && it->second != state) {
    sim_->Fail(absl::StrCat(what, "update ", UuidHex(status.uuid()), " was ",
                            v1::TaskState_Name(it->second), " and is now ",
                            v1::TaskState_Name(state)));
    return;
  }
  if (!seq.terminal_uuid.empty() && status.uuid() != seq.terminal_uuid) {
    sim_->Fail(absl::StrCat(what, v1::TaskState_Name(state), " (",
                            UuidHex(status.uuid()), ") after the terminal ",
                            v1::TaskState_Name(seq.terminal_state), " (",
                            UuidHex(seq.terminal_uuid), ")"));
    return;
  }
  if (master::IsTerminalState(state) && seq.terminal_uuid.empty()) {
    seq.terminal_uuid = status.uuid();
    seq.terminal_state = state;
  }
}

void Checker::OnLaunchReceived(int agent, const std::string& agent_id,
                               const TaskKey& key, bool relaunch) {
  if (relaunch) {
    sim_->Fail(absl::StrCat("agent ", agent, " (", agent_id, ") gets LAUNCH of ",
                            key.second, " again after it ended there"));
    return;
  }
  for (const auto& other : sim_->agents()) {
    if (other->index() == agent) continue;
    auto it = other->tasks().find(key);
    if (it != other->tasks().end() &&
        !master::IsTerminalState(it->second.state)) {
      sim_->Fail(absl::StrCat("task ", key.second, " of ", key.first,
                              " would run on agents ", other->index(), " and ",
                              agent));
      return;
    }
  }
}

void Checker::OnAcceptAnswered(int framework, const std::string& framework_id,
                               const std::vector<std::string>& task_ids) {
  for (const std::string& id : task_ids) {
    const TaskKey key{framework_id, id};
    if (launched_.count(key) == 0) accepted_unlaunched_.insert(key);
  }
}

void Checker::OnTeardownSent(const std::string& framework_id) {
  FrameworkLife& life = lives_[framework_id];
  life.teardown_sent = std::min(life.teardown_sent, sim_->Now());
}

// ---- Every step ---------------------------------------------------------------

void Checker::Step() {
  if (offers_dirty_) {
    offers_dirty_ = false;
    CheckOffers();
  }
  if (sim_->Now() - last_deadline_check_ >= absl::Milliseconds(100)) {
    last_deadline_check_ = sim_->Now();
    CheckFailoverDeadlines();
  }
  if (log_changed_ && !sim_->appends_in_flight()) {
    log_changed_ = false;
    CheckLogAtRest();
  }
  if (sim_->Now() - last_converge_check_ >= absl::Milliseconds(250)) {
    last_converge_check_ = sim_->Now();
    CheckAgentsConverge();
  }
}

// A task left live on an UNREACHABLE or REMOVED agent (a request cut by a
// leader change: M1) is legitimate until a leader elected after the cut has
// run its repair (Leader::RepairCutRequests) and its appends are chosen: it
// is a failure only when it is still there, at rest, under a leader whose
// term began after the task was first seen stranded.
void Checker::CheckLogAtRest() {
  const MasterState& log = sim_->reference();
  const uint64_t elections = sim_->stats().elections;
  for (auto it = stranded_since_.begin(); it != stranded_since_.end();) {
    const v1::TaskRecord* t = log.FindTask(it->first.first, it->first.second);
    const v1::AgentRecord* agent =
        t == nullptr ? nullptr : log.FindAgent(t->task().agent_id().value());
    const bool still = t != nullptr && agent != nullptr &&
                       !master::IsTerminalState(t->task().state()) &&
                       agent->state() != v1::AgentRecord::ACTIVE &&
                       t->task().state() != v1::TASK_UNREACHABLE;
    it = still ? std::next(it) : stranded_since_.erase(it);
  }
  for (const std::string& agent_id : log.AgentIds()) {
    const v1::AgentRecord* agent = log.FindAgent(agent_id);
    if (agent->state() == v1::AgentRecord::ACTIVE) continue;
    for (const TaskKey& key : log.TasksOnAgent(agent_id)) {
      const v1::TaskRecord* t = log.FindTask(key.first, key.second);
      if (t == nullptr || master::IsTerminalState(t->task().state())) continue;
      if (agent->state() == v1::AgentRecord::UNREACHABLE &&
          t->task().state() == v1::TASK_UNREACHABLE) {
        continue;
      }
      if (sim_->tolerates_m1()) {
        if (stranded_.insert(key).second) {
          ++sim_->stats().stranded_tasks;
          sim_->Trace(absl::StrCat("tolerated M1: task ", key.second,
                                   " stranded on ", agent_id));
        }
        continue;
      }
      auto seen = stranded_since_.emplace(key, elections).first;
      if (sim_->leader() < 0 || elections <= seen->second) {
        continue;  // the next leader repairs it
      }
      sim_->Fail(absl::StrCat(
          "task ", key.second, " of ", key.first, " is stranded: ",
          v1::TaskState_Name(t->task().state()), " on agent ", agent_id,
          ", which the log has ", v1::AgentRecord::State_Name(agent->state()),
          " with nothing in flight, under a leader elected after the cut"));
      return;
    }
  }
}

bool Checker::ToleratedStranded(const TaskKey& key) const {
  if (!sim_->tolerates_m1()) return false;
  const MasterState& log = sim_->reference();
  const v1::TaskRecord* t = log.FindTask(key.first, key.second);
  if (t == nullptr || master::IsTerminalState(t->task().state())) return false;
  const v1::AgentRecord* agent = log.FindAgent(t->task().agent_id().value());
  if (agent == nullptr) return false;
  return agent->state() == v1::AgentRecord::REMOVED ||
         (agent->state() == v1::AgentRecord::UNREACHABLE &&
          t->task().state() != v1::TASK_UNREACHABLE);
}

void Checker::CheckAgentsConverge() {
  const int leader = sim_->leader();
  const MasterState& log = sim_->reference();
  // Generous: a RECONCILE every agent_reconcile_interval, plus the kill
  // or update round trips.
  const absl::Duration bound =
      sim_->leader_options().agent_reconcile_interval + absl::Seconds(3);
  std::map<std::pair<int, TaskKey>, absl::Time> diverged;
  for (const auto& agent : sim_->agents()) {
    if (leader < 0 || !agent->SubscribedTo(leader, sim_->LeaderIncarnation()) ||
        agent->agent_id().empty()) {
      continue;
    }
    std::set<TaskKey> seen;
    for (const auto& [key, task] : agent->tasks()) {
      seen.insert(key);
      if (master::IsTerminalState(task.state)) continue;
      auto state = log_state_.find(key);
      if (state != log_state_.end() &&
          !master::IsTerminalState(state->second)) {
        continue;
      }
      diverged[{agent->index(), key}] = sim_->Now();
    }
    for (const TaskKey& key : log.TasksOnAgent(agent->agent_id())) {
      const v1::TaskRecord* t = log.FindTask(key.first, key.second);
      if (t == nullptr || master::IsTerminalState(t->task().state())) continue;
      if (seen.count(key) == 0) diverged[{agent->index(), key}] = sim_->Now();
    }
  }
  for (auto& [id, since] : diverged) {
    auto old = diverged_since_.find(id);
    if (old != diverged_since_.end()) since = old->second;
    if (sim_->Now() - since > bound) {
      const auto& agent = *sim_->agents()[id.first];
      auto task = agent.tasks().find(id.second);
      sim_->Fail(absl::StrCat(
          "agent ", id.first, " (subscribed to the leader) ",
          task == agent.tasks().end()
              ? "lacks task "
              : "still runs task ",
          id.second.second, " of ", id.second.first, " for ",
          Seconds(sim_->Now() - since), "; the log says ",
          log_state_.count(id.second) > 0
              ? v1::TaskState_Name(log_state_.at(id.second))
              : std::string("nothing")));
      return;
    }
  }
  diverged_since_ = std::move(diverged);
}

void Checker::CheckOffers() {
  std::map<std::string, master::Resources> offered;
  for (const auto& [id, held] : held_) offered[held.agent_id] += held.resources;
  const MasterState& log = sim_->reference();
  for (const auto& [agent_id, resources] : offered) {
    absl::StatusOr<master::Resources> total = log.TotalResources(agent_id);
    absl::StatusOr<master::Resources> used = log.UsedResources(agent_id);
    if (!total.ok() || !used.ok()) continue;
    if (!total->Contains(*used + resources)) {
      std::vector<std::string> ids;
      for (const auto& [id, held] : held_) {
        if (held.agent_id == agent_id) ids.push_back(id);
      }
      sim_->Fail(absl::StrCat(
          "agent ", agent_id, " is offered twice: held offers ",
          resources.ToString(), " (", absl::StrJoin(ids, ","),
          ") + tasks ", used->ToString(), " exceed its total ",
          total->ToString()));
      return;
    }
  }
}

void Checker::CheckFailoverDeadlines() {
  if (sim_->leader() < 0) return;
  const absl::Time now = sim_->Now();
  const absl::Time leading_since = sim_->leader_since();
  const MasterState& log = sim_->reference();
  // Log-level: a framework disconnected past its deadline is removed soon.
  for (const std::string& id : log.FrameworkIds()) {
    const v1::FrameworkRecord* f = log.FindFramework(id);
    if (f->state() != v1::FrameworkRecord::DISCONNECTED) continue;
    const absl::Time deadline =
        std::max(master::ToTime(f->failover_deadline()), leading_since);
    if (now > deadline + sim_->slack()) {
      sim_->Fail(absl::StrCat("framework ", id, " is still not removed ",
                              Seconds(now - deadline),
                              " after its failover deadline"));
      return;
    }
  }
  // Simulation-level: a scheduler gone since D is removed by D + timeout.
  for (const auto& [id, life] : lives_) {
    if (life.index < 0 || !life.open.empty() ||
        life.teardown_sent < absl::InfiniteFuture()) {
      continue;
    }
    const int index = life.index;
    const v1::FrameworkRecord* f = log.FindFramework(id);
    if (f == nullptr || f->state() == v1::FrameworkRecord::COMPLETED) continue;
    const absl::Time from = std::max(life.disconnected_at, leading_since);
    const absl::Duration timeout =
        absl::Seconds(sim_->framework(index)->failover_timeout());
    if (now > from + timeout + sim_->slack()) {
      sim_->Fail(absl::StrCat("framework ", id, " (f", index,
                              ") disconnected ",
                              Seconds(now - life.disconnected_at),
                              " ago is not removed; failover_timeout ",
                              Seconds(timeout)));
      return;
    }
  }
}

// ---- The quiet end ----------------------------------------------------------

std::string Checker::EndState() {
  const MasterState& log = sim_->reference();
  // Where tasks run, by the agents' checkpoints.
  std::map<TaskKey, std::vector<const SimAgent*>> running;
  for (const auto& agent : sim_->agents()) {
    for (const auto& [key, task] : agent->tasks()) {
      if (!master::IsTerminalState(task.state)) {
        running[key].push_back(agent.get());
      }
    }
  }
  for (const auto& [key, agents] : running) {
    if (launched_.count(key) == 0) {
      return absl::StrCat("agent ", agents.front()->index(), " runs task ",
                          key.second, " of ", key.first,
                          ", which the log never launched");
    }
  }
  for (const auto& [key, agent_id] : launched_) {
    if (ToleratedStranded(key)) continue;
    const v1::TaskState state = log_state_.at(key);
    const std::vector<const SimAgent*>& on = running[key];
    const std::string task =
        absl::StrCat("task ", key.second, " of ", key.first, " (",
                     v1::TaskState_Name(state), " on ", agent_id, " in the log)");
    if (master::IsTerminalState(state)) {
      if (!on.empty()) {
        return absl::StrCat(task, " still runs on agent ", on.front()->index());
      }
    } else {
      if (on.size() != 1 || on.front()->agent_id() != agent_id) {
        return absl::StrCat(task, " runs on ", on.size(),
                            " agents, not exactly on its own");
      }
      const v1::TaskState agent_state = on.front()->tasks().at(key).state;
      if (agent_state != state) {
        return absl::StrCat(task, " is ", v1::TaskState_Name(agent_state),
                            " on its agent");
      }
    }
    // Connected frameworks know their tasks' last state.
    auto index = framework_index_.find(key.first);
    if (index == framework_index_.end()) continue;
    const SimFramework& f = *sim_->framework(index->second);
    const v1::FrameworkRecord* record = log.FindFramework(key.first);
    if (f.gone() || f.framework_id() != key.first || record == nullptr ||
        record->state() == v1::FrameworkRecord::COMPLETED) {
      continue;
    }
    auto view = f.tasks().find(key.second);
    if (view == f.tasks().end() || view->second.last_state != state) {
      return absl::StrCat(
          task, ": its framework's last update says ",
          view == f.tasks().end()
              ? std::string("nothing")
              : v1::TaskState_Name(view->second.last_state));
    }
  }
  for (const TaskKey& key : accepted_unlaunched_) {
    auto index = framework_index_.find(key.first);
    if (index == framework_index_.end()) continue;
    const SimFramework& f = *sim_->framework(index->second);
    if (f.gone() || f.framework_id() != key.first) continue;
    auto view = f.tasks().find(key.second);
    if (view == f.tasks().end() ||
        (!view->second.transient_terminal && !view->second.terminal)) {
      return absl::StrCat("task ", key.second, " of ", key.first,
                          ": ACCEPT was answered 202, the log never launched "
                          "it and the framework was not told");
    }
  }
  for (const auto& f : sim_->frameworks()) {
    if (!f->refused()) continue;
    const v1::FrameworkRecord* record = log.FindFramework(f->framework_id());
    if (record == nullptr || record->state() != v1::FrameworkRecord::COMPLETED) {
      return absl::StrCat("framework ", f->index(), " (", f->framework_id(),
                          ") was refused but the log has not removed it");
    }
  }
  return "";
}

}  // namespace cairn::sim::msim
