#include "cli/run.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cairn/v1/scheduler.pb.h"
#include "cli/exit_codes.h"
#include "cli/sandbox_output.h"
#include "cli/scheduler_session.h"
#include "common/http_message.h"
#include "common/json.h"

namespace cairn::cli {
namespace {

using Call = v1::scheduler::Call;
using Event = v1::scheduler::Event;

constexpr absl::Duration kPoll = absl::Milliseconds(300);
// How long run waits for a killed task's terminal update after --timeout.
constexpr absl::Duration kKillGrace = absl::Seconds(15);
constexpr double kDetachedFailoverSeconds = 7 * 24 * 3600;

std::string RandomSuffix() {
  std::random_device device;
  return absl::StrFormat("%08x", device());
}

double Scalar(const v1::Offer& offer, const std::string& name) {
  double total = 0;
  for (const v1::Resource& r : offer.resources()) {
    if (r.name() == name && r.type() == v1::MesosValue::SCALAR) {
      total += r.scalar().value();
    }
  }
  return total;
}

// `amount` of `name` taken from the offer's resources (in offer order, so
// the reservation and allocation of each piece are kept).
void Take(const v1::Offer& offer, const std::string& name, double amount,
          v1::TaskInfo* task) {
  for (const v1::Resource& r : offer.resources()) {
    if (amount <= 1e-9) return;
    if (r.name() != name || r.type() != v1::MesosValue::SCALAR) continue;
    const double part = std::min(amount, r.scalar().value());
    v1::Resource* piece = task->add_resources();
    *piece = r;
    piece->mutable_scalar()->set_value(part);
    amount -= part;
  }
}

http::HostPort AgentAddress(const v1::Offer& offer) {
  http::HostPort agent;
  const v1::Address& address = offer.url().address();
  agent.host = !address.ip().empty() ? address.ip()
               : !address.hostname().empty() ? address.hostname()
                                             : offer.hostname();
  agent.port = static_cast<uint16_t>(address.port() > 0 ? address.port() : 5051);
  return agent;
}

bool IsRunFramework(const v1::FrameworkInfo& info) {
  for (const v1::Label& label : info.labels().labels()) {
    if (label.key() == kRunLabelKey && label.value() == kRunLabelValue) {
      return true;
    }
  }
  return false;
}

std::string ResultJson(const std::string& framework_id,
                       const std::string& task_id, const std::string& agent_id,
                       const std::string& state, const std::string& message,
                       int exit_code) {
  return absl::StrCat("{\"framework_id\":", http::JsonQuote(framework_id),
                      ",\"task_id\":", http::JsonQuote(task_id),
                      ",\"agent_id\":", http::JsonQuote(agent_id),
                      ",\"state\":", http::JsonQuote(state),
                      ",\"message\":", http::JsonQuote(message),
                      ",\"exit_code\":", exit_code, "}");
}

// Fails the session over (resubscribes with the framework id) until
// `deadline`. Prints what happens.
absl::Status Failover(SchedulerSession& session, v1::FrameworkInfo info,
                      absl::Time deadline, std::ostream& err) {
  *info.mutable_id() = session.framework_id();
  err << "cairnctl: the connection to the leader ended; resubscribing"
      << std::endl;
  absl::Status subscribed = session.Subscribe(info, deadline);
  if (subscribed.ok() && session.leader().has_value()) {
    err << "cairnctl: resubscribed at " << session.leader()->ToString()
        << std::endl;
  }
  return subscribed;
}

}  // namespace

int RunTask(Cluster& cluster, const RunOptions& options, std::ostream& out,
            std::ostream& err) {
  const absl::Time deadline = absl::Now() + options.timeout;
  const absl::Duration request_timeout =
      std::min(cluster.options().timeout, absl::Seconds(5));
  SchedulerSession session(cluster.options().masters, request_timeout,
                           cluster.options().principal);

  v1::FrameworkInfo info;
  info.set_user(options.user);
  info.set_name(absl::StrCat("cairnctl-run ", options.name));
  info.add_roles(options.role);
  info.add_capabilities()->set_type(v1::FrameworkInfo::Capability::MULTI_ROLE);
  info.set_failover_timeout(
      options.detach ? kDetachedFailoverSeconds
                     : absl::ToDoubleSeconds(options.timeout) + 120);
  v1::Label* label = info.mutable_labels()->add_labels();
  label->set_key(kRunLabelKey);
  label->set_value(kRunLabelValue);

  absl::Status subscribed = session.Subscribe(
      info, std::min(deadline, absl::Now() + cluster.options().timeout));
  if (!subscribed.ok()) {
    absl::Status explained = cluster.Explain(subscribed);
    err << "cairnctl: cannot subscribe the run's framework: "
        << explained.message() << std::endl;
    return ExitCodeOf(explained);
  }
  const std::string framework_id = session.framework_id().value();
  const std::string task_id =
      absl::StrCat(options.name, "-", RandomSuffix());
  err << "cairnctl: framework " << framework_id << ", task " << task_id
      << std::endl;

  bool launched = false;
  bool killing = false;
  absl::Time kill_deadline = absl::InfiniteFuture();
  v1::AgentID agent_id;
  std::optional<SandboxOutput> output;
  v1::TaskState last_state = v1::TASK_STAGING;
  bool running_seen = false;

  auto teardown = [&] {
    if (options.detach) return;
    Call call;
    call.set_type(Call::TEARDOWN);
    absl::Status sent =
        session.Send(call, absl::Now() + cluster.options().timeout);
    if (!sent.ok()) {
      err << "cairnctl: warning: TEARDOWN of framework " << framework_id
          << " failed (" << sent.message()
          << "); it is removed after its failover timeout" << std::endl;
    }
  };
  auto finish = [&](const v1::TaskStatus& status) {
    if (output.has_value() && !options.json) output->Poll(/*final=*/true);
    const int code = killing ? kExitRunTimeout
                             : TaskExitCode(status.state(), status.message());
    err << "cairnctl: task " << task_id << " "
        << v1::TaskState_Name(status.state())
        << (status.message().empty() ? "" : absl::StrCat(": ", status.message()))
        << (killing ? " (killed after --timeout)" : "") << std::endl;
    if (options.json) {
      out << ResultJson(framework_id, task_id, agent_id.value(),
                        v1::TaskState_Name(status.state()), status.message(),
                        code)
          << std::endl;
    }
    teardown();
    return code;
  };

  absl::Time next_output_poll = absl::InfinitePast();
  while (true) {
    const absl::Time now = absl::Now();
    if (!killing && now >= deadline) {
      if (!launched) {
        err << "cairnctl: no offer with cpus >= " << options.cpus
            << " and mem >= " << options.mem << " for role "
            << options.role << " within --timeout" << std::endl;
        teardown();
        return kExitRunTimeout;
      }
      err << "cairnctl: --timeout passed; killing task " << task_id
          << std::endl;
      killing = true;
      kill_deadline = now + kKillGrace;
      Call call;
      call.set_type(Call::KILL);
      call.mutable_kill()->mutable_task_id()->set_value(task_id);
      *call.mutable_kill()->mutable_agent_id() = agent_id;
      absl::Status sent = session.Send(call, kill_deadline);
      if (!sent.ok()) {
        err << "cairnctl: KILL failed: " << sent.message() << std::endl;
      }
    }
    if (killing && now >= kill_deadline) {
      err << "cairnctl: task " << task_id
          << " did not end after KILL; tearing its framework down"
          << std::endl;
      teardown();
      return kExitRunTimeout;
    }
    if (output.has_value() && !options.json && now >= next_output_poll) {
      output->Poll(/*final=*/false);
      next_output_poll = absl::Now() + absl::Milliseconds(500);
    }

    absl::StatusOr<std::optional<Event>> next = session.Next(kPoll);
    if (!next.ok()) {
      const absl::Time until = killing ? kill_deadline : deadline;
      absl::Status again = Failover(session, info, until, err);
      if (!again.ok()) {
        absl::Status explained = cluster.Explain(again);
        err << "cairnctl: cannot resubscribe: " << explained.message()
            << std::endl;
        if (launched) {
          err << "cairnctl: task " << task_id << " of framework "
              << framework_id << " may still run; `cairnctl kill " << task_id
              << "` kills it" << std::endl;
        }
        return explained.code() == absl::StatusCode::kUnavailable
                   ? kExitUnavailable
                   : kExitError;
      }
      if (launched) {
        Call call;
        call.set_type(Call::RECONCILE);
        Call::Reconcile::Task* task = call.mutable_reconcile()->add_tasks();
        task->mutable_task_id()->set_value(task_id);
        *task->mutable_agent_id() = agent_id;
        (void)session.Send(call, absl::Now() + request_timeout);
      }
      continue;
    }
    if (!next->has_value()) continue;
    const Event& event = **next;
    switch (event.type()) {
      case Event::OFFERS: {
        std::vector<v1::OfferID> decline;
        for (const v1::Offer& offer : event.offers().offers()) {
          if (launched || killing || Scalar(offer, "cpus") + 1e-9 < options.cpus ||
              Scalar(offer, "mem") + 1e-9 < options.mem) {
            decline.push_back(offer.id());
            continue;
          }
          v1::TaskInfo task;
          task.set_name(options.name);
          task.mutable_task_id()->set_value(task_id);
          *task.mutable_agent_id() = offer.agent_id();
          Take(offer, "cpus", options.cpus, &task);
          Take(offer, "mem", options.mem, &task);
          v1::CommandInfo* command = task.mutable_command();
          if (options.command.size() == 1) {
            command->set_shell(true);
            command->set_value(options.command[0]);
          } else {
            command->set_shell(false);
            command->set_value(options.command[0]);
            for (const std::string& arg : options.command) {
              command->add_arguments(arg);
            }
          }
          Call call;
          call.set_type(Call::ACCEPT);
          *call.mutable_accept()->add_offer_ids() = offer.id();
          v1::Offer::Operation* launch = call.mutable_accept()->add_operations();
          launch->set_type(v1::Offer::Operation::LAUNCH);
          *launch->mutable_launch()->add_task_infos() = task;
          absl::Status accepted =
              session.Send(call, absl::Now() + cluster.options().timeout);
          if (!accepted.ok()) {
            err << "cairnctl: ACCEPT failed: " << accepted.message()
                << std::endl;
            continue;  // wait for another offer
          }
          launched = true;
          agent_id = offer.agent_id();
          const http::HostPort agent = AgentAddress(offer);
          err << "cairnctl: launched on agent " << agent_id.value() << " ("
              << offer.hostname() << ", " << agent.ToString() << ")"
              << std::endl;
          output.emplace(agent, framework_id, task_id, &out, &err);
        }
        if (!decline.empty()) {
          Call call;
          call.set_type(Call::DECLINE);
          for (const v1::OfferID& id : decline) {
            *call.mutable_decline()->add_offer_ids() = id;
          }
          call.mutable_decline()->mutable_filters()->set_refuse_seconds(
              launched ? 3600 : 1);
          (void)session.Send(call, absl::Now() + request_timeout);
        }
        break;
      }
      case Event::UPDATE: {
        const v1::TaskStatus& status = event.update().status();
        absl::Status acked =
            session.Acknowledge(status, absl::Now() + request_timeout);
        if (!acked.ok()) {
          err << "cairnctl: warning: ACKNOWLEDGE failed: " << acked.message()
              << std::endl;
        }
        if (status.task_id().value() != task_id) break;
        if (status.state() != last_state || !running_seen) {
          if (status.state() == v1::TASK_RUNNING && !running_seen) {
            running_seen = true;
            err << "cairnctl: task " << task_id << " TASK_RUNNING"
                << std::endl;
            if (options.detach) {
              if (options.json) {
                out << ResultJson(framework_id, task_id, agent_id.value(),
                                  "TASK_RUNNING", status.message(), 0)
                    << std::endl;
              } else {
                out << "task " << task_id << " of framework " << framework_id
                    << " is running on agent " << agent_id.value()
                    << "; `cairnctl kill " << task_id << "` kills it"
                    << std::endl;
              }
              session.Close();
              return kExitOk;
            }
          }
        }
        last_state = status.state();
        if (IsTerminal(status.state())) return finish(status);
        break;
      }
      case Event::ERROR:
        err << "cairnctl: the master ended the run's subscription: "
            << event.error().message() << std::endl;
        return kExitError;
      default:
        break;
    }
  }
}

int KillTask(Cluster& cluster, const std::string& task_id,
             const std::optional<std::string>& framework_id, bool json,
             std::ostream& out, std::ostream& err) {
  v1::master_api::Call get;
  get.set_type(v1::master_api::Call::GET_TASKS);
  absl::StatusOr<v1::master_api::Response> tasks = cluster.Operator(get);
  if (!tasks.ok()) {
    err << "cairnctl: " << tasks.status().message() << std::endl;
    return ExitCodeOf(tasks.status());
  }
  const v1::Task* found = nullptr;
  for (const auto* list : {&tasks->get_tasks().tasks(),
                           &tasks->get_tasks().unreachable_tasks()}) {
    for (const v1::Task& task : *list) {
      if (task.task_id().value() == task_id &&
          (!framework_id.has_value() ||
           task.framework_id().value() == *framework_id)) {
        found = &task;
      }
    }
  }
  if (found == nullptr) {
    for (const v1::Task& task : tasks->get_tasks().completed_tasks()) {
      if (task.task_id().value() == task_id &&
          (!framework_id.has_value() ||
           task.framework_id().value() == *framework_id)) {
        err << "cairnctl: task " << task_id << " already ended ("
            << v1::TaskState_Name(task.state()) << ")" << std::endl;
        return kExitOk;
      }
    }
    err << "cairnctl: no live task " << task_id
        << (framework_id.has_value()
                ? absl::StrCat(" of framework ", *framework_id)
                : std::string())
        << std::endl;
    return kExitError;
  }
  if (IsTerminal(found->state())) {
    err << "cairnctl: task " << task_id << " already ended ("
        << v1::TaskState_Name(found->state()) << ")" << std::endl;
    return kExitOk;
  }

  get.set_type(v1::master_api::Call::GET_FRAMEWORKS);
  absl::StatusOr<v1::master_api::Response> frameworks = cluster.Operator(get);
  if (!frameworks.ok()) {
    err << "cairnctl: " << frameworks.status().message() << std::endl;
    return ExitCodeOf(frameworks.status());
  }
  std::optional<v1::FrameworkInfo> info;
  for (const auto& f : frameworks->get_frameworks().frameworks()) {
    if (f.framework_info().id().value() == found->framework_id().value()) {
      info = f.framework_info();
    }
  }
  if (!info.has_value()) {
    err << "cairnctl: the framework " << found->framework_id().value()
        << " of task " << task_id << " is not known to the master"
        << std::endl;
    return kExitError;
  }
  if (!IsRunFramework(*info)) {
    err << "cairnctl: task " << task_id << " belongs to framework "
        << info->id().value() << " (" << info->name()
        << "), which cairnctl run did not start; kill it through its "
           "scheduler, or tear the framework down (operator TEARDOWN)"
        << std::endl;
    return kExitError;
  }

  const absl::Time deadline = absl::Now() + cluster.options().timeout;
  SchedulerSession session(cluster.options().masters,
                           std::min(cluster.options().timeout, absl::Seconds(5)),
                           cluster.options().principal);
  absl::Status subscribed = session.Subscribe(*info, deadline);
  if (!subscribed.ok()) {
    absl::Status explained = cluster.Explain(subscribed);
    err << "cairnctl: cannot take over framework " << info->id().value()
        << ": " << explained.message() << std::endl;
    return ExitCodeOf(explained);
  }
  Call kill;
  kill.set_type(Call::KILL);
  kill.mutable_kill()->mutable_task_id()->set_value(task_id);
  *kill.mutable_kill()->mutable_agent_id() = found->agent_id();
  absl::Status sent = session.Send(kill, deadline);
  if (!sent.ok()) {
    absl::Status explained = cluster.Explain(sent);
    err << "cairnctl: KILL failed: " << explained.message() << std::endl;
    return ExitCodeOf(explained);
  }
  while (absl::Now() < deadline) {
    absl::StatusOr<std::optional<Event>> next = session.Next(kPoll);
    if (!next.ok()) {
      absl::Status again = Failover(session, *info, deadline, err);
      if (!again.ok()) break;
      (void)session.Send(kill, deadline);
      continue;
    }
    if (!next->has_value() || (*next)->type() != Event::UPDATE) continue;
    const v1::TaskStatus& status = (*next)->update().status();
    (void)session.Acknowledge(status, deadline);
    if (status.task_id().value() != task_id || !IsTerminal(status.state())) {
      continue;
    }
    Call teardown;
    teardown.set_type(Call::TEARDOWN);
    (void)session.Send(teardown, deadline);
    if (json) {
      out << ResultJson(info->id().value(), task_id,
                        found->agent_id().value(),
                        v1::TaskState_Name(status.state()), status.message(),
                        0)
          << std::endl;
    } else {
      out << "task " << task_id << " " << v1::TaskState_Name(status.state())
          << std::endl;
    }
    return kExitOk;
  }
  err << "cairnctl: task " << task_id
      << " did not report a terminal state before --timeout" << std::endl;
  return kExitUnavailable;
}

}  // namespace cairn::cli
