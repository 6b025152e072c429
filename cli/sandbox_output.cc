#include "cli/sandbox_output.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/http_client.h"

namespace cairn::cli {
namespace {

constexpr absl::Duration kAgentTimeout = absl::Seconds(2);
constexpr uint64_t kReadLength = 64 * 1024;

bool Names(const JsonValue& list_owner, absl::string_view list,
           absl::string_view task_id) {
  const JsonValue* tasks = list_owner.Find(list);
  if (tasks == nullptr) return false;
  for (const JsonValue& task : tasks->items) {
    if (task.Text("id") == task_id) return true;
  }
  return false;
}

}  // namespace

std::string UrlEncode(absl::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' ||
        c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

std::optional<std::string> SandboxDirectory(const JsonValue& state,
                                            absl::string_view framework_id,
                                            absl::string_view task_id) {
  for (const char* frameworks : {"frameworks", "completed_frameworks"}) {
    const JsonValue* list = state.Find(frameworks);
    if (list == nullptr) continue;
    for (const JsonValue& framework : list->items) {
      if (framework.Text("id") != framework_id) continue;
      for (const char* executors : {"executors", "completed_executors"}) {
        const JsonValue* execs = framework.Find(executors);
        if (execs == nullptr) continue;
        for (const JsonValue& executor : execs->items) {
          const bool ours = executor.Text("id") == task_id ||
                            Names(executor, "tasks", task_id) ||
                            Names(executor, "queued_tasks", task_id) ||
                            Names(executor, "completed_tasks", task_id);
          std::optional<std::string> directory = executor.Text("directory");
          if (ours && directory.has_value() && !directory->empty()) {
            return directory;
          }
        }
      }
    }
  }
  return std::nullopt;
}

SandboxOutput::SandboxOutput(http::HostPort agent, std::string framework_id,
                             std::string task_id, std::ostream* out,
                             std::ostream* err)
    : agent_(std::move(agent)),
      framework_id_(std::move(framework_id)),
      task_id_(std::move(task_id)),
      out_(out),
      err_(err) {}

void SandboxOutput::Warn(const absl::Status& status) {
  disabled_ = true;
  *err_ << "cairnctl: warning: cannot show the task's output from agent "
        << agent_.ToString() << ": " << status.message() << std::endl;
}

absl::Status SandboxOutput::FindSandbox(bool* found) {
  http::Client client;
  absl::StatusOr<http::Response> state =
      client.Request("GET", agent_.host, agent_.port, "/state",
                     {{"Accept", "application/json"}}, "", kAgentTimeout);
  if (!state.ok()) return state.status();
  if (state->status != 200) {
    return absl::UnavailableError(
        absl::StrCat("GET /state answered HTTP ", state->status));
  }
  absl::StatusOr<JsonValue> json = ParseJson(state->body);
  if (!json.ok()) return absl::InternalError("GET /state is not JSON");
  directory_ = SandboxDirectory(*json, framework_id_, task_id_);
  *found = directory_.has_value();
  return absl::OkStatus();
}

absl::Status SandboxOutput::ReadFile(const std::string& name,
                                     uint64_t* offset, std::ostream* to) {
  http::Client client;
  for (int pages = 0; pages < 64; ++pages) {
    const std::string target =
        absl::StrCat("/files/read?path=", UrlEncode(*directory_ + "/" + name),
                     "&offset=", *offset, "&length=", kReadLength);
    absl::StatusOr<http::Response> read = client.Request(
        "GET", agent_.host, agent_.port, target,
        {{"Accept", "application/json"}}, "", kAgentTimeout);
    if (!read.ok()) return read.status();
    if (read->status == 404) return absl::OkStatus();  // not written yet
    if (read->status != 200) {
      return absl::UnavailableError(absl::StrCat(
          "GET /files/read of ", name, " answered HTTP ", read->status));
    }
    absl::StatusOr<JsonValue> json = ParseJson(read->body);
    const std::optional<std::string> data =
        json.ok() ? json->Text("data") : std::nullopt;
    if (!data.has_value()) {
      return absl::InternalError(absl::StrCat(
          "GET /files/read of ", name, " has no \"data\""));
    }
    if (data->empty()) return absl::OkStatus();
    *to << *data;
    to->flush();
    *offset += data->size();
  }
  return absl::OkStatus();
}

void SandboxOutput::Poll(bool final) {
  if (disabled_) return;
  if (!directory_.has_value()) {
    bool found = false;
    absl::Status status = FindSandbox(&found);
    if (!status.ok()) return Warn(status);
    if (!found) {
      if (final) {
        Warn(absl::NotFoundError(absl::StrCat(
            "its /state names no sandbox for task ", task_id_)));
      }
      return;
    }
  }
  absl::Status read = ReadFile("stdout", &stdout_offset_, out_);
  if (read.ok()) read = ReadFile("stderr", &stderr_offset_, err_);
  if (!read.ok()) Warn(read);
}

}  // namespace cairn::cli
