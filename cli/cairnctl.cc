#include "cli/cairnctl.h"

#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/args.h"
#include "cli/cluster.h"
#include "cli/commands.h"
#include "cli/events.h"
#include "cli/exit_codes.h"
#include "cli/run.h"

namespace cairn::cli {
namespace {

constexpr char kDefaultMaster[] = "127.0.0.1:5050";
constexpr absl::Duration kDefaultTimeout = absl::Seconds(15);
constexpr absl::Duration kDefaultRunTimeout = absl::Seconds(60);

const std::vector<FlagSpec>& GlobalFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"master", true}, {"json", false},  {"timeout", true},
      {"principal", true}, {"help", false}, {"h", false}};
  return *flags;
}

const std::map<std::string, std::vector<FlagSpec>>& CommandFlags() {
  static const auto* commands = new std::map<std::string, std::vector<FlagSpec>>{
      {"help", {}},
      {"status", {}},
      {"agents", {}},
      {"frameworks", {{"all", false}}},
      {"tasks",
       {{"framework", true},
        {"agent", true},
        {"state", true},
        {"name", true},
        {"all", false}}},
      {"run",
       {{"cpus", true},
        {"mem", true},
        {"name", true},
        {"role", true},
        {"user", true},
        {"detach", false}}},
      {"kill", {{"framework", true}}},
      {"events",
       {{"from", true},
        {"follow", false},
        {"f", false},
        {"type", true},
        {"agent", true},
        {"framework", true},
        {"task", true},
        {"limit", true}}},
      {"drain", {{"max-grace-period", true}, {"mark-gone", false}}},
      {"reactivate", {}},
      {"metrics", {{"filter", true}, {"all", false}}},
  };
  return *commands;
}

constexpr char kUsage[] = R"(cairnctl: the operator's command line for a Cairn cluster.

usage: cairnctl [global flags] <command> [flags] [arguments]

commands:
  status                      leader, and each master's role, log position, health
  agents                      registered agents
  frameworks [--all]          frameworks (--all: removed ones too)
  tasks [filters]             tasks (see 'cairnctl help tasks')
  run [flags] -- <command>    run a one-off command task and wait for it
  kill <task_id>              kill a task started by 'cairnctl run'
  events [flags]              the cluster's event history (--follow to tail)
  drain <agent_id>            drain an agent (kill its tasks, no new offers)
  reactivate <agent_id>       offer a drained or deactivated agent again
  metrics [--filter=prefix]   the leader's /metrics/snapshot (--all: every master)
  help [command]              this text, or a command's

global flags (anywhere on the line):
  --master=host:port[,...]    the masters (env CAIRN_MASTER; default 127.0.0.1:5050);
                              cairnctl finds and follows the leader among them
  --json                      JSON for scripts instead of tables
  --timeout=15s               how long to wait for an answer (a leader) before
                              giving up; for 'run', the whole run (default 60s)
  --principal=NAME            recorded as the principal of what you change
                              (env CAIRN_PRINCIPAL)

exit codes:
  0   success
  1   the cluster answered with an error (unknown agent, refused call, ...);
      status: masters answer but none is leading
  2   no master answered, or no leader answered before --timeout
  64  usage error
  run: the task's exit status; see 'cairnctl help run'
)";

const std::map<std::string, std::string>& CommandHelp() {
  static const auto* help = new std::map<std::string, std::string>{
      {"status", R"(usage: cairnctl status [--json]

Asks every master (GET /master/replica and /health) once and shows the
leader, each master's role (leading, standby, recovering; down when it does
not answer), the leader it knows, its applied log position, its log range
(begin..learned_through) and health.
Exit 0 when a master is leading, 1 when masters answer but none leads, 2 when
no master answers.
)"},
      {"agents", R"(usage: cairnctl agents [--json]

Registered agents (GET_AGENTS): id, hostname, address, state (active,
deactivated, draining, drained), allocated/total cpus and mem, version.
--json prints GET_AGENTS's answer ({"agents":[...]}).
)"},
      {"frameworks", R"(usage: cairnctl frameworks [--all] [--json]

Frameworks (GET_FRAMEWORKS): id, name, roles, state (active, inactive,
disconnected; removed with --all), allocated cpus and mem, principal.
)"},
      {"tasks", R"(usage: cairnctl tasks [--framework=ID] [--agent=ID] [--state=STATE]
                      [--name=SUBSTRING] [--all] [--json]

Tasks (GET_TASKS): live and unreachable ones; --all or --state adds the
completed ones. --state takes TASK_RUNNING or just running. All filters must
hold. --json prints {"tasks":[...],"unreachable_tasks":[...],
"completed_tasks":[...]} with the tasks that match.
)"},
      {"run", R"(usage: cairnctl run [--cpus=0.1] [--mem=32] [--name=cairnctl-run] [--role=*]
                    [--user=$USER] [--timeout=60s] [--detach] [--json] -- <command...>

Runs one command task as a framework of its own ("cairnctl-run <name>"):
waits for an offer with --cpus and --mem in --role, launches the task
(one argument: run by /bin/sh -c; several: executed as argv, no shell),
prints its stdout and stderr as it runs (read from the agent's sandbox,
best effort: a warning when the agent cannot be read), and exits with its
status once it ends. Progress goes to stderr. A leader change is followed
(the framework fails over to the new leader). --timeout bounds the whole
run: then the task is killed. --detach returns once the task runs, leaving
its framework for 'cairnctl kill'. --json prints a result object instead of
the output: {"framework_id","task_id","agent_id","state","message","exit_code"}.

exit status:
  0      TASK_FINISHED
  N      TASK_FAILED "Command exited with status N"
  128+S  TASK_FAILED "Command terminated with signal S"
  1      TASK_FAILED otherwise; or an error from the cluster
  2      no leader answered
  124    --timeout passed (no offer fitted, or the task was killed)
  125    the task was not launched (TASK_ERROR, TASK_DROPPED)
  126    the outcome is unknown (TASK_LOST, TASK_GONE, TASK_GONE_BY_OPERATOR,
         TASK_UNKNOWN)
  137    TASK_KILLED (by 'cairnctl kill', a drain, ...)
)"},
      {"kill", R"(usage: cairnctl kill <task_id> [--framework=ID] [--json]

Kills a task that 'cairnctl run' started (e.g. with --detach): cairnctl takes
its framework over (a failover, as a restarted scheduler does), sends KILL,
waits for the terminal update and removes the framework. The operator API has
no call that kills one task (Mesos's has none either), and taking over
another scheduler's framework would disconnect that scheduler, so tasks of
other frameworks are refused: kill them through their scheduler, or tear
their framework down. Exit 0 once the task is terminal.
)"},
      {"events", R"(usage: cairnctl events [--from=POSITION] [--follow|-f] [--type=a,b]
                       [--agent=ID] [--framework=ID] [--task=ID] [--limit=N] [--json]

The history API (GET /api/v1/events): one line per event
  position:index  time (UTC)  type  principal  summary
or, with --json, the event's JSON on each line. Without --follow: from
--from (default 0: the oldest retained) to the serving master's applied
position. With --follow: then live, until interrupted (without --from: only
new events). Types are the event names of cairn.v1.Event
(task_status_updated, agent_removed, ...). Any master serves the history; if
the one streaming dies, cairnctl resumes on another right after the last
event printed (nothing missed or repeated).
)"},
      {"drain", R"(usage: cairnctl drain <agent_id> [--max-grace-period=DURATION] [--mark-gone]

DRAIN_AGENT: no new offers for the agent, its tasks are killed (their grace
period capped by --max-grace-period), and it is DRAINED once none is left;
with --mark-gone it is then removed for good. 'cairnctl reactivate' undoes it.
)"},
      {"reactivate", R"(usage: cairnctl reactivate <agent_id>

REACTIVATE_AGENT: a drained or deactivated agent is offered again.
)"},
      {"metrics", R"(usage: cairnctl metrics [--filter=PREFIX] [--all] [--json]

The leader's /metrics/snapshot (with --all: every master's, one column each),
keys starting with PREFIX. --json prints the object ({"master/elected":1,...};
with --all keyed by master).
)"},
      {"help", "usage: cairnctl help [command]\n"},
  };
  return *help;
}

int Usage(std::ostream& err, const std::string& message) {
  err << "cairnctl: " << message << std::endl;
  return kExitUsage;
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

}  // namespace

int Cairnctl(const std::vector<std::string>& args, std::ostream& out,
             std::ostream& err) {
  absl::StatusOr<CommandLine> parsed =
      ParseCommandLine(args, GlobalFlags(), CommandFlags());
  if (!parsed.ok()) return Usage(err, std::string(parsed.status().message()));
  const CommandLine& line = *parsed;
  const std::string& command = line.command;

  if (command.empty() || command == "help" || line.Bool("help") ||
      line.Bool("h")) {
    std::string topic = command == "help" && !line.positional.empty()
                            ? line.positional[0]
                            : command == "help" ? "" : command;
    if (topic.empty()) {
      out << kUsage;
      return command.empty() && !line.Bool("help") && !line.Bool("h")
                 ? kExitUsage
                 : kExitOk;
    }
    auto it = CommandHelp().find(topic);
    if (it == CommandHelp().end()) {
      return Usage(err, absl::StrCat("no help for '", topic, "'"));
    }
    out << it->second;
    return kExitOk;
  }

  // Positional arguments each command takes.
  const std::map<std::string, size_t> positional = {
      {"kill", 1}, {"drain", 1}, {"reactivate", 1}};
  const size_t wanted =
      positional.count(command) > 0 ? positional.at(command) : 0;
  if (line.positional.size() != wanted) {
    return Usage(err, wanted == 0
                          ? absl::StrCat("'", command, "' takes no argument '",
                                         line.positional[0], "'")
                          : absl::StrCat("'", command,
                                         "' takes one argument (see "
                                         "'cairnctl help ",
                                         command, "')"));
  }
  if (line.dashdash && command != "run") {
    return Usage(err, absl::StrCat("'", command, "' takes nothing after --"));
  }

  std::string master_list = line.Get("master").value_or(Env("CAIRN_MASTER"));
  if (master_list.empty()) master_list = kDefaultMaster;
  absl::StatusOr<std::vector<std::string>> masters =
      Cluster::ParseMasters(master_list);
  if (!masters.ok()) return Usage(err, std::string(masters.status().message()));

  std::optional<absl::Duration> timeout;
  if (std::optional<std::string> text = line.Get("timeout")) {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag("timeout", *text);
    if (!d.ok()) return Usage(err, std::string(d.status().message()));
    if (*d <= absl::ZeroDuration()) return Usage(err, "--timeout must be > 0");
    timeout = *d;
  }
  ClusterOptions options;
  options.masters = *masters;
  options.timeout = command == "run" ? kDefaultTimeout
                                     : timeout.value_or(kDefaultTimeout);
  if (command == "run" && timeout.has_value()) {
    options.timeout = std::min(*timeout, kDefaultTimeout);
  }
  options.principal = line.Get("principal").value_or(Env("CAIRN_PRINCIPAL"));
  Cluster cluster(options);
  const bool json = line.Bool("json");

  if (command == "status") return StatusCommand(cluster, json, out, err);
  if (command == "agents") return AgentsCommand(cluster, json, out, err);
  if (command == "frameworks") {
    return FrameworksCommand(cluster, line.Bool("all"), json, out, err);
  }
  if (command == "tasks") {
    TaskFilter filter;
    filter.framework_id = line.Get("framework").value_or("");
    filter.agent_id = line.Get("agent").value_or("");
    filter.state = line.Get("state").value_or("");
    filter.name_substring = line.Get("name").value_or("");
    filter.all = line.Bool("all");
    return TasksCommand(cluster, filter, json, out, err);
  }
  if (command == "drain") {
    std::optional<absl::Duration> grace;
    if (std::optional<std::string> text = line.Get("max-grace-period")) {
      absl::StatusOr<absl::Duration> d =
          ParseDurationFlag("max-grace-period", *text);
      if (!d.ok()) return Usage(err, std::string(d.status().message()));
      grace = *d;
    }
    return DrainCommand(cluster, line.positional[0], grace,
                        line.Bool("mark-gone"), out, err);
  }
  if (command == "reactivate") {
    return ReactivateCommand(cluster, line.positional[0], out, err);
  }
  if (command == "metrics") {
    return MetricsCommand(cluster, line.Get("filter").value_or(""),
                          line.Bool("all"), json, out, err);
  }
  if (command == "kill") {
    return KillTask(cluster, line.positional[0], line.Get("framework"), json,
                    out, err);
  }
  if (command == "events") {
    EventsOptions events;
    if (std::optional<std::string> from = line.Get("from")) {
      uint64_t position = 0;
      if (!absl::SimpleAtoi(*from, &position)) {
        return Usage(err, absl::StrCat("--from: '", *from,
                                       "' is not a log position"));
      }
      events.from = position;
    }
    if (std::optional<std::string> limit = line.Get("limit")) {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(*limit, &n) || n == 0) {
        return Usage(err, absl::StrCat("--limit: '", *limit,
                                       "' is not a positive number"));
      }
      events.limit = n;
    }
    events.follow = line.Bool("follow") || line.Bool("f");
    events.types = line.Get("type").value_or("");
    events.agent_id = line.Get("agent").value_or("");
    events.framework_id = line.Get("framework").value_or("");
    events.task_id = line.Get("task").value_or("");
    events.json = json;
    return StreamEvents(cluster, events, out, err);
  }
  if (command == "run") {
    if (line.rest.empty()) {
      return Usage(err, "run needs a command after -- (see 'cairnctl help run')");
    }
    RunOptions run;
    run.command = line.rest;
    run.timeout = timeout.value_or(kDefaultRunTimeout);
    run.detach = line.Bool("detach");
    run.json = json;
    for (const auto& [flag, target] :
         {std::pair<const char*, double*>{"cpus", &run.cpus},
          std::pair<const char*, double*>{"mem", &run.mem}}) {
      if (std::optional<std::string> text = line.Get(flag)) {
        absl::StatusOr<double> value = ParseNumberFlag(flag, *text);
        if (!value.ok()) return Usage(err, std::string(value.status().message()));
        *target = *value;
      }
    }
    if (run.cpus <= 0 && run.mem <= 0) {
      return Usage(err, "run needs --cpus or --mem above 0");
    }
    run.name = line.Get("name").value_or("cairnctl-run");
    if (run.name.empty()) return Usage(err, "--name must not be empty");
    run.role = line.Get("role").value_or("*");
    run.user = line.Get("user").value_or(Env("USER"));
    if (run.user.empty()) run.user = "root";
    return RunTask(cluster, run, out, err);
  }
  return Usage(err, absl::StrCat("unknown command '", command, "'"));
}

}  // namespace cairn::cli
