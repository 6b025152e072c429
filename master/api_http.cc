#include "master/api_http.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace cairn::master {

const char* MediaType(Encoding encoding) {
  return encoding == Encoding::kJson ? "application/json"
                                     : "application/x-protobuf";
}

std::optional<Encoding> ParseMediaType(absl::string_view value) {
  absl::string_view type = value.substr(0, value.find(';'));
  type = absl::StripAsciiWhitespace(type);
  if (absl::EqualsIgnoreCase(type, "application/json")) return Encoding::kJson;
  if (absl::EqualsIgnoreCase(type, "application/x-protobuf")) {
    return Encoding::kProtobuf;
  }
  return std::nullopt;
}

std::optional<Encoding> NegotiateAccept(absl::string_view accept,
                                        Encoding fallback) {
  if (absl::StripAsciiWhitespace(accept).empty()) return fallback;
  for (absl::string_view item : absl::StrSplit(accept, ',')) {
    absl::string_view type =
        absl::StripAsciiWhitespace(item.substr(0, item.find(';')));
    if (type == "*/*" || type == "application/*") return fallback;
    if (std::optional<Encoding> e = ParseMediaType(type)) return e;
  }
  return std::nullopt;
}

http::Response ApiError(int status, absl::string_view message,
                        absl::string_view field) {
  std::string body = absl::StrCat("{\"error\":", http::JsonQuote(message));
  if (!field.empty()) {
    absl::StrAppend(&body, ",\"field\":", http::JsonQuote(field));
  }
  absl::StrAppend(&body, "}");
  return http::Response::Json(status, std::move(body));
}

http::Response AnswerResponse(const Answer& answer) {
  if (!answer.ok()) return ApiError(answer.code, answer.message, answer.field);
  http::Response response;
  response.status = answer.code;
  return response;
}

std::string JsonErrorField(absl::string_view message) {
  const size_t end = message.find("): ");
  if (end == absl::string_view::npos) return "";
  const size_t begin = message.rfind('(', end);
  if (begin == absl::string_view::npos) return "";
  absl::string_view field = message.substr(begin + 1, end - begin - 1);
  for (char c : field) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '[' &&
        c != ']') {
      return "";
    }
  }
  return std::string(field);
}

CommandContext ContextOf(const http::Request& request) {
  CommandContext context;
  context.principal = request.headers.Get("X-Cairn-Principal");
  context.request_id = request.headers.Get("X-Request-Id");
  return context;
}

absl::StatusOr<std::string> EncodeMessage(
    const google::protobuf::Message& message, Encoding encoding) {
  // Mesos's JSON (64-bit integers as numbers, declared defaults), as every
  // v1 API answer and event of Mesos is written.
  if (encoding == Encoding::kJson) return MesosJson(message);
  std::string bytes;
  if (!message.SerializeToString(&bytes)) {
    return absl::InternalError("cannot serialize the message");
  }
  return bytes;
}

}  // namespace cairn::master
