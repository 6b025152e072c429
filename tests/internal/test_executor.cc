// test_executor: a minimal custom executor for the agent's end-to-end tests
// (tests/agent_custom_executor_test.cc). It speaks Mesos's v1 executor HTTP
// API in JSON (proto/cairn/v1/executor.proto) and runs no processes: its
// tasks only exist as state.
//
//   LAUNCH        -> TASK_RUNNING; then TASK_FINISHED if the task's data is
//                    "finish".
//   MESSAGE{d}    -> a MESSAGE call with data "echo:" + d (the agent forwards
//                    it to the scheduler).
//   KILL          -> TASK_KILLED.
//   SHUTDOWN      -> TASK_KILLED for every live task, then exit 0 once all
//                    its updates are ACKNOWLEDGED (at most kShutdownAckWait).
//
// Configured by the environment the agent sets (MESOS_AGENT_ENDPOINT,
// MESOS_FRAMEWORK_ID, MESOS_EXECUTOR_ID, MESOS_SANDBOX). Single-threaded:
// it reads the event stream and posts each call in turn. It does not
// resubscribe: when the stream ends it exits (0 after SHUTDOWN, else 1).
// Exit 2: bad environment.

#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cairn/v1/executor.pb.h"
#include "cairn/v1/mesos.pb.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/recordio.h"

namespace cairn::tests {
namespace {

using v1::executor::Call;
using v1::executor::Event;

constexpr char kApiPath[] = "/api/v1/executor";
constexpr char kJson[] = "application/json";
constexpr absl::Duration kShutdownAckWait = absl::Seconds(5);

std::string RandomUuid() {
  absl::BitGen gen;
  std::string uuid(16, '\0');
  for (char& c : uuid) c = static_cast<char>(absl::Uniform<uint8_t>(gen));
  return uuid;
}

class TestExecutor {
 public:
  TestExecutor(std::string host, uint16_t port, std::string framework_id,
               std::string executor_id)
      : host_(std::move(host)), port_(port) {
    framework_id_.set_value(std::move(framework_id));
    executor_id_.set_value(std::move(executor_id));
  }

  int Run() {
    http::Client client;
    absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
        client.OpenStream("POST", host_, port_, kApiPath,
                          {{"Content-Type", kJson}, {"Accept", kJson}},
                          MesosJson(NewCall(Call::SUBSCRIBE)));
    if (!stream.ok() || (*stream)->status() != 200) {
      std::cerr << "test_executor: SUBSCRIBE failed: "
                << (stream.ok() ? absl::StrCat("status ", (*stream)->status())
                                : stream.status().ToString())
                << "\n";
      return 1;
    }
    recordio::Decoder decoder;
    while (true) {
      if (shutdown_deadline_.has_value() &&
          (unacked_.empty() || absl::Now() >= *shutdown_deadline_)) {
        std::cerr << "test_executor: shut down, " << unacked_.size()
                  << " update(s) unacknowledged\n";
        return 0;
      }
      absl::StatusOr<std::optional<std::string>> chunk =
          (*stream)->NextChunk(absl::Milliseconds(200));
      if (!chunk.ok() && absl::IsDeadlineExceeded(chunk.status())) continue;
      if (!chunk.ok() || !chunk->has_value()) {
        std::cerr << "test_executor: the event stream ended: "
                  << (chunk.ok() ? "end of stream" : chunk.status().ToString())
                  << "\n";
        return shutdown_deadline_.has_value() ? 0 : 1;
      }
      std::vector<std::string> records;
      if (absl::Status fed = decoder.Feed(**chunk, &records); !fed.ok()) {
        std::cerr << "test_executor: bad RecordIO: " << fed << "\n";
        return 1;
      }
      for (const std::string& record : records) {
        Event event;
        if (absl::Status parsed = FromJson(record, &event, true);
            !parsed.ok()) {
          std::cerr << "test_executor: bad event: " << parsed << "\n";
          continue;
        }
        Handle(event);
      }
    }
  }

 private:
  void Handle(const Event& event) {
    switch (event.type()) {
      case Event::SUBSCRIBED:
        std::cerr << "test_executor: subscribed\n";
        return;
      case Event::LAUNCH: {
        const v1::TaskInfo& task = event.launch().task();
        tasks_[task.task_id().value()] = task;
        SendUpdate(task, v1::TASK_RUNNING);
        if (task.data() == "finish") {
          SendUpdate(task, v1::TASK_FINISHED);
          tasks_.erase(task.task_id().value());
        }
        return;
      }
      case Event::MESSAGE: {
        Call call = NewCall(Call::MESSAGE);
        call.mutable_message()->set_data("echo:" + event.message().data());
        Post(call);
        return;
      }
      case Event::KILL: {
        auto it = tasks_.find(event.kill().task_id().value());
        if (it == tasks_.end()) return;
        SendUpdate(it->second, v1::TASK_KILLED);
        tasks_.erase(it);
        return;
      }
      case Event::ACKNOWLEDGED:
        unacked_.erase(event.acknowledged().uuid());
        return;
      case Event::SHUTDOWN:
        for (const auto& [id, task] : tasks_) {
          SendUpdate(task, v1::TASK_KILLED);
        }
        tasks_.clear();
        shutdown_deadline_ = absl::Now() + kShutdownAckWait;
        return;
      case Event::ERROR:
        std::cerr << "test_executor: agent error: " << event.error().message()
                  << "\n";
        return;
      default:
        return;  // HEARTBEAT, LAUNCH_GROUP (unsupported)
    }
  }

  Call NewCall(Call::Type type) const {
    Call call;
    call.set_type(type);
    *call.mutable_framework_id() = framework_id_;
    *call.mutable_executor_id() = executor_id_;
    return call;
  }

  void SendUpdate(const v1::TaskInfo& task, v1::TaskState state) {
    Call call = NewCall(Call::UPDATE);
    v1::TaskStatus* status = call.mutable_update()->mutable_status();
    *status->mutable_task_id() = task.task_id();
    status->set_state(state);
    status->set_source(v1::TaskStatus::SOURCE_EXECUTOR);
    *status->mutable_executor_id() = executor_id_;
    if (task.has_agent_id()) *status->mutable_agent_id() = task.agent_id();
    status->set_uuid(RandomUuid());
    unacked_.insert(status->uuid());
    std::cerr << "test_executor: task " << task.task_id().value() << " "
              << v1::TaskState_Name(state) << "\n";
    Post(call);
  }

  // Posts `call`; every call but SUBSCRIBE is answered 202.
  void Post(const Call& call) {
    absl::StatusOr<http::Response> response =
        calls_.Request("POST", host_, port_, kApiPath,
                       {{"Content-Type", kJson}, {"Accept", kJson}},
                       MesosJson(call));
    if (!response.ok() || response->status != 202) {
      std::cerr << "test_executor: " << Call::Type_Name(call.type())
                << " failed: "
                << (response.ok() ? absl::StrCat(response->status, " ",
                                                 response->body)
                                  : response.status().ToString())
                << "\n";
    }
  }

  const std::string host_;
  const uint16_t port_;
  v1::FrameworkID framework_id_;
  v1::ExecutorID executor_id_;
  http::Client calls_;  // UPDATE and MESSAGE; the stream has its own
  std::map<std::string, v1::TaskInfo> tasks_;  // live, by task id
  std::set<std::string> unacked_;              // uuids of updates
  std::optional<absl::Time> shutdown_deadline_;  // set by SHUTDOWN
};

std::string Env(const char* name) {
  const char* value = getenv(name);
  return value != nullptr ? value : "";
}

}  // namespace
}  // namespace cairn::tests

int main() {
  signal(SIGPIPE, SIG_IGN);
  const std::string endpoint = cairn::tests::Env("MESOS_AGENT_ENDPOINT");
  const std::string framework_id = cairn::tests::Env("MESOS_FRAMEWORK_ID");
  const std::string executor_id = cairn::tests::Env("MESOS_EXECUTOR_ID");
  const std::string sandbox = cairn::tests::Env("MESOS_SANDBOX");
  const size_t colon = endpoint.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(endpoint.substr(colon + 1), &port) || port == 0 ||
      port > 65535) {
    std::cerr << "test_executor: MESOS_AGENT_ENDPOINT must be host:port, not '"
              << endpoint << "'\n";
    return 2;
  }
  for (const char* name :
       {"MESOS_FRAMEWORK_ID", "MESOS_EXECUTOR_ID", "MESOS_SANDBOX"}) {
    if (cairn::tests::Env(name).empty()) {
      std::cerr << "test_executor: " << name << " is not set\n";
      return 2;
    }
  }
  std::cerr << "test_executor: executor " << executor_id << " of framework "
            << framework_id << " in " << sandbox << "\n";
  cairn::tests::TestExecutor executor(endpoint.substr(0, colon),
                                      static_cast<uint16_t>(port), framework_id,
                                      executor_id);
  return executor.Run();
}
