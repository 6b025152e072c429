#include "common/master_channel.h"

#include <algorithm>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace cairn::http {
namespace {

constexpr char kHttpStatusPayload[] = "type.cairn/tests.HttpStatus";
// Error bodies are short JSON; a longer one is cut in messages.
constexpr size_t kMaxErrorBody = 4096;

absl::Status WithHttpStatus(absl::Status status, int code) {
  status.SetPayload(kHttpStatusPayload, absl::Cord(absl::StrCat(code)));
  return status;
}

// `status` with "host:port: " in front of its message, payloads kept.
absl::Status Annotate(const absl::Status& status, const HostPort& to) {
  absl::Status annotated(status.code(),
                         absl::StrCat(to.ToString(), ": ", status.message()));
  status.ForEachPayload(
      [&](absl::string_view type_url, const absl::Cord& payload) {
        annotated.SetPayload(type_url, payload);
      });
  return annotated;
}

// Reads a (non-streaming) error body from `stream` until its end, the
// deadline or kMaxErrorBody bytes.
std::string ReadBody(http::ClientStream* stream, absl::Time deadline) {
  std::string body;
  while (body.size() < kMaxErrorBody) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    absl::StatusOr<std::optional<std::string>> chunk = stream->NextChunk(left);
    if (!chunk.ok() || !chunk->has_value()) break;
    body += **chunk;
  }
  if (body.size() > kMaxErrorBody) body.resize(kMaxErrorBody);
  return body;
}

}  // namespace

std::string HostPort::ToString() const {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("not host:port: '", address, "'"));
  }
  absl::string_view host = address.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  uint32_t port = 0;
  if (host.empty() || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port == 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("not host:port: '", address, "'"));
  }
  return HostPort{std::string(host), static_cast<uint16_t>(port)};
}

absl::StatusOr<HostPort> ParseLocation(absl::string_view location) {
  absl::string_view rest = location;
  if (!absl::ConsumePrefix(&rest, "http://")) absl::ConsumePrefix(&rest, "//");
  rest = rest.substr(0, rest.find('/'));
  absl::StatusOr<HostPort> parsed = ParseHostPort(rest);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unusable Location '", location, "'"));
  }
  return parsed;
}

absl::Status StatusFromHttp(int code, absl::string_view body) {
  absl::StatusCode status_code;
  if (code >= 200 && code < 300) return absl::OkStatus();
  switch (code) {
    case 400:
    case 405:
    case 406:
    case 413:
    case 415:
      status_code = absl::StatusCode::kInvalidArgument;
      break;
    case 401:
      status_code = absl::StatusCode::kUnauthenticated;
      break;
    case 403:
      status_code = absl::StatusCode::kPermissionDenied;
      break;
    case 404:
      status_code = absl::StatusCode::kNotFound;
      break;
    case 409:
      status_code = absl::StatusCode::kFailedPrecondition;
      break;
    case 429:
      status_code = absl::StatusCode::kResourceExhausted;
      break;
    case 501:
      status_code = absl::StatusCode::kUnimplemented;
      break;
    case 307:
    case 503:
      status_code = absl::StatusCode::kUnavailable;
      break;
    default:
      status_code = absl::StatusCode::kInternal;
  }
  return WithHttpStatus(
      absl::Status(status_code, absl::StrCat("HTTP ", code, ": ",
                                             body.substr(0, kMaxErrorBody))),
      code);
}

std::optional<int> HttpStatusOf(const absl::Status& status) {
  auto payload = status.GetPayload(kHttpStatusPayload);  // absl::optional
  int code = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &code)) {
    return std::nullopt;
  }
  return code;
}

MasterChannel::MasterChannel(MasterChannelOptions options)
    : options_(std::move(options)) {
  for (const std::string& address : options_.masters) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(address);
    if (!parsed.ok()) {
      parse_status_ = parsed.status();
      return;
    }
    masters_.push_back(*std::move(parsed));
  }
  if (masters_.empty()) {
    parse_status_ = absl::InvalidArgumentError("no master addresses");
  }
}

void MasterChannel::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  cancel_cv_.notify_all();
}

std::optional<HostPort> MasterChannel::leader_hint() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leader_hint_;
}

absl::StatusOr<MasterChannel::Attempt> MasterChannel::Run(
    const Exchange& exchange, absl::Time deadline) {
  if (!parse_status_.ok()) return parse_status_;
  size_t next_index = 0;  // the master to try after a failure
  HostPort to = masters_[0];
  if (std::optional<HostPort> hint = leader_hint(); hint.has_value()) {
    to = *hint;
  }
  absl::Duration backoff = options_.initial_backoff;
  int redirects = 0;
  absl::Status last = absl::UnavailableError("no master was tried");
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_) return absl::CancelledError("the channel was cancelled");
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) break;
    Attempt attempt =
        exchange(to, std::min(deadline, now + options_.request_timeout));
    if (attempt.response.has_value() || attempt.stream != nullptr) {
      std::lock_guard<std::mutex> lock(mu_);
      leader_hint_ = to;
      return attempt;
    }
    if (attempt.redirect.has_value() && redirects < options_.max_redirects) {
      ++redirects;
      last = absl::UnavailableError(absl::StrCat(
          to.ToString(), ": 307 to ", attempt.redirect->ToString()));
      to = *attempt.redirect;
      continue;
    }
    last = attempt.redirect.has_value()
               ? absl::UnavailableError(absl::StrCat(
                     to.ToString(), ": more than ", options_.max_redirects,
                     " redirects in a row"))
               : attempt.failure;
    redirects = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (leader_hint_.has_value() && *leader_hint_ == to) {
        leader_hint_.reset();
      }
    }
    // The next master after the one that failed, in the given order (or
    // the next in turn after a redirect target that is not in the list).
    auto it = std::find(masters_.begin(), masters_.end(), to);
    if (it != masters_.end()) {
      next_index = static_cast<size_t>(it - masters_.begin()) + 1;
    }
    next_index %= masters_.size();
    to = masters_[next_index++];
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cancel_cv_.wait_for(lock,
                          absl::ToChronoNanoseconds(std::min(backoff, left)),
                          [this] { return cancelled_; });
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  absl::Status expired = absl::UnavailableError(absl::StrCat(
      "no leading master answered ", options_.path,
      " before the deadline; last: ", last.message()));
  if (std::optional<int> code = HttpStatusOf(last); code.has_value()) {
    expired = WithHttpStatus(std::move(expired), *code);
  }
  return expired;
}

absl::StatusOr<http::Response> MasterChannel::Post(
    const http::Headers& headers, absl::string_view body, absl::Time deadline,
    bool retry_unavailable, http::Client* client) {
  Exchange exchange = [&](const HostPort& to, absl::Time until) {
    Attempt attempt;
    http::Client local;
    http::Client* c = client != nullptr ? client : &local;
    absl::StatusOr<http::Response> r =
        c->Request("POST", to.host, to.port, options_.path, headers, body,
                   std::max(until - absl::Now(), absl::Milliseconds(1)));
    if (!r.ok()) {
      attempt.failure = Annotate(r.status(), to);
    } else if (r->status == 307) {
      absl::StatusOr<HostPort> location =
          ParseLocation(r->headers.Get("Location"));
      if (location.ok()) {
        attempt.redirect = *location;
      } else {
        attempt.failure = Annotate(location.status(), to);
      }
    } else if (r->status == 503 && retry_unavailable) {
      attempt.failure = Annotate(StatusFromHttp(r->status, r->body), to);
    } else {
      attempt.response = *std::move(r);
    }
    return attempt;
  };
  absl::StatusOr<Attempt> attempt = Run(exchange, deadline);
  if (!attempt.ok()) return attempt.status();
  return *std::move(attempt->response);
}

absl::StatusOr<std::unique_ptr<http::ClientStream>> MasterChannel::OpenStream(
    const http::Headers& headers, absl::string_view body, absl::Time deadline) {
  Exchange exchange = [&](const HostPort& to, absl::Time until) {
    Attempt attempt;
    http::Client client;
    absl::StatusOr<std::unique_ptr<http::ClientStream>> s =
        client.OpenStream("POST", to.host, to.port, options_.path, headers,
                          body,
                          std::max(until - absl::Now(), absl::Milliseconds(1)));
    if (!s.ok()) {
      attempt.failure = Annotate(s.status(), to);
      return attempt;
    }
    const int code = (*s)->status();
    if (code == 200) {
      attempt.stream = *std::move(s);
    } else if (code == 307) {
      absl::StatusOr<HostPort> location =
          ParseLocation((*s)->headers().Get("Location"));
      if (location.ok()) {
        attempt.redirect = *location;
      } else {
        attempt.failure = Annotate(location.status(), to);
      }
    } else {
      http::Response response;
      response.status = code;
      response.headers = (*s)->headers();
      response.body = ReadBody(s->get(), until);
      if (code == 503) {
        attempt.failure = Annotate(StatusFromHttp(code, response.body), to);
      } else {
        attempt.response = std::move(response);
      }
    }
    return attempt;
  };
  absl::StatusOr<Attempt> attempt = Run(exchange, deadline);
  if (!attempt.ok()) return attempt.status();
  if (attempt->stream != nullptr) return std::move(attempt->stream);
  const http::Response& response = *attempt->response;
  if (response.status >= 200 && response.status < 300) {
    return absl::InternalError(absl::StrCat("expected a 200 stream, got HTTP ",
                                            response.status));
  }
  return StatusFromHttp(response.status, response.body);
}

}  // namespace cairn::http
