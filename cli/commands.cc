#include "cli/commands.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cairn/v1/operator.pb.h"
#include "cli/exit_codes.h"
#include "cli/table.h"
#include "common/http_message.h"
#include "common/json.h"
#include "common/json_value.h"

namespace cairn::cli {
namespace {

using v1::master_api::Call;
using v1::master_api::Response;

std::string Opt(const std::optional<uint64_t>& value) {
  return value.has_value() ? absl::StrCat(*value) : "-";
}

std::string JsonOpt(const std::optional<uint64_t>& value) {
  return value.has_value() ? absl::StrCat(*value) : "null";
}

double Sum(const google::protobuf::RepeatedPtrField<v1::Resource>& resources,
           const std::string& name) {
  double total = 0;
  for (const v1::Resource& r : resources) {
    if (r.name() == name && r.type() == v1::MesosValue::SCALAR) {
      total += r.scalar().value();
    }
  }
  return total;
}

// Calls `type` and prints an error when it fails.
std::optional<Response> Ask(Cluster& cluster, Call::Type type,
                            std::ostream& err, int* code) {
  Call call;
  call.set_type(type);
  absl::StatusOr<Response> response = cluster.Operator(call);
  if (!response.ok()) {
    err << "cairnctl: " << response.status().message() << std::endl;
    *code = ExitCodeOf(response.status());
    return std::nullopt;
  }
  return *std::move(response);
}

int Mutate(Cluster& cluster, const Call& call, const std::string& done,
           std::ostream& out, std::ostream& err) {
  absl::StatusOr<Response> response = cluster.Operator(call);
  if (!response.ok()) {
    err << "cairnctl: " << response.status().message() << std::endl;
    return ExitCodeOf(response.status());
  }
  out << done << std::endl;
  return kExitOk;
}

}  // namespace

std::string FormatScalar(double value) {
  std::string text = absl::StrFormat("%.3f", value);
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text;
}

int StatusCommand(Cluster& cluster, bool json, std::ostream& out,
                  std::ostream& err) {
  const absl::Duration per_request =
      std::min(cluster.options().timeout, absl::Seconds(3));
  std::vector<MasterStatus> masters = cluster.Survey(per_request);
  std::string leader;
  bool any = false;
  for (const MasterStatus& m : masters) {
    any |= m.answered;
    if (m.answered && m.role == "leading") leader = m.address;
  }
  const int code = !any ? kExitUnavailable : leader.empty() ? kExitError
                                                            : kExitOk;
  if (json) {
    std::vector<std::string> items;
    for (const MasterStatus& m : masters) {
      std::string item = absl::StrCat(
          "{\"address\":", http::JsonQuote(m.address),
          ",\"answered\":", m.answered ? "true" : "false",
          ",\"role\":", http::JsonQuote(m.answered ? m.role : "down"),
          ",\"leader\":",
          m.leader.empty() ? "null" : http::JsonQuote(m.leader),
          ",\"applied\":", JsonOpt(m.applied),
          ",\"log\":{\"begin\":", JsonOpt(m.log_begin),
          ",\"learned_through\":", JsonOpt(m.log_learned_through),
          ",\"serving\":",
          m.log_serving.has_value() ? (*m.log_serving ? "true" : "false")
                                    : "null",
          "},\"healthy\":", m.healthy ? "true" : "false",
          ",\"agents\":", JsonOpt(m.agents),
          ",\"frameworks\":", JsonOpt(m.frameworks),
          ",\"tasks\":", JsonOpt(m.tasks));
      if (!m.error.empty()) {
        absl::StrAppend(&item, ",\"error\":", http::JsonQuote(m.error));
      }
      items.push_back(item + "}");
    }
    out << "{\"leader\":" << (leader.empty() ? "null" : http::JsonQuote(leader))
        << ",\"masters\":[" << absl::StrJoin(items, ",") << "]}" << std::endl;
  } else {
    out << "leader: " << (leader.empty() ? "none" : leader) << "\n";
    Table table({"MASTER", "ROLE", "LEADER", "APPLIED", "LOG", "AGENTS",
                 "FRAMEWORKS", "TASKS", "HEALTH"});
    for (const MasterStatus& m : masters) {
      if (!m.answered) {
        table.AddRow({m.address, "down", "-", "-", "-", "-", "-", "-",
                      Truncate(m.error, 60)});
        continue;
      }
      std::string log = "-";
      if (m.log_begin.has_value() || m.log_learned_through.has_value()) {
        log = absl::StrCat(Opt(m.log_begin), "..", Opt(m.log_learned_through),
                           m.log_serving.value_or(false) ? " serving" : "");
      }
      table.AddRow({m.address, m.role, m.leader.empty() ? "-" : m.leader,
                    Opt(m.applied), log, Opt(m.agents), Opt(m.frameworks),
                    Opt(m.tasks), m.healthy ? "ok" : "unhealthy"});
    }
    out << table.Render();
    out.flush();
  }
  if (code == kExitUnavailable) {
    err << "cairnctl: no master answered at " << cluster.MastersText();
    for (const MasterStatus& m : masters) {
      if (!m.error.empty()) {
        err << " (" << m.error << ")";
        break;
      }
    }
    err << std::endl;
  } else if (code == kExitError) {
    err << "cairnctl: no master is leading" << std::endl;
  }
  return code;
}

int AgentsCommand(Cluster& cluster, bool json, std::ostream& out,
                  std::ostream& err) {
  int code = kExitOk;
  std::optional<Response> response =
      Ask(cluster, Call::GET_AGENTS, err, &code);
  if (!response.has_value()) return code;
  if (json) {
    out << MesosJson(response->get_agents()) << std::endl;
    return kExitOk;
  }
  Table table({"ID", "HOSTNAME", "ADDRESS", "STATE", "CPUS", "MEM", "VERSION"});
  for (const auto& agent : response->get_agents().agents()) {
    std::string state = agent.active() ? "active" : "inactive";
    if (agent.deactivated()) state = "deactivated";
    if (agent.has_drain_info()) {
      state = agent.drain_info().state() == v1::DRAINED ? "drained"
                                                        : "draining";
    }
    const v1::AgentInfo& info = agent.agent_info();
    table.AddRow(
        {info.id().value(), info.hostname(),
         absl::StrCat(info.hostname(), ":", info.port()), state,
         absl::StrCat(FormatScalar(Sum(agent.allocated_resources(), "cpus")),
                      "/", FormatScalar(Sum(agent.total_resources(), "cpus"))),
         absl::StrCat(FormatScalar(Sum(agent.allocated_resources(), "mem")),
                      "/", FormatScalar(Sum(agent.total_resources(), "mem"))),
         agent.version()});
  }
  out << table.Render();
  return kExitOk;
}

int FrameworksCommand(Cluster& cluster, bool all, bool json,
                      std::ostream& out, std::ostream& err) {
  int code = kExitOk;
  std::optional<Response> response =
      Ask(cluster, Call::GET_FRAMEWORKS, err, &code);
  if (!response.has_value()) return code;
  Response::GetFrameworks frameworks = response->get_frameworks();
  if (!all) frameworks.clear_completed_frameworks();
  if (json) {
    out << MesosJson(frameworks) << std::endl;
    return kExitOk;
  }
  Table table({"ID", "NAME", "ROLES", "STATE", "CPUS", "MEM", "PRINCIPAL"});
  auto add = [&](const Response::GetFrameworks::Framework& f,
                 bool completed) {
    const v1::FrameworkInfo& info = f.framework_info();
    std::vector<std::string> roles(info.roles().begin(), info.roles().end());
    if (roles.empty()) roles.push_back("*");
    std::string state = completed          ? "removed"
                        : !f.connected()   ? "disconnected"
                        : f.active()       ? "active"
                                           : "inactive";
    table.AddRow({info.id().value(), info.name(), absl::StrJoin(roles, ","),
                  state, FormatScalar(Sum(f.allocated_resources(), "cpus")),
                  FormatScalar(Sum(f.allocated_resources(), "mem")),
                  info.principal().empty() ? "-" : info.principal()});
  };
  for (const auto& f : frameworks.frameworks()) add(f, false);
  for (const auto& f : frameworks.completed_frameworks()) add(f, true);
  out << table.Render();
  return kExitOk;
}

int TasksCommand(Cluster& cluster, const TaskFilter& filter, bool json,
                 std::ostream& out, std::ostream& err) {
  std::string state = filter.state;
  if (!state.empty()) {
    state = absl::AsciiStrToUpper(state);
    if (!absl::StartsWith(state, "TASK_")) state = "TASK_" + state;
    v1::TaskState parsed;
    if (!v1::TaskState_Parse(state, &parsed)) {
      err << "cairnctl: --state: '" << filter.state
          << "' is not a task state (e.g. TASK_RUNNING, finished)"
          << std::endl;
      return kExitUsage;
    }
  }
  int code = kExitOk;
  std::optional<Response> response = Ask(cluster, Call::GET_TASKS, err, &code);
  if (!response.has_value()) return code;
  auto matches = [&](const v1::Task& task) {
    return (filter.framework_id.empty() ||
            task.framework_id().value() == filter.framework_id) &&
           (filter.agent_id.empty() ||
            task.agent_id().value() == filter.agent_id) &&
           (state.empty() || v1::TaskState_Name(task.state()) == state) &&
           (filter.name_substring.empty() ||
            absl::StrContains(task.name(), filter.name_substring));
  };
  Response::GetTasks selected;
  const Response::GetTasks& all = response->get_tasks();
  for (const v1::Task& t : all.tasks()) {
    if (matches(t)) *selected.add_tasks() = t;
  }
  for (const v1::Task& t : all.unreachable_tasks()) {
    if (matches(t)) *selected.add_unreachable_tasks() = t;
  }
  if (filter.all || !state.empty()) {
    for (const v1::Task& t : all.completed_tasks()) {
      if (matches(t)) *selected.add_completed_tasks() = t;
    }
  }
  if (json) {
    out << MesosJson(selected) << std::endl;
    return kExitOk;
  }
  Table table({"ID", "NAME", "STATE", "FRAMEWORK", "AGENT", "CPUS", "MEM"});
  for (const auto* list : {&selected.tasks(), &selected.unreachable_tasks(),
                           &selected.completed_tasks()}) {
    for (const v1::Task& t : *list) {
      table.AddRow({t.task_id().value(), t.name(),
                    v1::TaskState_Name(t.state()), t.framework_id().value(),
                    t.agent_id().value(),
                    FormatScalar(Sum(t.resources(), "cpus")),
                    FormatScalar(Sum(t.resources(), "mem"))});
    }
  }
  out << table.Render();
  return kExitOk;
}

int DrainCommand(Cluster& cluster, const std::string& agent_id,
                 std::optional<absl::Duration> max_grace_period,
                 bool mark_gone, std::ostream& out, std::ostream& err) {
  Call call;
  call.set_type(Call::DRAIN_AGENT);
  Call::DrainAgent* drain = call.mutable_drain_agent();
  drain->mutable_agent_id()->set_value(agent_id);
  if (max_grace_period.has_value()) {
    const int64_t nanos = absl::ToInt64Nanoseconds(*max_grace_period);
    drain->mutable_max_grace_period()->set_seconds(nanos / 1000000000);
    drain->mutable_max_grace_period()->set_nanos(
        static_cast<int32_t>(nanos % 1000000000));
  }
  if (mark_gone) drain->set_mark_gone(true);
  return Mutate(cluster, call,
                absl::StrCat("agent ", agent_id, " is draining",
                             mark_gone ? " (to be marked gone)" : ""),
                out, err);
}

int ReactivateCommand(Cluster& cluster, const std::string& agent_id,
                      std::ostream& out, std::ostream& err) {
  Call call;
  call.set_type(Call::REACTIVATE_AGENT);
  call.mutable_reactivate_agent()->mutable_agent_id()->set_value(agent_id);
  return Mutate(cluster, call, absl::StrCat("agent ", agent_id, " reactivated"),
                out, err);
}

int MetricsCommand(Cluster& cluster, const std::string& prefix, bool all,
                   bool json, std::ostream& out, std::ostream& err) {
  std::vector<http::HostPort> targets;
  if (all) {
    targets = cluster.hosts();
  } else {
    absl::StatusOr<http::HostPort> leader =
        cluster.FindLeader(absl::Now() + cluster.options().timeout);
    if (!leader.ok()) {
      err << "cairnctl: " << leader.status().message() << std::endl;
      return ExitCodeOf(leader.status());
    }
    targets.push_back(*leader);
  }
  // master -> (key -> value text), in key order.
  std::vector<std::pair<std::string, std::map<std::string, std::string>>>
      snapshots;
  int code = kExitOk;
  for (const http::HostPort& target : targets) {
    absl::StatusOr<http::Response> answer = cluster.Get(
        target, "/metrics/snapshot",
        std::min(cluster.options().timeout, absl::Seconds(5)));
    absl::Status error;
    absl::StatusOr<JsonValue> parsed = absl::InternalError("unset");
    if (!answer.ok()) {
      error = answer.status();
    } else if (answer->status != 200) {
      error = ErrorFromAnswer(answer->status, answer->body);
    } else if (parsed = ParseJson(answer->body);
               !parsed.ok() || parsed->kind != JsonValue::Kind::kObject) {
      error = absl::InternalError("/metrics/snapshot is not a JSON object");
    }
    if (!error.ok()) {
      err << "cairnctl: " << target.ToString() << ": " << error.message()
          << std::endl;
      code = all ? kExitError : ExitCodeOf(error);
      if (!all) return code;
      continue;
    }
    std::map<std::string, std::string> values;
    for (const auto& [key, value] : parsed->fields) {
      if (absl::StartsWith(key, prefix)) values[key] = value.text;
    }
    snapshots.emplace_back(target.ToString(), std::move(values));
  }
  auto object = [](const std::map<std::string, std::string>& values) {
    std::vector<std::string> items;
    for (const auto& [key, value] : values) {
      items.push_back(absl::StrCat(http::JsonQuote(key), ":",
                                   value.empty() ? "null" : value));
    }
    return absl::StrCat("{", absl::StrJoin(items, ","), "}");
  };
  if (json) {
    if (!all) {
      out << object(snapshots.empty() ? std::map<std::string, std::string>()
                                      : snapshots[0].second)
          << std::endl;
    } else {
      std::vector<std::string> items;
      for (const auto& [master, values] : snapshots) {
        items.push_back(absl::StrCat(http::JsonQuote(master), ":",
                                     object(values)));
      }
      out << "{" << absl::StrJoin(items, ",") << "}" << std::endl;
    }
    return code;
  }
  std::vector<std::string> header = {"METRIC"};
  std::map<std::string, std::vector<std::string>> rows;
  for (size_t i = 0; i < snapshots.size(); ++i) {
    header.push_back(all ? snapshots[i].first : "VALUE");
    for (const auto& [key, value] : snapshots[i].second) {
      std::vector<std::string>& row = rows[key];
      row.resize(snapshots.size(), "-");
      row[i] = value;
    }
  }
  Table table(header);
  for (auto& [key, values] : rows) {
    std::vector<std::string> row = {key};
    for (std::string& v : values) row.push_back(std::move(v));
    table.AddRow(std::move(row));
  }
  out << table.Render();
  return code;
}

}  // namespace cairn::cli
