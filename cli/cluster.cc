#include "cli/cluster.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/json.h"

namespace cairn::cli {
namespace {

constexpr char kJson[] = "application/json";

http::MasterChannelOptions ChannelOptions(const ClusterOptions& options,
                                          const char* path) {
  http::MasterChannelOptions channel;
  channel.masters = options.masters;
  channel.path = path;
  channel.request_timeout =
      std::min(options.timeout, absl::Seconds(5));
  return channel;
}

// The text after "last: " of a MasterChannel deadline error, else all.
std::string LastCause(absl::string_view message) {
  constexpr absl::string_view kLast = "; last: ";
  size_t at = message.find(kLast);
  if (at == absl::string_view::npos) return std::string(message);
  return std::string(message.substr(at + kLast.size()));
}

}  // namespace

absl::Status ErrorFromAnswer(int code, absl::string_view body) {
  std::string text(absl::StripAsciiWhitespace(body));
  absl::StatusOr<JsonValue> json = ParseJson(body);
  if (json.ok() && json->kind == JsonValue::Kind::kObject) {
    if (std::optional<std::string> error = json->Text("error")) {
      text = *error;
      if (std::optional<std::string> field = json->Text("field");
          field.has_value() && !field->empty()) {
        absl::StrAppend(&text, " (field ", *field, ")");
      }
    }
  }
  absl::Status status = http::StatusFromHttp(code, body);
  return absl::Status(status.code(), absl::StrCat("HTTP ", code, ": ", text));
}

absl::StatusOr<std::vector<std::string>> Cluster::ParseMasters(
    absl::string_view list) {
  std::vector<std::string> masters;
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    absl::string_view address = part;
    absl::ConsumePrefix(&address, "http://");
    absl::ConsumeSuffix(&address, "/");
    absl::StatusOr<http::HostPort> parsed = http::ParseHostPort(address);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--master: '", part, "' is not host:port"));
    }
    masters.push_back(parsed->ToString());
  }
  if (masters.empty()) {
    return absl::InvalidArgumentError("--master: no master address given");
  }
  return masters;
}

Cluster::Cluster(ClusterOptions options)
    : options_(std::move(options)),
      operator_channel_(ChannelOptions(options_, "/api/v1")) {
  for (const std::string& master : options_.masters) {
    absl::StatusOr<http::HostPort> parsed = http::ParseHostPort(master);
    if (parsed.ok()) hosts_.push_back(*parsed);
  }
}

std::string Cluster::MastersText() const {
  return absl::StrJoin(options_.masters, ",");
}

absl::Status Cluster::Explain(const absl::Status& status) const {
  if (status.code() != absl::StatusCode::kUnavailable &&
      status.code() != absl::StatusCode::kDeadlineExceeded) {
    return status;
  }
  const std::string cause = LastCause(status.message());
  if (http::HttpStatusOf(status) == 503) {
    return absl::UnavailableError(absl::StrCat(
        "no leading master at ", MastersText(), " (", cause, ")"));
  }
  return absl::UnavailableError(
      absl::StrCat("no master answered at ", MastersText(), " (", cause, ")"));
}

absl::StatusOr<v1::master_api::Response> Cluster::Operator(
    const v1::master_api::Call& call) {
  http::Headers headers = {{"Content-Type", kJson}, {"Accept", kJson}};
  if (!options_.principal.empty()) {
    headers.Set("X-Cairn-Principal", options_.principal);
  }
  absl::StatusOr<http::Response> answer = operator_channel_.Post(
      headers, MesosJson(call), absl::Now() + options_.timeout);
  if (!answer.ok()) return Explain(answer.status());
  if (answer->status < 200 || answer->status >= 300) {
    return ErrorFromAnswer(answer->status, answer->body);
  }
  v1::master_api::Response response;
  if (absl::StripAsciiWhitespace(answer->body).empty()) return response;
  absl::Status parsed =
      FromJson(answer->body, &response, /*ignore_unknown_fields=*/true);
  if (!parsed.ok()) {
    return absl::InternalError(absl::StrCat(
        "the master's answer to ",
        v1::master_api::Call::Type_Name(call.type()),
        " does not parse: ", parsed.message()));
  }
  return response;
}

absl::StatusOr<http::Response> Cluster::Get(const http::HostPort& master,
                                            absl::string_view target,
                                            absl::Duration timeout) {
  http::Client client;
  return client.Request("GET", master.host, master.port, target,
                        {{"Accept", kJson}, {"Connection", "close"}}, "",
                        timeout);
}

std::vector<MasterStatus> Cluster::Survey(absl::Duration per_request) {
  std::vector<MasterStatus> out;
  std::vector<http::HostPort> targets = hosts_;
  for (size_t i = 0; i < targets.size(); ++i) {
    const http::HostPort& host = targets[i];
    MasterStatus status;
    status.address = host.ToString();
    absl::StatusOr<http::Response> health = Get(host, "/health", per_request);
    status.healthy = health.ok() && health->status == 200;
    absl::StatusOr<http::Response> replica =
        Get(host, "/master/replica", per_request);
    if (!replica.ok()) {
      status.error = std::string(replica.status().message());
    } else if (replica->status != 200) {
      status.error =
          std::string(ErrorFromAnswer(replica->status, replica->body).message());
    } else if (absl::StatusOr<JsonValue> json = ParseJson(replica->body);
               !json.ok()) {
      status.error = "/master/replica is not JSON";
    } else {
      status.answered = true;
      status.role = json->Text("role").value_or("");
      status.leader = json->Text("leader").value_or("");
      status.applied = json->Uint("applied");
      status.agents = json->Uint("agents");
      status.frameworks = json->Uint("frameworks");
      status.tasks = json->Uint("tasks");
      if (const JsonValue* log = json->Find("log")) {
        status.log_begin = log->Uint("begin");
        status.log_learned_through = log->Uint("learned_through");
        status.log_serving = log->Bool("serving");
      }
      // A leader outside the given list is shown too.
      if (!status.leader.empty()) {
        absl::StatusOr<http::HostPort> leader =
            http::ParseHostPort(status.leader);
        bool known = false;
        for (const http::HostPort& t : targets) known |= leader.ok() && t == *leader;
        if (leader.ok() && !known) targets.push_back(*leader);
      }
    }
    out.push_back(std::move(status));
  }
  return out;
}

absl::StatusOr<http::HostPort> Cluster::FindLeader(absl::Time deadline) {
  absl::Duration backoff = absl::Milliseconds(50);
  std::string last = "no master was asked";
  bool answered = false;
  while (true) {
    for (const http::HostPort& host : hosts_) {
      const absl::Duration left = deadline - absl::Now();
      absl::StatusOr<http::Response> replica = Get(
          host, "/master/replica",
          std::clamp(left, absl::Milliseconds(100), absl::Seconds(3)));
      if (!replica.ok()) {
        last = absl::StrCat(host.ToString(), ": ", replica.status().message());
        continue;
      }
      answered = true;
      absl::StatusOr<JsonValue> json = ParseJson(replica->body);
      if (replica->status != 200 || !json.ok()) {
        last = absl::StrCat(host.ToString(), ": HTTP ", replica->status);
        continue;
      }
      if (json->Text("role") == "leading") return host;
      last = absl::StrCat(host.ToString(), ": ",
                          json->Text("role").value_or("?"), ", leader ",
                          json->Text("leader").value_or("unknown"));
    }
    if (absl::Now() + backoff >= deadline) break;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(500));
  }
  return absl::UnavailableError(
      absl::StrCat(answered ? "no leading master at " : "no master answered at ",
                   MastersText(), " (", last, ")"));
}

}  // namespace cairn::cli
