#include "log/client.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/json_value.h"

namespace cairn::log {

namespace {

// A server's answer as JSON; kInternal when it is not JSON.
absl::StatusOr<JsonValue> ParseAnswer(absl::string_view text) {
  absl::StatusOr<JsonValue> value = ParseJson(text);
  if (!value.ok()) {
    return absl::InternalError(
        absl::StrCat("unparsable answer from the server: ", text));
  }
  return value;
}

// A field's string or number text; "" when absent or of another kind.
std::string Field(const JsonValue& object, absl::string_view name) {
  const JsonValue* value = object.Find(name);
  if (value == nullptr || (value->kind != JsonValue::Kind::kString &&
                           value->kind != JsonValue::Kind::kNumber)) {
    return "";
  }
  return value->text;
}

absl::StatusOr<uint64_t> NumberField(const JsonValue& object,
                                     absl::string_view name) {
  uint64_t value = 0;
  if (!absl::SimpleAtoi(Field(object, name), &value)) {
    return absl::InternalError(
        absl::StrCat("the server's answer lacks a numeric '", name, "'"));
  }
  return value;
}

// True for a 503 after which the entry is certainly not in the log.
bool RetryableUnavailable(const http::Response& response) {
  if (response.status != 503) return false;
  auto object = ParseAnswer(response.body);
  return !object.ok() || Field(*object, "outcome") != "unknown";
}

}  // namespace

absl::StatusOr<std::vector<PeerAddress>> ParseAddressList(
    absl::string_view list) {
  std::vector<PeerAddress> addresses;
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    auto address = ParsePeerAddress(part);
    if (!address.ok()) return address.status();
    addresses.push_back(*std::move(address));
  }
  if (addresses.empty()) {
    return absl::InvalidArgumentError(
        "no address given (expected host:port[,host:port...])");
  }
  return addresses;
}

absl::Status ErrorFromResponse(const http::Response& response) {
  std::string message = response.body;
  auto object = ParseAnswer(response.body);
  if (object.ok() && !Field(*object, "error").empty()) {
    message = Field(*object, "error");
  }
  message = absl::StrCat("HTTP ", response.status, ": ", message);
  switch (response.status) {
    case 400:
      return absl::InvalidArgumentError(message);
    case 404:
      return absl::NotFoundError(message);
    case 409:
      return absl::FailedPreconditionError(message);
    case 503:
      return absl::UnavailableError(message);
    case 504:
      return absl::DeadlineExceededError(message);
    default:
      return absl::InternalError(message);
  }
}

LogClient::LogClient(LogClientOptions options) : options_(std::move(options)) {
  http::ClientOptions http_options;
  http_options.follow_redirects = true;
  http_ = std::make_unique<http::Client>(http_options);
}

LogClient::~LogClient() = default;

absl::StatusOr<std::string> LogClient::Write(absl::string_view target,
                                             absl::string_view body) {
  if (options_.addresses.empty()) {
    return absl::InvalidArgumentError("no replica address given");
  }
  const absl::Time deadline = absl::Now() + options_.timeout;
  absl::Status last = absl::DeadlineExceededError("no replica was tried");
  while (true) {
    for (size_t i = 0; i < options_.addresses.size(); ++i) {
      const size_t index = (preferred_ + i) % options_.addresses.size();
      const PeerAddress& address = options_.addresses[index];
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      auto response = http_->Request(
          "POST", address.host, address.port, target,
          {{"Content-Type", "application/octet-stream"}}, body, left);
      if (!response.ok()) {
        last = absl::Status(response.status().code(),
                            absl::StrCat(address.ToString(), ": ",
                                         response.status().message()));
        http_->CloseConnection();
        continue;
      }
      if (response->status == 200) {
        preferred_ = index;
        return response->body;
      }
      if (RetryableUnavailable(*response)) {
        last = ErrorFromResponse(*response);
        continue;
      }
      return ErrorFromResponse(*response);
    }
    if (absl::Now() + options_.retry_interval >= deadline) {
      return absl::UnavailableError(absl::StrCat(
          "no replica accepted the request within ",
          absl::FormatDuration(options_.timeout), "; last: ", last.message()));
    }
    absl::SleepFor(options_.retry_interval);
  }
}

absl::StatusOr<http::Response> LogClient::Get(absl::string_view target) {
  if (options_.addresses.empty()) {
    return absl::InvalidArgumentError("no replica address given");
  }
  const absl::Time deadline = absl::Now() + options_.timeout;
  absl::Status last = absl::DeadlineExceededError("no replica was tried");
  for (size_t i = 0; i < options_.addresses.size(); ++i) {
    const size_t index = (preferred_ + i) % options_.addresses.size();
    const PeerAddress& address = options_.addresses[index];
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    auto response =
        http_->Request("GET", address.host, address.port, target, {}, "", left);
    if (response.ok()) {
      preferred_ = index;
      return response;
    }
    last = absl::Status(
        response.status().code(),
        absl::StrCat(address.ToString(), ": ", response.status().message()));
    http_->CloseConnection();
  }
  return last;
}

absl::StatusOr<Position> LogClient::Append(absl::string_view data) {
  auto body = Write("/log/append", data);
  if (!body.ok()) return body.status();
  auto object = ParseAnswer(*body);
  if (!object.ok()) return object.status();
  auto position = NumberField(*object, "position");
  if (!position.ok()) return position.status();
  auto index = NumberField(*object, "index");
  if (!index.ok()) return index.status();
  return Position{*position, static_cast<uint32_t>(*index)};
}

absl::StatusOr<uint64_t> LogClient::Truncate(uint64_t to) {
  auto body = Write(absl::StrCat("/log/truncate?to=", to), "");
  if (!body.ok()) return body.status();
  auto object = ParseAnswer(*body);
  if (!object.ok()) return object.status();
  return NumberField(*object, "position");
}

absl::StatusOr<LogClient::ReadJsonResult> LogClient::ReadJson(
    std::optional<uint64_t> from, std::optional<uint64_t> to,
    std::optional<uint64_t> limit) {
  std::string target = "/log/read";
  char separator = '?';
  for (const auto& [name, value] :
       {std::pair<const char*, std::optional<uint64_t>>{"from", from},
        {"to", to},
        {"limit", limit}}) {
    if (!value.has_value()) continue;
    absl::StrAppend(&target, std::string(1, separator), name, "=", *value);
    separator = '&';
  }
  auto response = Get(target);
  if (!response.ok()) return response.status();
  if (response->status != 200) return ErrorFromResponse(*response);
  ReadJsonResult result;
  result.json = std::move(response->body);
  (void)absl::SimpleAtoi(response->headers.Get("X-Cairn-Next-Position"),
                         &result.next);
  return result;
}

absl::StatusOr<ReadPage> LogClient::Read(std::optional<uint64_t> from,
                                         std::optional<uint64_t> to,
                                         std::optional<uint64_t> limit) {
  auto raw = ReadJson(from, to, limit);
  if (!raw.ok()) return raw.status();
  auto list = ParseAnswer(raw->json);
  if (!list.ok()) return list.status();
  if (list->kind != JsonValue::Kind::kArray) {
    return absl::InternalError("read answer is not a JSON array");
  }
  ReadPage page;
  page.next = raw->next;
  for (const JsonValue& object : list->items) {
    if (object.kind != JsonValue::Kind::kObject) {
      return absl::InternalError("read answer holds a non-object");
    }
    Entry entry;
    auto position = NumberField(object, "position");
    if (!position.ok()) return position.status();
    auto index = NumberField(object, "index");
    if (!index.ok()) return index.status();
    entry.position = *position;
    entry.index = static_cast<uint32_t>(*index);
    if (!absl::Base64Unescape(Field(object, "data"), &entry.data)) {
      return absl::InternalError("read answer holds bad base64 data");
    }
    page.entries.push_back(std::move(entry));
  }
  return page;
}

absl::StatusOr<std::string> LogClient::StatusJson() {
  auto response = Get("/log/status");
  if (!response.ok()) return response.status();
  if (response->status != 200) return ErrorFromResponse(*response);
  return std::move(response->body);
}

}  // namespace cairn::log
