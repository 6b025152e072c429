// HTTP plumbing shared by the master's v1 APIs (POST /api/v1/agent,
// /api/v1/scheduler and /api/v1): content negotiation, parsing a call in
// JSON or protobuf by its Content-Type, the {"error", "field"} error body,
// and an event stream over a chunked response (one RecordIO record per
// event).
//
// Encodings follow Mesos: application/json (proto field names, enums by
// name, common/json.h) and application/x-protobuf. A stream's records use
// the encoding negotiated from Accept.
//
// Thread safety: the functions are pure; an HttpEventStream may be used
// from any thread (http::Responder is thread-safe), one Send at a time.

#ifndef CAIRN_MASTER_API_HTTP_H_
#define CAIRN_MASTER_API_HTTP_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/http_message.h"
#include "common/http_server.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/recordio.h"
#include "master/command_path.h"
#include "master/leader.h"

namespace cairn::master {

// How an API body or stream is encoded.
enum class Encoding { kJson, kProtobuf };

// "application/json" or "application/x-protobuf".
const char* MediaType(Encoding encoding);

// "application/json; charset=utf-8" -> kJson. nullopt for anything else.
std::optional<Encoding> ParseMediaType(absl::string_view value);

// The encoding an answer or stream should use: the first acceptable item
// of `accept`; `fallback` when it is absent or a wildcard; nullopt (406)
// when it names only encodings we cannot produce.
std::optional<Encoding> NegotiateAccept(absl::string_view accept,
                                        Encoding fallback);

// An error answer of the v1 APIs: {"error": "...", "field": "..."} (no
// "field" when `field` is empty).
http::Response ApiError(int status, absl::string_view message,
                        absl::string_view field = "");

// An Answer as an HTTP response: errors as ApiError, success as its code
// with an empty body.
http::Response AnswerResponse(const Answer& answer);

// The principal (X-Cairn-Principal) and request id (X-Request-Id) of a
// request, for the events it causes.
CommandContext ContextOf(const http::Request& request);

// The field a protobuf JSON parser error names, e.g.
// "subscribe.framework_info.user" from "...: (subscribe.framework_info.user):
// invalid value 5 for type TYPE_STRING"; "" when it names none.
std::string JsonErrorField(absl::string_view message);

// Parses an API call body by its Content-Type into `*call` and sets
// `*encoding`. Returns nullopt on success, else the answer: 400 without a
// Content-Type (as Mesos), 415 for one other than JSON or protobuf, 400 for
// a body that does not parse (naming the field when the parser does) or a
// call without a (known) `type`. Unknown JSON fields are ignored (a newer
// client's extras). REQUIRES: Call has `type`.
template <typename Call>
std::optional<http::Response> ParseCall(const http::Request& request,
                                        Call* call, Encoding* encoding) {
  if (!request.headers.Has("Content-Type")) {
    return ApiError(400, "Expecting 'Content-Type' to be present",
                    "Content-Type");
  }
  const std::optional<Encoding> e =
      ParseMediaType(request.headers.Get("Content-Type"));
  if (!e.has_value()) {
    return ApiError(415,
                    "Content-Type must be application/json or "
                    "application/x-protobuf",
                    "Content-Type");
  }
  *encoding = *e;
  if (*e == Encoding::kJson) {
    absl::Status parsed =
        FromJson(request.body, call, /*ignore_unknown_fields=*/true);
    if (!parsed.ok()) {
      return ApiError(400,
                      absl::StrCat("malformed JSON call: ", parsed.message()),
                      JsonErrorField(parsed.message()));
    }
  } else if (!call->ParseFromString(request.body)) {
    return ApiError(400, "malformed protobuf call");
  }
  if (!call->has_type() || call->type() == 0) {
    return ApiError(400, "the call has no (known) type", "type");
  }
  return std::nullopt;
}

// `message` in `encoding`: JSON is Mesos's dialect (common/json.h MesosJson:
// 64-bit integers as numbers, declared defaults written). Returns kInternal
// when a protobuf message cannot be serialized (missing required fields).
absl::StatusOr<std::string> EncodeMessage(
    const google::protobuf::Message& message, Encoding encoding);

// An event stream on a chunked HTTP response: one RecordIO record per
// chunk, each a Message in the negotiated encoding. `Interface` is the
// stream interface its user sends to (Send(const Message&), Close()).
template <typename Interface, typename Message>
class HttpEventStream : public Interface {
 public:
  HttpEventStream(std::shared_ptr<http::Responder> responder, Encoding encoding)
      : responder_(std::move(responder)), encoding_(encoding) {}
  void Send(const Message& message) override {
    absl::StatusOr<std::string> bytes = EncodeMessage(message, encoding_);
    if (!bytes.ok()) {
      LOG(ERROR) << "cannot encode an event: " << bytes.status();
      return;
    }
    responder_->WriteChunk(recordio::Encode(*bytes));
  }
  void Close() override { responder_->Close(); }

 private:
  const std::shared_ptr<http::Responder> responder_;
  const Encoding encoding_;
};

}  // namespace cairn::master

#endif  // CAIRN_MASTER_API_HTTP_H_
